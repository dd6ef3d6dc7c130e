"""Classification package configuration: how to resize/crop/normalise, and which activation to apply.

Three sources, first found wins:

1. ``preprocessing.json`` — a small ImageNet-style description::

       {"resize_short": 256, "crop": 224, "color": "bgr", "scaling": 255,
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "activation": "softmax"}

   ``crop`` is an int or ``[height, width]``; ``resize_short`` may be omitted (then the largest centred crop of
   the crop's aspect ratio is taken and resized); ``activation`` is ``softmax``, ``sigmoid``, ``none`` or
   ``auto`` (softmax unless the graph already outputs probabilities).
2. Roboflow's ``inference_config.json`` (parsed by :func:`im_models.common.parse_inference_config`).
3. Defaults: the network's fixed input size (224 if dynamic), short side resized to ``size / 0.875``, centre
   crop, RGB, /255, ImageNet mean and std.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from im_core.errors import CorruptedModelPackageError
from im_models.common import InferenceConfig, NetworkInput, parse_inference_config

__all__ = ["ClassifierConfig", "load_classifier_config"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ACTIVATIONS = ("auto", "softmax", "sigmoid", "none")


@dataclass(frozen=True)
class ClassifierConfig:
    """Pre-processing of one classifier.

    Attributes:
        network: tensor layout, colour order, scaling and normalisation (``resize_mode`` is ``"stretch"``: the
            crop below already has the network's aspect ratio).
        resize_short: when set, the short side is (conceptually) resized to this many pixels and the centred
            ``network.height × network.width`` window is kept; ``None`` with ``center_crop`` keeps the largest
            centred window of the network's aspect ratio.
        center_crop: crop the centre (ImageNet evaluation) rather than use the whole image.
        inference_config: the Roboflow config when the package has one (its own resize mode is then used).
        activation: ``auto``, ``softmax``, ``sigmoid`` or ``none``.
    """

    network: NetworkInput
    resize_short: float | None = None
    center_crop: bool = True
    inference_config: InferenceConfig | None = None
    activation: str = "auto"


def _size(value: Any) -> tuple[int, int]:
    if isinstance(value, int) and value > 0:
        return value, value
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return int(value[0]), int(value[1])
    raise CorruptedModelPackageError(f"preprocessing.json: crop is {value!r}; expected an int or [height, width].")


def _fixed_size(input_shape: Sequence[Any]) -> tuple[int, int] | None:
    if len(input_shape) == 4 and all(isinstance(d, int) and d > 0 for d in input_shape[2:]):
        return int(input_shape[2]), int(input_shape[3])
    return None


def load_classifier_config(ctx: Any, input_shape: Sequence[Any]) -> ClassifierConfig:
    """Read the package's pre-processing description (see the module docstring for the sources).

    Args:
        ctx: the :class:`im_core.PackageContext`.
        input_shape: the session's NCHW input shape (fixed height/width are used when nothing else says).
    """
    fixed = _fixed_size(input_shape)
    if ctx.has("preprocessing.json"):
        data = ctx.read_json("preprocessing.json")
        if not isinstance(data, dict):
            raise CorruptedModelPackageError("preprocessing.json must hold a JSON object.")
        h, w = _size(data.get("crop", list(fixed or (224, 224))))
        color = str(data.get("color", "rgb")).lower()
        activation = str(data.get("activation", "auto")).lower()
        if color not in ("rgb", "bgr") or activation not in ACTIVATIONS:
            raise CorruptedModelPackageError(
                f"preprocessing.json: color must be rgb/bgr and activation one of {ACTIVATIONS}; "
                f"got {color!r}, {activation!r}."
            )
        mean, std = data.get("mean", IMAGENET_MEAN), data.get("std", IMAGENET_STD)
        net = NetworkInput(
            height=h,
            width=w,
            color=color,  # type: ignore[arg-type]
            resize_mode="stretch",
            scaling_factor=float(data.get("scaling", 255.0)) or None,
            mean=None if mean is None else tuple(float(m) for m in mean),
            std=None if std is None else tuple(float(s) for s in std),
        )
        short = data.get("resize_short")
        return ClassifierConfig(
            net, None if short is None else float(short), bool(data.get("center_crop", True)), None, activation
        )
    if ctx.has("inference_config.json"):
        parsed = parse_inference_config(ctx.read_json("inference_config.json"))
        kind = str(parsed.post_processing.get("type", "auto")).lower()
        return ClassifierConfig(parsed.network_input, None, False, parsed, kind if kind in ACTIVATIONS else "auto")
    h, w = fixed or (224, 224)
    net = NetworkInput(height=h, width=w, resize_mode="stretch", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return ClassifierConfig(net, min(h, w) / 0.875, True)
