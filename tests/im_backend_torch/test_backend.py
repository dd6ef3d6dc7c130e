"""The torch backend: formats, weights_only refusal, dtype, thread policy, probe, check, inspect, imports."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from im_backend_torch import TorchBackend, apply_thread_policy
from im_backend_torch._torch import available_cpus
from im_core import BackendProbe, BatchSpec, ModelPackage
from im_core.errors import (
    CorruptedModelPackageError,
    InvalidParameterError,
    MissingDependencyError,
    ModelLoadingError,
    ModelRuntimeError,
)
from im_core.testing import reference_forward, reference_inputs, reference_torch_module

SPEC = [("images", (None, 3, 8, 8), "float32")]


class _RunsCodeWhenUnpickled:
    """Pickles as a call to ``os.mkdir(marker)``: loading it with full pickle would run that code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.marker),))


def test_pickle_needing_arbitrary_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    evil = tmp_path / "weights.pt"
    state = dict(reference_torch_module().state_dict())
    state["payload"] = _RunsCodeWhenUnpickled(marker)
    torch.save(state, evil)
    with pytest.raises(ModelLoadingError, match=r"Refusing to load weights\.pt: it is a pickle that needs arbitrary"):
        TorchBackend().load(evil, device="cpu", module=reference_torch_module, inputs=SPEC)
    assert not marker.exists()


def test_plain_pickle_protocol_file_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(pickle.dumps(_RunsCodeWhenUnpickled(tmp_path / "ran")))
    with pytest.raises(ModelLoadingError, match="Refusing"):
        TorchBackend().load(path, device="cpu", module=reference_torch_module, inputs=SPEC)
    assert not (tmp_path / "ran").exists()


def test_state_dict_wrapped_in_checkpoint_dict(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": reference_torch_module().state_dict(), "epoch": 3}, path)
    session = TorchBackend().load(
        path, device="cpu", module=reference_torch_module(), inputs=SPEC, outputs=["logits", "pooled"]
    )
    x = reference_inputs(3)
    np.testing.assert_allclose(session.run({"images": x})["logits"], reference_forward(x)["logits"], rtol=1e-5)


def test_state_dict_that_does_not_fit_the_module(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"head.weight": torch.zeros(4, 3)}, path)
    with pytest.raises(CorruptedModelPackageError, match="does not fit"):
        TorchBackend().load(path, device="cpu", module=reference_torch_module, inputs=SPEC)


def test_state_dict_without_module_says_what_is_missing(torch_reference_files: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadingError, match="module="):
        TorchBackend().load(torch_reference_files["state-dict"], device="cpu")


def test_module_factory_must_return_a_module(torch_reference_files: dict[str, Path]) -> None:
    with pytest.raises(InvalidParameterError, match=r"not an nn\.Module"):
        TorchBackend().load(torch_reference_files["state-dict"], device="cpu", module=lambda: 42, inputs=SPEC)


def test_garbage_file_is_corrupted(tmp_path: Path) -> None:
    bad = tmp_path / "weights.torchscript"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CorruptedModelPackageError):
        TorchBackend().load(bad, device="cpu")


def test_unknown_option_and_bad_dtype(torch_reference_files: dict[str, Path]) -> None:
    path = torch_reference_files["torchscript"]
    with pytest.raises(InvalidParameterError, match="Unknown torch backend option"):
        TorchBackend().load(path, device="cpu", providers=["x"])
    with pytest.raises(InvalidParameterError, match="dtype"):
        TorchBackend().load(path, device="cpu", dtype="int3")


def test_torchscript_specs_default_to_signature_names_and_dry_run(torch_reference_files: dict[str, Path]) -> None:
    session = TorchBackend().load(torch_reference_files["torchscript"], device="cpu", inputs=SPEC)
    assert [i.name for i in session.inputs] == ["images"]
    # no output names given: a dry run finds two unnamed outputs with their shapes
    assert [(o.name, o.shape, o.dtype) for o in session.outputs] == [
        ("output0", (None, 4), "float32"),
        ("output1", (None, 3), "float32"),
    ]
    bare = TorchBackend().load(torch_reference_files["torchscript"], device="cpu")
    assert bare.inputs[0].name == "images" and bare.inputs[0].shape == (None,)  # rank unknown without inputs=


def test_outputs_unknown_at_load_are_found_on_the_first_run(torch_reference_files: dict[str, Path]) -> None:
    session = TorchBackend().load(torch_reference_files["torchscript"], device="cpu")
    assert not session.outputs_known
    x = reference_inputs(3)
    out = session.run({"images": x})
    assert session.outputs_known and list(out) == ["output0", "output1"]
    assert [(o.name, o.shape, o.dtype) for o in session.outputs] == [
        ("output0", (None, 4), "float32"),
        ("output1", (None, 3), "float32"),
    ]
    np.testing.assert_allclose(out["output1"], reference_forward(x)["pooled"], rtol=1e-5, atol=1e-6)


