"""Pillow's ``Image.resize`` for uint8 images, bit for bit, in numpy (and through Pillow itself when installed).

Hugging Face image processors resize with Pillow (``resample=3``, bicubic, is CLIP's and DINOv2's), which filters
with a support widened by the downscale factor (antialiasing) and rounds to uint8 between the horizontal and the
vertical pass. cv2's ``INTER_CUBIC`` does neither, so a cv2 resize of a large image differs from the processor's by
whole grey levels. :func:`pil_resize` reproduces Pillow's ``Resample.c`` (fixed-point coefficients with 22 bits,
horizontal pass first, ``clip8`` rounding), so the result equals ``PIL.Image.resize`` exactly; when Pillow is
importable it is simply called (it is faster), and the numpy path serves installs without it.
"""

from __future__ import annotations

import math

import numpy as np

from im_core.errors import InvalidParameterError

__all__ = ["PIL_FILTERS", "float_resize", "pil_resize"]

#: Pillow's resample codes (``PIL.Image.Resampling``) this module reproduces -> filter support
PIL_FILTERS = {2: 1.0, 3: 2.0}  # bilinear, bicubic
_PRECISION_BITS = 32 - 8 - 2


def _filter(code: int, x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    if code == 2:  # bilinear (triangle)
        return np.where(x < 1.0, 1.0 - x, 0.0)
    a = -0.5  # bicubic, Pillow's constant
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _coefficients(in_size: int, out_size: int, code: int, *, fixed: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc``: per output pixel, the first input index and the
    fixed-point weights of its taps. Returns ``(first, weights)``: int (out,), int64 (out, taps); with
    ``fixed=False`` the float64 weights (what torch's ``interpolate(antialias=True)`` computes)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = PIL_FILTERS[code] * filterscale
    taps = math.ceil(support) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    first = np.maximum((center - support + 0.5).astype(np.int64), 0)  # C's (int) truncates toward zero
    last = np.minimum((center + support + 0.5).astype(np.int64), in_size)
    count = last - first
    offsets = np.arange(taps)
    weights = _filter(code, (first[:, None] + offsets[None] - center[:, None] + 0.5) / filterscale)
    weights = np.where(offsets[None] < count[:, None], weights, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.divide(weights, total, out=weights.copy(), where=total != 0)
    if not fixed:
        return first, weights
    scaled = weights * (1 << _PRECISION_BITS)
    integer = np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int64)
    return first, integer


def _matrix(in_size: int, out_size: int, code: int, fixed: bool) -> np.ndarray:
    """The dense (out, in) float64 matrix of one pass's weights."""
    first, weights = _coefficients(in_size, out_size, code, fixed=fixed)
    index = first[:, None] + np.arange(weights.shape[1])[None]
    valid = index < in_size  # taps past the end have zero weight
    matrix = np.zeros((out_size, in_size), np.float64)
    rows = np.broadcast_to(np.arange(out_size)[:, None], index.shape)
    matrix[rows[valid], index[valid]] = weights[valid]
    return matrix


def _pass(pixels: np.ndarray, out_size: int, code: int, axis: int) -> np.ndarray:
    """One separable pass along ``axis`` (0 = rows, 1 = columns) of a uint8 (H, W, C) image.

    The fixed-point weights go into a dense (out, in) float64 matrix: every product and sum is an integer below
    2**53, so one BLAS product is exact, whatever its summation order.
    """
    in_size = pixels.shape[axis]
    matrix = _matrix(in_size, out_size, code, fixed=True)
    src = np.moveaxis(pixels, axis, 0)
    acc = matrix @ src.reshape(in_size, -1).astype(np.float64) + float(1 << (_PRECISION_BITS - 1))
    out = np.clip(np.floor(acc / float(1 << _PRECISION_BITS)), 0, 255).astype(np.uint8)
    return np.moveaxis(out.reshape(out_size, *src.shape[1:]), 0, axis)


def pil_resize(
    pixels: np.ndarray, height: int, width: int, resample: int = 3, *, use_pillow: bool = True
) -> np.ndarray:
    """Resize a uint8 (H, W, C) image to (height, width, C) exactly as ``PIL.Image.resize((width, height),
    resample)`` does.

    Args:
        pixels: uint8 (H, W, C) image, any channel order (channels are filtered independently).
        height, width: output size in pixels (≥ 1).
        resample: Pillow's code: 2 bilinear, 3 bicubic.
        use_pillow: call Pillow when it is installed (same result, faster); ``False`` forces the numpy path.

    Raises:
        InvalidParameterError: an unsupported ``resample`` code, a non-uint8 or non-(H, W, C) image, or a size < 1.
    """
    if resample not in PIL_FILTERS:
        raise InvalidParameterError(
            f"resample={resample!r}: im reproduces Pillow's bilinear (2) and bicubic (3) filters."
        )
    if pixels.dtype != np.uint8 or pixels.ndim != 3:
        raise InvalidParameterError(f"pil_resize takes a uint8 (H, W, C) image, got {pixels.dtype} {pixels.shape}.")
    if height < 1 or width < 1:
        raise InvalidParameterError(f"Cannot resize to {height}x{width}: both sides must be at least 1 pixel.")
    if (height, width) == pixels.shape[:2]:
        return pixels.copy()
    if use_pillow and pixels.shape[2] == 3:
        try:
            from PIL import Image as PILImage
        except ImportError:
            pass
        else:
            image = PILImage.fromarray(np.ascontiguousarray(pixels), "RGB")
            return np.asarray(image.resize((width, height), resample=resample))
    out = pixels
    if width != pixels.shape[1]:  # Pillow: horizontal pass first, rounded to uint8, then vertical
        out = _pass(out, width, resample, axis=1)
    if height != pixels.shape[0]:
        out = _pass(out, height, resample, axis=0)
    return out


def float_resize(values: np.ndarray, height: int, width: int, resample: int = 2) -> np.ndarray:
    """Resize a float (H, W, C) image to float64 (height, width, C) with the antialiased filters of torch's
    ``interpolate(..., antialias=True, align_corners=False)`` (torchvision's tensor ``resize``), which are Pillow's
    filters computed in floating point, without rounding between the passes (within 1e-5 of torch's float32).

    Args:
        values: float (H, W, C) image (any scale: the processors that resize floats rescale to [0, 1] first).
        height, width: output size in pixels (≥ 1).
        resample: 2 bilinear, 3 bicubic (``a = -0.5``).
    """
    if resample not in PIL_FILTERS:
        raise InvalidParameterError(f"resample={resample!r}: im reproduces bilinear (2) and bicubic (3) filters.")
    if height < 1 or width < 1:
        raise InvalidParameterError(f"Cannot resize to {height}x{width}: both sides must be at least 1 pixel.")
    x = np.asarray(values, np.float64)
    h, w, c = x.shape
    if width != w:
        x = (x.transpose(0, 2, 1) @ _matrix(w, width, resample, fixed=False).T).transpose(0, 2, 1)
    if height != h:
        x = (_matrix(h, height, resample, fixed=False) @ x.reshape(h, -1)).reshape(height, width, c)
    return x
