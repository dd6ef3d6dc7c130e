"""Masks from prototypes: computed only inside each box, exact geometry, RLE identical to a full-image encode."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from im_core import RLEMask
from im_models.common import ImageTransform, instance_masks, rle_from_box_mask


def _identity(h: int, w: int) -> ImageTransform:
    return ImageTransform(1.0, 1.0, 0.0, 0.0, h, w, h, w, (0, 0, w, h))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_rle_from_box_mask_equals_full_image_encode(h, w, seed):
    rng = np.random.default_rng(seed)
    x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
    bw, bh = int(rng.integers(0, w - x0 + 1)), int(rng.integers(0, h - y0 + 1))
    local = rng.random((bh, bw)) < rng.choice([0.0, 0.5, 1.0])
    full = np.zeros((h, w), bool)
    full[y0 : y0 + bh, x0 : x0 + bw] = local
    got = rle_from_box_mask(local, x0, y0, h, w)
    want = RLEMask.encode(full)
    assert got.size == want.size
    assert got.counts.tolist() == want.counts.tolist()
    np.testing.assert_array_equal(got.decode(), full)


def test_segmentation_decoding_synthetic_protos_exact_geometry():
    """Prototype 0 is +1 on proto rows [10, 30) and -1 elsewhere, prototype 1 the same on columns [20, 40). With a 4×
    proto→image scale, bilinear sampling at pixel centres puts the boundary exactly on pixel 4·cell; then the
    mask is cut to the detection box."""
    protos = -np.ones((2, 160, 160), np.float32)
    protos[0, 10:30, :] = 1.0
    protos[1, :, 20:40] = 1.0
    t = _identity(640, 640)
    coef = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    boxes = np.array([[0, 0, 640, 640], [100, 50, 130.5, 200]], np.float32)
    dense = instance_masks(protos, coef, boxes, t)
    want = np.zeros((2, 640, 640), bool)
    want[0, 40:120, :] = True
    want[1, 50:200, 100:131] = True  # columns [80, 160) cut to the box: pixel columns 100..130, rows 50..199
    np.testing.assert_array_equal(dense, want)
    rle = instance_masks(protos, coef, boxes, t, mask_format="rle")
    assert [m.counts.tolist() for m in rle] == [RLEMask.encode(m).counts.tolist() for m in dense]


def test_segmentation_masks_follow_letterbox_to_original_pixels():
    """A 320×640 (h×w) image letterboxed into 640×640 (offset_y 160): proto rows map through the padding."""
    protos = -np.ones((1, 160, 160), np.float32)
    protos[0, 50:60, 0:160] = 1.0  # network rows [200, 240) → original rows [40, 80)
    t = ImageTransform(1.0, 1.0, 0.0, 160.0, 320, 640, 640, 640, (0, 0, 640, 320))
    (mask,) = instance_masks(protos, np.ones((1, 1), np.float32), np.array([[0, 0, 640, 320]], np.float32), t)
    assert mask.shape == (320, 640)
    rows = np.flatnonzero(mask.any(axis=1))
    assert (rows.min(), rows.max()) == (40, 79) and mask[40:80].all()


def test_mask_format_is_checked():
    from im_core.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        instance_masks(np.zeros((1, 4, 4)), np.zeros((0, 1)), np.zeros((0, 4)), _identity(4, 4), mask_format="png")
