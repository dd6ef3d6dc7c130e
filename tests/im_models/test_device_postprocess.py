"""The shared candidate selection (``im_models.common._candidates``) on numpy arrays and on torch tensors.

Raw outputs of realistic size (e.g. (84, 8 400)) with many tied scores are decoded from numpy and from torch
tensors, on the CPU and on CUDA (``gpu`` marker): the results must be identical, bit for bit. The torch path must
reduce on the tensor's device and copy only the survivors to the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from im_models.common import resolve_detection_params
from im_models.common._arrays import NUMPY_OPS, TorchOps, array_ops, to_numpy
from im_models.common._candidates import filter_candidates, top_k_positions, top_pairs

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def _tensor(a: np.ndarray, device: str):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(a)).to(device)
    assert t.device.type == device
    return t


def _same(a, b) -> None:
    """Two Candidates (or tuples of arrays) are identical, dtypes included."""
    for x, y in zip(a.__dict__.values(), b.__dict__.values()) if hasattr(a, "__dict__") else zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape, (x.dtype, y.dtype, x.shape, y.shape)
        np.testing.assert_array_equal(x, y)


def _anchor_free_pred(num_classes: int = 80, n: int = 8400, extra: int = 0, seed: int = 0) -> np.ndarray:
    """(4 + C + E, n): random boxes; scores on a coarse grid (many exact ties, across and within classes)."""
    rng = np.random.default_rng(seed)
    pred = np.zeros((4 + num_classes + extra, n), np.float32)
    pred[0:2] = rng.uniform(0, 640, (2, n))
    pred[2:4] = rng.uniform(10, 120, (2, n))
    pred[4 : 4 + num_classes] = rng.integers(0, 20, (num_classes, n)) / 20  # ties everywhere, best-class ties too
    pred[4 + num_classes :] = rng.normal(0, 1, (extra, n))
    return pred


def _params(names, **kw):
    return resolve_detection_params(kw, names, len(names))


NAMES = [str(i) for i in range(80)]
PARAM_SETS = [
    {},
    {"confidence": 0.5, "pre_nms_top_k": 500},  # the cut falls inside a run of tied scores
    {"confidence": {"3": 0.1, 7: 0.9}, "class_filter": ["3", 7, 11], "class_agnostic": True},
    {"confidence": 0.05, "pre_nms_top_k": 1000, "max_detections": 1000, "iou_threshold": 0.3},
]


def _brute_top_k(scores: np.ndarray, k: int) -> list[int]:
    """The k best positions by (score descending, position ascending), ascending."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return sorted(order[:k])


@pytest.mark.parametrize("device", DEVICES)
def test_top_k_positions_keeps_lower_positions_on_ties(device):
    rng = np.random.default_rng(1)
    scores = (rng.integers(0, 7, 500) / 7).astype(np.float32)
    for k in (0, 1, 5, 71, 72, 73, 250, 499, 500, 600, None):
        want = list(range(500)) if k is None or k >= 500 else _brute_top_k(scores, k)
        assert top_k_positions(scores, k).tolist() == want, k
        assert to_numpy(top_k_positions(_tensor(scores, device), k), np.int64).tolist() == want, k


@pytest.mark.parametrize("device", DEVICES)
def test_top_pairs_best_first_ties_by_flat_position(device):
    rng = np.random.default_rng(2)
    scores = (rng.integers(0, 9, (300, 91)) / 9).astype(np.float32)
    for k in (1, 100, 300, 300 * 91):
        flat = scores.ravel()
        want = sorted(range(flat.size), key=lambda i: (-flat[i], i))[:k]
        rows, cols = top_pairs(scores, k)
        assert (rows * 91 + cols).tolist() == want
        t_rows, t_cols = top_pairs(_tensor(scores, device), k)
        assert (to_numpy(t_rows, np.int64) * 91 + to_numpy(t_cols, np.int64)).tolist() == want


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", PARAM_SETS)
def test_filter_candidates_numpy_and_torch_identical(device, kw):
    rng = np.random.default_rng(3)
    scores = (rng.integers(0, 20, 8400) / 20).astype(np.float32)
    cls = rng.integers(0, 80, 8400)
    p = _params(NAMES, **kw)
    want = filter_candidates(scores, cls, p)
    got = filter_candidates(_tensor(scores, device), _tensor(cls, device), p)
    np.testing.assert_array_equal(to_numpy(got, np.int64), want)
    ok = scores >= p.thresholds[cls]
    if p.class_mask is not None:
        ok &= p.class_mask[cls]
    assert set(want.tolist()) <= set(np.flatnonzero(ok).tolist())
    assert len(want) == min(int(ok.sum()), p.pre_nms_top_k or 10**9)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", PARAM_SETS)
