"""Decoding of heads with no public weights, checked exactly: tiny ONNX graphs that ignore their input and return
hand-written raw outputs (detection, segmentation with prototypes, pose, classification, NMS-fused, YOLOv5,
YOLOv10/YOLO26 end-to-end, RF-DETR). They load through the real path: package folder or bare file → local_context →
ONNX backend.

Each decoding test runs three ways (the ``outputs`` fixture): numpy outputs as the ONNX session returns them, and
the same outputs as torch tensors on the CPU and on CUDA (``gpu`` marker), as a session that keeps outputs on the
device returns them; the torch runs must give results identical to the numpy run (:func:`_call`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from im_core import RLEMask
from im_core.errors import CorruptedModelPackageError
from im_core.testing import local_context
from testlib.onnx_graphs import constant_onnx

OUTPUT_KINDS = ["numpy", "torch-cpu", pytest.param("torch-cuda", marks=pytest.mark.gpu)]


@pytest.fixture(params=OUTPUT_KINDS)
def outputs(request) -> str:
    """How the session hands back its outputs: ``numpy``, ``torch-cpu`` or ``torch-cuda``."""
    return request.param


class TorchOutputSession:
    """Stand-in for a session that keeps its outputs on the device: the real session's outputs as torch tensors."""

    def __init__(self, inner, device: str) -> None:
        self.inner = inner
        self.device = device

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, feeds, output_names=None):
        import torch

        out = self.inner.run(feeds, output_names)
        return {k: torch.from_numpy(np.array(v)).to(self.device) for k, v in out.items()}


def _on(model, kind: str):
    """``model`` with its session returning ``kind`` outputs."""
    if kind != "numpy":
        model.package.session = TorchOutputSession(model.package.session, "cuda" if kind == "torch-cuda" else "cpu")
    return model


def _same(a, b) -> None:
    """Two results are identical, field by field (bit-exact arrays, same RLE counts)."""
    if hasattr(a, "xyxy"):
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
        np.testing.assert_array_equal(a.confidence, b.confidence)
        np.testing.assert_array_equal(a.class_id, b.class_id)
        assert a.class_names == b.class_names
        for field in ("keypoints", "keypoint_confidence"):
            assert (getattr(a, field) is None) == (getattr(b, field) is None)
            if getattr(a, field) is not None:
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        if isinstance(a.masks, list):
            assert [m.counts.tolist() for m in a.masks] == [m.counts.tolist() for m in b.masks]
        elif a.masks is not None:
            np.testing.assert_array_equal(a.masks, b.masks)
        else:
            assert b.masks is None
    else:  # Classification
        np.testing.assert_array_equal(a.confidence, b.confidence)


def _call(model, image, **params):
    """``model(image, **params)``; with torch outputs, also check that ``forward`` hands them on as torch tensors
    on their device and that the result is identical to the numpy outputs' result."""
    session = model.package.session
    if not isinstance(session, TorchOutputSession):
        return model(image, **params)
    from im_core import to_images

    raw = model.forward(model.pre_process(to_images(image), **params))
    assert all(r.device.type == session.device for r in raw), [r.device for r in raw]
    got = model(image, **params)
    model.package.session = session.inner
    try:
        want = model(image, **params)
    finally:
        model.package.session = session
    _same(got, want)
    return got


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


def test_segmentation_decoding_synthetic_protos(tmp_path, outputs):
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
    model = _on(YOLOSegmentation.from_package(_ctx(path, "instance-segmentation", ["a", "b"])), outputs)
    d = _call(model, _image(640, 640))
    np.testing.assert_allclose(d.xyxy, [[60, 50, 140, 110], [350, 250, 450, 350]])
    assert d.class_id.tolist() == [0, 1] and d.masks.shape == (2, 640, 640)
    want = np.zeros((2, 640, 640), bool)
    want[0, 50:110, 60:140] = True  # rows [40, 120) ∩ box rows [50, 110)
    np.testing.assert_array_equal(d.masks, want)  # mask 1: its box lies outside proto 1's columns
    rle = _call(model, _image(640, 640), mask_format="rle")
    assert len(_call(model, _image(640, 640), confidence=0.95).masks) == 0
    assert isinstance(rle.masks, list) and all(isinstance(m, RLEMask) for m in rle.masks)
    np.testing.assert_array_equal(rle.dense_masks(), want)
    with pytest.raises(CorruptedModelPackageError, match="3 class names"):
        YOLOSegmentation.from_package(_ctx(path, "instance-segmentation", ["a", "b", "c"]))


