import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from im_core import Classification, Detections, Embeddings, Gaze, RLEMask, TextLine, TextRecognition, results_to_columns
from im_core.errors import InvalidParameterError


def _dets(n=3):
    return Detections(
        xyxy=np.arange(n * 4, dtype=np.float64).reshape(n, 4),
        confidence=np.linspace(0.9, 0.5, n),
        class_id=np.array([0, 1, 0][:n]),
        class_names=("person", "car"),
        keypoints=np.zeros((n, 2, 2)),
        data={"text": ["a", "b", "c"][:n]},
    )


def test_detections_validate_and_normalise_dtypes():
    d = _dets()
    assert d.xyxy.dtype == np.float32 and d.class_id.dtype == np.int64 and len(d) == 3
    assert d.names == ["person", "car", "person"]
    assert d.keypoint_confidence.shape == (3, 2)  # defaulted to ones
    with pytest.raises(InvalidParameterError, match=r"\(N, 4\)"):
        Detections(np.zeros((2, 3)), np.zeros(2), np.zeros(2))
    with pytest.raises(InvalidParameterError, match="confidence"):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros(2))
    with pytest.raises(InvalidParameterError, match="data"):
        Detections(np.zeros((2, 4)), np.zeros(2), np.zeros(2), data={"x": [1]})


def test_detections_indexing_keeps_everything_aligned():
    d = _dets()
    sub = d[d.class_id == 0]
    assert len(sub) == 2 and sub.data["text"] == ["a", "c"] and sub.keypoints.shape == (2, 2, 2)
    assert len(d[1]) == 1 and d[1].names == ["car"]
    assert len(Detections.empty(("x",))) == 0


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 17), st.integers(1, 13))))
def test_rle_round_trip(mask):
    rle = RLEMask.encode(mask)
    assert rle.size == mask.shape and rle.area == int(mask.sum())
    np.testing.assert_array_equal(rle.decode(), mask)


def test_rle_masks_in_detections_and_dense_view():
    masks = np.zeros((2, 5, 6), bool)
    masks[0, 1:3, 2:4] = True
    d = Detections(np.zeros((2, 4)), np.ones(2), np.zeros(2), masks=[RLEMask.encode(m) for m in masks])
    np.testing.assert_array_equal(d.dense_masks(), masks)
    with pytest.raises(InvalidParameterError):
        Detections(np.zeros((2, 4)), np.ones(2), np.zeros(2), masks=[RLEMask.encode(masks[0])])


def test_classification_top_k_and_multi_label():
    c = Classification(np.array([0.1, 0.7, 0.2]), ("a", "b", "c"))
    assert (
        c.class_id == 1 and c.class_name == "b" and c.top_k(2) == [("b", pytest.approx(0.7)), ("c", pytest.approx(0.2))]
    )
    m = Classification(np.array([0.9, 0.2, 0.6]), ("a", "b", "c"), multi_label=True)
    assert m.predicted == ["a", "c"]
    with pytest.raises(InvalidParameterError):
        Classification(np.array([0.5, 0.5]), ("only-one",))


