"""TensorRT negotiation as the reference's matcher and ranking decide it (issue 15 item 1).

Each test is written from the facts of the reference (roboflow/inference, ``inference_models``): its docstring names
the reference unit test whose case it mirrors (in ``tests/unit_tests/models/auto_loaders/test_auto_negotiation.py``
unless said otherwise). Runs against the real ``TrtBackend.check`` with the probe values the backend reports, the
real wire parser and the real negotiation (no tensorrt import).
"""

from __future__ import annotations

from typing import Any

import pytest

from im_backend_trt import TrtBackend
from im_core import BackendManifest, BackendProbe, BatchSpec, ModelEntry, ModelPackage, ModelsManifest
from im_core._negotiation import negotiate_packages
from im_core._plugins import PluginRegistry, registry
from im_providers import parse_model_metadata

H100 = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
L4 = {"index": 0, "name": "NVIDIA L4", "compute_capability": "8.9"}
ORIN = {"index": 0, "name": "Orin", "compute_capability": "8.7"}


def probe(
    version: str = "10.4.0",
    flavour: str = "full",
    gpus: tuple[dict[str, Any], ...] = (L4,),
    **host: Any,
) -> BackendProbe:
    details = {"flavour": flavour, "gpus": list(gpus), **host}
    return BackendProbe("trt", True, version, tuple(f"cuda:{g['index']}" for g in gpus), details)


def pkg(trusted: bool = True, batch: BatchSpec | None = None, **req: Any) -> ModelPackage:
    return ModelPackage(
        package_id="p", backend="trt", requirements=req, trusted=trusted, batch=batch or BatchSpec.static(1)
    )


def check(package: ModelPackage, p: BackendProbe, device: str = "cuda:0", **options: Any) -> Any:
    return TrtBackend().check(package, p, device, options=options or None)


SERVER = dict(trt_version="10.4.0", compute_capability="8.9", device_name="nvidia-l4", machine_type="gpu-server")
JETSON = dict(
    trt_version="10.3.0",
    compute_capability="8.7",
    device_name="orin",
    machine_type="jetson",
    l4t_version="36.4.0",
    jetson_device_name="nvidia-jetson-orin-nano",
)


# -- device compatibility ------------------------------------------------------------------------------------------
def test_normalised_gpu_name_matches_nvml_name_and_ranks_as_exact() -> None:
    """Mirrors test_verify_trt_package_compatibility_with_cuda_device_when_no_device_selected_and_no_cc_compatibility_
    and_there_is_a_match (and ranking.py's device-name match, compared as the reference spells names: lower case,
    spaces as dashes): ``nvidia-l4`` from the API is the ``NVIDIA L4`` NVML reports."""
    exact = check(pkg(**SERVER), probe())
    assert exact.ok
    same_cc = check(pkg(**{**SERVER, "device_name": "nvidia-l4-other", "same_cc_compatible": True}), probe())
    assert same_cc.ok and exact.rank > same_cc.rank
    # built same-CC compatible *on this very GPU*: still counted as a device-name match
    own = check(pkg(**{**SERVER, "same_cc_compatible": True}), probe())
    assert own.ok and own.rank[2] == 1.0 and same_cc.rank[2] == 0.0


def test_other_gpu_without_cc_compatibility_is_rejected() -> None:
    """Mirrors test_verify_trt_package_compatibility_with_cuda_device_when_no_device_selected_and_no_cc_compatibility_
    and_there_is_no_match and ..._for_server_when_selected_device_compatible_when_cc_compatibility_would_save_the_day_
    but_disabled."""
    v = check(pkg(**{**SERVER, "device_name": "nvidia-a10g", "compute_capability": "8.9"}), probe())
    assert not v.ok and "without same-compute-capability compatibility" in v.reason


def test_same_cc_compatibility_with_other_cc_is_rejected() -> None:
    """Mirrors test_verify_trt_package_compatibility_with_cuda_device_when_no_device_selected_and_cc_compatibility_and_
    there_is_no_match."""
    v = check(pkg(**{**SERVER, "compute_capability": "8.6", "same_cc_compatible": True}), probe())
    assert not v.ok and "compute capability 8.6" in v.reason


def test_same_cc_compatibility_saves_the_day() -> None:
    """Mirrors test_verify_trt_package_compatibility_with_cuda_device_when_no_device_selected_and_cc_compatibility_and_
    there_is_match and ..._for_server_when_selected_device_compatible_when_cc_compatibility_saves_the_day."""
    assert check(pkg(**{**SERVER, "device_name": "nvidia-a10g", "same_cc_compatible": True}), probe()).ok


