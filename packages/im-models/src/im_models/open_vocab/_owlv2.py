"""OWLv2 open-vocabulary detection: text queries → :class:`~im_core.Detections` named by the queries.

Package: a Hugging Face folder of ``Owlv2ForObjectDetection`` (``config.json``, ``model.safetensors``, the processor
and tokenizer files), or what ``im export`` makes of it. Two networks (:mod:`im_backend_transformers._owlv2`):

* ``text``: ``input_ids``, ``attention_mask`` (Q, L) → ``query_embeds`` (Q, D), run once per new query text (the
  embeddings are cached by text, so a fixed query list costs nothing after the first call);
* ``image``: ``pixel_values`` (N, 3, S, S) + ``query_embeds`` (N, Q, D) → ``logits`` (N, P, Q), ``pred_boxes``
  (N, P, 4) and ``objectness`` (N, P).

Pre-processing is ``Owlv2ImageProcessor``'s: RGB / 255, padded at the bottom and right to a square with zeros, then
resized to S × S with a Gaussian anti-aliasing blur and linear interpolation (:func:`antialiased_linear_resize`),
then normalised with CLIP's mean and std. Post-processing is ``post_process_object_detection``'s: per patch the best
query, ``sigmoid`` of its logit as the score, kept when ``> confidence``; boxes are relative to the padded square,
so they scale by ``max(height, width)`` of the original image (and may reach into the padding, as in the reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from im_core import Detections, Image, OpenVocabularyDetectionModel, PackageContext, Session
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
from im_core.sdk import LoadedModelInfo
from im_models.common import hf_image_processor_config, nms, sigmoid, to_numpy, xywh_to_xyxy
from im_models.open_vocab._resize import antialiased_linear_resize
from im_models.open_vocab._text import QueryCache, load_tokenizer, query_list, token_id

__all__ = ["OWLv2Detector"]

#: OpenAI CLIP's normalisation (RGB), Owlv2ImageProcessor's defaults
_MEAN = (0.48145466, 0.4578275, 0.40821073)
_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class _Batch:
    pixels: np.ndarray  # (N, 3, S, S) float32
    sizes: list[tuple[int, int]]  # (height, width) of each original image
    classes: tuple[str, ...]
    queries: np.ndarray  # (Q, D) float32
    valid: np.ndarray  # (Q,) bool: False for a query whose first token is the padding id (the reference masks it)


class OWLv2Detector(OpenVocabularyDetectionModel):
    """OWLv2 (and OWL-ViT-style) open-vocabulary detector: ``model(image, classes=["a cat", "remote control"])``.

    Call parameters:
        classes: the text queries (a string or a non-empty list of strings); ``class_id`` indexes this list.
        confidence: keep boxes whose score is ``> confidence`` (default 0.1, the reference's).
        iou_threshold: per-class NMS at this IoU (default ``None``: none, as the reference).
        max_detections: keep at most this many, best first (default ``None``: all).

    Results are sorted by score (best first); ``data["objectness"]`` holds each box's objectness probability.
    """

    LOAD_OPTIONS = frozenset()
    CALL_PARAMS = {"classes": "pre", "confidence": "post", "iou_threshold": "post", "max_detections": "post"}

    def __init__(
        self,
        image_session: Session,
        text_session: Session,
        tokenizer: Any,
        info: LoadedModelInfo,
        *,
        image_size: int,
        mean: tuple[float, ...] = _MEAN,
        std: tuple[float, ...] = _STD,
        rescale: float = 1 / 255,
        pad: bool = True,
    ) -> None:
        self.image_session = image_session
        self.text_session = text_session
        self.tokenizer = tokenizer
        self.metadata = info
        self.image_size = image_size
        self._mean = np.asarray(mean, np.float32)
        self._std = np.asarray(std, np.float32)
        self._rescale = np.float32(rescale)
        self._pad = pad
        self._pad_id = 0
        self.query_cache = QueryCache(self._embed_texts)

    @classmethod
    def from_package(cls, ctx: PackageContext) -> OWLv2Detector:
        proc = hf_image_processor_config(ctx)
        hf = ctx.read_json("config.json") if ctx.has("config.json") else {}
        text_cfg = hf.get("text_config", {}) if isinstance(hf, dict) else {}
        vision_cfg = hf.get("vision_config", {}) if isinstance(hf, dict) else {}
        tokenizer, tok_cfg = load_tokenizer(ctx)
        image = ctx.load_part("image")
        text = ctx.load_part("text")
        size = _image_size(proc, vision_cfg, image)
        length = _context_length(tok_cfg, text_cfg, text)
        pad_id = token_id(tokenizer, tok_cfg, "pad_token", 0)
        tokenizer.enable_truncation(length)
        tokenizer.enable_padding(length=length, pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id) or "")
        model = cls(
            image,
            text,
            tokenizer,
            ctx.info(()),
            image_size=size,
            mean=_floats(proc.get("image_mean"), _MEAN),
            std=_floats(proc.get("image_std"), _STD),
            rescale=float(proc.get("rescale_factor", 1 / 255)) if proc.get("do_rescale", True) else 1.0,
            pad=bool(proc.get("do_pad", True)),
        )
        model._pad_id = pad_id
        return model

    # -- text queries ---------------------------------------------------------------------------------------------

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids, attention_mask)`` int64 (Q, L), padded and truncated to the context length L (the
        reference pads to L and fails on longer queries; im truncates them, keeping the end-of-text token)."""
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], np.int64)
        mask = np.array([e.attention_mask for e in encoded], np.int64)
        return ids, mask

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        """(Q, D + 1): each query's embedding and, last, 1.0 when the query is real (its first id is not 0)."""
        ids, mask = self.tokenize(texts)
        names = [s.name for s in self.text_session.inputs]
        out = self.text_session.outputs[0].name
        embeds = to_numpy(self.text_session.run({names[0]: ids, names[1]: mask}, [out])[out]).astype(np.float32)
        valid = (ids[:, 0] > 0).astype(np.float32)[:, None]
        return np.concatenate([embeds, valid], axis=1)

    def embed_queries(self, classes: Any) -> np.ndarray:
        """(Q, D) float32 query embeddings of ``classes`` (cached by text)."""
        return self.query_cache(list(query_list(classes)))[:, :-1]

    # -- the Model stages -----------------------------------------------------------------------------------------

    def canvas_key(self, image: Image, **params: Any) -> None:
        return None  # every image becomes one S × S canvas

    def pre_process(self, images: list[Image], **params: Any) -> _Batch:
        classes = query_list(params.get("classes"))
        rows = self.query_cache(list(classes))
        s = self.image_size
        pixels = np.empty((len(images), 3, s, s), np.float32)
        for i, im in enumerate(images):
            x = im.to("rgb").astype(np.float32) * self._rescale
            if self._pad and x.shape[0] != x.shape[1]:
                side = max(x.shape[:2])
                square = np.zeros((side, side, 3), np.float32)
                square[: x.shape[0], : x.shape[1]] = x
                x = square
            x = antialiased_linear_resize(x, s, s)
            pixels[i] = ((x - self._mean) / self._std).transpose(2, 0, 1)
        return _Batch(pixels, [(im.height, im.width) for im in images], classes, rows[:, :-1], rows[:, -1] > 0)

    def forward(self, prepared: _Batch) -> list[np.ndarray]:
        names = [s.name for s in self.image_session.inputs]
        outs = [s.name for s in self.image_session.outputs]
        queries = np.repeat(prepared.queries[None], len(prepared.pixels), axis=0)  # each image's own (writable) copy
        feeds = {names[0]: prepared.pixels, names[1]: queries}
        got = self.image_session.run(feeds, outs)
        return [to_numpy(got[n]) for n in outs]

    def post_process(self, raw: list[np.ndarray], prepared: _Batch, **params: Any) -> list[Detections]:
        confidence = _number(params.get("confidence", 0.1), "confidence")
        iou = params.get("iou_threshold")
        limit = params.get("max_detections")
        logits, boxes = raw[0], raw[1]
        objectness = raw[2] if len(raw) > 2 else None
        if logits.ndim != 3 or logits.shape[2] != len(prepared.classes) or boxes.shape[:2] != logits.shape[:2]:
            raise CorruptedModelPackageError(
                f"OWLv2's image network returned logits {logits.shape} and boxes {boxes.shape} for "
                f"{len(prepared.classes)} queries; expected (N, P, Q) and (N, P, 4)."
            )
        results = []
        for i, (h, w) in enumerate(prepared.sizes):
            lg = np.where(prepared.valid[None, :], logits[i], -np.inf)
            cls = lg.argmax(axis=1)
            scores = sigmoid(np.take_along_axis(lg, cls[:, None], axis=1)[:, 0])
            keep = np.flatnonzero(scores > confidence)
            keep = keep[np.argsort(-scores[keep], kind="stable")]
            xyxy = xywh_to_xyxy(boxes[i][keep]) * np.float32(max(h, w))
            if iou is not None and len(keep):
                chosen = nms(xyxy, scores[keep], float(iou), class_ids=cls[keep])
                keep, xyxy = keep[chosen], xyxy[chosen]
            if limit is not None:
                keep, xyxy = keep[: int(limit)], xyxy[: int(limit)]
            data = {} if objectness is None else {"objectness": sigmoid(objectness[i][keep])}
            results.append(Detections(xyxy, scores[keep], cls[keep], prepared.classes, data=data))
        return results


