"""RF-DETR / DETR-style object detection: normalised ``cx cy w h`` boxes + class logits, sigmoid, top-k, no NMS."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from im_core import Detections, Image, ObjectDetectionModel, PackageContext
from im_core.errors import CorruptedModelPackageError
from im_core.sdk import LoadedModelInfo
from im_models.common import (
    DETECTION_PARAMS,
    DetectionParams,
    DetectorPackage,
    ImageTransform,
    InferenceConfig,
    NetworkInput,
    Prepared,
    array_ops,
    canvas_key_of,
    class_names_remapping,
    load_detector_package,
    pre_process_images,
    resolve_detection_params,
    run_session,
    static_dim,
    substitute_fit_longer_edge,
    top_pairs,
    xywh_to_xyxy,
)

__all__ = ["DETRDetection", "decode_detr", "detr_boxes", "select_detr", "split_detr_outputs"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def split_detr_outputs(raw: list[Any]) -> tuple[Any, Any]:
    """``(boxes (B, Q, 4), logits (B, Q, C))`` from the session outputs (recognised by their last axis; numpy
    arrays or torch tensors)."""
    boxes = [r for r in raw if r.ndim == 3 and r.shape[2] == 4]
    logits = [r for r in raw if r.ndim == 3 and not (r.shape[2] == 4 and any(r is b for b in boxes[:1]))]
    if len(boxes) < 1 or len(logits) != 1:
        raise CorruptedModelPackageError(
            f"A DETR-style model needs a (B, Q, 4) box output and a (B, Q, C) logit output; got "
            f"{[tuple(r.shape) for r in raw]}."
        )
    return boxes[0], logits[0]


def select_detr(logits: Any, num_classes: int, params: DetectionParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image: (Q, C') logits → ``(query indices, class ids, scores)`` of the kept (query, class) pairs, best
    first.

    Scores are ``sigmoid(logit)`` for every (query, class) pair of the classes the class filter allows; the best
    ``max_detections`` pairs are taken (a query may appear with two classes, as in RF-DETR; ties: lower query, then
    lower class first), then the thresholds apply. Logit columns beyond ``num_classes`` are ignored (the
    reference drops these "no-object" rows too: ``post_process_object_detection_results``, inference-models 0.39.6
    models/rfdetr/common.py).

    ``logits`` may be a numpy array or a torch tensor: the top-k over the Q × C pairs runs where it lives
    (:func:`im_models.common.top_pairs`); only the k best logits are copied to the CPU.
    """
    ops = array_ops(logits)
    lg = ops.float32(logits[:, :num_classes])
    allowed = None
    if params.class_mask is not None:  # filter classes before the top-k, so filtered classes never take its places
        allowed = np.flatnonzero(params.class_mask[:num_classes])
        lg = lg[:, ops.table(allowed, lg)]
    k = min(params.max_detections, lg.shape[0] * lg.shape[1])
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    q_dev, cls_dev = top_pairs(lg, k, ops)
    top_logits = ops.numpy(lg[q_dev, cls_dev])  # the k ≤ max_detections best pairs, best first
    q = ops.numpy(q_dev, np.int64)
    cls = ops.numpy(cls_dev, np.int64)
    if allowed is not None:
        cls = allowed[cls]
    scores = 1.0 / (1.0 + np.exp(-top_logits))
    ok = scores >= params.thresholds[cls]
    return q[ok], cls[ok], scores[ok].astype(np.float32)


def detr_boxes(boxes: Any, queries: np.ndarray, t: ImageTransform) -> np.ndarray:
    """(Q, 4) normalised ``cx cy w h`` (numpy or torch) of the chosen ``queries`` → float32 (N, 4) ``x1 y1 x2 y2``
    in original pixels (scaled to the network input, then through the image's transform)."""
    ops = array_ops(boxes)
    xyxy = xywh_to_xyxy(ops.numpy(boxes[ops.table(queries, boxes)]).reshape(-1, 4))
    xyxy[:, 0::2] *= t.input_width
    xyxy[:, 1::2] *= t.input_height
    return t.boxes_to_original(xyxy)


