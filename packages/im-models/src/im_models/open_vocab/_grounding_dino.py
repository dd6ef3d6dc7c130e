"""Grounding DINO open-vocabulary detection: text queries → :class:`~im_core.Detections` named by the queries.

Package: a Hugging Face folder of ``GroundingDinoForObjectDetection`` (``config.json``, ``model.safetensors``, the
processor and tokenizer files), run by the ``transformers`` backend as one ``detector`` network
(:mod:`im_backend_transformers._grounding_dino`: image, pixel mask and tokens in; ``logits`` (N, Q, 256) and
``pred_boxes`` (N, Q, 4) out).

Text, as ``GroundingDinoProcessor``: the queries, stripped and lower-cased, joined as ``"a cat. remote control."``,
BERT-tokenized with the folder's tokenizer (``[CLS] ... [SEP]``). Each token is mapped to the query whose characters
it covers; delimiters and special tokens to none.

Images, as ``GroundingDinoImageProcessor``: RGB resized with PIL's bilinear filter so that the short side is
``shortest_edge`` (800) and the long side at most ``longest_edge`` (1333), / 255, ImageNet mean/std. Images are
grouped by resized size (:meth:`canvas_key`), so none is padded and each gets the result it gets alone.

Post-processing, as ``post_process_grounded_object_detection``: per object query, the score is the largest
``sigmoid`` over the text positions, kept when ``> confidence``; boxes scale by the original width and height.
``class_id`` is the query owning the text position with the highest probability among the queries' own tokens;
``data["phrase"]`` holds the reference's text label (the tokens with probability ``> text_threshold``, decoded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from im_core import Detections, Image, OpenVocabularyDetectionModel, PackageContext, Session
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
from im_core.sdk import LoadedModelInfo
from im_models.common import hf_image_processor_config, nms, resize_like_pil, sigmoid, to_numpy, xywh_to_xyxy
from im_models.open_vocab._text import load_tokenizer, query_list

__all__ = ["GroundingDINODetector", "resized_size"]

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def resized_size(height: int, width: int, shortest: int, longest: int | None) -> tuple[int, int]:
    """(height, width) after ``transformers``' ``get_size_with_aspect_ratio``: the short side becomes ``shortest``
    unless the long side would pass ``longest``, in which case the long side becomes (about) ``longest``."""
    size, raw = shortest, None
    if longest is not None:
        lo, hi = float(min(height, width)), float(max(height, width))
        if hi / lo * size > longest:
            raw = longest * lo / hi
            size = round(raw)
    if (height <= width and height == size) or (width <= height and width == size):
        return height, width
    if width < height:
        return (int(raw * height / width) if raw is not None else int(size * height / width)), size
    return size, (int(raw * width / height) if raw is not None else int(size * width / height))


@dataclass
class _Batch:
    pixels: np.ndarray  # (N, 3, H, W) float32
    sizes: list[tuple[int, int]]  # original (height, width)
    classes: tuple[str, ...]
    ids: np.ndarray  # (L,) int64 token ids of the joined queries
    owner: np.ndarray  # (L,) int64 query index of each token, -1 for delimiters and special tokens


class GroundingDINODetector(OpenVocabularyDetectionModel):
    """Grounding DINO: ``model(image, classes=["a cat", "remote control"])``.

    Call parameters:
        classes: the text queries (a string or a non-empty list of strings); ``class_id`` indexes this list.
        confidence: keep boxes whose score is ``> confidence`` (default 0.25, the reference's ``threshold``).
        text_threshold: text positions above it make ``data["phrase"]`` (default 0.25, the reference's).
        iou_threshold: per-class NMS at this IoU (default ``None``: none, as the reference).
        max_detections: keep at most this many, best first (default ``None``: all).

    Results are sorted by score (best first).
    """

    LOAD_OPTIONS = frozenset()
    CALL_PARAMS = {
        "classes": "pre",
        "confidence": "post",
        "text_threshold": "post",
        "iou_threshold": "post",
        "max_detections": "post",
    }

    def __init__(
        self,
        session: Session,
        tokenizer: Any,
        info: LoadedModelInfo,
        *,
        shortest_edge: int = 800,
        longest_edge: int | None = 1333,
        mean: tuple[float, ...] = _MEAN,
        std: tuple[float, ...] = _STD,
        rescale: float = 1 / 255,
        max_text_len: int = 256,
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.metadata = info
        self.shortest_edge = shortest_edge
        self.longest_edge = longest_edge
        self._mean = np.asarray(mean, np.float32)
        self._std = np.asarray(std, np.float32)
        self._rescale = np.float32(rescale)
        self.max_text_len = max_text_len

    @classmethod
    def from_package(cls, ctx: PackageContext) -> GroundingDINODetector:
        proc = hf_image_processor_config(ctx)
        hf = ctx.read_json("config.json") if ctx.has("config.json") else {}
        tokenizer, _ = load_tokenizer(ctx, vocab_txt=True)
        session = ctx.load_part("detector")
        given = proc.get("size")
        size: dict[str, Any] = given if isinstance(given, dict) else {}
        shortest = size.get("shortest_edge", 800)
        longest = size.get("longest_edge", proc.get("max_size", 1333))
        if not isinstance(shortest, int) or shortest <= 0:
            raise CorruptedModelPackageError(f"Grounding DINO: size.shortest_edge must be a positive int: {size}.")
        max_text_len = hf.get("max_text_len", 256) if isinstance(hf, dict) else 256
        tokenizer.no_padding()
        tokenizer.enable_truncation(int(max_text_len))
        mean, std = proc.get("image_mean", _MEAN), proc.get("image_std", _STD)
        return cls(
            session,
            tokenizer,
            ctx.info(()),
            shortest_edge=shortest,
            longest_edge=longest if isinstance(longest, int) and longest > 0 else None,
            mean=tuple(float(v) for v in mean),
            std=tuple(float(v) for v in std),
            rescale=float(proc.get("rescale_factor", 1 / 255)) if proc.get("do_rescale", True) else 1.0,
            max_text_len=int(max_text_len),
        )

    # -- text ------------------------------------------------------------------------------------------------------

    def tokenize(self, classes: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(ids (L,) int64, owner (L,) int64)`` of the queries joined as the processor joins them (stripped,
        lower-cased, ``". "``-separated, ending in ``"."``); ``owner`` is each token's query index or -1."""
        labels = [c.strip().lower() for c in query_list(classes)]
        starts = np.cumsum([0] + [len(label) + 2 for label in labels[:-1]])
        ends = starts + np.array([len(label) for label in labels])
        encoded = self.tokenizer.encode(". ".join(labels) + ".")
        ids = np.asarray(encoded.ids, np.int64)
        offsets = np.asarray(encoded.offsets, np.int64).reshape(-1, 2)
        special = np.asarray(encoded.special_tokens_mask, bool)
        inside = (offsets[:, :1] >= starts[None, :]) & (offsets[:, :1] < ends[None, :]) & ~special[:, None]
        owner = np.where(inside.any(axis=1), inside.argmax(axis=1), -1).astype(np.int64)
        return ids, owner

    # -- the Model stages -----------------------------------------------------------------------------------------

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return resized_size(image.height, image.width, self.shortest_edge, self.longest_edge)

    def pre_process(self, images: list[Image], **params: Any) -> _Batch:
        classes = query_list(params.get("classes"))
        ids, owner = self.tokenize(classes)
        h, w = self.canvas_key(images[0])
        pixels = np.empty((len(images), 3, h, w), np.float32)
        for i, im in enumerate(images):  # one canvas per group (canvas_key): no padding
            resized = _pil_resize(im.to("rgb"), h, w)
            pixels[i] = ((resized.astype(np.float32) * self._rescale - self._mean) / self._std).transpose(2, 0, 1)
        return _Batch(pixels, [(im.height, im.width) for im in images], classes, ids, owner)

    def forward(self, prepared: _Batch) -> list[np.ndarray]:
        n = len(prepared.pixels)
        ids = np.repeat(prepared.ids[None, :], n, axis=0)
        feeds = {
            "pixel_values": prepared.pixels,
            "pixel_mask": np.ones((n, *prepared.pixels.shape[2:]), np.int64),
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids),
        }
        outs = [s.name for s in self.session.outputs]
        got = self.session.run(feeds, outs)
        return [to_numpy(got[name]) for name in outs]

    def post_process(self, raw: list[np.ndarray], prepared: _Batch, **params: Any) -> list[Detections]:
        confidence = _number(params.get("confidence", 0.25), "confidence")
        text_threshold = _number(params.get("text_threshold", 0.25), "text_threshold")
        iou = params.get("iou_threshold")
        limit = params.get("max_detections")
        logits, boxes = raw
        width = logits.shape[2]
        owner = np.full(width, -1, np.int64)
        owner[: min(width, len(prepared.owner))] = prepared.owner[:width]
        ids = np.zeros(width, np.int64)
        ids[: min(width, len(prepared.ids))] = prepared.ids[:width]
        results = []
        for i, (h, w) in enumerate(prepared.sizes):
            probs = sigmoid(logits[i])  # (Q, T); 0 past the text
            scores = probs.max(axis=1)
            keep = np.flatnonzero(scores > confidence)
            keep = keep[np.argsort(-scores[keep], kind="stable")]
            own = np.where(owner[None, :] >= 0, probs[keep], -1.0)
            cls = owner[own.argmax(axis=1)] if len(keep) else np.zeros(0, np.int64)
            xyxy = xywh_to_xyxy(boxes[i][keep]) * np.array([w, h, w, h], np.float32)
            if iou is not None and len(keep):
                chosen = nms(xyxy, scores[keep], float(iou), class_ids=cls)
                keep, xyxy, cls = keep[chosen], xyxy[chosen], cls[chosen]
            if limit is not None:
                keep, xyxy, cls = keep[: int(limit)], xyxy[: int(limit)], cls[: int(limit)]
            phrases = self._phrases(probs[keep] > text_threshold, ids)
            results.append(Detections(xyxy, scores[keep], cls, prepared.classes, data={"phrase": phrases}))
        return results

    def _phrases(self, posmap: np.ndarray, ids: np.ndarray) -> list[str]:
        """The reference's text label per box: the ids at the positions of ``posmap`` (K, T) but the first and the
        last, decoded; each distinct position set is decoded once."""
        posmap = posmap.copy()
        posmap[:, 0] = False
        posmap[:, -1] = False
        if not len(posmap):
            return []
        rows, inverse = np.unique(posmap, axis=0, return_inverse=True)
        texts = [self.tokenizer.decode(ids[row].tolist(), skip_special_tokens=False) for row in rows]
        return [texts[j] for j in inverse.reshape(-1)]


def _pil_resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pillow's bilinear resize, as the reference processor does."""
    return resize_like_pil(rgb, (width, height), resample=2)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise InvalidParameterError(f"{name} must be a number, got {value!r}.")
    return float(value)