def _floats(value: Any, default: tuple[float, ...]) -> tuple[float, ...]:
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value):
        return tuple(float(v) for v in value)
    return default


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise InvalidParameterError(f"{name} must be a number, got {value!r}.")
    return float(value)


def _image_size(proc: dict[str, Any], vision_cfg: dict[str, Any], image: Session) -> int:
    """S: the image network's fixed input side, else the processor's ``size``, else ``vision_config.image_size``."""
    shape = image.inputs[0].shape if image.inputs else ()
    if len(shape) == 4 and isinstance(shape[-1], int) and shape[-1] > 0:
        return int(shape[-1])
    size = proc.get("size")
    side = size.get("height") if isinstance(size, dict) else size
    if isinstance(side, int) and side > 0:
        return side
    side = vision_cfg.get("image_size")
    if isinstance(side, int) and side > 0:
        return side
    raise CorruptedModelPackageError("OWLv2: no image size in the network, preprocessor_config.json or config.json.")


def _context_length(tok_cfg: dict[str, Any], text_cfg: dict[str, Any], text: Session) -> int:
    """L: the text network's fixed sequence length, else the tokenizer's ``model_max_length``, else the text
    tower's ``max_position_embeddings`` (16 for OWLv2)."""
    shape = text.inputs[0].shape if text.inputs else ()
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0:
        return int(shape[1])
    for value in (tok_cfg.get("model_max_length"), text_cfg.get("max_position_embeddings")):
        if isinstance(value, int) and 0 < value <= 4096:
            return value
    return 16
