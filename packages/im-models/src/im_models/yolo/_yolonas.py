"""YOLO-NAS object detection (super-gradients ONNX export layout).

Without NMS in the graph the export gives two outputs: boxes (B, A, 4) ``x1 y1 x2 y2`` in network-input pixels and
class scores (B, A, C) (probabilities). Each anchor takes its best class, then thresholds and class-aware NMS run
here, as in the reference (``run_yolonas_nms_for_object_detection``, inference-models 0.39.6 models/yolonas/nms.py).

With NMS in the graph (``export(..., postprocessing=True)``) super-gradients gives either the *flat* format, one
(M, 7) output of rows ``image_index x1 y1 x2 y2 score class``, or the *batch* format, four outputs
``num_predictions (B, 1)``, ``boxes (B, K, 4)``, ``scores (B, K)``, ``classes (B, K)``; no NMS is run here (a
call-time ``iou_threshold`` warns), thresholds, class filter and ``max_detections`` still apply.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from im_core import Detections, Image, ObjectDetectionModel, PackageContext
from im_core.errors import CorruptedModelPackageError
from im_core.sdk import LoadedModelInfo
from im_models.common import (
    DETECTION_PARAMS,
    DetectorPackage,
    Prepared,
    canvas_key_of,
    class_count_error,
    load_detector_package,
    pre_process_images,
    resolve_class_names,
    resolve_detection_params,
    run_session,
    select_detections,
    static_dim,
    to_numpy,
)
from im_models.yolo._decode import warn_fused_nms_params

__all__ = ["YOLONASDetection", "yolonas_layout"]


def yolonas_layout(shapes: list[tuple[Any, ...]]) -> str:
    """``"raw"`` (boxes + scores), ``"flat"`` (one (M, 7) output) or ``"batch"`` (four outputs) from the output
    shapes (ints or symbolic dims)."""
    if len(shapes) == 2 and all(len(s) == 3 for s in shapes):
        return "raw"
    if len(shapes) == 1 and len(shapes[0]) == 2:
        return "flat"
    if len(shapes) == 4:
        return "batch"
    raise CorruptedModelPackageError(
        "A YOLO-NAS export gives boxes (B, A, 4) + scores (B, A, C), or with NMS in the graph one (M, 7) output or "
        f"four (num_predictions, boxes, scores, classes) outputs; got {shapes}."
    )


class YOLONASDetection(ObjectDetectionModel):
    """YOLO-NAS detector (``yolonas`` / ``object-detection``).

    Call parameters: as :class:`~im_models.yolo._detection.YOLODetection`. Defaults: the package's recommended
    parameters, else confidence 0.25, IoU 0.7, 300 detections.
    """

    LOAD_OPTIONS = frozenset()
    CALL_PARAMS = {"image_size": "pre", **dict.fromkeys(DETECTION_PARAMS, "post")}

    def __init__(self, package: DetectorPackage, info: LoadedModelInfo, layout: str) -> None:
        self.package = package
        self.metadata = info
        self.layout = layout

    @classmethod
    def from_package(cls, ctx: PackageContext) -> YOLONASDetection:
        package = load_detector_package(ctx)
        outs = package.session.outputs
        layout = yolonas_layout([tuple(o.shape) for o in outs])
        num = None
        if layout == "raw":
            scores = next((o for o in outs if static_dim(o.shape, 2) != 4), outs[1])
            num = static_dim(scores.shape, 2)
        names = resolve_class_names(list(ctx.class_names(package.session, count=num)), num, "scores", ())
        return cls(package, ctx.info(names), layout)

    def pre_process(self, images: list[Image], **params: Any) -> Prepared:
        return pre_process_images(self.package, images, params)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return canvas_key_of(self.package, image, params)

    def forward(self, prepared: Prepared) -> list[Any]:
        return run_session(self.package, prepared)

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[Detections]:
        names = list(self.class_names)
        p = resolve_detection_params(params, names, len(names), recommended=self.package.recommended)
        if self.layout != "raw":
            warn_fused_nms_params(params, self.package.features.get("nms_fused"))
        per_image = self._rows(raw, len(prepared.transforms), len(names))
        results = []
        for t, (boxes, scores, cls) in zip(prepared.transforms, per_image):
            keep = select_detections(boxes, scores, cls, p, run_nms=self.layout == "raw")
            results.append(Detections(t.boxes_to_original(boxes[keep]), scores[keep], cls[keep], names))
        return results

    def _rows(self, raw: list[Any], batch: int, num_classes: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per image: ``(boxes (N, 4) network px, scores (N,), class ids (N,))`` before selection."""
        arrays = [np.asarray(to_numpy(r), np.float32) for r in raw]
        if self.layout == "raw":
            boxes = next((a for a in arrays if a.shape[2] == 4), arrays[0])
            scores = next(a for a in arrays if a is not boxes)
            if scores.shape[2] != num_classes:
                raise class_count_error("scores", scores.shape[2], scores.shape, num_classes)
            cls = scores.argmax(axis=2)
            best = np.take_along_axis(scores, cls[..., None], axis=2)[..., 0]
            return [(boxes[i], best[i], cls[i]) for i in range(batch)]
        if self.layout == "flat":
            rows = arrays[0]
            if rows.shape[1] != 7:
                raise CorruptedModelPackageError(f"A flat YOLO-NAS NMS output has 7 columns, got {rows.shape}.")
            out = []
            for i in range(batch):
                r = rows[(rows[:, 0] == i) & (rows[:, 6] >= 0) & (rows[:, 6] < num_classes)]
                out.append((r[:, 1:5], r[:, 5], r[:, 6].astype(np.int64)))
            return out
        num, boxes, scores, classes = arrays
        out = []
        for i in range(batch):
            n = int(num[i].reshape(-1)[0])
            c = classes[i, :n].astype(np.int64)
            ok = (c >= 0) & (c < num_classes)
            out.append((boxes[i, :n][ok], scores[i, :n][ok], c[ok]))
        return out
