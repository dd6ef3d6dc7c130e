"""OWLv2's parts: ``text`` (query tokens → query embeddings, once per query list) and ``image`` (pixels + query
embeddings → per-patch logits, boxes and objectness), so text queries are embedded once and reused across images."""

from __future__ import annotations

from typing import Any

from im_backend_transformers._parts import Part
from im_core import TensorSpec

__all__ = ["owlv2_parts"]


def owlv2_parts(model: Any) -> dict[str, Part]:
    """Parts of a ``transformers`` ``Owlv2ForObjectDetection``.

    ``text``: ``input_ids`` (Q, L) int64 and ``attention_mask`` (Q, L) int64 → ``query_embeds`` (Q, D) float32,
    L2-normalised (the model's ``text_embeds``).

    ``image``: ``pixel_values`` (N, 3, S, S) float32, normalised, and ``query_embeds`` (N, Q, D) float32 (each
    image's queries; every input of a session shares the batch axis) → ``logits`` (N, P, Q) float32 (one per patch
    and query, before the sigmoid), ``pred_boxes`` (N, P, 4) float32 (``cx, cy, w, h`` relative to the padded
    square image) and ``objectness`` (N, P) float32 logits,
    P = (S / patch size)². Equal to ``Owlv2ForObjectDetection.forward`` for queries that are all real (no padded
    query: a query mask is the caller's, applied to the logits).
    """
    import torch

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.det = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            base = self.det.owlv2
            out = base.text_model(input_ids=input_ids, attention_mask=attention_mask)
            embeds = base.text_projection(out.pooler_output)
            return embeds / torch.linalg.norm(embeds, ord=2, dim=-1, keepdim=True)

    class Image(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.det = model

        def forward(self, pixel_values: Any, query_embeds: Any) -> Any:
            feature_map = self.det.image_embedder(pixel_values=pixel_values)[0]
            n, h, w, d = feature_map.shape
            feats = feature_map.reshape(n, h * w, d)
            logits = self.det.class_head(feats, query_embeds, None)[0]
            boxes = self.det.box_predictor(feats, feature_map)
            return logits, boxes, self.det.objectness_predictor(feats)

    cfg = model.config
    size = int(cfg.vision_config.image_size)
    patches = (size // int(cfg.vision_config.patch_size)) ** 2
    length = int(cfg.text_config.max_position_embeddings)
    dim = int(cfg.text_config.hidden_size)
    eos = int(getattr(cfg.text_config, "eos_token_id", 2) or 2)

    def text_example() -> tuple[Any, ...]:
        ids = torch.zeros((2, length), dtype=torch.int64)
        ids[:, 0], ids[:, 1], ids[:, 2] = max(eos - 1, 1), 1, eos
        mask = (torch.arange(length) < 3).to(torch.int64).repeat(2, 1)
        return ids, mask

    def image_example() -> tuple[Any, ...]:
        queries = torch.nn.functional.normalize(torch.ones((2, 3, dim)), dim=-1)
        return torch.zeros((2, 3, size, size)), queries

    return {
        "text": Part(
            module=Text().eval(),
            inputs=(
                TensorSpec("input_ids", (None, length), "int64"),
                TensorSpec("attention_mask", (None, length), "int64"),
            ),
            outputs=(TensorSpec("query_embeds", (None, dim), "float32"),),
            example=text_example,
        ),
        "image": Part(
            module=Image().eval(),
            inputs=(
                TensorSpec("pixel_values", (None, 3, size, size), "float32"),
                TensorSpec("query_embeds", (None, None, dim), "float32"),
            ),
            outputs=(
                TensorSpec("logits", (None, patches, None), "float32"),
                TensorSpec("pred_boxes", (None, patches, 4), "float32"),
                TensorSpec("objectness", (None, patches), "float32"),
            ),
            example=image_example,
        ),
    }
