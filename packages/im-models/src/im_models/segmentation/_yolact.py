"""YOLACT instance segmentation (the ONNX layout the reference reads).

Five outputs, batch 1 per run as the reference runs them (``YOLACTForInstanceSegmentationOnnx``, inference-models
0.39.6 models/yolact/yolact_instance_segmentation_onnx.py):

* ``loc`` (1, P, 4): box offsets from the priors (SSD encoding, variances 0.1 / 0.2);
* ``conf`` (1, P, 1 + C): class probabilities, background first (dropped);
* ``mask`` (1, P, M): mask coefficients (M = 32);
* ``priors`` (P, 4): ``cx cy w h`` normalised to the network input;
* ``proto`` (1, h, w, M): prototype masks, channels last.

Boxes: ``cxcy = prior_cxcy + loc_xy · 0.1 · prior_wh``, ``wh = prior_wh · exp(loc_wh · 0.2)``, to ``x1 y1 x2 y2``
scaled to the network input. Each prior takes its best class; thresholds and class-aware NMS as for the YOLO
detectors. Masks: ``proto @ coefficients`` only inside each box, bilinearly resized to the original image,
thresholded at logit 0 (sigmoid 0.5) — the reference crops the sigmoid map to the box at prototype resolution and
resizes it before thresholding, so edge pixels may differ by one.
"""

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
    select_detections,
    static_dim,
    to_numpy,
)

__all__ = ["YOLACTSegmentation", "decode_yolact_boxes"]


def decode_yolact_boxes(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """float (P, 4) SSD offsets + (P, 4) normalised ``cx cy w h`` priors → float32 (P, 4) normalised ``x1 y1 x2 y2``."""
    cxcy = priors[:, :2] + loc[:, :2] * 0.1 * priors[:, 2:]
    wh = priors[:, 2:] * np.exp(loc[:, 2:] * 0.2)
    return np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1).astype(np.float32)


class YOLACTSegmentation(InstanceSegmentationModel):
    """YOLACT (``yolact`` / ``instance-segmentation``).

    Call parameters: those of the YOLO detectors plus ``mask_format``. Defaults: the package's recommended
    parameters, else confidence 0.25, IoU 0.7, 300 detections.
    """

    LOAD_OPTIONS = frozenset()
    CALL_PARAMS = {"image_size": "pre", "mask_format": "post", **dict.fromkeys(DETECTION_PARAMS, "post")}

    def __init__(self, package: DetectorPackage, info: LoadedModelInfo) -> None:
        self.package = package
        self.metadata = info

    @classmethod
    def from_package(cls, ctx: PackageContext) -> YOLACTSegmentation:
        package = load_detector_package(ctx)
        outs = package.session.outputs
        if len(outs) != 5:
            raise CorruptedModelPackageError(
                "A YOLACT export gives five outputs (loc, conf, mask coefficients, priors, prototypes); got "
                f"{[tuple(o.shape) for o in outs]}."
            )
        c = static_dim(outs[1].shape, 2)
        num = None if c is None else c - 1
        names = resolve_class_names(list(ctx.class_names(package.session, count=num)), num, "conf", outs[1].shape)
        return cls(package, ctx.info(names))

    def pre_process(self, images: list[Image], **params: Any) -> Prepared:
        return pre_process_images(self.package, images, params)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return canvas_key_of(self.package, image, params)

    def forward(self, prepared: Prepared) -> list[Any]:
        """One session run per image (the published graphs take batch 1 and give priors without a batch axis)."""
        runs = [
            run_session(self.package, Prepared(prepared.tensor[i : i + 1], prepared.transforms[i : i + 1]))
            for i in range(len(prepared.transforms))
        ]
        return [list(r) for r in zip(*runs)]  # per output: one array per image

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[Detections]:
        names = list(self.class_names)
        p = resolve_detection_params(params, names, len(names), recommended=self.package.recommended)
        fmt = params.get("mask_format", "dense")
        locs, confs, coefs, priors_all, protos = raw
        results = []
        for i, t in enumerate(prepared.transforms):
            loc = to_numpy(locs[i]).reshape(-1, 4)
            conf = to_numpy(confs[i])
            conf = conf.reshape(-1, conf.shape[-1])
            if conf.shape[1] != len(names) + 1:
                raise class_count_error("conf", conf.shape[1] - 1, conf.shape, len(names))
            coef = to_numpy(coefs[i])
            coef = coef.reshape(-1, coef.shape[-1])
            priors = to_numpy(priors_all[i]).reshape(-1, 4)
            proto = to_numpy(protos[i])
            proto = proto.reshape(proto.shape[-3:]).transpose(2, 0, 1)  # (h, w, M) → (M, h, w)
            boxes = decode_yolact_boxes(loc, priors)
            boxes[:, 0::2] *= t.input_width
            boxes[:, 1::2] *= t.input_height
            cls = conf[:, 1:].argmax(axis=1)
            scores = conf[np.arange(len(cls)), cls + 1].astype(np.float32)
            keep = select_detections(boxes, scores, cls, p)
            xyxy = t.boxes_to_original(boxes[keep])
            masks = instance_masks(proto, coef[keep], xyxy, t, mask_format=fmt)
            results.append(Detections(xyxy, scores[keep], cls[keep], names, masks=masks))
        return results
