"""PP-OCR DB text detector: page image → text-line quadrilaterals (``Detections`` with ``data["polygon"]``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from im_core import Detections, Image, LoadedModelInfo, PackageContext, Session, TextDetectionModel
from im_core.errors import InvalidParameterError
from im_models.common import to_numpy
from im_models.ocr._config import settings
from im_models.ocr._db import DBParams, db_boxes, reading_order

__all__ = ["DBTextDetector"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_DEFAULTS: dict[str, Any] = {
    # as RapidOCR (and PaddleOCR's det_limit_type="min") resize: the short side is brought up to at least 736 px.
    # Capping the longest side at 960 instead shrinks the text of a wide page until whole lines are lost.
    "limit_side_len": 736,
    "limit_type": "min",  # "min": shortest side >= limit (upscaled only); "max": longest side <= limit (shrunk only)
    "max_side_len": 4000,  # hard cap whatever limit_type says
    "threshold": 0.3,
    # RapidOCR's DB post-processing for PP-OCR (its config.yaml): the map is dilated and boxes grown by 1.6, which
    # keeps a line whole at the upscaled size (PaddleOCR's tools default to 0.6 / 1.5 / no dilation)
    "box_threshold": 0.5,
    "unclip_ratio": 1.6,
    "max_candidates": 1000,
    "min_size": 3.0,
    "dilate": True,
    "mean": _IMAGENET_MEAN,  # applied to BGR channels in this order, as PaddleOCR does
    "std": _IMAGENET_STD,
}
_DB_PARAMS = ("threshold", "box_threshold", "unclip_ratio", "max_candidates", "min_size", "dilate")


@dataclass(frozen=True)
class _Prepared:
    """A padded BGR batch and, per image, its original and resized size.

    Attributes:
        tensor: float32 (N, 3, H, W), H and W multiples of 32.
        original: int (N, 2) ``(height, width)`` of each input image.
        resized: int (N, 2) ``(height, width)`` of each image inside ``tensor`` (top-left aligned).
    """

    tensor: np.ndarray
    original: np.ndarray
    resized: np.ndarray


class DBTextDetector(TextDetectionModel):
    """Differentiable-Binarization text detector (PaddleOCR ``det`` models, e.g. PP-OCRv4/v6).

    Each image is resized so that both sides are multiples of 32 (by default the short side is brought up to at
    least ``limit_side_len`` = 736 px, as RapidOCR and PaddleOCR's ``limit_type="min"`` do), normalised with
    ImageNet mean/std on its BGR channels (PaddleOCR's; RapidOCR's config uses 0.5/0.5) and run; the probability
    map is decoded into rotated quadrilaterals (see :mod:`im_models.ocr._db`). Results: one :class:`Detections`
    per image, class ``"text"``, ``xyxy`` the polygon bounds, ``data["polygon"]`` float32 (N, 4, 2) corners
    (top-left, top-right, bottom-right, bottom-left) in original pixels, in reading order.

    Call parameters: ``threshold``, ``box_threshold`` (alias ``confidence``), ``unclip_ratio``,
    ``max_candidates``, ``min_size``, ``dilate``.
    """

    #: keyword arguments of ``from_pretrained`` this family reads when it is built
    LOAD_OPTIONS = frozenset(_DEFAULTS)
    CALL_PARAMS = dict.fromkeys(("confidence", *_DB_PARAMS), "post")

    def __init__(self, session: Session, info: LoadedModelInfo, config: dict[str, Any]) -> None:
        self.session = session
        self.metadata = info
        self._input = session.inputs[0].name
        self._output = session.outputs[0].name
        self._limit = int(config["limit_side_len"])
        self._limit_type = str(config["limit_type"])
        self._max_side = int(config["max_side_len"])
        shape = session.inputs[0].shape
        fixed = len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[2:])
        self._fixed: tuple[int, int] | None = (int(shape[2]), int(shape[3])) if fixed else None  # type: ignore[arg-type]
        if self._limit_type not in ("max", "min"):
            raise InvalidParameterError(f"limit_type must be 'max' or 'min', got {self._limit_type!r}.")
        self._params = DBParams(**{k: config[k] for k in _DB_PARAMS})
        self._scale: np.ndarray = (1.0 / (255.0 * np.asarray(config["std"], np.float32))).reshape(3, 1, 1)
        self._shift: np.ndarray = (
            np.asarray(config["mean"], np.float32) / np.asarray(config["std"], np.float32)
        ).reshape(3, 1, 1)

    @classmethod
    def from_package(cls, ctx: PackageContext) -> DBTextDetector:
        config = settings(ctx, _DEFAULTS)
        session = ctx.load_session(ctx.network_file())
        return cls(session, ctx.info(class_names=ctx.class_names(session, count=1) or ("text",)), config)

    def _resized_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` the network sees: multiples of 32, aspect ratio kept as far as rounding allows.

        For a graph with a fixed input size, the image is fitted inside it (aspect kept) and padded instead.
        """
        if self._fixed is not None:
            fh, fw = self._fixed
            ratio = min(fh / height, fw / width)
            return min(max(round(height * ratio), 1), fh), min(max(round(width * ratio), 1), fw)
        longest, shortest = max(height, width), min(height, width)
        ratio = min(1.0, self._limit / longest) if self._limit_type == "max" else max(1.0, self._limit / shortest)
        if longest * ratio > self._max_side:
            ratio = self._max_side / longest
        # truncate, then round to a multiple of 32, as PaddleOCR's DetResizeForTest does
        h = max(round(int(height * ratio) / 32.0) * 32, 32)
        w = max(round(int(width * ratio) / 32.0) * 32, 32)
        return h, w

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        # a batch is padded to its largest resized image: only images resized alike share one
        return self._fixed or self._resized_size(image.height, image.width)

    def pre_process(self, images: list[Image], **params: Any) -> _Prepared:
        import cv2

        sizes = np.array([self._resized_size(im.height, im.width) for im in images], np.int64)
        canvas = self._fixed or (int(sizes[:, 0].max()), int(sizes[:, 1].max()))
        tensor = np.zeros((len(images), 3, *canvas), np.float32)
        for i, (im, (h, w)) in enumerate(zip(images, sizes.tolist())):
            resized = cv2.resize(im.pixels, (w, h), interpolation=cv2.INTER_LINEAR)
            # channel order is fixed on the small image, never on the full frame
            tensor[i, :, :h, :w] = (resized if im.color == "bgr" else resized[..., ::-1]).transpose(2, 0, 1)
        tensor *= self._scale
        tensor -= self._shift
        original = np.array([(im.height, im.width) for im in images], np.int64)
        return _Prepared(tensor, original, sizes)

    def forward(self, prepared: _Prepared) -> np.ndarray:
        out = self.session.run({self._input: prepared.tensor}, [self._output])[self._output]
        return to_numpy(out)

    def _call_params(self, params: dict[str, Any]) -> DBParams:
        params = dict(params)
        if "confidence" in params:
            params["box_threshold"] = params.pop("confidence")
        return replace(self._params, **params) if params else self._params

    def post_process(self, raw: np.ndarray, prepared: _Prepared, **params: Any) -> list[Detections]:
        db = self._call_params(params)
        results = []
        for prob, (oh, ow), (rh, rw) in zip(raw[:, 0], prepared.original.tolist(), prepared.resized.tolist()):
            quads, scores = db_boxes(prob[:rh, :rw], db)
            order = reading_order(quads)
            quads, scores = quads[order], scores[order]
            scale = np.array([ow / rw, oh / rh], np.float32)
            quads = np.clip(np.rint(quads * scale), 0, [ow, oh]).astype(np.float32)
            xyxy = np.concatenate([quads.min(axis=1), quads.max(axis=1)], axis=1).reshape(-1, 4)
            results.append(
                Detections(
                    xyxy=xyxy,
                    confidence=scores,
                    class_id=np.zeros(len(scores), np.int64),
                    class_names=self.class_names,
                    data={"polygon": quads},
                )
            )
        return results
