"""``ModelSpec``: ``from_pretrained``'s arguments by value, validated, picklable, loaded once per process; checked
with real worker processes (``ProcessPoolExecutor`` with the ``spawn`` start method) on the pinned nudenet weights."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from im_core import AutoModel, ModelSpec
from im_core.errors import InvalidParameterError, ModelNotFoundError
from testlib import spec_worker

pytestmark = pytest.mark.weights


@pytest.fixture(scope="module")
def astronaut(asset) -> np.ndarray:
    import cv2

    return cv2.imread(str(asset("images/astronaut.png")))


def test_a_spec_pickles_by_value_and_equal_arguments_are_equal(asset, tmp_path, monkeypatch):
    weights = asset("yolo/nudenet_320n.onnx")
    spec = ModelSpec(weights, device="cpu", session_options={"intra_op_num_threads": 1, "allow_spinning": False})
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec and hash(again) == hash(spec)
    assert again.kwargs == {"device": "cpu", "session_options": {"intra_op_num_threads": 1, "allow_spinning": False}}
    # a dict's order does not matter; a different value does
    reordered = {"allow_spinning": False, "intra_op_num_threads": 1}
    assert spec == ModelSpec(weights, session_options=reordered, device="cpu")
    assert spec != spec.replace(device=None)
    # a relative path is stored absolute, so a worker with another working directory finds it
    (tmp_path / "m.onnx").write_bytes(weights.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert ModelSpec("./m.onnx").model_id_or_path == str(tmp_path / "m.onnx")
    # the caller's dict is copied: changing it later changes nothing
    options = {"intra_op_num_threads": 1}
    copied = ModelSpec(weights, session_options=options)
    options["intra_op_num_threads"] = 2
    assert copied.kwargs["session_options"] == {"intra_op_num_threads": 1}


def test_a_spec_is_checked_when_it_is_made(asset):
    with pytest.raises(ModelNotFoundError):
        ModelSpec("./no/such/model.onnx")
    with pytest.raises(InvalidParameterError, match="session_options"):
        ModelSpec(asset("yolo/nudenet_320n.onnx"), session_options=3)
    with pytest.raises(InvalidParameterError, match="cannot be pickled"):
        ModelSpec(asset("yolo/nudenet_320n.onnx"), session_options={"hook": lambda: None})
    model = AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))
    with pytest.raises(InvalidParameterError, match="loaded model"):
        ModelSpec("some/model", dependency_models_params={"detector": model})


def test_repr_hides_the_api_key():
    spec = ModelSpec("some-project/3", api_key="secret-key-123")
    assert "secret-key-123" not in repr(spec) and "api_key='***'" in repr(spec)


def test_load_is_cached_per_process(asset, astronaut):
    import im_core._spec

    spec = ModelSpec(asset("yolo/nudenet_320n.onnx"), device="cpu")
    before = im_core._spec._LOAD_COUNT
    model = spec.load()
    assert spec.load() is model and pickle.loads(pickle.dumps(spec)).load() is model
    loads = im_core._spec._LOAD_COUNT
    assert loads == before + 1
    assert spec.replace(session_options={"intra_op_num_threads": 1}).load() is not model


def test_two_worker_processes_load_from_the_spec_and_match_the_parent(asset, astronaut):
    spec = ModelSpec(asset("yolo/nudenet_320n.onnx"), device="cpu")
    want = AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), device="cpu")(astronaut)
    assert len(want) >= 1
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(2, mp_context=ctx) as pool:
        barrier = manager.Barrier(2)  # the first two tasks wait for each other: two processes
        first = [pool.submit(spec_worker.detect, spec, astronaut, barrier) for _ in range(2)]
        more = [pool.submit(spec_worker.detect, spec, astronaut) for _ in range(4)]
        answers = [f.result(timeout=300) for f in first + more]
    pids = {pid for pid, *_ in answers}
    assert len(pids) == 2 and os.getpid() not in pids
    for _pid, loads, same, got in answers:
        assert loads == 1  # one load per process, however many tasks it ran
        assert same
        np.testing.assert_array_equal(got.xyxy, want.xyxy)
        np.testing.assert_array_equal(got.confidence, want.confidence)
        np.testing.assert_array_equal(got.class_id, want.class_id)