def test_cpu_device_is_rejected() -> None:
    """Mirrors test_verify_trt_package_compatibility_with_cuda_device_when_cpu_device_selected and
    ..._for_server_when_package_excluded_by_choosing_cpu_device."""
    v = check(pkg(**SERVER), probe(), "cpu")
    assert not v.ok and "only on NVIDIA GPUs" in v.reason


def test_device_not_present_is_rejected() -> None:
    """Mirrors test_verify_trt_package_compatibility_with_cuda_device_when_not_matching_device_selected."""
    assert not check(pkg(**SERVER), probe(), "cuda:1").ok


def test_selected_device_decides_among_several_gpus() -> None:
    """Mirrors test_verify_trt_package_compatibility_with_cuda_device_when_strict_matching_device_selected and
    ..._when_cc_matching_device_selected_without_cc_compatibility: the GPU of ``device`` is the one compared."""
    gpus = (dict(H100), {**L4, "index": 1})
    assert check(pkg(**SERVER), probe(gpus=gpus), "cuda:1").ok
    assert not check(pkg(**SERVER), probe(gpus=gpus), "cuda:0").ok


def test_runtime_without_tensorrt_rejects() -> None:
    """Mirrors test_trt_package_matches_runtime_environment_when_trt_not_detected_in_env."""
    v = check(pkg(**SERVER), BackendProbe("trt", False, reason="tensorrt is not installed"))
    assert not v.ok and "not usable" in v.reason


# -- TensorRT version, forward compatibility, lean runtime, host code -----------------------------------------------
def test_version_mismatch_without_forward_compatibility_is_rejected() -> None:
    """Mirrors test_trt_package_matches_runtime_environment_for_server_when_no_trt_forward_compatibility_but_trt_
    version_missmatch."""
    v = check(pkg(**{**SERVER, "trt_version": "10.3.0"}), probe())
    assert not v.ok and "needs exactly TensorRT 10.3.0" in v.reason


def test_forward_compatible_plan_on_older_runtime_is_rejected() -> None:
    """Mirrors test_trt_package_matches_runtime_environment_for_server_when_trt_forward_compatibility_missmatch."""
    v = check(pkg(**{**SERVER, "trt_version": "10.5.0", "forward_compatible": True}), probe())
    assert not v.ok and "is older" in v.reason


def test_forward_compatibility_saves_the_day() -> None:
    """Mirrors test_trt_package_matches_runtime_environment_for_server_when_trt_forward_compatibility_saves_the_day."""
    assert check(pkg(**{**SERVER, "trt_version": "10.3.0", "forward_compatible": True}), probe()).ok


def test_forward_compatible_without_lean_runtime_on_newer_tensorrt_is_rejected() -> None:
    """Mirrors test_trt_package_matches_runtime_environment_for_server_when_trt_forward_compatibility_enabled_but_lean_
    runtime_excluded: a version-compatible plan that does not embed its lean runtime cannot run on a newer TensorRT
    (the lean runtime installed here is not the one it needs)."""
    req = {**SERVER, "trt_version": "10.3.0", "forward_compatible": True, "lean_runtime_excluded": True}
    for flavour in ("lean", "full"):
        v = check(pkg(**req), probe(flavour=flavour))
        assert not v.ok and "without its lean runtime" in v.reason
    assert check(pkg(**{**req, "trt_version": "10.4.0"}), probe(flavour="lean")).ok  # its own TensorRT runs it


def test_host_code_is_a_negotiation_input() -> None:
    """Mirrors test_trt_package_matches_runtime_environment_for_server_when_trt_forward_compatibility_enabled_but_
    unsafe_deserialisation_prevented: with host code forbidden the plan is rejected here, never picked and then
    refused by the loader; by default it is allowed for trusted packages (the reference's default True) and not for
    untrusted ones."""
    req = {**SERVER, "trt_version": "10.3.0", "forward_compatible": True}
    refused = check(pkg(**req), probe(), engine_host_code_allowed=False)
    assert not refused.ok and "engine_host_code_allowed" in refused.reason
    assert check(pkg(**req), probe()).ok
    untrusted = check(pkg(trusted=False, **req), probe())
    assert not untrusted.ok and "untrusted" in untrusted.reason
    assert check(pkg(trusted=False, **req), probe(), engine_host_code_allowed=True).ok


# -- Jetson ----------------------------------------------------------------------------------------------------------
def jetson_probe(**kw: Any) -> BackendProbe:
    return probe(**{"version": "10.3.0", "gpus": (ORIN,), "l4t_version": "36.4.3", **kw})


def test_jetson_matching_l4t_is_accepted_and_ranks_the_product_match() -> None:
    """Mirrors test_rank_model_packages_when_jetson_device_match_should_be_prioritised_correctly (test_ranking.py)."""
    same = check(pkg(**JETSON), jetson_probe(jetson="nvidia-jetson-orin-nano"))
    other = check(
        pkg(**{**JETSON, "jetson_device_name": "nvidia-jetson-agx-orin"}),
        jetson_probe(jetson="NVIDIA Jetson Orin Nano"),
    )
    assert same.ok and other.ok and same.rank > other.rank


