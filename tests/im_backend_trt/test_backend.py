"""The TensorRT backend: the real no-GPU path (in a subprocess), and everything else against the FAKE runtime.

No real TensorRT engine runs here (this machine has no GPU): see conftest.py for what the fake reproduces.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from im_backend_trt import TrtBackend
from im_backend_trt._build import BuildOptions, build_engine
from im_core import BackendProbe, ModelPackage
from im_core.cli import main as im_main
from im_core.errors import (
    CorruptedModelPackageError,
    InvalidParameterError,
    MissingDependencyError,
    ModelInputError,
    ModelRuntimeError,
)
from im_core.testing import reference_forward, reference_inputs

from .conftest import FakeCudart, add_fake_builder, make_fake_trt, write_fake_plan


def _has_gpu() -> bool:
    from im_core._runtime import detect_gpus

    return bool(detect_gpus()[0])


CPU_ONLY = pytest.mark.skipif(_has_gpu(), reason="checks the behaviour on a machine without a GPU")


# -- the real environment, no fakes: no GPU here -------------------------------------------------------------
@CPU_ONLY
def test_real_runtime_without_gpu_is_unavailable_and_load_refuses_without_crashing(tmp_path: Path) -> None:
    """In a subprocess (a TensorRT call without a GPU would segfault the interpreter): probe says why, load refuses."""
    plan = write_fake_plan(tmp_path / "engine.plan")
    code = f"""
import json, sys
from im_backend_trt import TrtBackend
from im_core.errors import ModelRuntimeError, MissingDependencyError
backend = TrtBackend()
probe = backend.probe()
try:
    backend.load({str(plan)!r}, device="cuda")
    outcome = "loaded"
except (ModelRuntimeError, MissingDependencyError) as exc:
    outcome = type(exc).__name__ + ": " + exc.message
