"""The families im has, under the architecture and task names of Roboflow's registry (inference-models) too
(issue 15 item 4): ``pp-ocrv6-det``/``object-detection``, ``pp-ocrv6-rec``/``text-only-ocr``,
``l2cs-net``/``gaze-detection``, ``yolov9`` (the v8 head), and the ``pp-ocrv6`` pipeline id with its default models
``pp-ocrv6-det/small`` + ``pp-ocrv6-rec/small`` (inference-models' ``pipelines_registry.py``). im's own names keep
working alongside."""

from __future__ import annotations

import numpy as np
import pytest

from im_core import AutoModel, Detections, Gaze, TextRecognition, registry
from im_core.errors import InvalidParameterError
from im_pipelines import AutoModelPipeline, OCRPipeline
from testlib.ocr import LINES, render, tight

DET = "im_models.ocr._detection:DBTextDetector"
REC = "im_models.ocr._recognition:CTCTextRecognizer"


@pytest.mark.parametrize(
    ("architecture", "task", "target"),
    [
        ("pp-ocrv6-det", "object-detection", DET),
        ("pp-ocrv6-det", "text-detection", DET),
        ("pp-ocr-det", "text-detection", DET),
        ("pp-ocrv6-rec", "text-only-ocr", REC),
        ("pp-ocrv6-rec", "text-recognition", REC),
        ("pp-ocr-rec", "text-recognition", REC),
        ("l2cs-net", "gaze-detection", "im_models.gaze._l2cs:L2CSGaze"),
        ("l2cs-net", "gaze-estimation", "im_models.gaze._l2cs:L2CSGaze"),
        ("yolov9", "object-detection", "im_models.yolo._detection:YOLODetection"),
        ("yolov8", "object-detection", "im_models.yolo._detection:YOLODetection"),
    ],
)
def test_reference_keys_resolve_next_to_im_names(architecture, task, target):
    assert registry().find_model(architecture, task, "onnx").target == target


def test_task_aliases_do_not_leak_to_other_families():
    """``object-detection`` now holds a text detector: the other detectors keep their task and a YOLO package
    still cannot be loaded as a text detector (nor the text detector as ``pp-ocr-det``/``object-detection``)."""
    reg = registry()
    assert "pp-ocrv6-det" in reg.architectures("object-detection")
    assert "pp-ocr-det" not in reg.architectures("object-detection")
    assert "yolov8" not in reg.architectures("text-detection")
    assert {"text-only-ocr", "gaze-detection"} <= {e.task for e in reg.models}


@pytest.fixture
def roboflow_names(asset, tmp_path):
    """A local registry holding the PP-OCRv6 (tiny) weights under the ids and names Roboflow's registry uses."""
    from im_providers import add_to_registry

    root = tmp_path / "registry"
    for model_id, architecture, task, file in (
        ("pp-ocrv6-det/small", "pp-ocrv6-det", "object-detection", "ocr/PP-OCRv6_det_tiny.onnx"),
        ("pp-ocrv6-rec/small", "pp-ocrv6-rec", "text-only-ocr", "ocr/PP-OCRv6_rec_tiny.onnx"),
    ):
        add_to_registry(
            root, model_id=model_id, architecture=architecture, task=task, files=[asset(file)], package_id="onnx"
        )
    return {"weights_provider": "local", "provider_options": {"root": str(root)}}


@pytest.mark.weights
@pytest.mark.parametrize("pipeline_id", ["pp-ocrv6", "ocr"])
def test_pipeline_default_models_from_a_registry_that_names_them(roboflow_names, pipeline_id):
    pipeline = AutoModelPipeline.from_pretrained(pipeline_id, **roboflow_names)
    assert isinstance(pipeline, OCRPipeline)
    assert pipeline.models["text_detector"].metadata.task == "object-detection"
    assert pipeline.models["text_recognizer"].metadata.task == "text-only-ocr"
    result = pipeline(render(LINES, 48, pad=60))
    assert isinstance(result, TextRecognition)
    assert [line.text for line in result.lines] == list(LINES)


@pytest.mark.weights
def test_reference_names_give_im_results(roboflow_names):
    det = AutoModel.from_pretrained("pp-ocrv6-det/small", **roboflow_names)
    found = det(render(LINES, 48, pad=60))
    assert isinstance(found, Detections) and len(found) == 2 and found.data["polygon"].shape == (2, 4, 2)
    rec = AutoModel.from_pretrained("pp-ocrv6-rec/small", **roboflow_names)
    assert rec(tight(render(LINES[:1], 48))).text == LINES[0]


@pytest.mark.weights
def test_an_object_detector_that_is_no_text_detector_is_refused(asset, roboflow_names):
    """``object-detection`` is accepted for the detector role only from a text detector (it must give polygons)."""
    yolo = AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))
    rec = AutoModel.from_pretrained("pp-ocrv6-rec/small", **roboflow_names)
    with pytest.raises(InvalidParameterError, match="must be a text-detection model"):
        AutoModelPipeline.from_pretrained("pp-ocrv6", models_parameters=[yolo, rec])


def test_default_models_that_cannot_be_retrieved_say_what_to_do(tmp_path):
    """An empty local registry cannot name the defaults: the error names them and says how to pass models."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        InvalidParameterError, match=r"default models \['pp-ocrv6-det/small'.*in order: \['text_detector'"
    ):
        AutoModelPipeline.from_pretrained(
            "pp-ocrv6", weights_provider="local", provider_options={"root": str(tmp_path / "empty")}
        )


@pytest.mark.weights
def test_yolov9_is_read_with_the_v8_head(asset):
    image = np.asarray(__import__("cv2").imread(str(asset("images/astronaut.png"))))
    plain = AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))
    as_v9 = AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), architecture="yolov9", task="object-detection")
    assert as_v9.metadata.architecture == "yolov9"
    a, b = plain(image, confidence=0.1), as_v9(image, confidence=0.1)
    assert len(a) > 0
    np.testing.assert_array_equal(a.xyxy, b.xyxy)
    np.testing.assert_array_equal(a.class_id, b.class_id)


def test_l2cs_under_gaze_detection(tmp_path):
    pytest.importorskip("torch")
    from im_core.testing import local_context
    from im_models.gaze._l2cs import L2CSGaze
    from testlib.gaze import small_network

    _, path = small_network(tmp_path)
    for task in ("gaze-detection", "gaze-estimation"):
        model = AutoModel.from_pretrained(path, architecture="l2cs-net", task=task)
        assert isinstance(model, L2CSGaze) and model.metadata.task == task
        assert isinstance(model(np.full((64, 64, 3), 128, np.uint8)), Gaze)
    assert isinstance(
        L2CSGaze.from_package(local_context(path, architecture="l2cs-net", task="gaze-detection")), L2CSGaze
    )
