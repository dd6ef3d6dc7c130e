"""The ONNX Runtime backend: provider selection, options, probe (max opset from ORT), check, inspect, dtypes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from im_backend_onnx import OnnxBackend, select_providers
from im_backend_onnx._ort import max_opset
from im_backend_onnx._proto import identity_model, read_model_header
from im_core import BackendProbe, BatchSpec, ModelPackage
from im_core._config import reload_settings
from im_core.errors import (
    CorruptedModelPackageError,
    InvalidParameterError,
    MissingDependencyError,
    ModelLoadingError,
)
from im_core.testing import reference_forward, reference_inputs

from .conftest import build_fp16_identity

TRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
ALL = [TRT, CUDA, "OpenVINOExecutionProvider", "CoreMLExecutionProvider", CPU]


def _select(**kw: object) -> list:
    args = {"device": "cpu", "available": ALL, "requested": None, "configured": (), "home": Path("/h")}
    args.update(kw)
    return select_providers(**args)  # type: ignore[arg-type]


def _names(providers: list) -> list[str]:
    return [p if isinstance(p, str) else p[0] for p in providers]


# -- provider selection --------------------------------------------------------------------------------------
def test_default_order_on_cuda_is_trt_cuda_coreml_openvino_cpu() -> None:
    assert _names(_select(device="cuda")) == [TRT, CUDA, "CoreMLExecutionProvider", "OpenVINOExecutionProvider", CPU]


def test_default_order_on_cpu_never_picks_a_gpu_provider() -> None:
    assert _names(_select(device="cpu")) == ["CoreMLExecutionProvider", "OpenVINOExecutionProvider", CPU]


def test_default_order_is_filtered_to_what_is_installed() -> None:
    assert _names(_select(device="cuda", available=["AzureExecutionProvider", CPU])) == [CPU]


def test_cuda_device_id_and_trt_cache_under_im_home_with_fp16() -> None:
    providers = dict(p for p in _select(device="cuda:1", home=Path("/im/home")) if not isinstance(p, str))
    assert providers[CUDA]["device_id"] == 1
    assert providers[TRT]["device_id"] == 1
    assert providers[TRT]["trt_engine_cache_enable"] is True
    assert providers[TRT]["trt_engine_cache_path"] == str(Path("/im/home/ort-trt-cache"))
    assert providers[TRT]["trt_fp16_enable"] is True
    no_fp16 = dict(p for p in _select(device="cuda", trt_fp16=False) if not isinstance(p, str))
    assert no_fp16[TRT]["trt_fp16_enable"] is False


def test_explicit_list_with_options_tuple_wins_and_cpu_is_appended() -> None:
    out = _select(device="cuda:0", requested=[("CUDAExecutionProvider", {"gpu_mem_limit": 123})])
    assert _names(out) == [CUDA, CPU]
    assert out[0][1] == {
        "device_id": 0,
        "cudnn_conv_algo_search": "HEURISTIC",
        "arena_extend_strategy": "kSameAsRequested",
        "gpu_mem_limit": 123,
    }


def test_explicit_provider_that_is_not_installed_is_an_error() -> None:
    with pytest.raises(InvalidParameterError, match="not in this onnxruntime"):
        _select(requested=["CUDAExecutionProvider"], available=[CPU])


def test_configured_default_from_im_onnx_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IM_ONNX_PROVIDERS", "OpenVINOExecutionProvider, CPUExecutionProvider")
    configured = reload_settings().onnx_execution_providers
    assert _names(_select(configured=configured)) == ["OpenVINOExecutionProvider", CPU]
    # configured names this onnxruntime lacks are skipped, not fatal (the env var is machine-wide)
    assert _names(_select(configured=configured, available=[CPU])) == [CPU]


def test_incompatible_providers_are_excluded() -> None:
    assert _names(_select(device="cuda", excluded=[TRT])) == [
        CUDA,
        "CoreMLExecutionProvider",
        "OpenVINOExecutionProvider",
        CPU,
    ]
    with pytest.raises(InvalidParameterError, match="No usable execution provider"):
        _select(available=[CPU], excluded=[CPU])


def test_im_onnx_providers_reaches_a_real_session(monkeypatch: pytest.MonkeyPatch, reference_onnx: Callable) -> None:
    monkeypatch.setenv("IM_ONNX_PROVIDERS", "CPUExecutionProvider")
    reload_settings()
    session = OnnxBackend().load(reference_onnx(), device="cpu")
    assert session.providers == (CPU,)


# -- load options --------------------------------------------------------------------------------------------
def test_unknown_option_is_invalid_parameter(reference_onnx: Callable) -> None:
    with pytest.raises(InvalidParameterError, match="Unknown ONNX backend option"):
        OnnxBackend().load(reference_onnx(), device="cpu", nonsense=1)


def test_session_options_are_applied(reference_onnx: Callable) -> None:
    session = OnnxBackend().load(
        reference_onnx(), device="cpu", intra_op_num_threads=2, graph_optimization_level="basic", allow_spinning=False
    )
    so = session._session.get_session_options()
    assert so.intra_op_num_threads == 2
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.parametrize(
    ("key", "value"), [("graph_optimization_level", "max"), ("intra_op_num_threads", -1), ("allow_spinning", "no")]
)
def test_bad_session_option_values(reference_onnx: Callable, key: str, value: object) -> None:
    with pytest.raises(InvalidParameterError):
        OnnxBackend().load(reference_onnx(), device="cpu", **{key: value})


def test_cuda_device_without_gpu_provider_is_refused(reference_onnx: Callable) -> None:
    with pytest.raises(InvalidParameterError, match="runs on a GPU"):
        OnnxBackend().load(reference_onnx(), device="cuda")


def test_corrupt_file_is_model_loading_error(tmp_path: Path) -> None:
    bad = tmp_path / "weights.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a graph")
    with pytest.raises(ModelLoadingError, match=r"could not load weights\.onnx"):
        OnnxBackend().load(bad, device="cpu")


# -- shapes and dtypes ---------------------------------------------------------------------------------------
def test_dynamic_shape_detection(reference_onnx: Callable) -> None:
    dynamic = OnnxBackend().load(reference_onnx("dynamic"), device="cpu")
    static = OnnxBackend().load(reference_onnx("static1"), device="cpu")
    assert dynamic.inputs[0].shape == (None, 3, 8, 8) and dynamic.inputs[0].dynamic_axes == (0,)
    assert not dynamic.batch_limits.static
    assert static.inputs[0].shape == (1, 3, 8, 8) and static.batch_limits.static


def test_package_batch_range_caps_dynamic_chunks(reference_onnx: Callable) -> None:
    package = ModelPackage(package_id="p", backend="onnx", batch=BatchSpec(dynamic=True, min=1, max=4))
    session = OnnxBackend().load(reference_onnx(), device="cpu", package=package)
    assert session.batch_limits.max == 4
    x = reference_inputs(9)
    np.testing.assert_allclose(session.run({"images": x})["logits"], reference_forward(x)["logits"], rtol=1e-5)


def test_fp16_graph_inputs_are_cast(tmp_path: Path) -> None:
    session = OnnxBackend().load(build_fp16_identity(tmp_path / "fp16.onnx"), device="cpu")
    assert session.inputs[0].dtype == "float16"
    out = session.run({"x": np.array([[1.5, -2.0]], dtype=np.float32)})["y"]
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, [[1.5, -2.0]])


def test_torch_tensor_inputs_on_cpu(reference_onnx: Callable) -> None:
    torch = pytest.importorskip("torch")
    x = reference_inputs(2)
    out = OnnxBackend().load(reference_onnx(), device="cpu").run({"images": torch.from_numpy(x)})
    assert isinstance(out["pooled"], np.ndarray)
    np.testing.assert_allclose(out["pooled"], reference_forward(x)["pooled"], rtol=1e-5, atol=1e-6)


# -- probe and check -----------------------------------------------------------------------------------------
def test_probe_reports_version_providers_and_max_opset_from_ort() -> None:
    probe = OnnxBackend().probe()
    assert probe.available and probe.version == ort.__version__
    assert probe.details["providers"] == ort.get_available_providers()
    top = probe.details["max_opset"]
    assert top == max_opset() and top >= 17
    # the value really is ORT's ceiling: top loads, top + 1 does not
    ort.InferenceSession(identity_model(top), providers=[CPU])
    so = ort.SessionOptions()
    so.log_severity_level = 4
    with pytest.raises(Exception, match=r"(?i)opset|version"):
        ort.InferenceSession(identity_model(top + 1), sess_options=so, providers=[CPU])


def test_hand_encoded_identity_model_is_valid_onnx() -> None:
    import onnx

    model = onnx.load_from_string(identity_model(13))
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Identity"] and model.opset_import[0].version == 13


def _probe(**details: object) -> BackendProbe:
    base = {"providers": [CPU], "max_opset": 21}
    base.update(details)
    return BackendProbe("onnx", True, "1.18.0", ("cpu",), base)


def _package(**onnx: object) -> ModelPackage:
    return ModelPackage(package_id="p", backend="onnx", requirements=onnx)


def test_check_rejects_too_new_opset_in_words() -> None:
    verdict = OnnxBackend().check(_package(opset=23), _probe(), "cpu")
    assert not verdict.ok
    assert verdict.reason == "needs opset 23; onnxruntime 1.18.0 supports up to 21 (upgrade onnxruntime)"


def test_check_rejects_cuda_without_cuda_provider() -> None:
    verdict = OnnxBackend().check(_package(), _probe(), "cuda")
    assert not verdict.ok
    assert (
        "device cuda requested but onnxruntime 1.18.0 has no CUDAExecutionProvider (install onnxruntime-gpu)"
        in verdict.reason
    )


def test_check_rejects_cuda_provider_without_gpu() -> None:
    verdict = OnnxBackend().check(_package(), _probe(providers=[CUDA, CPU]), "cuda:0")
    assert not verdict.ok and "no such NVIDIA GPU" in verdict.reason


def test_check_incompatible_providers() -> None:
    gpu = BackendProbe("onnx", True, "1.20.0", ("cpu", "cuda:0"), {"providers": [TRT, CUDA, CPU], "max_opset": 21})
    assert OnnxBackend().check(_package(incompatible_providers=(TRT,)), gpu, "cuda").ok
    verdict = OnnxBackend().check(_package(incompatible_providers=(TRT, CUDA)), gpu, "cuda:0")
    assert not verdict.ok and "incompatible" in verdict.reason


def test_check_accepts_with_rank_hints_and_rejects_odd_devices() -> None:
    backend = OnnxBackend()
    assert backend.check(_package(opset=17), _probe(), "cpu") == backend.check(_package(opset=17), _probe(), "cpu")
    low, high = (backend.check(_package(opset=o), _probe(), "cpu") for o in (11, 17))
    assert low.ok and high.ok and high.rank > low.rank
    assert not backend.check(_package(), _probe(), "tpu").ok
    unavailable = BackendProbe("onnx", False, reason="onnxruntime is not installed")
    assert "not installed" in backend.check(_package(), unavailable, "cpu").reason


# -- inspect -------------------------------------------------------------------------------------------------
def test_inspect_returns_custom_metadata_props(tmp_path: Path) -> None:
    from .conftest import build_reference_onnx

    meta = {"task": "detect", "names": "{0: 'person', 1: 'car'}", "imgsz": "[640, 640]", "stride": "32"}
    path = build_reference_onnx(tmp_path / "m.onnx", metadata=meta)
    assert OnnxBackend().inspect(path) == meta
    header = read_model_header(path)
    assert header.opsets == {"": 17} and header.ir_version == 8


@pytest.mark.weights
def test_inspect_real_ultralytics_export(asset: Callable[[str], Path]) -> None:
    meta = OnnxBackend().inspect(asset("yolo/nudenet_320n.onnx"))
    assert meta["task"] == "detect" and meta["imgsz"] == "[320, 320]" and meta["stride"] == "32"
    assert "FACE_FEMALE" in meta["names"]


def test_inspect_garbage_is_corrupted_package(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff\xff")
    with pytest.raises(CorruptedModelPackageError):
        OnnxBackend().inspect(bad)


# -- dependencies --------------------------------------------------------------------------------------------
def test_missing_onnxruntime_is_missing_dependency(monkeypatch: pytest.MonkeyPatch, reference_onnx: Callable) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    backend = OnnxBackend()
    probe = backend.probe()
    assert not probe.available and "pip install" in (probe.reason or "")
    with pytest.raises(MissingDependencyError, match="onnxruntime"):
        backend.load(reference_onnx(), device="cpu")


def test_manifest_declares_the_backends_facts_and_its_requirement_model() -> None:
    from im_backend_onnx import OnnxRequirements
    from im_backend_onnx._plugin import MANIFEST
    from im_core import registry

    assert registry().backends["onnx"] == MANIFEST
    assert dict(MANIFEST.file_suffixes) == {".onnx": None} and MANIFEST.weights_files == ("weights.onnx", "model.onnx")
    assert MANIFEST.aliases == ("onnxruntime",)
    assert type(registry().requirements(_package(opset=17))) is OnnxRequirements
    block = {"opset": 17, "incompatible_providers": ["TensorrtExecutionProvider"]}  # as the wire parser writes it
    read = OnnxRequirements.of(ModelPackage(package_id="p", backend="onnx", requirements=block))
    assert read.incompatible_providers == ("TensorrtExecutionProvider",) and read.opset == 17


def test_plugin_and_package_imports_do_not_import_onnxruntime() -> None:
    code = (
        "import sys, im_core, im_backend_onnx._plugin, im_backend_onnx, im_backend_onnx._backend;"
        "bad=[m for m in ('onnxruntime','torch','tensorrt','tensorrt_lean') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(("cpus", "expected"), [(1, "0"), (2, "0"), (4, "0"), (8, ""), (64, "")])
def test_spinning_is_off_by_default_on_a_small_cpu(
    reference_onnx: Callable, monkeypatch: pytest.MonkeyPatch, cpus: int, expected: str
) -> None:
    import im_backend_onnx._backend as backend

    monkeypatch.setattr(backend, "usable_cpus", lambda: cpus)
    so = OnnxBackend().load(reference_onnx(), device="cpu")._session.get_session_options()
    if expected:
        assert so.get_session_config_entry("session.intra_op.allow_spinning") == expected
    else:  # left to ORT's default (on)
        with pytest.raises(RuntimeError, match="does not have configuration"):
            so.get_session_config_entry("session.intra_op.allow_spinning")
    forced = OnnxBackend().load(reference_onnx(), device="cpu", allow_spinning=True)._session.get_session_options()
    assert forced.get_session_config_entry("session.intra_op.allow_spinning") == "1"
