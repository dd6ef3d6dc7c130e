"""Oriented-box detection (Ultralytics ``-obb`` exports: YOLOv8/11 OBB, YOLO26 OBB): rotated boxes with an angle."""

from __future__ import annotations

from typing import Any

import numpy as np

from im_core import Detections, Image, ObjectDetectionModel, PackageContext
from im_core.errors import CorruptedModelPackageError
from im_core.sdk import LoadedModelInfo
from im_models.common import (
    DETECTION_PARAMS,
    DetectorPackage,
    ImageTransform,
    Prepared,
    canvas_key_of,
    class_count_error,
    load_detector_package,
    pre_process_images,
    resolve_class_names,
    resolve_detection_params,
    rotated_nms,
    run_session,
    static_dim,
    xywhr_to_corners,
)
from im_models.yolo._decode import (
    Candidates,
    anchor_free_candidates,
    decode_fused,
    fused_layout,
    warn_fused_nms_params,
)

__all__ = ["YOLOOrientedDetection", "oriented_detections"]


def oriented_detections(
    xywhr: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, t: ImageTransform, names: list[str]
) -> Detections:
    """Rotated boxes in network pixels → :class:`Detections` in original pixels.

    The centre is mapped like a point, ``w`` and ``h`` are divided by the horizontal and vertical scale (as
    Ultralytics scales them), the angle is kept. ``data["xywhr"]``: float32 (N, 5) ``cx, cy, w, h, angle``
    (radians); ``data["xyxyxyxy"]``: float32 (N, 4, 2) corners (not clipped; supervision's
    ``ORIENTED_BOX_COORDINATES`` key); ``xyxy``: the corners' axis-aligned bounds, clipped to the image.
    """
    out = np.array(xywhr, np.float32).reshape(-1, 5)
    out[:, :2] = t.points_to_original(out[:, :2])
    out[:, 2] /= np.float32(t.scale_x)
    out[:, 3] /= np.float32(t.scale_y)
    corners = xywhr_to_corners(out)
    bounds = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1) if len(out) else np.zeros((0, 4))
    x0, y0, x1, y1 = t.region
    xyxy = np.clip(bounds, (x0, y0, x0, y0), (x1, y1, x1, y1)).astype(np.float32)
    return Detections(xyxy, scores, class_ids, names, data={"xyxyxyxy": corners, "xywhr": out})


class YOLOOrientedDetection(ObjectDetectionModel):
    """Oriented boxes from an Ultralytics-layout OBB model.

    Outputs handled: (B, 4 + C + 1, N) anchor-free (``cx, cy, w, h``, C class scores, the angle in radians),
    decoded here with Ultralytics' rotated NMS (probabilistic IoU, Fast-NMS: :func:`im_models.common.rotated_nms`);
    or (B, N, 7) rows ``cx cy w h score class angle`` when the export has NMS in the graph (``nms=True``) or an
    end-to-end head (YOLO26), which are only thresholded. The output layout decides, not the architecture name.

    Results: ``xyxy`` the axis-aligned bounds of each rotated box (clipped to the image), ``data["xyxyxyxy"]``
    (N, 4, 2) the corners and ``data["xywhr"]`` (N, 5) centre, size and angle (radians), in original pixels;
    ``to_supervision()`` carries the corners as supervision's oriented-box coordinates.

    Call parameters: those of :class:`~im_models.yolo._detection.YOLODetection`; ``iou_threshold`` is a
    probabilistic IoU between rotated boxes. Defaults: the package's recommended parameters, else confidence 0.25,
    IoU 0.7, 300 detections.
    """

    task = "oriented-object-detection"
    LOAD_OPTIONS = frozenset()  # no keyword arguments of from_pretrained: parameters are given per call

    CALL_PARAMS = {"image_size": "pre", **dict.fromkeys(DETECTION_PARAMS, "post")}

    def __init__(self, package: DetectorPackage, info: LoadedModelInfo) -> None:
        self.package = package
        self.metadata = info

    @classmethod
    def from_package(cls, ctx: PackageContext) -> YOLOOrientedDetection:
        package = load_detector_package(ctx)
        shape = package.session.outputs[0].shape if package.session.outputs else ()
        num = None
        if not fused_layout(shape, 1, package.fused_nms):
            channels = static_dim(shape, 1)
            num = None if channels is None else channels - 5
        names = resolve_class_names(list(ctx.class_names(package.session, count=num)), num, "oriented-box", shape)
        return cls(package, ctx.info(names))

    def pre_process(self, images: list[Image], **params: Any) -> Prepared:
        return pre_process_images(self.package, images, params)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return canvas_key_of(self.package, image, params)

    def forward(self, prepared: Prepared) -> list[Any]:
        return run_session(self.package, prepared)

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[Detections]:
        """``raw``: numpy arrays or torch tensors (candidates selected on their device, NMS on the CPU)."""
        out = raw[0]
        names = list(self.class_names)
        if out.ndim != 3:
            raise CorruptedModelPackageError(
                f"Expected a (B, 4 + C + 1, N) or (B, N, 7) oriented-box output, got {tuple(out.shape)}."
            )
        p = resolve_detection_params(params, names, len(names), recommended=self.package.recommended)
        fused = fused_layout(tuple(out.shape), 1, self.package.fused_nms)
        if fused:
            warn_fused_nms_params(params, self.package.features.get("nms_fused"))
        elif out.shape[1] != 5 + len(names):
            raise class_count_error("oriented-box", out.shape[1] - 5, tuple(out.shape), len(names))
        results = []
        for i, t in enumerate(prepared.transforms):
            if fused:
                c = decode_fused(out[i], p, len(names))  # rows: cx cy w h score class angle
            else:
                c = _rotated_select(anchor_free_candidates(out[i], len(names), p), p)
            xywhr = np.concatenate([c.xyxy, c.extras[:, :1]], axis=1)
            results.append(oriented_detections(xywhr, c.scores, c.class_ids, t, names))
        return results


def _rotated_select(c: Candidates, p: Any) -> Candidates:
    """Rotated NMS (class-aware unless ``class_agnostic``) and ``max_detections`` over the candidates."""
    if len(c.scores) == 0:
        return c
    xywhr = np.concatenate([c.xyxy, c.extras[:, :1]], axis=1)
    keep = rotated_nms(
        xywhr,
        c.scores,
        p.iou_threshold,
        class_ids=None if p.class_agnostic else c.class_ids,
        max_detections=p.max_detections,
    )
    return Candidates(c.xyxy[keep], c.scores[keep], c.class_ids[keep], c.extras[keep])
