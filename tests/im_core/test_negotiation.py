"""Table-driven negotiation over synthetic metadata and fake backends (the real backends have their own tests)."""

from dataclasses import dataclass

import pytest

from im_core import (
    BackendManifest,
    BackendProbe,
    BatchSpec,
    ModelEntry,
    ModelMetadata,
    ModelPackage,
    ModelsManifest,
    Verdict,
)
from im_core._negotiation import negotiate_packages, normalize_device
from im_core._plugins import PluginRegistry, registry
from im_core.errors import InvalidParameterError


@dataclass
class FakeBackend:
    name: str
    devices: tuple[str, ...] = ("cpu",)
    available: bool = True
    max_opset: int = 21

    def probe(self):
        return BackendProbe(self.name, self.available, "1.0", self.devices, reason=None if self.available else "absent")

    def check(self, package, probe, device):
        if str(device) not in probe.devices and device.kind not in probe.devices:
            return Verdict.reject(f"{self.name} cannot run on {device}")
        opset = package.requirements.get("opset")
        if opset and opset > self.max_opset:
            return Verdict.reject(f"needs opset {opset}; the runtime supports up to {self.max_opset}")
        return Verdict.accept(opset or 0)


def _registry(**backends):
    """Fake backends under the names of the installed ones, with the priorities those declare in their manifests."""
    installed = registry().backends
    reg = PluginRegistry()
    for name, backend in backends.items():
        reg.add(BackendManifest(name, f"fake:{name}", "fake", priority=installed[name].priority))
        reg._instances[("backend", name)] = backend
    reg.add(
        ModelsManifest((ModelEntry(("yolov8",), "object-detection", "m:C", features=frozenset({"nms_fused"})),), "x")
    )
    return reg


def _pkg(pid, backend="onnx", quant="fp32", batch=None, opset=None, trusted=True, features=None):
    return ModelPackage(
        package_id=pid,
        backend=backend,
        quantization=quant,
        batch=batch or BatchSpec.static(1),
        requirements={"opset": opset} if opset else {},
        trusted=trusted,
        features=features or {},
    )


def _meta(*packages, arch="yolov8"):
    return ModelMetadata(model_id="m/1", architecture=arch, task="object-detection", packages=packages)


CPU = _registry(onnx=FakeBackend("onnx"), torch=FakeBackend("torch"), trt=FakeBackend("trt", available=False))
GPU = _registry(
    onnx=FakeBackend("onnx", ("cpu", "cuda")),
    torch=FakeBackend("torch", ("cpu", "cuda")),
    trt=FakeBackend("trt", ("cuda",)),
)


@pytest.mark.parametrize(
    ("package", "kwargs", "reason"),
    [
        (_pkg("a"), {"model_package_id": "b"}, "not the requested package 'b'"),
        (_pkg("a", "torch"), {"backend": "onnx"}, "not among the requested ['onnx']"),
        (_pkg("a", trusted=False), {}, "untrusted source"),
        (_pkg("a"), {"batch_size": 4}, "static batch 1, but batch_size 4"),
        (_pkg("a", batch=BatchSpec(dynamic=True, min=1, max=8)), {"batch_size": (2, 16)}, "does not cover"),
        (_pkg("a", quant="fp16"), {}, "quantization fp16 is not allowed by default on cpu"),
        (_pkg("a", quant="int8"), {"quantization": ["fp16"]}, "quantization int8 is not requested"),
        (_pkg("a", opset=23), {}, "needs opset 23; the runtime supports up to 21"),
        (_pkg("a", "trt"), {}, "trt runtime unavailable: absent"),
        (_pkg("a", "coreml"), {}, "Unknown backend 'coreml'"),
        (_pkg("a", features={"exotic": {}}), {}, "does not support package features ['exotic']"),
        (_pkg("a", "torch"), {"device": "cuda"}, "torch cannot run on cuda:0"),
    ],
)
def test_each_rejection_reason_appears_in_the_report(package, kwargs, reason):
    report = negotiate_packages(_meta(package), plugins=CPU, **kwargs)
    assert report.selected is None
    assert reason in report.verdicts[0].reason
    assert reason in str(report)


def test_unknown_architecture_is_rejected_with_the_known_list():
    report = negotiate_packages(_meta(_pkg("a"), arch="nope"), plugins=CPU)
    assert "No installed model family implements architecture 'nope'" in report.verdicts[0].reason


def test_disabled_backends_from_the_environment(monkeypatch):
    from im_core._config import reload_settings

    monkeypatch.setenv("IM_DISABLED_BACKENDS", "onnx")
    reload_settings()
    report = negotiate_packages(_meta(_pkg("a"), _pkg("b", "torch")), plugins=CPU)
    assert report.selected.package_id == "b"
    assert "disabled by IM_DISABLED_BACKENDS" in report.verdicts[1].reason


