"""Decoding of heads with no public weights, checked exactly: tiny ONNX graphs that ignore their input and return
hand-written raw outputs (segmentation with prototypes, pose, classification, NMS-fused, YOLOv5, YOLOv10/YOLO26
end-to-end, RF-DETR). They load through the real path: package folder or bare file → local_context → ONNX backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from im_core import RLEMask
from im_core.errors import CorruptedModelPackageError
from im_core.testing import local_context


def constant_onnx(path: Path, outputs: dict[str, np.ndarray], input_shape=("batch", 3, "height", "width")) -> Path:
    """An ONNX graph with input ``images`` whose outputs are the given constants (batch 1)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), f"{name}_c"))
        nodes.append(helper.make_node("Add", [f"{name}_c", "z"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes, "constant", [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))], outs, inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _image(h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), 128, np.uint8)


def _ctx(path: Path, task: str, names: list[str], size=(640, 640), features=None, arch="yolov8"):
    return local_context(path, architecture=arch, task=task, class_names=names, input_size=size, features=features)


def _anchor_free(cands: list[tuple], num_classes: int, extra: int, n: int = 12) -> np.ndarray:
    """(1, 4 + C + E, n) with the given candidates ``(cx, cy, w, h, class, score, extras)``, the rest zero."""
    out = np.zeros((1, 4 + num_classes + extra, n), np.float32)
    for i, (cx, cy, w, h, cls, score, ex) in enumerate(cands):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + cls, i] = score
        out[0, 4 + num_classes :, i] = ex
    return out


def test_segmentation_decoding_synthetic_protos(tmp_path):
    from im_models.yolo._segmentation import YOLOSegmentation

    e0, e1 = np.eye(32, dtype=np.float32)[0], np.eye(32, dtype=np.float32)[1]
    det = _anchor_free(
        [
            (100, 80, 80, 60, 0, 0.9, e0),  # box [60, 50, 140, 110], mask = proto 0 (rows [40, 120))
            (102, 80, 80, 60, 0, 0.7, e0),  # same class, IoU 0.95 with the first → suppressed
            (400, 300, 100, 100, 1, 0.8, e1),  # box [350, 250, 450, 350], mask = proto 1 (cols [80, 160)) → empty
            (500, 500, 50, 50, 1, 0.1, e1),  # below the threshold
        ],
        num_classes=2,
        extra=32,
    )
    protos = -np.ones((1, 32, 160, 160), np.float32)
    protos[0, 0, 10:30, :] = 1.0
    protos[0, 1, :, 20:40] = 1.0
    path = constant_onnx(tmp_path / "seg.onnx", {"output0": det, "output1": protos})
    model = YOLOSegmentation.from_package(_ctx(path, "instance-segmentation", ["a", "b"]))
    d = model(_image(640, 640))
    np.testing.assert_allclose(d.xyxy, [[60, 50, 140, 110], [350, 250, 450, 350]])
    assert d.class_id.tolist() == [0, 1] and d.masks.shape == (2, 640, 640)
    want = np.zeros((2, 640, 640), bool)
    want[0, 50:110, 60:140] = True  # rows [40, 120) ∩ box rows [50, 110)
    np.testing.assert_array_equal(d.masks, want)  # mask 1: its box lies outside proto 1's columns
    rle = model(_image(640, 640), mask_format="rle")
    assert isinstance(rle.masks, list) and all(isinstance(m, RLEMask) for m in rle.masks)
    np.testing.assert_array_equal(rle.dense_masks(), want)
    with pytest.raises(CorruptedModelPackageError, match="3 class names"):
        YOLOSegmentation.from_package(_ctx(path, "instance-segmentation", ["a", "b", "c"]))


def test_pose_decoding_synthetic_keypoints_through_letterbox(tmp_path):
    from im_models.yolo._pose import YOLOPose

    kpts = np.zeros((17, 3), np.float32)
    kpts[:, 0] = np.arange(17) * 10 + 100  # network x
    kpts[:, 1] = 200 + np.arange(17)  # network y (the 320-high image sits at y offset 160)
    kpts[:, 2] = np.linspace(0, 1, 17)
    out = _anchor_free([(300, 300, 100, 200, 0, 0.9, kpts.ravel())], num_classes=1, extra=51)
    path = constant_onnx(tmp_path / "pose.onnx", {"output0": out}, input_shape=(1, 3, 640, 640))
    model = YOLOPose.from_package(
        _ctx(path, "keypoint-detection", ["person"], features={"ultralytics": {"kpt_shape": [17, 3]}})
    )
    d = model(_image(320, 640))  # letterboxed into 640×640: offset_y 160
    np.testing.assert_allclose(d.xyxy, [[250, 40, 350, 240]])
    np.testing.assert_allclose(d.keypoints[0], np.stack([kpts[:, 0], kpts[:, 1] - 160], axis=1))
    np.testing.assert_allclose(d.keypoint_confidence[0], kpts[:, 2])


