"""Grounding DINO's part: one ``detector`` network taking the image and the tokenized queries together (its text
and image features are fused from the first encoder layer on, so the text cannot be embedded apart).

It runs on torch through the ``transformers`` backend. It does not export (``im export`` refuses it with the
reason): ``torch.onnx.export(dynamo=False)`` has no ``aten::isin`` / ``aten::cummax`` (the phrase masks built from
``input_ids``), and with those replaced by equivalent comparisons the traced graph still bakes the Swin backbone's
window reshapes for the example image size and its outputs differ from the model's (logits by up to 0.4 on the
tiny test model, at the example size), so no exported file is written.
"""

from __future__ import annotations

from typing import Any

from im_backend_transformers._parts import Part
from im_core import TensorSpec

__all__ = ["grounding_dino_parts"]

_NOT_EXPORTABLE = (
    "Grounding DINO's detector does not export to ONNX or TorchScript yet: the traced graph fixes the Swin "
    "backbone's window shapes to one image size and its outputs differ from the model's. Run the Hugging Face "
    "folder itself (the transformers backend: AutoModel.from_pretrained(folder))."
)


def grounding_dino_parts(model: Any) -> dict[str, Part]:
    """Parts of a ``transformers`` ``GroundingDinoForObjectDetection``.

    ``detector``: ``pixel_values`` (N, 3, H, W) float32 (normalised, padded at the bottom/right), ``pixel_mask``
    (N, H, W) int64 (1 = image, 0 = padding), ``input_ids``, ``attention_mask`` and ``token_type_ids`` (N, L) int64
    (the queries joined as ``"a cat. a dog."``, BERT-tokenized; each image's own row) → ``logits`` (N, Q, T)
    float32 (one per object query and text position, ``-inf`` past the text; T = ``max_text_len``, 256) and
    ``pred_boxes`` (N, Q, 4) float32 (``cx, cy, w, h`` relative to the image, its unpadded part). The phrase
    attention masks and position ids the model needs are built inside it from ``input_ids``, as in ``forward``.
    """
    import torch

    class Detector(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.det = model

        def forward(
            self, pixel_values: Any, pixel_mask: Any, input_ids: Any, attention_mask: Any, token_type_ids: Any
        ) -> Any:
            out = self.det(
                pixel_values=pixel_values,
                pixel_mask=pixel_mask,
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
            )
            return out.logits, out.pred_boxes

    def example() -> tuple[Any, ...]:
        raise NotImplementedError(_NOT_EXPORTABLE)

    cfg = model.config
    queries = int(cfg.num_queries)
    width = int(cfg.max_text_len)
    return {
        "detector": Part(
            module=Detector().eval(),
            inputs=(
                TensorSpec("pixel_values", (None, 3, None, None), "float32"),
                TensorSpec("pixel_mask", (None, None, None), "int64"),
                TensorSpec("input_ids", (None, None), "int64"),
                TensorSpec("attention_mask", (None, None), "int64"),
                TensorSpec("token_type_ids", (None, None), "int64"),
            ),
            outputs=(
                TensorSpec("logits", (None, queries, width), "float32"),
                TensorSpec("pred_boxes", (None, queries, 4), "float32"),
            ),
            example=example,
        )
    }
