"""The shared Session conformance suite (im_core.testing) against the ONNX Runtime backend on CPU.

A GPU variant (CUDA EP, IO binding, torch outputs) runs only where an NVIDIA GPU exists.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from im_backend_onnx import OnnxBackend
from im_core import Session
from im_core.testing import SessionConformance

#: metadata_props embedded in the reference graphs: the session's ``metadata`` must hold them
METADATA = {"names": "{0: 'a', 1: 'b', 2: 'c', 3: 'd'}", "im.note": "reference"}


class TestOnnxCpuConformance(SessionConformance):
    expected_device = "cpu"
    expected_backend = "onnx"
    expected_metadata = METADATA

    @pytest.fixture(autouse=True)
    def _builder(self, reference_onnx: Callable[..., Path]) -> None:
        self._build = reference_onnx
        self._backend = OnnxBackend()

    def make_session(self, variant: str) -> Session:
        return self._backend.load(self._build(variant, metadata=METADATA), device="cpu", intra_op_num_threads=1)


@pytest.mark.gpu
class TestOnnxCudaConformance(TestOnnxCpuConformance):
    """Runs on a CUDA GPU with onnxruntime-gpu: IO binding keeps outputs on the GPU as torch tensors."""

    expected_device = "cuda:0"

    def make_session(self, variant: str) -> Session:
        return self._backend.load(
            self._build(variant, metadata=METADATA), device="cuda:0", onnx_execution_providers=["CUDAExecutionProvider"]
        )
