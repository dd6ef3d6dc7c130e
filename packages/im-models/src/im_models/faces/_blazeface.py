"""MediaPipe face detector (BlazeFace), front-camera 128×128 and back-camera 256×256 variants.

Network (the ONNX conversions by PINTO / keijiro of MediaPipe's TFLite models):

* input: float32 NHWC (1, S, S, 3), RGB scaled to [-1, 1] (``pixel / 127.5 - 1``); NCHW graphs are accepted too;
* outputs: per anchor one score logit and 16 regressors, either concatenated over the 896 anchors or split per
  feature map (the shipped files have ``[1, 512, 1] + [1, 384, 1]`` and ``[1, 512, 16] + [1, 384, 16]``).

Decoding, as MediaPipe's ``TensorsToDetectionsCalculator`` (x/y/w/h scale = S, fixed-size anchors):
``x_center = r[0] / S + anchor_x``, ``y_center = r[1] / S + anchor_y``, ``w = r[2] / S``, ``h = r[3] / S``, keypoint
``k`` at ``(r[4 + 2k] / S + anchor_x, r[5 + 2k] / S + anchor_y)``, all normalised to the input; the score is
``sigmoid(clip(logit, ±100))``. Overlapping detections are then merged with MediaPipe's weighted NMS.

Images are letterboxed (centred, black padding) into the square input, and results mapped back to original pixels.
Keypoints, in order: right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion (the subject's
right/left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from im_core import Detections, Image, ObjectDetectionModel
from im_core.errors import CorruptedModelPackageError
from im_models.common import (
    DETECTION_PARAMS,
    DetectionParams,
    ImageTransform,
    NetworkInput,
    prepare_batch,
    recommended_parameters,
    resolve_detection_params,
    sigmoid,
    top_k_positions,
    xywh_to_xyxy,
)
from im_models.faces._anchors import SsdAnchorOptions, blazeface_anchor_options, ssd_anchors
from im_models.faces._weighted_nms import weighted_nms

if TYPE_CHECKING:
    from im_core import LoadedModelInfo, PackageContext, Session

__all__ = ["BLAZEFACE_KEYPOINTS", "BlazeFaceDetector", "decode_blazeface"]

BLAZEFACE_KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")
_NUM_KEYPOINTS = len(BLAZEFACE_KEYPOINTS)
_NUM_COORDS = 4 + 2 * _NUM_KEYPOINTS
_SCORE_CLIP = 100.0  # MediaPipe's score_clipping_thresh
_PRE_NMS_TOP_K = 512
_DEFAULT_CONFIDENCE = 0.5
_DEFAULT_IOU = 0.3  # MediaPipe's min_suppression_threshold
_DEFAULT_MAX_DETECTIONS = 100


def decode_blazeface(raw: np.ndarray, anchors: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode regressors into boxes and keypoints in input pixels.

    Args:
        raw: float (N, 16) regressors ``dx, dy, w, h, (kx, ky) × 6`` in input pixels relative to the anchor.
        anchors: float (N, 4) ``x_center, y_center, width, height`` normalised to the input.
        input_size: S, the side of the square input (the x/y/w/h scale).

    Returns:
        boxes: float32 (N, 4) ``x1, y1, x2, y2`` in input pixels; keypoints: float32 (N, 6, 2) in input pixels.
    """
    raw = np.asarray(raw, np.float32)
    unit = anchors[:, 2:4] / input_size  # normalised units per regressor unit, (N, 2)
    centre = raw[:, :2] * unit + anchors[:, :2]
    xywh = np.concatenate([centre, raw[:, 2:4] * unit], axis=1) * input_size
    points = raw[:, 4:].reshape(-1, _NUM_KEYPOINTS, 2) * unit[:, None] + anchors[:, None, :2]
    return xywh_to_xyxy(xywh), (points * input_size).astype(np.float32)


@dataclass
class _Prepared:
    tensor: np.ndarray  # (B, S, S, 3) or (B, 3, S, S) float32
    transforms: list[ImageTransform]


