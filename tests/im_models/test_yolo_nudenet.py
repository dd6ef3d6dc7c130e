"""YOLOv8 decoding on real weights: the pinned nudenet 320n detector (an Ultralytics YOLOv8n export, AGPL-3.0,
explicit-content labels) on the public-domain astronaut photograph (Eileen Collins). Only its FACE_* classes are
asserted on; the model is used solely to check decoding."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from im_core import Detections
from im_core.errors import CorruptedModelPackageError, InvalidParameterError, ModelInputError
from im_core.testing import local_context
from im_models.common import box_iou
from im_models.yolo._detection import YOLODetection
from im_models.yolo._sniff import sniff_ultralytics

pytestmark = pytest.mark.weights

#: Hand-measured face of the astronaut (hairline to chin, cheek to cheek) in the 512×512 image.
FACE_BOX = np.array([[178, 78, 272, 180]], np.float32)


def _sniffed(path: Path) -> dict:
    import onnxruntime as ort

    meta = dict(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map)
    found = sniff_ultralytics(meta, path)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def nudenet(asset) -> Path:
    return asset("yolo/nudenet_320n.onnx")


@pytest.fixture(scope="module")
def astronaut(asset) -> np.ndarray:
    import cv2

    return cv2.imread(str(asset("images/astronaut.png")))


@pytest.fixture(scope="module")
def bare_model(nudenet) -> YOLODetection:
    s = _sniffed(nudenet)
    ctx = local_context(
        nudenet,
        architecture=s["architecture"],
        task=s["task"],
        class_names=s["class_names"],
        input_size=s["input_size"],
        features=s["features"],
    )
    return YOLODetection.from_package(ctx)


def _roboflow_folder(nudenet: Path, folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(nudenet, folder / "weights.onnx")
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    config = {
        "network_input": {
            "training_input_size": {"height": 320, "width": 320},
            "dynamic_spatial_size_supported": True,
            "color_mode": "rgb",
            "resize_mode": "letterbox",
            "padding_value": 114,
            "input_channels": 3,
            "scaling_factor": 255,
        },
        "forward_pass": {"max_dynamic_batch_size": 16},
        "post_processing": {"type": "nms", "fused": False},
    }
    (folder / "inference_config.json").write_text(json.dumps(config))
    return folder


def _faces(d: Detections) -> Detections:
    return d[np.array([n.startswith("FACE_") for n in d.names], bool)]


def test_sniffer_reads_ultralytics_metadata(nudenet):
    s = _sniffed(nudenet)
    assert (s["architecture"], s["task"], s["input_size"]) == ("yolov8", "object-detection", (320, 320))
    assert len(s["class_names"]) == 18 and s["class_names"][1] == "FACE_FEMALE" and s["class_names"][12] == "FACE_MALE"
    assert s["features"]["ultralytics"]["stride"] == 32
    assert sniff_ultralytics({"producer": "pytorch"}, None) is None


def test_bare_export_finds_the_astronauts_face(bare_model, astronaut):
    d = bare_model(astronaut)
    faces = _faces(d)
    assert len(faces) == 1 and faces.names == ["FACE_FEMALE"]
    assert box_iou(faces.xyxy, FACE_BOX)[0, 0] >= 0.5
    assert faces.confidence[0] > 0.5
    assert bare_model.metadata.class_names[1] == "FACE_FEMALE"


def test_roboflow_folder_gives_identical_results(bare_model, nudenet, astronaut, tmp_path):
    folder = _roboflow_folder(nudenet, tmp_path / "pkg", list(bare_model.class_names))
    ctx = local_context(folder, architecture="yolov8", task="object-detection")
    model = YOLODetection.from_package(ctx)
    for params in ({}, {"confidence": 0.05}, {"confidence": 0.05, "class_agnostic": True}):
        a, b = bare_model(astronaut, **params), model(astronaut, **params)
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
        np.testing.assert_array_equal(a.confidence, b.confidence)
        assert a.names == b.names


def test_rectangular_inference_and_boxes_scale_with_the_image(bare_model, astronaut):
    import cv2

    wide = cv2.copyMakeBorder(astronaut, 0, 0, 0, 400, cv2.BORDER_CONSTANT, value=(0, 0, 0))  # 512 × 912
    prepared = bare_model.pre_process([__import__("im_core").to_images(wide)[0]])
    assert prepared.tensor.shape == (1, 3, 192, 320)  # rect: not padded to 320×320
    faces = _faces(bare_model(wide))
    assert len(faces) == 1 and box_iou(faces.xyxy, FACE_BOX)[0, 0] >= 0.5
    big = cv2.resize(astronaut, (8000, 8000), interpolation=cv2.INTER_NEAREST)
    faces = _faces(bare_model(big))  # best face first
    assert faces.names[0] == "FACE_FEMALE" and box_iou(faces.xyxy[:1], FACE_BOX * (8000 / 512))[0, 0] >= 0.5


def test_batch_of_mixed_sizes_and_colour_orders(bare_model, astronaut):
    import cv2

    small = cv2.resize(astronaut, (256, 256))
    rgb = np.ascontiguousarray(astronaut[..., ::-1])
    out = bare_model([astronaut, small])
    assert isinstance(out, list) and len(out) == 2
    assert box_iou(_faces(out[0]).xyxy, FACE_BOX)[0, 0] >= 0.5
    assert box_iou(_faces(out[1]).xyxy, FACE_BOX / 2)[0, 0] >= 0.5
    a, b = bare_model(astronaut), bare_model(rgb, color_format="rgb")
    np.testing.assert_array_equal(a.xyxy, b.xyxy)


def test_odd_inputs_grayscale_rgba_16bit_and_empty(bare_model, astronaut):
    import cv2

    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    rgba = np.concatenate([astronaut, np.full((*astronaut.shape[:2], 1), 255, np.uint8)], axis=2)
    deep = astronaut.astype(np.uint16) * 257
    for image in (gray, rgba, deep):
        d = bare_model(image)
        assert isinstance(d, Detections)
    np.testing.assert_array_equal(bare_model(rgba).xyxy, bare_model(astronaut).xyxy)
    np.testing.assert_array_equal(bare_model(deep).xyxy, bare_model(astronaut).xyxy)
    with pytest.raises(ModelInputError):
        bare_model(np.zeros((0, 0, 3), np.uint8))


def test_parameters_filter_threshold_and_limit(bare_model, astronaut):
    low = bare_model(astronaut, confidence=0.01)
    assert len(low) > 1
    only_male = bare_model(astronaut, confidence=0.01, class_filter=["FACE_MALE"])
    assert set(only_male.names) <= {"FACE_MALE"}
    by_id = bare_model(astronaut, confidence=0.01, class_filter=[12])
    np.testing.assert_array_equal(only_male.xyxy, by_id.xyxy)
    assert len(bare_model(astronaut, confidence=0.01, max_detections=1)) == 1
    per_class = bare_model(astronaut, confidence={"FACE_FEMALE": 0.99})  # others keep the default 0.25
    assert "FACE_FEMALE" not in per_class.names
    agnostic = bare_model(astronaut, confidence=0.05, class_agnostic=True)
    aware = bare_model(astronaut, confidence=0.05)
    assert len(agnostic) <= len(aware)
    with pytest.raises(InvalidParameterError, match="unknown class name"):
        bare_model(astronaut, class_filter=["CAT"])
    with pytest.raises(InvalidParameterError, match="iou"):
        bare_model(astronaut, iou=0.5)


def test_class_count_mismatch_is_a_corrupted_package(bare_model, nudenet, tmp_path):
    folder = _roboflow_folder(nudenet, tmp_path / "bad", list(bare_model.class_names)[:17])
    with pytest.raises(CorruptedModelPackageError, match="17 class names"):
        YOLODetection.from_package(local_context(folder, architecture="yolov8", task="object-detection"))
