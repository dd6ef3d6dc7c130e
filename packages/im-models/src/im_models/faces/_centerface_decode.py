"""CenterFace output decoding: heatmap peaks → boxes and 5 landmarks (vectorised, one image at a time).

The network predicts, on a stride-4 grid of the input (``h = H / 4``, ``w = W / 4``):

* ``heatmap`` (1, h, w): face-centre probability (already sigmoid-ed);
* ``scale`` (2, h, w): ``log(box_height / 4)`` and ``log(box_width / 4)``;
* ``offset`` (2, h, w): sub-cell centre offset ``(dy, dx)`` in cells;
* ``landmarks`` (10, h, w): 5 points as ``(dy, dx)`` pairs, relative to the box's top-left corner, in box units.

A centre at cell ``(i, j)`` lies at ``((j + dx + 0.5) * 4, (i + dy + 0.5) * 4)`` input pixels, and the box is
``exp(scale) * 4`` pixels around it — the decoding of the CenterFace reference demo.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CENTERFACE_STRIDE", "decode_centerface"]

CENTERFACE_STRIDE = 4


def decode_centerface(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    threshold: float,
    stride: int = CENTERFACE_STRIDE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode every heatmap cell above ``threshold``.

    Args:
        heatmap: float (1, h, w) or (h, w) centre probabilities.
        scale: float (2, h, w) log box sizes ``(height, width)`` in stride units.
        offset: float (2, h, w) centre offsets ``(dy, dx)`` in cells.
        landmarks: float (10, h, w) landmark offsets ``(dy, dx) × 5`` in box units from the box's top-left corner.
        threshold: minimum heatmap value, in [0, 1].
        stride: output stride in input pixels.

    Returns:
        boxes: float32 (N, 4) ``x1, y1, x2, y2`` in input pixels (not clipped);
        scores: float32 (N,);
        points: float32 (N, 5, 2) landmark ``(x, y)`` in input pixels.
    """
    heat = heatmap.reshape(heatmap.shape[-2:])
    rows, cols = np.nonzero(heat > threshold)
    scores = heat[rows, cols].astype(np.float32)
    box_h = np.exp(scale[0, rows, cols]) * stride
    box_w = np.exp(scale[1, rows, cols]) * stride
    cy = (rows + offset[0, rows, cols] + 0.5) * stride
    cx = (cols + offset[1, rows, cols] + 0.5) * stride
    x1 = cx - box_w / 2
    y1 = cy - box_h / 2
    boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1).astype(np.float32)
    lm = landmarks[:, rows, cols].T.reshape(-1, 5, 2)  # (N, 5, [dy, dx])
    px = lm[:, :, 1] * box_w[:, None] + x1[:, None]
    py = lm[:, :, 0] * box_h[:, None] + y1[:, None]
    points = np.stack([px, py], axis=-1).astype(np.float32)
    return boxes, scores, points
