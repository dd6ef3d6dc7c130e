"""Semantic segmentation from per-class logit maps: DeepLabV3+ (softmax) and RF-DETR (sigmoid) layouts.

The network gives (B, K, h, w) class logits covering its whole input (h × w is usually the input size, or a
quarter of it for RF-DETR). As the reference does (``post_process_semantic_segmentation_logits`` of
inference-models 0.39.6, models/common/roboflow/post_processing.py), the logits are brought back to the original
image first (letterbox padding removed, bilinearly resized), then each pixel takes the class of its largest logit;
its confidence is the softmax maximum (DeepLabV3+) or the sigmoid of the largest logit (RF-DETR, trained with
per-class BCE). Pixels whose confidence is below their class's threshold become the background class with
confidence 0. A package lists a ``background`` class (the reference requires it); when the network has one channel
fewer than the class names, the channels are the foreground classes in order and the background channel is absent.

Here the resize is one bilinear ``cv2.warpAffine`` per 4 channels from the logit map straight to the original
pixels (the image's :class:`~im_models.common.ImageTransform`, which already folds the static crop, the resize and
the padding), with a running argmax and a running softmax normaliser, so memory stays O(H × W) whatever K is.
Pixels outside the visible region (static crop) are background.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np

from im_core import Image, PackageContext, SemanticSegmentation, SemanticSegmentationModel
from im_core.errors import CorruptedModelPackageError
from im_core.sdk import LoadedModelInfo
from im_models.common import (
    DetectorPackage,
    ImageTransform,
    Prepared,
    canvas_key_of,
    load_detector_package,
    maps_to_original,
    pre_process_images,
    resolve_detection_params,
    run_session,
    static_dim,
    substitute_fit_longer_edge,
    to_numpy,
)

__all__ = [
    "DeepLabV3PlusSegmentation",
    "RFDETRSemanticSegmentation",
    "SemanticSegmenter",
    "YOLO26SemanticSegmentation",
    "decode_semantic",
]

Activation = Literal["softmax", "sigmoid"]


def decode_semantic(
    logits: np.ndarray,
    t: ImageTransform,
    *,
    activation: Activation,
    num_classes: int,
    background_class_id: int | None,
    thresholds: np.ndarray | None,
    resize: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One image: float (K, h, w) logits → ``(class_map int64 (H, W), confidence float32 (H, W))``.

    Args:
        logits: class logits covering the network input (K = ``num_classes``, or ``num_classes - 1`` when the
            network has no background channel; K = 1: a binary head, sigmoid of the foreground).
        t: the image's transform (original pixels → network pixels).
        activation: ``"softmax"`` (confidence = softmax maximum) or ``"sigmoid"`` (sigmoid of the largest logit).
        num_classes: the number of class names (background included).
        background_class_id: the class of pixels below their threshold (and outside the visible region); ``None``
            for a model without a background class (SegFormer on ADE20K): every pixel keeps its best class, no
            threshold applies, and the whole image must be visible (``t.region`` the full image).
        thresholds: float32 (num_classes,) per-class confidence thresholds (a pixel needs confidence ≥ it);
            ignored without a background class.
        resize: maps float32 (k ≤ 4, h, w) → (k, H, W) at the original pixels; default :func:`maps_to_original`
            (one bilinear ``cv2.warpAffine`` through ``t``). SegFormer passes PyTorch's bilinear kernel
            (:func:`~im_models.common.resize_like_torch`) to equal ``post_process_semantic_segmentation``.
    """
    logits = np.asarray(logits, np.float32)
    k = logits.shape[0]
    h, w = t.original_height, t.original_width
    to_original = resize or (lambda maps: maps_to_original(maps, t))
    best = np.full((h, w), -np.inf, np.float32)
    arg = np.zeros((h, w), np.int64)
    norm = np.zeros((h, w), np.float32)  # softmax: sum of exp(logit - best), rescaled as best grows
    # plane by plane into preallocated buffers: numpy's axis-0 reductions (max, argmax, sum) over a few large planes,
    # and a fresh (H, W) temporary per step, cost 3-10x more than these in-place updates
    better, total, tmp = np.empty((h, w), bool), np.empty((h, w), np.float32), np.empty((h, w), np.float32)
    for start in range(0, k, 4):  # ≤ 4 channels per warp (OpenCV's limit): a running argmax and log-sum-exp
        chunk = to_original(logits[start : start + 4])
        if activation == "softmax":
            new_best = np.maximum(best, chunk[0])
            for plane in chunk[1:]:
                np.maximum(new_best, plane, out=new_best)
            np.exp(np.subtract(chunk[0], new_best, out=total), out=total)
            for plane in chunk[1:]:
                total += np.exp(np.subtract(plane, new_best, out=tmp), out=tmp)
            norm *= np.exp(np.subtract(best, new_best, out=tmp), out=tmp)
            norm += total
        for j, plane in enumerate(chunk):  # strict: the first channel reaching the maximum wins, as argmax does
            np.greater(plane, best, out=better)
            np.copyto(best, plane, where=better)
            np.copyto(arg, start + j, where=better)
    conf = 1.0 / norm if activation == "softmax" and k > 1 else 1.0 / (1.0 + np.exp(-best))
    conf = conf.astype(np.float32)
    if background_class_id is None:
        if k != num_classes:
            raise CorruptedModelPackageError(
                f"The network gives {k} class channels for {num_classes} class names; without a background class "
                "they must be equal. Fix the class names (config.json id2label)."
            )
        return arg, conf
    if k == 1:  # binary head: the lone channel is the foreground class
        arg = np.zeros((h, w), np.int64)
    foreground = np.array([i for i in range(num_classes) if i != background_class_id], np.int64)
    if k == num_classes - 1:
        arg = foreground[arg]
    elif k == 1 and num_classes == 2:
        arg = np.full((h, w), foreground[0], np.int64)
    elif k != num_classes:
        raise CorruptedModelPackageError(
            f"The network gives {k} class channels for {num_classes} class names (expected {num_classes}, or "
            f"{num_classes - 1} without a background channel). Fix class_names.txt (background first)."
        )
    below = conf < (np.zeros(num_classes, np.float32) if thresholds is None else thresholds)[arg]
    x0, y0, x1, y1 = t.region
    outside = np.ones((h, w), bool)
    outside[y0:y1, x0:x1] = False
    off = below | outside
    arg[off] = background_class_id
    conf[off] = 0.0
    return arg, conf


