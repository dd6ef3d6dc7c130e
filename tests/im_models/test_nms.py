"""NMS: the vectorised block implementation keeps exactly the boxes of the one-box-at-a-time greedy reference."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from im_core.errors import InvalidParameterError
from im_models.common import _nms, box_iou, nms


@contextlib.contextmanager
def _dense_max(value: int):
    """nms() with its dense-matrix path limited to ``value`` boxes (0: always the spatial index)."""
    saved, _nms._DENSE_MAX = _nms._DENSE_MAX, value
    try:
        yield
    finally:
        _nms._DENSE_MAX = saved


def reference_nms(boxes, scores, thr, class_ids=None, max_det=None):
    """Textbook greedy NMS: visit by descending score (ties: lower index first), keep unless a kept box overlaps."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    kept: list[int] = []
    with np.errstate(invalid="ignore", over="ignore"):  # infinite boxes: inf - inf
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


def reference_nms_fast(boxes, scores, thr, class_ids=None, max_det=None):
    """The same textbook loop (one box at a time), with each box's IoU against the kept boxes done by numpy.

    Same float64 arithmetic as :func:`reference_nms`; fast enough for 8 400 candidates.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    n = len(b)
    order = sorted(range(n), key=lambda i: (-float(scores[i]), i))
    with np.errstate(invalid="ignore", over="ignore"):
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    kept_boxes, kept_area, kept_cls = np.zeros((n, 4)), np.zeros(n), np.zeros(n, np.int64)
    kept: list[int] = []
    for i in order:
        if max_det is not None and len(kept) >= max_det:
            break
        k = len(kept)
        with np.errstate(invalid="ignore", over="ignore"):
            iw = np.maximum(np.minimum(b[i, 2], kept_boxes[:k, 2]) - np.maximum(b[i, 0], kept_boxes[:k, 0]), 0.0)
            ih = np.maximum(np.minimum(b[i, 3], kept_boxes[:k, 3]) - np.maximum(b[i, 1], kept_boxes[:k, 1]), 0.0)
            inter = iw * ih
            over = inter / np.maximum(area[i] + kept_area[:k] - inter, 1e-12) > thr
        if class_ids is not None:
            over &= kept_cls[:k] == class_ids[i]
        if not over.any():
            kept_boxes[k], kept_area[k] = b[i], area[i]
            kept_cls[k] = 0 if class_ids is None else class_ids[i]
            kept.append(i)
    return kept


def chain(n, step=2.0, x0=0.0, dtype=np.float32):
    """Boxes 10 wide shifted by ``step``: each overlaps the next (IoU 8/12 for step 2), not the one after."""
    x = x0 + np.arange(n, dtype=np.float64) * step
    return np.stack([x, np.zeros(n), x + 10, np.full(n, 10.0)], axis=1).astype(dtype)


def clusters(n, spread, seed=0):
    """50 objects with ``n / 50`` jittered boxes each (640×640 image), random scores."""
    rng = np.random.default_rng(seed)
    centres, sizes = rng.uniform(60, 580, (50, 2)), rng.uniform(30, 120, (50, 2))
    idx = np.repeat(np.arange(50), n // 50)
    cxcy = centres[idx] + rng.normal(0, spread, (len(idx), 2))
    wh = sizes[idx] * rng.uniform(0.8, 1.2, (len(idx), 2))
    boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1).astype(np.float32)
    return boxes, rng.uniform(0.5, 0.99, len(idx)).astype(np.float32)


def structured_boxes(kind, n, rng):
    """Random inputs of one of the hard shapes for NMS."""
    if kind == "chain":
        return chain(n, step=float(rng.uniform(0.5, 6)))
    if kind == "duplicates":
        base = rng.uniform(0, 60, (max(1, n // 10), 4))
        base[:, 2:] = base[:, :2] + rng.uniform(1, 40, (len(base), 2))
        return base[rng.integers(0, len(base), n)].astype(np.float32)
    if kind == "nested":  # same centre, growing sizes
        size = rng.uniform(1, 80, n)
        return np.stack([-size, -size, size, size], axis=1).astype(np.float32) / 2
    if kind == "degenerate":  # zero-area, inverted and infinite boxes mixed with normal ones
        xy = rng.uniform(0, 40, (n, 2))
        boxes = np.concatenate([xy, xy + rng.choice([-3.0, 0.0, 2.0, 15.0, 30.0], (n, 2))], axis=1)
        if n:
            boxes[rng.integers(0, n, max(1, n // 10)), rng.integers(0, 4)] = np.inf
        return boxes.astype(np.float32)
    if kind == "grid":  # integer boxes: many exactly equal IoUs
        xy = rng.integers(0, 12, (n, 2)).astype(np.float64)
        return np.concatenate([xy, xy + rng.integers(1, 6, (n, 2))], axis=1)
    spread = {"random": 400.0, "dense": 20.0}[kind]  # small spread = heavy overlap, long suppression chains
    xy = rng.uniform(0, spread, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, 80, (n, 2))], axis=1).astype(np.float32)


@st.composite
def problems(draw):
    n = draw(st.integers(0, 120))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        spread = draw(st.sampled_from([20.0, 100.0, 400.0]))  # small spread = heavy overlap, long chains
        xy = rng.uniform(0, spread, (n, 2))
        wh = rng.uniform(1, 80, (n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    else:
        kinds = ["chain", "duplicates", "nested", "degenerate", "grid", "dense"]
        boxes = structured_boxes(draw(st.sampled_from(kinds)), n, rng)
    if draw(st.booleans()):
        scores = rng.uniform(0, 1, n).astype(np.float32)
    else:  # many exact ties
        scores = rng.integers(0, 4, n).astype(np.float32) / 4
    classes = rng.integers(0, draw(st.integers(1, 5)), n)
    thr = draw(st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.95, 1.0]))
    max_det = draw(st.sampled_from([None, 1, 5, 50]))
    block = draw(st.sampled_from([1, 3, 16, 64, 256]))
    return boxes, scores, classes, thr, max_det, block


@settings(max_examples=150, deadline=None)
@given(problems())
def test_nms_matches_reference_greedy_class_agnostic(problem):
    boxes, scores, _, thr, max_det, block = problem
    want = reference_nms(boxes, scores, thr, max_det=max_det)
    for dense_max in (_nms._DENSE_MAX, 0):  # the dense path for few boxes, and the spatial path forced
        with _dense_max(dense_max):
            got = nms(boxes, scores, thr, max_detections=max_det, block=block)
        assert got.tolist() == want, dense_max


@settings(max_examples=150, deadline=None)
@given(problems())
def test_nms_matches_reference_greedy_class_aware(problem):
    boxes, scores, classes, thr, max_det, block = problem
    want = reference_nms(boxes, scores, thr, class_ids=classes, max_det=max_det)
    for dense_max in (_nms._DENSE_MAX, 0):
        with _dense_max(dense_max):
            got = nms(boxes, scores, thr, class_ids=classes, max_detections=max_det, block=block)
        assert got.tolist() == want, dense_max


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


@settings(max_examples=60, deadline=None)
@given(problems())
def test_fast_reference_agrees_with_the_textbook_reference(problem):
    boxes, scores, classes, thr, max_det, _ = problem
    for cls in (None, classes):
        assert reference_nms_fast(boxes, scores, thr, cls, max_det) == reference_nms(boxes, scores, thr, cls, max_det)


@pytest.mark.parametrize("max_det", [300, None])
def test_nms_duplicate_run_then_long_chain_is_exact(max_det):
    """2 000 copies of one box (one block resolves ~m² pairs unless split), then a chain of 4 000 boxes."""
    boxes = np.concatenate([np.tile(np.array([[0, 0, 100, 100]], np.float32), (2000, 1)), chain(4000, x0=1000)])
    scores = np.concatenate([np.linspace(1, 0.9, 2000), np.linspace(0.89, 0.5, 4000)]).astype(np.float32)
    got = nms(boxes, scores, 0.5, max_detections=max_det).tolist()
    assert got == reference_nms_fast(boxes, scores, 0.5, max_det=max_det)
    assert got[:3] == [0, 2000, 2002]  # the first copy, then every other chain box
    assert len(got) == (300 if max_det else 2001)


@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("max_det", [300, None])
def test_nms_8400_clustered_candidates_one_class_is_exact(thr, max_det):
    boxes, scores = clusters(8400, spread=15)
    got = nms(boxes, scores, thr, max_detections=max_det)
    assert got.tolist() == reference_nms_fast(boxes, scores, thr, max_det=max_det)


@pytest.mark.parametrize("thr", [0.3, 0.7])
def test_nms_8400_random_candidates_without_limit_is_exact(thr):
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 640, (8400, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 200, (8400, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0.5, 0.99, 8400).astype(np.float32)
    classes = rng.integers(0, 80, 8400)
    assert nms(boxes, scores, thr).tolist() == reference_nms_fast(boxes, scores, thr)
    got = nms(boxes, scores, thr, class_ids=classes)
    assert got.tolist() == reference_nms_fast(boxes, scores, thr, classes)


def test_nms_tied_scores_visit_lower_index_first():
    boxes = np.concatenate([chain(40), chain(40, x0=1000)[::-1]])  # the second chain listed right to left
    scores = np.full(80, 0.5, np.float32)
    got = nms(boxes, scores, 0.5).tolist()
    assert got == reference_nms(boxes, scores, 0.5)
    assert got[:3] == [0, 2, 4]
    assert got[20:23] == [40, 42, 44]
    scores[[7, 70]] = 0.9  # two winners first, then the ties in index order
    got = nms(boxes, scores, 0.5).tolist()
    assert got == reference_nms(boxes, scores, 0.5)
    assert got[:2] == [7, 70]
    mixed = np.array([0.5, -0.0, 0.0, 0.5], np.float32)  # -0.0 ties with 0.0
    four = np.array([[0, 0, 1, 1], [5, 0, 6, 1], [10, 0, 11, 1], [15, 0, 16, 1]], np.float32)
    assert nms(four, mixed, 0.5).tolist() == [0, 3, 1, 2]


def test_nms_degenerate_and_non_finite_boxes_neither_suppress_nor_get_suppressed():
    boxes = np.array(
        [
            [0, 0, 10, 10],
            [0, 0, 10, 10],  # duplicate: suppressed
            [5, 5, 5, 5],  # zero area
            [5, 5, 5, 5],
            [10, 10, 0, 0],  # inverted
            [0, 0, np.inf, 10],  # infinite
            [0, 0, np.inf, 10],
            [-np.inf, 0, np.inf, 10],
        ],
        np.float32,
    )
    scores = np.linspace(0.9, 0.1, len(boxes)).astype(np.float32)
    for thr in (0.0, 0.5):
        got = nms(boxes, scores, thr).tolist()
        assert got == reference_nms(boxes, scores, thr) == [0, 2, 3, 4, 5, 6, 7]
    only_degenerate = boxes[2:5]
    assert nms(only_degenerate, scores[:3], 0.5, max_detections=2).tolist() == [0, 1]


@pytest.mark.parametrize("thr", [0.0, 1.0])
def test_nms_threshold_extremes_on_chains_and_duplicates(thr):
    boxes = np.concatenate([chain(200), np.tile(np.array([[500, 0, 520, 30]], np.float32), (100, 1)), chain(50, 0.5)])
    scores = np.random.default_rng(3).permutation(len(boxes)).astype(np.float32)
    got = nms(boxes, scores, thr).tolist()
    assert got == reference_nms_fast(boxes, scores, thr)
    if thr == 1.0:  # IoU is never above 1: nothing is suppressed, not even exact copies
        assert sorted(got) == list(range(len(boxes)))
    touching = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [9.5, 0, 20, 10]], np.float32)  # IoU 0, then > 0
    assert nms(touching, np.array([0.9, 0.8, 0.7]), 0.0).tolist() == [0, 1]


@pytest.mark.parametrize("max_det", [0, 1, 7, 64, 500, 10_000])
def test_nms_max_detections_is_a_prefix_of_the_full_result(max_det):
    boxes, scores = clusters(2000, spread=15, seed=4)
    full = nms(boxes, scores, 0.5).tolist()
    assert 64 < len(full) < 500
    got = nms(boxes, scores, 0.5, max_detections=max_det).tolist()
    assert got == full[:max_det] == reference_nms_fast(boxes, scores, 0.5, max_det=max_det)
    assert nms(boxes, scores, 0.5, max_detections=-3).tolist() == []


def test_nms_score_dtypes_agree():
    boxes, scores = clusters(1000, spread=5, seed=5)
    expected = reference_nms_fast(boxes, scores, 0.5)
    assert nms(boxes, scores.astype(np.float64), 0.5).tolist() == expected
    assert nms(boxes.astype(np.float64), scores, 0.5).tolist() == expected
    quantised = (scores * 4).astype(np.int64)  # integer scores with many ties
    assert nms(boxes, quantised, 0.5).tolist() == reference_nms_fast(boxes, quantised, 0.5)


@pytest.mark.parametrize("thr", [-0.1, float("nan")])
def test_nms_rejects_a_negative_or_nan_threshold(thr):
    with pytest.raises(InvalidParameterError, match="iou_threshold"):
        nms(np.zeros((2, 4), np.float32), np.ones(2, np.float32), thr)


@pytest.mark.parametrize("max_det", [300, None])
def test_nms_tied_scores_listed_object_by_object_is_exact(max_det):
    """All scores equal and candidates listed cluster after cluster: each kept box suppresses a whole run ahead."""
    boxes, _ = clusters(8400, spread=3)
    scores = np.ones(len(boxes), np.float32)
    got = nms(boxes, scores, 0.5, max_detections=max_det).tolist()
    assert got == reference_nms_fast(boxes, scores, 0.5, max_det=max_det)
    assert got[0] == 0


def test_nms_class_ids_of_any_range_or_dtype():
    boxes, scores = clusters(1000, spread=3, seed=6)
    classes = np.random.default_rng(6).integers(0, 3, len(boxes))
    expected = reference_nms_fast(boxes, scores, 0.5, classes)
    for ids in (classes, classes.astype(np.uint8), classes * 10**12 - 7, (classes - 1).astype(np.int8)):
        assert nms(boxes, scores, 0.5, class_ids=ids).tolist() == expected
    names = np.array(["car", "cat", "dog"])[classes]
    assert nms(boxes, scores, 0.5, class_ids=names).tolist() == expected


@pytest.mark.parametrize("agnostic", [False, True])
def test_dense_path_for_few_boxes_equals_the_spatial_path(agnostic):
    """Up to ``_DENSE_MAX`` boxes, nms() uses one dense IoU matrix; it must keep exactly what the spatial index
    keeps (forced here with ``_DENSE_MAX = 0``), degenerate, duplicate, tied and non-finite boxes included."""
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(1, _nms._DENSE_MAX + 1))
        xy = rng.uniform(0, 80, (n, 2))
        wh = rng.uniform(-5, 40, (n, 2))  # some degenerate (zero or negative sides)
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        boxes[rng.random(n) < 0.1] = boxes[0]  # exact duplicates
        if trial % 7 == 0:
            boxes[rng.integers(0, n)] = [np.nan, 0, np.inf, 5]
        scores = rng.choice(np.float32([0.3, 0.5, 0.5, 0.9]), n) if trial % 2 else rng.random(n, np.float32)
        classes = None if agnostic else rng.integers(0, 3, n)
        iou = float(rng.choice([0.0, 0.3, 0.5, 0.7, 1.0]))
        max_det = int(rng.choice([1, 3, 300]))
        dense = nms(boxes, scores, iou, class_ids=classes, max_detections=max_det)
        with _dense_max(0):
            spatial = nms(boxes, scores, iou, class_ids=classes, max_detections=max_det)
        assert dense.dtype == np.int64
        np.testing.assert_array_equal(dense, spatial, err_msg=f"trial {trial}, n {n}, iou {iou}")
