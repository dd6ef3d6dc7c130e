"""Crops: axis-aligned boxes widened by a margin (faces, objects), and quadrilaterals (corner ordering and perspective
crops of rotated boxes: text lines, documents)."""

from __future__ import annotations

import numpy as np

__all__ = ["crop_boxes", "crop_quads", "order_quads"]


def crop_boxes(image: np.ndarray, boxes: np.ndarray, *, margin: float = 0.0) -> list[np.ndarray]:
    """Views of ``image`` inside each box, widened by ``margin`` of the box's size on every side and clipped.

    Corners are rounded to whole pixels; every crop is at least 1 px wide and high.

    Args:
        image: (H, W, ...) array.
        boxes: float (N, 4) ``x1, y1, x2, y2`` in ``image`` pixels.
        margin: fraction of the box's width (height) added left and right (above and below); 0.1 grows a
            100 px wide box to 120 px.

    Returns:
        N views of ``image`` (no copy).
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(b) == 0:
        return []
    height, width = image.shape[:2]
    wh = b[:, 2:] - b[:, :2]
    grown = np.concatenate([b[:, :2] - wh * margin, b[:, 2:] + wh * margin], axis=1)
    limits = np.array([width, height, width, height], np.float64)
    grown = np.clip(np.rint(grown), 0, limits).astype(np.int64)
    grown[:, 2:] = np.maximum(grown[:, 2:], np.minimum(grown[:, :2] + 1, limits[:2]))  # at least 1 px
    grown[:, :2] = np.minimum(grown[:, :2], grown[:, 2:] - 1)
    return [image[y0:y1, x0:x1] for x0, y0, x1, y1 in grown.tolist()]


def order_quads(quads: np.ndarray) -> np.ndarray:
    """Order the corners of each quadrilateral as top-left, top-right, bottom-right, bottom-left.

    The two leftmost corners (by x) give top-left / bottom-left (smaller y first), the two rightmost give
    top-right / bottom-right, which stays stable for boxes rotated by up to ±45°.

    Args:
        quads: float (N, 4, 2) corners in any order, ``(x, y)`` pixels.

    Returns:
        float32 (N, 4, 2) corners in clockwise order starting top-left.
    """
    q = np.asarray(quads, dtype=np.float32).reshape(-1, 4, 2)
    by_x = np.take_along_axis(q, np.argsort(q[:, :, 0], axis=1, kind="stable")[:, :, None], axis=1)
    left, right = by_x[:, :2], by_x[:, 2:]
    left_swap = left[:, 0, 1] > left[:, 1, 1]
    right_swap = right[:, 0, 1] > right[:, 1, 1]
    tl = np.where(left_swap[:, None], left[:, 1], left[:, 0])
    bl = np.where(left_swap[:, None], left[:, 0], left[:, 1])
    tr = np.where(right_swap[:, None], right[:, 1], right[:, 0])
    br = np.where(right_swap[:, None], right[:, 0], right[:, 1])
    return np.stack([tl, tr, br, bl], axis=1)


def crop_quads(image: np.ndarray, quads: np.ndarray, *, rotate_tall: float | None = 1.5) -> list[np.ndarray]:
    """Cut each quadrilateral out of ``image`` with a perspective warp onto an upright rectangle.

    The output size is the longest of each pair of opposite sides (at least 1 px). Borders are replicated,
    so a box reaching past the image edge does not bring in black.

    Args:
        image: (H, W, C) or (H, W) array.
        quads: float (N, 4, 2) corners ordered top-left, top-right, bottom-right, bottom-left (see
            :func:`order_quads`), in ``image`` pixels.
        rotate_tall: crops with ``height / width >= rotate_tall`` are turned 90° counter-clockwise so that
            vertical text lines read left to right; ``None`` keeps every crop as warped.

    Returns:
        N arrays of shape (h_i, w_i[, C]) with the dtype of ``image``.
    """
    import cv2

    q = np.asarray(quads, dtype=np.float32).reshape(-1, 4, 2)
    if len(q) == 0:
        return []
    widths = np.maximum(np.linalg.norm(q[:, 0] - q[:, 1], axis=1), np.linalg.norm(q[:, 3] - q[:, 2], axis=1))
    heights = np.maximum(np.linalg.norm(q[:, 0] - q[:, 3], axis=1), np.linalg.norm(q[:, 1] - q[:, 2], axis=1))
    widths = np.maximum(np.rint(widths), 1).astype(np.int64)
    heights = np.maximum(np.rint(heights), 1).astype(np.int64)
    crops: list[np.ndarray] = []
    for quad, w, h in zip(q, widths.tolist(), heights.tolist()):  # one warp per box: OpenCV has no batched warp
        target = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
        matrix = cv2.getPerspectiveTransform(quad, target)
        crop = cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        if rotate_tall is not None and h / w >= rotate_tall:
            crop = np.ascontiguousarray(np.rot90(crop))
        crops.append(crop)
    return crops
