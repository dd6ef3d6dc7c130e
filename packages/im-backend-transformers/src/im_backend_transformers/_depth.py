"""Depth-Anything's part: ``depth`` (pixel_values (N, 3, h, w), h and w multiples of the patch size →
predicted_depth (N, h, w) float32)."""

from __future__ import annotations

from typing import Any

from im_backend_transformers._parts import Part
from im_core import TensorSpec

__all__ = ["depth_anything_parts"]


def depth_anything_parts(model: Any) -> dict[str, Part]:
    """Parts of a ``transformers`` ``DepthAnythingForDepthEstimation``."""
    import torch

    class Depth(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, pixel_values: Any) -> Any:
            # DepthAnythingForDepthEstimation.forward, step by step, with the head's upsampling size taken from the
            # input's traced shape instead of Python ints: the exported graph keeps a dynamic height and width
            net = self.net
            features = net.backbone.forward_with_filtered_kwargs(pixel_values).feature_maps
            height, width = pixel_values.shape[-2], pixel_values.shape[-1]
            patch_height, patch_width = height // patch, width // patch
            hidden = net.neck(features, patch_height, patch_width)
            head = net.head
            x = head.conv1(hidden[head.head_in_index])
            x = torch.nn.functional.interpolate(
                x, size=(patch_height * patch, patch_width * patch), mode="bilinear", align_corners=True
            )
            x = head.conv3(head.activation1(head.conv2(x)))
            return (head.activation2(x) * head.max_depth).squeeze(1)

    patch = int(getattr(model.config, "patch_size", 14) or 14)
    side = 4 * patch
    return {
        "depth": Part(
            module=Depth().eval(),
            inputs=(TensorSpec("pixel_values", (None, 3, None, None), "float32"),),
            outputs=(TensorSpec("predicted_depth", (None, None, None), "float32"),),
            example=lambda: (torch.zeros((2, 3, side, side + patch)),),
        )
    }