def test_exported_program_specs_come_from_the_program(torch_reference_files: dict[str, Path]) -> None:
    session = TorchBackend().load(torch_reference_files["pt2-dynamic"], device="cpu")
    assert session.inputs[0].shape == (None, 3, 8, 8)
    assert [o.shape for o in session.outputs] == [(None, 4), (None, 3)]
    assert session.batch_limits.max == 64


def test_torch_tensor_inputs_and_bf16_outputs_as_float32(torch_reference_files: dict[str, Path]) -> None:
    session = TorchBackend().load(
        torch_reference_files["torchscript"], device="cpu", inputs=SPEC, outputs=["logits", "pooled"], dtype="bf16"
    )
    x = reference_inputs(2)
    out = session.run({"images": torch.from_numpy(x)})
    assert out["logits"].dtype == np.float32 and session.outputs[0].dtype == "float32"
    np.testing.assert_allclose(out["logits"], reference_forward(x)["logits"], rtol=0.05, atol=0.05)


def test_package_static_batch_is_honoured(torch_reference_files: dict[str, Path]) -> None:
    package = ModelPackage(package_id="p", backend="torch", batch=BatchSpec.static(2))
    session = TorchBackend().load(torch_reference_files["torchscript"], device="cpu", package=package, inputs=SPEC)
    assert session.batch_limits.static and session.batch_limits.max == 2
    x = reference_inputs(5)
    assert session.run({"images": x})["output0"].shape == (5, 4)


def test_runtime_failure_is_model_runtime_error(torch_reference_files: dict[str, Path]) -> None:
    session = TorchBackend().load(torch_reference_files["torchscript"], device="cpu", inputs=SPEC)
    with pytest.raises(ModelRuntimeError, match=r"images\[1, 3\]"):
        session.run({"images": np.zeros((1, 3), np.float32)})


# -- thread policy -------------------------------------------------------------------------------------------
@pytest.fixture
def _restore_threads() -> None:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("_restore_threads")
def test_single_thread_left_by_someone_is_raised_to_available_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    torch.set_num_threads(1)
    assert apply_thread_policy(torch, None) == max(1, available_cpus())


@pytest.mark.usefixtures("_restore_threads")
def test_explicit_omp_num_threads_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    assert apply_thread_policy(torch, None) == 1


@pytest.mark.usefixtures("_restore_threads")
def test_num_threads_option(torch_reference_files: dict[str, Path]) -> None:
    TorchBackend().load(torch_reference_files["torchscript"], device="cpu", inputs=SPEC, num_threads=1)
    assert torch.get_num_threads() == 1
    with pytest.raises(InvalidParameterError):
        apply_thread_policy(torch, 0)


# -- probe, check, inspect -----------------------------------------------------------------------------------
def test_probe_reports_version_and_devices() -> None:
    probe = TorchBackend().probe()
    assert probe.available and probe.version == torch.__version__
    assert probe.devices[0] == "cpu"
    assert ("cuda:0" in probe.devices) == torch.cuda.is_available()
    assert probe.details["formats"] == ["torchscript", "exported-program", "state-dict"]


def _probe(version: str = "2.4.0", devices: tuple[str, ...] = ("cpu",)) -> BackendProbe:
    return BackendProbe("torch", True, version, devices, {})


def _pkg(**req: object) -> ModelPackage:
    return ModelPackage(package_id="p", backend="torch", requirements=req)


def test_check_rejects_with_reasons() -> None:
    b = TorchBackend()
    assert b.check(_pkg(torch_version="2.6"), _probe(), "cpu").reason == (
        "needs torch >= 2.6; torch 2.4.0 is installed"
    )
    assert b.check(_pkg(device_types=("cuda",)), _probe(), "cpu").reason == (
        "package runs on cuda only; device cpu requested"
    )
    assert "has no CUDA" in b.check(_pkg(), _probe(), "cuda").reason
    assert "sees only" in b.check(_pkg(), _probe(devices=("cpu", "cuda:0")), "cuda:1").reason
    assert "need torch >= 2.3" in b.check(_pkg(format="exported-program"), _probe("2.2.1"), "cpu").reason
    assert not b.check(_pkg(), _probe(), "tpu").ok
    assert "not installed" in b.check(_pkg(), BackendProbe("torch", False, reason="not installed"), "cpu").reason