def test_jetson_without_runtime_l4t_is_rejected() -> None:
    """Mirrors test_trt_package_matches_runtime_for_jetson_when_trt_version_not_declared_in_runtime_env (the runtime's
    L4T unknown: the reference refuses)."""
    v = check(pkg(**JETSON), jetson_probe(l4t_version=None))
    assert not v.ok and "L4T release is unknown" in v.reason


def test_jetson_l4t_mismatch_is_rejected() -> None:
    """Mirrors test_trt_package_matches_runtime_for_jetson_when_l4t_versions_missmatch (major.minor compared)."""
    v = check(pkg(**JETSON), jetson_probe(l4t_version="35.6.0"))
    assert not v.ok and "L4T 36.4.0" in v.reason
    assert check(pkg(**JETSON), jetson_probe(l4t_version="36.4.7")).ok  # the patch level does not matter


def test_jetson_trt_mismatch_is_rejected() -> None:
    """Mirrors test_trt_package_matches_runtime_for_jetson_when_trt_versions_missmatch."""
    assert not check(pkg(**JETSON), jetson_probe(version="10.7.0")).ok


def test_jetson_forward_compatibility() -> None:
    """Mirrors ..._for_jetson_when_trt_versions_missmatch_despite_forward_capability, ..._but_forward_capability_saves_
    the_day, ..._forward_capability_enabled_but_with_lean_runtime_excluded and ..._with_forward_capability_mode_but_
    without_permission_to_execute_host_code."""
    fc = {**JETSON, "forward_compatible": True}
    assert not check(pkg(**fc), jetson_probe(version="10.2.0")).ok
    assert check(pkg(**fc), jetson_probe(version="10.7.0")).ok
    assert not check(pkg(**fc, lean_runtime_excluded=True), jetson_probe(version="10.7.0")).ok
    assert not check(pkg(**fc), jetson_probe(version="10.7.0"), engine_host_code_allowed=False).ok


def test_jetson_device_mismatch_is_rejected_unless_cc_compatible() -> None:
    """Mirrors test_trt_package_matches_runtime_for_jetson_when_device_not_declared_but_does_not_match_available_by_type
    and ..._but_matches_through_cc_and_cc_compatibility_enabled."""
    other = {**JETSON, "device_name": "xavier"}
    assert not check(pkg(**other), jetson_probe()).ok
    assert check(pkg(**other, same_cc_compatible=True), jetson_probe()).ok


# -- ranking hints (test_ranking.py) ---------------------------------------------------------------------------------
def test_exact_tensorrt_build_before_forward_compatible() -> None:
    """Mirrors test_rank_model_packages_when_trt_forward_compatibility_should_be_prioritised_correctly."""
    exact = check(pkg(**SERVER), probe())
    fc = check(pkg(**{**SERVER, "forward_compatible": True}), probe())
    assert exact.rank > fc.rank


def test_closest_cuda_and_tensorrt_versions_first() -> None:
    """Mirrors test_rank_model_packages_when_cuda_rank_should_be_prioritised_correctly and ..._trt_rank_...: among
    compatible builds the versions closest to this machine's win (the reference orders by age; see docs)."""
    here = probe(cuda_version="12.6")
    near = check(pkg(**{**SERVER, "cuda_version": "12.6"}), here)
    far = check(pkg(**{**SERVER, "cuda_version": "11.8"}), here)
    assert near.rank > far.rank
    fc = {**SERVER, "forward_compatible": True}
    newer = check(pkg(**{**fc, "trt_version": "10.3.0"}), here)
    older = check(pkg(**{**fc, "trt_version": "10.0.1"}), here)
    assert newer.rank > older.rank


def test_wider_dynamic_profile_first() -> None:
    """Mirrors test_rank_model_packages_when_trt_dynamic_batch_size_should_be_prioritised_correctly."""
    wide = check(pkg(batch=BatchSpec(dynamic=True, min=1, max=32), **SERVER), probe())
    narrow = check(pkg(batch=BatchSpec(dynamic=True, min=1, max=8), **SERVER), probe())
    assert wide.rank > narrow.rank


def test_lean_runtime_included_first() -> None:
    """Mirrors test_rank_model_packages_when_trt_lean_runtime_excluded_should_be_prioritised_correctly."""
    fc = {**SERVER, "forward_compatible": True}
    included = check(pkg(**fc), probe())
    excluded = check(pkg(**fc, lean_runtime_excluded=True), probe())
    assert included.ok and excluded.ok and included.rank > excluded.rank


