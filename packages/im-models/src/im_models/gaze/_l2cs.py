"""L2CS-Net gaze estimation: a face crop → yaw and pitch from two binned classification heads.

The published weights (``L2CSNet_gaze360.pkl`` from the L2CS-Net authors) are a torch ``state_dict`` of a
ResNet-50 (torchvision ``Bottleneck`` blocks, layers [3, 4, 6, 3]; keys ``conv1``, ``bn1``, ``layer1``…``layer4``)
with two heads on the 2048-d average-pooled feature: ``fc_yaw_gaze`` and ``fc_pitch_gaze``, each
``Linear(2048, 90)`` (plus an unused ``fc_finetune``). Input: 448×448 RGB, ``/255`` then ImageNet mean/std.
The Gaze360 model has 90 bins of 4°: ``angle° = Σ softmax(logits)_i · i · 4 − 180`` (the MPIIGaze model: 28 bins
of 3°, ``− 42``). A package for this family is that module exported to ONNX (or TorchScript) with the two heads as
its outputs, in ``forward``'s order ``(fc_yaw_gaze, fc_pitch_gaze)``.

Which head is which: the upstream demo unpacks the outputs as ``gaze_pitch, gaze_yaw = model(img)``, the reverse of
the head names, because its Gaze360 loader calls the horizontal label column "pitch". The head *names* match the
physical angles (``fc_yaw_gaze`` = horizontal), so this family reads output 0 as yaw and output 1 as pitch, unless
the outputs are named ``*yaw*`` / ``*pitch*`` or the package sets ``output_order``. Outputs with one value per face
(shape (N,) or (N, 1)) are taken as angles already decoded, in radians.

Faces: each input image is one face crop (stretched to the input) and gives a ``Gaze`` with one angle pair and
``faces=None``. Finding the faces in a scene and estimating the gaze of each is the ``face-gaze`` pipeline's job
(``im_pipelines.FaceGazePipeline``): it crops every face box found by a face detector and sends the crops here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from im_core import Gaze, GazeModel, Image
from im_core.errors import CorruptedModelPackageError, DependencyModelError, InvalidParameterError
from im_models.common import NetworkInput, prepare_batch, softmax

if TYPE_CHECKING:
    from im_core import LoadedModelInfo, PackageContext, Session

__all__ = ["L2CSGaze", "binned_angles"]

_DEFAULT_SIZE = 448
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
#: bins → (bin width in degrees, angle of bin 0 in degrees): Gaze360 and MPIIGaze models.
_BIN_CONVENTIONS = {90: (4.0, -180.0), 28: (3.0, -42.0)}


def binned_angles(logits: np.ndarray, bin_width: float, offset: float) -> np.ndarray:
    """Soft-argmax of binned angle logits.

    Args:
        logits: float (N, B) unnormalised scores over B angle bins.
        bin_width: degrees per bin.
        offset: degrees of bin 0.

    Returns:
        float32 (N,) angles in radians: ``(Σ_i softmax(logits)_i · i · bin_width + offset) · π / 180``.
    """
    p = softmax(logits, axis=-1).astype(np.float64)
    degrees = p @ np.arange(p.shape[-1], dtype=np.float64) * bin_width + offset
    return np.deg2rad(degrees).astype(np.float32)


@dataclass(frozen=True)
class _Prepared:
    tensor: np.ndarray  # (N, 3, S, S) float32 face crops


@dataclass(frozen=True)
class _Head:
    name: str
    binned: bool
    bin_width: float
    offset: float


class L2CSGaze(GazeModel):
    """Yaw and pitch (radians) of the face each input image shows; see the module docstring for the conventions.

    No call parameters (the face detector's and the crop margin belong to the ``face-gaze`` pipeline).
    """

    #: keyword arguments of ``from_pretrained`` this family reads when it is built
    LOAD_OPTIONS = frozenset({"output_order", "bin_width", "angle_offset"})
    CALL_PARAMS = {}

    def __init__(
        self,
        session: Session,
        info: LoadedModelInfo,
        *,
        yaw: _Head,
        pitch: _Head,
        input_size: tuple[int, int],
    ) -> None:
        self._session = session
        self.metadata = info
        self._input = session.inputs[0].name
        self._yaw = yaw
        self._pitch = pitch
        self._net = NetworkInput(
            height=input_size[0],
            width=input_size[1],
            color="rgb",
            resize_mode="stretch",
            scaling_factor=255.0,
            mean=_IMAGENET_MEAN,
            std=_IMAGENET_STD,
        )

    @property
    def session(self) -> Session:
        return self._session

    @classmethod
    def from_package(cls, ctx: PackageContext) -> L2CSGaze:
        if "face_detector" in ctx.dependencies:
            raise DependencyModelError(
                f"{ctx.model_id!r} declares a 'face_detector' dependency, but L2CS-Net estimates the gaze of the face "
                "crops it is given; it no longer runs a face detector itself. Use the 'face-gaze' pipeline, which "
                "finds the faces and sends each crop here: AutoModelPipeline.from_pretrained('face-gaze', "
                "models_parameters=[face_detector, gaze_model]) (im_pipelines), or FaceGazePipeline.from_models([...])."
            )
        session = ctx.load_session(ctx.network_file())
        if len(session.inputs) != 1 or len(session.inputs[0].shape) != 4:
            raise CorruptedModelPackageError("L2CS-Net takes one (N, 3, H, W) input of face crops.")
        shape = session.inputs[0].shape
        spatial = shape[2:]
        if all(isinstance(d, int) and d > 0 for d in spatial):
            size = (int(spatial[0]), int(spatial[1]))  # type: ignore[arg-type]
        else:
            size = tuple(ctx.package.input_size or (_DEFAULT_SIZE, _DEFAULT_SIZE))  # type: ignore[assignment]
        yaw, pitch = _heads(session, ctx.options)
        return cls(session, ctx.info(input_size=size), yaw=yaw, pitch=pitch, input_size=size)

    def canvas_key(self, image: Image, **params: Any) -> None:
        return None  # a fixed input size: every image gets the same canvas, so any images may share a batch

    def pre_process(self, images: list[Image], **params: Any) -> _Prepared:
        """Each image (a face crop) stretched to the input, RGB, ImageNet-normalised: (N, 3, S, S) float32."""
        return _Prepared(prepare_batch(images, self._net)[0])

    def forward(self, prepared: _Prepared) -> dict[str, np.ndarray]:
        return self._session.run({self._input: prepared.tensor}, [self._yaw.name, self._pitch.name])

    def post_process(self, raw: dict[str, Any], prepared: _Prepared, **params: Any) -> list[Gaze]:
        total = len(prepared.tensor)
        yaw = _decode(raw, self._yaw, total)
        pitch = _decode(raw, self._pitch, total)
        return [Gaze(yaw[i : i + 1], pitch[i : i + 1]) for i in range(total)]


def _decode(raw: dict[str, Any], head: _Head, total: int) -> np.ndarray:
    values = np.asarray(raw[head.name])
    if head.binned:
        return binned_angles(values.reshape(total, -1), head.bin_width, head.offset)
    return values.reshape(total).astype(np.float32)


def _heads(session: Session, options: dict[str, Any]) -> tuple[_Head, _Head]:
    """The yaw and pitch outputs with their bin conventions."""
    outputs = list(session.outputs)
    if len(outputs) != 2:
        raise CorruptedModelPackageError(f"L2CS-Net has two outputs (yaw, pitch); this graph has {len(outputs)}.")
    names = [o.name for o in outputs]
    order: Sequence[str] | None = options.get("output_order")
    if order is None:
        yaw_named = [n for n in names if "yaw" in n.lower()]
        pitch_named = [n for n in names if "pitch" in n.lower()]
        if len(yaw_named) == 1 and len(pitch_named) == 1 and yaw_named != pitch_named:
            order = ["yaw", "pitch"] if names[0] == yaw_named[0] else ["pitch", "yaw"]
        else:
            order = ["yaw", "pitch"]
    if sorted(order) != ["pitch", "yaw"]:
        raise InvalidParameterError(f"output_order must name 'yaw' and 'pitch' once each, got {list(order)}.")
    heads = {}
    for role, spec in zip(order, outputs):
        heads[role] = _head(spec.name, spec.shape, options)
    return heads["yaw"], heads["pitch"]


def _head(name: str, shape: tuple[Any, ...], options: dict[str, Any]) -> _Head:
    bins = shape[-1] if len(shape) == 2 else 1
    if len(shape) == 1 or bins == 1:
        return _Head(name, False, 0.0, 0.0)
    if not isinstance(bins, int):
        raise CorruptedModelPackageError(f"L2CS-Net output {name!r} has no static bin axis: {list(shape)}.")
    width = options.get("bin_width")
    offset = options.get("angle_offset")
    if width is None or offset is None:
        if bins not in _BIN_CONVENTIONS:
            raise CorruptedModelPackageError(
                f"L2CS-Net output {name!r} has {bins} bins; known layouts are 90 (Gaze360, 4°) and 28 (MPIIGaze, 3°). "
                "Pass bin_width and angle_offset (degrees) to from_pretrained for another layout."
            )
        width, offset = _BIN_CONVENTIONS[bins]
    return _Head(name, True, float(width), float(offset))
