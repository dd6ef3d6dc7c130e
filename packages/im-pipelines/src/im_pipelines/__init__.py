"""im-pipelines: several models chained as one (``AutoModelPipeline``).

Exports are imported on first use, so scanning this package's entry point stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AutoModelPipeline": "im_pipelines._auto",
    "Pipeline": "im_pipelines._base",
    "FaceGazePipeline": "im_pipelines._builtin",
    "OCRPipeline": "im_pipelines._builtin",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'im_pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
