"""Promptable segmentation (SAM): encode an image once, then segment it with many prompts.

A family implements :meth:`PromptableSegmentationModel.encode` (one image → :class:`ImageEmbedding`) and
:meth:`PromptableSegmentationModel.decode` (an embedding and checked prompts → :class:`PromptSegmentation`); the base
class gives ``embed`` (with an embedding cache keyed by the image's content, so interactive use never re-encodes
an image it has seen), ``segment`` (prompts in original-image pixels, checked here) and the ``Model`` call
(``model(image, points=..., boxes=...)``).
"""

from __future__ import annotations

import hashlib
import threading
from abc import abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from im_core._images import Image, is_batch, to_images
from im_core._results_promptable import ImageEmbedding, PromptSegmentation
from im_core._tasks import Model
from im_core.errors import InvalidParameterError

__all__ = ["EmbeddingCache", "Prompts", "PromptableSegmentationModel", "image_key"]

#: the labels a user gives points: 1 = foreground (part of the object), 0 = background
POINT_LABELS = (0, 1)
MaskFormat = Literal["dense", "rle"]


def image_key(image: Image) -> str:
    """Content hash of an image: its pixels (RGB order), height and width (BLAKE2b, 128 bits)."""
    pixels = np.ascontiguousarray(image.to("rgb"))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{pixels.shape}{pixels.dtype}".encode())
    digest.update(pixels.tobytes() if not pixels.flags.c_contiguous else pixels.data)
    return digest.hexdigest()


class EmbeddingCache:
    """A bounded LRU map from image content hash to :class:`ImageEmbedding` (thread-safe).

    Args:
        max_items: embeddings kept (0 disables the cache); the least recently used goes first.
    """

    def __init__(self, max_items: int = 8) -> None:
        if int(max_items) < 0:
            raise InvalidParameterError(f"embedding_cache_size must be >= 0, got {max_items}.")
        self.max_items = int(max_items)
        self._items: OrderedDict[str, ImageEmbedding] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> ImageEmbedding | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: str, embedding: ImageEmbedding) -> None:
        if not self.max_items:
            return
        with self._lock:
            self._items[key] = embedding
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


@dataclass(frozen=True)
class Prompts:
    """Checked prompts of one call, in original-image pixels.

    Attributes:
        points: float64 (P, K, 2) x, y per point, or ``None``.
        labels: int64 (P, K) 1 (foreground) / 0 (background), or ``None``.
        boxes: float64 (P, 4) x1, y1, x2, y2, or ``None``.
        mask_input: float32 (P, 1, h, w) low-resolution logits of a previous result, or ``None``.
    """

    points: np.ndarray | None
    labels: np.ndarray | None
    boxes: np.ndarray | None
    mask_input: np.ndarray | None

    def __len__(self) -> int:
        if self.boxes is not None:
            return len(self.boxes)
        return 0 if self.points is None else len(self.points)


