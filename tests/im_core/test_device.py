"""``Device``: parsed once where a device enters (argument, IM_DEFAULT_DEVICE, backend probes), passed down typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

import im_core
from im_core import (
    AutoModel,
    BackendManifest,
    BackendProbe,
    BatchLimits,
    BatchSpec,
    Device,
    FileSpec,
    ModelEntry,
    ModelMetadata,
    ModelPackage,
    ModelsManifest,
    ObjectDetectionModel,
    TensorSpec,
    Verdict,
)
from im_core._config import Settings, reload_settings
from im_core._negotiation import device_candidates, negotiate_packages
from im_core._plugins import PluginRegistry
from im_core.errors import InvalidParameterError


# -- parsing -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected", "text"),
    [
        ("cpu", Device("cpu"), "cpu"),
        (" CPU ", Device("cpu"), "cpu"),
        ("cuda", Device("cuda", 0), "cuda:0"),
        ("CUDA:1", Device("cuda", 1), "cuda:1"),
        ("cuda:12", Device("cuda", 12), "cuda:12"),
        ("mps", Device("mps"), "mps"),
        ("mps:0", Device("mps"), "mps"),
        ("cpu:0", Device("cpu"), "cpu"),
        (SimpleNamespace(type="cuda", index=1), Device("cuda", 1), "cuda:1"),  # a torch.device, duck-typed
        (SimpleNamespace(type="cuda", index=None), Device("cuda", 0), "cuda:0"),
        (SimpleNamespace(type="cpu", index=None), Device("cpu"), "cpu"),
        (SimpleNamespace(type="mps", index=None), Device("mps"), "mps"),
    ],
)
def test_good_values_parse_to_the_canonical_device(value: Any, expected: Device, text: str) -> None:
    device = Device.parse(value)
    assert device == expected and str(device) == text and device.torch_string == text


def test_a_device_parses_to_itself_and_the_value_is_frozen_and_hashable() -> None:
    device = Device("cuda", 1)
    assert Device.parse(device) is device
    assert {Device("cuda"), Device.parse("cuda:0"), Device("cuda", 0)} == {Device("cuda", 0)}
    with pytest.raises(AttributeError):
        device.index = 2  # type: ignore[misc]
    assert repr(device) == "Device('cuda', 1)" and repr(Device("cpu")) == "Device('cpu')"


def test_properties() -> None:
    cuda, cpu, mps = Device("cuda", 1), Device("cpu"), Device("mps")
    assert cuda.is_cuda and not cuda.is_cpu and cuda.index == 1 and cuda.kind == "cuda"
    assert cpu.is_cpu and not cpu.is_cuda and cpu.index is None
    assert mps.is_mps and mps.index is None


def test_device_is_exported_from_im_core() -> None:
    assert im_core.Device is Device and "Device" in im_core.__all__


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("gpu", id="gpu-string"),  # not the bare id "gpu": the conftest skips tests with that keyword
        "",
        "cuda:",
        "cuda:x",
        "cuda:-1",
        "cuda:1.0",
        "cuda:²",
        "cpu:1",
        "mps:1",
        "tpu:0",
        5,
        None,
        ["cuda"],
        SimpleNamespace(type="xpu", index=0),
        SimpleNamespace(type="cuda", index="1"),
    ],
)
def test_bad_values_are_invalid_parameters_naming_the_source_and_what_is_accepted(value: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        Device.parse(value, source="device= argument")
    message = info.value.message
    assert "device= argument" in message and repr(value) in message
    assert "'cpu', 'cuda', 'cuda:N'" in message and "'mps'" in message and "torch.device" in message


def test_direct_construction_is_validated() -> None:
    with pytest.raises(InvalidParameterError, match="not one of cpu, cuda, mps"):
        Device("gpu")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="int >= 0"):
        Device("cuda", -1)
    with pytest.raises(InvalidParameterError, match="has no index 2"):
        Device("cpu", 2)


def test_a_real_torch_device_parses_without_special_casing() -> None:
    torch = pytest.importorskip("torch")
    assert Device.parse(torch.device("cuda", 1)) == Device("cuda", 1)
    assert Device.parse(torch.device("cpu")) == Device("cpu")
    assert torch.device(Device("cuda", 1).torch_string) == torch.device("cuda", 1)


# -- where a device enters -----------------------------------------------------------------------------------------
def test_im_default_device_is_parsed_once_and_a_bad_one_names_the_variable() -> None:
    assert Settings.from_environ({"IM_HOME": "/x", "IM_DEFAULT_DEVICE": "CUDA:1"}).default_device == Device("cuda", 1)
    assert Settings.from_environ({"IM_HOME": "/x", "IM_DEFAULT_DEVICE": " "}).default_device is None
    assert Settings.from_environ({"IM_HOME": "/x"}).default_device is None
    with pytest.raises(InvalidParameterError) as info:
        Settings.from_environ({"IM_HOME": "/x", "IM_DEFAULT_DEVICE": "gpu"})
    assert "IM_DEFAULT_DEVICE environment variable" in info.value.message and "'gpu'" in info.value.message


def test_a_bad_device_argument_names_the_argument_before_any_work() -> None:
    # a model id that no provider could resolve here: the argument is refused before anything is looked up
    for call in (AutoModel.from_pretrained, AutoModel.negotiate):
        with pytest.raises(InvalidParameterError) as info:
            call("nobody/nothing", device="gpu")
        assert "device= argument" in info.value.message and "IM_DEFAULT_DEVICE" not in info.value.message


def test_the_default_device_from_the_environment_is_the_one_negotiated(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _RecordingBackend("onnx", ("cpu", "cuda:0", "cuda:1"))
    monkeypatch.setenv("IM_DEFAULT_DEVICE", "cuda:1")
    reload_settings()
    report = negotiate_packages(_meta(_pkg("a")), plugins=_registry(backend))
    assert report.device == "cuda:1" and report.selected.device == "cuda:1"
    assert report.selected.target == Device("cuda", 1) and backend.checked == [Device("cuda", 1)]


# -- auto device candidates from the backends' probes --------------------------------------------------------------
def test_candidates_are_every_device_the_available_backends_report_cuda_first() -> None:
    probes = [
        BackendProbe("onnx", True, "1", ("cpu", "cuda:0")),
        BackendProbe("torch", True, "2", ("cpu", "mps", "cuda:1", "cuda:0", "not-a-device")),
        BackendProbe("trt", False, None, ("cuda:7",), reason="no TensorRT"),  # unavailable: ignored
    ]
    assert device_candidates(probes) == [Device("cuda", 0), Device("cuda", 1), Device("cpu"), Device("mps")]
    assert device_candidates([]) == [Device("cpu")]
    assert probes[1].device_values() == (Device("cpu"), Device("mps"), Device("cuda", 1), Device("cuda", 0))


@dataclass
class _RecordingBackend:
    """A fake backend that runs on what its probe reports (or only on ``only``) and records every device it sees."""

    name: str
    devices: tuple[str, ...]
    only: tuple[str, ...] | None = None
    checked: list[Any] = field(default_factory=list)
    loaded: list[Any] = field(default_factory=list)
    load_options: frozenset[str] = frozenset({"threads"})

    def probe(self) -> BackendProbe:
        return BackendProbe(self.name, True, "1.0", self.devices)

    def check(self, package: ModelPackage, probe: BackendProbe, device: Device) -> Verdict:
        self.checked.append(device)
        allowed = self.only if self.only is not None else probe.devices
        return Verdict.accept() if str(device) in allowed else Verdict.reject(f"{self.name} cannot run on {device}")

    def load(self, path: Any, *, device: Device, package: ModelPackage | None = None, **options: Any) -> Any:
        self.loaded.append((device, options))
        spec = TensorSpec("x", (None, 3), "float32")
        return SimpleNamespace(
            backend=self.name, device=device, inputs=(spec,), outputs=(spec,), batch_limits=BatchLimits()
        )


def _registry(*backends: _RecordingBackend) -> PluginRegistry:
    reg = PluginRegistry()
    for backend in backends:
        reg.add(BackendManifest(backend.name, f"fake:{backend.name}", "tests"))
        reg._instances[("backend", backend.name)] = backend
    names = tuple(b.name for b in backends)
    reg.add(ModelsManifest((ModelEntry(("rec-arch",), "object-detection", f"{__name__}:_Family", names),), "tests"))
    return reg


def _pkg(pid: str, backend: str = "onnx") -> ModelPackage:
    return ModelPackage(
        package_id=pid, backend=backend, batch=BatchSpec.static(1), files=(FileSpec(name="weights.bin"),)
    )


def _meta(*packages: ModelPackage) -> ModelMetadata:
    return ModelMetadata(model_id="m/1", architecture="rec-arch", task="object-detection", packages=packages)


def test_with_no_device_every_reported_device_is_tried_cuda_first() -> None:
    """Two CUDA GPUs and an Apple GPU reported: a package that runs only on MPS is tried on cuda:0, cuda:1, the
    CPU, then MPS, and lands there; one that runs anywhere gets cuda:0 and ranks first."""
    mps_only = _RecordingBackend("torch", ("cpu", "cuda:0", "cuda:1", "mps"), only=("mps",))
    anywhere = _RecordingBackend("onnx", ("cpu", "cuda:0", "cuda:1"))
    report = negotiate_packages(_meta(_pkg("t", "torch"), _pkg("o", "onnx")), plugins=_registry(mps_only, anywhere))
    assert mps_only.checked == [Device("cuda", 0), Device("cuda", 1), Device("cpu"), Device("mps")]
    assert [(v.package_id, v.device) for v in report.ranked] == [("o", "cuda:0"), ("t", "mps")]
    assert report.device is None  # nothing asked for


def test_with_no_device_and_a_cpu_only_machine_the_cpu_is_the_only_candidate() -> None:
    backend = _RecordingBackend("onnx", ("cpu",))
    report = negotiate_packages(_meta(_pkg("a")), plugins=_registry(backend))
    assert backend.checked == [Device("cpu")] and report.selected.device == "cpu"


# -- from_pretrained -> backend: typed all the way -----------------------------------------------------------------
class _Family(ObjectDetectionModel):
    @classmethod
    def from_package(cls, ctx: Any) -> _Family:
        self = cls()
        self.ctx_device = ctx.device
        self.session = ctx.load_session("weights.bin")
        self.metadata = ctx.info()
        return self

    def pre_process(self, images: Any, **params: Any) -> Any:
        return images

    def forward(self, prepared: Any) -> Any:
        return prepared

    def post_process(self, raw: Any, prepared: Any, **params: Any) -> list[Any]:
        return []


@pytest.fixture
def recording(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[_RecordingBackend, Any]:
    """A local package folder whose metadata names the recording backends (the only ones installed)."""
    import im_core._auto as auto
    import im_core._plugins as plugins

    onnx = _RecordingBackend("onnx", ("cpu", "cuda:0", "cuda:1"))
    other = _RecordingBackend("torch", ("cpu",), load_options=frozenset({"onnx_like_option", "torch_threads"}))
    monkeypatch.setattr(plugins, "_registry", _registry(onnx, other))
    (tmp_path / "weights.bin").write_bytes(b"0")
    metadata = _meta(_pkg("a", "onnx"))
    monkeypatch.setattr(auto, "_metadata_for", lambda request: (metadata, None))
    return onnx, tmp_path


def test_from_pretrained_device_reaches_the_backend_as_a_device(recording: tuple[_RecordingBackend, Any]) -> None:
    backend, folder = recording
    model = AutoModel.from_pretrained(folder, device="cuda:1")
    assert backend.checked == [Device("cuda", 1)]
    assert backend.loaded[0][0] == Device("cuda", 1) and isinstance(backend.loaded[0][0], Device)
    assert model.ctx_device == Device("cuda", 1) and model.session.device == Device("cuda", 1)
    assert model.metadata.device == "cuda:1"  # what users read stays a string


def test_a_torch_device_argument_is_read_without_torch(recording: tuple[_RecordingBackend, Any]) -> None:
    backend, folder = recording
    AutoModel.from_pretrained(folder, device=SimpleNamespace(type="cuda", index=1))
    assert backend.loaded[0][0] == Device("cuda", 1)


def test_session_options_go_to_the_backend_that_declares_them(recording: tuple[_RecordingBackend, Any]) -> None:
    """Options another installed backend declares are left out; the chosen backend's own and unknown ones pass."""
    backend, folder = recording
    AutoModel.from_pretrained(folder, session_options={"threads": 2, "torch_threads": 1, "nonsense": 3})
    assert backend.loaded[0][1] == {"threads": 2, "nonsense": 3}


def test_onnx_execution_providers_is_a_session_option(recording: tuple[_RecordingBackend, Any]) -> None:
    backend, folder = recording
    AutoModel.from_pretrained(folder, onnx_execution_providers=["CPUExecutionProvider"])
    assert backend.loaded[0][1] == {"onnx_execution_providers": ["CPUExecutionProvider"]}
    with pytest.raises(InvalidParameterError, match="given twice"):
        AutoModel.from_pretrained(
            folder, onnx_execution_providers=["A"], session_options={"onnx_execution_providers": ["B"]}
        )


def test_a_device_compares_equal_to_its_canonical_string_for_plugins_written_for_strings() -> None:
    assert Device("cpu") == "cpu" and Device("cuda", 1) == "cuda:1"
    assert Device("cuda") != "cuda"  # only the canonical form
    assert Device("cuda", 1) != "cuda:0"
    assert {Device("cuda", 1): 1}["cuda:1"] == 1
    assert Device("cuda", 1) in {"cuda:1"}
