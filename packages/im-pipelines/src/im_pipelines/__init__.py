"""im-pipelines: several models chained as one (``AutoModelPipeline``).

Exports are imported on first use, so scanning this package's entry point stays cheap.
"""

from __future__ import annotations

from im_core._lazy import lazy_exports

_EXPORTS = {
    "AutoModelPipeline": "im_pipelines._auto",
    "Pipeline": "im_pipelines._base",
    "FaceGazePipeline": "im_pipelines._builtin",
    "OCRPipeline": "im_pipelines._builtin",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