print(json.dumps({{"available": probe.available, "reason": probe.reason, "version": probe.version,
                  "details": probe.details, "outcome": outcome,
                  "runtime_imported": "tensorrt_lean" in sys.modules or "tensorrt" in sys.modules}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)  # 139 would be the segfault
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["available"] is False
    assert "no usable NVIDIA GPU" in result["reason"]
    assert result["outcome"].startswith(("ModelRuntimeError: TensorRT needs an NVIDIA GPU", "MissingDependencyError"))
    if result["version"]:  # tensorrt_lean is installed here: the probe still reports what it found
        assert result["details"]["flavour"] in ("full", "lean", "dispatch")


def test_no_gpu_means_no_tensorrt_runtime_is_created(tmp_path: Path) -> None:
    cudart = FakeCudart(devices=0)
    trt = make_fake_trt(cudart)
    backend = TrtBackend(trt_module=trt, flavour="lean", cudart=cudart, gpus=list)
    with pytest.raises(ModelRuntimeError, match=r"cudaErrorInsufficientDriver.*does not create a TensorRT runtime"):
        backend.load(write_fake_plan(tmp_path / "engine.plan"), device="cuda")
    assert trt.Runtime.created == []
    probe = backend.probe()
    assert not probe.available and "cudaErrorInsufficientDriver" in probe.reason


def test_missing_runtime_names_package_and_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("tensorrt", "tensorrt_lean", "tensorrt_dispatch"):
        monkeypatch.setitem(sys.modules, name, None)
    backend = TrtBackend(cudart=FakeCudart(devices=1))
    with pytest.raises(MissingDependencyError) as info:
        backend.load(write_fake_plan(tmp_path / "engine.plan"), device="cuda")
    assert "pip install im-backend-trt" in info.value.message and "im-vision[trt]" in info.value.message
    assert info.value.context == {"distribution": "im-backend-trt", "extra": "trt"}
    assert not backend.probe().available


# -- probe and check (fakes) ---------------------------------------------------------------------------------
def test_probe_reports_version_flavour_and_gpu(fake_backend: TrtBackend) -> None:
    probe = fake_backend.probe()
    assert probe.available and probe.version == "11.4.0.106" and probe.devices == ("cuda:0",)
    assert probe.details["flavour"] == "lean" and probe.details["lean"] is True and probe.details["builder"] is False
    assert probe.details["gpus"] == [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}]


def _probe(version: str = "11.4.0.106", flavour: str = "full", cc: str = "9.0", name: str = "NVIDIA H100") -> Any:
    return BackendProbe(
        "trt",
        True,
        version,
        ("cuda:0",),
        {"flavour": flavour, "gpus": [{"index": 0, "name": name, "compute_capability": cc}]},
    )


def _pkg(**req: Any) -> ModelPackage:
    return ModelPackage(package_id="p", backend="trt", requirements=req)


@pytest.mark.parametrize(
    ("package", "probe", "device", "reason"),
    [
        (_pkg(), _probe(), "cpu", "TensorRT engines run only on NVIDIA GPUs; device cpu requested"),
        (_pkg(), _probe(), "cuda:1", "device cuda:1 requested but TensorRT sees 1 GPU(s)"),
        (
            _pkg(trt_version="10.12.0.36"),
            _probe(),
            "cuda",
            "engine built with TensorRT 10.12.0.36 without version compatibility needs exactly TensorRT 10.12.0; "
            "found 11.4.0.106",
        ),
        (
            _pkg(trt_version="11.5.0", forward_compatible=True),
            _probe(),
            "cuda",
            "engine built with TensorRT 11.5.0; installed 11.4.0.106 is older (version-compatible engines run only on "
            "the same or a newer TensorRT)",
        ),
        (
            _pkg(trt_version="11.4.0.106"),
            _probe(flavour="lean"),
            "cuda",
            "engine was not built VERSION_COMPATIBLE; the lean runtime (tensorrt_lean) runs only "
            "version-compatible plans (install the full tensorrt, or pick a version-compatible package)",
        ),
        (
            _pkg(forward_compatible=True, lean_runtime_excluded=True),
            _probe(flavour="dispatch"),
            "cuda",
            "engine excludes the lean runtime; tensorrt_dispatch can only run plans that embed it "
            "(install tensorrt-lean-cu13)",
        ),
        (
            _pkg(compute_capability="8.6"),
            _probe(),
            "cuda:0",
            "engine built for compute capability 8.6; this GPU (NVIDIA H100) is 9.0",
        ),
        (
            _pkg(compute_capability="9.0", device_name="NVIDIA H200"),
            _probe(),
            "cuda",
            "engine built for NVIDIA H200 without same-compute-capability compatibility; this GPU is NVIDIA H100",
        ),
    ],
)
def test_check_rejections_in_words(package: ModelPackage, probe: BackendProbe, device: str, reason: str) -> None:
    verdict = TrtBackend().check(package, probe, device)
    assert not verdict.ok and verdict.reason == reason


def test_check_accepts_and_ranks_exact_hardware_higher() -> None:
    b = TrtBackend()
    vc = dict(trt_version="10.12.0.36", forward_compatible=True, compute_capability="9.0")
    exact = b.check(_pkg(**vc, device_name="NVIDIA H100"), _probe(flavour="lean"), "cuda:0")
    same_cc = b.check(_pkg(**vc, device_name="NVIDIA H200", same_cc_compatible=True), _probe(), "cuda")
    assert exact.ok and same_cc.ok and exact.rank > same_cc.rank
    assert b.check(_pkg(trt_version="11.4.0.106"), _probe(), "cuda").ok
    assert "not usable" in b.check(_pkg(), BackendProbe("trt", False, reason="no GPU"), "cuda").reason


# -- sessions on the fake runtime ----------------------------------------------------------------------------
def test_specs_and_profile_limits_from_the_engine(fake_backend: TrtBackend, tmp_path: Path) -> None:
    session = fake_backend.load(
        write_fake_plan(tmp_path / "e.plan", profile=(2, 4, 8)), device="cuda", memory="cuda-python"
    )
    assert session.inputs[0].shape == (None, 3, 8, 8) and session.outputs[0].shape == (None, 4)
    assert (session.batch_limits.min, session.batch_limits.max) == (2, 8)
    x = reference_inputs(1)  # below the profile's min: zero-padded to 2 by BaseSession, then cut back
    np.testing.assert_allclose(session.run({"images": x})["logits"], reference_forward(x)["logits"], rtol=1e-5)


def test_one_context_and_stream_per_thread(fake_backend: TrtBackend, fake_cuda: FakeCudart, tmp_path: Path) -> None:
    session = fake_backend.load(write_fake_plan(tmp_path / "e.plan"), device="cuda", memory="cuda-python")
    engine = session._engine
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        for _ in range(3):
            session.run({"images": reference_inputs(2)})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(engine.contexts) == 4
    assert all(len(c.threads) == 1 for c in engine.contexts)  # no context was shared between threads
    assert len({c.threads.pop() for c in engine.contexts}) == 4
    assert len(fake_cuda.streams) == 4  # one non-default stream per thread
    session.close()
    assert fake_cuda.streams == {} and fake_cuda.memory == {}
    with pytest.raises(ModelRuntimeError, match="closed"):
        session.run({"images": reference_inputs(1)})


def test_cuda_graph_is_captured_once_per_shape_and_replayed(
    fake_backend: TrtBackend, fake_cuda: FakeCudart, tmp_path: Path
) -> None:
    session = fake_backend.load(
        write_fake_plan(tmp_path / "e.plan"), device="cuda", memory="cuda-python", cuda_graph=True
    )
    for n in (2, 2, 2, 3):
        x = reference_inputs(n, seed=n)
        np.testing.assert_allclose(session.run({"images": x})["pooled"], reference_forward(x)["pooled"], rtol=1e-5)
    assert fake_cuda.launches == 4
    assert len(session._engine.contexts) == 1 + 2  # the thread's context + one per captured shape


def test_shape_outside_the_profile_is_model_input_error(fake_backend: TrtBackend, tmp_path: Path) -> None:
    session = fake_backend.load(write_fake_plan(tmp_path / "e.plan"), device="cuda", memory="cuda-python")
    with pytest.raises(ModelInputError, match="outside the engine's shape"):
        session.run({"images": np.zeros((1, 3, 9, 9), np.float32)})


def test_corrupt_plan_quotes_the_tensorrt_log(fake_backend: TrtBackend, tmp_path: Path) -> None:
    bad = tmp_path / "engine.plan"
    bad.write_bytes(b"ftrt-from-another-version")
    with pytest.raises(CorruptedModelPackageError, match=r"magicTagRead == kMAGIC_TAG.*tied to the TensorRT version"):
        fake_backend.load(bad, device="cuda")


def test_engine_host_code_is_gated_by_the_option(fake_backend: TrtBackend, tmp_path: Path) -> None:
    plan = write_fake_plan(tmp_path / "engine.plan", host_code=True)
    with pytest.raises(CorruptedModelPackageError, match="engine_host_code_allowed=True"):
        fake_backend.load(plan, device="cuda", memory="cuda-python")
    session = fake_backend.load(plan, device="cuda", memory="cuda-python", engine_host_code_allowed=True)
    assert session._runtime.engine_host_code_allowed is True


def test_bad_options_and_devices(fake_backend: TrtBackend, tmp_path: Path) -> None:
    plan = write_fake_plan(tmp_path / "engine.plan")
    with pytest.raises(InvalidParameterError, match="Unknown TensorRT backend option"):
        fake_backend.load(plan, device="cuda", providers=[])
    with pytest.raises(InvalidParameterError, match="CUDA devices"):
        fake_backend.load(plan, device="cpu")
    with pytest.raises(InvalidParameterError, match="only 1 CUDA device"):
        fake_backend.load(plan, device="cuda:3")
    with pytest.raises(InvalidParameterError, match="memory="):
        fake_backend.load(plan, device="cuda", memory="pinned")


def test_inspect_reads_the_trt_config_sidecar(tmp_path: Path) -> None:
    plan = write_fake_plan(tmp_path / "engine.plan")
    assert TrtBackend().inspect(plan) == {}
    (tmp_path / "trt_config.json").write_text(json.dumps({"dynamic_batch_size_max": 16, "trt_version": "11.4"}))
    assert TrtBackend().inspect(plan) == {"dynamic_batch_size_max": "16", "trt_version": "11.4"}


# -- im trt build --------------------------------------------------------------------------------------------
def test_cli_build_says_clearly_that_the_builder_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x08")
    code = im_main(["trt", "build", str(onnx), "--out", str(tmp_path / "pkg")])
    err = capsys.readouterr().err
    assert code == 2
    assert "needs the full TensorRT builder" in err or "No TensorRT runtime is installed" in err
    assert not (tmp_path / "pkg").exists()


def test_build_with_a_fake_full_tensorrt_writes_a_loadable_package(
    fake_trt: types.SimpleNamespace, fake_cuda: FakeCudart, fake_backend: TrtBackend, tmp_path: Path
) -> None:
    """Fake builder: the profile, flags, timing cache and trt_config.json are what the build code asked for."""
    trt = add_fake_builder(fake_trt)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx")
    cache = tmp_path / "timing.cache"
    out = build_engine(
        onnx,
        tmp_path / "pkg",
        BuildOptions(min_batch=1, opt_batch=4, max_batch=12, timing_cache=cache),
        trt=trt,
        cudart=fake_cuda,
    )
    config = json.loads((out / "trt_config.json").read_text())
    assert config["dynamic_batch_size_min"] == 1 and config["dynamic_batch_size_max"] == 12
    assert config["version_compatible"] is True and config["trt_version"] == "11.4.0.106"
    assert cache.read_bytes() == b"+timings"
    session = fake_backend.load(out / "engine.plan", device="cuda", memory="cuda-python")
    assert session.batch_limits.max == 12
    onnx.write_bytes(b"bad")
    with pytest.raises(CorruptedModelPackageError, match="INVALID_GRAPH"):
        build_engine(onnx, tmp_path / "pkg2", trt=trt, cudart=fake_cuda)


def test_build_refuses_a_lean_runtime(fake_trt: types.SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(MissingDependencyError, match="needs the full TensorRT builder"):
        build_engine(tmp_path / "m.onnx", tmp_path / "out", trt=fake_trt)


def test_manifest_declares_the_backends_facts_and_its_requirement_model() -> None:
    from im_backend_trt import TrtRequirements
    from im_backend_trt._plugin import CLI, MANIFEST
    from im_core import registry

    reg = registry()
    assert reg.backends["trt"] == MANIFEST and reg.commands["trt"] == CLI
    assert MANIFEST.priority["cuda"] > reg.backend_priority("onnx", "cuda") and MANIFEST.aliases == ("tensorrt",)
    assert type(reg.requirements(_pkg(trt_version="10.3"))) is TrtRequirements
    assert TrtRequirements.of(_pkg(lean_runtime_excluded=True, future_key=1)).lean_runtime_excluded


# -- hygiene and the real GPU --------------------------------------------------------------------------------
def test_plugin_and_package_imports_do_not_import_tensorrt_or_cuda() -> None:
    code = (
        "import sys, im_core, im_backend_trt._plugin, im_backend_trt, im_backend_trt._backend, im_backend_trt._cli;"
        "heavy=('onnxruntime','torch','tensorrt','tensorrt_lean','cuda.bindings.runtime');"
        "bad=[m for m in heavy if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.trt
def test_probe_on_a_real_gpu() -> None:
    """Where a GPU and TensorRT exist: available, with version, GPU name and compute capability."""
    probe = TrtBackend().probe()
    assert probe.available, probe.reason
    assert probe.version and probe.details["gpus"][0]["compute_capability"]
