"""RF-DETR instance segmentation: DETR boxes + logits, plus a (B, Q, H/4, W/4) mask-logit map per query.

As the reference (``post_process_instance_segmentation_results``, inference-models 0.39.6 models/rfdetr/common.py;
rf-detr's ``PostProcess``): the (query, class) pairs are chosen as for detection (sigmoid, top-k over Q × C, no NMS),
each chosen query's mask logits are bilinearly resized to the image and thresholded at 0 (not cropped to the box).
"""

from __future__ import annotations

from typing import Any

from im_core import Detections, InstanceSegmentationModel
from im_core.errors import CorruptedModelPackageError
from im_models.common import DETECTION_PARAMS, Prepared, array_ops, full_masks, resolve_detection_params
from im_models.detr._detection import DETRDetection, detr_boxes, select_detr

__all__ = ["DETRSegmentation", "split_detr_segmentation_outputs"]


def split_detr_segmentation_outputs(raw: list[Any]) -> tuple[Any, Any, Any]:
    """``(boxes (B, Q, 4), logits (B, Q, C), masks (B, Q, h, w))`` from the session outputs."""
    masks = [r for r in raw if r.ndim == 4]
    three = [r for r in raw if r.ndim == 3]
    boxes = [r for r in three if r.shape[2] == 4]
    logits = [r for r in three if r is not (boxes[0] if boxes else None)]
    if len(masks) != 1 or not boxes or len(logits) != 1:
        raise CorruptedModelPackageError(
            "An RF-DETR segmentation model needs (B, Q, 4) boxes, (B, Q, C) logits and (B, Q, h, w) mask logits; "
            f"got {[tuple(r.shape) for r in raw]}."
        )
    return boxes[0], logits[0], masks[0]


class DETRSegmentation(DETRDetection, InstanceSegmentationModel):
    """RF-DETR instance segmentation (``rfdetr`` / ``instance-segmentation``).

    Call parameters: those of :class:`~im_models.detr._detection.DETRDetection`, plus ``mask_format``
    (``"dense"``: bool (N, H, W); ``"rle"``: a list of :class:`im_core.RLEMask`).
    """

    task = "instance-segmentation"
    CALL_PARAMS = {"image_size": "pre", "mask_format": "post", **dict.fromkeys(DETECTION_PARAMS, "post")}

    def post_process(self, raw: list[Any], prepared: Prepared, **params: Any) -> list[Detections]:
        boxes, logits, masks = split_detr_segmentation_outputs(raw)
        names = list(self._network_names or self.class_names)
        if logits.shape[2] < len(names):
            raise CorruptedModelPackageError(
                f"The package lists {len(names)} class names but the logits output has shape {tuple(logits.shape)}."
            )
        p = resolve_detection_params(params, names, len(names), recommended=self.package.recommended, confidence=0.5)
        fmt = params.get("mask_format", "dense")
        results = []
        for i, t in enumerate(prepared.transforms):
            q, cls, scores = select_detr(logits[i], len(names), p)
            if self._remap is not None:  # classes removed by class_names_operations: dropped, the rest renumbered
                new = self._remap[cls]
                keep = new >= 0
                q, cls, scores = q[keep], new[keep], scores[keep]
            ops = array_ops(masks)
            chosen = ops.numpy(masks[i][ops.table(q, masks)])  # only the reported queries' maps leave the device
            xyxy = detr_boxes(boxes[i], q, t)
            results.append(
                Detections(xyxy, scores, cls, list(self.class_names), masks=full_masks(chosen, t, mask_format=fmt))
            )
        return results
