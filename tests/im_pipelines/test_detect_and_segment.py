"""``detect-and-segment`` and ``open-vocabulary-detect-and-segment``: real BlazeFace weights find the boxes, a tiny
SAM with RANDOM weights (no SAM weights can be obtained here) gives a mask per box.

No open-vocabulary detector lives on this branch: the open-vocabulary pipeline is tested with a stand-in built
from the real BlazeFace detector that takes text queries by ``classes=`` (the call parameter im's open-vocabulary
families declare) and names its boxes by the first query.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

pytest.importorskip("transformers")

from im_core import AutoModel, Detections, ObjectDetectionModel
from im_core.errors import InvalidParameterError
from im_core.testing import local_context
from im_models.faces._blazeface import BlazeFaceDetector
from im_pipelines import (
    AutoModelPipeline,
    DetectAndSegmentPipeline,
    OpenVocabularyDetectAndSegmentPipeline,
)

pytestmark = pytest.mark.weights


@pytest.fixture(scope="module")
def sam(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from testlib.hf_models import tiny_sam

    return AutoModel.from_pretrained(tiny_sam(tmp_path_factory.mktemp("hf") / "tiny-sam"))


@pytest.fixture(scope="module")
def faces(asset: Any) -> BlazeFaceDetector:
    return BlazeFaceDetector.from_package(
        local_context(asset("face/blazeface_front_128.onnx"), architecture="blazeface", task="object-detection")
    )


class QueryFaces(ObjectDetectionModel):
    """Stand-in open-vocabulary detector: BlazeFace's boxes, named by the first text query given as ``classes``."""

    task = "open-vocabulary-object-detection"
    CALL_PARAMS: ClassVar[dict[str, str]] = {"classes": "post", "confidence": "post"}

    def __init__(self, inner: BlazeFaceDetector) -> None:
        self.inner = inner
        self.metadata = inner.metadata
        self.seen: list[list[str]] = []

    @classmethod
    def from_package(cls, ctx: Any) -> QueryFaces:  # pragma: no cover - built from a loaded model
        raise NotImplementedError

    def pre_process(self, images: list[Any], **params: Any) -> Any:
        return images

    def forward(self, prepared: Any) -> Any:
        return self.inner.run_images(prepared)

    def post_process(self, raw: Any, prepared: Any, classes: Any = None, confidence: Any = None) -> list[Detections]:
        self.seen.append(list(classes))
        return [Detections(d.xyxy, d.confidence, np.zeros(len(d), np.int64), tuple(classes)) for d in raw]


def _images(asset: Any) -> list[np.ndarray]:
    import cv2

    return [cv2.imread(str(asset(f"images/{n}.png"))) for n in ("astronaut", "chelsea", "camera")]


def test_detect_and_segment_masks_every_detected_box(faces: Any, sam: Any, asset: Any) -> None:
    images = _images(asset)
    pipeline = AutoModelPipeline.from_pretrained("detect-and-segment", models_parameters=[faces, sam])
    assert isinstance(pipeline, DetectAndSegmentPipeline)
    results = pipeline(images)
    assert [len(r) for r in results] == [1, 0, 1]  # BlazeFace front: no face in the cat picture
    for image, result in zip(images, results):
        found = faces(image)
        np.testing.assert_allclose(result.xyxy, found.xyxy)
        assert result.masks.shape == (len(found), *image.shape[:2]) and result.masks.dtype == bool
        if len(found):  # the mask SAM gives the box prompt alone
            h, w = image.shape[:2]
            box = np.clip(found.xyxy, 0, [w, h, w, h])
            alone = sam.segment(image, boxes=box, multimask=False)
            assert np.array_equal(result.masks, alone.masks[:, 0])
            np.testing.assert_allclose(result["mask_iou"], alone.iou[:, 0])
            assert result.masks.any()
    supervision = pytest.importorskip("supervision")
    sv = results[0].to_supervision()
    assert isinstance(sv, supervision.Detections) and sv.mask.shape == results[0].masks.shape
    rle = pipeline(images[0], mask_format="rle")
    assert isinstance(rle.masks, list) and rle == results[0]


def test_detect_and_segment_refuses_models_in_the_wrong_roles(faces: Any, sam: Any) -> None:
    with pytest.raises(InvalidParameterError, match="promptable-segmentation"):
        DetectAndSegmentPipeline.from_models([faces, faces])
    with pytest.raises(InvalidParameterError, match="must give boxes"):
        DetectAndSegmentPipeline.from_models([sam, sam])


def test_open_vocabulary_detect_and_segment_passes_the_queries(faces: Any, sam: Any, asset: Any) -> None:
    detector = QueryFaces(faces)
    pipeline = AutoModelPipeline.from_pretrained(
        "open-vocabulary-detect-and-segment", models_parameters=[detector, sam]
    )
    assert isinstance(pipeline, OpenVocabularyDetectAndSegmentPipeline) and pipeline.query_parameter == "classes"
    image = _images(asset)[0]
    result = pipeline(image, queries=["a human face", "a helmet"])
    assert detector.seen[-1] == ["a human face", "a helmet"]
    assert result.names == ["a human face"] and result.masks.shape == (1, *image.shape[:2])
    assert pipeline(image, queries="a face").class_names == ("a face",)  # one text is one query
    for bad in ([], None, [""]):
        with pytest.raises(InvalidParameterError, match="non-empty list"):
            pipeline(image, queries=bad)
    with pytest.raises(InvalidParameterError, match="takes no text queries"):
        OpenVocabularyDetectAndSegmentPipeline.from_models([faces, sam])
    named = OpenVocabularyDetectAndSegmentPipeline.from_models([detector, sam], query_parameter="classes")
    assert named(image, queries=["x"]).names == ["x"]


def test_pipelines_are_registered() -> None:
    from im_core import registry

    for name, cls in (
        ("detect-and-segment", DetectAndSegmentPipeline),
        ("open-vocabulary-detect-and-segment", OpenVocabularyDetectAndSegmentPipeline),
    ):
        assert registry().pipeline(name).target == f"im_pipelines._segment:{cls.__name__}"