def test_decode_anchor_free_84x8400_identical_from_torch(device, kw):
    from im_models.yolo._decode import decode_anchor_free

    pred = _anchor_free_pred()
    p = _params(NAMES, **kw)
    want = decode_anchor_free(pred, 80, p)
    assert len(want.scores) > 0
    _same(decode_anchor_free(_tensor(pred, device), 80, p), want)


@pytest.mark.parametrize("device", DEVICES)
def test_decode_segmentation_and_pose_extras_identical_from_torch(device):
    from im_models.yolo._decode import decode_anchor_free

    for c, extra in ((80, 32), (1, 51)):
        pred = _anchor_free_pred(num_classes=c, extra=extra, seed=c)
        p = _params(NAMES[:c], confidence=0.3)
        want = decode_anchor_free(pred, c, p)
        assert want.extras.shape == (len(want.scores), extra) and len(want.scores) > 0
        _same(decode_anchor_free(_tensor(pred, device), c, p), want)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_decode_yolov5_identical_from_torch(device, dtype):
    from im_models.yolo._decode import decode_yolov5

    rng = np.random.default_rng(4)
    pred = np.zeros((25200, 5 + 80), np.float32)
    pred[:, 0:2] = rng.uniform(0, 640, (25200, 2))
    pred[:, 2:4] = rng.uniform(10, 120, (25200, 2))
    pred[:, 4] = rng.integers(0, 10, 25200) / 10
    pred[:, 5:] = rng.integers(0, 10, (25200, 80)) / 10
    pred = pred.astype(dtype)
    for kw in PARAM_SETS:
        p = _params(NAMES, **kw)
        want = decode_yolov5(pred, 80, p)
        assert len(want.scores) > 0
        _same(decode_yolov5(_tensor(pred, device), 80, p), want)


@pytest.mark.parametrize("device", DEVICES)
def test_decode_fused_end_to_end_identical_from_torch(device):
    from im_models.yolo._decode import decode_fused

    rng = np.random.default_rng(5)
    rows = np.zeros((300, 6 + 32), np.float32)  # the last 100 rows are padding (score 0, class -1)
    rows[:200, :2] = rng.uniform(0, 500, (200, 2))
    rows[:200, 2:4] = rows[:200, :2] + rng.uniform(5, 100, (200, 2))
    rows[:200, 4] = rng.integers(0, 10, 200) / 10
    rows[:200, 5] = rng.integers(0, 80, 200)
    rows[200:, 5] = -1
    rows[:, 6:] = rng.normal(0, 1, (300, 32))
    for kw in PARAM_SETS:
        p = _params(NAMES, **kw)
        want = decode_fused(rows, p, 80)
        assert len(want.scores) > 0 and (want.class_ids >= 0).all()
        _same(decode_fused(_tensor(rows, device), p, 80), want)


@pytest.mark.parametrize("device", DEVICES)
def test_decode_detr_identical_from_torch(device):
    from im_models.detr._detection import decode_detr

    rng = np.random.default_rng(6)
    boxes = rng.uniform(0.1, 0.9, (300, 4)).astype(np.float32)
    logits = (rng.integers(-40, 10, (300, 91)) / 4).astype(np.float32)  # 50 levels: ties
    t = _transform(480, 640, 560)
    for kw in ({}, {"confidence": 0.2}, {"class_filter": ["5", "9"], "max_detections": 50}):
        p = resolve_detection_params(kw, NAMES[:90], 90, confidence=0.5)
        want = decode_detr(boxes, logits, 90, p, t)  # the 91st logit column is ignored
        assert len(want[1]) > 0
        _same(decode_detr(_tensor(boxes, device), _tensor(logits, device), 90, p, t), want)


