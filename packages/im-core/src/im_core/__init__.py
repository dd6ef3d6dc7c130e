"""im-core: load computer-vision models and run them fast on whatever hardware is found.

``import im_core`` is cheap: names are imported on first use (PEP 562), and nothing heavy (torch, onnxruntime,
tensorrt, cv2) is ever imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # loading
    "AutoModel": "im_core._auto",
    "ModelSpec": "im_core._spec",
    "Device": "im_core._device",
    "NegotiationReport": "im_core._negotiation",
    "describe_compute_environment": "im_core._describe",
    # results
    "Classification": "im_core._results",
    "Detections": "im_core._results",
    "Embeddings": "im_core._results",
    "DepthMap": "im_core._results_depth",
    "Gaze": "im_core._results",
    "RLEMask": "im_core._results",
    "SemanticSegmentation": "im_core._results_semantic",
    "TextLine": "im_core._results",
    "TextRecognition": "im_core._results",
    "ImageEmbedding": "im_core._results_promptable",
    "PromptSegmentation": "im_core._results_promptable",
    "results_to_columns": "im_core._columns",
    # metadata
    "BackendRequirements": "im_core._metadata",
    "BatchSpec": "im_core._metadata",
    "FileSpec": "im_core._metadata",
    "ModelDependency": "im_core._metadata",
    "ModelMetadata": "im_core._metadata",
    "ModelPackage": "im_core._metadata",
    "RecommendedParameters": "im_core._metadata",
    "SkippedPackage": "im_core._metadata",
    # protocols and sessions
    "BackendPlugin": "im_core._protocols",
    "BackendProbe": "im_core._protocols",
    "BackendBase": "im_core._backend_base",
    "BatchLimits": "im_core._protocols",
    "Session": "im_core._protocols",
    "TensorSpec": "im_core._protocols",
    "Verdict": "im_core._protocols",
    "WeightsProvider": "im_core._protocols",
    "BaseSession": "im_core._session",
    # tasks and inputs
    "ClassificationModel": "im_core._tasks",
    "EmbeddingModel": "im_core._tasks",
    "DepthEstimationModel": "im_core._tasks",
    "GazeModel": "im_core._tasks",
    "InstanceSegmentationModel": "im_core._tasks",
    "KeypointDetectionModel": "im_core._tasks",
    "LoadedModelInfo": "im_core._tasks",
    "Model": "im_core._tasks",
    "MultiLabelClassificationModel": "im_core._tasks",
    "ObjectDetectionModel": "im_core._tasks",
    "SemanticSegmentationModel": "im_core._tasks",
    "TextDetectionModel": "im_core._tasks",
    "TextRecognitionModel": "im_core._tasks",
    "EmbeddingCache": "im_core._tasks_promptable",
    "PromptableSegmentationModel": "im_core._tasks_promptable",
    "Prompts": "im_core._tasks_promptable",
    "OpenVocabularyDetectionModel": "im_core._tasks_open_vocab",
    "Image": "im_core._images",
    "to_images": "im_core._images",
    "PackageContext": "im_core._context",
    # plugins and configuration
    "BackendManifest": "im_core._plugins",
    "CommandManifest": "im_core._plugins",
    "ModelEntry": "im_core._plugins",
    "ModelsManifest": "im_core._plugins",
    "PipelineEntry": "im_core._plugins",
    "PipelinesManifest": "im_core._plugins",
    "ProviderManifest": "im_core._plugins",
    "register": "im_core._plugins",
    "registry": "im_core._plugins",
    "Settings": "im_core._config",
    "settings": "im_core._config",
    "reload_settings": "im_core._config",
}

__all__ = sorted([*_EXPORTS, "__version__"])


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS, extra=["__version__"])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_core._auto import AutoModel
    from im_core._backend_base import BackendBase
    from im_core._columns import results_to_columns
    from im_core._config import Settings, reload_settings, settings
    from im_core._context import PackageContext
    from im_core._describe import describe_compute_environment
    from im_core._device import Device
    from im_core._images import Image, to_images
    from im_core._metadata import (
        BackendRequirements,
        BatchSpec,
        FileSpec,
        ModelDependency,
        ModelMetadata,
        ModelPackage,
        RecommendedParameters,
        SkippedPackage,
    )
    from im_core._negotiation import NegotiationReport
    from im_core._plugins import (
        BackendManifest,
        CommandManifest,
        ModelEntry,
        ModelsManifest,
        PipelineEntry,
        PipelinesManifest,
        ProviderManifest,
        register,
        registry,
    )
    from im_core._protocols import (
        BackendPlugin,
        BackendProbe,
        BatchLimits,
        Session,
        TensorSpec,
        Verdict,
        WeightsProvider,
    )
    from im_core._results import Classification, Detections, Embeddings, Gaze, RLEMask, TextLine, TextRecognition
    from im_core._results_depth import DepthMap
    from im_core._results_promptable import ImageEmbedding, PromptSegmentation
    from im_core._results_semantic import SemanticSegmentation
    from im_core._session import BaseSession
    from im_core._spec import ModelSpec
    from im_core._tasks import (
        ClassificationModel,
        DepthEstimationModel,
        EmbeddingModel,
        GazeModel,
        InstanceSegmentationModel,
        KeypointDetectionModel,
        LoadedModelInfo,
        Model,
        MultiLabelClassificationModel,
        ObjectDetectionModel,
        SemanticSegmentationModel,
        TextDetectionModel,
        TextRecognitionModel,
    )
    from im_core._tasks_open_vocab import OpenVocabularyDetectionModel
    from im_core._tasks_promptable import EmbeddingCache, PromptableSegmentationModel, Prompts
