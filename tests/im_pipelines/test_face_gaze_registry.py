"""The face and gaze families behind ``AutoModel.from_pretrained`` and the ``face-gaze`` pipeline: a local registry
built in the test holds ``mediapipe/face-detector`` (real BlazeFace front weights) and an L2CS gaze model (small
ResNet, RANDOM weights); the pipeline loads both from it. A gaze model that declares the detector as a
``face_detector`` dependency (how the family used to find faces itself) is refused with a pointer to the pipeline."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel, Gaze
from im_core.errors import ModelLoadingError
from im_pipelines import AutoModelPipeline, FaceGazePipeline

torch = pytest.importorskip("torch")


@pytest.mark.weights
def test_face_gaze_pipeline_loads_its_face_detector_from_the_registry(asset, tmp_path: Path) -> None:
    from im_models.faces._blazeface import BlazeFaceDetector
    from im_models.gaze._l2cs import L2CSGaze
    from im_models.gaze._l2cs_torch import build_l2cs_network
    from im_providers import add_to_registry

    registry = tmp_path / "registry"
    face = shutil.copy(asset("face/blazeface_front_128.onnx"), tmp_path / "blazeface_front_128.onnx")
    add_to_registry(
        registry,
        model_id="mediapipe/face-detector",
        architecture="mediapipe-face-detector",
        task="object-detection",
        files=[face],
        class_names=["face"],
        input_size=(128, 128),
    )
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            build_l2cs_network(layers=(1, 1, 1, 1), width=16),
            torch.zeros(1, 3, 448, 448),
            str(tmp_path / "weights.onnx"),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["yaw", "pitch"],
            dynamic_axes={"input": {0: "batch"}},
        )
    add_to_registry(
        registry,
        model_id="test/l2cs-random-small",
        architecture="l2cs-net",
        task="gaze-estimation",
        files=[tmp_path / "weights.onnx"],
        batch=(1, None),
    )
    add_to_registry(
        registry,
        model_id="test/l2cs-with-a-face-detector",
        architecture="l2cs-net",
        task="gaze-estimation",
        files=[tmp_path / "weights.onnx"],
        batch=(1, None),
        dependencies=[("face_detector", "mediapipe/face-detector")],
    )
    kwargs = {"weights_provider": "local", "provider_options": {"root": str(registry)}}

    detector = AutoModel.from_pretrained("mediapipe/face-detector", **kwargs)
    assert isinstance(detector, BlazeFaceDetector)
    faces = detector(asset("images/astronaut.png"))
    assert len(faces) == 1 and faces.names == ["face"]

    gaze = AutoModelPipeline.from_pretrained(
        "face-gaze", models_parameters=["mediapipe/face-detector", "test/l2cs-random-small"], **kwargs
    )
    assert isinstance(gaze, FaceGazePipeline)
    assert isinstance(gaze.models["gaze"], L2CSGaze)
    assert isinstance(gaze.models["face_detector"], BlazeFaceDetector)
    result = gaze(asset("images/astronaut.png"))
    assert isinstance(result, Gaze) and len(result) == 1
    np.testing.assert_allclose(result.faces.xyxy, faces.xyxy)
    assert np.isfinite(result.yaw).all() and np.abs(result.pitch).max() <= np.pi

    with pytest.raises(ModelLoadingError, match=r"'face-gaze' pipeline"):
        AutoModel.from_pretrained("test/l2cs-with-a-face-detector", **kwargs)
