"""im-backend-onnx: ONNX Runtime sessions for im (loaded through the ``im.backends`` entry point)."""

from __future__ import annotations

__all__: list[str] = []
