"""A Hugging Face image processor's steps (``preprocessor_config.json``), reproduced in numpy.

CLIP's ``CLIPImageProcessor`` and DINOv2's ``BitImageProcessor`` do, in this order: convert to RGB, resize
(``size``: ``{"shortest_edge": s}`` keeps the aspect ratio with the long side ``int(s * long / short)``;
``{"height", "width"}`` stretches) with Pillow's ``resample`` filter, centre crop to ``crop_size`` (zero padding
when the image is smaller, top/left offset ``(in - crop) // 2``), rescale (``float64(uint8) * rescale_factor``, then
float32) and normalise (``(x - mean) / std`` in float32). In transformers 5 ``AutoImageProcessor`` gives the
Pillow backend (``CLIPImageProcessorPil``, ``BitImageProcessorPil``) when torchvision is not installed; this module
gives the same arrays (the resize is :func:`~im_models.embeddings._resample.pil_resize`, Pillow's own arithmetic).
With torchvision installed transformers picks its torchvision backend, whose antialiased resize differs from
Pillow's by up to a few grey levels.

Processors that exist only as a torchvision backend (DINOv3's ``DINOv3ViTImageProcessorFast``) rescale first and
resize the floats (``float_resize``: torch's antialiased ``interpolate``), then crop and normalise: im follows
them when ``image_processor_type`` names one (:data:`FLOAT_RESIZE_PROCESSORS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from im_core import Image
from im_core.errors import CorruptedModelPackageError
from im_models.embeddings._resample import PIL_FILTERS, float_resize, pil_resize

__all__ = ["FLOAT_RESIZE_PROCESSORS", "HFImageProcessor"]

#: ``image_processor_type`` values whose transformers class resizes rescaled floats (no Pillow backend)
FLOAT_RESIZE_PROCESSORS = frozenset({"DINOv3ViTImageProcessor", "DINOv3ViTImageProcessorFast"})


def _side(value: Any, what: str) -> tuple[int, int] | None:
    """``(height, width)`` of an int or a ``{"height", "width"}`` dict; ``None`` when absent."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, value
    if isinstance(value, Mapping) and isinstance(value.get("height"), int) and isinstance(value.get("width"), int):
        return int(value["height"]), int(value["width"])
    raise CorruptedModelPackageError(f"preprocessor_config.json: {what} must be an int or {{height, width}}.")


@dataclass(frozen=True)
class HFImageProcessor:
    """The processor's settings.

    Attributes:
        shortest_edge: resize so that the short side is this many pixels (``None``: see ``resize_to``).
        resize_to: ``(height, width)`` to stretch to when ``shortest_edge`` is ``None``; both ``None``: no resize.
        resample: Pillow filter code (2 bilinear, 3 bicubic).
        crop: ``(height, width)`` of the centre crop, or ``None``.
        rescale: factor applied to the uint8 values (``1/255``), or ``None``.
        mean, std: per-channel RGB normalisation, or ``None``.
        float_resize: rescale first and resize floats (torchvision-only processors), instead of Pillow on uint8.
    """

    shortest_edge: int | None = None
    resize_to: tuple[int, int] | None = None
    resample: int = 3
    crop: tuple[int, int] | None = None
    rescale: float | None = 1 / 255
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    float_resize: bool = False

    @classmethod
    def from_config(cls, data: Any, *, mean: Sequence[float], std: Sequence[float]) -> HFImageProcessor:
        """Settings from a ``preprocessor_config.json`` object; ``mean``/``std`` when it names none.

        Raises:
            CorruptedModelPackageError: not a JSON object, a malformed size, or a filter im does not reproduce.
        """
        if not isinstance(data, Mapping):
            raise CorruptedModelPackageError("preprocessor_config.json must hold a JSON object.")
        shortest: int | None = None
        resize_to: tuple[int, int] | None = None
        if data.get("do_resize", True):
            size = data.get("size")
            if isinstance(size, Mapping) and "shortest_edge" in size:
                if size.get("longest_edge") is not None:
                    raise CorruptedModelPackageError(
                        "preprocessor_config.json: size with both shortest_edge and longest_edge is not supported."
                    )
                shortest = int(size["shortest_edge"])
            else:
                resize_to = _side(size, "size")
        resample = int(data.get("resample", 3))
        if resample not in PIL_FILTERS:
            raise CorruptedModelPackageError(
                f"preprocessor_config.json: resample={resample} (im reproduces Pillow's bilinear 2 and bicubic 3)."
            )
        crop = _side(data.get("crop_size"), "crop_size") if data.get("do_center_crop", False) else None
        rescale = float(data.get("rescale_factor", 1 / 255)) if data.get("do_rescale", True) else None
        normalize = data.get("do_normalize", True)
        m = tuple(float(v) for v in data.get("image_mean", mean)) if normalize else None
        s = tuple(float(v) for v in data.get("image_std", std)) if normalize else None
        if (m is not None and len(m) != 3) or (s is not None and len(s) != 3):
            raise CorruptedModelPackageError("preprocessor_config.json: image_mean/image_std need 3 values (RGB).")
        floats = str(data.get("image_processor_type", "")) in FLOAT_RESIZE_PROCESSORS
        return cls(shortest, resize_to, resample, crop, rescale, m, s, floats)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the network input for an image of ``height`` x ``width``."""
        if self.crop is not None:
            return self.crop
        return self.resized_size(height, width)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after the resize step (transformers' ``get_resize_output_image_size``)."""
        if self.shortest_edge is not None:
            short, long = (width, height) if width <= height else (height, width)
            new_long = int(self.shortest_edge * long / short)
            return (new_long, self.shortest_edge) if width <= height else (self.shortest_edge, new_long)
        return self.resize_to if self.resize_to is not None else (height, width)

    def one(self, image: Image) -> np.ndarray:
        """float32 (3, H, W) network input of one image."""
        rgb = np.ascontiguousarray(image.to("rgb"))
        height, width = self.resized_size(image.height, image.width)
        if self.float_resize:
            y = rgb.astype(np.float64) * (self.rescale if self.rescale is not None else 1.0)
            if (height, width) != rgb.shape[:2]:
                y = float_resize(y, height, width, self.resample)
            y = (_center_crop(y, *self.crop) if self.crop is not None else y).astype(np.float32)
            return self._normalized(y)
        if (height, width) != rgb.shape[:2]:
            rgb = pil_resize(rgb, height, width, self.resample)
        if self.crop is not None:
            rgb = _center_crop(rgb, *self.crop)
        x = rgb.astype(np.float64) * self.rescale if self.rescale is not None else rgb
        return self._normalized(x.astype(np.float32))

    def _normalized(self, x: np.ndarray) -> np.ndarray:
        if self.mean is not None and self.std is not None:
            x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def __call__(self, images: Sequence[Image]) -> np.ndarray:
        """float32 (N, 3, H, W) for images that give the same size (a fixed crop or a fixed resize)."""
        return np.stack([self.one(im) for im in images])


def _center_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """transformers' ``center_crop``: offsets ``(in - out) // 2``; a smaller image is zero-padded around first
    (top/left padding ``ceil((out - in) / 2)``)."""
    h, w = pixels.shape[:2]
    if h < height or w < width:
        new_h, new_w = max(h, height), max(w, width)
        top, left = -(-(new_h - h) // 2), -(-(new_w - w) // 2)
        padded = np.zeros((new_h, new_w, pixels.shape[2]), pixels.dtype)
        padded[top : top + h, left : left + w] = pixels
        pixels, h, w = padded, new_h, new_w
    top, left = (h - height) // 2, (w - width) // 2
    return pixels[top : top + height, left : left + width]
