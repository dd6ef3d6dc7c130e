"""Depth-Anything (v1 / v2, relative or metric): one network ``depth`` (pixel_values → predicted_depth).

Package: a Hugging Face folder (``config.json`` with ``model_type: depth_anything``, ``model.safetensors``,
``preprocessor_config.json``) run by the ``transformers`` backend, or the package ``im export`` writes from it
(``depth.onnx`` / ``depth.torchscript`` + the same JSON files).

Pre-processing is the DPT image processor's: resize keeping the aspect ratio (the side whose scale is closer to 1
decides), both sides rounded to a multiple of ``ensure_multiple_of`` (14), Pillow bicubic, rescale by 1/255,
normalise. Post-processing is ``post_process_depth_estimation``'s: the (h, w) prediction resized bicubically
(PyTorch's ``align_corners=False`` kernel, a = -0.75) to the original size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from im_core import DepthEstimationModel, DepthMap, Image, LoadedModelInfo, PackageContext, Session
from im_core.errors import CorruptedModelPackageError
from im_core.sdk import check_names
from im_models.common import hf_image_processor_config, resize_like_pil, resize_like_torch, to_numpy

__all__ = ["DepthAnything"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _multiple(value: float, multiple: int) -> int:
    """DPT's ``constrain_to_multiple_of`` without bounds: round to the nearest multiple (half to even, as Python)."""
    out = round(value / multiple) * multiple
    return int(out if out > 0 else math.ceil(value / multiple) * multiple)


class DepthAnything(DepthEstimationModel):
    """``model(image)`` → :class:`~im_core.DepthMap` (H, W) at the image's size; ``kind`` from the config
    (``depth_estimation_type``: relative inverse depth, or metric metres up to ``max_depth``)."""

    LOAD_OPTIONS = frozenset()
    CALL_PARAMS = {}

    def __init__(self, session: Session, info: LoadedModelInfo, processor: dict[str, Any], kind: str) -> None:
        self.session = session
        self.metadata = info
        self.kind = kind
        self._height, self._width = int(processor["height"]), int(processor["width"])
        self._keep_ratio = bool(processor["keep_aspect_ratio"])
        self._multiple = int(processor["ensure_multiple_of"])
        self._resample = int(processor["resample"])
        self._scale = float(processor["rescale_factor"]) if processor["do_rescale"] else 1.0
        normalize = bool(processor["do_normalize"])
        self._mean = np.asarray(processor["image_mean"] if normalize else (0, 0, 0), np.float32)
        self._std = np.asarray(processor["image_std"] if normalize else (1, 1, 1), np.float32)

    @classmethod
    def from_package(cls, ctx: PackageContext) -> DepthAnything:
        check_names(dict(ctx.options), (), "DepthAnything takes no load option(s)")
        config = ctx.read_json("config.json") if ctx.has("config.json") else {}
        processor = _processor(hf_image_processor_config(ctx))
        kind = str((config or {}).get("depth_estimation_type") or "relative")
        if kind not in ("relative", "metric"):
            raise CorruptedModelPackageError(f"config.json: depth_estimation_type {kind!r} is not relative/metric.")
        session = ctx.load_part("depth")
        return cls(session, ctx.info(), processor, kind)

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) the network sees for an image of (height, width) pixels."""
        scale_h, scale_w = self._height / height, self._width / width
        if self._keep_ratio:
            if abs(1 - scale_w) < abs(1 - scale_h):
                scale_h = scale_w
            else:
                scale_w = scale_h
        return _multiple(scale_h * height, self._multiple), _multiple(scale_w * width, self._multiple)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return self.network_size(image.height, image.width)

    def pre_process(self, images: list[Image], **params: Any) -> tuple[np.ndarray, list[tuple[int, int]]]:
        h, w = self.network_size(images[0].height, images[0].width)
        batch = np.stack([resize_like_pil(im.to("rgb"), (w, h), self._resample) for im in images])
        x = (batch.astype(np.float32) * np.float32(self._scale) - self._mean) / self._std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), [(im.height, im.width) for im in images]

    def forward(self, prepared: tuple[np.ndarray, list[tuple[int, int]]]) -> np.ndarray:
        pixels = prepared[0]
        name, out = self.session.inputs[0].name, self.session.outputs[0].name
        return to_numpy(self.session.run({name: pixels}, [out])[out])

    def post_process(self, raw: np.ndarray, prepared: Any, **params: Any) -> list[DepthMap]:
        sizes = prepared[1]
        maps = raw.reshape(len(sizes), raw.shape[-2], raw.shape[-1]).astype(np.float32)
        return [DepthMap(resize_like_torch(d, size, "bicubic"), kind=self.kind) for d, size in zip(maps, sizes)]


def _processor(data: Any) -> dict[str, Any]:
    """The DPT image-processor settings from ``preprocessor_config.json``, with its defaults."""
    if not isinstance(data, dict):
        raise CorruptedModelPackageError("preprocessor_config.json must hold a JSON object.")
    size = data.get("size") or {}
    if not isinstance(size, dict) or not all(isinstance(size.get(k, 518), int) for k in ("height", "width")):
        raise CorruptedModelPackageError("preprocessor_config.json: size must be {'height': int, 'width': int}.")
    return {
        "height": size.get("height", 518),
        "width": size.get("width", 518),
        "keep_aspect_ratio": data.get("keep_aspect_ratio", True),
        "ensure_multiple_of": data.get("ensure_multiple_of", 14) or 1,
        "resample": data.get("resample", 3),
        "do_rescale": data.get("do_rescale", True),
        "rescale_factor": data.get("rescale_factor", 1 / 255),
        "do_normalize": data.get("do_normalize", True),
        "image_mean": data.get("image_mean", _IMAGENET_MEAN),
        "image_std": data.get("image_std", _IMAGENET_STD),
    }
