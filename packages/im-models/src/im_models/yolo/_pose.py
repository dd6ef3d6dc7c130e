"""YOLOv8/11/12 pose: boxes + K keypoints (x, y, confidence) per detection."""

from __future__ import annotations

from typing import Any

import numpy as np

from im_core import Detections, Image, KeypointDetectionModel, PackageContext
from im_core.errors import CorruptedModelPackageError
from im_core.sdk import LoadedModelInfo
from im_models.common import (
    DETECTION_PARAMS,
    DetectorPackage,
    Prepared,
    canvas_key_of,
    load_detector_package,
    parse_keypoints_metadata,
    pre_process_images,
    resolve_class_names,
    resolve_detection_params,
    run_session,
    static_dim,
)
from im_models.yolo._decode import decode_anchor_free, decode_fused, fused_layout, warn_fused_nms_params

__all__ = ["YOLOPose"]


class YOLOPose(KeypointDetectionModel):
    """Keypoints from an Ultralytics-layout pose model.

    Output: (B, 4 + C + K·D, N) with D = 3 (x, y, visibility already through a sigmoid) or 2; K and D come from the
    export's ``kpt_shape`` (or ``keypoints_metadata.json`` in Roboflow packages), else D = 3 is assumed.
    Fused/end-to-end exports give (B, N, 6 + K·D).

    Results: ``keypoints`` float32 (N, K, 2) in original pixels (for a bare Ultralytics export clipped to the image,
    as Ultralytics clips them; Roboflow packages keep points outside it), ``keypoint_confidence`` (N, K) (ones when
    D = 2);
    the keypoint names and skeleton (when the package has them) are in ``model.metadata.extra["keypoint_names"]`` /
    ``extra["skeleton"]`` and on every result (``Detections.keypoint_names`` / ``.skeleton``).
    """

    LOAD_OPTIONS = frozenset()  # no keyword arguments of from_pretrained: parameters are given per call

    CALL_PARAMS = {"image_size": "pre", **dict.fromkeys(DETECTION_PARAMS, "post")}

    def __init__(self, package: DetectorPackage, info: LoadedModelInfo, kpt_shape: tuple[int, int] | None) -> None:
        self.package = package
        self.metadata = info
        self.kpt_shape = kpt_shape
        self.fused = package.fused_nms

    @classmethod
    def from_package(cls, ctx: PackageContext) -> YOLOPose:
        package = load_detector_package(ctx)
        ultra = package.features.get("ultralytics", {}) or {}
        kpt = ultra.get("kpt_shape")
        extra: dict[str, Any] = {}
        if ctx.has("keypoints_metadata.json"):
            meta = ctx.read_json("keypoints_metadata.json")
            extra = _keypoints_metadata(meta)
            if kpt is None and "class_keypoints" in extra:  # the head predicts the most keypoints any class has
                kpt = [max(len(c["keypoint_names"]) for c in extra["class_keypoints"]), 3]
        kpt_shape = (int(kpt[0]), int(kpt[1])) if kpt else None
        shape = package.session.outputs[0].shape if package.session.outputs else ()
        fused = fused_layout(shape, kpt_shape[0] * kpt_shape[1] if kpt_shape else None, package.fused_nms)
        ch = None if fused else static_dim(shape, 1)
        num = None
        if ch is not None and kpt_shape:
            num = ch - 4 - kpt_shape[0] * kpt_shape[1]
        elif ch is not None:
            num = len(package.class_names) or 1
            if (ch - 4 - num) % 3:
                raise CorruptedModelPackageError(f"Pose output {shape} does not fit {num} classes + K×3 keypoints.")
        names = resolve_class_names(list(ctx.class_names(package.session, count=num)), num, "pose", shape)
        return cls(package, ctx.info(names, **extra), kpt_shape)

    def pre_process(self, images: list[Image], **params: Any) -> Prepared:
        return pre_process_images(self.package, images, params)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return canvas_key_of(self.package, image, params)

    def forward(self, prepared: Prepared) -> list[Any]:
        return run_session(self.package, prepared)

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[Detections]:
        """``raw``: numpy arrays or torch tensors; only the survivors' boxes and keypoints are copied to the CPU."""
        out = raw[0]
        names = list(self.class_names)
        p = resolve_detection_params(params, names, len(names), recommended=self.package.recommended)
        kd = self.kpt_shape[0] * self.kpt_shape[1] if self.kpt_shape else None
        fused = fused_layout(tuple(out.shape), kd, self.fused)  # the layout decides, not the architecture name
        if fused:
            warn_fused_nms_params(params, self.package.features.get("nms_fused"))
        width = (out.shape[2] - 6) if fused else (out.shape[1] - 4 - len(names))
        k, d = self.kpt_shape if self.kpt_shape else (width // 3, 3)
        if k * d != width or d not in (2, 3):
            raise CorruptedModelPackageError(
                f"Pose output {tuple(out.shape)} leaves {width} keypoint values per detection, not {k}×{d} "
                f"({len(names)} classes). Check the class names and kpt_shape."
            )
        extra = self.metadata.extra
        kp_names = extra.get("keypoint_names") or ()
        skeleton = extra.get("skeleton") or ()
        if kp_names and len(kp_names) != k:
            kp_names = ()  # names of another skeleton than the network's: leave them out rather than refuse
        if any(not (0 <= i < k) for edge in skeleton for i in edge):
            skeleton = ()
        results = []
        for i, t in enumerate(prepared.transforms):
            cands = decode_fused(out[i], p, len(names)) if fused else decode_anchor_free(out[i], len(names), p)
            kp = cands.extras.reshape(-1, k, d)
            xy = t.points_to_original(kp[:, :, :2], clip=self.package.layout == "ultralytics")
            conf = kp[:, :, 2] if d == 3 else np.ones(kp.shape[:2], np.float32)
            xyxy = t.boxes_to_original(cands.xyxy)
            results.append(
                Detections(
                    xyxy,
                    cands.scores,
                    cands.class_ids,
                    names,
                    keypoints=xy,
                    keypoint_confidence=conf,
                    keypoint_names=kp_names,
                    skeleton=skeleton,
                )
            )
        return results


def _keypoints_metadata(meta: Any) -> dict[str, Any]:
    """Keypoint names and skeleton per object class from Roboflow's ``keypoints_metadata.json``
    (:func:`~im_models.common._config.parse_keypoints_metadata`): ``keypoint_names`` / ``skeleton`` of class 0 and
    ``class_keypoints`` (one ``{"keypoint_names", "skeleton"}`` per class id).

    Raises:
        CorruptedModelPackageError: a file the reference refuses too (missing classes, keypoints or edges, ids that
            are not integers, edges naming keypoints that do not exist).
    """
    names, skeletons = parse_keypoints_metadata(meta)
    return {
        "keypoint_names": names[0],
        "skeleton": skeletons[0],
        "class_keypoints": [{"keypoint_names": n, "skeleton": k} for n, k in zip(names, skeletons, strict=True)],
    }
