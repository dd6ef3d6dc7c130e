"""Package files read as the Roboflow layout defines them (issue 15 item 3): ``inference_config.json``,
``keypoints_metadata.json``, the image pre-processing steps and ``class_names_operations``. Docstrings name the
reference test each case mirrors (roboflow/inference ``inference_models/tests/unit_tests/models/common/roboflow/
test_model_packages.py`` unless said otherwise); the configs are written from the facts of its test assets."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from im_core import Image
from im_core.errors import CorruptedModelPackageError
from im_models.common._adjust import adjust_images, contrast_stretching, histogram_equalization
from im_models.common._config import (
    class_names_remapping,
    parse_inference_config,
    parse_keypoints_metadata,
)

VALID: dict[str, Any] = {
    "image_pre_processing": {
        "auto-orient": {"enabled": True},
        "static-crop": {"enabled": True, "x_min": 9, "y_min": 9, "x_max": 94, "y_max": 75},
    },
    "network_input": {
        "training_input_size": {"height": "412", "width": "412"},
        "dynamic_spatial_size_supported": True,
        "dynamic_spatial_size_mode": {"type": "any-size"},
        "color_mode": "rgb",
        "resize_mode": "stretch",
        "padding_value": None,
        "input_channels": 3,
        "scaling_factor": None,
        "normalization": None,
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return doc


def test_valid_config_with_sizes_as_numeric_strings() -> None:
    """Mirrors test_parse_inference_config_when_parsing_should_succeed: sizes given as "412" load (the reference's
    pydantic reads them leniently), the static crop is kept, no scaling when scaling_factor is null."""
    cfg = parse_inference_config(VALID)
    net = cfg.network_input
    assert (net.height, net.width, net.dynamic, net.resize_mode, net.color) == (412, 412, True, "stretch", "rgb")
    assert net.scaling_factor is None and net.mean is None
    assert cfg.static_crop is not None and (cfg.static_crop.x_min, cfg.static_crop.y_max) == (9, 75)
    assert cfg.post_processing == {} and cfg.removed_class_names == () and cfg.contrast is None


@pytest.mark.parametrize(
    ("doc", "what"),
    [
        # test_parse_inference_config_when_invalid_image_pre_processing
        (_with("image_pre_processing.static-crop.x_min", "dummy"), "static-crop"),
        # test_parse_inference_config_when_invalid_network_input
        (_with("network_input.training_input_size.height", "dummy"), "height"),
        # test_parse_inference_config_when_missing_network_input
        ({k: v for k, v in VALID.items() if k != "network_input"}, "network_input"),
        # test_parse_inference_config_when_invalid_forward_pass_config
        (_with("forward_pass.static_batch_size", "dummy"), "static_batch_size"),
        # test_parse_inference_config_when_invalid_post_processing_config
        (_with("post_processing", {"some": "dummy"}), "post_processing.type"),
        (_with("post_processing", {"type": "argmax", "fused": False}), "post_processing.type"),
        # test_parse_inference_config_when_invalid_class_names_operations
        (_with("class_names_operations", {"some": "dummy"}), "class_names_operations"),
        (_with("class_names_operations", [{"type": "class_name_rename", "class_name": "a"}]), "class_names_operations"),
        # test_parse_inference_config_when_resize_mode_is_invalid
        (_with("network_input.resize_mode", "squash"), "resize_mode"),
        # the ContrastType enum of the reference's schema
        (_with("image_pre_processing.contrast", {"enabled": True, "type": "Sharpen"}), "contrast.type"),
        # test_parse_inference_config_when_json_file_does_not_define_dict_config
        ([1, 2], "JSON object"),
    ],
)
def test_invalid_configs_are_corrupted_packages(doc: Any, what: str) -> None:
    """Mirrors the reference's invalid-config cases (named per case): each is a CorruptedModelPackageError whose
    message names the key."""
    with pytest.raises(CorruptedModelPackageError, match=what.replace(".", r"\.")):
        parse_inference_config(doc)


def test_declared_pre_processing_steps_are_read() -> None:
    cfg = parse_inference_config(
        {
            **VALID,
            "image_pre_processing": {
                "grayscale": {"enabled": True},
                "contrast": {"enabled": True, "type": "Histogram Equalization"},
            },
            "post_processing": {"type": "nms", "fused": False},
            "class_names_operations": [{"type": "class_name_removal", "class_name": "background"}],
        }
    )
    assert cfg.grayscale and cfg.contrast == "Histogram Equalization"
    assert cfg.removed_class_names == ("background",)
    disabled = parse_inference_config(_with("image_pre_processing.contrast", {"enabled": False, "type": "x"}))
    assert disabled.contrast is None


def test_contrast_stretching_maps_percentiles_2_and_98_onto_the_full_range() -> None:
    """Follows the reference's numpy contrast stretching (percentiles 2 and 98 of all values, rescaled to 0..255)."""
    rng = np.random.default_rng(0)
    img = rng.integers(60, 180, (32, 32, 3), dtype=np.uint8)
    out = contrast_stretching(img)
    lo, hi = np.percentile(img, 2), np.percentile(img, 98)
    expected = ((np.clip(img.astype(np.float64), lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert out.min() == 0 and out.max() == 255


def test_histogram_equalisation_on_a_two_level_image() -> None:
    """Hand-computed: two values, half the pixels each; the cumulative histogram at their bin centres is 0.5 and 1.0,
    so they become 127 and 255 (truncated, as the reference's astype(uint8))."""
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2] = 100
    img[2:] = 200
    out = histogram_equalization(img)
    assert out[0, 0, 0] == 127 and out[3, 3, 0] == 255


def test_grayscale_and_contrast_run_on_the_static_crop_region() -> None:
    """The reference crops, then converts to gray, then adjusts contrast: pixels outside the crop do not change
    what the crop becomes."""
    cfg = parse_inference_config(
        _with(
            "image_pre_processing",
            {
                "static-crop": {"enabled": True, "x_min": 0, "y_min": 0, "x_max": 50, "y_max": 100},
                "grayscale": {"enabled": True},
            },
        )
    )
    img = np.zeros((10, 10, 3), np.uint8)
    img[:, :, 0] = 200  # red in RGB order
    img[:, 5:] = 255  # outside the crop
    (out,) = adjust_images([Image(img, "rgb")], cfg)
    assert out.pixels[0, 0].tolist() == [60, 60, 60]  # 0.299 * 200
    assert out.pixels[0, 9].tolist() == [255, 255, 255]  # untouched
    assert img[0, 0].tolist() == [200, 0, 0]  # the caller's array is not modified


def test_class_names_operations_remove_and_renumber() -> None:
    """Follows the reference's rfdetr/class_remapping.py: removed names disappear, the rest keep their order with
    consecutive ids, removed ids map to -1."""
    kept, mapping = class_names_remapping(["bg", "cat", "dog", "x"], ["bg", "x"])
    assert kept == ["cat", "dog"] and mapping.tolist() == [-1, 0, 1, -1]


# -- keypoints_metadata.json ------------------------------------------------------------------------------------------
def _kp(cid: int, names: list[str], edges: list[dict[str, Any]] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"object_class": f"c{cid}", "object_class_id": cid}
    entry["keypoints"] = {str(i): n for i, n in reversed(list(enumerate(names)))}
    if edges is not None:
        entry["edges"] = edges
    return entry


PERSON = ["nose", "left_eye", "right_eye"] + [f"k{i}" for i in range(3, 17)]
THREE = ["shoulder-right", "shoulder-left", "neck"]


def test_keypoints_metadata_per_object_class() -> None:
    """Mirrors test_parse_key_points_metadata_when_valid_input_provided: entries in any order, names ordered by
    integer id ("10" after "9"), one list per object_class_id."""
    meta = [_kp(1, PERSON, [{"from": 0, "to": 2}]), _kp(0, THREE, [{"from": 0, "to": 2}])]
    names, edges = parse_keypoints_metadata(meta)
    assert names == [THREE, PERSON] and edges == [[(0, 2)], [(0, 2)]]


@pytest.mark.parametrize(
    ("meta", "why"),
    [
        ([], "non-empty list"),  # test_parse_key_points_metadata_when_empty_file_provided
        ({"object_class_id": 0}, "non-empty list"),  # ..._when_content_is_not_list
        ([{"keypoints": {"0": "a"}, "edges": []}], "object_class_id"),  # ..._when_object_class_id_not_available
        ([_kp(1, PERSON, []), _kp(2, THREE, [])], "not a class id"),  # ..._when_invalid_object_class_id_provided
        ([_kp(1, PERSON, []), {"object_class_id": 0, "edges": []}], "keypoints"),  # ..._without_key_points
        ([_kp(1, PERSON, []), _kp(1, THREE, [])], r"\[0\] are not described"),  # ..._with_missing_classes
        ([_kp(1, PERSON, []), _kp(0, THREE, None)], "edges"),  # ..._with_missing_edges
        ([_kp(1, PERSON, []), _kp(0, THREE, [{"from": 0}])], '"from" and "to"'),  # ..._with_malformed_edges
        ([_kp(1, PERSON, []), _kp(0, THREE, [{"from": 0, "to": 2137}])], "outside"),  # ..._pointing_non_existing
    ],
)
def test_malformed_keypoints_metadata_is_refused(meta: Any, why: str) -> None:
    """Mirrors the reference's test_parse_key_points_metadata_* refusals (named per case)."""
    with pytest.raises(CorruptedModelPackageError, match=why):
        parse_keypoints_metadata(meta)


def test_rfdetr_class_names_operations_drop_and_renumber(tmp_path) -> None:
    """Follows the reference's RF-DETR use of class_names_operations (rfdetr_*_onnx.py with
    prepare_class_remapping): a removed class's detections disappear and the others are renumbered."""
    import json

    from im_core.testing import local_context
    from im_models.detr._detection import DETRDetection
    from testlib.onnx_graphs import constant_onnx

    boxes = np.zeros((1, 3, 4), np.float32)
    boxes[0, :] = (0.5, 0.5, 0.2, 0.4)
    logits = np.full((1, 3, 3), -10.0, np.float32)
    logits[0, 0, 0] = 3.0  # "background": removed
    logits[0, 1, 2] = 2.0  # "dog": id 2 → 1
    logits[0, 2, 1] = 1.0  # "cat": id 1 → 0
    folder = tmp_path / "rfdetr"
    folder.mkdir()
    constant_onnx(folder / "weights.onnx", {"dets": boxes, "labels": logits}, input_shape=(1, 3, 64, 64))
    (folder / "class_names.txt").write_text("background\ncat\ndog\n")
    config = {
        "network_input": {"training_input_size": {"height": 64, "width": 64}, "resize_mode": "stretch"},
        "post_processing": {"type": "sigmoid", "fused": False},
        "class_names_operations": [{"type": "class_name_removal", "class_name": "background"}],
    }
    (folder / "inference_config.json").write_text(json.dumps(config))
    model = DETRDetection.from_package(local_context(folder, architecture="rfdetr", task="object-detection"))
    assert list(model.class_names) == ["cat", "dog"]
    d = model(np.full((64, 64, 3), 128, np.uint8))
    assert d.class_id.tolist() == [1, 0] and d.names == ["dog", "cat"]
