"""Finding TensorRT and the CUDA runtime, and asking cuda-python (never TensorRT) whether a GPU exists.

TensorRT's ``Runtime`` returns an object even without a usable GPU, and deserialising on it then kills the process
(SIGSEGV). So every path that could touch TensorRT first calls :func:`gpu_count`, which uses
``cuda.bindings.runtime.cudaGetDeviceCount`` — safe on a CPU-only host (it returns an error code).
"""

from __future__ import annotations

import importlib
import threading
from collections import deque
from typing import Any

from im_core.errors import MissingDependencyError, ModelRuntimeError

__all__ = ["TRT_MODULES", "capturing_logger", "check_cuda", "gpu_count", "import_cudart", "import_trt"]

#: import order: the full TensorRT (builder + runtime), the lean runtime, the dispatch runtime
TRT_MODULES = (("tensorrt", "full"), ("tensorrt_lean", "lean"), ("tensorrt_dispatch", "dispatch"))
_HINT = "Install it with: pip install im-backend-trt (or pip install 'im-vision[trt]'), which brings tensorrt-lean-cu13"


def import_trt() -> tuple[Any, str]:
    """``(module, flavour)`` for the first of tensorrt → tensorrt_lean → tensorrt_dispatch that imports."""
    errors = []
    for name, flavour in TRT_MODULES:
        try:
            return importlib.import_module(name), flavour
        except ImportError as exc:  # the full bindings raise ImportError when their libs are missing
            errors.append(f"{name}: {exc}")
    raise MissingDependencyError(
        f"No TensorRT runtime is installed ({'; '.join(errors)}). {_HINT} and cuda-bindings.",
        distribution="im-backend-trt",
        extra="trt",
    )


def import_cudart() -> Any:
    """``cuda.bindings.runtime`` (cuda-python 12.6+/13.x; ``from cuda import cudart`` is gone in 13.x)."""
    try:
        return importlib.import_module("cuda.bindings.runtime")
    except ImportError as exc:
        raise MissingDependencyError(
            f"The TensorRT backend needs cuda-python's runtime bindings ({exc}). {_HINT} and cuda-bindings.",
            distribution="cuda-bindings",
            extra="trt",
        ) from exc


def _error_name(cudart: Any, err: Any) -> str:
    try:
        _, name = cudart.cudaGetErrorName(err)
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # a broken driver must not hide the original error
        return str(err)


def check_cuda(cudart: Any, result: Any, what: str) -> Any:
    """Unpack a cuda-python ``(err, *values)`` tuple; raise ``ModelRuntimeError`` naming the call on failure."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise ModelRuntimeError(f"CUDA call {what} failed: {_error_name(cudart, err)} ({int(err)}).")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_count(cudart: Any) -> tuple[int, str | None]:
    """``(n, None)`` with n ≥ 1 when CUDA devices are usable, else ``(0, reason in words)``. Never crashes."""
    try:
        err, count = cudart.cudaGetDeviceCount()
    except Exception as exc:  # e.g. the driver library cannot be found
        return 0, f"cudaGetDeviceCount raised {type(exc).__name__}: {exc}"
    if int(err) != 0:
        return 0, f"cudaGetDeviceCount returned {_error_name(cudart, err)} (no NVIDIA GPU or driver here)"
    if not count:
        return 0, "cudaGetDeviceCount found 0 CUDA devices"
    return int(count), None


_loggers: dict[int, Any] = {}
_loggers_lock = threading.Lock()


def capturing_logger(trt: Any) -> Any:
    """One logger per TensorRT module (TensorRT keeps the first logger as a process-wide singleton).

    It keeps the last 200 warnings/errors in ``.messages`` so a failed deserialisation can say why.
    """
    with _loggers_lock:
        logger = _loggers.get(id(trt))
        if logger is None:
            warning = int(trt.ILogger.Severity.WARNING)

            class _Logger(trt.ILogger):
                def __init__(self) -> None:
                    trt.ILogger.__init__(self)
                    self.messages: deque[str] = deque(maxlen=200)

                def log(self, severity: Any, msg: str) -> None:
                    if int(severity) <= warning:
                        self.messages.append(str(msg))

            logger = _loggers[id(trt)] = _Logger()
        return logger
