"""Ragged ranges without a Python loop (the building block of the vectorised DB post-processing)."""

from __future__ import annotations

import numpy as np

__all__ = ["ragged"]


def ragged(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(owner, value)`` with ``value in range(starts[owner], starts[owner] + counts[owner])``, in order.

    Args:
        starts: int (N,) first value of each range.
        counts: int (N,) length of each range (negative counts as 0).

    Returns:
        ``(owner, value)``: int64 (sum of counts,) arrays.
    """
    counts = np.maximum(np.asarray(counts, np.int64), 0)
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - first[owner] + np.asarray(starts, np.int64)[owner]
