"""YOLOv5 object detection: anchor-based output (B, N, 5 + C) with objectness (score = objectness × class)."""

from __future__ import annotations

from typing import Any

from im_core import Detections, PackageContext
from im_models.common import (
    class_count_error,
    load_detector_package,
    resolve_class_names,
    resolve_detection_params,
    static_dim,
)
from im_models.yolo._decode import decode_fused, decode_yolov5
from im_models.yolo._detection import YOLODetection, to_detections

__all__ = ["YOLOv5Detection"]


class YOLOv5Detection(YOLODetection):
    """YOLOv5 (and YOLOv7-style) exports: rows ``cx cy w h objectness p_1 … p_C`` in network pixels.

    Same call parameters as :class:`~im_models.yolo._detection.YOLODetection`.
    """

    @classmethod
    def from_package(cls, ctx: PackageContext) -> YOLOv5Detection:
        package = load_detector_package(ctx)
        shape = package.session.outputs[0].shape if package.session.outputs else ()
        width = None if package.fused_nms else static_dim(shape, 2)
        num = None if width is None else width - 5
        names = resolve_class_names(list(ctx.class_names(package.session, count=num)), num, "YOLOv5", shape)
        return cls(package, ctx.info(names))

    def post_process(self, raw: list[Any], prepared: Any, **params: Any) -> list[Detections]:
        out = raw[0]
        names = list(self.class_names)
        p = resolve_detection_params(params, names, len(names), recommended=self.package.recommended)
        results = []
        for i in range(len(prepared.transforms)):
            if self.fused:
                cands = decode_fused(out[i], p, len(names))
            else:
                if out.ndim != 3 or out.shape[2] != 5 + len(names):
                    raise class_count_error("YOLOv5", out.shape[-1] - 5, tuple(out.shape), len(names))
                cands = decode_yolov5(out[i], len(names), p)
            results.append(to_detections(cands, prepared, i, names))
        return results
