"""OWLv2's resize, reproducing the reference processor's pixels (numpy; OpenCV inside the functions that use it).

:func:`antialiased_linear_resize` is OWLv2's (``Owlv2ImageProcessor``, after ``skimage.transform.resize`` as in the
original big_vision code): a Gaussian blur with sigma ``(factor - 1) / 2`` when downsampling, then linear
interpolation with pixel-area alignment and mirrored borders, then a clip to the input's range.

Pillow's own resizes (Grounding DINO's, SAM's processors) are :func:`im_models.common.resize_like_pil`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["antialiased_linear_resize"]


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
