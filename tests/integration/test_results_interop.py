"""Results of real models (the pinned nudenet YOLOv8 detector and BlazeFace through ``AutoModel``; YOLO segmentation
and pose heads on synthetic outputs through their real family path) through JSON, the real ``supervision`` package
and ``pyarrow``, and back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from im_core import AutoModel, Classification, Detections, RLEMask, results_to_columns
from im_core.testing import local_context
from testlib.onnx_graphs import constant_onnx

sv = pytest.importorskip("supervision")  # a dev dependency: installed wherever the test suite runs


@pytest.fixture(scope="module")
def nudenet_dets(asset) -> Detections:
    model = AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))
    dets = model(asset("images/astronaut.png"), confidence=0.05)
    assert len(dets) >= 2  # the face and a few low-confidence others
    return dets


@pytest.fixture(scope="module")
def blazeface_dets(asset, tmp_path_factory) -> Detections:
    from im_providers import add_to_registry

    root = tmp_path_factory.mktemp("registry")
    add_to_registry(
        root,
        model_id="faces/blazeface",
        architecture="mediapipe-face-detector",
        task="object-detection",
        files=[asset("face/blazeface_front_128.onnx")],
        package_id="onnx",
        class_names=["face"],
    )
    model = AutoModel.from_pretrained("faces/blazeface", weights_provider="local", provider_options={"root": root})
    dets = model(asset("images/astronaut.png"))
    assert len(dets) == 1 and dets.keypoints.shape == (1, 6, 2)
    return dets


def _seg_dets(tmp_path) -> Detections:
    """A YOLOv8-seg head with hand-written outputs: two instances, one mask, decoded by the real family."""
    from im_models.yolo._segmentation import YOLOSegmentation

    out = np.zeros((1, 4 + 2 + 32, 12), np.float32)
    for i, (cx, cy, w, h, c, s, proto) in enumerate([(100, 80, 80, 60, 0, 0.9, 0), (400, 300, 100, 100, 1, 0.8, 1)]):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + c, i] = s
        out[0, 6 + proto, i] = 1.0
    protos = -np.ones((1, 32, 160, 160), np.float32)
    protos[0, 0, 10:30, :] = 1.0
    protos[0, 1, 70:90, 95:110] = 1.0
    path = constant_onnx(tmp_path / "seg.onnx", {"output0": out, "output1": protos})
    ctx = local_context(
        path, architecture="yolov8", task="instance-segmentation", class_names=["a", "b"], input_size=(640, 640)
    )
    dets = YOLOSegmentation.from_package(ctx)(np.full((640, 640, 3), 128, np.uint8), mask_format="rle")
    assert len(dets) == 2 and isinstance(dets.masks, list) and all(m.area > 0 for m in dets.masks)
    return dets


def _pose_dets(tmp_path) -> Detections:
    """A YOLOv8-pose head whose Roboflow package names its keypoints and skeleton (keypoints_metadata.json)."""
    from im_models.yolo._pose import YOLOPose

    names = ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
    kpts = np.stack([np.arange(5) * 10.0 + 280, np.full(5, 300.0), np.linspace(0.2, 1, 5)], axis=1)
    out = np.zeros((1, 4 + 1 + 15, 12), np.float32)
    out[0, :5, 0] = (300, 300, 100, 100, 0.9)
    out[0, 5:, 0] = kpts.ravel()
    folder = tmp_path / "pose"
    folder.mkdir()
    constant_onnx(folder / "weights.onnx", {"output0": out}, input_shape=(1, 3, 640, 640))
    (folder / "class_names.txt").write_text("person\n")
    (folder / "inference_config.json").write_text(
        json.dumps({"network_input": {"training_input_size": {"height": 640, "width": 640}, "resize_mode": "stretch"}})
    )
    edges = [{"from": 0, "to": 1}, {"from": 0, "to": 2}, {"from": 1, "to": 3}, {"from": 2, "to": 4}]
    meta = [{"object_class_id": 0, "keypoints": dict(enumerate(names)), "edges": edges}]
    (folder / "keypoints_metadata.json").write_text(json.dumps(meta))
    model = YOLOPose.from_package(local_context(folder, architecture="yolov8", task="keypoint-detection"))
    dets = model(np.full((640, 640, 3), 128, np.uint8))
    assert dets.keypoint_names == tuple(names) and dets.skeleton == ((0, 1), (0, 2), (1, 3), (2, 4))
    return dets


def test_real_detections_round_trip_through_json_and_supervision(nudenet_dets, blazeface_dets):
    for dets in (nudenet_dets, blazeface_dets):
        assert Detections.from_dict(json.loads(dets.to_json())) == dets
        converted = dets.to_supervision()
        assert isinstance(converted, sv.Detections) and len(converted) == len(dets)
        assert converted.data["class_name"].tolist() == dets.names
        assert Detections.from_supervision(converted) == dets  # class names come back through metadata
        # supervision's own operations work on it: filtering and merging keep im's columns aligned
        first = converted[converted.confidence >= converted.confidence.max()]
        assert Detections.from_supervision(first) == dets[dets.confidence >= dets.confidence.max()]
        merged = sv.Detections.merge([converted[:1], converted[1:]])
        assert Detections.from_supervision(merged) == dets
    face = nudenet_dets[nudenet_dets["class_name"] == "FACE_FEMALE"]
    assert len(face) == 1 and face.confidence[0] > 0.5


def test_real_detections_annotate_with_supervision(nudenet_dets, blazeface_dets, asset):
    import cv2

    image = cv2.imread(str(asset("images/astronaut.png")))
    converted = nudenet_dets.to_supervision()
    boxes = sv.BoxAnnotator().annotate(image.copy(), converted)
    labelled = sv.LabelAnnotator().annotate(boxes.copy(), converted, labels=list(converted.data["class_name"]))
    assert (boxes != image).any() and (labelled != boxes).any()
    keypoints = blazeface_dets.to_supervision_keypoints()
    assert isinstance(keypoints, sv.KeyPoints)
    np.testing.assert_array_equal(keypoints.xy, blazeface_dets.keypoints)
    np.testing.assert_array_equal(keypoints.detection_confidence, blazeface_dets.confidence)
    drawn = sv.VertexAnnotator(radius=3).annotate(image.copy(), keypoints)
    assert (drawn != image).any()
    back = Detections.from_supervision(blazeface_dets.to_supervision(), key_points=keypoints)
    assert back == blazeface_dets


def test_segmentation_masks_round_trip(tmp_path):
    dets = _seg_dets(tmp_path)
    converted = dets.to_supervision()
    assert converted.mask.shape == (2, 640, 640) and converted.mask.dtype == bool
    np.testing.assert_array_equal(converted.area, [m.area for m in dets.masks])  # mask areas, as supervision sees them
    back = Detections.from_supervision(converted)
    assert isinstance(back.masks, np.ndarray) and back == dets  # dense there, RLE here: the same pixels
    doc = json.loads(dets.to_json())
    assert doc["masks"][0] == dets.masks[0].to_dict() and Detections.from_dict(doc) == dets
    # the JSON counts are COCO's: supervision decodes them to the same mask
    from supervision.detection.utils.converters import rle_to_mask

    decoded = rle_to_mask(np.asarray(doc["masks"][1]["counts"]), tuple(doc["masks"][1]["size"][::-1]))
    np.testing.assert_array_equal(decoded, dets.masks[1].decode())


def test_pose_keypoints_with_names_and_skeleton_to_supervision(tmp_path):
    dets = _pose_dets(tmp_path)
    keypoints = dets.to_supervision_keypoints()
    np.testing.assert_allclose(keypoints.keypoint_confidence, dets.keypoint_confidence)
    assert keypoints.data["class_name"].tolist() == ["person"]
    canvas = np.zeros((640, 640, 3), np.uint8)
    edges = sv.EdgeAnnotator(edges=dets.supervision_edges(), thickness=2).annotate(canvas.copy(), keypoints)
    labels = sv.VertexLabelAnnotator().annotate(canvas.copy(), keypoints, labels=list(dets.keypoint_names))
    assert edges.any() and labels.any()
    converted = dets.to_supervision()
    assert converted.metadata["keypoint_names"] == list(dets.keypoint_names)
    assert Detections.from_supervision(converted) == dets  # keypoints travel in data, names in metadata
    assert Detections.from_dict(json.loads(dets.to_json())) == dets
    with pytest.raises(Exception, match="no keypoints"):
        _seg_dets(tmp_path).to_supervision_keypoints()


def test_classification_to_supervision_and_back():
    cls = Classification(np.float32([0.1, 0.7, 0.2]), ("cat", "dog", "fox"))
    converted = cls.to_supervision()
    assert isinstance(converted, sv.Classifications)
    ids, scores = converted.get_top_k(2)
    assert ids.tolist() == [1, 2] and scores.tolist() == pytest.approx([0.7, 0.2])
    assert Classification.from_supervision(converted, cls.class_names) == cls


def test_real_results_as_an_arrow_table(nudenet_dets, blazeface_dets, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    seg = _seg_dets(tmp_path)
    cols = results_to_columns(
        [nudenet_dets, blazeface_dets, seg, FileNotFoundError("missing.jpg")], paths=["a.png", "b.png", "c.png", None]
    )
    pq.write_table(pa.table(cols), tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 4 and table.column("n").to_pylist() == [len(nudenet_dets), 1, 2, None]
    rows = table.to_pylist()
    assert rows[0]["class_name"] == nudenet_dets.names and rows[3]["error"].startswith("FileNotFoundError")
    assert rows[1]["keypoints"] == blazeface_dets.keypoints.tolist()
    masks = [RLEMask.from_dict(m) for m in rows[2]["masks"]]
    assert masks == seg.masks and rows[0]["masks"] is None
    np.testing.assert_array_equal(np.float32(rows[0]["xyxy"]), nudenet_dets.xyxy)
