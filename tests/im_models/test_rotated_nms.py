"""Rotated boxes (im_models.common._rotated) against Ultralytics' own functions on the same boxes.

``fixtures/ultralytics/rotated_nms.npz`` holds 2000 random rotated boxes (five degenerate, angles in [-1, 3) rad)
with what Ultralytics 8.4 computed on them (``scripts/ultralytics_reference.py``): ``batch_probiou``,
``xywhr2xyxyxyxy``, and the boxes ``TorchNMS.fast_nms(..., iou_func=batch_probiou)`` keeps, class-aware through
the centre offset ``non_max_suppression`` adds, and class-agnostic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from im_models.common import probiou, rotated_nms, xywhr_to_corners

REF = Path(__file__).parent / "fixtures" / "ultralytics" / "rotated_nms.npz"


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(REF) as z:
        return {k: z[k] for k in z.files}


def test_probiou_and_corners_match_ultralytics(ref):
    b = ref["xywhr"]
    ours = probiou(b[:200], b[:200])
    theirs = ref["probiou_200"]
    # a box with a zero side has a singular covariance: both sides' values are rounding noise there (Ultralytics
    # gives anything from NaN to 0.9995 in float32), so those rows and columns are left out
    ok = (b[:200, 2] > 0) & (b[:200, 3] > 0)
    assert (~ok).sum() == 5
    assert np.abs(ours - theirs)[np.ix_(ok, ok)].max() < 1e-4  # float32 there, float64 here
    np.testing.assert_allclose(xywhr_to_corners(b), ref["corners"], atol=1e-4)


@pytest.mark.parametrize("thr", [0.3, 0.7])
@pytest.mark.parametrize("aware", [True, False])
def test_rotated_nms_keeps_what_ultralytics_keeps(ref, thr, aware):
    """The same boxes in the same order, except where a decision rests on a similarity within 1e-4 of the threshold
    (Ultralytics computes in float32, and its class offset of 7680 px rounds the centres)."""
    b, s, c = ref["xywhr"], ref["scores"], ref["cls"]
    theirs = ref[f"keep_{'aware' if aware else 'agnostic'}_{thr}"]
    ours = rotated_nms(b, s, thr, class_ids=c if aware else None)
    differ = np.setxor1d(ours, theirs)
    for i in differ:  # each disagreement: a higher-scored box of its class sits at the threshold
        rivals = (s > s[i]) & ((c == c[i]) if aware else True)
        assert np.abs(probiou(b[rivals], b[i : i + 1])[:, 0] - thr).min() < 1e-4
    assert len(differ) <= 2
    if not len(differ):
        np.testing.assert_array_equal(ours, theirs)
    # max_detections: a prefix of the full answer
    np.testing.assert_array_equal(
        rotated_nms(b, s, thr, class_ids=c, max_detections=25), rotated_nms(b, s, thr, class_ids=c)[:25]
    )


def test_rotated_nms_blocks_edges_and_errors(monkeypatch):
    """Blocked computation gives the unblocked answer; empty input; a negative threshold is refused."""
    from im_core.errors import InvalidParameterError
    from im_models.common import _rotated

    rng = np.random.default_rng(3)
    b = np.concatenate([rng.uniform(0, 50, (300, 2)), rng.uniform(5, 20, (300, 2)), rng.uniform(0, 3, (300, 1))], 1)
    s = rng.random(300)
    full = rotated_nms(b, s, 0.5)
    monkeypatch.setattr(_rotated, "_BLOCK_ELEMENTS", 300 * 7)  # 7 columns per block
    np.testing.assert_array_equal(rotated_nms(b, s, 0.5), full)
    assert len(full) < 300 and rotated_nms(np.zeros((0, 5)), np.zeros(0), 0.5).shape == (0,)
    with pytest.raises(InvalidParameterError, match="iou_threshold"):
        rotated_nms(b, s, -0.1)
    # a box identical to a higher-scored one is always suppressed; one far away never is
    twins = np.array([[10, 10, 8, 4, 0.3], [10, 10, 8, 4, 0.3], [100, 100, 8, 4, 0.3]])
    np.testing.assert_array_equal(rotated_nms(twins, np.array([0.9, 0.8, 0.7]), 0.9), [0, 2])
