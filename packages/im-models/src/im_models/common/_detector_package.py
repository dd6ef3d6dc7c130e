"""The detector package loader: a Roboflow-layout or bare Ultralytics package read into a session, its
pre-processing configuration and class names (shared by the YOLO and DETR families), plus their ``forward``.

Two package layouts load the same way:

* Roboflow layout: ``inference_config.json`` + ``class_names.txt`` + the network file of the negotiated backend
  (``ctx.network_file()``: ``weights.onnx``, ``weights.torchscript``, ``weights.pt2``, ``engine.plan``...);
* a bare Ultralytics export (``ctx.weights_file`` set, no ``inference_config.json``): letterbox, pad 114, RGB, /255,
  image size and stride from the sniffed metadata (``ctx.package.input_size``, ``ctx.package.features["ultralytics"]``).

Class names come from ``ctx.class_names(session)`` in both layouts (the user's ``class_names=``, then
``class_names.txt``, the model metadata, the names embedded in the network file).

Rectangular inference is used when the graph's input height/width are dynamic (and, for Roboflow packages, the
config says ``dynamic_spatial_size_supported``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from im_core import Image, PackageContext, Session
from im_core.errors import CorruptedModelPackageError, InvalidParameterError, ModelRuntimeError
from im_models.common._adjust import adjust_images
from im_models.common._arrays import is_torch_tensor
from im_models.common._config import InferenceConfig, parse_inference_config, ultralytics_config
from im_models.common._preprocess import ImageTransform, canvas_size, input_spatial_dynamic, prepare_batch

__all__ = [
    "DetectorPackage",
    "Prepared",
    "canvas_key_of",
    "class_count_error",
    "load_detector_package",
    "pre_process_images",
    "resolve_class_names",
    "run_session",
    "static_dim",
    "substitute_fit_longer_edge",
]


@dataclass(frozen=True)
class Prepared:
    """Output of ``pre_process``.

    Attributes:
        tensor: (B, C, H, W) network input.
        transforms: per image, the map from original pixels to network pixels.
    """

    tensor: np.ndarray
    transforms: list[ImageTransform]


@dataclass
class DetectorPackage:
    """A loaded detector package (YOLO and DETR families).

    Attributes:
        session: the backend session.
        config: pre-processing configuration (Roboflow's, or the Ultralytics defaults).
        rect: whether rectangular inference is used.
        class_names: ``ctx.class_names(session)`` (may be empty); families that know the class count from the
            output shape resolve them again with ``count=`` (:meth:`im_core.PackageContext.class_names`).
        features: ``ctx.package.features`` (``ultralytics``: stride, kpt_shape, end2end…; ``nms_fused``).
        recommended: the package's (or model's) recommended thresholds, or ``None``.
        layout: ``"roboflow"`` or ``"ultralytics"``.
    """

    session: Session
    config: InferenceConfig
    rect: bool
    class_names: list[str]
    features: dict[str, Any]
    recommended: Any
    layout: str

    @property
    def input_name(self) -> str:
        return self.session.inputs[0].name

    @property
    def fused_nms(self) -> bool:
        """The graph already ran NMS / is end-to-end: outputs are (B, N, 6[+extra]) ``x1 y1 x2 y2 score class``."""
        ultra = self.features.get("ultralytics", {}) or {}
        return bool(self.config.fused_nms or "nms_fused" in self.features or ultra.get("end2end") or ultra.get("nms"))


def load_detector_package(ctx: PackageContext) -> DetectorPackage:
    """Read the package (either layout), load the session and decide the pre-processing."""
    features = dict(ctx.package.features or {})
    if ctx.has("inference_config.json"):
        config = parse_inference_config(ctx.read_json("inference_config.json"))
        layout = "roboflow"
    else:
        ultra = features.get("ultralytics", {}) or {}
        config = ultralytics_config(ctx.package.input_size, stride=int(ultra.get("stride", 32) or 32))
        layout = "ultralytics"
    weights = ctx.network_file()
    session = ctx.load_session(weights)
    if not session.inputs:
        raise CorruptedModelPackageError(f"{weights} declares no inputs.")
    shape = session.inputs[0].shape
    net = config.network_input
    spatial_dynamic = input_spatial_dynamic(shape)
    if len(shape) == 4 and not spatial_dynamic:
        h, w = int(shape[2]), int(shape[3])  # type: ignore[arg-type]
        if (h, w) != net.size:
            net = replace(net, height=h, width=w)
    if len(shape) == 4 and isinstance(shape[1], int) and shape[1] in (1, 3) and shape[1] != net.channels:
        net = replace(net, channels=int(shape[1]))
    dtype = session.inputs[0].dtype
    if dtype in ("float16", "float32", "uint8") and dtype != net.dtype:
        net = replace(net, dtype=dtype)
    unknown_shape = len(shape) != 4
    rect = net.dynamic and (spatial_dynamic or unknown_shape) if layout == "roboflow" else spatial_dynamic
    config = replace(config, network_input=replace(net, dynamic=rect))
    recommended = ctx.package.recommended_parameters or ctx.metadata.recommended_parameters
    names = list(ctx.class_names(session))
    return DetectorPackage(session, config, rect, names, features, recommended, layout)


def substitute_fit_longer_edge(package: DetectorPackage, family: str, mode: str, padding: int | None = None) -> None:
    """Replace a ``fit-longer-edge`` resize the family cannot undo by ``mode`` (the reference's implicit resize-mode
    substitution: ``stretch`` for RF-DETR, ``letterbox`` for the semantic segmenters), with a warning."""
    net = package.config.network_input
    if net.resize_mode != "fit-longer-edge":
        return
    import warnings

    warnings.warn(
        f"This {family} package was trained with the `fit-longer-edge` resize mode, which {family} results cannot "
        f"be mapped back from; `{mode}` is used instead (as inference-models does). Retrain or export with another "
        "resize mode to avoid the difference.",
        UserWarning,
        stacklevel=3,
    )
    new = replace(net, resize_mode=mode) if padding is None else replace(net, resize_mode=mode, padding_value=padding)
    package.config = replace(package.config, network_input=new)


def run_session(package: DetectorPackage, prepared: Prepared) -> list[Any]:
    """Run the session; outputs in the session's declared order.

    Each output is a numpy array, or — where the session keeps data on a GPU (``outputs_on_device``) — the torch
    tensor it returned, left on its device: the decoders reduce it there and copy only the surviving candidates
    (:mod:`im_models.common._candidates`). Other array-likes become numpy arrays.
    """
    out = package.session.run({package.input_name: prepared.tensor})
    values = [out[o.name] for o in package.session.outputs] if package.session.outputs else list(out.values())
    arrays = [v if isinstance(v, np.ndarray) or is_torch_tensor(v) else np.asarray(v) for v in values]
    if not arrays:
        raise ModelRuntimeError("The session returned no outputs.")
    return arrays


def pre_process_images(package: DetectorPackage, images: list[Image], params: dict[str, Any]) -> Prepared:
    """Build the batch tensor (shared ``pre_process`` of the YOLO and DETR families); ``params`` may hold
    ``image_size`` (the caller's ``Model.CALL_PARAMS`` checked the names)."""
    images = adjust_images(images, package.config)  # grayscale / contrast steps the config declares
    tensor, transforms = prepare_batch(
        images,
        package.config.network_input,
        rect=package.rect,
        static_crop=package.config.static_crop,
        size=_image_size(package, params),
    )
    return Prepared(tensor, transforms)


def canvas_key_of(package: DetectorPackage, image: Image, params: dict[str, Any]) -> tuple[int, int]:
    """The canvas :func:`pre_process_images` gives ``image`` alone (a family's ``Model.canvas_key``): images with
    the same one may share a batch without changing each other's results."""
    return canvas_size(
        image,
        package.config.network_input,
        rect=package.rect,
        static_crop=package.config.static_crop,
        size=_image_size(package, params),
    )


def _image_size(package: DetectorPackage, params: dict[str, Any]) -> tuple[int, int] | None:
    """The caller's ``image_size`` as ``(height, width)``, checked against the package, or ``None``."""
    size = params.get("image_size")
    if size is not None:
        try:
            size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        except (TypeError, ValueError, IndexError):
            raise InvalidParameterError(f"image_size must be an int or (height, width), got {size!r}.") from None
        if min(size) < 1 or (not package.rect and size != package.config.network_input.size):
            raise InvalidParameterError(
                f"image_size={size} is not possible: this package's input is fixed at "
                f"{package.config.network_input.size} (only graphs with dynamic height/width accept other sizes)."
            )
    return size


def class_count_error(what: str, expected: int, got_shape: tuple[int, ...], names: int) -> CorruptedModelPackageError:
    """The error for a package whose class names disagree with the network's output."""
    return CorruptedModelPackageError(
        f"The package lists {names} class names but the network's {what} output has shape {got_shape}, which "
        f"means {expected} classes. Fix class_names.txt (one name per line), the model metadata or the class_names= "
        "argument of from_pretrained."
    )


def resolve_class_names(names: list[str], num_classes: int | None, what: str, shape: tuple[Any, ...]) -> list[str]:
    """Check the class names against the class count implied by the output shape (``None`` = not static).

    Returns the names, or ``["0", "1", ...]`` when the package has none.

    Raises:
        CorruptedModelPackageError: the counts disagree.
    """
    if num_classes is None:
        return names
    if num_classes <= 0:
        raise CorruptedModelPackageError(f"The network's {what} output has shape {shape}, which holds no classes.")
    if not names:
        return [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise class_count_error(what, num_classes, shape, len(names))
    return names


def static_dim(shape: tuple[Any, ...], axis: int) -> int | None:
    """``shape[axis]`` when it is a fixed int, else ``None``."""
    if len(shape) <= axis:
        return None
    d = shape[axis]
    return int(d) if isinstance(d, int) and d >= 0 else None
