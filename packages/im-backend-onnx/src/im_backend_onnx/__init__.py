"""im-backend-onnx: ONNX Runtime sessions for im (loaded through the ``im.backends`` entry point).

Importing this package does not import onnxruntime; :class:`OnnxBackend` imports it when probing or loading.
Names are imported on first use (PEP 562): reading the entry-point manifest (:mod:`im_backend_onnx._plugin`)
imports neither the backend nor the session module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core.sdk import lazy_exports

_EXPORTS: dict[str, str] = {
    "LOAD_OPTIONS": "im_backend_onnx._backend",
    "OnnxBackend": "im_backend_onnx._backend",
    "OnnxRequirements": "im_backend_onnx._requirements",
    "OnnxSession": "im_backend_onnx._session",
    "select_providers": "im_backend_onnx._providers",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_backend_onnx._backend import LOAD_OPTIONS, OnnxBackend
    from im_backend_onnx._providers import select_providers
    from im_backend_onnx._requirements import OnnxRequirements
    from im_backend_onnx._session import OnnxSession
