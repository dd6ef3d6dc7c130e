"""YOLOv8 / YOLO11 / YOLO12 object detection (Ultralytics export layout), plus NMS-fused and end-to-end exports."""

from __future__ import annotations

from typing import Any

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
    static_dim,
)
from im_models.yolo._decode import (
    Candidates,
    decode_anchor_free,
    decode_fused,
    fused_layout,
    warn_fused_nms_params,
)

__all__ = ["YOLODetection", "to_detections"]


def to_detections(cands: Candidates, prepared: Prepared, index: int, names: list[str], **kw: Any) -> Detections:
    """Candidates of image ``index`` (network pixels) → :class:`Detections` in original pixels."""
    xyxy = prepared.transforms[index].boxes_to_original(cands.xyxy)
    return Detections(xyxy, cands.scores, cands.class_ids, names, **kw)


class YOLODetection(ObjectDetectionModel):
    """Boxes from an Ultralytics-layout detector.

    Outputs handled: (B, 4 + C, N) anchor-free (decoded here, with NMS), or (B, N, 6) when the export has NMS in
    the graph or is end-to-end (YOLOv10, YOLO26): ``x1 y1 x2 y2 score class``, no NMS here. The output's layout
    decides which, not the architecture name (a YOLO26 export with its one-to-many head is decoded with NMS).

    Call parameters: ``confidence`` (float, or ``{class: threshold}``), ``iou_threshold``, ``max_detections``,
    ``class_agnostic``, ``class_filter`` (names or ids), ``pre_nms_top_k``, ``image_size``.
    Defaults: the package's recommended parameters, else confidence 0.25, IoU 0.7, 300 detections.
    """

    LOAD_OPTIONS = frozenset()  # no keyword arguments of from_pretrained: parameters are given per call

    CALL_PARAMS = {"image_size": "pre", **dict.fromkeys(DETECTION_PARAMS, "post")}
    end_to_end: bool = False

    def __init__(self, package: DetectorPackage, info: LoadedModelInfo) -> None:
        self.package = package
        self.metadata = info
        self.fused = package.fused_nms or self.end_to_end

    @classmethod
    def from_package(cls, ctx: PackageContext) -> YOLODetection:
        package = load_detector_package(ctx)
        shape = package.session.outputs[0].shape if package.session.outputs else ()
        fused = fused_layout(shape, 0, package.fused_nms or cls.end_to_end)
        channels = None if fused else static_dim(shape, 1)
        num = None if channels is None else channels - 4
        names = resolve_class_names(list(ctx.class_names(package.session, count=num)), num, "detection", shape)
        return cls(package, ctx.info(names))

    def pre_process(self, images: list[Image], **params: Any) -> Prepared:
        return pre_process_images(self.package, images, params)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return canvas_key_of(self.package, image, params)

    def forward(self, prepared: Prepared) -> list[Any]:
        return run_session(self.package, prepared)

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[Detections]:
        """``raw``: numpy arrays or torch tensors (reduced on their device, see :func:`decode_anchor_free`)."""
        out = raw[0]
        names = list(self.class_names)
        p = resolve_detection_params(params, names, len(names), recommended=self.package.recommended)
        if out.ndim != 3:
            raise CorruptedModelPackageError(
                f"Expected a (B, 4 + C, N) or (B, N, 6) detection output, got {tuple(out.shape)}."
            )
        fused = fused_layout(tuple(out.shape), 0, self.fused)  # the layout decides, not the architecture name
        if fused:
            warn_fused_nms_params(params, self.package.features.get("nms_fused"))
        results = []
        for i in range(len(prepared.transforms)):
            if fused:
                if out.shape[2] < 6:
                    raise CorruptedModelPackageError(
                        f"An NMS-fused output needs (B, N, 6) rows, got {tuple(out.shape)}."
                    )
                cands = decode_fused(out[i], p, len(names))
            else:
                if out.shape[1] != 4 + len(names):
                    raise class_count_error("detection", out.shape[1] - 4, tuple(out.shape), len(names))
                cands = decode_anchor_free(out[i], len(names), p)
            results.append(to_detections(cands, prepared, i, names))
        return results
