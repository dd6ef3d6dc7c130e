"""im-backend-torch: TorchScript, ``torch.export`` programs and state-dict sessions for im.

Importing this package does not import torch; :class:`TorchBackend` imports it when probing or loading.
"""

from __future__ import annotations

from im_backend_torch._backend import LOAD_OPTIONS, TorchBackend
from im_backend_torch._session import TorchSession
from im_backend_torch._torch import apply_thread_policy

__all__ = ["LOAD_OPTIONS", "TorchBackend", "TorchSession", "apply_thread_policy"]
