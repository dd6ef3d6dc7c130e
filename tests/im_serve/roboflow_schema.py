"""The Roboflow inference server's documented HTTP schema, mirrored for the tests (written from the reference, not
imported from im_serve, so that a drift on either side fails a test).

Sources, in the ``roboflow/inference`` repository:
- responses: ``inference/core/entities/responses/inference.py`` (``ObjectDetectionPrediction``, ``Point``,
  ``Keypoint``, ``KeypointsPrediction``, ``InstanceSegmentationPrediction``, ``InstanceSegmentationRLEPrediction``,
  ``ClassificationPrediction``, ``MultiLabelClassificationPrediction``, ``InferenceResponseImage``,
  ``InferenceResponse``, ``CvInferenceResponse``, ``*InferenceResponse``);
- the registry: ``inference_sdk/http/entities.py`` (``ModelDescription``, ``RegisteredModels``);
- what ``inference_sdk.InferenceHTTPClient`` sends (``inference_sdk/http/client.py``: ``infer_from_api_v1``,
  ``_prepare_infer_from_api_v1_request_data``, ``get_model_description``, ``load_model``;
  ``inference_sdk/http/entities.py``: ``InferenceConfiguration.to_object_detection_parameters`` and friends;
  ``inference_sdk/http/utils/requests.py``: ``inject_images_into_payload``) is rebuilt by :class:`SdkLikeClient`.

Extra fields are forbidden here (the reference allows them) so that im serve emits only the reference's fields.
"""

from __future__ import annotations

import base64
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ObjectDetectionPrediction(_Strict):
    x: float
    y: float
    width: float
    height: float
    confidence: float
    class_name: str = Field(alias="class")
    class_confidence: Union[float, None] = None  # noqa: UP007
    class_id: int
    tracker_id: Optional[int] = None  # noqa: UP045
    detection_id: str
    parent_id: Optional[str] = None  # noqa: UP045


class Point(_Strict):
    x: float
    y: float


class InstanceSegmentationPrediction(_Strict):
    x: float
    y: float
    width: float
    height: float
    confidence: float
    class_name: str = Field(alias="class")
    class_id: int
    detection_id: str
    parent_id: Optional[str] = None  # noqa: UP045
    class_confidence: Union[float, None] = None  # noqa: UP007
    points: list[Point]
    mask_format: Literal["polygon"] = "polygon"


class InstanceSegmentationRLEPrediction(_Strict):
    x: float
    y: float
    width: float
    height: float
    confidence: float
    class_name: str = Field(alias="class")
    class_id: int
    detection_id: str
    parent_id: Optional[str] = None  # noqa: UP045
    rle: dict
    mask_format: Literal["rle"] = "rle"


class Keypoint(Point):
    confidence: float
    class_id: int
    class_name: str = Field(alias="class")


class KeypointsPrediction(ObjectDetectionPrediction):
    keypoints: list[Keypoint]


class ClassificationPrediction(_Strict):
    class_name: str = Field(alias="class")
    class_id: int
    confidence: float


class MultiLabelClassificationPrediction(_Strict):
    confidence: float
    class_id: int


class InferenceResponseImage(_Strict):
    width: int
    height: int


class CvInferenceResponse(_Strict):
    inference_id: Optional[str] = None  # noqa: UP045
    frame_id: Optional[int] = None  # noqa: UP045
    time: Optional[float] = None  # noqa: UP045
    image: Union[list[InferenceResponseImage], InferenceResponseImage]  # noqa: UP007
    visualization: Optional[Any] = None  # noqa: UP045


class ObjectDetectionInferenceResponse(CvInferenceResponse):
    predictions: list[ObjectDetectionPrediction]


class KeypointsDetectionInferenceResponse(CvInferenceResponse):
    predictions: list[KeypointsPrediction]


class InstanceSegmentationInferenceResponse(CvInferenceResponse):
    predictions: list[Union[InstanceSegmentationPrediction, InstanceSegmentationRLEPrediction]]  # noqa: UP007


