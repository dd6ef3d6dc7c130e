"""YOLOv8/11/12 instance segmentation: boxes + masks from prototype masks, computed only inside each box."""

from __future__ import annotations

from typing import Any

import numpy as np

from im_core import Detections, Image, InstanceSegmentationModel, PackageContext
from im_core.errors import CorruptedModelPackageError
from im_core.sdk import LoadedModelInfo
from im_models.common import (
    DETECTION_PARAMS,
    DetectorPackage,
    Prepared,
    canvas_key_of,
    class_count_error,
    instance_masks,
    load_detector_package,
    pre_process_images,
    resolve_class_names,
    resolve_detection_params,
    run_session,
    static_dim,
    to_numpy,
)
from im_models.yolo._decode import decode_anchor_free, decode_fused, fused_layout, warn_fused_nms_params

__all__ = ["YOLOSegmentation", "split_segmentation_outputs"]


def split_segmentation_outputs(raw: list[Any]) -> tuple[Any, Any]:
    """``(detections (B, 4+C+P, N) or (B, N, 6+P), prototypes (B, P, mh, mw))`` from the session outputs
    (numpy arrays or torch tensors)."""
    protos = [r for r in raw if r.ndim == 4]
    dets = [r for r in raw if r.ndim == 3]
    if len(protos) != 1 or len(dets) != 1:
        shapes = [tuple(r.shape) for r in raw]
        raise CorruptedModelPackageError(
            f"A segmentation model needs one (B, 4+C+P, N) output and one (B, P, H/4, W/4) prototype output; "
            f"got {shapes}."
        )
    return dets[0], protos[0]


class YOLOSegmentation(InstanceSegmentationModel):
    """Boxes and masks from an Ultralytics-layout segmentation model.

    Outputs: (B, 4 + C + P, N) candidates with P mask coefficients (P = 32), and (B, P, H/4, W/4) prototypes;
    NMS-fused / end-to-end exports give (B, N, 6 + P) instead of the first.

    Call parameters: those of :class:`~im_models.yolo._detection.YOLODetection`, plus ``mask_format``
    (``"dense"``: bool (N, H, W) masks; ``"rle"``: a list of :class:`im_core.RLEMask`, memory bounded by the
    largest box).
    """

    LOAD_OPTIONS = frozenset()  # no keyword arguments of from_pretrained: parameters are given per call

    CALL_PARAMS = {"image_size": "pre", "mask_format": "post", **dict.fromkeys(DETECTION_PARAMS, "post")}

    def __init__(self, package: DetectorPackage, info: LoadedModelInfo) -> None:
        self.package = package
        self.metadata = info
        self.fused = package.fused_nms

    @classmethod
    def from_package(cls, ctx: PackageContext) -> YOLOSegmentation:
        package = load_detector_package(ctx)
        outs = package.session.outputs
        det = next((o for o in outs if len(o.shape) == 3), None)
        proto = next((o for o in outs if len(o.shape) == 4), None)
        num = None
        p_count = static_dim(proto.shape, 1) if proto is not None else None
        fused = fused_layout(det.shape if det is not None else (), p_count, package.fused_nms)
        if det is not None and proto is not None and not fused:
            ch, p = static_dim(det.shape, 1), static_dim(proto.shape, 1)
            num = None if ch is None or p is None else ch - 4 - p
        found = list(ctx.class_names(package.session, count=num))
        names = resolve_class_names(found, num, "segmentation", det.shape if det else ())
        return cls(package, ctx.info(names))

    def pre_process(self, images: list[Image], **params: Any) -> Prepared:
        return pre_process_images(self.package, images, params)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return canvas_key_of(self.package, image, params)

    def forward(self, prepared: Prepared) -> list[Any]:
        return run_session(self.package, prepared)

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[Detections]:
        """Candidates are selected where the outputs live (numpy, or torch tensors on a GPU); what reaches the CPU
        is the survivors' boxes, scores, classes and mask coefficients, plus the image's prototypes (P × mh × mw,
        only when something survives): the masks are then computed on the CPU inside each box."""
        dets, protos = split_segmentation_outputs(raw)
        names = list(self.class_names)
        p = resolve_detection_params(params, names, len(names), recommended=self.package.recommended)
        n_proto = protos.shape[1]
        fused = fused_layout(tuple(dets.shape), n_proto, self.fused)  # the layout decides, not the name
        if fused:
            warn_fused_nms_params(params, self.package.features.get("nms_fused"))
        fmt = params.get("mask_format", "dense")
        results = []
        for i, t in enumerate(prepared.transforms):
            if fused:
                cands = decode_fused(dets[i], p, len(names))
            else:
                if dets.shape[1] != 4 + len(names) + n_proto:
                    raise class_count_error("segmentation", dets.shape[1] - 4 - n_proto, tuple(dets.shape), len(names))
                cands = decode_anchor_free(dets[i], len(names), p)
            xyxy = t.boxes_to_original(cands.xyxy)
            proto = to_numpy(protos[i]) if len(cands.scores) else np.zeros((n_proto, 1, 1), np.float32)
            masks = instance_masks(proto, cands.extras[:, :n_proto], xyxy, t, mask_format=fmt)
            results.append(Detections(xyxy, cands.scores, cands.class_ids, names, masks=masks))
        return results
