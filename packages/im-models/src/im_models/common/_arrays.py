"""Session outputs that may be numpy arrays or torch tensors (``outputs_on_device``), without importing torch here.

:func:`to_numpy` brings any output to the CPU. :func:`array_ops` returns a tiny array namespace — the handful of
operations whose spelling differs between numpy and torch — so one piece of post-processing code can run on a numpy
array on the CPU or on a torch tensor on its own device (a GPU), copying only its small result. Everything else the
shared code uses (slicing, integer-array indexing, comparisons, ``&``/``|``, ``.T``, ``.max(axis)``-free arithmetic)
is spelled the same in both libraries. torch is imported inside :class:`TorchOps` only, when a tensor is already at
hand (so torch is loaded anyway).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NUMPY_OPS", "ArrayOps", "NumpyOps", "TorchOps", "array_ops", "is_torch_tensor", "to_numpy"]


def is_torch_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (duck-typed: torch is not imported)."""
    return hasattr(value, "detach") and hasattr(value, "device") and hasattr(value, "dim")


def to_numpy(value: Any, dtype: Any = np.float32) -> np.ndarray:
    """``value`` (numpy array, torch tensor on any device, or array-like) as a numpy array of ``dtype`` on the CPU."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach()
        if str(value.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            value = value.float()
        value = value.cpu().numpy()
    return np.asarray(value, dtype=dtype)


class ArrayOps:
    """The operations the shared post-processing needs whose spelling differs between numpy and torch.

    Every method takes and returns arrays of the namespace's kind (on the same device as its input) unless it says
    otherwise. Index arrays are int64; 1-D masks are bool.
    """

    is_torch: bool = False

    def nonzero(self, mask: Any) -> Any:
        """int64 (K,) positions where the 1-D bool ``mask`` is true, ascending."""
        raise NotImplementedError

    def arange(self, n: int, like: Any) -> Any:
        """int64 ``0 … n-1`` on ``like``'s device."""
        raise NotImplementedError

    def max(self, x: Any, axis: int) -> Any:
        """Maximum along ``axis``."""
        raise NotImplementedError

    def argmax(self, x: Any, axis: int) -> Any:
        """int64 position of the maximum along ``axis`` (the first one on ties)."""
        raise NotImplementedError

    def max_argmax(self, x: Any, axis: int) -> tuple[Any, Any]:
        """``(max, argmax)`` along ``axis`` (argmax: int64, the first maximal position), from one pass in torch."""
        raise NotImplementedError

    def kth_largest(self, x: Any, k: int) -> Any:
        """The ``k``-th largest value of the 1-D ``x`` (1 ≤ k ≤ len(x)), as a 0-d array on ``x``'s device."""
        raise NotImplementedError

    def cumsum(self, mask: Any) -> Any:
        """int64 running count of true values of the 1-D bool ``mask``."""
        raise NotImplementedError

    def argsort_desc(self, x: Any) -> Any:
        """int64 positions that sort the 1-D ``x`` descending, stable (ties keep their order)."""
        raise NotImplementedError

    def float32(self, x: Any) -> Any:
        """``x`` as float32 (no copy when it already is)."""
        raise NotImplementedError

    def wide_float(self, x: Any) -> bool:
        """Whether ``x`` is float32 or float64 (a float32 value compared with it as a Python float stays exact)."""
        raise NotImplementedError

    def int64(self, x: Any) -> Any:
        """``x`` as int64 (floats truncated toward zero)."""
        raise NotImplementedError

    def table(self, values: np.ndarray, like: Any) -> Any:
        """A small numpy lookup table (per-class thresholds, class mask) moved to ``like``'s device."""
        raise NotImplementedError

    def numpy(self, x: Any, dtype: Any = np.float32) -> np.ndarray:
        """``x`` copied to the CPU as a numpy array of ``dtype`` — the only device → host transfer."""
        raise NotImplementedError


