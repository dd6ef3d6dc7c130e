"""Resizing exactly as Hugging Face image processors do it (Pillow, antialiased), for reference parity."""

from __future__ import annotations

import numpy as np

__all__ = ["PIL_RESAMPLE", "resize_like_pil"]

#: PIL resample codes as Hugging Face ``preprocessor_config.json`` stores them (``"resample": 3``)
PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def resize_like_pil(pixels: np.ndarray, size: tuple[int, int], resample: int | str = 3) -> np.ndarray:
    """Resize (H, W, C) uint8 pixels to ``size`` = (width, height) with Pillow, as transformers' image processors
    do without torchvision: antialiased when shrinking, so the model sees the pixels it was trained on.

    Args:
        pixels: (H, W, 3) or (H, W) uint8.
        size: (width, height) in pixels.
        resample: a PIL code (3 = bicubic, 2 = bilinear...) or its name.

    Raises:
        MissingDependencyError: Pillow is not installed.
    """
    try:
        from PIL import Image as PILImage
    except ImportError as exc:  # pragma: no cover - Pillow is a dependency of im-models
        from im_core.errors import MissingDependencyError

        raise MissingDependencyError(
            f"Resizing as the model's processor does needs Pillow ({exc}).", distribution="pillow"
        ) from exc
    code = resample if isinstance(resample, int) else {v: k for k, v in PIL_RESAMPLE.items()}[resample]
    width, height = int(size[0]), int(size[1])
    if pixels.shape[1] == width and pixels.shape[0] == height:
        return pixels
    image = PILImage.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(image.resize((width, height), resample=PILImage.Resampling(code)))
