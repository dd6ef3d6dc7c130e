"""SegFormer's part: ``segment`` (pixel_values (N, 3, H, W) → logits (N, K, H/4, W/4) float32, K = num_labels).

SegFormer's overlapping patch embeddings and its all-MLP decode head take any input size (the decode head
upsamples every stage to the first stage's H/4 × W/4, read from the traced shape), so the exported graph keeps a
dynamic batch, height and width even though ``SegformerImageProcessor`` always resizes to one fixed size.
"""

from __future__ import annotations

from typing import Any

from im_backend_transformers._parts import Part
from im_core import TensorSpec

__all__ = ["segformer_parts"]


def segformer_parts(model: Any) -> dict[str, Part]:
    """Parts of a ``transformers`` ``SegformerForSemanticSegmentation``."""
    import torch

    class Segment(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, pixel_values: Any) -> Any:
            return self.net(pixel_values=pixel_values).logits

    labels = int(model.config.num_labels)
    return {
        "segment": Part(
            module=Segment().eval(),
            inputs=(TensorSpec("pixel_values", (None, 3, None, None), "float32"),),
            outputs=(TensorSpec("logits", (None, labels, None, None), "float32"),),
            example=lambda: (torch.zeros((2, 3, 64, 96)),),
        )
    }
