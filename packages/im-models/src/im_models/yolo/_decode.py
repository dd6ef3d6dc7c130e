"""Raw YOLO head outputs (one image) → selected candidates, in network-input pixels. Pure numpy, no loops over boxes.

Layouts:

* anchor-free (YOLOv8/11/12): (4 + C + E, N) — ``cx, cy, w, h``, C class scores (already sigmoid), E extras
  (32 mask coefficients for segmentation, K·3 keypoint values for pose);
* NMS-fused / end-to-end (YOLOv10, YOLO26, ``nms=True`` exports): (N, 6 + E) — ``x1, y1, x2, y2, score, class``;
* YOLOv5: (N, 5 + C + E) — ``cx, cy, w, h, objectness``, C class probabilities (score = objectness × class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from im_models.common import DetectionParams, select_detections, xywh_to_xyxy

__all__ = ["Candidates", "decode_anchor_free", "decode_fused", "decode_yolov5"]


@dataclass(frozen=True)
class Candidates:
    """Selected detections of one image, best first, in network-input pixels.

    Attributes:
        xyxy: float32 (K, 4).
        scores: float32 (K,).
        class_ids: int64 (K,).
        extras: float32 (K, E) per-detection extra values (mask coefficients, keypoints); E may be 0.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    extras: np.ndarray


def _empty(extra: int) -> Candidates:
    return Candidates(
        np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros((0, extra), np.float32)
    )


def decode_anchor_free(pred: np.ndarray, num_classes: int, params: DetectionParams) -> Candidates:
    """Decode one image of an anchor-free head.

    Args:
        pred: (4 + C + E, N) raw output for one image.
        num_classes: C.
        params: thresholds, NMS and limits.
    """
    extra = pred.shape[0] - 4 - num_classes
    cls_scores = pred[4 : 4 + num_classes]
    best = cls_scores.max(axis=0) if num_classes > 1 else cls_scores[0]
    cand = np.flatnonzero(best >= params.min_threshold)
    if cand.size == 0:
        return _empty(extra)
    scores = best[cand].astype(np.float32, copy=False)
    class_ids = cls_scores[:, cand].argmax(axis=0) if num_classes > 1 else np.zeros(cand.size, np.int64)
    boxes = xywh_to_xyxy(pred[:4, cand].T)
    keep = select_detections(boxes, scores, class_ids, params)
    sel = cand[keep]
    extras = pred[4 + num_classes :, sel].T.astype(np.float32) if extra else np.zeros((len(sel), 0), np.float32)
    return Candidates(boxes[keep], scores[keep], class_ids[keep].astype(np.int64), extras)


def decode_fused(pred: np.ndarray, params: DetectionParams, num_classes: int) -> Candidates:
    """Decode one image of an NMS-fused / end-to-end head: (N, 6 + E) rows ``x1 y1 x2 y2 score class [extras]``.

    No NMS is run (the graph did it); thresholds, class filter and ``max_detections`` still apply. Rows with a class
    id outside ``[0, num_classes)`` (padding rows of fixed-size outputs) are dropped.
    """
    extra = pred.shape[1] - 6
    scores = pred[:, 4]
    cls = pred[:, 5]
    ok = (scores >= params.min_threshold) & (cls >= 0) & (cls < num_classes)
    cand = np.flatnonzero(ok)
    if cand.size == 0:
        return _empty(extra)
    boxes = pred[cand, :4].astype(np.float32)
    sc = scores[cand].astype(np.float32)
    cid = cls[cand].astype(np.int64)
    keep = select_detections(boxes, sc, cid, params, run_nms=False)
    extras = pred[cand[keep], 6:].astype(np.float32)
    return Candidates(boxes[keep], sc[keep], cid[keep], extras)


def decode_yolov5(pred: np.ndarray, num_classes: int, params: DetectionParams) -> Candidates:
    """Decode one image of a YOLOv5 head: (N, 5 + C + E) rows ``cx cy w h objectness class-probs [extras]``."""
    extra = pred.shape[1] - 5 - num_classes
    obj = pred[:, 4]
    cand = np.flatnonzero(obj >= params.min_threshold)  # score = obj × p ≤ obj: a safe first filter
    if cand.size == 0:
        return _empty(extra)
    probs = pred[cand, 5 : 5 + num_classes] * obj[cand, None]
    class_ids = probs.argmax(axis=1)
    scores = probs[np.arange(len(cand)), class_ids].astype(np.float32)
    boxes = xywh_to_xyxy(pred[cand, :4])
    keep = select_detections(boxes, scores, class_ids, params)
    extras = pred[cand[keep], 5 + num_classes :].astype(np.float32)
    return Candidates(boxes[keep], scores[keep], class_ids[keep].astype(np.int64), extras)
