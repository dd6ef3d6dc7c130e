"""``detect-and-classify``: a detector finds objects, a second model names each one from its crop.

The classifier is either a zero-shot image/text model (CLIP: it has ``zero_shot_scores``; the class names are the
``labels`` of the call) or a plain classifier (its own class names). Crops are cut with
:func:`~im_models.common.crop_boxes`; the crops of all images go through the classifier in one call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from im_core import Detections, Model
from im_core.errors import InvalidParameterError
from im_core.sdk import Image, check_names, is_batch, to_images
from im_models.common import crop_boxes
from im_pipelines._base import Pipeline

__all__ = ["DetectAndClassifyPipeline"]

_PARAMS = ("labels", "template", "box_margin", "detector_confidence")


class DetectAndClassifyPipeline(Pipeline):
    """Detect, then classify every detection's crop. Returns the detector's :class:`~im_core.Detections` per image
    with three extra columns in ``data``:

    * ``"classification_class_name"``: (N,) str, the winning class of each crop;
    * ``"classification_confidence"``: float32 (N,), its probability;
    * ``"classification_scores"``: float32 (N, L), every class's probability (softmax over the labels).

    Parameters of a call: ``labels`` (zero-shot classifiers: the candidate class names, required), ``template``
    (zero-shot prompt with one ``{}``, default the model's ``"a photo of a {}"``), ``box_margin`` (fraction of each
    box's size added per side before cropping, default 0, in [0, 2]) and ``detector_confidence`` (the detector's
    ``confidence``); ``color_format`` says the channel order of numpy images.
    """

    roles = ("detector", "classifier")

    @classmethod
    def build(cls, models: dict[str, Model[Any]], **kwargs: Any) -> DetectAndClassifyPipeline:
        detector, classifier = models["detector"], models["classifier"]
        if detector.metadata.task not in ("object-detection", "instance-segmentation", "keypoint-detection"):
            raise InvalidParameterError(
                f"The 'detector' model of the detect-and-classify pipeline must find boxes; "
                f"{detector.metadata.model_id!r} is {detector.metadata.task}."
            )
        if not hasattr(classifier, "zero_shot_scores") and classifier.metadata.task != "classification":
            raise InvalidParameterError(
                f"The 'classifier' model of the detect-and-classify pipeline must be a zero-shot image/text model "
                f"(CLIP) or a classification model; {classifier.metadata.model_id!r} is {classifier.metadata.task}."
            )
        return cls(models)

    def __call__(self, images: Any, *, color_format: str = "bgr", **params: Any) -> Detections | list[Detections]:
        check_names(params, _PARAMS, "The detect-and-classify pipeline does not take parameter(s)")
        results = self.classify(to_images(images, color_format), **params)  # type: ignore[arg-type]
        return results if is_batch(images) else results[0]

    def classify(
        self,
        frames: list[Image],
        labels: Sequence[str] | None = None,
        template: str | None = None,
        box_margin: float = 0.0,
        detector_confidence: Any = None,
    ) -> list[Detections]:
        """Detections with their crops' classes, for normalised images (:func:`im_core.to_images`)."""
        classifier = self.models["classifier"]
        zero_shot = hasattr(classifier, "zero_shot_scores")
        if zero_shot and (not labels or isinstance(labels, str)):
            raise InvalidParameterError(
                "The detect-and-classify pipeline with a zero-shot classifier needs labels=[...] (class names)."
            )
        if not zero_shot and (labels is not None or template is not None):
            raise InvalidParameterError("labels/template are for zero-shot classifiers; this one has its classes.")
        margin = float(box_margin)
        if not 0.0 <= margin <= 2.0:
            raise InvalidParameterError(f"box_margin must lie in [0, 2], got {margin}.")
        det_params = {} if detector_confidence is None else {"confidence": detector_confidence}
        found = self.models["detector"].run_images(frames, **det_params)
        crops = [
            Image(c, frame.color)
            for frame, boxes in zip(frames, found)
            for c in crop_boxes(frame.pixels, boxes.xyxy, margin=margin)
        ]
        if zero_shot:
            names = tuple(str(label) for label in labels or ())
            if crops:
                vectors = np.concatenate([e.vectors for e in classifier.run_images(crops)])
                scores = classifier.zero_shot_scores(vectors, names, template=template)  # type: ignore[attr-defined]
            else:  # no detection anywhere: no network call
                scores = np.zeros((0, len(names)), np.float32)
        else:
            names = tuple(classifier.class_names)
            results = classifier.run_images(crops) if crops else []
            scores = np.stack([r.confidence for r in results]) if results else np.zeros((0, len(names)), np.float32)
        return _attach(found, np.asarray(scores, np.float32), names)


def _attach(found: list[Detections], scores: np.ndarray, names: tuple[str, ...]) -> list[Detections]:
    out = []
    start = 0
    for det in found:
        part = scores[start : start + len(det)]
        start += len(det)
        best = part.argmax(axis=1) if len(part) else np.zeros(0, np.int64)
        data = dict(det.data)
        data["classification_class_name"] = np.array([names[i] for i in best.tolist()], dtype=object)
        data["classification_confidence"] = part[np.arange(len(part)), best].astype(np.float32)
        data["classification_scores"] = part
        out.append(dataclasses.replace(det, data=data))
    return out
