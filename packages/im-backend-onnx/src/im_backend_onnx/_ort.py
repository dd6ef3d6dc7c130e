"""Importing ONNX Runtime lazily, and asking it facts it has no API for (the highest opset it accepts)."""

from __future__ import annotations

import functools
from typing import Any

from im_core.errors import MissingDependencyError

__all__ = ["import_ort", "max_opset"]

_OPSET_CEILING = 64  # far above any released ONNX opset; the search never reaches it


def import_ort() -> Any:
    """The ``onnxruntime`` module, or ``MissingDependencyError`` saying what to install."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(
            f"The ONNX backend needs onnxruntime ({exc}). Install it with: pip install im-backend-onnx "
            "(pulls onnxruntime), or pip install onnxruntime-gpu for CUDA / TensorRT execution providers.",
            distribution="onnxruntime",
            extra=None,
        ) from exc
    return onnxruntime


def _accepts(ort: Any, opset: int) -> bool:
    from im_backend_onnx._proto import identity_model

    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: the failures are the point of the probe
    try:
        ort.InferenceSession(identity_model(opset), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception:  # ORT raises its own Fail/InvalidGraph types
        return False
    return True


@functools.lru_cache(maxsize=4)
def _max_opset(version: str) -> int:
    ort = import_ort()
    lo, hi = 1, _OPSET_CEILING  # invariant: lo accepted (opset 1 always is), hi rejected
    if not _accepts(ort, lo):
        return 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _accepts(ort, mid):
            lo = mid
        else:
            hi = mid
    return lo


def max_opset() -> int:
    """Highest default-domain opset the installed onnxruntime loads (binary search over tiny Identity models).

    About 6 session creations (~10 ms) on first call, cached per onnxruntime version afterwards.
    """
    return _max_opset(import_ort().__version__)
