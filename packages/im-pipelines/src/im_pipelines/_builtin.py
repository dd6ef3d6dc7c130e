"""Built-in pipelines: text reading (detect → turn upright → recognise) and gaze (find faces → gaze per face)."""

from __future__ import annotations

from typing import Any

from im_core import Gaze, Model, TextRecognition
from im_core.errors import InvalidParameterError
from im_pipelines._base import Pipeline

__all__ = ["FaceGazePipeline", "OCRPipeline"]


def _require(models: dict[str, Model[Any]], role: str, task: str, pipeline: str) -> None:
    model = models.get(role)
    if model is not None and model.metadata.task != task:
        raise InvalidParameterError(
            f"The {role!r} model of the {pipeline} pipeline must be a {task} model; "
            f"{model.metadata.model_id!r} is {model.metadata.task}."
        )


class OCRPipeline(Pipeline):
    """Read text on pages: a text detector finds lines, an angle classifier (optional) turns them upright and a
    recogniser reads them. Returns a :class:`~im_core.TextRecognition` per image, lines in reading order."""

    roles = ("text_detector", "text_recognizer", "angle_classifier")
    optional = frozenset({"angle_classifier"})

    @classmethod
    def build(cls, models: dict[str, Model[Any]], **kwargs: Any) -> OCRPipeline:
        _require(models, "text_detector", "text-detection", "ocr")
        _require(models, "text_recognizer", "text-recognition", "ocr")
        _require(models, "angle_classifier", "classification", "ocr")
        recognizer = models["text_recognizer"]
        with_reader = getattr(recognizer, "with_reader", None)
        if with_reader is None:
            raise InvalidParameterError(f"{type(recognizer).__name__} cannot read whole pages (no with_reader).")
        pipeline = cls(models)
        pipeline.reader = with_reader(models["text_detector"], models.get("angle_classifier"))
        return pipeline

    def __call__(self, images: Any, **params: Any) -> TextRecognition | list[TextRecognition]:
        return self.reader(images, **params)


class FaceGazePipeline(Pipeline):
    """Gaze of every face: a face detector, then a gaze model on each face crop. Returns a :class:`~im_core.Gaze`
    per image whose ``faces`` are the detected faces (same order as the angles)."""

    roles = ("face_detector", "gaze")

    @classmethod
    def build(cls, models: dict[str, Model[Any]], **kwargs: Any) -> FaceGazePipeline:
        _require(models, "face_detector", "object-detection", "face-gaze")
        _require(models, "gaze", "gaze-estimation", "face-gaze")
        gaze = models["gaze"]
        attach = getattr(gaze, "with_face_detector", None)
        if attach is None:
            raise InvalidParameterError(f"{type(gaze).__name__} cannot work on detected faces.")
        pipeline = cls(models)
        pipeline.gaze = attach(models["face_detector"])
        return pipeline

    def __call__(self, images: Any, **params: Any) -> Gaze | list[Gaze]:
        return self.gaze(images, **params)