def test_pose_decoding_synthetic_keypoints_through_letterbox(tmp_path, outputs):
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
    d = _call(_on(model, outputs), _image(320, 640))  # letterboxed into 640×640: offset_y 160
    np.testing.assert_allclose(d.xyxy, [[250, 40, 350, 240]])
    np.testing.assert_allclose(d.keypoints[0], np.stack([kpts[:, 0], kpts[:, 1] - 160], axis=1))
    np.testing.assert_allclose(d.keypoint_confidence[0], kpts[:, 2])


def test_classification_probabilities_and_logits(tmp_path, outputs):
    from im_models.yolo._classification import YOLOClassification

    probs = np.array([[0.1, 0.6, 0.2, 0.1]], np.float32)
    path = constant_onnx(tmp_path / "cls.onnx", {"output0": probs}, input_shape=(1, 3, 64, 64))
    model = YOLOClassification.from_package(_ctx(path, "classification", list("abcd"), size=(64, 64)))
    c = _call(_on(model, outputs), _image(100, 50))
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
    model = YOLOClassification.from_package(local_context(folder, architecture="yolov8", task="classification"))
    c = _call(_on(model, outputs), _image(10, 10))
    e = np.exp(logits[0])
    np.testing.assert_allclose(c.confidence, e / e.sum(), rtol=1e-6)


def test_nms_fused_and_end_to_end_outputs_skip_nms(tmp_path, outputs):
    from im_models.yolo._detection import YOLODetection
    from im_models.yolo._end_to_end import YOLOEndToEndDetection

    rows = np.zeros((1, 300, 6), np.float32)  # fixed-size output padded with zero rows
    rows[0, 0] = (10, 20, 110, 220, 0.9, 1)
    rows[0, 1] = (12, 20, 112, 220, 0.8, 1)  # heavy overlap, kept: the graph already decided
    rows[0, 2] = (300, 300, 400, 400, 0.3, 0)
    path = constant_onnx(tmp_path / "e2e.onnx", {"output0": rows}, input_shape=(1, 3, 640, 640))
    for cls, features in ((YOLOEndToEndDetection, None), (YOLODetection, {"nms_fused": {}})):
        model = cls.from_package(_ctx(path, "object-detection", ["a", "b"], features=features, arch="yolov10"))
        d = _call(_on(model, outputs), _image(640, 640))
        np.testing.assert_allclose(d.xyxy, rows[0, :3, :4])
        assert d.class_id.tolist() == [1, 1, 0]
        assert len(_call(model, _image(640, 640), confidence=0.5)) == 2
        assert _call(model, _image(640, 640), class_filter=["a"]).class_id.tolist() == [0]
        assert _call(model, _image(640, 640), confidence={"b": 0.85}).confidence.tolist() == pytest.approx([0.9, 0.3])
        assert len(_call(model, _image(640, 640), max_detections=1)) == 1


def test_yolov5_objectness_times_class_probability(tmp_path, outputs):
    from im_models.yolo._yolov5 import YOLOv5Detection

    out = np.zeros((1, 20, 5 + 3), np.float32)
    out[0, 0] = (100, 100, 50, 50, 0.9, 0.1, 0.8, 0.1)  # score 0.72, class 1
    out[0, 1] = (102, 100, 50, 50, 0.8, 0.1, 0.8, 0.1)  # 0.64, same class, overlapping → suppressed
    out[0, 2] = (300, 300, 40, 40, 0.5, 0.4, 0.3, 0.3)  # 0.2 < 0.25 → dropped
    out[0, 3] = (500, 500, 20, 40, 1.0, 0.0, 0.0, 0.5)  # 0.5, class 2
    path = constant_onnx(tmp_path / "v5.onnx", {"output0": out}, input_shape=(1, 3, 640, 640))
    model = YOLOv5Detection.from_package(_ctx(path, "object-detection", ["x", "y", "z"], arch="yolov5"))
    d = _call(_on(model, outputs), _image(640, 640))
    np.testing.assert_allclose(d.confidence, [0.72, 0.5], rtol=1e-6)
    np.testing.assert_allclose(d.xyxy, [[75, 75, 125, 125], [490, 480, 510, 520]])
    assert d.class_id.tolist() == [1, 2]
    with pytest.raises(CorruptedModelPackageError, match="2 class names"):
        YOLOv5Detection.from_package(_ctx(path, "object-detection", ["x", "y"], arch="yolov5"))


