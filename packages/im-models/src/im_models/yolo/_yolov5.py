"""YOLOv5 (and YOLOv7) detection and instance segmentation: anchor-based rows (B, N, 5 + C [+ P]) with objectness
(score = objectness × class probability)."""

from __future__ import annotations

from typing import Any

import numpy as np

from im_core import Detections, PackageContext
from im_models.common import (
    class_count_error,
    instance_masks,
    load_detector_package,
    resolve_class_names,
    resolve_detection_params,
    static_dim,
    to_numpy,
)
from im_models.yolo._decode import decode_fused, decode_yolov5
from im_models.yolo._detection import YOLODetection, to_detections
from im_models.yolo._segmentation import YOLOSegmentation, split_segmentation_outputs

__all__ = ["YOLOv5Detection", "YOLOv5Segmentation"]


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


class YOLOv5Segmentation(YOLOSegmentation):
    """YOLOv5 and YOLOv7 instance segmentation (``yolov5-seg``, YOLOv7's ``u7`` seg exports): rows
    ``cx cy w h objectness p_1 … p_C m_1 … m_P`` (B, N, 5 + C + P) in network pixels, score = objectness × class
    probability, plus (B, P, H/4, W/4) prototypes; a YOLOv7 export's extra per-level (5-D) outputs are ignored.
    Masks as :class:`~im_models.yolo._segmentation.YOLOSegmentation` computes them (prototypes × coefficients,
    sigmoid, inside each box). Same call parameters.
    """

    @classmethod
    def from_package(cls, ctx: PackageContext) -> YOLOv5Segmentation:
        package = load_detector_package(ctx)
        outs = package.session.outputs
        det = next((o for o in outs if len(o.shape) == 3), None)
        proto = next((o for o in outs if len(o.shape) == 4), None)
        num = None
        if det is not None and proto is not None and not package.fused_nms:
            width, p = static_dim(det.shape, 2), static_dim(proto.shape, 1)
            num = None if width is None or p is None else width - 5 - p
        found = list(ctx.class_names(package.session, count=num))
        names = resolve_class_names(found, num, "YOLOv5 segmentation", det.shape if det else ())
        return cls(package, ctx.info(names))

    def post_process(self, raw: list[Any], prepared: Any, **params: Any) -> list[Detections]:
        dets, protos = split_segmentation_outputs(raw)
        names = list(self.class_names)
        p = resolve_detection_params(params, names, len(names), recommended=self.package.recommended)
        n_proto = protos.shape[1]
        fmt = params.get("mask_format", "dense")
        if not self.fused and dets.shape[2] != 5 + len(names) + n_proto:
            raise class_count_error("YOLOv5 segmentation", dets.shape[2] - 5 - n_proto, tuple(dets.shape), len(names))
        results = []
        for i, t in enumerate(prepared.transforms):
            cands = decode_fused(dets[i], p, len(names)) if self.fused else decode_yolov5(dets[i], len(names), p)
            xyxy = t.boxes_to_original(cands.xyxy)
            proto = to_numpy(protos[i]) if len(cands.scores) else np.zeros((n_proto, 1, 1), np.float32)
            masks = instance_masks(proto, cands.extras[:, :n_proto], xyxy, t, mask_format=fmt)
            results.append(Detections(xyxy, cands.scores, cands.class_ids, names, masks=masks))
        return results
