"""Choosing ONNX Runtime execution providers and their options for a device.

Order of precedence: an explicit ``onnx_execution_providers`` list, then ``IM_ONNX_PROVIDERS``
(``settings().onnx_execution_providers``), then what the installed onnxruntime offers, best first:
TensorRT EP, CUDA EP (GPU devices only), CoreML, OpenVINO, CPU. The CPU EP is always appended last as the fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from im_core import Device
from im_core.errors import InvalidParameterError

__all__ = ["GPU_PROVIDERS", "ProviderSpec", "default_order", "select_providers"]

#: one entry of ``providers=``: a name, or ``(name, options)``
ProviderSpec = str | tuple[str, dict[str, Any]]

TRT_EP, CUDA_EP, CPU_EP = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
GPU_PROVIDERS = (TRT_EP, CUDA_EP)
_PREFERENCE = (TRT_EP, CUDA_EP, "CoreMLExecutionProvider", "OpenVINOExecutionProvider", CPU_EP)
_ALIASES = {
    "tensorrt": TRT_EP,
    "trt": TRT_EP,
    "cuda": CUDA_EP,
    "cpu": CPU_EP,
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
}


def _name(spec: Any) -> str:
    if isinstance(spec, str):
        return _ALIASES.get(spec.strip().lower(), spec.strip())
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], dict):
        return _name(spec[0])
    raise InvalidParameterError(f"An execution provider must be a name or a (name, options dict) pair, got {spec!r}.")


def default_order(available: Iterable[str], device: Device) -> list[str]:
    """Providers of the installed onnxruntime worth using on ``device``, best first.

    GPU providers are used only for ``cuda`` devices (a CPU device must not silently run on a GPU).
    """
    avail = set(available)
    return [p for p in _PREFERENCE if p in avail and (device.is_cuda or p not in GPU_PROVIDERS)]


def _default_options(name: str, device: Device, home: Path, trt_fp16: bool) -> dict[str, Any]:
    if name == CUDA_EP:
        return {
            "device_id": device.index or 0,
            "cudnn_conv_algo_search": "HEURISTIC",
            "arena_extend_strategy": "kSameAsRequested",
        }
    if name == TRT_EP:
        cache = home / "ort-trt-cache"
        return {
            "device_id": device.index or 0,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache),
            "trt_fp16_enable": trt_fp16,
        }
    return {}


def select_providers(
    *,
    device: Device | str,
    available: Sequence[str],
    requested: Sequence[Any] | None,
    configured: Sequence[str],
    home: Path,
    excluded: Sequence[str] = (),
    trt_fp16: bool = True,
    known: Sequence[str] = (),
) -> list[ProviderSpec]:
    """Providers (with options) to create a session with.

    Args:
        device: the device (a :class:`im_core.Device`, or a string ``Device.parse`` reads: ``cpu``, ``cuda:1``).
        available: ``onnxruntime.get_available_providers()``.
        requested: the ``onnx_execution_providers`` option (names or ``(name, options)``), or ``None``.
        configured: ``IM_ONNX_PROVIDERS`` names (used when nothing was requested).
        home: ``IM_HOME``; the TensorRT EP caches engines under ``home/"ort-trt-cache"``.
        excluded: providers the package declares incompatible.
        trt_fp16: let the TensorRT EP build fp16 engines (TensorRT 10 only; ignored by later versions).
        known: every provider name this onnxruntime knows (``onnxruntime.get_all_providers()``, installed or not);
            an ``IM_ONNX_PROVIDERS`` name outside it is a typo, refused with a suggestion.

    Raises:
        InvalidParameterError: a requested provider is not installed, or every candidate is excluded.
        ConfigurationError: ``IM_ONNX_PROVIDERS`` names a provider no onnxruntime has (a misspelling); names of
            providers this installation lacks are skipped, so one value serves CPU and GPU machines.
    """
    device = Device.parse(device)
    avail = list(available)
    explicit = requested is not None
    wanted: list[Any] = list(requested) if requested is not None else list(configured)
    out: list[ProviderSpec] = []
    if known and not explicit and wanted:
        typos = [w for w in wanted if w not in known]
        if typos:
            from im_core.errors import ConfigurationError
            from im_core.sdk import check_names

            try:
                check_names(typos, known, "IM_ONNX_PROVIDERS names execution provider(s) no onnxruntime has:")
            except InvalidParameterError as exc:
                raise ConfigurationError(
                    f"{exc.message} Fix the environment variable IM_ONNX_PROVIDERS (comma-separated names) or "
                    "unset it to use the best ones available."
                ) from None
    if wanted:
        missing = [_name(w) for w in wanted if _name(w) not in avail]
        if missing and explicit:
            raise InvalidParameterError(
                f"Execution provider(s) {missing} are not in this onnxruntime (it has {avail}). "
                "Install onnxruntime-gpu for CUDA/TensorRT, or drop them from onnx_execution_providers."
            )
        for w in wanted:
            name = _name(w)
            if name not in avail or name in excluded:
                continue
            options = _default_options(name, device, home, trt_fp16)
            if not isinstance(w, str):
                options.update(w[1])
            out.append((name, options) if options else name)
    else:
        for name in default_order(avail, device):
            if name in excluded:
                continue
            options = _default_options(name, device, home, trt_fp16)
            out.append((name, options) if options else name)
    if not any(_name(p) == CPU_EP for p in out) and CPU_EP in avail and CPU_EP not in excluded:
        out.append(CPU_EP)
    if not out:
        raise InvalidParameterError(
            f"No usable execution provider: requested {wanted or 'defaults'}, available {avail}, "
            f"incompatible with this package {list(excluded)}."
        )
    return out
