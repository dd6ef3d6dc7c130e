"""im-vision: one import for what users call.

``import im_vision`` is as light as ``import im_core`` (it ships in the im-core wheel, so an edge install has it):
every name is imported on first use (PEP 562)::

    from im_vision import AutoModel

    model = AutoModel.from_pretrained("yolov8n.onnx")
    detections = model("photo.jpg")

``AutoModelPipeline`` comes from the im-pipelines wheel; on an install without it, using the name raises
:class:`~im_core.errors.MissingDependencyError` saying what to install. Plugin authors build on ``im_core``,
``im_core.sdk`` and ``im_core.errors`` instead (``docs/sdk.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from im_core.sdk import lazy_exports

__version__ = "0.1.0"

# public name -> the public module that defines it
_EXPORTS: dict[str, str] = {
    "AutoModel": "im_core",
    "AutoModelPipeline": "im_pipelines",
    "Classification": "im_core",
    "DepthMap": "im_core",
    "Detections": "im_core",
    "Embeddings": "im_core",
    "Gaze": "im_core",
    "ImError": "im_core.errors",
    "PromptSegmentation": "im_core",
    "RLEMask": "im_core",
    "SemanticSegmentation": "im_core",
    "TextGeneration": "im_core",
    "TextLine": "im_core",
    "TextRecognition": "im_core",
    "describe_compute_environment": "im_core",
}

#: names that live in a wheel an edge install may lack -> that distribution
_OPTIONAL: dict[str, str] = {"im_pipelines": "im-pipelines"}

__all__ = sorted([*_EXPORTS, "__version__"])

_lazy_getattr, __dir__ = lazy_exports(globals(), _EXPORTS, extra=["__version__"])


def __getattr__(name: str) -> Any:
    try:
        return _lazy_getattr(name)
    except ModuleNotFoundError as exc:
        module = _EXPORTS.get(name, "")
        if exc.name != module or module not in _OPTIONAL:
            raise
        from im_core.errors import MissingDependencyError

        distribution = _OPTIONAL[module]
        raise MissingDependencyError(
            f"im_vision.{name} comes from the {distribution} package, which is not installed here (an edge install "
            f"has im-core, one backend and im-models). Install it: pip install {distribution} "
            f"(or pip install im-vision for the full server install).",
            package=distribution,
        ) from None


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_core import (
        AutoModel,
        Classification,
        DepthMap,
        Detections,
        Embeddings,
        Gaze,
        PromptSegmentation,
        RLEMask,
        SemanticSegmentation,
        TextGeneration,
        TextLine,
        TextRecognition,
        describe_compute_environment,
    )
    from im_core.errors import ImError
    from im_pipelines import AutoModelPipeline
