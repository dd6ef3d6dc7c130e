"""im-backend-torch: TorchScript, ``torch.export`` programs and state-dict sessions for im.

Importing this package does not import torch; :class:`TorchBackend` imports it when probing or loading.
Names are imported on first use (PEP 562): reading the entry-point manifest (:mod:`im_backend_torch._plugin`)
imports neither the backend nor the session module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core.sdk import lazy_exports

_EXPORTS: dict[str, str] = {
    "LOAD_OPTIONS": "im_backend_torch._backend",
    "TorchBackend": "im_backend_torch._backend",
    "TorchRequirements": "im_backend_torch._requirements",
    "TorchSession": "im_backend_torch._session",
    "apply_thread_policy": "im_backend_torch._torch",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_backend_torch._backend import LOAD_OPTIONS, TorchBackend
    from im_backend_torch._requirements import TorchRequirements
    from im_backend_torch._session import TorchSession
    from im_backend_torch._torch import apply_thread_policy
