"""The ``onnx`` backend plugin: probe, package checks, loading and file inspection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from im_backend_onnx._ort import import_ort, max_opset
from im_backend_onnx._providers import CUDA_EP, GPU_PROVIDERS, TRT_EP, default_order, select_providers
from im_backend_onnx._requirements import OnnxRequirements
from im_backend_onnx._session import OnnxSession, graph_optimization_level
from im_core import BackendBase, BackendProbe, BatchLimits, Device, ModelPackage, Verdict
from im_core.errors import CorruptedModelPackageError, InvalidParameterError, MissingDependencyError

__all__ = ["LOAD_OPTIONS", "OnnxBackend", "OnnxSession"]

#: options ``load`` understands (anything else raises ``InvalidParameterError``)
LOAD_OPTIONS = frozenset(
    {
        "onnx_execution_providers",  # names or (name, options) pairs, best first
        "intra_op_num_threads",  # threads inside one operator (ORT default: physical cores)
        "inter_op_num_threads",  # threads across operators (parallel execution mode only)
        "graph_optimization_level",  # "disable" | "basic" | "extended" | "all"
        "io_binding",  # keep outputs on the GPU (default: on for CUDA/TensorRT EPs)
        "trt_fp16",  # TensorRT EP builds fp16 engines (default True; TensorRT 10 only)
        "log_severity_level",  # ORT log level 0..4 (default 3 = errors)
        # Idle intra-op threads spin for a while (ORT's default: fastest for one small model alone on an idle CPU).
        # On a small CPU spinning threads take the cores that pre- and post-processing (OpenCV's threads), other
        # models and other processes need. Measured on 2 cores: two YOLOv8n-320 sessions alternating took 21 ms per
        # run with spinning vs 13.9 ms without (one alone: 12.0 vs 13.6 ms); on a loaded machine (issue 13)
        # model([8 images]) ran at 1.03-1.15x the raw ORT floor with spinning and 0.61-0.94x without, while one
        # image at a time went from 1.06-1.19x to 1.19-1.53x. Stopping the spinning only after each run
        # (session.force_spinning_stop) did not help (1.08-1.29x at batch 8). So the default is off where this
        # process may use at most SMALL_CPU_COUNT CPUs, ORT's own (on) elsewhere; allow_spinning=True/False
        # overrides it.
        "allow_spinning",
    }
)

#: at most this many usable CPUs: ORT's intra-op threads do not spin by default (see ``allow_spinning``)
SMALL_CPU_COUNT = 4


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    import os

    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


class OnnxBackend(BackendBase):
    """The ``onnx`` backend plugin (zero-argument; one instance per process, probe cached)."""

    name = "onnx"
    display_name = "ONNX"
    load_options = LOAD_OPTIONS

    # -- probe -------------------------------------------------------------------------------------------------
    @staticmethod
    def _do_probe() -> BackendProbe:
        """onnxruntime version, execution providers, max opset (asked from ORT itself) and devices."""
        try:
            ort = import_ort()
        except MissingDependencyError as exc:
            return BackendProbe("onnx", False, reason=exc.message)
        providers = tuple(ort.get_available_providers())
        devices = ["cpu"]
        gpus: list[str] = []
        if any(p in GPU_PROVIDERS for p in providers):
            from im_core.sdk import detect_gpus

            gpus = [f"cuda:{g.index}" for g in detect_gpus()[0]]
            devices += gpus
        details = {
            "providers": list(providers),
            "max_opset": max_opset(),
            "package": "onnxruntime-gpu" if CUDA_EP in providers else "onnxruntime",
            "default_providers_cpu": default_order(providers, Device("cpu")),
        }
        if gpus:
            details["default_providers_cuda"] = default_order(providers, Device("cuda"))
        return BackendProbe("onnx", True, ort.__version__, tuple(devices), details)

    # -- check -------------------------------------------------------------------------------------------------
    def check(self, package: ModelPackage, probe: BackendProbe, device: Device | str) -> Verdict:
        """Accept, or reject with a reason users can act on. Rank hint: (GPU EP used, opset)."""
        if not probe.available:
            return Verdict.reject(f"ONNX Runtime is not usable: {probe.reason}")
        try:
            device = Device.parse(device)
        except InvalidParameterError as exc:
            return Verdict.reject(f"not a device the ONNX backend can use: {exc.message}")
        req = OnnxRequirements.of(package)
        opset = req.opset
        top = probe.details.get("max_opset")
        if opset is not None and isinstance(top, int) and opset > top:
            return Verdict.reject(
                f"needs opset {opset}; onnxruntime {probe.version} supports up to {top} (upgrade onnxruntime)"
            )
        providers = list(probe.details.get("providers", []))
        excluded = set(req.incompatible_providers)
        if device.is_cuda:
            gpu_eps = [p for p in (TRT_EP, CUDA_EP) if p in providers]
            if not gpu_eps:
                return Verdict.reject(
                    f"device {device.kind} requested but onnxruntime {probe.version} has no CUDAExecutionProvider "
                    "(install onnxruntime-gpu)"
                )
            if device not in probe.device_values():
                return Verdict.reject(f"device {device} requested but no such NVIDIA GPU was found here")
            usable = [p for p in gpu_eps if p not in excluded]
            if not usable:
                return Verdict.reject(
                    f"package is incompatible with {sorted(excluded & set(gpu_eps))}, the only GPU execution "
                    f"providers of this onnxruntime"
                )
            return Verdict.accept(1.0, float(opset or 0))
        usable = [p for p in default_order(providers, Device("cpu")) if p not in excluded]  # cpu or mps
        if not usable:
            return Verdict.reject(f"package is incompatible with {sorted(excluded)}; no other provider here")
        if device.is_mps and "CoreMLExecutionProvider" not in usable:
            return Verdict.reject("device mps requested but onnxruntime has no CoreMLExecutionProvider")
        return Verdict.accept(0.0, float(opset or 0))

    # -- load --------------------------------------------------------------------------------------------------
    def load(
        self, path: Path, *, device: Device | str, package: ModelPackage | None = None, **options: Any
    ) -> OnnxSession:
        """Create a session for ``path`` on ``device`` (a :class:`im_core.Device`, or what ``Device.parse`` reads);
        see :data:`LOAD_OPTIONS`.

        Raises:
            InvalidParameterError: unknown option, bad value or not a device.
            ModelLoadingError: ORT refused the file.
            MissingDependencyError: onnxruntime is not installed.
        """
        self.check_options(options)
        device = Device.parse(device)
        ort = import_ort()
        from im_core.sdk import settings

        cfg = settings()
        excluded = OnnxRequirements.of(package).incompatible_providers if package is not None else ()
        providers = select_providers(
            device=device,
            available=ort.get_available_providers(),
            requested=options.get("onnx_execution_providers"),
            configured=cfg.onnx_execution_providers,
            home=cfg.home,
            excluded=excluded,
            trt_fp16=bool(options.get("trt_fp16", True)),
            known=ort.get_all_providers(),
        )
        if device.is_cuda and not any(_name(p) in GPU_PROVIDERS for p in providers):
            raise InvalidParameterError(
                f"device {device} requested but none of the execution providers {[_name(p) for p in providers]} "
                "runs on a GPU (install onnxruntime-gpu or pass onnx_execution_providers=['CUDAExecutionProvider'])."
            )
        if any(_name(p) == TRT_EP for p in providers):
            (cfg.home / "ort-trt-cache").mkdir(parents=True, exist_ok=True)
        so = _session_options(ort, options)
        limits = None
        if package is not None and package.batch.dynamic:
            limits = BatchLimits(min=package.batch.min, max=package.batch.max)
        return OnnxSession(
            Path(path),
            device=device,
            providers=providers,
            session_options=so,
            batch_limits=limits,
            io_binding=options.get("io_binding"),
        )

    # -- inspect -----------------------------------------------------------------------------------------------
    def inspect(self, path: Path) -> dict[str, str]:
        """The ONNX ``metadata_props`` of ``path`` (read from the protobuf header; no session is created).

        Raises:
            CorruptedModelPackageError: the file is not an ONNX model.
        """
        from im_backend_onnx._proto import read_model_header

        try:
            return dict(read_model_header(Path(path)).metadata)
        except (ValueError, OSError) as exc:
            raise CorruptedModelPackageError(f"{Path(path).name} is not a readable ONNX model: {exc}") from exc


def _name(spec: Any) -> str:
    return spec if isinstance(spec, str) else spec[0]


def _session_options(ort: Any, options: dict[str, Any]) -> Any:
    so = ort.SessionOptions()
    so.log_severity_level = int(options.get("log_severity_level", 3))
    for key in ("intra_op_num_threads", "inter_op_num_threads"):
        value = options.get(key)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidParameterError(f"{key}={value!r} must be an int >= 0 (0 = ORT's default).")
            setattr(so, key, value)
    spinning = options.get("allow_spinning")
    if spinning is None and usable_cpus() <= SMALL_CPU_COUNT:
        spinning = False  # a small CPU: spinning workers would take the cores pre/post-processing needs
    if spinning is not None:
        if not isinstance(spinning, bool):
            raise InvalidParameterError(f"allow_spinning={spinning!r} must be True or False.")
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    level = options.get("graph_optimization_level")
    if level is not None:
        so.graph_optimization_level = graph_optimization_level(ort, level)
    return so
