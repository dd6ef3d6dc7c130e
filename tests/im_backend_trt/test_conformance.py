"""The shared Session conformance suite against the TensorRT backend, on a FAKE TensorRT runtime.

No real TensorRT engine runs in these tests: the fake (see conftest.py) mimics TensorRT's and cuda-python's API with
host memory and numpy, so that the backend's own code (specs from named tensors, profile batch limits and chunking,
per-thread contexts and streams, copies, CUDA-graph capture/replay) is exercised on a CPU-only machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from im_core import BatchLimits, Session
from im_core.testing import SessionConformance

from .conftest import write_fake_plan


class TestFakeTrtConformance(SessionConformance):
    expected_device = "cuda:0"
    expected_backend = "trt"
    dynamic_limits = BatchLimits(min=1, max=16)  # the fake engine's profile: 37 items run as 16 + 16 + 5
    options: dict[str, Any] = {"memory": "cuda-python"}

    @pytest.fixture(autouse=True)
    def _setup(self, fake_backend: Any, tmp_path: Path) -> None:
        self._backend, self._dir = fake_backend, tmp_path

    def make_session(self, variant: str) -> Session:
        batch = None if variant == "dynamic" else 1
        plan = write_fake_plan(self._dir / f"{variant}.plan", batch=batch)
        return self._backend.load(plan, device="cuda:0", **self.options)

    def test_conformance_metadata(self) -> None:
        super().test_conformance_metadata()
        assert dict(self.make_session("dynamic").metadata) == {}  # an engine carries no string metadata


class TestFakeTrtCudaGraphConformance(TestFakeTrtConformance):
    """The same suite with CUDA-graph replay (one captured graph per thread and input shape)."""

    options = {"memory": "cuda-python", "cuda_graph": True}