def test_embeddings_similarity_is_cosine():
    e = Embeddings(np.array([[1.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_allclose(e.similarity(e), np.eye(2), atol=1e-6)
    np.testing.assert_allclose(e.similarity(np.array([1.0, 1.0])), [[2**-0.5], [2**-0.5]], atol=1e-6)


def test_text_and_gaze_results():
    r = TextRecognition([TextLine("hello", 0.9, np.zeros((4, 2))), TextLine("world", 0.8)])
    assert r.text == "hello\nworld" and len(r) == 2
    g = Gaze(np.array([0.1]), np.array([-0.2]))
    assert len(g) == 1
    with pytest.raises(InvalidParameterError):
        Gaze(np.array([0.1, 0.2]), np.array([0.1]))


def test_to_supervision_says_what_to_install_when_missing():
    pytest.importorskip("numpy")
    try:
        import supervision  # noqa: F401
    except ImportError:
        from im_core.errors import MissingDependencyError

        with pytest.raises(MissingDependencyError, match="pip install supervision"):
            _dets().to_supervision()


class _StandInSupervision:
    """A stand-in ``supervision`` module whose ``Detections`` records what it was constructed with."""

    class Detections:
        def __init__(self, xyxy, mask=None, confidence=None, class_id=None, tracker_id=None, data=None, metadata=None):
            self.xyxy, self.mask, self.confidence, self.class_id = xyxy, mask, confidence, class_id
            self.tracker_id, self.data = tracker_id, data


def _install_stand_in(monkeypatch):
    import sys
    import types

    module = types.ModuleType("supervision")
    module.Detections = _StandInSupervision.Detections
    monkeypatch.setitem(sys.modules, "supervision", module)


def test_to_supervision_passes_boxes_scores_classes_names_masks_data_and_keypoints(monkeypatch):
    _install_stand_in(monkeypatch)
    masks = np.zeros((3, 6, 8), bool)
    masks[1, 2:4, 3:7] = True
    d = Detections(
        xyxy=np.arange(12, dtype=np.float32).reshape(3, 4),
        confidence=[0.9, 0.7, 0.5],
        class_id=[0, 1, 5],
        class_names=("person", "car"),
        masks=[RLEMask.encode(m) for m in masks],
        keypoints=np.arange(12, dtype=np.float32).reshape(3, 2, 2),
        keypoint_confidence=[[1, 0.5], [0.2, 0.3], [0.4, 0.6]],
        data={"text": ["a", "bb", "c"], "polygon": [[1, 2], [3, 4], [5, 6]], "score2": np.array([1.0, 2.0, 3.0])},
    )
    sv = d.to_supervision()
    np.testing.assert_array_equal(sv.xyxy, d.xyxy)
    np.testing.assert_array_equal(sv.confidence, np.float32([0.9, 0.7, 0.5]))
    np.testing.assert_array_equal(sv.class_id, [0, 1, 5])
    assert sv.mask.dtype == bool and sv.mask.shape == (3, 6, 8)
    np.testing.assert_array_equal(sv.mask, masks)  # RLE decoded to dense
    assert sv.data["class_name"].tolist() == ["person", "car", "5"]
    assert sv.data["text"].shape == (3,) and sv.data["text"].tolist() == ["a", "bb", "c"]
    assert sv.data["polygon"].shape == (3,) and sv.data["polygon"][2] == [5, 6]  # one entry per detection
    assert sv.data["score2"].dtype == np.float64  # arrays keep their dtype
    np.testing.assert_array_equal(sv.data["keypoints"], d.keypoints)
    assert sv.data["keypoints"].shape == (3, 2, 2)
    np.testing.assert_allclose(sv.data["keypoint_confidence"], [[1, 0.5], [0.2, 0.3], [0.4, 0.6]])
    assert sv.tracker_id is None
    assert all(len(v) == len(d) for v in sv.data.values())


def test_to_supervision_of_empty_detections_without_masks_or_keypoints(monkeypatch):
    _install_stand_in(monkeypatch)
    sv = Detections.empty(("a",)).to_supervision()
    assert sv.xyxy.shape == (0, 4) and sv.mask is None
    assert sv.data["class_name"].shape == (0,) and set(sv.data) == {"class_name"}


# --- serialisation, equality, repr, indexing, merge, columns (issue 12 item 6, issue 13) -------------------------


def _full_dets(n=3, dense=False):
    """Every field set: masks, keypoints with names and skeleton, array and list data, a NaN and an inf."""
    masks = np.zeros((n, 6, 8), bool)
    for i in range(n):
        masks[i, i : i + 2, 1 : 3 + i] = True
    return Detections(
        xyxy=np.arange(n * 4, dtype=np.float32).reshape(n, 4) + 0.1,
        confidence=np.float32([0.9, math.nan, 0.5, 0.4, 0.3][:n]),
        class_id=[0, 1, 5, 0, 1][:n],
        class_names=("person", "car"),
        masks=masks if dense else [RLEMask.encode(m) for m in masks],
        keypoints=np.arange(n * 3 * 2, dtype=np.float32).reshape(n, 3, 2),
        keypoint_confidence=np.full((n, 3), np.inf, np.float32),
        data={
            "text": ["a", "bb", "c", "d", "e"][:n],
            "polygon": np.arange(n * 8, dtype=np.float32).reshape(n, 4, 2),
            "track": np.arange(n, dtype=np.int32),
            "nested": [{"k": [1, 2.5]}] * n,
        },
        keypoint_names=("nose", "left_eye", "right_eye"),
        skeleton=[(0, 1), (0, 2)],
    )


def _no_numpy(value) -> None:
    """Only plain JSON values, all the way down."""
    assert not isinstance(value, (np.generic, np.ndarray)), type(value)
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str
            _no_numpy(v)
    elif isinstance(value, list):
        for v in value:
            _no_numpy(v)
    else:
        assert value is None or type(value) in (str, int, float, bool), type(value)


def _round_trip(result):
    d = result.to_dict()
    _no_numpy(d)
    text = result.to_json()
    assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text.replace('"Infinity"', "")
    back = type(result).from_dict(json.loads(text))
    assert back == result and result == back
    assert type(result).from_dict(d) == result
    return back


@pytest.mark.parametrize("dense", [False, True])
def test_detections_round_trip_through_strict_json(dense):
    d = _full_dets(dense=dense)
    back = _round_trip(d)
    assert back.data["polygon"].dtype == np.float32 and back.data["track"].dtype == np.int32
    assert back.data["text"] == ["a", "bb", "c"] and math.isnan(back.confidence[1])
    assert isinstance(back.masks, list)  # JSON masks are RLE: the same pixels as the dense ones
    np.testing.assert_array_equal(back.dense_masks(), d.dense_masks())
    doc = d.to_dict()
    assert doc["type"] == "detections" and doc["n"] == 3 and doc["class_name"] == ["person", "car", "5"]
    assert doc["confidence"][1] == "NaN" and doc["keypoint_confidence"][0] == ["Infinity"] * 3
    assert doc["masks"][0]["size"] == [6, 8] and sum(doc["masks"][0]["counts"]) == 48
    assert doc["skeleton"] == [[0, 1], [0, 2]] and doc["data_arrays"]["polygon"] == {
        "dtype": "float32",
        "shape": [3, 4, 2],
    }
    json.loads(d.to_json(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


def test_empty_and_plain_detections_round_trip():
    for d in (Detections.empty(("a",)), Detections.empty(), _full_dets()[np.zeros(3, bool)], _dets()):
        _round_trip(d)
    empty_kp = _round_trip(_full_dets()[[]])
    assert empty_kp.keypoints.shape == (0, 3, 2) and empty_kp.data["polygon"].shape == (0, 4, 2)


def test_json_masks_are_coco_uncompressed_rle_in_column_major_order():
    mask = np.zeros((3, 4), bool)
    mask[0, 1] = mask[1, 1] = mask[2, 3] = True
    rle = RLEMask.encode(mask).to_dict()
    # column-major (Fortran) order, zeros first: column 0 (3 zeros), column 1 (1 zero... ) as COCO counts them
    assert rle == {"size": [3, 4], "counts": [3, 2, 6, 1]}
    assert RLEMask.from_dict(rle) == RLEMask.encode(mask)
    with pytest.raises(InvalidParameterError, match="12"):
        RLEMask.from_dict({"size": [3, 4], "counts": [3, 2]})
    with pytest.raises(InvalidParameterError, match="uncompressed"):
        RLEMask.from_dict({"size": [3, 4], "counts": "abc"})


def test_equality_is_exact_and_never_raises():
    a, b = _full_dets(), _full_dets()
    assert a == b
    assert not (a != b)  # noqa: SIM202 - __ne__ is what is tested
    assert _full_dets(dense=True) == a  # dense and RLE masks with the same pixels
    b.xyxy[0, 0] += 1e-3
    assert a != b
    c = _full_dets()
    c.data["text"][0] = "z"
    assert a != c
    d = _full_dets()
    d.masks = [RLEMask.encode(np.ones((6, 8), bool)), *d.masks[1:]]
    assert a != d
    assert a != "x" and a != _full_dets(2)
    assert Detections.empty() == Detections.empty() and Detections.empty() != Detections.empty(("a",))
    e = _full_dets()
    e.skeleton = ((0, 1),)
    assert a != e
    with pytest.raises(TypeError):
        hash(a)
    assert RLEMask(size=(1, 3), counts=np.uint32([1, 0, 0, 2])) == RLEMask(size=(1, 3), counts=np.uint32([1, 2]))


def test_other_results_round_trip_and_compare():
    results = [
        Classification(np.array([0.1, 0.7, 0.2]), ("a", "b", "c")),
        Classification(np.array([0.9, math.nan, 0.6]), ("a", "b", "c"), multi_label=True, threshold=0.55),
        Classification(np.zeros(0)),
        Embeddings(np.array([[1.0, 0.0], [0.0, 2.0]]), normalized=False),
        Embeddings(np.zeros((0, 7))),
        TextRecognition([TextLine("hello", 0.9, np.arange(8).reshape(4, 2)), TextLine("wörld", math.inf)]),
        TextRecognition(),
        Gaze(np.array([0.1, -0.3]), np.array([-0.2, 0.0]), faces=_full_dets(2)),
        Gaze(np.zeros(0), np.zeros(0)),
    ]
    for r in results:
        _round_trip(r)
    cls = results[0].to_dict()
    assert cls["class_id"] == 1 and cls["class_name"] == "b" and cls["predicted"] == ["b"]
    assert results[1].to_dict()["predicted"] == ["a", "c"] and results[1].to_dict()["threshold"] == 0.55
    assert results[4].to_dict()["dim"] == 7 and Embeddings.from_dict(results[4].to_dict()).vectors.shape == (0, 7)
    assert (
        results[5].to_dict()["text"] == "hello\nwörld" and results[5].to_dict()["lines"][1]["confidence"] == "Infinity"
    )
    assert results[0] != Classification(np.array([0.1, 0.7, 0.2]), ("a", "b", "x"))
    assert results[3] != Embeddings(np.array([[1.0, 0.0], [0.0, 2.0]]))  # normalized flag differs
    assert results[7] != Gaze(np.array([0.1, -0.3]), np.array([-0.2, 0.0]))  # faces differ
    with pytest.raises(InvalidParameterError, match="'gaze'"):
        Gaze.from_dict(results[0].to_dict())
    with pytest.raises(InvalidParameterError, match="keys"):
        Detections.from_dict({"type": "detections", "xyxy": []})


def test_data_values_without_a_json_form_are_refused_by_name():
    d = Detections(np.zeros((1, 4)), [1.0], [0], data={"obj": [object()]})
    with pytest.raises(InvalidParameterError, match="data\\['obj'\\] holds a object"):
        d.to_dict()


def test_repr_previews_the_first_rows_and_stays_short():
    big = Detections(np.tile([[1.5, 2, 30, 40]], (500, 1)), np.full(500, 0.75), np.arange(500) % 30, ("cat", "dog"))
    text = repr(big)
    lines = text.splitlines()
    assert lines[0].startswith("Detections(n=500") and len(lines) == 2 + 5 + 1 and lines[-1].strip() == "… 495 more"
    assert "1.5" in lines[2] and "0.750" in lines[2] and "cat" in lines[2] and "dog" in lines[3]
    assert len(text) < 1000 and "…" in lines[0]  # 30 classes: the list is cut
    assert repr(Detections.empty()) == "Detections(n=0, classes=[], extras=[])"
    assert "'b', 0.700" in repr(Classification(np.array([0.1, 0.7, 0.2]), ("a", "b", "c")))
    assert "n=2" in repr(TextRecognition([TextLine("hi", 0.9), TextLine("yo", 0.8)])) and "'hi'" in repr(
        TextRecognition([TextLine("hi", 0.9)])
    )
    assert "dim=2" in repr(Embeddings(np.eye(2))) and "n=1" in repr(Gaze(np.zeros(1), np.zeros(1)))


def test_indexing_by_key_int_slice_mask_and_iteration():
    d = _full_dets()
    assert d["text"] == ["a", "bb", "c"] and d["polygon"].shape == (3, 4, 2)
    assert d["class_name"].tolist() == ["person", "car", "5"]
    with pytest.raises(InvalidParameterError, match="did you mean 'polygon'"):
        d["polygons"]
    for sub, want in ((d[1:], [1, 2]), (d[np.array([True, False, True])], [0, 2]), (d[[2, 0]], [2, 0]), (d[-1], [2])):
        assert isinstance(sub, Detections) and sub.data["track"].tolist() == want
        assert sub.keypoint_names == d.keypoint_names and sub.skeleton == d.skeleton
        assert sub == Detections.merge([d[[i]] for i in want])
    rows = list(d)
    assert len(rows) == 3 and all(len(r) == 1 for r in rows) and rows[1].names == ["car"]
    with pytest.raises(InvalidParameterError, match="int, a slice"):
        d[1.5]
    d["score2"] = np.ones(3)
    assert "score2" in d.data
    with pytest.raises(InvalidParameterError, match="2 entries"):
        d["bad"] = [1, 2]


def test_merge_concatenates_and_checks_compatibility():
    d = _full_dets()
    assert Detections.merge([d[:1], d[1:], Detections.empty(d.class_names)]) == d
    assert Detections.merge([_full_dets(dense=True)[:2], _full_dets(dense=True)[2:]]).masks.shape == (3, 6, 8)
    mixed = Detections.merge([_full_dets(dense=True)[:2], d[2:]])
    assert isinstance(mixed.masks, list) and mixed == d
    assert len(Detections.merge([])) == 0 and len(Detections.merge([Detections.empty(("a",))] * 2)) == 0
    with pytest.raises(InvalidParameterError, match="class_names"):
        Detections.merge([d, Detections.empty(("x",))])
    with pytest.raises(InvalidParameterError, match="masks"):
        Detections.merge([d, replace(d[:1], masks=None)])
    with pytest.raises(InvalidParameterError, match="skeletons"):
        Detections.merge([d, replace(d[:1], skeleton=[(1, 2)])])
    assert Detections.merge([d[:1], replace(d[1:], keypoint_names=(), skeleton=())]) == d  # unnamed parts share
    lists = Detections.merge([_dets(2), _dets(1)])
    assert lists.data["text"] == ["a", "b", "a"] and lists.keypoints.shape == (3, 2, 2)


def test_skeleton_and_keypoint_names_are_checked():
    with pytest.raises(InvalidParameterError, match="2 keypoint names for 3"):
        Detections(np.zeros((1, 4)), [1], [0], keypoints=np.zeros((1, 3, 2)), keypoint_names=("a", "b"))
    with pytest.raises(InvalidParameterError, match="outside"):
        Detections(np.zeros((1, 4)), [1], [0], keypoints=np.zeros((1, 3, 2)), skeleton=[(0, 3)])
    with pytest.raises(InvalidParameterError, match="pairs"):
        Detections.empty().__class__(np.zeros((0, 4)), [], [], skeleton=[(0,)])
    assert _full_dets().supervision_edges() == [(1, 2), (1, 3)] and _dets().supervision_edges() is None


def test_results_to_columns_one_row_per_image():
    dets = _full_dets()
    cols = results_to_columns(
        [dets, Detections.empty(("person", "car")), ValueError("broken file"), None],
        paths=["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
    )
    assert set(cols) == {
        "path",
        "n",
        "xyxy",
        "confidence",
        "class_id",
        "class_name",
        "masks",
        "error",
        "keypoints",
        "keypoint_confidence",
    }
    assert all(len(v) == 4 for v in cols.values())
    _no_numpy(cols)
    assert cols["path"] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"] and cols["n"] == [3, 0, None, None]
    assert cols["xyxy"][0][1] == pytest.approx([4.1, 5.1, 6.1, 7.1]) and math.isnan(cols["confidence"][0][1])
    assert cols["class_name"][0] == ["person", "car", "5"] and cols["class_id"][1] == []
    assert cols["masks"][0] == [m.to_dict() for m in dets.masks] and cols["masks"][1] is None
    assert cols["error"] == [None, None, "ValueError: broken file", "no result"]
    again = results_to_columns([dets, dets], errors=[None, "timed out"])
    assert again["error"] == [None, "timed out"] and again["n"] == [3, None] and again["path"] == [None, None]
    other = results_to_columns(
        [
            Classification(np.array([0.9, 0.2, 0.6]), ("a", "b", "c"), multi_label=True),
            TextRecognition([TextLine("hi", 0.5, np.array([[1, 2], [5, 2], [5, 8], [1, 8]]))]),
            Gaze(np.array([0.1]), np.array([0.2])),
            Embeddings(np.array([[0.6, 0.8]])),
        ]
    )
    assert other["class_name"][0] == ["a", "c"] and other["n"][:3] == [2, 1, 1]
    assert other["text"][1] == ["hi"] and other["xyxy"][1] == [[1.0, 2.0, 5.0, 8.0]]
    assert other["yaw"][2] == [pytest.approx(0.1)] and other["embedding"][3] == pytest.approx([0.6, 0.8])
    with pytest.raises(InvalidParameterError, match="2 entries"):
        results_to_columns([dets], paths=["a", "b"])
    with pytest.raises(InvalidParameterError, match="got str"):
        results_to_columns(["nope"])


def test_results_to_columns_is_an_arrow_table():
    pa = pytest.importorskip("pyarrow")
    cols = results_to_columns(
        [_full_dets(), Detections.empty(("person", "car")), OSError("gone")], paths=["a", "b", "c"]
    )
    table = pa.table(cols)
    assert table.num_rows == 3 and table.column("n").to_pylist() == [3, 0, None]
    assert table.column("masks").to_pylist()[0][0]["size"] == [6, 8]
    assert table.column("error").to_pylist()[2] == "OSError: gone"


def test_supervision_conversions_say_what_to_install_when_it_is_absent(monkeypatch):
    import sys

    from im_core.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "supervision", None)  # import supervision -> ImportError
    for convert in (
        _dets().to_supervision,
        _dets().to_supervision_keypoints,
        Classification(np.ones(2)).to_supervision,
    ):
        with pytest.raises(MissingDependencyError, match="pip install supervision"):
            convert()


def test_object_and_ragged_data_round_trip():
    objs = np.empty(3, dtype=object)
    for i, pair in enumerate([[1, 2], [3, 4], [5, 6]]):
        objs[i] = pair
    d = Detections(
        np.zeros((3, 4)),
        np.ones(3),
        np.zeros(3),
        data={"pairs": objs, "ragged": [[1.0], [2.0, np.float32(3)], []], "scalars": [np.int64(1), np.str_("x"), None]},
    )
    back = _round_trip(d)
    assert back.data["pairs"].dtype == object and back.data["pairs"].shape == (3,) and back.data["pairs"][1] == [3, 4]
    assert back.data["ragged"] == [[1.0], [2.0, 3.0], []] and back.data["scalars"] == [1, "x", None]
    assert type(d.to_dict()["data"]["scalars"][1]) is str
    other = replace(d, data={**d.data, "ragged": [[1.0], [2.0, 4.0], []]})
    assert d != other
