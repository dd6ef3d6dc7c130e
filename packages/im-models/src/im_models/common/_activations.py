"""Score activations shared by classification-style heads (numpy, float32, numerically stable)."""

from __future__ import annotations

import numpy as np

__all__ = ["as_probabilities", "sigmoid", "softmax"]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``, float32, shifted by the maximum so large logits do not overflow."""
    x = np.asarray(logits, dtype=np.float32)
    exp = np.exp(x - x.max(axis=axis, keepdims=True))
    return exp / exp.sum(axis=axis, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Logistic function, float32 (``exp`` of a non-positive argument only, so it never overflows)."""
    x = np.asarray(logits, dtype=np.float32)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """``scores`` as probabilities over the last axis: unchanged when the graph already ends in a softmax.

    Checked on the first few rows only (a graph either ends in a softmax or it does not).
    """
    x = np.asarray(scores, dtype=np.float32)
    rows = x.reshape(-1, x.shape[-1])[:8] if x.ndim else x.reshape(1, 1)
    if rows.size == 0 or (rows.min() >= 0.0 and rows.max() <= 1.0 and np.allclose(rows.sum(axis=-1), 1.0, atol=1e-3)):
        return x
    return softmax(x)
