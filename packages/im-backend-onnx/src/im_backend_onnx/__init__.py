"""im-backend-onnx: ONNX Runtime sessions for im (loaded through the ``im.backends`` entry point).

Importing this package does not import onnxruntime; :class:`OnnxBackend` imports it when probing or loading.
"""

from __future__ import annotations

from im_backend_onnx._backend import LOAD_OPTIONS, OnnxBackend
from im_backend_onnx._providers import select_providers
from im_backend_onnx._session import OnnxSession

__all__ = ["LOAD_OPTIONS", "OnnxBackend", "OnnxSession", "select_providers"]