def check_prompts(
    size: tuple[int, int],
    points: Any = None,
    labels: Any = None,
    boxes: Any = None,
    mask_input: Any = None,
) -> Prompts:
    """Check and shape prompts for an image of ``size`` (height, width).

    ``points`` (K, 2) — one prompt of K points — or (P, K, 2); ``labels`` (K,) or (P, K), 1 / 0 each (default: all
    1); ``boxes`` (4,) or (P, 4); with both, 2-D points go with every box, 3-D points need P = number of boxes.
    ``mask_input``: (h, w), (1, h, w) or (P, 1, h, w) logits (a previous result's ``low_res_logits`` of one mask).

    Raises:
        InvalidParameterError: no prompt, a shape that does not fit, labels other than 0/1, points/labels of
            different lengths, a box with x2 < x1 or y2 < y1, or a coordinate outside the image.
    """
    height, width = size
    pts = lab = box = msk = None
    if points is not None:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim == 2:
            pts = pts[None]
        if pts.ndim != 3 or pts.shape[-1] != 2 or pts.shape[1] == 0:
            raise InvalidParameterError(
                f"points must be (K, 2) x, y pairs or (P, K, 2) with K >= 1; got shape {np.shape(points)}."
            )
        if labels is None:
            lab = np.ones(pts.shape[:2], np.int64)
        else:
            raw = np.asarray(labels)
            try:
                lab = raw.astype(np.int64).reshape((1, -1) if raw.ndim == 1 else raw.shape)
            except (TypeError, ValueError):
                raise InvalidParameterError(f"labels must be integers (1 or 0), got {labels!r:.80}.") from None
            if lab.shape != pts.shape[:2] or not np.array_equal(lab, raw.reshape(lab.shape)):
                raise InvalidParameterError(
                    f"labels must hold one integer per point: {pts.shape[:2]} for points of shape {pts.shape}, got "
                    f"shape {np.shape(labels)}."
                )
            if not np.isin(lab, POINT_LABELS).all():
                raise InvalidParameterError(
                    f"point labels are 1 (foreground) or 0 (background); got {sorted(set(lab.ravel().tolist()))}."
                )
        _inside(pts.reshape(-1, 2), width, height, "point")
    elif labels is not None:
        raise InvalidParameterError("labels were given without points; pass points=[[x, y], ...] with them.")
    if boxes is not None:
        box = np.asarray(boxes, dtype=np.float64)
        if box.ndim == 1:
            box = box[None]
        if box.ndim != 2 or box.shape[1] != 4 or not len(box):
            raise InvalidParameterError(f"boxes must be (4,) or (P, 4) x1, y1, x2, y2; got shape {np.shape(boxes)}.")
        if ((box[:, 2] < box[:, 0]) | (box[:, 3] < box[:, 1])).any():
            raise InvalidParameterError("boxes are x1, y1, x2, y2 with x2 >= x1 and y2 >= y1.")
        _inside(box.reshape(-1, 2), width, height, "box corner")
        if pts is not None:
            if len(pts) == 1 and len(box) > 1:
                pts, lab = np.repeat(pts, len(box), 0), np.repeat(lab, len(box), 0)  # type: ignore[arg-type]
            if len(pts) != len(box):
                raise InvalidParameterError(
                    f"{len(pts)} point prompts for {len(box)} boxes: give (K, 2) points for every box, or (P, K, 2) "
                    "with one set per box."
                )
    if mask_input is not None:
        msk = np.asarray(mask_input, dtype=np.float32)
        msk = msk.reshape((1, 1, *msk.shape[-2:])) if msk.ndim in (2, 3) and (msk.ndim == 2 or len(msk) == 1) else msk
        if msk.ndim != 4 or msk.shape[1] != 1:
            raise InvalidParameterError(
                "mask_input must be (h, w), (1, h, w) or (P, 1, h, w) low-resolution logits; "
                f"got {np.shape(mask_input)}."
            )
    if pts is None and box is None:
        raise InvalidParameterError(
            "segment needs a prompt: points=[[x, y], ...] (with labels, 1 = object, 0 = background) and/or "
            "boxes=[x1, y1, x2, y2]; mask_input (a previous result's low_res_logits) refines such a prompt."
        )
    prompts = Prompts(pts, lab, box, msk)
    if msk is not None and len(msk) not in (1, len(prompts)):
        raise InvalidParameterError(f"{len(msk)} mask inputs for {len(prompts)} prompts; give 1 or one per prompt.")
    return prompts


def _inside(xy: np.ndarray, width: int, height: int, what: str) -> None:
    if not np.isfinite(xy).all():
        raise InvalidParameterError(f"a {what} is not a finite number.")
    bad = (xy[:, 0] < 0) | (xy[:, 0] > width) | (xy[:, 1] < 0) | (xy[:, 1] > height)
    if bad.any():
        x, y = xy[np.flatnonzero(bad)[0]].tolist()
        raise InvalidParameterError(
            f"{what} ({x:g}, {y:g}) lies outside the {width}×{height} image: prompts are in original-image pixels, "
            f"0 <= x <= {width}, 0 <= y <= {height}."
        )


