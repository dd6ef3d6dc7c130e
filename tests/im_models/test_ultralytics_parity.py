"""im against Ultralytics' own ``predict`` on the same exported files (issue 15, item 6).

The files under ``fixtures/ultralytics`` are tiny random-init models built from the yaml inside the ``ultralytics``
package and exported by it (ONNX with and without NMS in the graph, YOLO26 with its end-to-end and its one-to-many
head, TorchScript); ``predictions.npz`` holds what ``YOLO(file).predict(image, conf=0.25, iou=0.7, max_det=100,
imgsz=128, retina_masks=True)`` returned on two real photos. ``scripts/ultralytics_reference.py`` regenerates them
(in its own environment: ``ultralytics`` is not a dependency of im; versions in ``fixtures.json``).

Every file is loaded bare (no arguments) and called with the same thresholds. Agreement is measured per
Ultralytics detection against im's best-matching one of the same class: box IoU, oriented-box corner distance and
angle difference, mask IoU, keypoint distance, score difference.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "ultralytics"
META = json.loads((FIXTURES / "fixtures.json").read_text())
CALL = {"confidence": 0.25, "iou_threshold": 0.7, "max_detections": 100}


@cache
def _predictions() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "predictions.npz") as z:
        return {k: z[k] for k in z.files}


@cache
def _image(asset_path: str) -> np.ndarray:
    import cv2

    return cv2.imread(asset_path)  # BGR: a numpy image is BGR to im and to Ultralytics alike


@cache
def _model(name: str) -> Any:
    from im_core import AutoModel

    return AutoModel.from_pretrained(FIXTURES / name)


def _call(file: str) -> dict[str, Any]:
    """The thresholds Ultralytics was given; without ``iou_threshold`` where the graph ran NMS (``nms=True``) or has
    an end-to-end head (``nms=False``): there im warns that it has no effect."""
    fused = META["files"][file]["export"].get("nms") is not None
    return {k: v for k, v in CALL.items() if not (fused and k == "iou_threshold")}


def _ref(file: str, image: str) -> dict[str, np.ndarray]:
    prefix = f"{file}|{image}|"
    return {k[len(prefix) :]: v for k, v in _predictions().items() if k.startswith(prefix)}


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from im_models.common import box_iou

    return box_iou(a, b)


def _match(ref_boxes: np.ndarray, ref_cls: np.ndarray, boxes: np.ndarray, cls: np.ndarray) -> tuple[Any, Any]:
    """For each reference detection, im's best-IoU detection of the same class: (index, IoU). Boxes clipped to
    nothing (zero area at the image border) count as IoU 1 where their coordinates agree within 0.01 px."""
    same = np.abs(ref_boxes[:, None, :] - boxes[None, :, :]).max(axis=-1) < 0.01
    iou = np.where(same, 1.0, _box_iou(ref_boxes, boxes)) * (ref_cls[:, None] == cls[None, :])
    if iou.shape[1] == 0:
        return np.zeros(len(ref_boxes), np.int64), np.zeros(len(ref_boxes))
    j = iou.argmax(axis=1)
    return j, iou[np.arange(len(j)), j]


def _files(task: str) -> list[str]:
    return sorted(f for f, m in META["files"].items() if m["task"] == task)


def _agreement(matched_iou: np.ndarray, n_im: int, n_ref: int) -> float:
    return float((matched_iou > 0.99).sum()) / max(n_im, n_ref, 1)


@pytest.mark.parametrize("file", _files("obb"))
@pytest.mark.parametrize("image", META["images"])
def test_oriented_boxes_match_ultralytics(file, image, asset):
    """Rotated boxes: the same detections (≥ 97 % matched one to one, corners within 0.05 px of the reference's
    for those, angle within 1e-4 rad, scores within 1e-4), whether NMS ran in im (probabilistic-IoU Fast-NMS),
    inside the graph (``nms=True``) or not at all (YOLO26 end-to-end)."""
    ref = _ref(file, image)
    det = _model(file)(_image(str(asset(f"images/{image}"))), **_call(file))
    assert det.data["xyxyxyxy"].shape == (len(det), 4, 2) and det.data["xywhr"].shape == (len(det), 5)
    # match on the axis-aligned bounds of the corners (unclipped on both sides)
    ref_aabb = np.concatenate([ref["corners"].min(1), ref["corners"].max(1)], 1)
    aabb = np.concatenate([det["xyxyxyxy"].min(1), det["xyxyxyxy"].max(1)], 1)
    j, iou = _match(ref_aabb, ref["cls"], aabb, det.class_id)
    ok = iou > 0.99
    assert _agreement(iou, len(det), len(ref["conf"])) >= 0.97, (len(det), len(ref["conf"]), np.sort(iou)[:5])
    corner_err = np.abs(det["xyxyxyxy"][j[ok]] - ref["corners"][ok]).max()
    angle_err = np.abs(det["xywhr"][j[ok], 4] - ref["xywhr"][ok, 4]).max()
    assert corner_err < 0.05 and angle_err < 1e-4, (corner_err, angle_err)
    assert np.abs(det.confidence[j[ok]] - ref["conf"][ok]).max() < 1e-4
    # xyxy: the corners' bounds, clipped to the image
    h, w = _image(str(asset(f"images/{image}"))).shape[:2]
    np.testing.assert_allclose(det.xyxy, np.clip(aabb, 0, [w, h, w, h]), atol=1e-3)


def test_oriented_boxes_to_supervision(asset):
    """``to_supervision()`` carries the corners as supervision's oriented-box coordinates (what
    ``sv.OrientedBoxAnnotator`` draws and ``sv.Detections.from_ultralytics`` gives for an OBB result)."""
    sv = pytest.importorskip("supervision")
    from supervision.config import ORIENTED_BOX_COORDINATES

    from im_core import Detections

    det = _model("yolov8-obb.onnx")(_image(str(asset("images/chelsea.png"))), **CALL)
    svd = det.to_supervision()
    assert isinstance(svd, sv.Detections) and len(svd) == len(det) > 0
    np.testing.assert_array_equal(svd.data[ORIENTED_BOX_COORDINATES], det["xyxyxyxy"])
    np.testing.assert_array_equal(svd.xyxy, det.xyxy)
    back = Detections.from_supervision(svd)
    np.testing.assert_array_equal(back["xyxyxyxy"], det["xyxyxyxy"])
    frame = np.zeros((300, 451, 3), np.uint8)
    assert sv.OrientedBoxAnnotator().annotate(frame, svd).any()
    assert len(det[:3]) == 3 and det[:3]["xywhr"].shape == (3, 5)


@pytest.mark.parametrize("file", _files("detect") + _files("segment") + _files("pose"))
@pytest.mark.parametrize("image", META["images"])
def test_boxes_masks_keypoints_match_ultralytics(file, image, asset):
    """Axis-aligned boxes (≥ 97 % matched with IoU > 0.99 — 95 % with masks —, scores within 1e-4), and for the
    matched detections masks (pooled mask IoU ≥ 0.95, median per mask ≥ 0.97) and keypoints (within 0.05 px,
    confidences within 1e-4)."""
    ref = _ref(file, image)
    bgr = _image(str(asset(f"images/{image}")))
    det = _model(file)(bgr, **_call(file))
    if "masks" in ref:  # Ultralytics drops detections whose mask is empty; im keeps them (the box is a detection)
        det = det[det.dense_masks().any(axis=(1, 2))]
    j, iou = _match(ref["boxes"], ref["cls"], det.xyxy, det.class_id)
    ok = iou > 0.99
    # with masks, a detection whose mask is a pixel or two on one side and none on the other counts as missing
    need = 0.95 if "masks" in ref else 0.97
    assert _agreement(iou, len(det), len(ref["conf"])) >= need, (len(det), len(ref["conf"]), np.sort(iou)[:5])
    assert np.abs(det.confidence[j[ok]] - ref["conf"][ok]).max() < 1e-4
    if "masks" in ref:
        w = bgr.shape[1]
        ref_masks = np.unpackbits(ref["masks"], axis=-1, count=w).astype(bool)[ok]
        ours = det.dense_masks()[j[ok]]
        inter = (ref_masks & ours).sum((1, 2))
        union = (ref_masks | ours).sum((1, 2))
        mask_iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        pooled = inter.sum() / max(union.sum(), 1)  # every pixel counts once: tiny masks do not dominate
        assert pooled >= 0.95 and np.median(mask_iou) >= 0.97, (pooled, np.median(mask_iou), np.sort(mask_iou)[:5])
    if "keypoints" in ref:
        kp = ref["keypoints"][ok]
        dist = np.linalg.norm(det.keypoints[j[ok]] - kp[..., :2], axis=-1)
        assert dist.max() < 0.05, dist.max()
        assert np.abs(det.keypoint_confidence[j[ok]] - kp[..., 2]).max() < 1e-4


@pytest.mark.parametrize(
    ("file", "task", "family"),
    [
        ("yolo26.onnx", "object-detection", "YOLOEndToEndDetection"),  # one-to-many head: columns, NMS in im
        ("yolo26.e2e.onnx", "object-detection", "YOLOEndToEndDetection"),
        ("yolo26-seg.e2e.onnx", "instance-segmentation", "YOLOSegmentation"),
        ("yolo26-pose.e2e.onnx", "keypoint-detection", "YOLOPose"),
        ("yolo26-obb.onnx", "oriented-object-detection", "YOLOOrientedDetection"),
    ],
)
def test_loaded_as_yolo26_the_output_layout_decides_the_decoder(file, task, family, asset):
    """Loaded under the architecture name ``yolo26`` (as a Roboflow package names it), each export decodes as its
    output is laid out: a YOLO26 export with the one-to-many head (Ultralytics' default export, ``nms=None``) gives
    the same boxes as Ultralytics' NMS, not end-to-end rows read from columns (issue 15)."""
    from im_core import AutoModel

    model = AutoModel.from_pretrained(FIXTURES / file, architecture="yolo26", task=task)
    assert type(model).__name__ == family
    bgr = _image(str(asset("images/astronaut.png")))
    det = model(bgr, **_call(file))
    ref = _ref(file, "astronaut.png")
    if "corners" in ref:
        ref_boxes = np.concatenate([ref["corners"].min(1), ref["corners"].max(1)], 1)
        boxes = np.concatenate([det["xyxyxyxy"].min(1), det["xyxyxyxy"].max(1)], 1)
    else:
        ref_boxes, boxes = ref["boxes"], det.xyxy
    if "masks" in ref:
        det = det[det.dense_masks().any(axis=(1, 2))]
        boxes = det.xyxy
    _, iou = _match(ref_boxes, ref["cls"], boxes, det.class_id)
    assert _agreement(iou, len(det), len(ref["conf"])) >= 0.95
