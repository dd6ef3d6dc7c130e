"""Text-line tensors: resize crops to a fixed height keeping their aspect ratio and pad them on the right."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["batch_width", "line_batch", "line_widths"]


def line_widths(shapes: Sequence[tuple[int, int]], height: int, max_width: int | None) -> np.ndarray:
    """Width (pixels) of each crop once resized to ``height`` with its aspect ratio kept, capped at ``max_width``.

    Args:
        shapes: ``(h, w)`` of each crop.
        height: target height in pixels.
        max_width: cap on the resized width (``None``: no cap).

    Returns:
        int64 (N,) widths, each at least 1.
    """
    hw = np.asarray(shapes, dtype=np.float64).reshape(-1, 2)
    widths = np.ceil(height * hw[:, 1] / np.maximum(hw[:, 0], 1.0)).astype(np.int64)
    if max_width is not None:
        widths = np.minimum(widths, max_width)
    return np.maximum(widths, 1)


def line_batch(crops: Sequence[np.ndarray], height: int, width: int, max_width: int | None = None) -> np.ndarray:
    """Stack text-line crops into one normalised (N, 3, height, width) float32 batch.

    Each crop (HWC uint8, channel order as the network expects) is resized to ``height`` keeping its aspect ratio
    (width capped at ``min(width, max_width)``), scaled to [-1, 1] as ``(x / 255 - 0.5) / 0.5`` and placed at the
    left of a zero (mid-grey after normalisation) canvas: the right side is padded, never squashed.
    """
    import cv2

    cap = width if max_width is None else min(width, max_width)
    widths = line_widths([c.shape[:2] for c in crops], height, cap)
    batch = np.full((len(crops), 3, height, width), 127.5, dtype=np.float32)  # 127.5 becomes 0 below
    for i, (crop, w) in enumerate(zip(crops, widths.tolist())):  # one resize per crop: sizes differ
        resized = cv2.resize(np.ascontiguousarray(crop), (w, height), interpolation=cv2.INTER_LINEAR)
        batch[i, :, :, :w] = resized.transpose(2, 0, 1)
    batch *= 2.0 / 255.0
    batch -= 1.0
    return batch


def batch_width(ratios: np.ndarray, height: int, base_width: int) -> int:
    """Canvas width for a group of crops: ``base_width`` or more if the widest crop needs it (``math.ceil``)."""
    widest = float(np.max(ratios, initial=0.0)) if len(ratios) else 0.0
    return max(base_width, math.ceil(height * widest))
