"""Call parameters as the reference names them (issue 15 items 2 and 3): ``confidence="best"``/``"default"``,
``class_agnostic_nms``, and NMS parameters given to a graph that already ran NMS. Docstrings name the reference code
or test each case follows (roboflow/inference ``inference_models``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from im_core import RecommendedParameters
from im_core.errors import InvalidParameterError
from im_models.common import resolve_detection_params
from testlib.onnx_graphs import constant_onnx

from .test_yolo_heads_synthetic import _ctx, _image

NAMES = ["a", "b", "c"]
REC = RecommendedParameters(confidence=0.5, per_class_confidence={"b": 0.8})


def test_confidence_best_uses_the_packages_recommendations() -> None:
    """Follows the reference's ConfidenceFilter "best" mode (models/common/roboflow/post_processing.py): per-class
    recommended thresholds, then the recommended global one; im does the same when confidence is left out."""
    best = resolve_detection_params({"confidence": "best"}, NAMES, 3, recommended=REC)
    assert best.thresholds.tolist() == pytest.approx([0.5, 0.8, 0.5])
    omitted = resolve_detection_params({}, NAMES, 3, recommended=REC)
    assert omitted.thresholds.tolist() == best.thresholds.tolist()
    # no recommendations: the family default
    assert resolve_detection_params({"confidence": "best"}, NAMES, 3).thresholds.tolist() == pytest.approx([0.25] * 3)


def test_confidence_default_ignores_the_recommendations() -> None:
    """Follows the reference's ConfidenceFilter "default" mode: the model family's default threshold, whatever the
    package recommends."""
    p = resolve_detection_params({"confidence": "default"}, NAMES, 3, recommended=REC, confidence=0.3)
    assert p.thresholds.tolist() == pytest.approx([0.3] * 3)


def test_other_confidence_words_are_invalid() -> None:
    with pytest.raises(InvalidParameterError, match="'best'"):
        resolve_detection_params({"confidence": "high"}, NAMES, 3)


def test_class_agnostic_nms_is_an_alias() -> None:
    """The reference's call parameter ``class_agnostic_nms`` (INFERENCE_MODELS_*_DEFAULT_CLASS_AGNOSTIC_NMS) means
    im's ``class_agnostic``; both given differently is an error, not a silent choice."""
    assert resolve_detection_params({"class_agnostic_nms": True}, NAMES, 3).class_agnostic
    assert not resolve_detection_params({"class_agnostic_nms": False}, NAMES, 3).class_agnostic
    assert resolve_detection_params({"class_agnostic": True, "class_agnostic_nms": True}, NAMES, 3).class_agnostic
    with pytest.raises(InvalidParameterError, match="contradict"):
        resolve_detection_params({"class_agnostic": True, "class_agnostic_nms": False}, NAMES, 3)


def test_nms_parameters_on_a_fused_graph_warn(tmp_path) -> None:
    """A graph with NMS inside ignores iou_threshold: the call warns, quoting the baked thresholds, instead of
    silently having no effect; confidence still filters and gives no warning."""
    from im_models.yolo._detection import YOLODetection

    rows = np.zeros((1, 10, 6), np.float32)
    rows[0, 0] = (10, 20, 110, 220, 0.9, 1)
    rows[0, 1] = (300, 300, 400, 400, 0.3, 0)
    path = constant_onnx(tmp_path / "fused.onnx", {"output0": rows}, input_shape=(1, 3, 640, 640))
    baked = {"max_detections": 10, "confidence_threshold": 0.25, "iou_threshold": 0.7, "class_agnostic": False}
    model = YOLODetection.from_package(
        _ctx(path, "object-detection", ["x", "y"], features={"nms_fused": baked}, arch="yolov8")
    )
    with pytest.warns(UserWarning, match=r"iou_threshold has no effect.*'iou_threshold': 0\.7"):
        d = model(_image(640, 640), iou_threshold=0.1)
    assert len(d) == 2  # the graph's answer, unchanged
    with pytest.warns(UserWarning, match="class_agnostic_nms has no effect"):
        model(_image(640, 640), class_agnostic_nms=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(model(_image(640, 640), confidence=0.5)) == 1
