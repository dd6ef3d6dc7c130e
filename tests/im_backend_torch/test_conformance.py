"""The shared Session conformance suite against the torch backend: TorchScript, .pt2 programs and state dicts.

CPU here; the CUDA variants (outputs stay torch CUDA tensors, run on the session's own stream) need a GPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from im_backend_torch import TorchBackend
from im_core import BatchLimits, Session
from im_core.testing import SessionConformance, reference_torch_module

OUTPUTS = ["logits", "pooled"]


def _inputs(variant: str) -> list[tuple[str, tuple, str]]:
    return [("images", (None if variant == "dynamic" else 1, 3, 8, 8), "float32")]


_SESSIONS: dict[tuple[str, str], Session] = {}


class TestTorchScriptConformance(SessionConformance):
    expected_device = "cpu"
    expected_backend = "torch"
    expected_metadata = {"im.json": '{"task": "x"}'}  # the _extra_files saved with the archive

    @pytest.fixture(autouse=True)
    def _files(self, torch_reference_files: dict[str, Path]) -> None:
        self._paths = torch_reference_files

    def make_session(self, variant: str) -> Session:
        """Loaded once per class and variant (loading a .pt2 costs ~0.5 s); sessions are stateless between runs."""
        key = (type(self).__name__, variant)
        if key not in _SESSIONS:
            _SESSIONS[key] = self._load(variant)
        return _SESSIONS[key]

    def _load(self, variant: str) -> Session:
        return TorchBackend().load(
            self._paths["torchscript"], device=self.expected_device, inputs=_inputs(variant), outputs=OUTPUTS
        )


class TestExportedProgramConformance(TestTorchScriptConformance):
    """``.pt2``: input specs, output shapes and the batch range (1..64) come from the program itself."""

    dynamic_limits = BatchLimits(min=1, max=64)
    expected_metadata = {"im.json": '{"task": "y"}'}  # torch.export.save(extra_files=...)

    def _load(self, variant: str) -> Session:
        return TorchBackend().load(self._paths[f"pt2-{variant}"], device=self.expected_device, outputs=OUTPUTS)


class TestStateDictConformance(TestTorchScriptConformance):
    """State dict + the family's module factory, loaded with weights_only=True (no metadata: ``{}``)."""

    expected_metadata = None

    def test_conformance_metadata(self) -> None:
        super().test_conformance_metadata()
        assert dict(self.make_session("dynamic").metadata) == {}

    def _load(self, variant: str) -> Session:
        return TorchBackend().load(
            self._paths["state-dict"],
            device=self.expected_device,
            module=reference_torch_module,
            inputs=_inputs(variant),
            outputs=OUTPUTS,
        )


@pytest.mark.gpu
class TestTorchScriptCudaConformance(TestTorchScriptConformance):
    expected_device = "cuda:0"


@pytest.mark.gpu
class TestExportedProgramCudaConformance(TestExportedProgramConformance):
    expected_device = "cuda:0"


@pytest.mark.gpu
class TestStateDictCudaConformance(TestStateDictConformance):
    expected_device = "cuda:0"
