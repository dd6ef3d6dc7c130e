"""The ``face-gaze`` pipeline built from loaded models: real BlazeFace front weights find the faces, an L2CS gaze
network with RANDOM weights (no gaze weights can be obtained here) estimates the gaze of each face crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from im_core.errors import InvalidParameterError
from im_core.testing import local_context
from im_models.faces._blazeface import BlazeFaceDetector
from im_models.gaze._l2cs import L2CSGaze
from im_pipelines import FaceGazePipeline

pytest.importorskip("torch")

pytestmark = pytest.mark.weights


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    from testlib.gaze import small_network

    return small_network(tmp_path_factory.mktemp("l2cs"))


def test_face_gaze_pipeline_crops_and_batches_faces(small, asset, monkeypatch) -> None:
    _net, path = small
    detector = BlazeFaceDetector.from_package(
        local_context(asset("face/blazeface_front_128.onnx"), architecture="blazeface", task="object-detection")
    )
    plain = L2CSGaze.from_package(local_context(path, architecture="l2cs-net", task="gaze-estimation"))
    model = FaceGazePipeline.from_models([detector, plain])
    images = [asset("images/astronaut.png"), asset("images/chelsea.png"), asset("images/camera.png")]
    results = model(images)
    assert [len(r) for r in results] == [1, 0, 1]  # the front model sees no face in the cat picture
    faces = detector(images[0])
    np.testing.assert_allclose(results[0].faces.xyxy, faces.xyxy)
    assert results[1].faces is not None and len(results[1].faces) == 0
    # the same crop by hand (box widened by 10% per side) through the gaze model alone
    import cv2

    x1, y1, x2, y2 = faces.xyxy[0]
    w, h = x2 - x1, y2 - y1
    box = np.rint([x1 - 0.1 * w, y1 - 0.1 * h, x2 + 0.1 * w, y2 + 0.1 * h]).astype(int).clip(0, 512)
    crop = cv2.imread(str(images[0]))[box[1] : box[3], box[0] : box[2]]
    alone = plain(crop)
    np.testing.assert_allclose(results[0].yaw, alone.yaw, atol=1e-5)
    np.testing.assert_allclose(results[0].pitch, alone.pitch, atol=1e-5)
    # a batch where no image has a face never calls the network
    monkeypatch.setattr(plain, "forward", lambda prepared: pytest.fail("the gaze network ran without a face"))
    empty = model(asset("images/chelsea.png"))
    assert len(empty) == 0 and empty.yaw.shape == (0,)
    monkeypatch.undo()
    with pytest.raises(InvalidParameterError):
        model(images[0], face_margin=-1)
    with pytest.raises(InvalidParameterError):
        plain(crop, face_margin=0.2)  # the gaze model alone takes no face parameters: there is nothing to widen
    with pytest.raises(InvalidParameterError, match=r"'margin' \(did you mean 'face_margin'\?\)"):
        model(images[0], margin=0.2)
    wider = model(images[0], face_margin=0.3, face_confidence=0.6)
    assert len(wider) == 1 and not np.allclose(wider.yaw, results[0].yaw)
