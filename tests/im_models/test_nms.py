"""NMS: the vectorised block implementation keeps exactly the boxes of the one-box-at-a-time greedy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from im_models.common import box_iou, nms


def reference_nms(boxes, scores, thr, class_ids=None, max_det=None):
    """Textbook greedy NMS: visit by descending score (ties: lower index first), keep unless a kept box overlaps."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    kept: list[int] = []
    for i in order:
        if max_det is not None and len(kept) >= max_det:
            break
        ok = True
        for j in kept:
            if class_ids is not None and class_ids[i] != class_ids[j]:
                continue
            a, b = np.asarray(boxes[i], np.float64), np.asarray(boxes[j], np.float64)
            iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
            ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
            inter = iw * ih
            union = max((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter, 1e-12)
            if inter / union > thr:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


@st.composite
def problems(draw):
    n = draw(st.integers(0, 120))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    spread = draw(st.sampled_from([20.0, 100.0, 400.0]))  # small spread = heavy overlap, long suppression chains
    xy = rng.uniform(0, spread, (n, 2))
    wh = rng.uniform(1, 80, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    if draw(st.booleans()):
        scores = rng.uniform(0, 1, n).astype(np.float32)
    else:  # many exact ties
        scores = rng.integers(0, 4, n).astype(np.float32) / 4
    classes = rng.integers(0, draw(st.integers(1, 5)), n)
    thr = draw(st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.95]))
    max_det = draw(st.sampled_from([None, 1, 5, 50]))
    block = draw(st.sampled_from([1, 3, 16, 256]))
    return boxes, scores, classes, thr, max_det, block


@settings(max_examples=150, deadline=None)
@given(problems())
def test_nms_matches_reference_greedy_class_agnostic(problem):
    boxes, scores, _, thr, max_det, block = problem
    got = nms(boxes, scores, thr, max_detections=max_det, block=block)
    assert got.tolist() == reference_nms(boxes, scores, thr, max_det=max_det)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_nms_matches_reference_greedy_class_aware(problem):
    boxes, scores, classes, thr, max_det, block = problem
    got = nms(boxes, scores, thr, class_ids=classes, max_detections=max_det, block=block)
    assert got.tolist() == reference_nms(boxes, scores, thr, class_ids=classes, max_det=max_det)


def test_nms_long_suppression_chain_is_exact():
    """Boxes shifted one step each: each overlaps its neighbour, so greedy keeps every other box."""
    n = 300
    x = np.arange(n, dtype=np.float32) * 2.0
    boxes = np.stack([x, np.zeros(n), x + 10, np.full(n, 10.0)], axis=1).astype(np.float32)
    scores = np.linspace(1, 0.5, n).astype(np.float32)
    got = nms(boxes, scores, 0.7)
    assert got.tolist() == reference_nms(boxes, scores, 0.7)


def test_nms_8400_candidates_80_and_1_class_match_reference():
    rng = np.random.default_rng(7)
    n = 8400
    xy = rng.uniform(0, 640, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(8, 160, (n, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0.5, 0.99, n).astype(np.float32)
    classes = rng.integers(0, 80, n)
    for cls in (classes, None):
        got = nms(boxes, scores, 0.7, class_ids=cls, max_detections=300)
        assert len(got) == 300
        assert got.tolist() == reference_nms(boxes, scores, 0.7, class_ids=cls, max_det=300)


def test_nms_empty_and_degenerate_boxes():
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 10]], np.float32)  # zero-area boxes never suppress
    assert sorted(nms(boxes, np.array([0.9, 0.8, 0.7]), 0.1).tolist()) == [0, 1, 2]


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0]])


@pytest.mark.parametrize("thr", [0.0, 1.0])
def test_nms_threshold_extremes(thr):
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    expected = [0, 2] if thr == 0.0 else [0, 1, 2]
    assert nms(boxes, scores, thr).tolist() == expected