class BlazeFaceDetector(ObjectDetectionModel):
    """Face boxes with 6 keypoints each (``Detections.keypoints`` (N, 6, 2)), one class ``"face"``.

    Parameters of a call: ``confidence`` (default 0.5), ``iou_threshold`` (0.3, MediaPipe's
    ``min_suppression_threshold``), ``max_detections`` (100).
    """

    #: keyword arguments of ``from_pretrained`` this family reads when it is built
    LOAD_OPTIONS = frozenset({"anchor_strides"})
    CALL_PARAMS = dict.fromkeys(DETECTION_PARAMS, "post")

    def __init__(
        self,
        session: Session,
        info: LoadedModelInfo,
        options: SsdAnchorOptions,
        *,
        nhwc: bool,
        score_outputs: list[str],
        box_outputs: list[str],
        recommended: Any = None,
    ) -> None:
        self._session = session
        self.metadata = info
        self._size = options.input_size[0]
        self._anchors, _ = ssd_anchors(options)
        self._nhwc = nhwc
        self._input = session.inputs[0].name
        self._score_outputs = score_outputs
        self._box_outputs = box_outputs
        self._net = NetworkInput(
            height=self._size,
            width=self._size,
            color="rgb",
            resize_mode="letterbox",
            padding_value=0,
            scaling_factor=127.5,
            mean=(1.0, 1.0, 1.0),
            std=(1.0, 1.0, 1.0),
        )
        self._recommended = recommended

    @property
    def session(self) -> Session:
        return self._session

    @classmethod
    def from_package(cls, ctx: PackageContext) -> BlazeFaceDetector:
        session = ctx.load_session(ctx.network_file())
        if len(session.inputs) != 1:
            raise CorruptedModelPackageError(f"BlazeFace takes one input image; this graph has {len(session.inputs)}.")
        nhwc, size = _input_layout(session.inputs[0].shape, ctx)
        options = blazeface_anchor_options((size, size))
        strides = ctx.options.get("anchor_strides")
        if strides is not None:
            options = SsdAnchorOptions(input_size=(size, size), strides=tuple(int(s) for s in strides))
        if options is None:
            raise CorruptedModelPackageError(
                f"No BlazeFace anchor layout is known for a {size}×{size} input (known: 128 front, 256 back); "
                "pass anchor_strides=[...] (MediaPipe's SsdAnchorsCalculator strides) to from_pretrained."
            )
        _, groups = ssd_anchors(options)
        scores, boxes = _match_outputs(session, groups)
        info = ctx.info(
            class_names=ctx.class_names(session, count=1) or ("face",),
            keypoint_names=BLAZEFACE_KEYPOINTS,
            input_size=(size, size),
        )
        return cls(
            session,
            info,
            options,
            nhwc=nhwc,
            score_outputs=scores,
            box_outputs=boxes,
            recommended=recommended_parameters(ctx),
        )

    def canvas_key(self, image: Image, **params: Any) -> None:
        return None  # a fixed input size: every image gets the same canvas, so any images may share a batch

    def pre_process(self, images: list[Image], **params: Any) -> _Prepared:
        tensor, transforms = prepare_batch(images, self._net)
        if self._nhwc:
            tensor = np.ascontiguousarray(tensor.transpose(0, 2, 3, 1))
        return _Prepared(tensor, transforms)

    def forward(self, prepared: _Prepared) -> dict[str, np.ndarray]:
        return self._session.run({self._input: prepared.tensor}, self._score_outputs + self._box_outputs)

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
        n = len(prepared.transforms)
        logits = np.concatenate([np.asarray(raw[name]) for name in self._score_outputs], axis=1).reshape(n, -1)
        regress = np.concatenate([np.asarray(raw[name]) for name in self._box_outputs], axis=1)
        scores = sigmoid(np.clip(logits, -_SCORE_CLIP, _SCORE_CLIP))
        return [self._one(scores[i], regress[i], t, p) for i, t in enumerate(prepared.transforms)]

    def _one(
        self, scores: np.ndarray, regress: np.ndarray, transform: ImageTransform, p: DetectionParams
    ) -> Detections:
        idx = np.flatnonzero(scores >= p.thresholds[0])
        if p.pre_nms_top_k is not None:
            idx = idx[top_k_positions(scores[idx], p.pre_nms_top_k)]  # ties: lower index
        if idx.size == 0 or p.max_detections == 0:
            return Detections.empty(self.class_names)
        candidates, candidate_points = decode_blazeface(regress[idx, :_NUM_COORDS], self._anchors[idx], self._size)
        boxes, kept, points = weighted_nms(candidates, scores[idx], candidate_points, p.iou_threshold, p.max_detections)
        assert points is not None
        return Detections(
            xyxy=transform.boxes_to_original(boxes),
            confidence=kept,
            class_id=np.zeros(len(boxes), np.int64),
            class_names=self.class_names,
            keypoints=transform.points_to_original(points),
        )


