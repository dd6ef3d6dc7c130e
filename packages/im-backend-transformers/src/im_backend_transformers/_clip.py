"""CLIP's parts: ``vision`` (pixels → projected image embedding) and ``text`` (token ids + mask → projected text
embedding); the logit scale (``exp(logit_scale)``) rides along as metadata."""

from __future__ import annotations

from typing import Any

from im_backend_transformers._parts import Part
from im_core import TensorSpec

__all__ = ["clip_parts"]


def clip_parts(model: Any) -> dict[str, Part]:
    """Parts of a ``transformers`` ``CLIPModel``.

    ``vision``: ``pixel_values`` (N, 3, S, S) float32, normalised → ``image_embeds`` (N, D) float32, not normalised.
    ``text``: ``input_ids`` (N, L) int64 and ``attention_mask`` (N, L) int64 → ``text_embeds`` (N, D) float32.
    """
    import torch

    class Vision(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, pixel_values: Any) -> Any:
            out = self.clip.vision_model(pixel_values=pixel_values)
            return self.clip.visual_projection(out.pooler_output)

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.clip.text_model(input_ids=input_ids, attention_mask=attention_mask)
            return self.clip.text_projection(out.pooler_output)

    cfg = model.config
    size = int(cfg.vision_config.image_size)
    length = int(cfg.text_config.max_position_embeddings)
    dim = int(cfg.projection_dim)
    scale = {"logit_scale": repr(float(model.logit_scale.exp().item()))}
    eos = int(getattr(cfg.text_config, "eos_token_id", 2) or 2)

    def text_example() -> tuple[Any, ...]:
        ids = torch.zeros((2, length), dtype=torch.int64)
        ids[:, 0], ids[:, 3] = max(eos - 1, 0), eos
        mask = (torch.arange(length) < 4).to(torch.int64).repeat(2, 1)
        return ids, mask

    return {
        "vision": Part(
            module=Vision().eval(),
            inputs=(TensorSpec("pixel_values", (None, 3, size, size), "float32"),),
            outputs=(TensorSpec("image_embeds", (None, dim), "float32"),),
            example=lambda: (torch.zeros((2, 3, size, size)),),
            metadata=scale,
        ),
        "text": Part(
            module=Text().eval(),
            inputs=(
                TensorSpec("input_ids", (None, None), "int64"),
                TensorSpec("attention_mask", (None, None), "int64"),
            ),
            outputs=(TensorSpec("text_embeds", (None, dim), "float32"),),
            example=text_example,
            metadata=scale,
        ),
    }