def test_only_survivors_are_copied_to_the_cpu(monkeypatch):
    """The torch path copies the survivors' rows only, never the (84, 8 400) output or a full score row."""
    from im_models.yolo._decode import decode_anchor_free, decode_fused, decode_yolov5

    copied: list[tuple[int, ...]] = []
    real = TorchOps.numpy

    def spy(self, x, dtype=np.float32):
        copied.append(tuple(x.shape))
        return real(self, x, dtype)

    monkeypatch.setattr(TorchOps, "numpy", spy)
    pred = _anchor_free_pred(extra=32)
    p = _params(NAMES, confidence=0.9)
    want = decode_anchor_free(pred, 80, p)
    got = decode_anchor_free(_tensor(pred, "cpu"), 80, p)
    _same(got, want)
    survivors = int(filter_candidates(*_best(pred), p).size)
    assert 0 < survivors < 8400 and copied
    assert all(np.prod(s) <= survivors * 32 for s in copied), copied
    assert max(s[0] for s in copied) == survivors
    copied.clear()
    decode_yolov5(_tensor(np.ascontiguousarray(pred[:85].T), "cpu"), 80, p)
    decode_fused(_tensor(np.ascontiguousarray(pred[:38].T), "cpu"), p, 80)
    assert copied and all(8400 not in s for s in copied), copied


def _best(pred: np.ndarray):
    return pred[4:84].max(axis=0), pred[4:84].argmax(axis=0)


def test_array_ops_namespace_and_bfloat16_to_numpy():
    assert array_ops(np.zeros(3)) is NUMPY_OPS
    import torch

    assert isinstance(array_ops(np.zeros(3), torch.zeros(3)), TorchOps)
    bf16 = torch.tensor([1.5, 2.0], dtype=torch.bfloat16)
    np.testing.assert_array_equal(to_numpy(bf16), [1.5, 2.0])


def _transform(h: int, w: int, size: int):
    from im_models.common import ImageTransform

    scale = size / max(h, w)
    return ImageTransform(
        scale_x=scale,
        scale_y=scale,
        offset_x=(size - w * scale) / 2,
        offset_y=(size - h * scale) / 2,
        original_height=h,
        original_width=w,
        input_height=size,
        input_width=size,
        region=(0, 0, w, h),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mask_format", ["dense", "rle"])
def test_segmentation_post_process_from_device_outputs(device, mask_format):
    """Through the family's ``post_process``: a (2, 4 + 2 + 32, 8 400) output and (2, 32, 160, 160) prototypes as
    tensors give the same boxes and masks as numpy (only the image's prototypes and survivors are copied)."""
    from im_core._tasks import LoadedModelInfo
    from im_models.common import DetectorPackage, Prepared, ultralytics_config
    from im_models.yolo._segmentation import YOLOSegmentation

    pred = np.stack([_anchor_free_pred(num_classes=2, extra=32, seed=s) for s in (8, 9)])
    protos = np.random.default_rng(7).normal(0, 1, (2, 32, 160, 160)).astype(np.float32)
    package = DetectorPackage(None, ultralytics_config((640, 640)), False, ["a", "b"], {}, None, "ultralytics")
    info = LoadedModelInfo(model_id="x", architecture="yolov8", task="instance-segmentation", class_names=("a", "b"))
    model = YOLOSegmentation(package, info)
    prepared = Prepared(np.zeros((2, 3, 640, 640), np.float32), [_transform(480, 640, 640), _transform(300, 200, 640)])
    kw = {"confidence": 0.9, "mask_format": mask_format}
    want = model.post_process([pred, protos], prepared, **kw)
    got = model.post_process([_tensor(pred, device), _tensor(protos, device)], prepared, **kw)
    for g, w in zip(got, want):
        assert len(w) > 0
        np.testing.assert_array_equal(g.xyxy, w.xyxy)
        np.testing.assert_array_equal(g.confidence, w.confidence)
        np.testing.assert_array_equal(g.class_id, w.class_id)
        if mask_format == "rle":
            assert [m.counts.tolist() for m in g.masks] == [m.counts.tolist() for m in w.masks]
        else:
            np.testing.assert_array_equal(g.masks, w.masks)
            assert w.masks.any()
