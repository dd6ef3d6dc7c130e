"""The ``trt`` backend plugin: probe, package checks and loading ``engine.plan`` files.

Nothing here creates a TensorRT ``Runtime`` before cuda-python has confirmed a usable GPU (see ``_trt``).
For tests, the TensorRT module, the CUDA runtime bindings and the GPU list can be injected: the same code paths then
run against fakes on a CPU-only machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from im_backend_trt._cuda import CudaRuntime
from im_backend_trt._requirements import TrtRequirements
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
        "engine_host_code_allowed",  # let version-compatible plans run their embedded lean runtime (trusted plans only)
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
    ) -> None:
        self._trt = (trt_module, flavour) if trt_module is not None else None
        self._cudart = cudart
        self._gpus = gpus
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

    # -- probe -----------------------------------------------------------------------------------------------------
    def _do_probe(self) -> BackendProbe:
        """TensorRT version and flavour, GPU names and compute capabilities; unavailable (with why) without a GPU."""
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
        }
        if count == 0:
            return BackendProbe("trt", False, version, (), details, reason=f"no usable NVIDIA GPU: {why}")
        return BackendProbe("trt", True, version, tuple(f"cuda:{i}" for i in range(count)), details)

    # -- check -----------------------------------------------------------------------------------------------------
    def check(self, package: ModelPackage, probe: BackendProbe, device: Device | str) -> Verdict:
        """Judge the package's requirements (:class:`TrtRequirements`) against the installed TensorRT and the GPU;
        reasons in words."""
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
        installed, flavour = _release(probe.version), probe.details.get("flavour", "full")
        if req.trt_version:
            built = _release(req.trt_version)
            if req.forward_compatible:
                if installed < built:
                    return Verdict.reject(
                        f"engine built with TensorRT {req.trt_version}; installed {probe.version} is older "
                        "(version-compatible engines run only on the same or a newer TensorRT)"
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
        cc, name = gpu.get("compute_capability"), gpu.get("name")
        if req.compute_capability and cc and req.compute_capability != cc:
            return Verdict.reject(
                f"engine built for compute capability {req.compute_capability}; this GPU ({name}) is {cc}"
            )
        exact = bool(req.device_name and name and req.device_name == name)
        if req.device_name and name and not exact and not req.same_cc_compatible:
            return Verdict.reject(
                f"engine built for {req.device_name} without same-compute-capability compatibility; this GPU is {name}"
            )
        return Verdict.accept(2.0 if exact else 1.0)

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
        runtime.engine_host_code_allowed = bool(options.get("engine_host_code_allowed", False))
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
