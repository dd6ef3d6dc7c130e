"""DB (Differentiable Binarization) post-processing: probability map → scored, unclipped text quadrilaterals.

Follows PaddleOCR's ``DBPostProcess`` (``box_type="quad"``, ``score_mode="fast"``): threshold the map, take the
contours of the binary map, fit a minimum-area rotated rectangle to each, score it by the mean probability inside,
grow it by ``area * unclip_ratio / perimeter`` with Clipper's round-joined polygon offset (pyclipper, as PaddleOCR
and RapidOCR do) and fit the rectangle again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from im_models.common import order_quads

__all__ = ["DBParams", "db_boxes", "reading_order", "rect_corners", "unclip"]


@dataclass(frozen=True)
class DBParams:
    """Thresholds of the DB decoder.

    Attributes:
        threshold: probability from which a map pixel counts as text.
        box_threshold: minimum mean probability inside a box.
        unclip_ratio: how much to grow each box (distance = area * ratio / perimeter).
        max_candidates: at most this many contours are considered (largest first).
        min_size: boxes whose short side is below this (map pixels) are dropped.
        dilate: dilate the binary map with a 2×2 kernel before finding contours.
    """

    threshold: float = 0.3
    box_threshold: float = 0.6
    unclip_ratio: float = 1.5
    max_candidates: int = 1000
    min_size: float = 3.0
    dilate: bool = False


def rect_corners(rects: np.ndarray) -> np.ndarray:
    """Corners of rotated rectangles, as ``cv2.boxPoints`` gives them, for many rectangles at once.

    Args:
        rects: float (N, 5) ``cx, cy, w, h, angle`` (degrees, OpenCV's ``minAreaRect`` convention).

    Returns:
        float32 (N, 4, 2) corners.
    """
    r = np.asarray(rects, dtype=np.float64).reshape(-1, 5)
    theta = np.deg2rad(r[:, 4])
    c, s = np.cos(theta) * 0.5, np.sin(theta) * 0.5
    w, h = r[:, 2], r[:, 3]
    # same corner order as cv2.boxPoints
    dx = np.stack([-s * h - c * w, s * h - c * w, s * h + c * w, -s * h + c * w], axis=1)
    dy = np.stack([c * h - s * w, -c * h - s * w, -c * h + s * w, c * h + s * w], axis=1)
    return np.stack([r[:, :1] + dx, r[:, 1:2] + dy], axis=2).astype(np.float32)


def _box_scores(prob: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Mean of ``prob`` (H, W) inside each quadrilateral (N, 4, 2), rasterised as ``cv2.fillPoly`` does."""
    import cv2

    h, w = prob.shape
    # float32 corners such as 711.99994 stand for 712: snap them, or truncation below would shift the box a pixel
    snapped = np.rint(quads)
    quads = np.where(np.abs(quads - snapped) < 1e-3, snapped, quads)
    lo = np.clip(np.floor(quads.min(axis=1)), 0, [w - 1, h - 1]).astype(np.int64)
    hi = np.clip(np.ceil(quads.max(axis=1)), 0, [w - 1, h - 1]).astype(np.int64)
    scores = np.zeros(len(quads), np.float32)
    for i, (quad, (x0, y0), (x1, y1)) in enumerate(zip(quads, lo.tolist(), hi.tolist())):  # fillPoly per box
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        cv2.fillPoly(mask, [(quad - [x0, y0]).astype(np.int32)], 1)
        scores[i] = cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0]
    return scores