def test_classification_probabilities_and_logits(tmp_path):
    from im_models.yolo._classification import YOLOClassification

    probs = np.array([[0.1, 0.6, 0.2, 0.1]], np.float32)
    path = constant_onnx(tmp_path / "cls.onnx", {"output0": probs}, input_shape=(1, 3, 64, 64))
    model = YOLOClassification.from_package(_ctx(path, "classification", list("abcd"), size=(64, 64)))
    c = model(_image(100, 50))
    assert c.class_name == "b" and c.top_k(2) == [("b", pytest.approx(0.6)), ("c", pytest.approx(0.2))]
    logits = np.array([[0.0, 2.0, 1.0, 0.0]], np.float32)
    folder = tmp_path / "rf"
    folder.mkdir()
    constant_onnx(folder / "weights.onnx", {"output0": logits}, input_shape=(1, 3, 64, 64))
    (folder / "class_names.txt").write_text("a\nb\nc\nd\n")
    (folder / "inference_config.json").write_text(
        json.dumps(
            {
                "network_input": {"training_input_size": {"height": 64, "width": 64}, "resize_mode": "stretch"},
                "post_processing": {"type": "softmax", "fused": False},
            }
        )
    )
    c = YOLOClassification.from_package(local_context(folder, architecture="yolov8", task="classification"))(
        _image(10, 10)
    )
    e = np.exp(logits[0])
    np.testing.assert_allclose(c.confidence, e / e.sum(), rtol=1e-6)


def test_nms_fused_and_end_to_end_outputs_skip_nms(tmp_path):
    from im_models.yolo._detection import YOLODetection
    from im_models.yolo._end_to_end import YOLOEndToEndDetection

    rows = np.zeros((1, 300, 6), np.float32)  # fixed-size output padded with zero rows
    rows[0, 0] = (10, 20, 110, 220, 0.9, 1)
    rows[0, 1] = (12, 20, 112, 220, 0.8, 1)  # heavy overlap, kept: the graph already decided
    rows[0, 2] = (300, 300, 400, 400, 0.3, 0)
    path = constant_onnx(tmp_path / "e2e.onnx", {"output0": rows}, input_shape=(1, 3, 640, 640))
    for cls, features in ((YOLOEndToEndDetection, None), (YOLODetection, {"nms_fused": {}})):
        model = cls.from_package(_ctx(path, "object-detection", ["a", "b"], features=features, arch="yolov10"))
        d = model(_image(640, 640))
        np.testing.assert_allclose(d.xyxy, rows[0, :3, :4])
        assert d.class_id.tolist() == [1, 1, 0]
        assert len(model(_image(640, 640), confidence=0.5)) == 2
        assert model(_image(640, 640), class_filter=["a"]).class_id.tolist() == [0]
        assert len(model(_image(640, 640), max_detections=1)) == 1


def test_yolov5_objectness_times_class_probability(tmp_path):
    from im_models.yolo._yolov5 import YOLOv5Detection

    out = np.zeros((1, 20, 5 + 3), np.float32)
    out[0, 0] = (100, 100, 50, 50, 0.9, 0.1, 0.8, 0.1)  # score 0.72, class 1
    out[0, 1] = (102, 100, 50, 50, 0.8, 0.1, 0.8, 0.1)  # 0.64, same class, overlapping → suppressed
    out[0, 2] = (300, 300, 40, 40, 0.5, 0.4, 0.3, 0.3)  # 0.2 < 0.25 → dropped
    out[0, 3] = (500, 500, 20, 40, 1.0, 0.0, 0.0, 0.5)  # 0.5, class 2
    path = constant_onnx(tmp_path / "v5.onnx", {"output0": out}, input_shape=(1, 3, 640, 640))
    model = YOLOv5Detection.from_package(_ctx(path, "object-detection", ["x", "y", "z"], arch="yolov5"))
    d = model(_image(640, 640))
    np.testing.assert_allclose(d.confidence, [0.72, 0.5], rtol=1e-6)
    np.testing.assert_allclose(d.xyxy, [[75, 75, 125, 125], [490, 480, 510, 520]])
    assert d.class_id.tolist() == [1, 2]
    with pytest.raises(CorruptedModelPackageError, match="2 class names"):
        YOLOv5Detection.from_package(_ctx(path, "object-detection", ["x", "y"], arch="yolov5"))