@pytest.mark.parametrize(
    ("field", "value", "host"),
    [
        ("os_version", "Ubuntu-22.04", {"os_version": "ubuntu-22.04"}),  # test_rank_..._os_version_match_...
        ("driver_version", "550.54.15", {"driver_version": "550.54.15"}),  # test_rank_..._driver_version_match_...
    ],
)
def test_build_machine_matches_rank_higher(field: str, value: str, host: dict[str, str]) -> None:
    """Mirrors test_rank_model_packages_when_os_version_match_should_be_prioritised_correctly and
    ..._driver_version_match_should_be_prioritised_correctly."""
    same = check(pkg(**{**SERVER, field: value}), probe(**host))
    other = check(pkg(**{**SERVER, field: "other"}), probe(**host))
    assert same.rank > other.rank


def test_l4t_exact_match_ranks_higher() -> None:
    """Mirrors test_rank_model_packages_when_l4t_version_match_should_be_prioritised_correctly."""
    same = check(pkg(**{**JETSON, "l4t_version": "36.4.3"}), jetson_probe())
    close = check(pkg(**JETSON), jetson_probe())
    assert same.ok and close.ok and same.rank > close.rank


# -- end to end: wire document → negotiation → TensorRT check ---------------------------------------------------------
class _ProbedTrt(TrtBackend):
    def __init__(self, fixed: BackendProbe) -> None:
        super().__init__()
        self._fixed = fixed

    def _do_probe(self) -> BackendProbe:
        return self._fixed


def _registry(p: BackendProbe) -> PluginRegistry:
    reg = PluginRegistry()
    reg.add(BackendManifest("trt", "fake:trt", "fake", priority=registry().backends["trt"].priority))
    reg._instances[("backend", "trt")] = _ProbedTrt(p)
    reg.add(
        ModelsManifest((ModelEntry(("yolov8",), "object-detection", "m:C", features=frozenset({"nms_fused"})),), "x")
    )
    return reg


def _manifest(**over: Any) -> dict[str, Any]:
    m = {
        "type": "trt-model-package-v1",
        "backendType": "trt",
        "dynamicBatchSize": False,
        "staticBatchSize": 1,
        "quantization": "fp16",
        "cudaDeviceType": "nvidia-l4",
        "cudaDeviceCC": "8.9",
        "cudaVersion": "12.6",
        "trtVersion": "10.4.0",
        "machineType": "gpu-server",
        "machineSpecs": {"type": "gpu-server-specs-v1", "driverVersion": "550.1", "osVersion": "ubuntu-22.04"},
    }
    m.update(over)
    return {k: v for k, v in m.items() if v is not None}


def _document(*manifests: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "modelId": "m/1",
        "modelArchitecture": "yolov8",
        "taskType": "object-detection",
        "modelPackages": [
            {"packageId": pid, "trustedSource": True, "packageFiles": [], "packageManifest": m} for pid, m in manifests
        ],
    }


def test_wire_to_negotiation_picks_the_engine_built_for_this_gpu() -> None:
    """Mirrors test_trt_package_matches_runtime_environment_for_server_when_selected_device_compatible: the API's
    ``nvidia-l4`` plan is accepted on an NVML ``NVIDIA L4`` and ranked above a same-CC build for another GPU."""
    doc = _document(
        ("exact", _manifest()),
        ("samecc", _manifest(cudaDeviceType="nvidia-a10g", sameCCCompatible=True)),
        ("nogpu", _manifest(cudaDeviceType=None, cudaDeviceCC=None)),
        ("notrt", _manifest(trtVersion=None)),
    )
    md = parse_model_metadata(doc, provider="roboflow")
    report = negotiate_packages(md, device="cuda", plugins=_registry(probe(cuda_version="12.6")))
    assert [v.package_id for v in report.ranked] == ["exact", "samecc"]
    reasons = {v.package_id: v.reason for v in report.verdicts if not v.accepted}
    assert "declares no GPU" in reasons["nogpu"] and "declares no trtVersion" in reasons["notrt"]


def test_negotiation_passes_session_options_to_the_check() -> None:
    """Mirrors ..._trt_forward_compatibility_enabled_but_unsafe_deserialisation_prevented through the negotiation:
    ``session_options={'engine_host_code_allowed': False}`` rejects the version-compatible plan in the report."""
    from im_core._negotiation import Filters, run_negotiation

    md = parse_model_metadata(_document(("vc", _manifest(trtVersion="10.3.0", trtForwardCompatible=True))))
    reg = _registry(probe())
    allowed = run_negotiation(md, Filters(), plugins=reg)
    assert [v.package_id for v in allowed.ranked] == ["vc"]
    refused = run_negotiation(md, Filters(backend_options={"engine_host_code_allowed": False}), plugins=reg)
    assert not refused.ranked and "engine_host_code_allowed" in (refused.verdicts[0].reason or "")