def db_boxes(prob: np.ndarray, params: DBParams) -> tuple[np.ndarray, np.ndarray]:
    """Text quadrilaterals from one DB probability map.

    Args:
        prob: float32 (H, W) text probability in [0, 1], in network-input pixels.
        params: decoder thresholds.

    Returns:
        ``(quads, scores)``: float32 (N, 4, 2) corners (top-left, top-right, bottom-right, bottom-left) in
        map pixels, and float32 (N,) box scores.
    """
    import cv2

    binary: np.ndarray = (prob > params.threshold).astype(np.uint8)
    if params.dilate:
        binary = cv2.dilate(binary, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    empty = (np.zeros((0, 4, 2), np.float32), np.zeros(0, np.float32))
    if not contours:
        return empty
    if len(contours) > params.max_candidates:
        areas = np.array([cv2.contourArea(c) for c in contours])
        contours = [contours[i] for i in np.argsort(-areas, kind="stable")[: params.max_candidates]]
    # one minAreaRect per contour: OpenCV has no batched form; bounded by max_candidates
    rects = np.array([(cx, cy, w, h, a) for (cx, cy), (w, h), a in map(cv2.minAreaRect, contours)], np.float64)
    rects = rects[np.minimum(rects[:, 2], rects[:, 3]) >= params.min_size]
    if len(rects) == 0:
        return empty
    quads = order_quads(rect_corners(rects))
    scores = _box_scores(prob, quads)
    keep = scores >= params.box_threshold
    rects, scores = rects[keep], scores[keep]
    grown = unclip(rects, params.unclip_ratio)
    keep = np.minimum(grown[:, 2], grown[:, 3]) >= params.min_size + 2
    return order_quads(rect_corners(grown[keep])), scores[keep]


def unclip(rects: np.ndarray, ratio: float) -> np.ndarray:
    """Rotated rectangles grown as PaddleOCR's ``DBPostProcess.unclip`` grows them.

    Each rectangle's corners go through Clipper's polygon offset (round joins, closed polygon; Clipper works on
    integers, so the corners are truncated to whole map pixels first, as pyclipper does with float input) by
    ``area * ratio / perimeter``; the offset polygon's minimum-area rectangle is the result. The closed form (grow
    each side by the distance) misses the truncation and Clipper's rounding of the arc, which PP-OCR's word gaps
    are sensitive to (boxes 1-2 px tighter than the reference's).

    Args:
        rects: float (N, 5) ``cx, cy, w, h, angle`` (OpenCV ``minAreaRect`` convention).
        ratio: the unclip ratio.

    Returns:
        float64 (N, 5) grown rectangles, same convention; a rectangle the offset erases keeps size 0.
    """
    import cv2
    import pyclipper

    out = np.zeros((len(rects), 5), np.float64)
    for i, (cx, cy, w, h, a) in enumerate(rects.tolist()):
        box = cv2.boxPoints(((cx, cy), (w, h), a))  # float32, as the reference passes them to Clipper
        # area / perimeter of those corners (shoelace, float64, as shapely computes them)
        x, y = box[:, 0].astype(np.float64), box[:, 1].astype(np.float64)
        area = abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0
        length = float(np.hypot(np.diff(x, append=x[:1]), np.diff(y, append=y[:1])).sum())
        distance = area * ratio / max(length, 1e-6)
        offset = pyclipper.PyclipperOffset()
        offset.AddPath(box, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        grown = offset.Execute(distance)
        if not grown:
            continue
        points = np.asarray(grown, np.int32).reshape(-1, 1, 2)
        (cx, cy), (gw, gh), angle = cv2.minAreaRect(points)
        out[i] = (cx, cy, gw, gh, angle)
    return out


def reading_order(quads: np.ndarray) -> np.ndarray:
    """Indices that put text boxes in reading order: lines top to bottom, boxes left to right within a line.

    Boxes whose top edges are within half the median box height of the previous box's start a line together.

    Args:
        quads: float (N, 4, 2) ordered corners.

    Returns:
        int64 (N,) permutation.
    """
    n = len(quads)
    if n < 2:
        return np.arange(n)
    top = quads[:, :2, 1].mean(axis=1)
    left = quads[:, [0, 3], 0].mean(axis=1)
    height = np.linalg.norm(quads[:, 3] - quads[:, 0], axis=1)
    tolerance = 0.5 * float(np.median(height))
    by_top = np.argsort(top, kind="stable")
    new_line = np.concatenate(([False], np.diff(top[by_top]) > tolerance))
    line = np.empty(n, np.int64)
    line[by_top] = np.cumsum(new_line)
    return np.lexsort((left, line))