def test_rfdetr_style_sigmoid_topk_no_nms(tmp_path, outputs):
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
    d = _call(_on(model, outputs), _image(280, 1120))  # stretch: x scale 0.5, y scale 2
    sig = 1 / (1 + np.exp(-np.array([2.0, 1.0])))
    np.testing.assert_allclose(d.confidence, sig, rtol=1e-6)
    assert d.names == ["bird", "cat"]
    np.testing.assert_allclose(d.xyxy, [[448, 84, 672, 196], [448, 84, 672, 196]], rtol=1e-5)
    assert len(_call(model, _image(280, 1120), confidence=0.2)) == 3
    assert len(_call(model, _image(280, 1120), max_detections=1)) == 1
    assert _call(model, _image(280, 1120), class_filter="cat").names == ["cat"]
    # the class filter applies before the top-k: the better "bird" pair must not take the only place
    assert _call(model, _image(280, 1120), class_filter="cat", max_detections=1).names == ["cat"]


def test_rfdetr_bare_file_uses_detr_defaults(tmp_path, outputs):
    from im_models.detr._detection import DETRDetection

    boxes = np.array([[[0.5, 0.5, 0.5, 0.5]]], np.float32)
    logits = np.array([[[3.0, -3.0]]], np.float32)
    path = constant_onnx(tmp_path / "detr.onnx", {"dets": boxes, "labels": logits}, input_shape=(1, 3, 384, 384))
    model = DETRDetection.from_package(_ctx(path, "object-detection", ["p", "q"], arch="rfdetr"))
    net = model.package.config.network_input
    assert (net.resize_mode, net.size, net.mean) == ("stretch", (384, 384), (0.485, 0.456, 0.406))
    d = _call(_on(model, outputs), _image(100, 200))
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


def _detection_model(tmp_path, outputs, cands, names, recommended=None, n=12):
    from im_models.yolo._detection import YOLODetection

    out = _anchor_free(cands, num_classes=len(names), extra=0, n=n)
    path = constant_onnx(tmp_path / "det.onnx", {"output0": out}, input_shape=(1, 3, 640, 640))
    ctx = _ctx(path, "object-detection", names)
    if recommended is not None:
        ctx = replace(ctx, package=ctx.package.model_copy(update={"recommended_parameters": recommended}))
    return _on(YOLODetection.from_package(ctx), outputs)


NONE = np.zeros(0)


def test_detection_anchor_free_class_aware_nms_and_filters(tmp_path, outputs):
    model = _detection_model(
        tmp_path,
        outputs,
        [
            (100, 100, 80, 80, 0, 0.9, NONE),  # [60, 60, 140, 140]
            (104, 100, 80, 80, 0, 0.8, NONE),  # same class, IoU 0.9 → suppressed
            (104, 100, 80, 80, 1, 0.7, NONE),  # other class: kept by class-aware NMS
            (400, 400, 40, 40, 2, 0.3, NONE),
            (500, 500, 40, 40, 2, 0.2, NONE),  # < 0.25
        ],
        ["a", "b", "c"],
    )
    img = _image(640, 640)
    d = _call(model, img)
    assert d.class_id.tolist() == [0, 1, 2]
    np.testing.assert_allclose(d.confidence, [0.9, 0.7, 0.3], rtol=1e-6)
    np.testing.assert_allclose(d.xyxy, [[60, 60, 140, 140], [64, 60, 144, 140], [380, 380, 420, 420]])
    assert _call(model, img, class_agnostic=True).class_id.tolist() == [0, 2]
    assert _call(model, img, class_filter=["b", 2]).class_id.tolist() == [1, 2]
    assert _call(model, img, confidence={"c": 0.1, 0: 0.95}).confidence.tolist() == pytest.approx([0.7, 0.3, 0.2])
    assert len(_call(model, img, max_detections=0)) == 0


