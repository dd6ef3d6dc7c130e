"""Batch splitting and zero-padding, done once for every backend (DESIGN.md §6).

Backends subclass :class:`BaseSession` and implement :meth:`BaseSession._run_chunk`, which receives a batch whose
size already fits :attr:`BaseSession.batch_limits`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from im_core._device import Device
from im_core._protocols import BatchLimits, TensorSpec
from im_core.errors import ModelInputError

__all__ = ["BaseSession", "batch_chunks", "concat_batches"]


def batch_chunks(total: int, limits: BatchLimits) -> list[tuple[int, int, int]]:
    """Split ``total`` items into chunks the backend accepts.

    Returns:
        ``(start, stop, padded_size)`` per chunk; ``padded_size >= stop - start`` is the batch the backend sees
        (larger only for static batches, or when a chunk is below ``limits.min``).
    """
    if total <= 0:
        return []
    step = limits.max if limits.max is not None else total
    out = []
    for start in range(0, total, step):
        stop = min(start + step, total)
        padded = max(stop - start, limits.min)
        if limits.static and limits.max is not None:
            padded = limits.max
        out.append((start, stop, padded))
    return out


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _pad(x: Any, size: int) -> Any:
    n = x.shape[0]
    if n == size:
        return x
    if _is_torch(x):
        import torch

        pad = torch.zeros((size - n, *x.shape[1:]), dtype=x.dtype, device=x.device)
        return torch.cat([x, pad])
    return np.concatenate([x, np.zeros((size - n, *x.shape[1:]), dtype=x.dtype)])


def concat_batches(parts: Sequence[Any]) -> Any:
    """Concatenate numpy arrays or torch tensors along axis 0 (no copy for a single part)."""
    if len(parts) == 1:
        return parts[0]
    if _is_torch(parts[0]):
        import torch

        return torch.cat(list(parts))
    return np.concatenate(parts)


class BaseSession(ABC):
    """Common part of every backend session: validation, batch splitting, padding and concatenation.

    Subclasses set ``backend``, ``device`` (a :class:`im_core.Device`), ``inputs``, ``outputs``, ``batch_limits``,
    ``thread_safety`` and, when the file embeds any, ``metadata`` in their constructor and implement
    :meth:`_run_chunk`. Outputs are assumed to have the batch on axis 0.
    """

    backend: str = "unknown"
    device: Device = Device("cpu")
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    batch_limits: BatchLimits = BatchLimits()
    thread_safety: str = "lock"
    #: string metadata embedded in the network file; empty (and read-only) unless the backend sets it
    metadata: Mapping[str, str] = MappingProxyType({})

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @abstractmethod
    def _run_chunk(self, feeds: Mapping[str, Any], output_names: Sequence[str]) -> dict[str, Any]:
        """Run one chunk whose batch size fits ``batch_limits``."""

    def run(self, feeds: Mapping[str, Any], output_names: Sequence[str] | None = None) -> dict[str, Any]:
        """Run the network on any batch size; see :class:`im_core.Session`."""
        names = list(output_names) if output_names is not None else [o.name for o in self.outputs]
        expected = {i.name for i in self.inputs}
        if set(feeds) != expected:
            raise ModelInputError(f"{self.backend} session expects inputs {sorted(expected)}, got {sorted(feeds)}.")
        sizes = {int(v.shape[0]) for v in feeds.values()}
        if len(sizes) != 1:
            raise ModelInputError(f"All inputs must share the batch size on axis 0, got sizes {sorted(sizes)}.")
        total = sizes.pop()
        if total == 0:
            raise ModelInputError(f"{self.backend} session got an empty batch (0 items on axis 0); pass at least one.")
        chunks = batch_chunks(total, self.batch_limits)
        if len(chunks) == 1 and chunks[0][2] == total:
            return self._guarded(feeds, names)
        parts: dict[str, list[Any]] = {n: [] for n in names}
        for start, stop, padded in chunks:
            chunk = {k: _pad(v[start:stop], padded) for k, v in feeds.items()}
            result = self._guarded(chunk, names)
            for n in names:
                parts[n].append(result[n][: stop - start])
        return {n: concat_batches(parts[n]) for n in names}

    def _guarded(self, feeds: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
        if self.thread_safety == "lock":
            with self._lock:
                return self._run_chunk(feeds, names)
        return self._run_chunk(feeds, names)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the runtime's resources (optional)."""

    def __repr__(self) -> str:
        ins = ", ".join(f"{i.name}{list(i.shape)}:{i.dtype}" for i in self.inputs)
        return f"{type(self).__name__}(device={str(self.device)!r}, inputs=[{ins}], batch={self.batch_limits})"
