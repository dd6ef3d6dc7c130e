"""SemanticSegmentation: validation, per-class masks, JSON round trip, equality, supervision equivalent."""

from __future__ import annotations

import json

import numpy as np
import pytest

from im_core import SemanticSegmentation
from im_core.errors import InvalidParameterError

NAMES = ("background", "road", "car")


def _seg(confidence: bool = True) -> SemanticSegmentation:
    cm = np.zeros((4, 6), np.int64)
    cm[:2, :3] = 1
    cm[3, 4:] = 2
    conf = np.linspace(0, 1, 24, dtype=np.float32).reshape(4, 6) if confidence else None
    return SemanticSegmentation(cm, conf, NAMES, background_class_id=0)


def test_masks_and_present_classes():
    seg = _seg()
    assert seg.shape == (4, 6) and seg.present_class_ids == [0, 1, 2]
    np.testing.assert_array_equal(seg.mask("road"), seg.class_map == 1)
    np.testing.assert_array_equal(seg.mask(2), seg.class_map == 2)
    ids, masks = seg.masks()
    assert ids.tolist() == [1, 2] and masks.shape == (2, 4, 6) and masks.dtype == bool
    assert seg.masks(include_background=True)[0].tolist() == [0, 1, 2]
    with pytest.raises(InvalidParameterError, match="Unknown class 'bus'"):
        seg.mask("bus")


@pytest.mark.parametrize("confidence", [True, False])
def test_json_round_trip_and_equality(confidence):
    seg = _seg(confidence)
    d = json.loads(seg.to_json())
    assert d["type"] == "semantic-segmentation" and [c["class_name"] for c in d["classes"]] == list(NAMES)
    back = SemanticSegmentation.from_dict(d)
    assert back == seg
    other = _seg(confidence)
    other.class_map[0, 0] = 2
    assert other != seg


def test_from_dict_refuses_overlaps_and_holes():
    d = _seg().to_dict()
    d["classes"] = d["classes"][1:]  # the background pixels lose their class
    with pytest.raises(InvalidParameterError, match="without a class"):
        SemanticSegmentation.from_dict(d)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_map": np.zeros((2, 2, 1), np.int64)}, "shape"),
        ({"class_map": np.zeros((2, 2), np.float32)}, "integer"),
        ({"class_map": np.full((2, 2), 3)}, "outside"),
        ({"class_map": np.zeros((2, 2), np.int64), "confidence": np.zeros((3, 2))}, "shape"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        SemanticSegmentation(**{"class_names": NAMES, **kwargs})


def test_to_detections_and_supervision():
    seg = _seg()
    det = seg.to_detections()
    assert det.class_id.tolist() == [1, 2]
    np.testing.assert_allclose(det.xyxy, [[0, 0, 3, 2], [4, 3, 6, 4]])
    np.testing.assert_allclose(det.confidence, [seg.confidence[:2, :3].mean(), seg.confidence[3, 4:].mean()])
    sv = pytest.importorskip("supervision")
    s = seg.to_supervision()
    assert isinstance(s, sv.Detections) and s.mask.shape == (2, 4, 6)
    assert s.class_id.tolist() == [1, 2]


def test_columns_row_is_the_present_classes():
    from im_core import results_to_columns

    cols = results_to_columns([_seg()])
    assert cols["n"] == [2] and cols["class_name"] == [["road", "car"]]
