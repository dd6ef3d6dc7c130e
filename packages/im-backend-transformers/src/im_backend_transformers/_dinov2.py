"""DINOv2's (and DINOv3's) one part: ``backbone``, pixels → the final layer-normed token sequence."""

from __future__ import annotations

from typing import Any

from im_backend_transformers._parts import Part
from im_core import TensorSpec

__all__ = ["dinov2_parts"]


def dinov2_parts(model: Any) -> dict[str, Part]:
    """Parts of a ``transformers`` ``Dinov2Model`` / ``DINOv3ViTModel``.

    ``backbone``: ``pixel_values`` (N, 3, H, W) float32, normalised, H and W multiples of the patch size (any size:
    the position embeddings are interpolated) → ``last_hidden_state`` (N, 1 + R + H/p * W/p, D) float32: the CLS
    token, R register tokens (metadata ``num_register_tokens``, 0 for DINOv2), then the patch tokens row by row.
    """
    import torch

    class Backbone(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, pixel_values: Any) -> Any:
            return self.net(pixel_values=pixel_values).last_hidden_state

    cfg = model.config
    size = int(cfg.image_size)
    dim = int(cfg.hidden_size)
    registers = int(getattr(cfg, "num_register_tokens", 0) or 0)
    return {
        "backbone": Part(
            module=Backbone().eval(),
            inputs=(TensorSpec("pixel_values", (None, 3, None, None), "float32"),),
            outputs=(TensorSpec("last_hidden_state", (None, None, dim), "float32"),),
            example=lambda: (torch.zeros((2, 3, size, size)),),
            metadata={"num_register_tokens": str(registers), "patch_size": str(cfg.patch_size)},
        )
    }
