"""Built-in pipelines: text reading (detect → turn upright → recognise) and gaze (find faces → gaze per face).

A pipeline chains loaded models through their public interface only: ``model.run_images`` on normalised images,
the result types of ``im_core`` and the crop helpers of ``im_models.common``. No model runs another one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from im_core import Detections, Gaze, Model, TextDetectionModel, TextLine, TextRecognition
from im_core.errors import InvalidParameterError
from im_core.sdk import Image, check_names, is_batch, to_images
from im_models.common import crop_boxes, crop_quads
from im_pipelines._base import Pipeline

__all__ = ["FaceGazePipeline", "OCRPipeline"]

#: probability of class "180" from which a line counts as upside down, for a classifier that does not publish one
#: (``metadata.extra["flip_threshold"]``)
DEFAULT_FLIP_THRESHOLD = 0.9
#: parameters of a face-gaze call
_GAZE_PARAMS = ("face_margin", "face_confidence")


#: the task names a role also accepts: the names Roboflow's registry (inference-models) gives the same families
TASK_ALIASES: dict[str, frozenset[str]] = {
    "text-detection": frozenset({"text-detection", "object-detection"}),
    "text-recognition": frozenset({"text-recognition", "text-only-ocr"}),
    "gaze-estimation": frozenset({"gaze-estimation", "gaze-detection"}),
}


def _require(models: dict[str, Model[Any]], role: str, task: str, pipeline: str) -> None:
    model = models.get(role)
    if model is None:
        return
    accepted = TASK_ALIASES.get(task, frozenset({task}))
    if task == "text-detection" and model.metadata.task == "object-detection":
        # an object detector serves as a text detector only when it is one (gives each line's quadrilateral)
        accepted = accepted if isinstance(model, TextDetectionModel) else frozenset({task})
    if model.metadata.task not in accepted:
        raise InvalidParameterError(
            f"The {role!r} model of the {pipeline} pipeline must be a {task} model; "
            f"{model.metadata.model_id!r} is {model.metadata.task}."
        )


class OCRPipeline(Pipeline):
    """Read text on pages: a text detector finds lines, an angle classifier (optional) turns them upright and a
    recogniser reads them. Returns a :class:`~im_core.TextRecognition` per image, lines in reading order.

    Each line's quadrilateral (``Detections.data["polygon"]`` of the detector) is cut out with a perspective warp
    (:func:`~im_models.common.crop_quads`; tall crops are turned 90°); crops the classifier puts in class ``"180"``
    with a probability of at least its ``metadata.extra["flip_threshold"]`` (default 0.9) are turned 180°; all crops
    of all pages are read in one recogniser call. A line keeps its polygon on the page.

    Parameters of a call (``pipeline(pages, confidence=0.6)``) go to the recogniser; ``color_format`` says the
    channel order of numpy pages.
    """

    roles = ("text_detector", "text_recognizer", "angle_classifier")
    optional = frozenset({"angle_classifier"})

    @classmethod
    def build(cls, models: dict[str, Model[Any]], **kwargs: Any) -> OCRPipeline:
        _require(models, "text_detector", "text-detection", "ocr")
        _require(models, "text_recognizer", "text-recognition", "ocr")
        _require(models, "angle_classifier", "classification", "ocr")
        return cls(models)

    def __call__(self, images: Any, *, color_format: str = "bgr", **params: Any) -> TextRecognition | list[Any]:
        if "polygons" in params:
            raise InvalidParameterError(
                "The ocr pipeline finds the text lines itself; to read lines you already have, call the recogniser "
                "with polygons=... (pipeline.models['text_recognizer'])."
            )
        results = self.read(to_images(images, color_format), **params)  # type: ignore[arg-type]
        return results if is_batch(images) else results[0]

    def read(self, pages: list[Image], **params: Any) -> list[TextRecognition]:
        """Read normalised pages (:func:`im_core.to_images`); ``params`` go to the recogniser."""
        found = self.models["text_detector"].run_images(pages)
        crops: list[Image] = []
        owners: list[int] = []
        polygons: list[np.ndarray] = []
        for i, (page, lines) in enumerate(zip(pages, found)):
            quads = _polygons(lines)
            # warp the page's own pixels; the small crops keep its channel order (each model converts them)
            crops += [Image(c, page.color) for c in crop_quads(page.pixels, quads)]
            owners += [i] * len(quads)
            polygons += list(quads)
        results = [TextRecognition() for _ in pages]
        if not crops:
            return results
        classifier = self.models.get("angle_classifier")
        if classifier is not None:
            flip = _upside_down(classifier, classifier.run_images(crops))
            crops = [Image(c.pixels[::-1, ::-1], c.color) if f else c for c, f in zip(crops, flip.tolist())]
        read = self.models["text_recognizer"].run_images(crops, **params)
        for owner, polygon, crop_result in zip(owners, polygons, read):
            for line in crop_result.lines:  # at most one: each crop is one line
                results[owner].lines.append(TextLine(line.text, line.confidence, polygon))
        return results


def _polygons(found: Detections) -> np.ndarray:
    polygon = found.data.get("polygon") if found.data else None
    if polygon is None:
        if len(found):
            raise InvalidParameterError(
                "The text detector of the ocr pipeline must give each line's quadrilateral in "
                "Detections.data['polygon'] (N, 4, 2); it gave boxes only."
            )
        return np.zeros((0, 4, 2), np.float32)
    return np.asarray(polygon, np.float32).reshape(-1, 4, 2)


def _upside_down(classifier: Model[Any], results: list[Any]) -> np.ndarray:
    """bool (N,): the crops whose class ``"180"`` (else class 1) wins with at least the flip threshold."""
    names = list(classifier.class_names)
    flipped = names.index("180") if "180" in names else 1
    threshold = float(classifier.metadata.extra.get("flip_threshold", DEFAULT_FLIP_THRESHOLD))
    probs = np.stack([r.confidence for r in results])
    return (probs.argmax(axis=1) == flipped) & (probs[:, flipped] >= threshold)


class FaceGazePipeline(Pipeline):
    """Gaze of every face: a face detector, then a gaze model on each face crop. Returns a :class:`~im_core.Gaze`
    per image whose ``faces`` are the detected faces (same order as the angles).

    Every face box, widened by ``face_margin`` of its size on each side (:func:`~im_models.common.crop_boxes`), is
    cropped; the crops of all images go through the gaze model in one call. Parameters of a call: ``face_margin``
    (default 0.1, in [0, 2]) and ``face_confidence`` (the detector's ``confidence``); ``color_format`` says the
    channel order of numpy images.
    """

    roles = ("face_detector", "gaze")

    @classmethod
    def build(cls, models: dict[str, Model[Any]], **kwargs: Any) -> FaceGazePipeline:
        _require(models, "face_detector", "object-detection", "face-gaze")
        _require(models, "gaze", "gaze-estimation", "face-gaze")
        return cls(models)

    def __call__(self, images: Any, *, color_format: str = "bgr", **params: Any) -> Gaze | list[Gaze]:
        check_names(params, _GAZE_PARAMS, "The face-gaze pipeline does not take parameter(s)")
        results = self.estimate(to_images(images, color_format), **params)  # type: ignore[arg-type]
        return results if is_batch(images) else results[0]

    def estimate(self, frames: list[Image], face_margin: float = 0.1, face_confidence: Any = None) -> list[Gaze]:
        """Gaze per face of normalised images (:func:`im_core.to_images`)."""
        margin = float(face_margin)
        if not 0.0 <= margin <= 2.0:
            raise InvalidParameterError(f"face_margin must lie in [0, 2], got {margin}.")
        det_params = {} if face_confidence is None else {"confidence": face_confidence}
        faces = self.models["face_detector"].run_images(frames, **det_params)
        crops = [
            Image(c, frame.color)
            for frame, found in zip(frames, faces)
            for c in crop_boxes(frame.pixels, found.xyxy, margin=margin)
        ]
        angles = self.models["gaze"].run_images(crops) if crops else []  # no face anywhere: no network call
        out = []
        start = 0
        for found in faces:
            part = angles[start : start + len(found)]
            start += len(found)
            yaw = np.concatenate([g.yaw for g in part]) if part else np.zeros(0, np.float32)
            pitch = np.concatenate([g.pitch for g in part]) if part else np.zeros(0, np.float32)
            out.append(Gaze(yaw, pitch, found))
        return out
