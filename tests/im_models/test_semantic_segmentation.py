"""Semantic segmentation families (DeepLabV3+ softmax layout, RF-DETR sigmoid layout) on small torch modules that
emit the published (B, K, h, w) logit layout, exported to ONNX in Roboflow package folders, checked against
hand-computed class maps and confidences; plus the reference's class-name rules
(inference-models ``tests/unit_tests/models/common/roboflow/test_semantic_segmentation.py``) mirrored on im's
decoder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel, SemanticSegmentation
from im_core.errors import CorruptedModelPackageError
from im_models.common import ImageTransform
from im_models.segmentation._semantic import _background_id, decode_semantic
from testlib.onnx_graphs import torch_layout_onnx


def _package(
    folder: Path,
    logits: np.ndarray,
    names: list[str],
    *,
    architecture: str,
    resize: str = "stretch",
    size: int = 32,
    features: dict | None = None,
) -> Path:
    folder.mkdir()
    torch_layout_onnx(folder / "weights.onnx", {"logits": logits}, input_shape=(1, 3, size, size))
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    (folder / "inference_config.json").write_text(
        json.dumps(
            {
                "network_input": {
                    "training_input_size": {"height": size, "width": size},
                    "resize_mode": resize,
                    "padding_value": 0,
                    "normalization": [[0.485, 0.456, 0.406], [0.229, 0.224, 0.225]],
                }
            }
        )
    )
    config = {"model_architecture": architecture, "task_type": "semantic-segmentation", "backend_type": "onnx"}
    if features:
        config["model_features"] = features
    (folder / "model_config.json").write_text(json.dumps(config))
    return folder


def _image(h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), 100, np.uint8)


def _softmax_max(values: list[float]) -> float:
    e = np.exp(np.array(values) - max(values))
    return float(e.max() / e.sum())


def _deeplab_logits() -> np.ndarray:
    """(1, 3, 32, 32): top-left class 1, top-right class 2 (logit 3 vs 0), bottom half undecided (0, 0.2, 0.1)."""
    lg = np.zeros((1, 3, 32, 32), np.float32)
    lg[0, 1, :16, :16] = 3.0
    lg[0, 2, :16, 16:] = 3.0
    lg[0, 1, 16:, :] = 0.2
    lg[0, 2, 16:, :] = 0.1
    return lg


def test_deeplab_stretch_softmax_argmax_and_threshold_to_background(tmp_path):
    folder = _package(
        tmp_path / "dl", _deeplab_logits(), ["background", "road", "car"], architecture="deep-lab-v3-plus"
    )
    model = AutoModel.from_pretrained(folder)
    assert model.task == "semantic-segmentation"
    seg = model(_image(32, 64))  # stretch: original x = 2 × network x
    assert isinstance(seg, SemanticSegmentation)
    assert seg.class_map.shape == (32, 64) and seg.class_names == ("background", "road", "car")
    top = _softmax_max([0.0, 3.0, 0.0])
    assert (seg.class_map[:14, :30] == 1).all() and (seg.class_map[:14, 34:] == 2).all()
    np.testing.assert_allclose(seg.confidence[:14, :30], top, rtol=1e-5)
    # bottom: softmax max 0.367 < the DeepLabV3+ default 0.5 → background, confidence 0
    assert (seg.class_map[18:] == 0).all() and (seg.confidence[18:] == 0).all()
    low = model(_image(32, 64), confidence=0.3)
    assert (low.class_map[18:] == 1).all()
    np.testing.assert_allclose(low.confidence[18:], _softmax_max([0.0, 0.2, 0.1]), rtol=1e-5)
    ids, masks = seg.masks()
    assert ids.tolist() == [1, 2] and masks.shape == (2, 32, 64)
    np.testing.assert_array_equal(seg.mask("road"), seg.class_map == 1)


def test_deeplab_letterbox_padding_is_removed(tmp_path):
    """Letterbox a 16×32 image into 32×32: 8 padding rows above and below. The network's rows 8..15 (class 1) and
    16..23 (class 2) are the image; the padding rows hold the opposite classes, which must not leak in."""
    lg = np.zeros((1, 3, 32, 32), np.float32)
    lg[0, 2, :8] = 4.0
    lg[0, 1, 8:16] = 4.0
    lg[0, 2, 16:24] = 4.0
    lg[0, 1, 24:] = 4.0
    folder = _package(
        tmp_path / "dl", lg, ["background", "a", "b"], architecture="deep-lab-v3-plus", resize="letterbox"
    )
    seg = AutoModel.from_pretrained(folder)(_image(16, 32))
    assert seg.class_map.shape == (16, 32)
    assert (seg.class_map[:7] == 1).all() and (seg.class_map[9:] == 2).all()


def test_rfdetr_semantic_sigmoid_quarter_resolution_without_background_channel(tmp_path):
    """RF-DETR semantic: (1, K, H/4, W/4) logits, K = foreground classes (no background channel), confidence =
    sigmoid of the top logit, default threshold 0.4; loaded through AutoModel with RF-DETR's model features."""
    lg = np.zeros((1, 2, 8, 8), np.float32)
    lg[0, 0, :4, :4], lg[0, 1, :4, :4] = 2.0, -1.0  # class "a", sigmoid(2) = 0.881
    lg[0, 0, :4, 4:], lg[0, 1, :4, 4:] = -1.0, 0.1  # class "b", sigmoid(0.1) = 0.525
    lg[0, 0, 4:], lg[0, 1, 4:] = -2.0, -3.0  # sigmoid(-2) = 0.119 < 0.4 → background
    features = {"resolution": 32, "patch_size": 16, "num_windows": 2, "dec_layers": 3, "num_queries": 100}
    folder = _package(tmp_path / "rf", lg, ["background", "a", "b"], architecture="rfdetr", features=features)
    model = AutoModel.from_pretrained(folder)
    seg = model(_image(32, 32))
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert (seg.class_map[:14, :14] == 1).all() and (seg.class_map[:14, 18:] == 2).all()
    np.testing.assert_allclose(seg.confidence[:14, :14], sig(2.0), rtol=1e-5)
    np.testing.assert_allclose(seg.confidence[:14, 18:], sig(0.1), rtol=1e-5)
    assert (seg.class_map[18:] == 0).all() and (seg.confidence[18:] == 0).all()
    assert (model(_image(32, 32), confidence=0.1).class_map[18:] == 1).all()


