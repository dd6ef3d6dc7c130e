"""DB (Differentiable Binarization) post-processing: probability map → scored, unclipped text quadrilaterals.

Follows PaddleOCR's ``DBPostProcess`` (``box_type="quad"``, ``score_mode="fast"``): threshold the map, take the
contours of the binary map (``cv2.RETR_LIST``: outer borders and hole borders), fit a minimum-area rotated rectangle
to each, score it by the mean probability inside, grow it by ``area * unclip_ratio / perimeter`` on every side and
fit the rectangle again. For a rectangle the round-joined polygon offset PaddleOCR computes with pyclipper has
exactly that grown rectangle as its minimum-area box, so the unclip is done in closed form here (no pyclipper).

Everything after the one ``cv2.findContours`` call works on all candidates at once (DESIGN.md §7: no Python loop
over candidate boxes; the contours are only stacked, by ``np.concatenate`` and ``map(len, ...)``): contour areas for
``max_candidates`` by the shoelace formula, a bounding-box pre-filter for ``min_size``, the rectangles by exact
vectorised hulls and rotating calipers (:mod:`im_models.ocr._min_rect`), the box scores by an exact vectorised
re-implementation of ``cv2.fillPoly`` + ``cv2.mean`` (:mod:`im_models.ocr._quad_raster`).

The result is PaddleOCR's, computed more exactly: rectangle corners come from exact hulls in float64, where
``cv2.minAreaRect`` works in float32 and can put a corner at ``711.99994`` instead of ``712`` — which the integer
truncation of the box score then moves by a pixel. Different rectangles of equal area (small blobs) may be chosen
differently (see :mod:`im_models.ocr._min_rect`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from im_models.common._crops import order_quads
from im_models.ocr._min_rect import min_area_rects, rect_polygons
from im_models.ocr._quad_raster import quad_means
from im_models.ocr._ragged import ragged

__all__ = ["DBParams", "contour_areas", "db_boxes", "rect_corners", "reading_order"]


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


def db_boxes(prob: np.ndarray, params: DBParams) -> tuple[np.ndarray, np.ndarray]:
    """Text quadrilaterals from one DB probability map.

    Args:
        prob: float32 (H, W) text probability in [0, 1], in network-input pixels.
        params: decoder thresholds.

    Returns:
        ``(quads, scores)``: float32 (N, 4, 2) corners (top-left, top-right, bottom-right, bottom-left) in
        map pixels, and float32 (N,) box scores, in contour order (largest contour area first when there were more
        than ``max_candidates``).
    """
    import cv2

    binary = cv2.compare(prob.astype(np.float32, copy=False), float(params.threshold), cv2.CMP_GT)  # 255 where >
    if params.dilate:
        binary = cv2.dilate(binary, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    empty = (np.zeros((0, 4, 2), np.float32), np.zeros(0, np.float32))
    if not contours:
        return empty
    lengths = np.fromiter(map(len, contours), np.int64, len(contours))
    points = np.concatenate(contours).reshape(-1, 2).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    chosen = np.arange(len(contours))
    if len(contours) > params.max_candidates:
        chosen = np.argsort(-contour_areas(points, lengths), kind="stable")[: params.max_candidates]
    # a rectangle's short side is at most the square root of its area, which is at most the bounding box's: skip
    # contours whose bounding box is too small before fitting anything
    x, y = points[:, 0], points[:, 1]
    box_area = np.maximum.reduceat(x, starts) - np.minimum.reduceat(x, starts)
    box_area *= np.maximum.reduceat(y, starts) - np.minimum.reduceat(y, starts)
    chosen = chosen[box_area[chosen] >= max(params.min_size, 0.0) ** 2]
    if len(chosen) == 0:
        return empty
    owner, index = ragged(starts[chosen], lengths[chosen])
    center, axis, sides = min_area_rects(points[index], owner, len(chosen))
    keep = sides.min(axis=1) >= params.min_size
    center, axis, sides = center[keep], axis[keep], sides[keep]
    if len(center) == 0:
        return empty
    scores = quad_means(prob, order_quads(rect_polygons(center, axis, sides)))
    keep = scores >= params.box_threshold
    center, axis, sides, scores = center[keep], axis[keep], sides[keep], scores[keep]
    # unclip: grow both sides by 2 * area * ratio / perimeter
    w, h = sides[:, 0], sides[:, 1]
    distance = w * h * params.unclip_ratio / np.maximum(2.0 * (w + h), 1e-6)
    grown = sides + 2.0 * distance[:, None]
    keep = grown.min(axis=1) >= params.min_size + 2
    return order_quads(rect_polygons(center[keep], axis[keep], grown[keep])), scores[keep]


def contour_areas(points: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``cv2.contourArea`` of every contour at once (shoelace formula).

    Args:
        points: int (P, 2) stacked contour points ``(x, y)``.
        lengths: int (N,) points per contour (each at least 1), in stacking order.

    Returns:
        float64 (N,) absolute polygon areas.
    """
    p = np.asarray(points, np.float64).reshape(-1, 2)
    starts = np.cumsum(lengths) - lengths
    previous = np.arange(len(p)) - 1
    previous[starts] = starts + lengths - 1
    cross = p[previous, 0] * p[:, 1] - p[:, 0] * p[previous, 1]
    return 0.5 * np.abs(np.add.reduceat(cross, starts))


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