class PromptableSegmentationModel(Model[PromptSegmentation]):
    """Promptable segmentation: ``embed(image)`` once, then ``segment(embedding, points=..., boxes=...)``.

    ``model(image, points=..., boxes=...)`` does both (the embedding comes from the cache when the same pixels were
    embedded before). Masks come at the original image size; coordinates are original-image pixels.
    """

    task: ClassVar[str] = "promptable-segmentation"
    CALL_PARAMS: ClassVar[dict[str, str]] = {
        "points": "post",
        "labels": "post",
        "boxes": "post",
        "mask_input": "post",
        "multimask": "post",
        "mask_format": "post",
        "keep_logits": "post",
    }
    #: the embeddings kept by content (see :class:`EmbeddingCache`); families set it in ``from_package``
    embedding_cache: EmbeddingCache

    @abstractmethod
    def encode(self, image: Image) -> ImageEmbedding:
        """Run the image encoder on one image."""

    @abstractmethod
    def decode(
        self,
        embedding: ImageEmbedding,
        prompts: Prompts,
        *,
        multimask: bool,
        mask_format: MaskFormat,
        keep_logits: bool,
    ) -> PromptSegmentation:
        """Run the prompt decoder on checked prompts and post-process to the original size."""

    def embed(self, image: Any, *, color_format: Literal["bgr", "rgb"] = "bgr") -> ImageEmbedding:
        """The :class:`ImageEmbedding` of one image (any accepted form, or an :class:`~im_core.Image`), from the
        cache when the same pixels were embedded before."""
        if isinstance(image, ImageEmbedding):
            return image
        if isinstance(image, Image):
            return self._embed(image)
        if is_batch(image):
            raise InvalidParameterError("embed takes one image; call it once per image.")
        return self._embed(to_images(image, color_format)[0])

    def _embed(self, image: Image) -> ImageEmbedding:
        cache = getattr(self, "embedding_cache", None)
        key = image_key(image)
        found = cache.get(key) if cache is not None else None
        if found is not None:
            return found
        embedding = self.encode(image)
        embedding = ImageEmbedding(
            embedding.tensors, embedding.original_size, embedding.input_size, key, self.metadata.model_id
        )
        if cache is not None:
            cache.put(key, embedding)
        return embedding

    def segment(
        self,
        image: Any,
        *,
        points: Any = None,
        labels: Any = None,
        boxes: Any = None,
        mask_input: Any = None,
        multimask: bool = True,
        mask_format: MaskFormat = "dense",
        keep_logits: bool = True,
        color_format: Literal["bgr", "rgb"] = "bgr",
    ) -> PromptSegmentation:
        """Masks for prompts on one image (or its :class:`ImageEmbedding`).

        Args:
            image: an image in any accepted form, or ``model.embed(image)``'s result.
            points: (K, 2) x, y in original-image pixels (one prompt), or (P, K, 2) (P prompts).
            labels: (K,) or (P, K): 1 = on the object, 0 = background (default: all 1).
            boxes: (4,) x1, y1, x2, y2 or (P, 4): one prompt per box (with points, they join each box's prompt).
            mask_input: a previous result's ``low_res_logits[p, m]`` ((h, w) or (P, 1, h, w)) to refine.
            multimask: 3 masks per prompt (for ambiguous prompts such as one point), else 1.
            mask_format: ``"dense"`` (bool arrays) or ``"rle"`` (:class:`RLEMask`).
            keep_logits: keep ``low_res_logits`` in the result.
            color_format: channel order of a numpy image.

        Raises:
            InvalidParameterError: no prompt, a prompt outside the image, points and labels that do not match,
                an embedding from another model.
        """
        embedding = self.embed(image, color_format=color_format)
        if embedding.model_id and embedding.model_id != self.metadata.model_id:
            raise InvalidParameterError(
                f"this embedding was computed by {embedding.model_id!r}, not {self.metadata.model_id!r}: embed the "
                "image with the model that segments it."
            )
        if mask_format not in ("dense", "rle"):
            raise InvalidParameterError(f"mask_format must be 'dense' or 'rle', got {mask_format!r}.")
        prompts = check_prompts(tuple(embedding.original_size), points, labels, boxes, mask_input)  # type: ignore[arg-type]
        return self.decode(
            embedding, prompts, multimask=bool(multimask), mask_format=mask_format, keep_logits=bool(keep_logits)
        )

    # -- the Model stages: model(image, points=...) ------------------------------------------------------------------

    def canvas_key(self, image: Image, **params: Any) -> None:
        return None

    def pre_process(self, images: list[Image], **params: Any) -> list[Image]:
        return images

    def forward(self, prepared: list[Image]) -> list[ImageEmbedding]:
        return [self._embed(image) for image in prepared]

    def post_process(self, raw: list[ImageEmbedding], prepared: list[Image], **params: Any) -> list[PromptSegmentation]:
        return [self.segment(embedding, **params) for embedding in raw]
