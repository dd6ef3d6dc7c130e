"""Building a TensorRT engine from ONNX with the full builder (``tensorrt.Builder`` + ``OnnxParser``).

The lean/dispatch runtimes have no builder; the full TensorRT libraries come from NVIDIA's package index (not PyPI)
and building needs a GPU of the target architecture. The result is a package folder: ``engine.plan`` plus
``trt_config.json`` (Roboflow's keys ``static_batch_size`` or ``dynamic_batch_size_min/opt/max``, and what the
engine needs: TensorRT version, compute capability, GPU name, compatibility flags).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from im_backend_trt._trt import capturing_logger, gpu_count, import_cudart, import_trt
from im_core.errors import (
    CorruptedModelPackageError,
    InvalidParameterError,
    MissingDependencyError,
    ModelRuntimeError,
)

__all__ = ["BuildOptions", "build_engine"]


@dataclass(frozen=True)
class BuildOptions:
    """How to build.

    Attributes:
        min_batch / opt_batch / max_batch: the optimisation profile's batch range (dynamic-batch ONNX only).
        spatial: ``(height, width)`` for inputs whose H/W are dynamic (fixed in the profile).
        workspace_gib: builder workspace memory limit, GiB.
        timing_cache: timing-cache file (read if present, written back); default under ``IM_HOME/trt-timing-cache``.
        version_compatible: ``BuilderFlag.VERSION_COMPATIBLE`` (lean runtime and later TensorRT can run the plan).
        same_compute_capability: hardware compatibility level ``SAME_COMPUTE_CAPABILITY`` (any GPU of this sm).
        fp16: ``BuilderFlag.FP16`` — TensorRT 10 only (11 is strongly typed: export an fp16 ONNX instead).
    """

    min_batch: int = 1
    opt_batch: int | None = None
    max_batch: int = 16
    spatial: tuple[int, int] | None = None
    workspace_gib: float = 4.0
    timing_cache: Path | None = None
    version_compatible: bool = True
    same_compute_capability: bool = True
    fp16: bool = False


def _full_trt(trt: Any = None) -> Any:
    module, flavour = (trt, "injected") if trt is not None else import_trt()
    if not hasattr(module, "Builder") or not hasattr(module, "OnnxParser"):
        raise MissingDependencyError(
            f"`im trt build` needs the full TensorRT builder (tensorrt.Builder and OnnxParser), but the installed "
            f"TensorRT is the {flavour} runtime {getattr(module, '__version__', '?')}, which can only run engines. "
            "Install the full TensorRT with: pip install 'tensorrt-cu13>=11,<12' (its libraries are downloaded from "
            "NVIDIA's package index, pypi.nvidia.com, not from PyPI), on a machine with the target GPU.",
            distribution="tensorrt-cu13",
            extra="trt",
        )
    return module


def _profile_shape(shape: tuple[int, ...], batch: int, spatial: tuple[int, int] | None, name: str) -> tuple[int, ...]:
    out = [batch if i == 0 and d < 0 else d for i, d in enumerate(shape)]
    if any(d < 0 for d in out):
        if spatial is None or len(out) != 4:
            raise InvalidParameterError(
                f"Input {name} has dynamic dims {list(shape)} besides the batch: pass --shape HxW to fix them."
            )
        out[2], out[3] = (spatial[0] if out[2] < 0 else out[2]), (spatial[1] if out[3] < 0 else out[3])
    return tuple(out)


def build_engine(
    onnx_path: Path, out_dir: Path, options: BuildOptions = BuildOptions(), *, trt: Any = None, cudart: Any = None
) -> Path:
    """Build ``onnx_path`` into ``out_dir/engine.plan`` + ``out_dir/trt_config.json``; returns ``out_dir``.

    Raises:
        MissingDependencyError: only a lean/dispatch runtime (no builder) is installed.
        ModelRuntimeError: no GPU, or the build failed (TensorRT's log is quoted).
        CorruptedModelPackageError: the ONNX parser rejected the file.
    """
    trt = _full_trt(trt)
    count, why = gpu_count(cudart if cudart is not None else import_cudart())
    if count == 0:
        raise ModelRuntimeError(f"Building a TensorRT engine needs an NVIDIA GPU of the target architecture ({why}).")
    from im_core.sdk import detect_gpus, settings

    gpus = detect_gpus()[0]
    gpu = gpus[0] if gpus else None
    logger = capturing_logger(trt)
    logger.messages.clear()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 11: always strongly typed
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CorruptedModelPackageError(f"TensorRT's ONNX parser rejected {Path(onnx_path).name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gib * 2**30))
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    dynamic = any(int(d) < 0 for inp in inputs for d in inp.shape)
    opt = options.opt_batch or max(options.min_batch, min(options.max_batch, 8))
    batch_info: dict[str, Any]
    if dynamic:
        if not 1 <= options.min_batch <= opt <= options.max_batch:
            raise InvalidParameterError(
                f"Need 1 <= min <= opt <= max batch, got {options.min_batch}/{opt}/{options.max_batch}."
            )
        profile = builder.create_optimization_profile()
        for inp in inputs:
            shape = tuple(int(d) for d in inp.shape)
            profile.set_shape(
                inp.name,
                *(
                    _profile_shape(shape, b, options.spatial, inp.name)
                    for b in (options.min_batch, opt, options.max_batch)
                ),
            )
        config.add_optimization_profile(profile)
        batch_info = {
            "dynamic_batch_size_min": options.min_batch,
            "dynamic_batch_size_opt": opt,
            "dynamic_batch_size_max": options.max_batch,
        }
    else:
        batch_info = {"static_batch_size": int(inputs[0].shape[0]) if inputs else 1}
    cache_path = options.timing_cache or (
        settings().home
        / "trt-timing-cache"
        / f"{trt.__version__}-sm{gpu.compute_capability if gpu else 'unknown'}.cache"
    )
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.same_compute_capability:
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY
    if options.fp16:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise InvalidParameterError(
                f"TensorRT {trt.__version__} is strongly typed and has no FP16 flag: export the ONNX in fp16 instead."
            )
        config.set_flag(trt.BuilderFlag.FP16)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelRuntimeError(f"TensorRT failed to build the engine: {' | '.join(logger.messages) or 'no log'}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "engine.plan").write_bytes(bytes(plan))
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    trt_config = {
        **batch_info,
        "trt_version": trt.__version__,
        "compute_capability": gpu.compute_capability if gpu else None,
        "device_name": gpu.name if gpu else None,
        "version_compatible": options.version_compatible,
        "same_cc_compatible": options.same_compute_capability,
        "lean_runtime_excluded": False,
        "inputs": [{"name": i.name, "shape": [int(d) for d in i.shape]} for i in inputs],
        "source": Path(onnx_path).name,
    }
    (out_dir / "trt_config.json").write_text(json.dumps(trt_config, indent=2) + "\n", encoding="utf-8")
    return out_dir