def decode_detr(
    boxes: Any, logits: Any, num_classes: int, params: DetectionParams, t: ImageTransform
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image: (Q, 4) normalised cxcywh + (Q, C') logits → ``(xyxy original px, scores, class_ids)``
    (:func:`select_detr`, then :func:`detr_boxes`)."""
    q, cls, scores = select_detr(logits, num_classes, params)
    return detr_boxes(boxes, q, t), scores, cls


class DETRDetection(ObjectDetectionModel):
    """RF-DETR and other DETR-style detectors.

    Package: Roboflow layout (``inference_config.json``: usually stretch to 560×560 with ImageNet normalisation),
    or a bare export, for which stretch to the graph's input size, RGB, /255 and ImageNet mean/std are assumed.

    Call parameters: ``confidence``, ``max_detections`` (top-k over query×class pairs), ``class_filter``
    (``iou_threshold``, ``class_agnostic`` and ``pre_nms_top_k`` are accepted and unused: there is no NMS).
    """

    LOAD_OPTIONS = frozenset()  # no keyword arguments of from_pretrained: parameters are given per call

    CALL_PARAMS = {"image_size": "pre", **dict.fromkeys(DETECTION_PARAMS, "post")}

    def __init__(self, package: DetectorPackage, info: LoadedModelInfo, network_names: list[str] | None = None) -> None:
        self.package = package
        self.metadata = info
        # class_names_operations: the network's classes, and each one's id among the names kept (-1 = removed)
        self._network_names = network_names
        self._remap = (
            None
            if network_names is None
            else class_names_remapping(network_names, package.config.removed_class_names)[1]
        )

    @classmethod
    def from_package(cls, ctx: PackageContext) -> DETRDetection:
        package = load_detector_package(ctx)
        if package.layout == "ultralytics":  # a bare file: DETR defaults, not YOLO's letterbox
            net = package.config.network_input
            shape = package.session.inputs[0].shape
            h, w = static_dim(shape, 2), static_dim(shape, 3)
            size = (h, w) if h and w else (ctx.package.input_size or (560, 560))
            detr = NetworkInput(
                height=size[0],
                width=size[1],
                resize_mode="stretch",
                padding_value=0,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
                dtype=net.dtype,
            )
            package.config = InferenceConfig(network_input=detr)
            package.rect = False
        names = list(package.class_names)  # ctx.class_names(session): logits may hold one more (background) class
        logits = [o for o in package.session.outputs if len(o.shape) == 3 and static_dim(o.shape, 2) != 4]
        c = static_dim(logits[0].shape, 2) if logits else None
        if c is not None:
            if not names:
                names = [str(i) for i in range(c)]
            elif c < len(names):  # (fewer names than logits is fine: DETR heads may add a background class)
                ctx.class_names(package.session, count=c)  # raises, naming class_names=, the file or the metadata
                raise CorruptedModelPackageError(
                    f"The package lists {len(names)} class names but the network's logits have only {c} classes."
                )
        if package.layout == "roboflow" and ctx.metadata.architecture.lower() in ("rfdetr", "rf-detr"):
            substitute_fit_longer_edge(package, "RF-DETR", "stretch")
        package.config = replace(package.config, network_input=replace(package.config.network_input, dynamic=False))
        removed = package.config.removed_class_names
        if removed:
            kept, _ = class_names_remapping(names, removed)
            return cls(package, ctx.info(kept), network_names=names)
        return cls(package, ctx.info(names))

    def pre_process(self, images: list[Image], **params: Any) -> Prepared:
        return pre_process_images(self.package, images, params)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return canvas_key_of(self.package, image, params)

    def forward(self, prepared: Prepared) -> list[Any]:
        return run_session(self.package, prepared)

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[Detections]:
        boxes, logits = split_detr_outputs(raw)
        names = list(self._network_names or self.class_names)
        if logits.shape[2] < len(names):
            raise CorruptedModelPackageError(
                f"The package lists {len(names)} class names but the logits output has shape {tuple(logits.shape)}."
            )
        p = resolve_detection_params(params, names, len(names), recommended=self.package.recommended, confidence=0.5)
        results = []
        for i, t in enumerate(prepared.transforms):
            xyxy, scores, cls = decode_detr(boxes[i], logits[i], len(names), p, t)
            if self._remap is not None:  # classes removed by class_names_operations: dropped, the rest renumbered
                new = self._remap[cls]
                keep = new >= 0
                xyxy, scores, cls = xyxy[keep], scores[keep], new[keep]
            results.append(Detections(xyxy, scores, cls, list(self.class_names)))
        return results
