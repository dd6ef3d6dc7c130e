"""Roboflow's ``dinov3_probe`` ONNX package layout (inference-models: ``weights.onnx`` = backbone + linear layer
giving logits, ``inference_config.json`` with a softmax post-processing, ``class_names.txt``) loads as an image
classifier. The network here is a small graph written in the test (mean colour → linear layer), not DINOv3."""

from __future__ import annotations

import json

import numpy as np
import pytest

from im_core import AutoModel
from im_models.classification._classifier import ImageClassifier, MultiLabelImageClassifier

WEIGHT = np.array([[4.0, -2.0, 1.0], [-3.0, 5.0, 0.5]], np.float32)  # (classes, RGB)
BIAS = np.array([0.25, -0.5], np.float32)


def _package(folder, task: str) -> None:
    from onnx import TensorProto, helper, numpy_helper, save

    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["images"], ["colour"], axes=[2, 3], keepdims=0),
            helper.make_node("Gemm", ["colour", "w", "b"], ["logits"], transB=1),
        ],
        "probe",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 2])],
        [numpy_helper.from_array(WEIGHT, "w"), numpy_helper.from_array(BIAS, "b")],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(folder / "weights.onnx"))
    (folder / "class_names.txt").write_text("pawn\nqueen\n")
    post = "softmax" if task == "classification" else "sigmoid"
    config = {
        "network_input": {
            "training_input_size": {"height": 32, "width": 32},
            "resize_mode": "stretch",
            "color_mode": "rgb",
            "scaling_factor": 255,
        },
        "post_processing": {"type": post},
        "model_initialization": {"num_classes": 2, "model_name": "vit_small_patch16_dinov3.lvd1689m"},
    }
    (folder / "inference_config.json").write_text(json.dumps(config))
    (folder / "model_config.json").write_text(
        json.dumps({"model_architecture": "dinov3_probe", "task_type": task, "backend_type": "onnx"})
    )


@pytest.mark.parametrize("task", ["classification", "multi-label-classification"])
def test_dinov3_probe_onnx_package_loads_as_an_image_classifier(tmp_path, task: str) -> None:
    _package(tmp_path, task)
    model = AutoModel.from_pretrained(tmp_path)
    assert isinstance(model, MultiLabelImageClassifier if task != "classification" else ImageClassifier)
    assert model.class_names == ("pawn", "queen")
    rgb = np.array([200, 40, 90], np.uint8)
    image = np.broadcast_to(rgb[::-1], (50, 70, 3)).copy()  # BGR
    logits = (rgb / 255.0) @ WEIGHT.T + BIAS
    if task == "classification":
        want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    else:
        want = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(model(image).confidence, want, atol=1e-5)
