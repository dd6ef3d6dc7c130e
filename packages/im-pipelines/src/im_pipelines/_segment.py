"""Detect, then segment what was detected: any detector's boxes become prompts of a promptable segmentation model
(SAM), one mask per box.

``detect-and-segment`` takes any object detector; ``open-vocabulary-detect-and-segment`` takes a detector told what
to find by text queries (OWLv2, Grounding DINO, ...), passed through the call parameter the detector declares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from im_core import Detections, Model, PromptableSegmentationModel
from im_core.errors import InvalidParameterError
from im_core.sdk import Image, check_names, is_batch, to_images
from im_pipelines._base import Pipeline

__all__ = ["DetectAndSegmentPipeline", "OpenVocabularyDetectAndSegmentPipeline"]

#: the call parameter an open-vocabulary detector takes its text queries by, in order of preference
QUERY_PARAMETERS = ("classes", "queries", "text_queries", "class_names", "prompts", "text")
#: tasks a detector role accepts
_DETECTION_TASKS = frozenset({"object-detection", "open-vocabulary-object-detection", "instance-segmentation"})


class DetectAndSegmentPipeline(Pipeline):
    """Boxes from a detector, a mask per box from a promptable segmentation model (SAM).

    Returns the detector's :class:`~im_core.Detections` per image with ``masks`` (N, H, W) bool at the original size
    (or RLE) and ``data["mask_iou"]``, the segmenter's predicted IoU of each mask. Each image is encoded once
    (through the segmenter's embedding cache) and all its boxes go through the decoder in one call, one prompt
    per box (``multimask=False``: the mask a box prompt gives).

    Parameters of a call: ``confidence`` (the detector's), ``mask_format`` (``"dense"`` or ``"rle"``), and
    ``detector_params`` (a dict of further detector call parameters); ``color_format`` for numpy images.
    """

    roles = ("detector", "segmenter")
    _params: ClassVar[tuple[str, ...]] = ("confidence", "mask_format", "detector_params")
    _name: ClassVar[str] = "detect-and-segment"

    @classmethod
    def build(cls, models: dict[str, Model[Any]], **kwargs: Any) -> DetectAndSegmentPipeline:
        if kwargs:
            raise InvalidParameterError(f"{cls._name} takes no build option(s) {sorted(kwargs)}.")
        detector, segmenter = models["detector"], models["segmenter"]
        if detector.metadata.task not in _DETECTION_TASKS:
            raise InvalidParameterError(
                f"The 'detector' model of the {cls._name} pipeline must give boxes (one of "
                f"{sorted(_DETECTION_TASKS)}); {detector.metadata.model_id!r} is {detector.metadata.task}."
            )
        if not isinstance(segmenter, PromptableSegmentationModel):
            raise InvalidParameterError(
                f"The 'segmenter' model of the {cls._name} pipeline must be a promptable-segmentation model (SAM); "
                f"{segmenter.metadata.model_id!r} is {segmenter.metadata.task}."
            )
        return cls(models)

    def __call__(self, images: Any, *, color_format: str = "bgr", **params: Any) -> Detections | list[Detections]:
        check_names(params, self._params, f"The {self._name} pipeline does not take parameter(s)")
        results = self.run(to_images(images, color_format), **params)  # type: ignore[arg-type]
        return results if is_batch(images) else results[0]

    def run(
        self,
        frames: list[Image],
        confidence: Any = None,
        mask_format: str = "dense",
        detector_params: dict[str, Any] | None = None,
    ) -> list[Detections]:
        """Detections with masks for normalised images (:func:`im_core.to_images`)."""
        params = dict(detector_params or {})
        if confidence is not None:
            params["confidence"] = confidence
        found = self.models["detector"].run_images(frames, **params)
        return [self.segment(frame, dets, mask_format) for frame, dets in zip(frames, found)]

    def segment(self, frame: Image, detections: Detections, mask_format: str = "dense") -> Detections:
        """``detections`` of ``frame`` with a mask per box (the segmenter is not run when there are none)."""
        if mask_format not in ("dense", "rle"):
            raise InvalidParameterError(f"mask_format must be 'dense' or 'rle', got {mask_format!r}.")
        segmenter = self.models["segmenter"]
        assert isinstance(segmenter, PromptableSegmentationModel)
        height, width = frame.height, frame.width
        if not len(detections):
            masks: Any = np.zeros((0, height, width), bool) if mask_format == "dense" else []
            return _with(detections, masks, np.zeros(0, np.float32))
        boxes = np.clip(detections.xyxy.astype(np.float64), 0, [width, height, width, height])  # prompts lie inside
        result = segmenter.segment(
            segmenter.embed(frame),
            boxes=boxes,
            multimask=False,
            mask_format="rle" if mask_format == "rle" else "dense",
            keep_logits=False,
        )
        masks = result.masks[:, 0] if isinstance(result.masks, np.ndarray) else [row[0] for row in result.masks]
        return _with(detections, masks, result.iou[:, 0])


class OpenVocabularyDetectAndSegmentPipeline(DetectAndSegmentPipeline):
    """Text queries → an open-vocabulary detector (OWLv2, Grounding DINO, ...) → a mask per box (SAM).

    ``pipeline(image, queries=["a cat", "a remote control"])``: the queries reach the detector through the first of
    :data:`QUERY_PARAMETERS` its ``CALL_PARAMS`` declares (``classes`` for im's open-vocabulary families), or the
    one named by ``query_parameter=`` when the pipeline is built. Detections name each box by its query.
    """

    _params: ClassVar[tuple[str, ...]] = ("queries", "confidence", "mask_format", "detector_params")
    _name: ClassVar[str] = "open-vocabulary-detect-and-segment"

    def __init__(self, models: dict[str, Model[Any]], query_parameter: str = "classes") -> None:
        super().__init__(models)
        self.query_parameter = query_parameter

    @classmethod
    def build(
        cls, models: dict[str, Model[Any]], *, query_parameter: str | None = None, **kwargs: Any
    ) -> OpenVocabularyDetectAndSegmentPipeline:
        base = DetectAndSegmentPipeline.build(models, **kwargs)
        declared = tuple(getattr(models["detector"], "CALL_PARAMS", None) or ())
        name = query_parameter or next((p for p in QUERY_PARAMETERS if p in declared), None)
        if name is None or (declared and name not in declared):
            raise InvalidParameterError(
                f"The detector {models['detector'].metadata.model_id!r} takes no text queries: none of "
                f"{list(QUERY_PARAMETERS)} is among its call parameters {sorted(declared)}. Use an open-vocabulary "
                "detector (OWLv2, Grounding DINO), or name its query parameter with query_parameter=."
            )
        return cls(base.models, name)

    def run(  # type: ignore[override]
        self,
        frames: list[Image],
        queries: Sequence[str] | str | None = None,
        confidence: Any = None,
        mask_format: str = "dense",
        detector_params: dict[str, Any] | None = None,
    ) -> list[Detections]:
        """Detections of ``queries`` with a mask per box, for normalised images."""
        items = [queries] if isinstance(queries, str) else list(queries or ())
        if not items or not all(isinstance(q, str) and q.strip() for q in items):
            raise InvalidParameterError(
                "open-vocabulary-detect-and-segment needs queries=: a non-empty list of non-empty texts "
                "(e.g. queries=['a cat', 'a dog'])."
            )
        params = {**(detector_params or {}), self.query_parameter: items}
        return super().run(frames, confidence=confidence, mask_format=mask_format, detector_params=params)


def _with(detections: Detections, masks: Any, mask_iou: np.ndarray) -> Detections:
    """A copy of ``detections`` with ``masks`` and ``data["mask_iou"]``."""
    return Detections(
        detections.xyxy,
        detections.confidence,
        detections.class_id,
        detections.class_names,
        masks=masks,
        keypoints=detections.keypoints,
        keypoint_confidence=detections.keypoint_confidence,
        data={**detections.data, "mask_iou": np.asarray(mask_iou, np.float32)},
        keypoint_names=detections.keypoint_names,
        skeleton=detections.skeleton,
    )
