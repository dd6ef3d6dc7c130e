"""Resizing maps exactly as ``torch.nn.functional.interpolate`` does (``align_corners=False``), in numpy, for
reference parity of Hugging Face post-processing (``post_process_depth_estimation``: bicubic;
``post_process_semantic_segmentation``: bilinear).

Both kernels are separable: each output row (column) is a weighted sum of at most 2 (bilinear) or 4 (bicubic)
input rows (columns), so the resize is two passes of gathers and multiply-adds along one axis, O(taps × output).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from im_core.errors import InvalidParameterError

__all__ = ["TorchResizeMode", "resize_like_torch"]

TorchResizeMode = Literal["bilinear", "bicubic"]


def _taps(in_size: int, out_size: int, mode: TorchResizeMode) -> tuple[np.ndarray, np.ndarray]:
    """Input indices (out, T) and float32 weights (out, T) of one axis, as PyTorch's CPU kernels compute them:
    source coordinate ``(dst + 0.5) * in / out - 0.5``; bilinear clamps it at 0 and takes 2 taps, the last one
    clamped to the edge; bicubic takes 4 taps of the a = -0.75 kernel, border indices clamped."""
    # float32, as PyTorch's kernels compute the scale and the coordinates for float32 maps
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    if mode == "bilinear":
        src = np.maximum(src, np.float32(0.0))
        i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
        i1 = np.minimum(i0 + 1, in_size - 1)
        frac = src - i0.astype(np.float32)
        return np.stack([i0, i1], axis=1), np.stack([np.float32(1.0) - frac, frac], axis=1)
    a = -0.75
    base = np.floor(src)
    t = (src - base).astype(np.float64)
    offsets = np.arange(-1, 3)
    idx = np.clip(base[:, None].astype(np.int64) + offsets, 0, in_size - 1)
    d = np.abs(t[:, None] - offsets)  # distance of each tap
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return idx, np.where(d <= 1, near, np.where(d < 2, far, 0.0)).astype(np.float32)


def resize_like_torch(array: np.ndarray, size: tuple[int, int], mode: TorchResizeMode = "bilinear") -> np.ndarray:
    """float (..., h, w) → float32 (..., H, W) as ``torch.nn.functional.interpolate(x, size=(H, W), mode=mode,
    align_corners=False)`` computes it on the CPU (float32 arithmetic: equal to PyTorch's within float32 rounding,
    about 1e-6 relative).

    Args:
        array: maps whose last two axes are (h, w) (a depth map (h, w), class logits (K, h, w)...).
        size: ``(H, W)`` output height and width in pixels.
        mode: ``"bilinear"`` or ``"bicubic"`` (a = -0.75, as PyTorch).
    """
    if mode not in ("bilinear", "bicubic"):
        raise InvalidParameterError(f"mode must be 'bilinear' or 'bicubic', got {mode!r}.")
    x = np.asarray(array, np.float32)
    if x.ndim < 2:
        raise InvalidParameterError(f"resize_like_torch needs (..., h, w) maps, got shape {x.shape}.")
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise InvalidParameterError(f"size must be positive (height, width), got {size}.")
    rows_idx, rows_w = _taps(x.shape[-2], height, mode)
    cols_idx, cols_w = _taps(x.shape[-1], width, mode)
    rows = x[..., rows_idx[:, 0], :] * rows_w[:, 0, None]
    for t in range(1, rows_idx.shape[1]):
        rows += x[..., rows_idx[:, t], :] * rows_w[:, t, None]
    out = rows[..., cols_idx[:, 0]] * cols_w[:, 0]
    for t in range(1, cols_idx.shape[1]):
        out += rows[..., cols_idx[:, t]] * cols_w[:, t]
    return out