class NumpyOps(ArrayOps):
    """:class:`ArrayOps` for numpy arrays."""

    def nonzero(self, mask: Any) -> np.ndarray:
        return np.asarray(mask).nonzero()[0]  # 1-D: the method skips np.flatnonzero's Python-level wrappers

    def arange(self, n: int, like: Any) -> np.ndarray:
        return np.arange(n, dtype=np.int64)

    def max(self, x: Any, axis: int) -> np.ndarray:
        return np.maximum.reduce(x, axis=axis)  # ndarray.max without its Python-level wrapper

    def argmax(self, x: Any, axis: int) -> np.ndarray:
        return x.argmax(axis=axis).astype(np.int64, copy=False)

    def max_argmax(self, x: Any, axis: int) -> tuple[np.ndarray, np.ndarray]:
        arg = self.argmax(x, axis)
        return np.take_along_axis(x, np.expand_dims(arg, axis), axis).squeeze(axis), arg

    def kth_largest(self, x: Any, k: int) -> np.ndarray:
        n = len(x)
        return np.partition(x, n - k)[n - k]

    def cumsum(self, mask: Any) -> np.ndarray:
        return np.cumsum(mask, dtype=np.int64)

    def argsort_desc(self, x: Any) -> np.ndarray:
        return np.argsort(-x, kind="stable")

    def float32(self, x: Any) -> np.ndarray:
        return np.asarray(x).astype(np.float32, copy=False)

    def wide_float(self, x: Any) -> bool:
        return x.dtype in _WIDE_FLOATS

    def int64(self, x: Any) -> np.ndarray:
        return np.asarray(x).astype(np.int64, copy=False)

    def table(self, values: np.ndarray, like: Any) -> np.ndarray:
        return values

    def numpy(self, x: Any, dtype: Any = np.float32) -> np.ndarray:
        return np.asarray(x).astype(dtype, copy=False)


class TorchOps(ArrayOps):
    """:class:`ArrayOps` for torch tensors; the work stays on the tensors' device."""

    is_torch = True

    def __init__(self) -> None:
        import torch

        self.torch = torch

    def nonzero(self, mask: Any) -> Any:
        return self.torch.nonzero(mask).reshape(-1)  # ascending, int64

    def arange(self, n: int, like: Any) -> Any:
        return self.torch.arange(n, dtype=self.torch.int64, device=like.device)

    def max(self, x: Any, axis: int) -> Any:
        return x.amax(dim=axis)

    def argmax(self, x: Any, axis: int) -> Any:
        return x.argmax(dim=axis)  # first maximal index, as numpy

    def max_argmax(self, x: Any, axis: int) -> tuple[Any, Any]:
        values, indices = x.max(dim=axis)  # first maximal index, as numpy
        return values, indices

    def kth_largest(self, x: Any, k: int) -> Any:
        return self.torch.topk(x, k, sorted=False).values.amin()

    def cumsum(self, mask: Any) -> Any:
        return self.torch.cumsum(mask, dim=0, dtype=self.torch.int64)

    def argsort_desc(self, x: Any) -> Any:
        return self.torch.sort(x, descending=True, stable=True).indices

    def float32(self, x: Any) -> Any:
        return x.float()

    def wide_float(self, x: Any) -> bool:
        return x.dtype in (self.torch.float32, self.torch.float64)

    def int64(self, x: Any) -> Any:
        return x.long()

    def table(self, values: np.ndarray, like: Any) -> Any:
        return self.torch.tensor(values, device=like.device)  # a copy: ``values`` may be read-only (cached)

    def numpy(self, x: Any, dtype: Any = np.float32) -> np.ndarray:
        return to_numpy(x, dtype)


_WIDE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
NUMPY_OPS = NumpyOps()
_torch_ops: list[TorchOps] = []


def array_ops(*values: Any) -> ArrayOps:
    """The namespace for ``values``: :class:`TorchOps` when any is a torch tensor, else :class:`NumpyOps`."""
    if all(type(v) is np.ndarray for v in values):  # the common case, without the duck-typing probes
        return NUMPY_OPS
    if any(is_torch_tensor(v) for v in values):
        if not _torch_ops:
            _torch_ops.append(TorchOps())
        return _torch_ops[0]
    return NUMPY_OPS
