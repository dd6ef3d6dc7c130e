"""BaseSession: batch splitting and zero-padding done once for every backend, input validation, thread modes."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from im_core import BaseSession, BatchLimits, Session, TensorSpec
from im_core._session import batch_chunks, concat_batches
from im_core.errors import ModelInputError


class _Recorder(BaseSession):
    """Doubles its input and records the batch sizes the "backend" saw."""

    backend = "fake"

    def __init__(self, limits: BatchLimits, thread_safety: str = "lock") -> None:
        super().__init__()
        self.inputs = (TensorSpec("x", (None, 2), "float32"),)
        self.outputs = (TensorSpec("y", (None, 2), "float32"), TensorSpec("n", (None,), "int64"))
        self.batch_limits = limits
        self.thread_safety = thread_safety
        self.seen: list[int] = []
        self.concurrent = 0
        self.max_concurrent = 0
        self._count_lock = threading.Lock()

    def _run_chunk(self, feeds: Mapping[str, Any], output_names: Sequence[str]) -> dict[str, Any]:
        with self._count_lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        x = feeds["x"]
        assert self.batch_limits.min <= x.shape[0] <= (self.batch_limits.max or x.shape[0])
        self.seen.append(int(x.shape[0]))
        out = {"y": x * 2, "n": np.full(x.shape[0], x.shape[0])}
        threading.Event().wait(0.001)
        with self._count_lock:
            self.concurrent -= 1
        return {k: out[k] for k in output_names}


@pytest.mark.parametrize(
    ("total", "limits", "expected"),
    [
        (5, BatchLimits.fixed(1), [(i, i + 1, 1) for i in range(5)]),
        (5, BatchLimits.fixed(4), [(0, 4, 4), (4, 5, 4)]),
        (37, BatchLimits(min=1, max=16), [(0, 16, 16), (16, 32, 16), (32, 37, 5)]),
        (37, BatchLimits(), [(0, 37, 37)]),
        (1, BatchLimits(min=2, max=8), [(0, 1, 2)]),
        (0, BatchLimits(), []),
    ],
)
def test_batch_chunks(total: int, limits: BatchLimits, expected: list[tuple[int, int, int]]) -> None:
    assert batch_chunks(total, limits) == expected


def test_static_batch_is_zero_padded_and_cut_back() -> None:
    session = _Recorder(BatchLimits.fixed(4))
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    out = session.run({"x": x})
    assert session.seen == [4, 4]
    np.testing.assert_array_equal(out["y"], x * 2)
    assert out["n"].tolist() == [4] * 5  # the backend saw padded batches of 4, the caller gets 5 rows


def test_dynamic_batch_is_split_at_max_only() -> None:
    session = _Recorder(BatchLimits(min=1, max=16))
    x = np.random.default_rng(0).random((37, 2), dtype=np.float32)
    np.testing.assert_array_equal(session.run({"x": x})["y"], x * 2)
    assert session.seen == [16, 16, 5]


def test_torch_tensors_are_padded_and_concatenated_as_torch() -> None:
    torch = pytest.importorskip("torch")
    session = _Recorder(BatchLimits.fixed(2))
    x = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    out = session.run({"x": x})
    assert isinstance(out["y"], torch.Tensor) and torch.equal(out["y"], x * 2)
    assert torch.equal(concat_batches([x]), x)


def test_output_subset_and_protocol() -> None:
    session = _Recorder(BatchLimits())
    assert isinstance(session, Session)
    assert list(session.run({"x": np.zeros((1, 2), np.float32)}, ["n"])) == ["n"]
    assert "inputs=[x[None, 2]:float32]" in repr(session)


@pytest.mark.parametrize("feeds", [{"z": np.zeros((1, 2))}, {}, {"x": np.zeros((1, 2)), "z": np.zeros((1, 2))}])
def test_wrong_input_names_are_model_input_errors(feeds: dict[str, Any]) -> None:
    with pytest.raises(ModelInputError, match="expects inputs"):
        _Recorder(BatchLimits()).run(feeds)


def test_lock_mode_serialises_and_native_mode_does_not() -> None:
    def hammer(session: _Recorder) -> None:
        barrier = threading.Barrier(6)

        def work() -> None:
            barrier.wait()
            for _ in range(5):
                session.run({"x": np.ones((1, 2), np.float32)})

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    locked, native = _Recorder(BatchLimits(), "lock"), _Recorder(BatchLimits(), "native")
    hammer(locked)
    hammer(native)
    assert locked.max_concurrent == 1
    assert native.max_concurrent > 1


def test_an_empty_batch_is_a_model_input_error_not_an_index_error():
    import numpy as np

    from im_core import BaseSession, BatchLimits, TensorSpec
    from im_core.errors import ModelInputError

    class Echo(BaseSession):
        inputs = (TensorSpec("x", (None, 2), "float32"),)
        outputs = (TensorSpec("y", (None, 2), "float32"),)
        batch_limits = BatchLimits(1, 4)

        def _run_chunk(self, feeds, output_names):
            return {"y": feeds["x"]}

    with pytest.raises(ModelInputError, match="empty batch"):
        Echo().run({"x": np.zeros((0, 2), np.float32)})
