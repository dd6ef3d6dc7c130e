"""Turning a backbone's output into one vector per image: pooling and L2 normalisation."""

from __future__ import annotations

import numpy as np

from im_core.errors import InvalidParameterError

__all__ = ["POOLING", "l2_normalize", "pool_features"]

POOLING = ("auto", "avg", "max", "cls", "mean", "none")


def pool_features(features: np.ndarray, pooling: str = "auto") -> np.ndarray:
    """Reduce backbone outputs to float32 (N, D) vectors.

    Args:
        features: (N, D) vectors, (N, C, H, W) feature maps or (N, T, D) token sequences.
        pooling: ``avg`` / ``max`` over H, W for maps; ``cls`` (first token) or ``mean`` over tokens for sequences;
            ``none`` flattens whatever is there; ``auto`` = ``avg`` for maps, ``cls`` for sequences.
    """
    x = np.asarray(features, dtype=np.float32)
    if pooling not in POOLING:
        raise InvalidParameterError(f"pooling must be one of {POOLING}, got {pooling!r}.")
    if pooling == "none" or x.ndim == 2:
        return x.reshape(len(x), -1)
    if x.ndim == 4:
        if pooling in ("auto", "avg", "mean"):
            return x.mean(axis=(2, 3))
        if pooling == "max":
            return x.max(axis=(2, 3))
    if x.ndim == 3:
        if pooling in ("auto", "cls"):
            return x[:, 0]
        if pooling in ("mean", "avg"):
            return x.mean(axis=1)
        if pooling == "max":
            return x.max(axis=1)
    raise InvalidParameterError(f"Cannot apply pooling {pooling!r} to backbone output of shape {x.shape}.")


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), float32."""
    v = np.asarray(vectors, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