def test_pre_nms_top_k_cuts_before_nms_ties_keep_lower_index(tmp_path, outputs):
    model = _detection_model(
        tmp_path,
        outputs,
        [
            (100, 100, 80, 80, 0, 0.9, NONE),  # A
            (104, 100, 80, 80, 0, 0.8, NONE),  # B, suppressed by A
            (400, 400, 40, 40, 0, 0.7, NONE),  # C, separate
            (200, 400, 40, 40, 0, 0.6, NONE),  # D, separate, ties with E
            (300, 400, 40, 40, 0, 0.6, NONE),  # E
        ],
        ["a"],
    )
    img = _image(640, 640)
    assert _call(model, img).confidence.tolist() == pytest.approx([0.9, 0.7, 0.6, 0.6])
    # the best 2 (A, B) enter NMS, B is suppressed: C never had a chance (top-k is before NMS, not after)
    assert _call(model, img, pre_nms_top_k=2).confidence.tolist() == pytest.approx([0.9])
    cut = _call(model, img, pre_nms_top_k=4)  # A, B, C and the first of the tied D / E
    np.testing.assert_allclose(cut.xyxy[:, 0], [60, 380, 180])
    assert len(_call(model, img, pre_nms_top_k=None)) == 4
    from im_core.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="pre_nms_top_k"):
        model(img, pre_nms_top_k=0)


def test_recommended_and_per_class_confidence_from_the_package(tmp_path, outputs):
    from im_core import RecommendedParameters

    cands = [
        (100, 100, 40, 40, 0, 0.7, NONE),
        (200, 100, 40, 40, 0, 0.5, NONE),
        (300, 100, 40, 40, 1, 0.4, NONE),
        (400, 100, 40, 40, 1, 0.2, NONE),
        (500, 100, 40, 40, 1, 0.1, NONE),
    ]
    rec = RecommendedParameters(confidence=0.6, per_class_confidence={"b": 0.15}, max_detections=10)
    model = _detection_model(tmp_path, outputs, cands, ["a", "b"], recommended=rec)
    img = _image(640, 640)
    assert _call(model, img).confidence.tolist() == pytest.approx([0.7, 0.4, 0.2])  # a ≥ 0.6, b ≥ 0.15
    assert len(_call(model, img, confidence=0.05)) == 5  # the call overrides both
    # a mapping names some classes; the others use the package's global recommendation
    assert _call(model, img, confidence={"a": 0.45}).confidence.tolist() == pytest.approx([0.7, 0.5])
    assert len(_call(model, img, max_detections=2)) == 2
    plain = _detection_model(tmp_path, outputs, cands, ["a", "b"])  # family default 0.25 without a package value
    assert _call(plain, img).confidence.tolist() == pytest.approx([0.7, 0.5, 0.4])


def test_pose_keypoint_names_and_skeleton_from_keypoints_metadata(tmp_path, outputs):
    from im_models.yolo._pose import YOLOPose

    names = [f"kp{i}" for i in range(11)]
    kpts = np.stack([np.arange(11) * 5.0 + 300, np.full(11, 310.0), np.full(11, 0.5)], axis=1).astype(np.float32)
    out = _anchor_free([(300, 300, 100, 100, 0, 0.9, kpts.ravel())], num_classes=1, extra=33)
    folder = tmp_path / "pose"
    folder.mkdir()
    constant_onnx(folder / "weights.onnx", {"output0": out}, input_shape=(1, 3, 640, 640))
    (folder / "class_names.txt").write_text("person\n")
    (folder / "inference_config.json").write_text(
        json.dumps({"network_input": {"training_input_size": {"height": 640, "width": 640}, "resize_mode": "stretch"}})
    )
    meta = [
        {
            "object_class_id": 0,
            "object_class_name": "person",
            "keypoints": {str(i): n for i, n in reversed(list(enumerate(names)))},  # "10" must sort after "9"
            "edges": [{"from": 0, "to": 1}, {"from": 9, "to": 10}],
        }
    ]
    (folder / "keypoints_metadata.json").write_text(json.dumps(meta))
    model = YOLOPose.from_package(local_context(folder, architecture="yolov8", task="keypoint-detection"))
    assert model.metadata.extra["keypoint_names"] == names
    assert model.metadata.extra["skeleton"] == [(0, 1), (9, 10)]
    assert model.kpt_shape == (11, 3)  # K from the names, no kpt_shape in the features
    d = _call(_on(model, outputs), _image(640, 640))
    np.testing.assert_allclose(d.keypoints[0], kpts[:, :2])
    np.testing.assert_allclose(d.keypoint_confidence[0], kpts[:, 2])
    assert d.keypoint_names == tuple(names) and d.skeleton == ((0, 1), (9, 10))  # every result carries them


