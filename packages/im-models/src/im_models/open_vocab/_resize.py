"""Resizes that reproduce the reference processors' pixels (numpy; OpenCV inside the functions that use it).

:func:`antialiased_linear_resize` is OWLv2's (``Owlv2ImageProcessor``, after ``skimage.transform.resize`` as in the
original big_vision code): a Gaussian blur with sigma ``(factor - 1) / 2`` when downsampling, then linear
interpolation with pixel-area alignment and mirrored borders, then a clip to the input's range.

:func:`pil_bilinear_resize` is what ``PIL.Image.resize(..., BILINEAR)`` computes on 8-bit images (a triangle filter
stretched by the scale factor when downsampling, 22-bit fixed-point coefficients, horizontal pass then vertical pass,
each rounded to uint8), which the Hugging Face image processors without torchvision use (Grounding DINO's).
"""

from __future__ import annotations

import numpy as np

__all__ = ["antialiased_linear_resize", "pil_bilinear_resize"]


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    """Indices reflected into ``[0, n)`` about the edge pixels (``d c b | a b c d | c b a``)."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    index = np.mod(index, period)
    return np.where(index >= n, period - index, index)


def _linear_axis(image: np.ndarray, out: int, axis: int) -> np.ndarray:
    """Linear interpolation along ``axis`` to ``out`` samples at ``(i + 0.5) * in / out - 0.5``, mirrored borders."""
    n = image.shape[axis]
    if n == out:
        return image
    x = (np.arange(out, dtype=np.float64) + 0.5) * (n / out) - 0.5
    i0 = np.floor(x)
    w = (x - i0).astype(np.float32)
    i0 = i0.astype(np.int64)
    lo, hi = _mirror(i0, n), _mirror(i0 + 1, n)
    shape = [1] * image.ndim
    shape[axis] = out
    w = w.reshape(shape)
    a, b = np.take(image, lo, axis=axis), np.take(image, hi, axis=axis)
    return a + (b - a) * w


def antialiased_linear_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` (H, W, C) float32 → (height, width, C) float32, as OWLv2's processor resizes.

    Equal to ``scipy.ndimage.gaussian_filter(image, sigma, mode="mirror")`` with ``sigma = max(0, (in/out - 1) / 2)``
    per axis (truncated at 4 sigma), then ``scipy.ndimage.zoom(order=1, mode="mirror", grid_mode=True)``, then
    clipped to ``[image.min(), image.max()]`` (float32 rounding aside: the reference computes in float64).
    """
    import cv2

    h, w = image.shape[:2]
    lo, hi = float(image.min()), float(image.max())
    sigma_y, sigma_x = max(0.0, (h / height - 1) / 2), max(0.0, (w / width - 1) / 2)
    ry, rx = int(4.0 * sigma_y + 0.5), int(4.0 * sigma_x + 0.5)
    filtered = image
    if ry > 0 or rx > 0:
        ky = _gaussian(sigma_y, ry)
        kx = _gaussian(sigma_x, rx)
        filtered = cv2.sepFilter2D(
            np.ascontiguousarray(image, np.float32), cv2.CV_32F, kx, ky, borderType=cv2.BORDER_REFLECT_101
        )
        if filtered.ndim == 2 and image.ndim == 3:
            filtered = filtered[:, :, None]
    out = _linear_axis(_linear_axis(filtered, height, 0), width, 1)
    return np.clip(out, lo, hi)


def _gaussian(sigma: float, radius: int) -> np.ndarray:
    """scipy's normalised 1-D Gaussian kernel of ``2 * radius + 1`` taps (a single 1 for ``radius == 0``)."""
    if radius == 0:
        return np.ones(1, np.float32)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 / (sigma * sigma) * x * x)
    return (k / k.sum()).astype(np.float32)


#: PIL's fixed-point precision for 8-bit resampling (``PRECISION_BITS`` in libImaging/Resample.c)
_PRECISION_BITS = 32 - 8 - 2


def _pil_coefficients(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """PIL's bilinear taps for one axis: ``(first (n_out,), int32 weights (n_out, K))``, K taps per output pixel,
    weights in fixed point (``round(w * 2**22)``), zero past each pixel's own window."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # the triangle filter has support 1
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    xmin = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum((centre + support + 0.5).astype(np.int64), n_in) - xmin
    k = int(np.ceil(support)) * 2 + 1
    taps = np.arange(k)[None, :]
    x = (taps + xmin[:, None] - centre[:, None] + 0.5) / filterscale
    weights = np.where(taps < xmax[:, None], np.maximum(1.0 - np.abs(x), 0.0), 0.0)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(total != 0, weights / np.where(total == 0, 1, total), 0.0)
    # PIL rounds half away from zero: (int)(0.5 + w * (1 << PRECISION_BITS)) for w >= 0, (int)(-0.5 + ...) below
    scaled = weights * (1 << _PRECISION_BITS)
    fixed = np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int64)
    return xmin, fixed


def _pil_pass(image: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """One PIL resampling pass of uint8 ``image`` (H, W, C) along ``axis``, rounded and clipped to uint8."""
    n_in = image.shape[axis]
    first, fixed = _pil_coefficients(n_in, n_out)
    size = list(image.shape)
    size[axis] = n_out
    acc = np.full(size, 1 << (_PRECISION_BITS - 1), np.int64)
    shape = [1] * image.ndim
    shape[axis] = n_out
    for tap in range(fixed.shape[1]):  # a few taps (2 * ceil(scale) + 1), each over the whole image at once
        idx = np.minimum(first + tap, n_in - 1)
        acc += np.take(image, idx, axis=axis).astype(np.int64) * fixed[:, tap].reshape(shape)
    return np.clip(acc >> _PRECISION_BITS, 0, 255).astype(np.uint8)


def pil_bilinear_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 ``image`` (H, W, C) → uint8 (height, width, C), equal to ``PIL.Image.resize((width, height),
    Image.BILINEAR)``: the horizontal pass first, then the vertical pass (each skipped when its size is unchanged)."""
    out = image
    if out.shape[1] != width:
        out = _pil_pass(out, width, 1)
    if out.shape[0] != height:
        out = _pil_pass(out, height, 0)
    return out
