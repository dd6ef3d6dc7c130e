"""The public SDK for authors of model families, backends and weights providers (``docs/sdk.md``).

Everything a plugin needs from im-core beyond the user-facing names of :mod:`im_core` lives here, under names that
follow the SDK's version, :data:`SDK_VERSION`: a name listed here keeps its meaning within one SDK version, and
im-core's private modules (``im_core._*``) may change in any release. Sibling wheels of this repository import only
``im_core``, ``im_core.sdk``, ``im_core.errors`` and ``im_core.testing`` (a test enforces it); third-party plugins
should do the same.

Sections (names are imported on first use, so ``import im_core.sdk`` stays as light as ``import im_core``):

Plugins
    :class:`BackendManifest`, :class:`ProviderManifest`, :class:`ModelEntry`, :class:`ModelsManifest`,
    :class:`PipelineEntry`, :class:`PipelinesManifest`, :class:`CommandManifest` (``im`` subcommands of other
    wheels, group ``im.cli``), :data:`PLUGIN_API_VERSION`, :func:`register`,
    :func:`registry`, :func:`load_target` (import a ``"module:attr"`` target with an install hint when it is
    missing), :func:`lazy_exports` (PEP 562 ``__getattr__``/``__dir__`` for a package's ``__init__``).
Families
    :class:`Model` and the task bases (a family declares ``LOAD_OPTIONS`` and ``CALL_PARAMS``), :class:`PackageContext`,
    :class:`LoadedModelInfo`, :class:`Image`, :func:`to_images`, :func:`is_batch`, :func:`check_names` (refuse
    unknown keyword names, with the accepted list and a suggestion for a near miss).
Backends
    :class:`Session`, :class:`BaseSession`, :class:`BackendBase`, :class:`BackendPlugin`, :class:`BackendProbe`,
    :class:`TensorSpec`, :class:`BatchLimits`, :class:`Verdict`, :func:`detect_gpus` (NVIDIA GPUs without CUDA:
    ``(gpus, driver_version, cuda_version)``), :class:`GpuInfo`, :func:`settings` / :class:`Settings`.
Providers and files
    :class:`WeightsProvider`, the metadata models (:class:`ModelMetadata`, :class:`ModelPackage`, ...,
    :class:`BackendRequirements`, the base of a backend's requirement block),
    :func:`validate_model_id`, :func:`validate_relative_path`, :func:`request_with_retries` (the retrying HTTP
    client that maps statuses to im errors), :func:`request_json` (the same for a JSON answer: bounded in size,
    parsed by :func:`load_json`), :func:`load_json` (parse a metadata document bounded in size and depth, every
    failure a :class:`~im_core.errors.MalformedMetadataError`), :func:`redact_url` and :func:`scrub` (keep
    credentials out of messages), :func:`atomic_write` (write-then-rename), :func:`hash_file` (sha256, md5, size).
Publishing packages
    :func:`inspect_model_file` (what bare loading learns from a model file: embedded metadata read by the backend
    and the families' sniffers), :func:`load_package` (build one package's model from a folder, as loading would:
    a registry builder checks a package before publishing it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core._lazy import lazy_exports

#: Version of this SDK. It changes (and plugins must be updated) only when a name here changes meaning or goes.
SDK_VERSION = 1

# public name -> the private module that defines it
_EXPORTS: dict[str, str] = {
    # plugins
    "BackendManifest": "im_core._plugins",
    "CommandManifest": "im_core._plugins",
    "ModelEntry": "im_core._plugins",
    "ModelsManifest": "im_core._plugins",
    "PLUGIN_API_VERSION": "im_core._plugins",
    "PipelineEntry": "im_core._plugins",
    "PipelinesManifest": "im_core._plugins",
    "ProviderManifest": "im_core._plugins",
    "lazy_exports": "im_core._lazy",
    "load_target": "im_core._plugins",
    "register": "im_core._plugins",
    "registry": "im_core._plugins",
    # families
    "ClassificationModel": "im_core._tasks",
    "EmbeddingModel": "im_core._tasks",
    "GazeModel": "im_core._tasks",
    "Image": "im_core._images",
    "InstanceSegmentationModel": "im_core._tasks",
    "KeypointDetectionModel": "im_core._tasks",
    "LoadedModelInfo": "im_core._tasks",
    "Model": "im_core._tasks",
    "MultiLabelClassificationModel": "im_core._tasks",
    "ObjectDetectionModel": "im_core._tasks",
    "PackageContext": "im_core._context",
    "SemanticSegmentationModel": "im_core._tasks",
    "TextDetectionModel": "im_core._tasks",
    "TextRecognitionModel": "im_core._tasks",
    "check_names": "im_core._tasks",
    "class_names_argument": "im_core._class_names",
    "is_batch": "im_core._images",
    "to_images": "im_core._images",
    # backends
    "BackendBase": "im_core._backend_base",
    "BackendPlugin": "im_core._protocols",
    "BackendProbe": "im_core._protocols",
    "BaseSession": "im_core._session",
    "BatchLimits": "im_core._protocols",
    "GpuInfo": "im_core._runtime",
    "Session": "im_core._protocols",
    "Settings": "im_core._config",
    "TensorSpec": "im_core._protocols",
    "Verdict": "im_core._protocols",
    "detect_gpus": "im_core._runtime",
    "settings": "im_core._config",
    # providers and files
    "BackendRequirements": "im_core._metadata",
    "BatchSpec": "im_core._metadata",
    "FileSpec": "im_core._metadata",
    "ModelDependency": "im_core._metadata",
    "ModelMetadata": "im_core._metadata",
    "ModelPackage": "im_core._metadata",
    "RecommendedParameters": "im_core._metadata",
    "SkippedPackage": "im_core._metadata",
    "WeightsProvider": "im_core._protocols",
    "atomic_write": "im_core._cache._store",
    "hash_file": "im_core._cache._download",
    "inspect_model_file": "im_core._local",
    "load_package": "im_core._auto",
    "load_json": "im_core._json",
    "redact_url": "im_core._cache._paths",
    "request_json": "im_core._cache._http",
    "request_with_retries": "im_core._cache._http",
    "scrub": "im_core._cache._paths",
    "validate_model_id": "im_core._cache._paths",
    "validate_relative_path": "im_core._metadata",
}

__all__ = sorted([*_EXPORTS, "SDK_VERSION"])

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS, extra=["SDK_VERSION"])

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_core._auto import load_package
    from im_core._backend_base import BackendBase
    from im_core._cache._download import hash_file
    from im_core._cache._http import request_json, request_with_retries
    from im_core._cache._paths import redact_url, scrub, validate_model_id
    from im_core._cache._store import atomic_write
    from im_core._class_names import class_names_argument
    from im_core._config import Settings, settings
    from im_core._context import PackageContext
    from im_core._images import Image, is_batch, to_images
    from im_core._json import load_json
    from im_core._lazy import lazy_exports
    from im_core._local import inspect_model_file
    from im_core._metadata import (
        BackendRequirements,
        BatchSpec,
        FileSpec,
        ModelDependency,
        ModelMetadata,
        ModelPackage,
        RecommendedParameters,
        SkippedPackage,
        validate_relative_path,
    )
    from im_core._plugins import (
        PLUGIN_API_VERSION,
        BackendManifest,
        CommandManifest,
        ModelEntry,
        ModelsManifest,
        PipelineEntry,
        PipelinesManifest,
        ProviderManifest,
        load_target,
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
    from im_core._runtime import GpuInfo, detect_gpus
    from im_core._session import BaseSession
    from im_core._tasks import (
        ClassificationModel,
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
        check_names,
    )