def test_class_count_mismatch_is_a_corrupted_package_for_pose_and_classification(tmp_path):
    from im_models.yolo._classification import YOLOClassification
    from im_models.yolo._pose import YOLOPose

    out = _anchor_free([], num_classes=1, extra=51)  # (1, 4 + 1 + 17·3, n): one class
    path = constant_onnx(tmp_path / "pose.onnx", {"output0": out}, input_shape=(1, 3, 640, 640))
    features = {"ultralytics": {"kpt_shape": [17, 3]}}
    with pytest.raises(CorruptedModelPackageError, match="2 class names"):
        YOLOPose.from_package(_ctx(path, "keypoint-detection", ["person", "dog"], features=features))
    with pytest.raises(CorruptedModelPackageError, match="does not fit"):  # no kpt_shape: 3 classes + K×3 fails
        YOLOPose.from_package(_ctx(path, "keypoint-detection", ["a", "b", "c"]))
    probs = np.full((1, 4), 0.25, np.float32)
    cls_path = constant_onnx(tmp_path / "cls.onnx", {"output0": probs}, input_shape=(1, 3, 64, 64))
    with pytest.raises(CorruptedModelPackageError, match="3 class names"):
        YOLOClassification.from_package(_ctx(cls_path, "classification", list("abc"), size=(64, 64)))


