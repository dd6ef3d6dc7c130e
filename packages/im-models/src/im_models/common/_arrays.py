"""Session outputs as numpy: sessions may return torch tensors that live on a GPU (``outputs_on_device``)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["to_numpy"]


def to_numpy(value: Any, dtype: Any = np.float32) -> np.ndarray:
    """``value`` (numpy array, torch tensor on any device, or array-like) as a numpy array of ``dtype`` on the CPU."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)
