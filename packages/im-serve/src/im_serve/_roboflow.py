"""The Roboflow inference server's JSON routes (``/infer/object_detection``, ``/infer/instance_segmentation``,
``/infer/classification``, ``/infer/keypoints_detection``) and the model registry routes its HTTP client calls first
(``GET /model/registry``, ``POST /model/add``, ``POST /model/remove``), with its request and response shapes, so that
``inference_sdk.InferenceHTTPClient(api_url=...)`` works against ``im serve`` unchanged.

The shapes follow the ``roboflow/inference`` repository: requests in ``inference/core/entities/requests/inference.py``,
responses in ``inference/core/entities/responses/inference.py``, and what the client sends in
``inference_sdk/http/client.py`` (``infer_from_api_v1``: ``model_id``, ``image: {"type": "base64", "value": ...}``
or a list of them, and the task's parameters). Boxes are ``x, y`` (centre), ``width, height`` in pixels of the
original image; ``class`` is the class name.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable
from typing import Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from im_core.errors import InvalidParameterError, ModelInputError

__all__ = [
    "ROUTE_TASKS",
    "ClassificationRequest",
    "InstanceSegmentationRequest",
    "KeypointsDetectionRequest",
    "ObjectDetectionRequest",
    "fetch_url",
    "image_bytes",
    "im_params",
    "renderer",
]

Confidence = Union[float, Literal["best", "default"]]  # noqa: UP007 (pydantic on Python 3.10)


class RequestImage(BaseModel):
    """``{"type": "base64" | "url" | "numpy" | ..., "value": ...}``; im takes ``base64`` (with or without a
    ``data:image/...;base64,`` prefix) and, when the server allows it, ``url``."""

    type: str
    value: Any = None


class CVRequest(BaseModel):
    """Fields every vision request has. Fields of the Roboflow server that im has no use for (``api_key``, ``id``,
    ``disable_active_learning``, ``source``, ``fix_batch_size``, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model_id: str
    image: Union[RequestImage, list[RequestImage]]  # noqa: UP007
    disable_preproc_auto_orient: bool | None = False
    disable_preproc_contrast: bool | None = False
    disable_preproc_grayscale: bool | None = False
    disable_preproc_static_crop: bool | None = False
    visualize_predictions: bool | None = False


class ClassificationRequest(CVRequest):
    """``/infer/classification``: ``confidence`` left out or ``"default"``/``"best"``: every class is listed."""

    confidence: Confidence | None = None


class ObjectDetectionRequest(CVRequest):
    """``/infer/object_detection``: ``confidence`` left out (or ``"default"``/``"best"``): the model's own default
    in im (not the Roboflow server's 0.4)."""

    confidence: Confidence | None = None
    iou_threshold: float | None = None
    max_detections: int | None = None
    max_candidates: int | None = None
    class_agnostic_nms: bool | None = None
    class_filter: list[str] | None = None


class KeypointsDetectionRequest(ObjectDetectionRequest):
    """``/infer/keypoints_detection``: keypoints below ``keypoint_confidence`` are left out of each prediction."""

    keypoint_confidence: float | None = 0.0


class InstanceSegmentationRequest(ObjectDetectionRequest):
    """``/infer/instance_segmentation``: ``response_mask_format`` ``polygon`` (``points``, the largest outer contour
    of each mask, as the Roboflow server draws it) or ``rle`` (``rle``: COCO's uncompressed RLE, ``{"size": [h, w],
    "counts": [...]}``). ``mask_decode_mode`` and ``tradeoff_factor`` are accepted and ignored."""

    mask_decode_mode: str | None = "accurate"
    tradeoff_factor: float | None = 0.0
    response_mask_format: Literal["polygon", "rle"] = "polygon"


# --- responses (for the OpenAPI schema; the routes build the same shapes as plain dicts) ------------------------


class Point(BaseModel):
    x: float
    y: float


class Keypoint(Point):
    model_config = ConfigDict(populate_by_name=True)
    confidence: float
    class_id: int
    class_name: str = Field(alias="class")


class Prediction(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    x: float = Field(description="box centre, pixels")
    y: float = Field(description="box centre, pixels")
    width: float
    height: float
    confidence: float
    class_name: str = Field(alias="class")
    class_id: int
    detection_id: str


class KeypointsPrediction(Prediction):
    keypoints: list[Keypoint]


class SegmentationPrediction(Prediction):
    points: list[Point] | None = None
    rle: dict[str, Any] | None = None
    mask_format: Literal["polygon", "rle"] = "polygon"


class ImageSize(BaseModel):
    width: int
    height: int


class Response(BaseModel):
    inference_id: str
    time: float = Field(description="seconds the worker spent on the request's batch group")
    image: ImageSize


class ObjectDetectionResponse(Response):
    predictions: list[Prediction]


class KeypointsDetectionResponse(Response):
    predictions: list[KeypointsPrediction]


class InstanceSegmentationResponse(Response):
    predictions: list[SegmentationPrediction]


class ClassPrediction(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    class_name: str = Field(alias="class")
    class_id: int
    confidence: float


class ClassificationResponse(Response):
    predictions: list[ClassPrediction]
    top: str
    confidence: float


class LabelScore(BaseModel):
    confidence: float
    class_id: int


class MultiLabelClassificationResponse(Response):
    predictions: dict[str, LabelScore]
    predicted_classes: list[str]


class ModelDescription(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model_id: str
    task_type: str
    batch_size: int | str | None = None
    input_height: int | None = None
    input_width: int | None = None


class RegisteredModels(BaseModel):
    models: list[ModelDescription]


class ModelAddRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())
    model_id: str


#: route -> (request model, response models, im tasks it serves)
ROUTE_TASKS: dict[str, tuple[type[CVRequest], Any, frozenset[str]]] = {
    "object_detection": (
        ObjectDetectionRequest,
        ObjectDetectionResponse,
        frozenset({"object-detection", "instance-segmentation", "keypoint-detection"}),
    ),
    "instance_segmentation": (
        InstanceSegmentationRequest,
        InstanceSegmentationResponse,
        frozenset({"instance-segmentation"}),
    ),
    "keypoints_detection": (
        KeypointsDetectionRequest,
        KeypointsDetectionResponse,
        frozenset({"keypoint-detection", "object-detection"}),
    ),
    "classification": (
        ClassificationRequest,
        Union[ClassificationResponse, MultiLabelClassificationResponse],  # noqa: UP007
        frozenset({"classification", "multi-label-classification"}),
    ),
}

#: im task -> the Roboflow client's task type (``/model/registry``)
CLIENT_TASK = {"multi-label-classification": "classification"}


# --- images ---------------------------------------------------------------------------------------------------

_DATA_URI = re.compile(r"^data:image/[a-zA-Z0-9.+-]+;base64,")


def _where(index: int | None) -> str:
    return "" if index is None else f" (image {index} of the list)"


def image_bytes(image: RequestImage, index: int | None, *, allow_url: bool) -> bytes | str:
    """The encoded image of a ``base64`` item, or the URL of a ``url`` item (fetched by the caller).

    Raises:
        ModelInputError: malformed base64, a URL while URL images are off, a pickled ``numpy`` item (never
            unpickled: it could run code), or another type.
    """
    kind = image.type.lower()
    if kind == "base64":
        if not isinstance(image.value, str) or not image.value:
            raise ModelInputError(f"Image{_where(index)}: a base64 image needs its data as a non-empty string value.")
        try:
            return base64.b64decode(_DATA_URI.sub("", image.value), validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ModelInputError(f"Image{_where(index)} is not valid base64: {exc}.") from None
    if kind == "url":
        if not allow_url:
            raise ModelInputError(
                f"Image{_where(index)} is a URL, and this server does not fetch URLs (a server-side request forgery "
                "risk): send the image as base64, or start the server with --allow-url-images "
                "(create_app(..., allow_url_images=True))."
            )
        if not isinstance(image.value, str) or not re.match(r"^https?://", image.value):
            raise ModelInputError(f"Image{_where(index)}: a URL image needs an http:// or https:// URL as its value.")
        return image.value
    if kind in ("numpy", "numpy_object", "pil", "file", "multipart"):
        raise ModelInputError(
            f"Image{_where(index)} has type {image.type!r}: im serve takes 'base64' (and 'url' when allowed); "
            "pickled arrays are never loaded (unpickling can run code). Encode the image (JPEG/PNG) as base64."
        )
    raise ModelInputError(f"Image{_where(index)} has unknown type {image.type!r}; use 'base64' (or 'url').")


def fetch_url(url: str, index: int | None, *, max_bytes: int, timeout: float) -> bytes:
    """GET ``url``: at most ``max_bytes`` bytes, ``timeout`` seconds for the connection and each read.

    Raises:
        ModelInputError: the fetch failed, or the body is larger than ``max_bytes``.
    """
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "im-serve"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # scheme checked: http/https
            data = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise ModelInputError(f"Image URL {url!r}{_where(index)} answered HTTP {exc.code}.") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelInputError(f"Image URL {url!r}{_where(index)} could not be fetched: {reason}.") from None
    if len(data) > max_bytes:
        raise ModelInputError(
            f"Image URL {url!r}{_where(index)} is larger than this server's limit of {max_bytes} bytes."
        )
    return data


# --- parameters and results ------------------------------------------------------------------------------------


def _threshold(value: Confidence | None) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def im_params(body: CVRequest, class_names: list[str] | None) -> tuple[dict[str, Any], bool]:
    """The im call parameters of a request, and whether every prediction must be dropped (a ``class_filter`` that
    names none of the model's classes, which the Roboflow server answers with no prediction).

    Raises:
        InvalidParameterError: ``visualize_predictions`` (im serve draws nothing; use ``im predict --save``).
    """
    if body.visualize_predictions:
        raise InvalidParameterError(
            "visualize_predictions is not supported by im serve: draw the predictions on the client "
            "(supervision, or im_core's annotate)."
        )
    if not isinstance(body, ObjectDetectionRequest):
        return {}, False
    params: dict[str, Any] = {}
    confidence = _threshold(body.confidence)
    if confidence is not None:
        params["confidence"] = confidence
    for name, im_name in (
        ("iou_threshold", "iou_threshold"),
        ("max_detections", "max_detections"),
        ("max_candidates", "pre_nms_top_k"),
        ("class_agnostic_nms", "class_agnostic_nms"),
    ):
        value = getattr(body, name)
        if value is not None:
            params[im_name] = value
    drop_all = False
    if body.class_filter:
        known = [c for c in body.class_filter if class_names is None or c in class_names]
        if known:
            params["class_filter"] = known
        else:
            drop_all = True
    if isinstance(body, InstanceSegmentationRequest) and body.response_mask_format == "rle":
        params["mask_format"] = "rle"
    return params, drop_all


def _image(width: int, height: int, seconds: float) -> dict[str, Any]:
    return {"inference_id": str(uuid.uuid4()), "time": seconds, "image": {"width": width, "height": height}}


def _detections(result: Any, route: str) -> None:
    if not hasattr(result, "xyxy"):
        raise InvalidParameterError(
            f"this model gives {type(result).__name__} results, not detections: use /infer/classification."
        )
    if route == "instance_segmentation" and result.masks is None:
        raise InvalidParameterError("this model gives no masks: use /infer/object_detection.")


def _polygons(result: Any) -> list[list[dict[str, float]]]:
    """Each mask's largest outer contour (OpenCV, as the Roboflow server's ``mask2poly``), in image pixels."""
    try:
        import cv2
    except ImportError:
        from im_core.errors import MissingDependencyError

        raise MissingDependencyError(
            "polygon masks need OpenCV (pip install opencv-python-headless); or ask for response_mask_format='rle'."
        ) from None
    out = []
    masks = result.masks
    for i in range(len(result)):
        mask = masks[i] if isinstance(masks, np.ndarray) else masks[i].decode()
        contours = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
        points = max(contours, key=len).reshape(-1, 2).tolist() if contours else []
        out.append([{"x": float(x), "y": float(y)} for x, y in points])
    return out


def renderer(route: str, body: CVRequest, drop_all: bool) -> Callable[[Any, int, int, float], dict[str, Any]]:
    """The function that turns one im result into the route's response (run in the model's worker thread)."""

    def detections(result: Any, width: int, height: int, seconds: float) -> dict[str, Any]:
        from im_core import RLEMask

        _detections(result, route)
        out = _image(width, height, seconds)
        if drop_all or not len(result):
            out["predictions"] = []
            return out
        xyxy = result.xyxy.astype(np.float64)
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        size = xyxy[:, 2:] - xyxy[:, :2]
        rows = [
            {
                "x": cx,
                "y": cy,
                "width": w,
                "height": h,
                "confidence": c,
                "class": name,
                "class_id": k,
                "detection_id": str(uuid.uuid4()),
            }
            for cx, cy, w, h, c, name, k in zip(
                centre[:, 0].tolist(),
                centre[:, 1].tolist(),
                size[:, 0].tolist(),
                size[:, 1].tolist(),
                result.confidence.astype(np.float64).tolist(),
                result.names,
                result.class_id.tolist(),
            )
        ]
        if route == "keypoints_detection":
            floor = getattr(body, "keypoint_confidence", None) or 0.0
            k = 0 if result.keypoints is None else result.keypoints.shape[1]
            names = list(result.keypoint_names) or [str(j) for j in range(k)]
            for i, row in enumerate(rows):
                if result.keypoints is None:
                    row["keypoints"] = []
                    continue
                keep = np.flatnonzero(result.keypoint_confidence[i] >= floor)
                xy = result.keypoints[i, keep].astype(np.float64).tolist()
                conf = result.keypoint_confidence[i, keep].astype(np.float64).tolist()
                row["keypoints"] = [
                    {"x": p[0], "y": p[1], "confidence": c, "class_id": j, "class": names[j]}
                    for p, c, j in zip(xy, conf, keep.tolist())
                ]
        elif route == "instance_segmentation":
            if getattr(body, "response_mask_format", "polygon") == "rle":
                masks = result.masks
                rles = masks if isinstance(masks, list) else [RLEMask.encode(m) for m in masks]
                for row, rle in zip(rows, rles):
                    row["rle"], row["mask_format"] = rle.to_dict(), "rle"
            else:
                for row, points in zip(rows, _polygons(result)):
                    row["points"], row["mask_format"] = points, "polygon"
        out["predictions"] = rows
        return out

    def classification(result: Any, width: int, height: int, seconds: float) -> dict[str, Any]:
        if not hasattr(result, "multi_label"):
            raise InvalidParameterError(
                f"this model gives {type(result).__name__} results, not classes: use /infer/object_detection."
            )
        threshold = _threshold(getattr(body, "confidence", None))
        out = _image(width, height, seconds)
        scores = result.confidence.astype(np.float64)
        known = list(result.class_names)
        names = [known[i] if i < len(known) else str(i) for i in range(len(scores))]
        if result.multi_label:
            out["predictions"] = {
                name: {"confidence": s, "class_id": i} for i, (name, s) in enumerate(zip(names, scores.tolist()))
            }
            picked = np.flatnonzero(scores > threshold) if threshold is not None else result.predicted_ids
            out["predicted_classes"] = [names[i] for i in np.asarray(picked, dtype=np.int64).tolist()]
            return out
        order = np.argsort(-scores, kind="stable")
        if threshold is not None:
            order = order[scores[order] >= threshold]
        out["predictions"] = [{"class": names[i], "class_id": i, "confidence": scores[i]} for i in order.tolist()]
        out["top"] = out["predictions"][0]["class"] if len(order) else ""
        out["confidence"] = out["predictions"][0]["confidence"] if len(order) else 0.0
        return out

    return classification if route == "classification" else detections
