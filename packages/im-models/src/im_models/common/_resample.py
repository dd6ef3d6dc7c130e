"""Pillow's bilinear resize of uint8 images, reproduced in numpy (the same pixels, bit for bit).

Hugging Face image processors without torchvision (``*ImageProcessorPil``, e.g. SAM's) resize with
``PIL.Image.resize(..., BILINEAR)``: an *antialiased* triangle filter whose support grows with the reduction,
in 8-bit fixed point (22 fractional bits), horizontal pass then vertical pass, each rounded to uint8. OpenCV's
``INTER_LINEAR`` samples two pixels whatever the scale, so a large reduction differs by tens of grey levels; this
module computes what Pillow computes (``libImaging/Resample.c``), vectorised over pixels (one loop over the few
filter taps).

Pillow itself is used when it is installed (it is wherever a Hugging Face PIL image processor runs): Pillow 13 picks
the order of its two passes from the geometry (vertical first for some shapes), and the passes round to uint8 in
between, so only Pillow gives Pillow's pixels for every shape. Without Pillow the numpy passes run horizontal
first (Pillow <= 12's order; the same pixels for a resize along one axis, at most one grey level apart otherwise).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["resize_bilinear_numpy", "resize_bilinear_pil"]

_PRECISION_BITS = 32 - 8 - 2


def _coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source index (out, taps) int64 and fixed-point weight (out, taps) int64 of each output pixel."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # the bilinear (triangle) filter's support is 1
    taps = math.ceil(support) * 2 + 1
    center = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    k = np.arange(taps, dtype=np.int64)[None]
    x = xmin[:, None] + k
    weight = np.maximum(1.0 - np.abs((x - center[:, None] + 0.5) * (1.0 / filterscale)), 0.0)
    weight[k >= xmax[:, None]] = 0.0
    total = weight.sum(axis=1, keepdims=True)
    weight = np.divide(weight, total, out=weight, where=total != 0)
    fixed = np.trunc(weight * (1 << _PRECISION_BITS) + np.where(weight < 0, -0.5, 0.5)).astype(np.int64)
    return np.minimum(x, in_size - 1), fixed


def _pass(pixels: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One Pillow resampling pass along ``axis`` (0 = rows, 1 = columns) of an (H, W, C) uint8 array."""
    index, weight = _coefficients(pixels.shape[axis], out_size)
    shape = [1, 1, 1]
    shape[axis] = out_size
    acc = np.full(
        [out_size if a == axis else s for a, s in enumerate(pixels.shape)], 1 << (_PRECISION_BITS - 1), np.int64
    )
    for tap in range(index.shape[1]):  # a few taps (2 * ceil(scale) + 1), each over every pixel at once
        w = weight[:, tap]
        if not w.any():
            continue
        acc += np.take(pixels, index[:, tap], axis=axis).astype(np.int64) * w.reshape(shape)
    return np.clip(acc >> _PRECISION_BITS, 0, 255).astype(np.uint8)


def resize_bilinear_pil(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``PIL.Image.fromarray(pixels).resize((width, height), BILINEAR)`` as a numpy array.

    Args:
        pixels: uint8 (H, W) or (H, W, C).
        size: ``(height, width)`` of the result.

    Returns:
        uint8 (height, width[, C]).
    """
    height, width = int(size[0]), int(size[1])
    image = np.asarray(pixels, dtype=np.uint8)
    try:
        from PIL import Image as PILImage
    except ImportError:
        return resize_bilinear_numpy(image, (height, width))
    return np.asarray(
        PILImage.fromarray(np.ascontiguousarray(image)).resize((width, height), PILImage.Resampling.BILINEAR)
    )


def resize_bilinear_numpy(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow's bilinear resize in numpy, horizontal pass first (see the module docstring)."""
    height, width = int(size[0]), int(size[1])
    image = np.asarray(pixels, dtype=np.uint8)
    flat = image.ndim == 2
    out = image[:, :, None] if flat else image
    if out.shape[1] != width:
        out = _pass(out, width, 1)
    if out.shape[0] != height:
        out = _pass(out, height, 0)
    return out[:, :, 0] if flat else out