# -- the reference's class-name rules (test_semantic_segmentation.py), on im's functions ----------------------------


def test_resolve_background_class_id_when_background_present():
    assert _background_id(["background", "road", "sidewalk"]) == 0


def test_resolve_background_class_id_is_case_insensitive():
    assert _background_id(["road", "Background", "sidewalk"]) == 1


def test_validate_class_names_with_minimal_binary_and_multiclass_lists():
    assert _background_id(["background", "object"]) == 0
    assert _background_id(["background", "road", "sidewalk"]) == 0


@pytest.mark.parametrize("names", [["road", "sidewalk", "building"], ["background"]])
def test_validate_class_names_refuses_no_background_or_no_foreground(names):
    with pytest.raises(CorruptedModelPackageError, match="background"):
        _background_id(names)


def _identity(h: int, w: int) -> ImageTransform:
    return ImageTransform(1.0, 1.0, 0.0, 0.0, h, w, h, w, (0, 0, w, h))


@pytest.mark.parametrize(("background", "want"), [(0, [1, 2, 3]), (1, [0, 2, 3])])
def test_insert_background_class_when_the_network_has_no_background_channel(background, want):
    """Mirrors test_insert_background_class_when_background_first / _not_first: channel i of K = 3 foreground
    channels is the i-th class that is not the background."""
    lg = np.full((3, 1, 3), -5.0, np.float32)
    for i in range(3):
        lg[i, 0, i] = 5.0
    cm, _ = decode_semantic(
        lg,
        _identity(1, 3),
        activation="sigmoid",
        num_classes=4,
        background_class_id=background,
        thresholds=np.zeros(4, np.float32),
    )
    assert cm[0].tolist() == want


def test_insert_background_class_binary_single_foreground():
    """Mirrors test_insert_background_class_binary_single_foreground: one channel = the lone foreground class."""
    lg = np.full((1, 1, 3), 2.0, np.float32)
    cm, conf = decode_semantic(
        lg, _identity(1, 3), activation="softmax", num_classes=2, background_class_id=0, thresholds=np.zeros(2)
    )
    assert cm[0].tolist() == [1, 1, 1]
    np.testing.assert_allclose(conf, 1 / (1 + math.exp(-2.0)), rtol=1e-6)


def test_many_channels_running_argmax_matches_numpy():
    """More than 4 classes go through the warp 4 channels at a time: the running argmax / softmax equal numpy's on
    the same (identity-transformed) logits, ties to the lower class."""
    rng = np.random.default_rng(0)
    lg = rng.normal(size=(11, 5, 7)).astype(np.float32)
    lg[3, 0, 0] = lg[9, 0, 0] = 50.0  # a tie: the lower class wins
    cm, conf = decode_semantic(
        lg, _identity(5, 7), activation="softmax", num_classes=11, background_class_id=0, thresholds=np.zeros(11)
    )
    np.testing.assert_array_equal(cm, lg.argmax(axis=0))
    e = np.exp(lg - lg.max(axis=0))
    np.testing.assert_allclose(conf, (e / e.sum(axis=0)).max(axis=0), rtol=1e-5)


def test_yolo26_binary_head_sigmoid_of_the_single_channel(tmp_path):
    """YOLO26 semantic with ``nc == 1``: one channel, its sigmoid is the foreground confidence (default 0.25)."""
    lg = np.full((1, 1, 32, 32), -3.0, np.float32)  # sigmoid 0.047 → background
    lg[0, 0, :, :16] = 1.0  # sigmoid 0.731 → "crack"
    folder = _package(tmp_path / "y26", lg, ["background", "crack"], architecture="yolo26")
    seg = AutoModel.from_pretrained(folder)(_image(32, 32))
    assert (seg.class_map[:, :14] == 1).all() and (seg.class_map[:, 18:] == 0).all()
    np.testing.assert_allclose(seg.confidence[:, :14], 1 / (1 + math.exp(-1.0)), rtol=1e-5)


def test_deeplab_fit_longer_edge_is_run_as_letterbox(tmp_path):
    """As the reference's substitution for DeepLabV3+ (``FIT_LONGER_EDGE → LETTERBOX``)."""
    folder = _package(tmp_path / "dl", _deeplab_logits(), ["background", "a", "b"], architecture="deep-lab-v3-plus")
    config = json.loads((folder / "inference_config.json").read_text())
    config["network_input"]["resize_mode"] = "fit-longer-edge"
    (folder / "inference_config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="letterbox"):
        model = AutoModel.from_pretrained(folder)
    assert model.package.config.network_input.resize_mode == "letterbox"