def _input_layout(shape: tuple[Any, ...], ctx: PackageContext) -> tuple[bool, int]:
    """``(nhwc, side)`` of a BlazeFace input shape (N, S, S, 3) or (N, 3, S, S)."""
    dims = list(shape)
    if len(dims) == 4 and dims[3] == 3:
        nhwc, spatial = True, dims[1:3]
    elif len(dims) == 4 and dims[1] == 3:
        nhwc, spatial = False, dims[2:4]
    else:
        raise CorruptedModelPackageError(f"BlazeFace expects an (N, S, S, 3) or (N, 3, S, S) input, got {shape}.")
    if all(isinstance(d, int) and d > 0 for d in spatial):
        if spatial[0] != spatial[1]:
            raise CorruptedModelPackageError(f"BlazeFace expects a square input, got {spatial[0]}×{spatial[1]}.")
        return nhwc, int(spatial[0])
    size = ctx.package.input_size
    if size is None or size[0] != size[1]:
        raise CorruptedModelPackageError(
            f"The BlazeFace graph's input {shape} has no fixed size and the package declares no square input_size."
        )
    return nhwc, int(size[0])


def _match_outputs(session: Session, groups: tuple[int, ...]) -> tuple[list[str], list[str]]:
    """Names of the score outputs and regressor outputs, each ordered like the anchor groups.

    Score outputs have one value per anchor (last dim 1, or 2-D); regressor outputs have at least 16. The graph may
    concatenate all anchors into one tensor or split them per feature map in any order; each side must add up to
    the anchor count.
    """
    scores: list[tuple[str, int]] = []
    boxes: list[tuple[str, int]] = []
    for spec in session.outputs:
        shape = spec.shape
        count = shape[1] if len(shape) >= 2 else None
        if not isinstance(count, int):
            raise CorruptedModelPackageError(f"BlazeFace output {spec.name!r} has no static anchor axis: {shape}.")
        last = shape[-1] if len(shape) == 3 else 1
        if last == 1:
            scores.append((spec.name, count))
        elif isinstance(last, int) and last >= _NUM_COORDS:
            boxes.append((spec.name, count))
        else:
            raise CorruptedModelPackageError(
                f"BlazeFace output {spec.name!r} has shape {shape}; expected (1, A, 1) scores or (1, A, 16) boxes."
            )
    total = sum(groups)
    ordered = []
    for kind, found in (("score", scores), ("box", boxes)):
        n = sum(c for _, c in found)
        if n != total:
            raise CorruptedModelPackageError(
                f"The BlazeFace graph's {kind} outputs cover {n} anchors ({', '.join(f'{a}:{c}' for a, c in found)}), "
                f"but its input size and strides give {total} anchors ({' + '.join(map(str, groups))}): the anchor "
                "layout does not match this model."
            )
        ordered.append(_order_like(found, groups))
    return ordered[0], ordered[1]


def _order_like(found: list[tuple[str, int]], groups: tuple[int, ...]) -> list[str]:
    """Order split outputs so their anchor counts follow ``groups``; one concatenated output is kept as is."""
    if len(found) == 1:
        return [found[0][0]]
    remaining = list(found)
    out = []
    for size in groups:
        pick = next((f for f in remaining if f[1] == size), None)
        if pick is None:
            raise CorruptedModelPackageError(
                f"BlazeFace outputs with anchor counts {[c for _, c in found]} do not split like the feature maps "
                f"{list(groups)}."
            )
        remaining.remove(pick)
        out.append(pick[0])
    return out