@pytest.mark.parametrize(
    "meta",
    [
        [{"keypoints": {"nose": "0"}}],  # names as keys
        [{"keypoints": {"0": "nose"}, "edges": [{"from": 0}]}],  # edge without "to"
    ],
)
def test_malformed_keypoints_metadata_is_a_corrupted_package(tmp_path, meta):
    from im_models.yolo._pose import YOLOPose

    folder = tmp_path / "pose"
    folder.mkdir()
    constant_onnx(folder / "weights.onnx", {"output0": _anchor_free([], 1, 3)}, input_shape=(1, 3, 640, 640))
    (folder / "inference_config.json").write_text(
        json.dumps({"network_input": {"training_input_size": {"height": 640, "width": 640}, "resize_mode": "stretch"}})
    )
    (folder / "keypoints_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptedModelPackageError, match=r"keypoints_metadata\.json"):
        YOLOPose.from_package(local_context(folder, architecture="yolov8", task="keypoint-detection"))


def test_resolved_detection_params_are_cached_read_only_and_keyed_by_type():
    from im_core.errors import InvalidParameterError
    from im_models.common import resolve_detection_params

    names = ["a", "b", "c"]
    first = resolve_detection_params({}, names, 3)
    assert resolve_detection_params({}, names, 3) is first
    assert first.single_threshold == pytest.approx(0.25) and first.min_threshold == pytest.approx(0.25)
    with pytest.raises(ValueError, match="read-only"):
        first.thresholds[0] = 0.9
    assert resolve_detection_params({"confidence": 0.5}, names, 3).thresholds[0] == np.float32(0.5)
    assert resolve_detection_params({}, ["a", "b", "x"], 3) is not first
    assert resolve_detection_params({}, names, 3, confidence=0.4).thresholds[0] == np.float32(0.4)
    per_class = resolve_detection_params({"confidence": {"b": 0.6}}, names, 3)  # a dict: resolved uncached
    assert per_class.single_threshold is None and per_class.thresholds.tolist() == pytest.approx([0.25, 0.6, 0.25])
    assert resolve_detection_params({"confidence": 1}, names, 3).thresholds[0] == 1.0
    with pytest.raises(InvalidParameterError):  # True == 1 (same hash) must not hit the cached entry for 1
        resolve_detection_params({"confidence": True}, names, 3)
    with pytest.raises(InvalidParameterError):
        resolve_detection_params({"max_detections": -1}, names, 3)


def test_pose_keypoints_of_an_ultralytics_export_are_clipped_to_the_image(tmp_path, outputs):
    """Issue 15: Ultralytics clips keypoints to the image (``scale_coords`` → ``clip_coords``); a keypoint predicted
    in the letterbox padding comes back on the image's edge for a bare Ultralytics export."""
    from im_models.yolo._pose import YOLOPose

    kpts = np.zeros((17, 3), np.float32)
    kpts[:, 0] = np.arange(17) * 10 + 100
    kpts[:, 1] = 200
    kpts[0, 1] = 100  # in the top padding: original y = 100 - 160 = -60
    kpts[1, 0] = 650  # beyond the right edge of the 640-wide image
    kpts[:, 2] = 0.9
    out = _anchor_free([(300, 300, 100, 200, 0, 0.9, kpts.ravel())], num_classes=1, extra=51)
    path = constant_onnx(tmp_path / "pose.onnx", {"output0": out}, input_shape=(1, 3, 640, 640))
    model = YOLOPose.from_package(
        _ctx(path, "keypoint-detection", ["person"], features={"ultralytics": {"kpt_shape": [17, 3]}})
    )
    d = _call(_on(model, outputs), _image(320, 640))
    assert d.keypoints[0, 0].tolist() == [100.0, 0.0]
    assert d.keypoints[0, 1].tolist() == [640.0, 40.0]
    assert d.keypoints[0, 2].tolist() == [120.0, 40.0]  # inside: unchanged


@pytest.mark.parametrize("arch", ["yolov5", "yolov7"])
def test_yolov5_and_yolov7_segmentation_rows_with_objectness_and_prototypes(tmp_path, outputs, arch):
    """YOLOv5-seg / YOLOv7-seg layout: (1, N, 5 + C + 32) rows ``cx cy w h obj p_1..p_C m_1..m_32`` and
    (1, 32, H/4, W/4) prototypes (YOLOv7's export adds per-level 5-D outputs, which are ignored). Hand-computed:
    score = obj × p; prototype 0 is +1 on the left half of the map and -1 on the right, so a box whose first
    coefficient is +10 gets the left half of its box as mask, one with -10 the right half."""
    from im_models.yolo._yolov5 import YOLOv5Segmentation

    n, c, p = 12, 2, 32
    rows = np.zeros((1, n, 5 + c + p), np.float32)
    rows[0, 0, :7] = (16, 16, 16, 16, 0.9, 0.9, 0.1)  # box (8, 8, 24, 24), score 0.81, class 0
    rows[0, 0, 7] = 10.0
    rows[0, 1, :7] = (40, 40, 16, 16, 0.8, 0.2, 0.75)  # box (32, 32, 48, 48), score 0.6, class 1
    rows[0, 1, 7] = -10.0
    rows[0, 2, :7] = (41, 40, 16, 16, 0.7, 0.2, 0.75)  # same class, overlapping, lower: suppressed
    rows[0, 3, :7] = (50, 10, 8, 8, 0.3, 0.5, 0.5)  # 0.15 < 0.25: dropped
    protos = np.zeros((1, p, 16, 16), np.float32)
    protos[0, 0, :, :8] = 1.0
    protos[0, 0, :, 8:] = -1.0
    graph = {"output0": rows, "protos": protos}
    if arch == "yolov7":
        graph = {"output0": rows, **{f"level{k}": np.zeros((1, 3, 2, 2, 5 + c + p), np.float32) for k in range(3)}}
        graph["protos"] = protos
    path = constant_onnx(tmp_path / f"{arch}-seg.onnx", graph, input_shape=(1, 3, 64, 64))
    model = YOLOv5Segmentation.from_package(_ctx(path, "instance-segmentation", ["a", "b"], (64, 64), arch=arch))
    d = _call(_on(model, outputs), _image(64, 64))
    np.testing.assert_allclose(d.confidence, [0.81, 0.6], rtol=1e-6)
    np.testing.assert_allclose(d.xyxy, [[8, 8, 24, 24], [32, 32, 48, 48]])
    assert d.class_id.tolist() == [0, 1]
    want = np.zeros((2, 64, 64), bool)
    want[0, 8:24, 8:24] = True  # box 0 lies wholly in the left half (x < 32)
    want[1, 32:48, 32:48] = True  # box 1 wholly in the right half (x ≥ 32), where prototype 0 is -1
    np.testing.assert_array_equal(d.dense_masks(), want)
    rows[0, 0, 7] = -10.0  # the first box's mask now lies in the half it does not cover: empty
    path = constant_onnx(tmp_path / "flip.onnx", {"output0": rows, "protos": protos}, input_shape=(1, 3, 64, 64))
    flipped = YOLOv5Segmentation.from_package(_ctx(path, "instance-segmentation", ["a", "b"], (64, 64), arch=arch))
    assert not flipped(_image(64, 64)).dense_masks()[0].any()
    with pytest.raises(CorruptedModelPackageError, match="3 class names"):
        YOLOv5Segmentation.from_package(_ctx(path, "instance-segmentation", ["a", "b", "c"], (64, 64), arch=arch))


def test_yolov5_and_yolov7_segmentation_are_registered():
    from im_core import registry

    for arch in ("yolov5", "yolov7"):
        assert registry().model_class(arch, "instance-segmentation", "onnx").__name__ == "YOLOv5Segmentation"
