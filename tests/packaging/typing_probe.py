"""Checked by mypy in CI (``[tool.mypy] files``), never run: the public API's types as users' type checkers see them.

``assert_type`` fails the type check when an inferred type differs, so a regression in an overload or an export
(``from im_models import YOLODetection`` becoming ``Any``) turns CI red.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typing_extensions import assert_type

from im_core import Classification, Detections, Model
from im_models import DBTextDetector, ImageClassifier, YOLODetection
from im_pipelines import AutoModelPipeline, Pipeline


def detector_results(model: YOLODetection, image: np.ndarray, path: Path) -> None:
    assert_type(model(image), Detections)
    assert_type(model(str(path)), Detections)
    assert_type(model(path), Detections)
    assert_type(model(b"\x89PNG"), Detections)
    assert_type(model([image, image]), list[Detections])
    assert_type(model((path,)), list[Detections])
    assert_type(model.infer(image, confidence=0.5), Detections)
    assert_type(model.infer([image]), list[Detections])


def other_families(classifier: ImageClassifier, text: DBTextDetector, image: np.ndarray) -> None:
    assert_type(classifier(image), Classification)
    assert_type(classifier([image]), list[Classification])
    assert_type(text(image), Detections)


def generic_model(model: Model[Detections], image: np.ndarray) -> None:
    assert_type(model(image), Detections)


def pipelines() -> None:
    assert_type(AutoModelPipeline.from_pretrained("ocr"), Pipeline)
