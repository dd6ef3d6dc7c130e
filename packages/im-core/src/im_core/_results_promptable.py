"""Results of promptable segmentation (SAM): the embedding of one image, and the masks its prompts give.

An :class:`ImageEmbedding` is what the image encoder computed once for one image; the prompt decoder turns it and
a prompt (points, boxes, a previous mask) into a :class:`PromptSegmentation` in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from im_core._results import (
    RLEMask,
    _array_json,
    _arrays_equal,
    _as,
    _floats_from,
    _masks_equal,
    _require,
    _to_json,
)
from im_core.errors import InvalidParameterError

__all__ = ["ImageEmbedding", "PromptSegmentation"]


@dataclass(frozen=True, eq=False)
class ImageEmbedding:
    """What a promptable segmentation model's image encoder computed for one image (``model.embed(image)``).

    Pass it to ``model.segment(embedding, points=...)`` as many times as wanted: the encoder does not run again.

    Attributes:
        tensors: the encoder outputs the decoder reads, by name (SAM: ``{"image_embeddings": (1, C, h, w)}``).
        original_size: ``(height, width)`` of the image, in pixels.
        input_size: ``(height, width)`` of the image resized for the network, before padding.
        key: content hash of the image (pixels and size) the embedding was computed from.
        model_id: the model that computed it (a decoder refuses another model's embedding).
    """

    tensors: Mapping[str, np.ndarray]
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    key: str = ""
    model_id: str = ""

    @property
    def nbytes(self) -> int:
        """Memory the tensors take."""
        return int(sum(np.asarray(t).nbytes for t in self.tensors.values()))

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(np.shape(v))}" for k, v in self.tensors.items())
        return f"ImageEmbedding(original_size={tuple(self.original_size)}, {shapes}, model={self.model_id!r})"


@dataclass
class PromptSegmentation:
    """Masks for the prompts given on one image.

    P prompts (one per box, or one for a set of points), each giving M masks (3 with ``multimask=True``, else 1).

    Attributes:
        masks: (P, M, H, W) bool at the original image size, or (with ``mask_format="rle"``) P lists of M
            :class:`RLEMask`.
        iou: float32 (P, M) quality the model predicts for each mask (its estimate of the mask's IoU).
        low_res_logits: float32 (P, M, h, w) mask logits at the decoder's resolution (SAM: 256 × 256), to pass as
            ``mask_input`` of the next prompt; ``None`` when not kept.
        image_size: ``(H, W)`` of the original image.

    ``==`` compares every field (masks by pixels, dense or RLE alike).
    """

    masks: np.ndarray | list[list[RLEMask]]
    iou: np.ndarray
    low_res_logits: np.ndarray | None = None
    image_size: tuple[int, int] = (0, 0)
    _shape: tuple[int, int] = field(default=(0, 0), init=False, repr=False)

    def __post_init__(self) -> None:
        self.iou = _as(self.iou, np.float32, "iou", (None, None))
        p, m = self.iou.shape
        if isinstance(self.masks, np.ndarray):
            self.masks = _as(self.masks, bool, "masks", (p, m, None, None))
            size = (int(self.masks.shape[2]), int(self.masks.shape[3]))
        else:
            rows = list(self.masks)
            if len(rows) != p or not all(len(r) == m and all(isinstance(x, RLEMask) for x in r) for r in rows):
                raise InvalidParameterError(f"masks as RLE must be {p} lists of {m} RLEMask objects.")
            self.masks = [list(r) for r in rows]
            sizes = {tuple(x.size) for r in rows for x in r}
            if len(sizes) > 1:
                raise InvalidParameterError(f"RLE masks of one result must share one size, got {sorted(sizes)}.")
            size = next(iter(sizes)) if sizes else tuple(self.image_size)  # type: ignore[assignment]
        if tuple(self.image_size) == (0, 0):
            self.image_size = (int(size[0]), int(size[1]))
        elif (p and m) and tuple(size) != tuple(self.image_size):
            raise InvalidParameterError(f"masks are {tuple(size)} but image_size is {tuple(self.image_size)}.")
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if self.low_res_logits is not None:
            self.low_res_logits = _as(self.low_res_logits, np.float32, "low_res_logits", (p, m, None, None))
        self._shape = (p, m)

    def __len__(self) -> int:
        """Number of prompts."""
        return self._shape[0]

    @property
    def best_index(self) -> np.ndarray:
        """int64 (P,): per prompt, the index of the mask with the highest predicted IoU."""
        return np.argmax(self.iou, axis=1).astype(np.int64) if self.iou.size else np.zeros(len(self), np.int64)

    def best(self) -> PromptSegmentation:
        """The mask with the highest predicted IoU of each prompt (M = 1)."""
        idx = self.best_index
        rows = np.arange(len(self))
        if isinstance(self.masks, np.ndarray):
            masks: Any = self.masks[rows, idx][:, None]
        else:
            masks = [[r[i]] for r, i in zip(self.masks, idx.tolist())]
        logits = None if self.low_res_logits is None else self.low_res_logits[rows, idx][:, None]
        return PromptSegmentation(masks, self.iou[rows, idx][:, None], logits, self.image_size)

    def dense_masks(self) -> np.ndarray:
        """(P, M, H, W) bool, decoding RLE if needed."""
        if isinstance(self.masks, np.ndarray):
            return self.masks
        h, w = self.image_size
        out = np.zeros((*self._shape, h, w), bool)
        for i, row in enumerate(self.masks):
            for j, rle in enumerate(row):
                out[i, j] = rle.decode()
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; masks as COCO uncompressed RLE, ``low_res_logits`` as nested lists (or ``None``)."""
        rows = self.masks if isinstance(self.masks, list) else [[RLEMask.encode(m) for m in r] for r in self.masks]
        return {
            "type": "prompt_segmentation",
            "image_size": [int(self.image_size[0]), int(self.image_size[1])],
            "iou": _array_json(self.iou),
            "masks": [[m.to_dict() for m in r] for r in rows],
            "low_res_logits": None if self.low_res_logits is None else _array_json(self.low_res_logits),
        }

    def to_json(self, indent: int | None = None) -> str:
        return _to_json(self.to_dict(), indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PromptSegmentation:
        d = _require(d, "prompt_segmentation", ("iou", "masks"))
        masks = d["masks"] or []
        iou = _floats_from(d["iou"], "iou", (None, len(masks[0]) if masks else 0))
        logits = d.get("low_res_logits")
        size = d.get("image_size") or (0, 0)
        return cls(
            [[RLEMask.from_dict(m) for m in r] for r in masks],
            iou,
            None if logits is None else _floats_from(logits, "low_res_logits", (None, None, None, None)),
            (int(size[0]), int(size[1])),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PromptSegmentation):
            return NotImplemented
        if self._shape != other._shape or tuple(self.image_size) != tuple(other.image_size):
            return False
        flat_a = self.masks if isinstance(self.masks, list) else list(self.masks)
        flat_b = other.masks if isinstance(other.masks, list) else list(other.masks)
        same_masks = all(
            _masks_equal(a if isinstance(a, list) else np.asarray(a), b if isinstance(b, list) else np.asarray(b))
            for a, b in zip(flat_a, flat_b)
        )
        return (
            same_masks
            and _arrays_equal(self.iou, other.iou)
            and _arrays_equal(self.low_res_logits, other.low_res_logits)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        p, m = self._shape
        form = "dense" if isinstance(self.masks, np.ndarray) else "rle"
        best = ", ".join(f"{v:.3f}" for v in self.iou.max(axis=1)[:5].tolist()) if self.iou.size else ""
        return (
            f"PromptSegmentation(prompts={p}, masks_per_prompt={m}, size={self.image_size}, {form}, best_iou=[{best}])"
        )
