"""Importing torch lazily, dtype names, and the CPU thread-count policy."""

from __future__ import annotations

import os
from typing import Any

from im_core.errors import InvalidParameterError, MissingDependencyError

__all__ = ["apply_thread_policy", "available_cpus", "import_torch", "numpy_dtype_name", "parse_dtype"]

_DTYPE_ALIASES = {
    "fp32": "float32",
    "float32": "float32",
    "float": "float32",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
}


def import_torch() -> Any:
    """The ``torch`` module, or ``MissingDependencyError`` naming what to install."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            f"The torch backend needs PyTorch ({exc}). Install it with: pip install im-backend-torch "
            "(or pick the wheel for your CUDA version from pytorch.org).",
            distribution="torch",
            extra=None,
        ) from exc
    return torch


def parse_dtype(torch: Any, value: Any) -> Any:
    """``"fp16" | "bf16" | "fp32"`` (or a ``torch.dtype``) → ``torch.dtype``; ``None`` stays ``None``."""
    if value is None or isinstance(value, torch.dtype):
        return value
    name = _DTYPE_ALIASES.get(str(value).lower().removeprefix("torch."))
    if name is None:
        raise InvalidParameterError(f"dtype={value!r} is not one of fp32, fp16, bf16.")
    return getattr(torch, name)


def numpy_dtype_name(dtype: Any) -> str:
    """``torch.float32`` → ``"float32"``; ``torch.bfloat16`` → ``"bfloat16"`` (no numpy equivalent)."""
    return str(dtype).removeprefix("torch.")


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware; cgroup quotas are not inspected)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS / Windows
        return os.cpu_count() or 1


def apply_thread_policy(torch: Any, num_threads: int | None) -> int:
    """Set torch's intra-op thread count; returns the count in effect.

    Policy (process-wide, because ``torch.set_num_threads`` is):

    - ``num_threads`` given → exactly that many.
    - otherwise, if torch runs **one** thread while the process may use more CPUs, raise it to the number of
      available CPUs. Torch defaults to the *physical* core count, which is 1 on a 2-vCPU cloud VM (one core,
      two hyper-threads), and some tools call ``set_num_threads(1)`` and never undo it; both leave a 2-core box
      running single-threaded by accident. An explicit ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` in the environment
      is the user's choice and is respected.
    - otherwise torch's own setting stands.
    """
    if num_threads is not None:
        if not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1:
            raise InvalidParameterError(f"num_threads={num_threads!r} must be an int >= 1.")
        torch.set_num_threads(num_threads)
    elif torch.get_num_threads() == 1 and not (os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS")):
        cpus = available_cpus()
        if cpus > 1:
            torch.set_num_threads(cpus)
    return int(torch.get_num_threads())
