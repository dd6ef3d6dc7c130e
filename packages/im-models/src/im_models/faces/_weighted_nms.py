"""MediaPipe's weighted non-maximum suppression (``NonMaxSuppressionCalculator``, algorithm ``WEIGHTED``).

Candidates are visited best score first. Each unassigned candidate opens a cluster holding every still-unassigned
candidate whose IoU with it is above the threshold (itself included); the cluster becomes one detection whose box
and keypoints are the score-weighted mean of its members and whose score is the opener's.

The openers are exactly the boxes plain greedy NMS keeps, and each candidate belongs to the first kept box (in score
order) it overlaps — a later kept box cannot claim it, or the candidate would have been kept itself. So the whole
algorithm is greedy NMS (shared helper) plus one (kept × candidates) IoU matrix: no loop over candidates here.
"""

from __future__ import annotations

import numpy as np

from im_models.common import box_iou, nms

__all__ = ["weighted_nms"]


def weighted_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    keypoints: np.ndarray | None,
    iou_threshold: float,
    max_detections: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Merge overlapping detections into score-weighted averages.

    Args:
        boxes: float (N, 4) ``x1, y1, x2, y2``.
        scores: float (N,) scores (weights of the average).
        keypoints: optional float (N, K, 2), averaged with the same weights as the boxes.
        iou_threshold: members of a cluster have IoU strictly above this with its opener.
        max_detections: keep at most this many clusters (best openers first).

    Returns:
        ``(boxes (M, 4), scores (M,), keypoints (M, K, 2) or None)`` in descending score order, float32.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(boxes) == 0:
        empty_kp = None if keypoints is None else np.zeros((0, *np.shape(keypoints)[1:]), np.float32)
        return boxes, scores, empty_kp
    keep = nms(boxes, scores, iou_threshold, max_detections=max_detections)  # the openers, best first
    overlap = box_iou(boxes[keep], boxes) > iou_threshold  # (M, N)
    overlap[np.arange(len(keep)), keep] = True  # a degenerate (zero-area) opener still owns itself
    owned = overlap.any(axis=0)
    owner = np.argmax(overlap, axis=0)  # first kept box, in score order, that each candidate overlaps
    weights = np.zeros((len(keep), len(boxes)), np.float64)
    columns = np.flatnonzero(owned)
    weights[owner[columns], columns] = scores[columns]
    total = weights.sum(axis=1, keepdims=True)
    merged_boxes = (weights @ boxes.astype(np.float64)) / total
    merged_kp = None
    if keypoints is not None:
        kp = np.asarray(keypoints, dtype=np.float64)
        merged_kp = np.einsum("mn,nkd->mkd", weights, kp) / total[:, :, None]
        merged_kp = merged_kp.astype(np.float32)
    return merged_boxes.astype(np.float32), scores[keep], merged_kp
