"""im-pipelines: several models chained as one (``AutoModelPipeline``).

Exports are imported on first use, so scanning this package's entry point stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core.sdk import lazy_exports

_EXPORTS: dict[str, str] = {
    "AutoModelPipeline": "im_pipelines._auto",
    "Pipeline": "im_pipelines._base",
    "DetectAndClassifyPipeline": "im_pipelines._classify",
    "FaceGazePipeline": "im_pipelines._builtin",
    "OCRPipeline": "im_pipelines._builtin",
    "DetectAndSegmentPipeline": "im_pipelines._segment",
    "OpenVocabularyDetectAndSegmentPipeline": "im_pipelines._segment",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_pipelines._auto import AutoModelPipeline
    from im_pipelines._base import Pipeline
    from im_pipelines._builtin import FaceGazePipeline, OCRPipeline
    from im_pipelines._classify import DetectAndClassifyPipeline
    from im_pipelines._segment import DetectAndSegmentPipeline, OpenVocabularyDetectAndSegmentPipeline
