"""The ``trt`` backend plugin: probe, package checks and loading ``engine.plan`` files.

Nothing here creates a TensorRT ``Runtime`` before cuda-python has confirmed a usable GPU (see ``_trt``).
For tests, the TensorRT module, the CUDA runtime bindings and the GPU list can be injected: the same code paths then
run against fakes on a CPU-only machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from im_backend_trt._cuda import CudaRuntime
from im_backend_trt._requirements import TrtRequirements, normalize_gpu_name
from im_backend_trt._session import TrtSession
from im_backend_trt._trt import capturing_logger, gpu_count, import_cudart, import_trt
from im_core import BackendBase, BackendProbe, Device, ModelPackage, Verdict
from im_core.errors import (
    CorruptedModelPackageError,
    InvalidParameterError,
    MissingDependencyError,
    ModelRuntimeError,
)

__all__ = ["LOAD_OPTIONS", "TrtBackend"]

#: options ``load`` understands (anything else raises ``InvalidParameterError``)
LOAD_OPTIONS = frozenset(
    {
        "engine_host_code_allowed",  # let version-compatible plans run their embedded lean runtime (default: trusted)
        "cuda_graph",  # replay a captured CUDA graph per input shape (cuda-python memory only)
        "memory",  # "auto" (torch when installed, else cuda-python) | "torch" | "cuda-python"
    }
)


def _release(version: str | None) -> tuple[int, ...]:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version or "0").release
    except InvalidVersion:
        return (0,)


class TrtBackend(BackendBase):
    """The ``trt`` backend plugin.

    Args:
        trt_module: a TensorRT module (``tensorrt``/``tensorrt_lean``/a fake) instead of importing one.
        flavour: ``full``, ``lean`` or ``dispatch`` for an injected module.
        cudart: CUDA runtime bindings (``cuda.bindings.runtime`` or a fake) instead of importing them.
        gpus: ``() -> [GpuInfo]`` instead of ``im_core.sdk.detect_gpus`` (names, compute capabilities).
        host: the machine facts the probe reports (``driver_version``, ``cuda_version``, ``os_version``, ``jetson``,
            ``l4t_version``) instead of reading them from this machine.
    """

    name = "trt"
    display_name = "TensorRT"
    load_options = LOAD_OPTIONS

    def __init__(
        self,
        *,
        trt_module: Any = None,
        flavour: str = "full",
        cudart: Any = None,
        gpus: Callable[[], Sequence[Any]] | None = None,
        host: Mapping[str, Any] | None = None,
    ) -> None:
        self._trt = (trt_module, flavour) if trt_module is not None else None
        self._cudart = cudart
        self._gpus = gpus
        self._host_facts = None if host is None else dict(host)
        super().__init__()

    def _import_trt(self) -> tuple[Any, str]:
        return self._trt if self._trt is not None else import_trt()

    def _import_cudart(self) -> Any:
        return self._cudart if self._cudart is not None else import_cudart()

    def _gpu_list(self) -> list[Any]:
        if self._gpus is not None:
            return list(self._gpus())
        from im_core.sdk import detect_gpus

        return list(detect_gpus()[0])

    def _host(self) -> dict[str, Any]:
        """Driver, CUDA, OS, Jetson product and L4T release of this machine (ranking and Jetson checks)."""
        if self._host_facts is not None:
            return dict(self._host_facts)
        from im_core.sdk import detect_gpus

        _, driver, cuda = detect_gpus()
        return {
            "driver_version": driver,
            "cuda_version": cuda,
            "os_version": _os_version(),
            "jetson": _jetson_product(),
            "l4t_version": _l4t_version(),
        }

    # -- probe -----------------------------------------------------------------------------------------------------
    def _do_probe(self) -> BackendProbe:
        """TensorRT version and flavour, GPU names and compute capabilities, driver/CUDA/OS/Jetson facts;
        unavailable (with why) without a GPU."""
        try:
            trt, flavour = self._import_trt()
            cudart = self._import_cudart()
        except MissingDependencyError as exc:
            return BackendProbe("trt", False, reason=exc.message)
        version = str(getattr(trt, "__version__", "unknown"))
        count, why = gpu_count(cudart)
        gpus = self._gpu_list()
        details: dict[str, Any] = {
            "flavour": flavour,
            "lean": flavour != "full",
            "builder": hasattr(trt, "Builder"),
            "cuda_devices": count,
            "gpus": [{"index": g.index, "name": g.name, "compute_capability": g.compute_capability} for g in gpus],
            **self._host(),
        }
        if count == 0:
            return BackendProbe("trt", False, version, (), details, reason=f"no usable NVIDIA GPU: {why}")
        return BackendProbe("trt", True, version, tuple(f"cuda:{i}" for i in range(count)), details)

    # -- check -----------------------------------------------------------------------------------------------------
    def check(
        self,
        package: ModelPackage,
        probe: BackendProbe,
        device: Device | str,
        options: Mapping[str, Any] | None = None,
    ) -> Verdict:
        """Judge the package's requirements (:class:`TrtRequirements`) against the installed TensorRT and the GPU;
        reasons in words.

        ``options`` are the session options of the load (``engine_host_code_allowed``: default whether the package
        is trusted, as the loader decides), so negotiation never picks a plan that ``load`` would then refuse.
        Accepted plans carry ranking hints (larger is better), after the reference's tie-breakers: an exact TensorRT
        build before a version-compatible one, a GPU-specific build before a same-compute-capability one, built for
        this very GPU, the closest CUDA and TensorRT versions, the widest batch profile, the lean runtime embedded,
        then the Jetson product, OS, L4T release and driver of the build machine matching this one.
        """
        if not probe.available:
            return Verdict.reject(f"TensorRT is not usable: {probe.reason}")
        try:
            device = Device.parse(device)
        except InvalidParameterError as exc:
            return Verdict.reject(f"TensorRT engines run only on NVIDIA GPUs: {exc.message}")
        if not device.is_cuda:
            return Verdict.reject(f"TensorRT engines run only on NVIDIA GPUs; device {device} requested")
        index = device.index
        gpus = {g["index"]: g for g in probe.details.get("gpus", [])}
        if device not in probe.device_values():
            return Verdict.reject(f"device {device} requested but TensorRT sees {len(probe.devices)} GPU(s)")
        gpu = gpus.get(index, {})
        if not package.requirements:
            return Verdict.accept(0.0)  # nothing declared: loading will tell (a mismatched plan fails to deserialise)
        req = TrtRequirements.of(package)
        details = probe.details
        installed, flavour = _release(probe.version), details.get("flavour", "full")
        if req.machine_type == "jetson":
            why = _jetson_reason(req, details.get("l4t_version"))
            if why:
                return Verdict.reject(why)
        cc, name = gpu.get("compute_capability"), gpu.get("name")
        if req.compute_capability and cc and _release(req.compute_capability) != _release(cc):
            return Verdict.reject(
                f"engine built for compute capability {req.compute_capability}; this GPU ({name}) is {cc}"
            )
        wanted, here = normalize_gpu_name(req.device_name), normalize_gpu_name(name)
        exact = bool(wanted and here and wanted == here)
        if wanted and here and not exact and not req.same_cc_compatible:
            return Verdict.reject(
                f"engine built for {req.device_name} without same-compute-capability compatibility; this GPU is {name}"
            )
        if req.trt_version:
            built = _release(req.trt_version)
            if req.forward_compatible:
                if installed < built:
                    return Verdict.reject(
                        f"engine built with TensorRT {req.trt_version}; installed {probe.version} is older "
                        "(version-compatible engines run only on the same or a newer TensorRT)"
                    )
                if req.lean_runtime_excluded and installed[:3] != built[:3]:
                    return Verdict.reject(
                        f"version-compatible engine built with TensorRT {req.trt_version} without its lean runtime "
                        f"needs TensorRT {'.'.join(map(str, built[:3]))}'s own runtime; the installed {probe.version} "
                        f"({flavour}) cannot run it (pick a package that embeds the lean runtime)"
                    )
            elif installed[:3] != built[:3]:
                return Verdict.reject(
                    f"engine built with TensorRT {req.trt_version} without version compatibility needs exactly "
                    f"TensorRT {'.'.join(map(str, built[:3]))}; found {probe.version}"
                )
        if flavour != "full" and not req.forward_compatible:
            return Verdict.reject(
                f"engine was not built VERSION_COMPATIBLE; the {flavour} runtime (tensorrt_{flavour}) runs only "
                "version-compatible plans (install the full tensorrt, or pick a version-compatible package)"
            )
        if flavour == "dispatch" and req.lean_runtime_excluded:
            return Verdict.reject(
                "engine excludes the lean runtime; tensorrt_dispatch can only run plans that embed it "
                "(install tensorrt-lean-cu13)"
            )
        if req.forward_compatible and not req.lean_runtime_excluded and not _host_code(options, package):
            return Verdict.reject(
                "version-compatible engine embeds a lean runtime that runs host code when deserialised, and "
                "engine_host_code_allowed is off"
                + ("" if package.trusted else " (the default for packages from untrusted sources)")
                + "; pass session_options={'engine_host_code_allowed': True} if you trust this plan"
            )
        batch = package.batch
        width = (batch.max - batch.min) if batch.dynamic and batch.max is not None else 0
        return Verdict.accept(
            float(not req.forward_compatible),
            float(not req.same_cc_compatible),
            float(exact),
            -_distance(req.cuda_version, details.get("cuda_version")),
            -_distance(req.trt_version, probe.version),
            float(width),
            float(not req.lean_runtime_excluded),
            _same(normalize_gpu_name(req.jetson_device_name), normalize_gpu_name(details.get("jetson"))),
            _same(_lower(req.os_version), _lower(details.get("os_version"))),
            _same(req.l4t_version, details.get("l4t_version")),
            _same(req.driver_version, details.get("driver_version")),
        )

    # -- load ------------------------------------------------------------------------------------------------------
    def load(
        self, path: Path, *, device: Device | str, package: ModelPackage | None = None, **options: Any
    ) -> TrtSession:
        """Deserialise ``path`` (an ``engine.plan``) on ``device`` (a CUDA :class:`im_core.Device`, or what
        ``Device.parse`` reads); see :data:`LOAD_OPTIONS`.

        Raises:
            ModelRuntimeError: no usable GPU (checked with cuda-python before TensorRT is touched).
            MissingDependencyError: TensorRT or cuda-python is not installed.
            CorruptedModelPackageError: TensorRT could not deserialise the plan (its log is quoted).
            InvalidParameterError: unknown option or device.
        """
        self.check_options(options)
        device = Device.parse(device)
        if not device.is_cuda:
            raise InvalidParameterError(f"TensorRT runs on CUDA devices ('cuda' or 'cuda:N'), not {str(device)!r}.")
        index = device.index or 0
        cudart = self._import_cudart()
        count, why = gpu_count(cudart)
        if count == 0:
            raise ModelRuntimeError(
                f"TensorRT needs an NVIDIA GPU and none is usable here ({why}). im does not create a TensorRT "
                "runtime without one (TensorRT crashes the process); use the onnx or torch backend on this machine."
            )
        if index >= count:
            raise InvalidParameterError(f"device {device} requested but only {count} CUDA device(s) exist.")
        trt, flavour = self._import_trt()
        memory = options.get("memory", "auto")
        if memory == "auto":
            import importlib.util

            memory = "torch" if importlib.util.find_spec("torch") is not None else "cuda-python"
        cuda = CudaRuntime(cudart, index)
        cuda.set_device()
        logger = capturing_logger(trt)
        logger.messages.clear()
        runtime = trt.Runtime(logger)
        runtime.engine_host_code_allowed = _host_code(options, package)
        engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if engine is None:
            log = " | ".join(logger.messages) or "TensorRT logged nothing"
            hint = (
                ""
                if runtime.engine_host_code_allowed
                else (
                    " If this is a trusted version-compatible plan with an embedded lean runtime, pass "
                    "engine_host_code_allowed=True."
                )
            )
            raise CorruptedModelPackageError(
                f"TensorRT {getattr(trt, '__version__', '?')} ({flavour}) could not deserialise {Path(path).name}: "
                f"{log}. Plans are tied to the TensorRT version and GPU they were built for.{hint}"
            )
        return TrtSession(
            trt=trt,
            runtime=runtime,
            engine=engine,
            cuda=cuda,
            device=device,
            memory=memory,
            cuda_graph=bool(options.get("cuda_graph", False)),
        )

    # -- inspect -----------------------------------------------------------------------------------------------------
    def inspect(self, path: Path) -> dict[str, str]:
        """Plans carry no readable metadata without a GPU; the sidecar ``trt_config.json`` (if next to it), as text."""
        sidecar = Path(path).with_name("trt_config.json")
        if sidecar.is_file():
            import json

            try:
                data = json.loads(sidecar.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                return {}
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
        return {}


def _host_code(options: Mapping[str, Any] | None, package: ModelPackage | None) -> bool:
    """Whether a plan may run host code (its embedded lean runtime): the option when given, else whether the
    package is trusted (the reference allows it by default and only trusted packages load by default); a plan
    loaded without a package (a bare file) only when asked."""
    value = (options or {}).get("engine_host_code_allowed")
    if value is None:
        return bool(package is not None and package.trusted)
    return bool(value)


def _distance(built: str | None, here: str | None) -> float:
    """How far two versions are apart (0 = same release; major differences weigh most); unknown = far."""
    if not built or not here:
        return 1e9 if built is None and here else 0.0
    a, b = _release(built), _release(here)
    a, b = (*a, 0, 0, 0)[:3], (*b, 0, 0, 0)[:3]
    return float(sum(abs(x - y) * w for x, y, w in zip(a, b, (1e6, 1e3, 1.0), strict=True)))


def _same(a: Any, b: Any) -> float:
    return float(a is not None and b is not None and a == b)


def _lower(text: str | None) -> str | None:
    return None if text is None else str(text).strip().lower()


def _jetson_reason(req: TrtRequirements, l4t: str | None) -> str | None:
    """A Jetson build needs its TensorRT version declared and the same L4T major.minor release as this machine."""
    if not req.trt_version:
        return "Jetson engine's package declares no TensorRT version; im cannot tell whether it runs here"
    if not req.l4t_version:
        return "Jetson engine's package declares no L4T version; im cannot tell whether it runs here"
    if not l4t:
        return (
            f"engine built for Jetson L4T {req.l4t_version}, but this machine's L4T release is unknown (not a Jetson, "
            "or /etc/nv_tegra_release unreadable: set L4T_VERSION)"
        )
    if _release(req.l4t_version)[:2] != _release(l4t)[:2]:
        return f"engine built for Jetson L4T {req.l4t_version}; this machine runs L4T {l4t} (major.minor must match)"
    return None


def _os_version() -> str | None:
    """``<distribution>-<version>`` lower-cased from ``/etc/os-release`` (the form build machines declare)."""
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            data = dict(line.strip().split("=", 1) for line in fh if "=" in line)
        return f"{data['NAME'].strip(chr(34))}-{data['VERSION_ID'].strip(chr(34))}".lower()
    except (OSError, KeyError, ValueError):
        import platform

        return platform.platform().lower() or None


def _jetson_product() -> str | None:
    """The Jetson product (``JETSON_MODULE``, else the device tree's model), normalised; ``None`` off Jetson."""
    model = os.environ.get("JETSON_MODULE")
    if not model:
        try:
            with open("/proc/device-tree/model", encoding="utf-8", errors="replace") as fh:
                model = fh.read().strip("\x00 \n")
        except OSError:
            return None
        if "jetson" not in model.lower():
            return None
    return normalize_gpu_name(model)


def _l4t_version() -> str | None:
    """The L4T release (``L4T_VERSION``, else ``/etc/nv_tegra_release``: ``# R36 (release), REVISION: 4.3`` →
    ``36.4.3``); ``None`` off Jetson."""
    declared = os.environ.get("L4T_VERSION")
    if declared:
        return declared.strip()
    try:
        with open("/etc/nv_tegra_release", encoding="utf-8", errors="replace") as fh:
            head = fh.readline()
    except OSError:
        return None
    match = re.search(r"R(\d+).*REVISION:\s*([\d.]+)", head)
    return f"{match.group(1)}.{match.group(2)}" if match else None
