import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from im_core import Classification, Detections, Embeddings, Gaze, RLEMask, TextLine, TextRecognition
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
