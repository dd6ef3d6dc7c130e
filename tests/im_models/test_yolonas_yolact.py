"""YOLO-NAS detection (raw boxes + scores, and both NMS-fused formats) and YOLACT instance segmentation, through
``AutoModel`` on Roboflow package folders whose ``weights.onnx`` is a small torch module emitting the published
output layout; expectations computed by hand from the reference's decoding (inference-models 0.39.6
models/yolonas/nms.py, models/yolact/yolact_instance_segmentation_onnx.py ``decode_predicted_bboxes``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from im_core import AutoModel
from testlib.onnx_graphs import torch_layout_onnx


def _package(folder: Path, architecture: str, task: str, outputs: dict[str, np.ndarray], names: list[str], **kw: Any):
    folder.mkdir()
    torch_layout_onnx(folder / "weights.onnx", outputs, input_shape=(1, 3, 32, 32))
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    (folder / "inference_config.json").write_text(
        json.dumps(
            {
                "network_input": {
                    "training_input_size": {"height": 32, "width": 32},
                    "resize_mode": "stretch",
                    "scaling_factor": 255,
                },
                "post_processing": {"type": "nms", "fused": bool(kw.get("fused"))},
            }
        )
    )
    config: dict[str, Any] = {"model_architecture": architecture, "task_type": task, "backend_type": "onnx"}
    if kw.get("features"):
        config["model_features"] = kw["features"]
    (folder / "model_config.json").write_text(json.dumps(config))
    return folder


def _image() -> np.ndarray:
    return np.full((32, 64, 3), 50, np.uint8)  # stretched to 32×32: original x = 2 × network x


def test_yolonas_raw_layout_best_class_thresholds_and_class_aware_nms(tmp_path):
    boxes = np.array(
        [[[0, 0, 16, 16], [1, 1, 16, 16], [1, 1, 16, 16], [20, 20, 30, 30], [16, 0, 32, 16], [0, 0, 1, 1]]],
        np.float32,
    )
    scores = np.array([[[0.9, 0.1], [0.8, 0.0], [0.0, 0.85], [0.2, 0.1], [0.3, 0.6], [0.0, 0.0]]], np.float32)
    folder = _package(tmp_path / "nas", "yolonas", "object-detection", {"boxes": boxes, "scores": scores}, ["a", "b"])
    model = AutoModel.from_pretrained(folder)
    d = model(_image())
    # anchor 1 (IoU 225/256 = 0.88 with anchor 0, same class) is suppressed; anchor 2 is another class and stays
    np.testing.assert_allclose(d.confidence, [0.9, 0.85, 0.6], rtol=1e-6)
    assert d.class_id.tolist() == [0, 1, 1]
    np.testing.assert_allclose(d.xyxy, [[0, 0, 32, 16], [2, 1, 32, 16], [32, 0, 64, 16]], atol=1e-4)
    assert model(_image(), class_agnostic=True).confidence.tolist() == pytest.approx([0.9, 0.6])
    assert len(model(_image(), confidence=0.95)) == 0


FUSED = {"max_detections": 300, "confidence_threshold": 0.1, "iou_threshold": 0.5, "class_agnostic": False}


def test_yolonas_nms_fused_flat_format(tmp_path):
    """super-gradients' flat format: (M, 7) rows ``image x1 y1 x2 y2 score class``; no NMS here, thresholds still
    apply, an iou_threshold warns."""
    rows = np.array(
        [[0, 0, 0, 16, 16, 0.9, 0], [0, 16, 0, 32, 16, 0.6, 1], [0, 20, 20, 30, 30, 0.1, 0]],
        np.float32,
    )
    folder = _package(
        tmp_path / "flat",
        "yolonas",
        "object-detection",
        {"flat": rows},
        ["a", "b"],
        fused=True,
        features={"nms_fused": FUSED},
    )
    model = AutoModel.from_pretrained(folder)
    d = model(_image())
    np.testing.assert_allclose(d.confidence, [0.9, 0.6], rtol=1e-6)
    np.testing.assert_allclose(d.xyxy, [[0, 0, 32, 16], [32, 0, 64, 16]], atol=1e-4)
    with pytest.warns(UserWarning, match="iou_threshold has no effect"):
        model(_image(), iou_threshold=0.3)


def test_yolonas_nms_fused_batch_format(tmp_path):
    """super-gradients' batch format: num_predictions (B, 1), boxes (B, K, 4), scores (B, K), classes (B, K); rows
    past num_predictions are padding."""
    outputs = {
        "num_predictions": np.array([[2]], np.int64),
        "pred_boxes": np.array([[[0, 0, 16, 16], [16, 0, 32, 16], [5, 5, 6, 6]]], np.float32),
        "pred_scores": np.array([[0.7, 0.5, 0.99]], np.float32),
        "pred_classes": np.array([[1, 0, 0]], np.int64),
    }
    folder = _package(tmp_path / "batch", "yolonas", "object-detection", outputs, ["a", "b"], fused=True)
    d = AutoModel.from_pretrained(folder)(_image())
    np.testing.assert_allclose(d.confidence, [0.7, 0.5], rtol=1e-6)
    assert d.class_id.tolist() == [1, 0]
    np.testing.assert_allclose(d.xyxy, [[0, 0, 32, 16], [32, 0, 64, 16]], atol=1e-4)


def test_yolact_prior_decoding_background_column_and_prototype_masks(tmp_path):
    priors = np.array(
        [[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]], np.float32
    )
    loc = np.zeros((1, 4, 4), np.float32)
    loc[0, 1] = (1.0, 0.0, 0.0, 5 * math.log(1.2))  # cx = 0.75 + 1·0.1·0.5 = 0.8; h = 0.5·1.2 = 0.6
    conf = np.array([[[0.05, 0.9, 0.05], [0.1, 0.2, 0.7], [0.9, 0.05, 0.05], [0.9, 0.05, 0.05]]], np.float32)
    coef = np.array([[[1, 0], [0, 1], [1, 1], [1, 1]]], np.float32)
    proto = np.full((1, 8, 8, 2), -5.0, np.float32)
    proto[0, :2, :, 0] = 5.0  # channel 0 on in the top 8 network rows
    proto[0, :, :, 1] = 5.0  # channel 1 on everywhere
    outputs = {"loc": loc, "conf": conf, "mask": coef, "priors": priors, "proto": proto}
    model = AutoModel.from_pretrained(
        _package(tmp_path / "yolact", "yolact", "instance-segmentation", outputs, ["a", "b"])
    )
    d = model(_image())
    np.testing.assert_allclose(d.confidence, [0.9, 0.7], rtol=1e-6)
    assert d.class_id.tolist() == [0, 1]
    # prior 0: (0, 0, 16, 16) network → (0, 0, 32, 16); prior 1: (0.55, 0.45, 1.05, 1.05) × 32, clipped
    np.testing.assert_allclose(d.xyxy, [[0, 0, 32, 16], [35.2, 14.4, 64, 32]], atol=1e-4)
    assert d.masks.shape == (2, 32, 64)
    assert d.masks[0][:7, :32].all() and not d.masks[0][9:].any() and not d.masks[0][:, 32:].any()
    assert d.masks[1][15:, 36:].all() and not d.masks[1][:, :35].any() and not d.masks[1][:14].any()
    assert model(_image(), mask_format="rle") == d