def test_rfdetr_style_sigmoid_topk_no_nms(tmp_path):
    from im_models.detr._detection import DETRDetection

    boxes = np.zeros((1, 5, 4), np.float32)
    boxes[0, 0] = (0.5, 0.5, 0.2, 0.4)
    boxes[0, 1] = (0.5, 0.5, 0.2, 0.4)  # duplicate query: DETR needs no NMS, both stay
    boxes[0, 2] = (0.1, 0.1, 0.1, 0.1)
    logits = np.full((1, 5, 3), -10.0, np.float32)
    logits[0, 0, 2] = 2.0
    logits[0, 1, 0] = 1.0
    logits[0, 2, 1] = -1.0  # sigmoid 0.27 < 0.5 default
    folder = tmp_path / "rfdetr"
    folder.mkdir()
    constant_onnx(folder / "weights.onnx", {"dets": boxes, "labels": logits}, input_shape=(1, 3, 560, 560))
    (folder / "class_names.txt").write_text("cat\ndog\nbird\n")
    (folder / "inference_config.json").write_text(
        json.dumps(
            {
                "network_input": {
                    "training_input_size": {"height": 560, "width": 560},
                    "resize_mode": "stretch",
                    "normalization": [[0.485, 0.456, 0.406], [0.229, 0.224, 0.225]],
                },
                "post_processing": {"type": "sigmoid", "fused": False},
            }
        )
    )
    model = DETRDetection.from_package(local_context(folder, architecture="rfdetr", task="object-detection"))
    d = model(_image(280, 1120))  # stretch: x scale 0.5, y scale 2
    sig = 1 / (1 + np.exp(-np.array([2.0, 1.0])))
    np.testing.assert_allclose(d.confidence, sig, rtol=1e-6)
    assert d.names == ["bird", "cat"]
    np.testing.assert_allclose(d.xyxy, [[448, 84, 672, 196], [448, 84, 672, 196]], rtol=1e-5)
    assert len(model(_image(280, 1120), confidence=0.2)) == 3
    assert len(model(_image(280, 1120), max_detections=1)) == 1


def test_rfdetr_bare_file_uses_detr_defaults(tmp_path):
    from im_models.detr._detection import DETRDetection

    boxes = np.array([[[0.5, 0.5, 0.5, 0.5]]], np.float32)
    logits = np.array([[[3.0, -3.0]]], np.float32)
    path = constant_onnx(tmp_path / "detr.onnx", {"dets": boxes, "labels": logits}, input_shape=(1, 3, 384, 384))
    model = DETRDetection.from_package(_ctx(path, "object-detection", ["p", "q"], arch="rfdetr"))
    net = model.package.config.network_input
    assert (net.resize_mode, net.size, net.mean) == ("stretch", (384, 384), (0.485, 0.456, 0.406))
    d = model(_image(100, 200))
    np.testing.assert_allclose(d.xyxy, [[50, 25, 150, 75]], rtol=1e-5)
    assert d.names == ["p"]


def test_image_size_only_for_dynamic_inputs(tmp_path):
    from im_core.errors import InvalidParameterError
    from im_models.yolo._detection import YOLODetection

    out = _anchor_free([(100, 100, 50, 50, 0, 0.9, np.zeros(0))], num_classes=1, extra=0)
    static = constant_onnx(tmp_path / "s.onnx", {"output0": out}, input_shape=(1, 3, 640, 640))
    with pytest.raises(InvalidParameterError, match="image_size"):
        YOLODetection.from_package(_ctx(static, "object-detection", ["a"]))(_image(64, 64), image_size=320)
    dynamic = constant_onnx(tmp_path / "d.onnx", {"output0": out})
    model = YOLODetection.from_package(_ctx(dynamic, "object-detection", ["a"]))
    from im_core import to_images

    prepared = model.pre_process(to_images(_image(64, 64)), image_size=320)
    assert prepared.tensor.shape == (1, 3, 320, 320)