def test_check_accepts_with_format_rank() -> None:
    b = TorchBackend()
    ep, ts = b.check(_pkg(format="exported-program"), _probe(), "cpu"), b.check(_pkg(), _probe("2.4.0+cu121"), "cpu")
    assert ep.ok and ts.ok and ep.rank > ts.rank
    assert b.check(_pkg(), _probe(devices=("cpu", "cuda:0")), "cuda:0").ok


def test_inspect_reads_torchscript_extra_files_without_torch(torch_reference_files: dict[str, Path]) -> None:
    assert TorchBackend().inspect(torch_reference_files["torchscript"]) == {"im.json": '{"task": "x"}'}
    assert TorchBackend().inspect(torch_reference_files["pt2-dynamic"]) == {"im.json": '{"task": "y"}'}
    assert TorchBackend().inspect(torch_reference_files["state-dict"]) == {}


def test_missing_torch_is_missing_dependency(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    backend = TorchBackend()
    assert not backend.probe().available and "pip install" in backend.probe().reason
    with pytest.raises(MissingDependencyError, match="PyTorch"):
        backend.load(tmp_path / "x.pt", device="cpu")


def test_manifest_declares_the_backends_facts_and_its_requirement_model() -> None:
    from im_backend_torch import TorchRequirements
    from im_backend_torch._plugin import MANIFEST
    from im_core import registry

    assert registry().backends["torch"] == MANIFEST
    assert MANIFEST.file_suffixes[".pt2"] == "exported-program" and MANIFEST.file_suffixes[".pt"] is None
    assert set(MANIFEST.aliases) == {"torchscript", "torch-script"}
    assert type(registry().requirements(_pkg(format="torchscript"))) is TorchRequirements
    assert TorchRequirements.of(_pkg()).format is None  # no block: the backend tells the format from the file
    assert TorchRequirements.of(_pkg(device_types=["cpu", "cuda"])).device_types == ("cpu", "cuda")


def test_plugin_and_package_imports_do_not_import_torch() -> None:
    code = (
        "import sys, im_core, im_backend_torch._plugin, im_backend_torch, im_backend_torch._backend;"
        "bad=[m for m in ('onnxruntime','torch','tensorrt','tensorrt_lean') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _xor_middle(data: bytes) -> bytes:
    """Every byte but the first and last 200 flipped: the zip's end record survives, its members do not."""
    middle = (np.frombuffer(data[200:-200], np.uint8) ^ 0x5A).tobytes()
    return data[:200] + middle + data[-200:]


def test_pt2_with_garbage_members_is_corrupted_not_a_raw_zip_error(
    torch_reference_files: dict[str, Path], tmp_path: Path
) -> None:
    import zipfile

    broken = tmp_path / "weights.pt2"
    broken.write_bytes(_xor_middle(torch_reference_files["pt2-dynamic"].read_bytes()))
    assert zipfile.is_zipfile(broken)  # gets past the zip check, so torch.export.load itself fails (BadZipFile)
    with pytest.raises(CorruptedModelPackageError, match=r"weights\.pt2 as exported-program \(BadZipFile"):
        TorchBackend().load(broken, device="cpu")


@pytest.mark.parametrize("fmt", ["exported-program", "torchscript"])
def test_a_file_that_is_not_a_zip_is_corrupted_before_torch_reads_it(tmp_path: Path, fmt: str) -> None:
    broken = tmp_path / ("weights.pt2" if fmt == "exported-program" else "weights.torchscript")
    broken.write_bytes(b"PK\x03\x04 then nothing a zip reader could use" * 10)
    with pytest.raises(CorruptedModelPackageError, match=f"should be a {fmt} file, which is a zip archive"):
        TorchBackend().load(broken, device="cpu", format=fmt)


def test_a_failure_while_outputs_are_discovered_is_an_im_error(tmp_path: Path) -> None:
    """Issue 15: a TorchScript graph with no declared outputs learns them on its first run; when that run fails
    (a shape the graph refuses, a missing torchvision op), the caller gets a ModelRuntimeError naming the input
    shapes, never torch's raw RuntimeError."""
    import torch

    class Picky(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            if images.shape[2] != 32:
                raise RuntimeError("this graph takes 32-pixel-high inputs only")
            return images.mean(dim=(2, 3))

    path = tmp_path / "picky.torchscript"
    torch.jit.script(Picky()).save(str(path))
    session = TorchBackend().load(path, device="cpu")
    with pytest.raises(ModelRuntimeError, match=r"(?s)images\[1, 3, 8, 8\].*first run.*32-pixel-high"):
        session.run({session.inputs[0].name: np.zeros((1, 3, 8, 8), np.float32)})
    out = session.run({session.inputs[0].name: np.ones((2, 3, 32, 4), np.float32)})
    assert next(iter(out.values())).shape == (2, 3)