class ClassificationInferenceResponse(CvInferenceResponse):
    predictions: list[ClassificationPrediction]
    top: str = ""
    confidence: float = 0.0
    parent_id: Optional[str] = None  # noqa: UP045


class MultiLabelClassificationInferenceResponse(CvInferenceResponse):
    predictions: dict[str, MultiLabelClassificationPrediction]
    predicted_classes: list[str]
    parent_id: Optional[str] = None  # noqa: UP045


class ModelDescription(_Strict):
    model_id: str
    task_type: str
    batch_size: Optional[Union[int, str]] = None  # noqa: UP007, UP045
    input_height: Optional[int] = None  # noqa: UP045
    input_width: Optional[int] = None  # noqa: UP045


class RegisteredModels(_Strict):
    models: list[ModelDescription]


#: ``NEW_INFERENCE_ENDPOINTS`` of the client: task type -> route
ENDPOINTS = {
    "instance-segmentation": "/infer/instance_segmentation",
    "object-detection": "/infer/object_detection",
    "classification": "/infer/classification",
    "keypoint-detection": "/infer/keypoints_detection",
}
#: the response schema of each route
RESPONSES = {
    "/infer/object_detection": ObjectDetectionInferenceResponse,
    "/infer/instance_segmentation": InstanceSegmentationInferenceResponse,
    "/infer/keypoints_detection": KeypointsDetectionInferenceResponse,
    "/infer/classification": ClassificationInferenceResponse,
}


class SdkLikeClient:
    """What ``InferenceHTTPClient(api_url).infer(images, model_id=...)`` does in API v1 mode with a default
    ``InferenceConfiguration`` (plus the given parameters), over any ``get(url)`` / ``post(url, json=...)`` client:
    ``GET /model/registry``, ``POST /model/add`` if the model is not listed, then ``POST`` the task's route with
    ``{"model_id", <task parameters>, "image": {"type": "base64", "value": ...}}`` (a list for several images) and
    the responses unwrapped for one image."""

    def __init__(self, http: Any) -> None:
        self.http = http

    def describe(self, model_id: str) -> ModelDescription:
        registry = RegisteredModels.model_validate(self.http.get("/model/registry?api_key=None").json())
        found = [m for m in registry.models if m.model_id == model_id]
        if not found:
            added = self.http.post("/model/add", json={"model_id": model_id})
            assert added.status_code == 200, added.text
            found = [m for m in RegisteredModels.model_validate(added.json()).models if m.model_id == model_id]
        assert found, f"{model_id} not in the registry"
        return found[0]

    def payload(self, task: str, model_id: str, images: list[bytes], **params: Any) -> dict[str, Any]:
        """The request body the client builds (``visualize_predictions`` and ``disable_active_learning`` are always
        sent, as booleans with defaults in ``InferenceConfiguration``)."""
        body: dict[str, Any] = {"model_id": model_id, "visualize_predictions": False, "disable_active_learning": False}
        body.update({k: v for k, v in params.items() if v is not None})
        encoded = [{"type": "base64", "value": base64.b64encode(data).decode("ascii")} for data in images]
        body["image"] = encoded if len(encoded) > 1 else encoded[0]
        return body

    def infer(self, images: bytes | list[bytes], model_id: str, **params: Any) -> Any:
        description = self.describe(model_id)
        route = ENDPOINTS[description.task_type]
        listed = isinstance(images, list)
        response = self.http.post(
            route, json=self.payload(description.task_type, model_id, images if listed else [images], **params)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        schema = RESPONSES[route]
        rows = body if isinstance(body, list) else [body]
        for row in rows:
            if route == "/infer/classification" and isinstance(row["predictions"], dict):
                MultiLabelClassificationInferenceResponse.model_validate(row)
            else:
                schema.model_validate(row)
        return rows if len(rows) > 1 else rows[0]