def _background_id(names: list[str]) -> int:
    """Index of the ``background`` class (case-insensitive), as the reference requires one."""
    lowered = [n.lower() for n in names]
    if "background" not in lowered:
        raise CorruptedModelPackageError(
            "A semantic segmentation package needs a `background` class in class_names.txt (pixels below the "
            f"confidence threshold get it); it lists {names[:10]}. Prepend `background` to the class names."
        )
    if len(names) < 2:
        raise CorruptedModelPackageError(
            f"A semantic segmentation package needs `background` plus at least one class; it lists {names}."
        )
    return lowered.index("background")


class SemanticSegmenter(SemanticSegmentationModel):
    """Per-pixel classes from a (B, K, h, w) logit map (DeepLabV3+ layout; subclasses set the activation).

    Package: Roboflow layout (``inference_config.json``, ``class_names.txt`` with a ``background`` class,
    ``weights.onnx``/TorchScript); the single output is the logit map.

    Call parameters: ``confidence`` (float, ``{class: threshold}``, ``"best"``/``"default"``): pixels whose
    confidence is below it become background.
    """

    LOAD_OPTIONS = frozenset()
    CALL_PARAMS: ClassVar[dict[str, str]] = {"image_size": "pre", "confidence": "post"}
    activation: ClassVar[Activation] = "softmax"
    default_confidence: ClassVar[float] = 0.5  # the reference's DeepLabV3+ default
    #: what a ``fit-longer-edge`` package is run with instead (the reference's substitution): (mode, padding)
    fit_longer_edge_as: ClassVar[tuple[str, int | None]] = ("letterbox", None)

    def __init__(self, package: DetectorPackage, info: LoadedModelInfo, background_class_id: int) -> None:
        self.package = package
        self.metadata = info
        self.background_class_id = background_class_id

    @classmethod
    def from_package(cls, ctx: PackageContext) -> SemanticSegmenter:
        package = load_detector_package(ctx)
        substitute_fit_longer_edge(package, cls.__name__, *cls.fit_longer_edge_as)
        outs = [o for o in package.session.outputs if len(o.shape) == 4]
        if len(outs) != 1:
            raise CorruptedModelPackageError(
                f"A semantic segmentation model needs one (B, K, h, w) logit output; got "
                f"{[tuple(o.shape) for o in package.session.outputs]}."
            )
        names = list(package.class_names)
        if not names:
            k = static_dim(outs[0].shape, 1)
            if k is None:
                raise CorruptedModelPackageError("The package has no class names; add class_names.txt.")
            names = ["background", *(str(i) for i in range(1, k))]
        return cls(package, ctx.info(names), _background_id(names))

    def pre_process(self, images: list[Image], **params: Any) -> Prepared:
        return pre_process_images(self.package, images, params)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return canvas_key_of(self.package, image, params)

    def forward(self, prepared: Prepared) -> list[Any]:
        return run_session(self.package, prepared)

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[SemanticSegmentation]:
        logits = next((r for r in raw if r.ndim == 4), None)
        if logits is None:
            raise CorruptedModelPackageError(
                f"Expected a (B, K, h, w) logit output, got {[tuple(r.shape) for r in raw]}."
            )
        names = list(self.class_names)
        p = resolve_detection_params(
            {"confidence": params.get("confidence")},
            names,
            len(names),
            recommended=self.package.recommended,
            confidence=self.default_confidence,
        )
        results = []
        for i, t in enumerate(prepared.transforms):
            class_map, conf = decode_semantic(
                to_numpy(logits[i]),
                t,
                activation=self.activation,
                num_classes=len(names),
                background_class_id=self.background_class_id,
                thresholds=p.thresholds,
            )
            results.append(SemanticSegmentation(class_map, conf, names, self.background_class_id))
        return results


class DeepLabV3PlusSegmentation(SemanticSegmenter):
    """DeepLabV3+ (``deep-lab-v3-plus``): softmax over the class logits, default confidence 0.5."""


class RFDETRSemanticSegmentation(SemanticSegmenter):
    """RF-DETR semantic segmentation: (B, K, H/4, W/4) logits, confidence = sigmoid of the top logit (the score
    the model is trained with, per-class BCE), default confidence 0.4 as the reference's
    ``INFERENCE_MODELS_RFDETR_SEMANTIC_SEGMENTATION_DEFAULT_CONFIDENCE``."""

    activation = "sigmoid"
    default_confidence = 0.4
    fit_longer_edge_as = ("stretch", None)


class YOLO26SemanticSegmentation(SemanticSegmenter):
    """YOLO26 semantic segmentation (``yolo26`` / ``semantic-segmentation``): softmax over the class logits, or the
    sigmoid of a single channel for a binary (``nc == 1``) head; default confidence 0.25 (the reference's YOLO26
    default)."""

    default_confidence = 0.25
    fit_longer_edge_as = ("letterbox", 127)