def test_ranking_on_cpu_onnx_before_torch_then_quantization_then_dynamic_then_hints_then_id():
    meta = _meta(
        _pkg("t1", "torch"),
        _pkg("o-static", "onnx"),
        _pkg("o-dyn", "onnx", batch=BatchSpec(dynamic=True, min=1, max=None)),
        _pkg("o-int8", "onnx", quant="int8", batch=BatchSpec(dynamic=True, min=1, max=None)),
        _pkg("o-op17", "onnx", opset=17),
        _pkg("o-op12", "onnx", opset=12),
    )
    order = [v.package_id for v in negotiate_packages(meta, plugins=CPU).ranked]
    assert order == ["o-dyn", "o-op17", "o-op12", "o-static", "o-int8", "t1"]
    # deterministic: same answer whatever the package order in the metadata
    shuffled = _meta(*reversed(meta.packages))
    assert [v.package_id for v in negotiate_packages(shuffled, plugins=CPU).ranked] == order


def test_ties_are_broken_by_package_id():
    meta = _meta(_pkg("zeta"), _pkg("alpha"), _pkg("mid"))
    assert [v.package_id for v in negotiate_packages(meta, plugins=CPU).ranked] == ["alpha", "mid", "zeta"]


def test_on_cuda_trt_beats_onnx_beats_torch_and_fp16_is_allowed():
    meta = _meta(_pkg("t", "torch", quant="fp16"), _pkg("o", "onnx"), _pkg("r", "trt", quant="fp16"))
    report = negotiate_packages(meta, plugins=GPU, device="cuda")
    assert [v.package_id for v in report.ranked] == ["r", "o", "t"]
    assert all(v.device == "cuda:0" for v in report.ranked)


def test_an_explicit_package_id_is_still_checked_against_the_runtime():
    report = negotiate_packages(_meta(_pkg("a", opset=23), _pkg("b")), model_package_id="a", plugins=CPU)
    assert report.selected is None
    assert "needs opset 23" in report.verdicts[0].reason and "not the requested package" in report.verdicts[1].reason


def test_a_package_id_that_does_not_exist_is_reported():
    report = negotiate_packages(_meta(_pkg("a")), model_package_id="zz", plugins=CPU)
    assert report.selected is None and "does not exist" in report.requested["note"]


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": (4, 2)}, "batch_size"),
        ({"device": "gpu"}, "device"),
        ({"backend": []}, "backend must be"),
        ({"backend": 5}, "backend must be"),
        ({"quantization": 5}, "quantization must be"),
        ({"quantization": {"fp16": 1}}, "quantization must be"),
        ({"quantization": "int4"}, "int4 is not a known value; use one or a list of fp32, fp16, bf16, int8, unknown"),
        ({"quantization": ["fp16", "fp4"]}, "fp4 is not a known value"),
    ],
)
def test_invalid_filters_are_invalid_parameters(bad, match):
    with pytest.raises(InvalidParameterError, match=match):
        negotiate_packages(_meta(_pkg("a")), plugins=CPU, **bad)


def test_known_quantizations_are_accepted_in_any_case():
    report = negotiate_packages(_meta(_pkg("a", quant="fp16")), plugins=CPU, quantization=["FP16", "int8"])
    assert report.selected is not None and report.requested["quantization"] == ["fp16", "int8"]


@dataclass
class _BrokenBackend(FakeBackend):
    fails_in: str = "check"

    def probe(self):
        if self.fails_in == "probe":
            raise AttributeError("'NoneType' object has no attribute 'version'")
        return super().probe()

    def check(self, package, probe, device):
        if self.fails_in == "check":
            raise KeyError("opset")
        return super().check(package, probe, device)


@pytest.mark.parametrize(("step", "error"), [("probe", "AttributeError"), ("check", "KeyError")])
def test_a_backend_plugin_that_raises_rejects_its_packages_and_the_others_still_win(step, error):
    plugins = _registry(onnx=_BrokenBackend("onnx", fails_in=step), torch=FakeBackend("torch"))
    report = negotiate_packages(_meta(_pkg("a"), _pkg("b", "torch")), plugins=plugins)
    assert report.selected.package_id == "b"
    reason = next(v.reason for v in report.verdicts if v.package_id == "a")
    assert f"onnx backend plugin's {step}() failed unexpectedly ({error}" in reason


def test_device_normalisation():
    assert normalize_device("cuda") == "cuda:0" and normalize_device("CUDA:1") == "cuda:1"
    assert normalize_device(None) is None and normalize_device("cpu") == "cpu"


def test_report_serialises_and_prints(capsys):
    report = negotiate_packages(_meta(_pkg("a"), _pkg("b", trusted=False)), plugins=CPU)
    data = report.to_dict()
    assert data["packages"][0]["rank"] == 1 and data["packages"][1]["reason"]
    report.print()
    assert "selected" in capsys.readouterr().out
