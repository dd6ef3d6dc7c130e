"""Image-level pre-processing steps a Roboflow ``inference_config.json`` declares in ``image_pre_processing``:
grayscale and contrast (``Contrast Stretching``, ``Histogram Equalization``, ``Adaptive Equalization``).

They run on the static-crop region of each image (the reference crops first, then converts to gray, then adjusts
the contrast), before resizing; the rest of the image is left as it is (the crop drops it). Formulas follow the
reference's, which uses scikit-image: stretching maps the 2nd..98th percentiles of all channels onto 0..255;
histogram equalisation maps every value through the cumulative histogram (256 bins over the image's own range,
interpolated at the bin centres); adaptive equalisation is CLAHE on the HSV value channel with the clip limit 0.03
(OpenCV's CLAHE over an 8×8 tile grid, so close to, not bit-identical with, scikit-image's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from im_core import Image
from im_models.common._config import InferenceConfig

__all__ = ["adjust_images", "contrast_stretching", "histogram_equalization", "adaptive_equalization", "to_grayscale"]


def adjust_images(images: Sequence[Image], config: InferenceConfig) -> list[Image]:
    """``images`` with the config's grayscale and contrast steps applied (the same objects when it declares none)."""
    if not config.grayscale and config.contrast is None:
        return list(images)
    out = []
    for im in images:
        pixels = np.array(im.pixels, copy=True)  # C-contiguous, the caller's array untouched
        x0, y0, x1, y1 = (
            (0, 0, im.width, im.height)
            if config.static_crop is None
            else config.static_crop.pixels(im.height, im.width)
        )
        region = pixels[y0:y1, x0:x1]
        if config.grayscale:
            region = to_grayscale(region, im.color)
        if config.contrast == "Contrast Stretching":
            region = contrast_stretching(region)
        elif config.contrast == "Histogram Equalization":
            region = histogram_equalization(region)
        elif config.contrast == "Adaptive Equalization":
            region = adaptive_equalization(region, im.color)
        pixels[y0:y1, x0:x1] = region
        out.append(Image(pixels, im.color))
    return out


def to_grayscale(pixels: np.ndarray, color: str) -> np.ndarray:
    """Luma (OpenCV's weights) repeated on three channels."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_BGR2GRAY if color == "bgr" else cv2.COLOR_RGB2GRAY)
    return np.repeat(gray[:, :, None], 3, axis=2)


def contrast_stretching(pixels: np.ndarray) -> np.ndarray:
    """The 2nd..98th percentile (over all channels) stretched onto 0..255, values outside clipped."""
    lo, hi = np.percentile(pixels, 2), np.percentile(pixels, 98)
    if hi <= lo:
        return pixels
    scaled = (np.clip(pixels.astype(np.float64), lo, hi) - lo) / (hi - lo)
    return (scaled * 255.0).astype(np.uint8)


def histogram_equalization(pixels: np.ndarray, nbins: int = 256) -> np.ndarray:
    """Every value mapped through the cumulative histogram (``nbins`` bins over the image's own value range,
    interpolated at the bin centres), on values scaled to [0, 1], then back to 0..255 (truncated)."""
    values = pixels.astype(np.float32) / 255.0
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return pixels
    counts, edges = np.histogram(values, bins=nbins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2.0
    cdf = np.cumsum(counts) / float(counts.sum())
    out = np.interp(values.ravel(), centres, cdf).reshape(values.shape)
    return (out * 255.0).astype(np.uint8)


def adaptive_equalization(pixels: np.ndarray, color: str, clip_limit: float = 0.03) -> np.ndarray:
    """CLAHE on the HSV value channel (colour kept), clip limit in scikit-image's normalised unit."""
    import cv2

    to_hsv, back = (cv2.COLOR_BGR2HSV, cv2.COLOR_HSV2BGR) if color == "bgr" else (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB)
    hsv = cv2.cvtColor(np.ascontiguousarray(pixels), to_hsv)
    clahe = cv2.createCLAHE(clipLimit=max(clip_limit * 256.0, 1.0), tileGridSize=(8, 8))
    hsv[:, :, 2] = clahe.apply(np.ascontiguousarray(hsv[:, :, 2]))
    return cv2.cvtColor(hsv, back)
