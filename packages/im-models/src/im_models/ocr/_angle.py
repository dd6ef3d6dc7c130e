"""Text-line angle classifier (PaddleOCR ``cls``): is a cropped line upright (0°) or upside down (180°)?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from im_core import Classification, ClassificationModel, Image, LoadedModelInfo, PackageContext, Session
from im_models.common import as_probabilities, static_dim, to_numpy
from im_models.ocr._config import settings
from im_models.ocr._lines import line_batch

__all__ = ["TextAngleClassifier"]

_DEFAULTS: dict[str, Any] = {
    "image_height": 48,
    "image_width": 192,
    "classification_batch_size": 16,  # crops per network call (not from_pretrained's batch_size, a package filter)
    "flip_threshold": 0.9,
}
_RENAMED = {"batch_size": "classification_batch_size"}  # older ocr_config.json key


@dataclass(frozen=True)
class _Prepared:
    """tensor: float32 (N, 3, 48, 192) normalised crops, padded on the right."""

    tensor: np.ndarray


class TextAngleClassifier(ClassificationModel):
    """Tells whether a text-line crop is upright (class ``"0"``) or rotated 180° (class ``"180"``).

    Each crop (BGR) is resized to the network height keeping its aspect ratio and padded on the right to the
    network width (3×48×192 for PP-OCR's ``cls``); squashing a long line into the box instead makes the model
    say 180°, so padding matters. Scores are the network's softmax over ``("0", "180")``. A crop counts as upside
    down when class ``"180"`` wins with a probability of at least ``flip_threshold`` (load option, default 0.9;
    also in ``metadata.extra["flip_threshold"]``, which the ``ocr`` pipeline reads).
    """

    #: keyword arguments of ``from_pretrained`` this family reads when it is built
    LOAD_OPTIONS = frozenset(_DEFAULTS)
    CALL_PARAMS = {}

    def __init__(self, session: Session, info: LoadedModelInfo, config: dict[str, Any]) -> None:
        self.session = session
        self.metadata = info
        self._input = session.inputs[0].name
        self._output = session.outputs[0].name
        shape = session.inputs[0].shape
        self._height = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else int(config["image_height"])
        self._width = shape[3] if len(shape) == 4 and isinstance(shape[3], int) else int(config["image_width"])
        self._batch = int(config["classification_batch_size"])
        self.flip_threshold = float(config["flip_threshold"])

    @classmethod
    def from_package(cls, ctx: PackageContext) -> TextAngleClassifier:
        config = settings(ctx, _DEFAULTS, _RENAMED)
        session = ctx.load_session(ctx.network_file())
        count = static_dim(session.outputs[0].shape, 1) if session.outputs else None
        names = ctx.class_names(session, count=count) or ("0", "180")
        return cls(session, ctx.info(class_names=names, flip_threshold=float(config["flip_threshold"])), config)

    def canvas_key(self, image: Image, **params: Any) -> None:
        return None  # a fixed input size: every image gets the same canvas, so any images may share a batch

    def pre_process(self, images: list[Image], **params: Any) -> _Prepared:
        return _Prepared(line_batch([im.to("bgr") for im in images], self._height, self._width))

    def forward(self, prepared: _Prepared) -> np.ndarray:
        parts = [
            self.session.run({self._input: prepared.tensor[i : i + self._batch]}, [self._output])[self._output]
            for i in range(0, len(prepared.tensor), self._batch)
        ]
        return as_probabilities(np.concatenate([to_numpy(p) for p in parts]))

    def post_process(self, raw: np.ndarray, prepared: _Prepared, **params: Any) -> list[Classification]:
        return [Classification(row, self.class_names) for row in raw]

    def upside_down(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Which BGR crops are rotated 180° (class ``"180"`` with probability ≥ ``flip_threshold``): bool (N,)."""
        if not crops:
            return np.zeros(0, bool)
        probs = self.forward(_Prepared(line_batch(list(crops), self._height, self._width)))
        flipped = self.class_names.index("180") if "180" in self.class_names else 1
        return (probs.argmax(axis=1) == flipped) & (probs[:, flipped] >= self.flip_threshold)
