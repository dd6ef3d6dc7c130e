"""Package configuration: Roboflow's ``inference_config.json`` and Ultralytics export defaults.

Both end up as one :class:`InferenceConfig`, which is all the pre-processing helpers need. Unknown keys are ignored;
known keys with unusable values raise :class:`~im_core.errors.CorruptedModelPackageError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from im_core.errors import CorruptedModelPackageError

__all__ = [
    "CONTRAST_TYPES",
    "POST_PROCESSING_TYPES",
    "RESIZE_MODES",
    "InferenceConfig",
    "NetworkInput",
    "StaticCrop",
    "class_names_remapping",
    "parse_inference_config",
    "parse_keypoints_metadata",
    "ultralytics_config",
]

ResizeMode = Literal[
    "stretch", "letterbox", "letterbox-reflect-edges", "center-crop", "fit-longer-edge", "resize-shorter-center-crop"
]
#: Resize modes the pre-processing understands (``fit-longer-edge`` is a letterbox without centring: padding is
#: placed right/bottom).
#: ``resize-shorter-center-crop`` is Ultralytics' classification pre-processing (scale the shorter side to the input,
#: then take the centre); the others are Roboflow's.
RESIZE_MODES: tuple[str, ...] = (
    "stretch",
    "letterbox",
    "letterbox-reflect-edges",
    "center-crop",
    "fit-longer-edge",
    "resize-shorter-center-crop",
)
#: ``image_pre_processing.contrast.type`` values of the Roboflow layout
CONTRAST_TYPES: tuple[str, ...] = ("Adaptive Equalization", "Contrast Stretching", "Histogram Equalization")
#: ``post_processing.type`` values of the Roboflow layout (anything else is refused, as the reference refuses it)
POST_PROCESSING_TYPES: tuple[str, ...] = ("nms", "softmax", "sigmoid")


@dataclass(frozen=True)
class NetworkInput:
    """How images become the network's input tensor.

    Attributes:
        height / width: training input size in pixels (the tensor size for static models; the bound that the
            longer side is fitted into for dynamic ones).
        dynamic: the graph accepts other heights/widths (rectangular inference pads to ``stride`` multiples).
        stride: spatial divisor the dynamic input must respect (32 for YOLO).
        color: channel order the network expects (``"rgb"`` or ``"bgr"``).
        resize_mode: one of :data:`RESIZE_MODES`.
        padding_value: uint8 pixel value of letterbox padding, before scaling (114 for Ultralytics).
        scaling_factor: pixels are divided by this (255 → [0, 1]); ``None`` or 1 keeps 0..255.
        mean / std: per-channel normalisation applied after scaling, in the network's channel order; ``None`` = none.
        channels: input channels (3; 1 means grayscale networks, fed the mean of the three channels).
        dtype: numpy dtype name of the tensor (``float32``, ``float16``, ``uint8``).
    """

    height: int
    width: int
    dynamic: bool = False
    stride: int = 32
    color: Literal["rgb", "bgr"] = "rgb"
    resize_mode: str = "letterbox"
    padding_value: int = 114
    scaling_factor: float | None = 255.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channels: int = 3
    dtype: str = "float32"

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)


@dataclass(frozen=True)
class StaticCrop:
    """A crop applied to every image before anything else, in percent (0–100) of width/height (Roboflow's unit)."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def pixels(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` integer pixel bounds for an image of this size (at least 1 px wide and high)."""
        x0 = min(max(int(self.x_min / 100.0 * width), 0), width - 1)
        y0 = min(max(int(self.y_min / 100.0 * height), 0), height - 1)
        x1 = max(min(int(self.x_max / 100.0 * width), width), x0 + 1)
        y1 = max(min(int(self.y_max / 100.0 * height), height), y0 + 1)
        return x0, y0, x1, y1


@dataclass(frozen=True)
class InferenceConfig:
    """Everything a family needs from a package's configuration.

    Attributes:
        network_input: see :class:`NetworkInput`.
        static_crop: optional crop before resizing.
        static_batch_size: the graph's fixed batch size, when it has one.
        max_dynamic_batch_size: the largest batch for dynamic-batch graphs, when declared.
        post_processing: ``type`` (``nms``, ``softmax``, ``sigmoid``), ``fused`` and ``nms_parameters`` as given.
        raw: the parsed JSON (for family-specific keys).
        contrast: ``image_pre_processing.contrast`` when enabled: one of :data:`CONTRAST_TYPES`.
        grayscale: ``image_pre_processing.grayscale`` is enabled (images become gray, still three channels).
        removed_class_names: class names ``class_names_operations`` removes (``class_name_removal``): their
            detections are dropped and the remaining class ids renumbered (:func:`class_names_remapping`).
    """

    network_input: NetworkInput
    static_crop: StaticCrop | None = None
    static_batch_size: int | None = None
    max_dynamic_batch_size: int | None = None
    post_processing: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    contrast: str | None = None
    grayscale: bool = False
    removed_class_names: tuple[str, ...] = ()

    @property
    def fused_nms(self) -> bool:
        """Whether the graph already ran NMS (``post_processing.fused``)."""
        return bool(self.post_processing.get("fused", False))


def _bad(source: str, key: str, value: Any, want: str) -> CorruptedModelPackageError:
    return CorruptedModelPackageError(f"{source}: {key} is {value!r}; expected {want}.")


def _int(source: str, key: str, value: Any, *, minimum: int = 1) -> int:
    """An integer; a numeric string (``"412"``) is read as the reference's parser (pydantic, lax mode) reads it."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _bad(source, key, value, f"an integer >= {minimum}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < minimum:
        raise _bad(source, key, value, f"an integer >= {minimum}")
    return int(value)


def _floats(source: str, key: str, value: Any, n: int) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) not in (1, n):
        raise _bad(source, key, value, f"a list of {n} numbers")
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise _bad(source, key, value, f"a list of {n} numbers") from None
    return out * n if len(out) == 1 else out


def parse_inference_config(data: Mapping[str, Any], *, source: str = "inference_config.json") -> InferenceConfig:
    """Parse Roboflow's ``inference_config.json`` (already loaded as a dict).

    Args:
        data: the JSON object.
        source: name used in error messages.

    Raises:
        CorruptedModelPackageError: a required key is missing or a value cannot be used.
    """
    if not isinstance(data, Mapping):
        raise _bad(source, "the document", type(data).__name__, "a JSON object")
    net = data.get("network_input")
    if not isinstance(net, Mapping):
        raise CorruptedModelPackageError(f"{source} has no 'network_input' object.")
    size = net.get("training_input_size")
    if not isinstance(size, Mapping) or "height" not in size or "width" not in size:
        raise _bad(source, "network_input.training_input_size", size, "an object with 'height' and 'width'")
    height = _int(source, "network_input.training_input_size.height", size["height"])
    width = _int(source, "network_input.training_input_size.width", size["width"])
    color = str(net.get("color_mode", "rgb")).lower()
    if color not in ("rgb", "bgr"):
        raise _bad(source, "network_input.color_mode", color, "'rgb' or 'bgr'")
    mode = str(net.get("resize_mode", "letterbox")).lower()
    if mode not in RESIZE_MODES:
        raise _bad(source, "network_input.resize_mode", mode, f"one of {', '.join(RESIZE_MODES)}")
    pad = net.get("padding_value", 114 if mode.startswith("letterbox") else 0)
    pad = 0 if pad is None else _int(source, "network_input.padding_value", pad, minimum=0)
    scaling = net.get("scaling_factor", 255)
    if scaling is not None:
        if isinstance(scaling, bool) or not isinstance(scaling, (int, float)) or scaling <= 0:
            raise _bad(source, "network_input.scaling_factor", scaling, "a positive number")
        scaling = float(scaling)
    channels = _int(source, "network_input.input_channels", net.get("input_channels", 3))
    if channels not in (1, 3):
        raise _bad(source, "network_input.input_channels", channels, "1 or 3")
    mean = std = None
    norm = net.get("normalization")
    if norm is not None:
        if not isinstance(norm, Sequence) or len(norm) != 2:
            raise _bad(source, "network_input.normalization", norm, "[[means], [stds]]")
        mean = _floats(source, "network_input.normalization[0]", norm[0], channels)
        std = _floats(source, "network_input.normalization[1]", norm[1], channels)
        if any(s == 0 for s in std):
            raise _bad(source, "network_input.normalization[1]", norm[1], "non-zero standard deviations")
    stride = 32
    spatial = net.get("dynamic_spatial_size_mode")
    if isinstance(spatial, Mapping) and spatial.get("type") == "pad-to-be-divisible":
        stride = _int(source, "network_input.dynamic_spatial_size_mode.value", spatial.get("value", 32))
    network = NetworkInput(
        height=height,
        width=width,
        dynamic=bool(net.get("dynamic_spatial_size_supported", False)),
        stride=stride,
        color=color,  # type: ignore[arg-type]
        resize_mode=mode,
        padding_value=pad,
        scaling_factor=scaling,
        mean=mean,
        std=std,
        channels=channels,
    )
    forward = data.get("forward_pass") or {}
    static_batch = forward.get("static_batch_size") if isinstance(forward, Mapping) else None
    max_batch = forward.get("max_dynamic_batch_size") if isinstance(forward, Mapping) else None
    post = data.get("post_processing") or {}
    if not isinstance(post, Mapping):
        raise _bad(source, "post_processing", post, "an object")
    if post and post.get("type") not in POST_PROCESSING_TYPES:
        raise _bad(source, "post_processing.type", post.get("type"), f"one of {', '.join(POST_PROCESSING_TYPES)}")
    if "fused" in post and not isinstance(post["fused"], bool):
        raise _bad(source, "post_processing.fused", post["fused"], "true or false")
    pre = data.get("image_pre_processing")
    if pre is not None and not isinstance(pre, Mapping):
        raise _bad(source, "image_pre_processing", pre, "an object")
    return InferenceConfig(
        network_input=network,
        static_crop=_static_crop(data.get("image_pre_processing"), source),
        static_batch_size=None
        if static_batch is None
        else _int(source, "forward_pass.static_batch_size", static_batch),
        max_dynamic_batch_size=None
        if max_batch is None
        else _int(source, "forward_pass.max_dynamic_batch_size", max_batch),
        post_processing=dict(post),
        raw=dict(data),
        contrast=_contrast(pre, source),
        grayscale=_enabled(pre, "grayscale", source),
        removed_class_names=_class_names_operations(data.get("class_names_operations"), source),
    )


def _enabled(pre: Mapping[str, Any] | None, key: str, source: str) -> bool:
    """Whether ``image_pre_processing[key]`` is present and enabled (``enabled`` must be a boolean)."""
    step = (pre or {}).get(key)
    if step is None:
        return False
    if not isinstance(step, Mapping) or not isinstance(step.get("enabled", True), bool):
        raise _bad(source, f"image_pre_processing.{key}", step, "an object with a boolean 'enabled'")
    return bool(step.get("enabled", True))


def _contrast(pre: Mapping[str, Any] | None, source: str) -> str | None:
    if not _enabled(pre, "contrast", source):
        return None
    assert pre is not None
    kind = pre["contrast"].get("type")
    if kind not in CONTRAST_TYPES:
        raise _bad(source, "image_pre_processing.contrast.type", kind, f"one of {', '.join(CONTRAST_TYPES)}")
    return str(kind)


def _class_names_operations(ops: Any, source: str) -> tuple[str, ...]:
    """The class names removed by ``class_names_operations`` (a list of ``{"type": "class_name_removal",
    "class_name": ...}``, the only operation the layout defines)."""
    if ops is None:
        return ()
    want = "a list of {'type': 'class_name_removal', 'class_name': <name>} objects"
    if not isinstance(ops, Sequence) or isinstance(ops, str):
        raise _bad(source, "class_names_operations", ops, want)
    removed = []
    for i, op in enumerate(ops):
        if (
            not isinstance(op, Mapping)
            or op.get("type") != "class_name_removal"
            or not isinstance(op.get("class_name"), str)
        ):
            raise _bad(source, f"class_names_operations[{i}]", op, want)
        removed.append(op["class_name"])
    return tuple(removed)


def class_names_remapping(names: Sequence[str], removed: Sequence[str]) -> tuple[list[str], Any]:
    """The class names left after ``class_names_operations`` and, per original class id, its new id (``-1`` for a
    removed class) as an int64 numpy array."""
    import numpy as np

    gone = set(removed)
    kept = [n for n in names if n not in gone]
    mapping = np.full(len(names), -1, np.int64)
    next_id = 0
    for i, name in enumerate(names):
        if name not in gone:
            mapping[i] = next_id
            next_id += 1
    return kept, mapping


def _static_crop(pre: Any, source: str) -> StaticCrop | None:
    if not isinstance(pre, Mapping):
        return None
    crop = pre.get("static-crop") or pre.get("static_crop")
    if not isinstance(crop, Mapping) or not crop.get("enabled", True):
        return None
    try:
        values = [float(crop[k]) for k in ("x_min", "y_min", "x_max", "y_max")]
    except (KeyError, TypeError, ValueError):
        raise _bad(source, "image_pre_processing.static-crop", dict(crop), "x_min, y_min, x_max, y_max") from None
    if not (0 <= values[0] < values[2] <= 100 and 0 <= values[1] < values[3] <= 100):
        raise _bad(source, "image_pre_processing.static-crop", values, "percentages with min < max")
    return StaticCrop(*values)


def ultralytics_config(
    input_size: tuple[int, int] | None, *, stride: int = 32, dynamic: bool = False, fallback: int = 640
) -> InferenceConfig:
    """The pre-processing an Ultralytics export expects: letterbox, pad 114, RGB, ``/255``, NCHW float32.

    Args:
        input_size: ``(height, width)`` from the export's ``imgsz`` (``None`` → ``fallback`` square).
        stride: the model's largest stride (rectangular inference pads to multiples of it).
        dynamic: whether the graph's spatial input dims are dynamic.
        fallback: side used when the size is unknown.
    """
    h, w = input_size if input_size is not None else (fallback, fallback)
    net = NetworkInput(height=int(h), width=int(w), dynamic=dynamic, stride=int(stride))
    return InferenceConfig(network_input=net, post_processing={"type": "nms", "fused": False})


def parse_keypoints_metadata(
    data: Any, *, source: str = "keypoints_metadata.json"
) -> tuple[list[list[str]], list[list[tuple[int, int]]]]:
    """Roboflow's ``keypoints_metadata.json``, per object class: ``(keypoint names, skeleton edges)``, each a list
    indexed by ``object_class_id``.

    The file is a list with one entry per object class: ``object_class_id`` (0 .. entries - 1, every class
    described), ``keypoints`` (``{"<index>": name}``, ordered by the integer index) and ``edges``
    (``[{"from": i, "to": j}]``, both ends existing keypoints).

    Raises:
        CorruptedModelPackageError: anything else, naming what is wrong (the files the reference refuses).
    """

    def bad(why: str) -> CorruptedModelPackageError:
        return CorruptedModelPackageError(f"{source} is malformed: {why}. Fix or remove the file.")

    if not isinstance(data, list) or not data:
        raise bad(f"expected a non-empty list with one entry per object class, got {type(data).__name__}")
    names: list[list[str] | None] = [None] * len(data)
    skeletons: list[list[tuple[int, int]] | None] = [None] * len(data)
    for n, entry in enumerate(data):
        if not isinstance(entry, Mapping) or "object_class_id" not in entry:
            raise bad(f"entry {n} has no 'object_class_id'")
        cid = entry["object_class_id"]
        if isinstance(cid, bool) or not isinstance(cid, int) or not 0 <= cid < len(data):
            raise bad(f"entry {n}: object_class_id {cid!r} is not a class id in 0..{len(data) - 1}")
        kps = entry.get("keypoints")
        if not isinstance(kps, Mapping):
            raise bad(f"class {cid} has no 'keypoints' object")
        try:
            ordered = sorted((int(k), str(v)) for k, v in kps.items())
        except (TypeError, ValueError):
            raise bad(f"class {cid}: keypoint ids must be integers, got {sorted(map(str, kps))[:5]}") from None
        names[cid] = [name for _, name in ordered]
        edges = entry.get("edges")
        if not isinstance(edges, list):
            raise bad(f"class {cid} has no 'edges' list")
        skeleton = []
        for edge in edges:
            if not isinstance(edge, Mapping) or "from" not in edge or "to" not in edge:
                raise bad(f'class {cid}: each edge needs integer "from" and "to", got {edge!r}')
            a, b = edge["from"], edge["to"]
            if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < len(ordered) for x in (a, b)):
                raise bad(f"class {cid}: edge {a!r}->{b!r} names a keypoint outside 0..{len(ordered) - 1}")
            skeleton.append((a, b))
        skeletons[cid] = skeleton
    missing = [i for i, v in enumerate(names) if v is None]
    if missing:
        raise bad(f"object classes {missing} are not described (each class id appears once)")
    return [v for v in names if v is not None], [v for v in skeletons if v is not None]
