"""YOLOv8/11 classification (Ultralytics ``classify`` exports and Roboflow packages): scores → Classification."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from im_core import Classification, ClassificationModel, Image, PackageContext
from im_core.sdk import LoadedModelInfo
from im_models.common import (
    DetectorPackage,
    Prepared,
    canvas_key_of,
    class_count_error,
    load_detector_package,
    pre_process_images,
    resolve_class_names,
    run_session,
    static_dim,
    to_numpy,
)

__all__ = ["YOLOClassification", "as_probabilities"]


def as_probabilities(scores: np.ndarray, how: str = "auto") -> np.ndarray:
    """float (B, C) → float32 (B, C) probabilities.

    ``how``: ``"softmax"`` (logits), ``"none"`` (already probabilities), or ``"auto"``: rows already in [0, 1] that
    sum to 1 (Ultralytics exports end with a softmax) are kept, anything else goes through a softmax.
    """
    s = np.asarray(scores, np.float32)
    if how == "none":
        return s
    if how == "auto" and s.size and s.min() >= 0 and s.max() <= 1 and np.allclose(s.sum(axis=1), 1.0, atol=1e-3):
        return s
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class YOLOClassification(ClassificationModel):
    """Single-label classification. Output (B, C); pre-processing per the package. A bare Ultralytics export is
    pre-processed as Ultralytics classifies: the shorter side scaled to the export size, the centre kept (no
    letterbox), RGB, /255, always at the square training size even when the graph accepts any size (OpenCV's
    bilinear resize where Ultralytics uses torchvision's antialiased one: scores agree closely, not bit for bit).

    Call parameters: ``image_size``. Use ``result.top_k(k)`` for the k best classes.
    """

    LOAD_OPTIONS = frozenset()  # no keyword arguments of from_pretrained: parameters are given per call

    CALL_PARAMS = {"image_size": "pre"}

    def __init__(self, package: DetectorPackage, info: LoadedModelInfo) -> None:
        self.package = package
        self.metadata = info
        post = str(package.config.post_processing.get("type", "")).lower()
        self.activation = "softmax" if post == "softmax" and not package.config.fused_nms else "auto"

    @classmethod
    def from_package(cls, ctx: PackageContext) -> YOLOClassification:
        package = load_detector_package(ctx)
        if package.layout == "ultralytics":  # Ultralytics' classify transforms: shorter side, then the centre
            net = replace(package.config.network_input, resize_mode="resize-shorter-center-crop", dynamic=False)
            package.config = replace(package.config, network_input=net)
            package.rect = False
        shape = package.session.outputs[0].shape if package.session.outputs else ()
        num = static_dim(shape, 1)
        names = resolve_class_names(list(ctx.class_names(package.session, count=num)), num, "classification", shape)
        return cls(package, ctx.info(names))

    def pre_process(self, images: list[Image], **params: Any) -> Prepared:
        return pre_process_images(self.package, images, params)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return canvas_key_of(self.package, image, params)

    def forward(self, prepared: Prepared) -> list[Any]:
        return run_session(self.package, prepared)

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[Classification]:
        out = to_numpy(raw[0])  # (B, C): small, copied whole
        scores = out.reshape(out.shape[0], -1)
        names = list(self.class_names)
        if names and scores.shape[1] != len(names):
            raise class_count_error("classification", scores.shape[1], scores.shape, len(names))
        probs = as_probabilities(scores, self.activation)
        return [Classification(probs[i], names) for i in range(len(prepared.transforms))]
