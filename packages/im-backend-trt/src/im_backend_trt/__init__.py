"""im-backend-trt: TensorRT engine sessions for im (TensorRT 10/11, full or lean runtime, cuda-python).

Importing this package imports neither TensorRT nor cuda-python; the backend does when probing or loading, and
checks for a GPU with cuda-python before it touches TensorRT. Names are imported on first use (PEP 562): reading
the entry-point manifest (:mod:`im_backend_trt._plugin`) imports neither the backend nor the session module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core.sdk import lazy_exports

_EXPORTS: dict[str, str] = {
    "LOAD_OPTIONS": "im_backend_trt._backend",
    "TrtBackend": "im_backend_trt._backend",
    "TrtRequirements": "im_backend_trt._requirements",
    "TrtSession": "im_backend_trt._session",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_backend_trt._backend import LOAD_OPTIONS, TrtBackend
    from im_backend_trt._requirements import TrtRequirements
    from im_backend_trt._session import TrtSession
