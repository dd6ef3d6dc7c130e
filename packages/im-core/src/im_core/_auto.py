"""``AutoModel``: resolve a model, negotiate its best package, download it, and build the model (DESIGN.md §2–§4)."""

from __future__ import annotations

import dataclasses
import errno
import functools
import inspect
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from im_core._class_names import user_class_names
from im_core._config import settings
from im_core._context import PackageContext
from im_core._device import Device
from im_core._metadata import ModelMetadata, ModelPackage
from im_core._negotiation import Filters, NegotiationReport, PackageVerdict, run_negotiation
from im_core._plugins import registry
from im_core._tasks import Model, check_names
from im_core.errors import (
    AllPackagesFailedError,
    CacheStorageError,
    DependencyModelError,
    ImError,
    InvalidParameterError,
    ModelLoadingError,
    ModelNotFoundError,
    NoCompatiblePackageError,
    PluginError,
)

__all__ = ["AutoModel", "load_package"]

logger = logging.getLogger("im")

_LOCAL_OVERRIDES = ("architecture", "task", "class_names")


_SourceKind = Literal["file", "folder", "remote"]


@dataclass(frozen=True)
class _Source:
    """Where the model comes from, decided once per call: a local ``file`` or ``folder`` (``path`` resolved), or a
    ``remote`` model id resolved by a weights provider."""

    text: str  # as the caller gave it
    kind: _SourceKind
    path: Path | None = None
    local_overrides: Mapping[str, Any] = field(default_factory=dict)  # architecture=, task=, class_names=

    @property
    def is_local(self) -> bool:
        return self.kind != "remote"

    @property
    def model_id(self) -> str:
        """The id a loaded model reports: the model id, or for a local load the path as given (``~`` expanded)."""
        return str(Path(self.text).expanduser()) if self.is_local else self.text

    @property
    def directory(self) -> Path | None:
        """The folder holding a local package's files (a bare file's folder); ``None`` for a remote id."""
        if self.path is None:
            return None
        return self.path if self.kind == "folder" else self.path.parent


@dataclass(frozen=True)
class _Request:
    """One ``from_pretrained`` / ``negotiate`` call, validated and typed once by :func:`_request`, then threaded
    through the steps: the source is decided, the negotiation filters are typed (:class:`Filters`: the
    :class:`Device`, the backend and quantization sets, the batch range), ``onnx_execution_providers`` is one of the
    ``session_options``, and ``depth`` is how deep in the dependency chain this load is (0 for the caller's own)."""

    source: _Source
    filters: Filters
    weights_provider: str | None = None
    api_key: str | None = field(default=None, repr=False)
    offline: bool | None = None
    provider_options: Mapping[str, Any] | None = None
    session_options: Mapping[str, Any] = field(default_factory=dict)
    dependency_models_params: Mapping[str, Any] | None = None
    verbose: bool = False
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    depth: int = 0

    @property
    def device(self) -> Device | None:
        return self.filters.device


class AutoModel:
    """Entry point: ``AutoModel.from_pretrained(id_or_path)`` returns a ready model."""

    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | os.PathLike[str],
        *,
        weights_provider: str | None = None,
        api_key: str | None = None,
        backend: str | list[str] | None = None,
        device: Any = None,
        batch_size: int | tuple[int, int] | None = None,
        quantization: str | list[str] | None = None,
        model_package_id: str | None = None,
        onnx_execution_providers: list[Any] | None = None,
        dependency_models_params: dict[str, Any] | None = None,
        allow_untrusted_packages: bool = False,
        verbose: bool = False,
        offline: bool | None = None,
        provider_options: dict[str, Any] | None = None,
        session_options: dict[str, Any] | None = None,
        nms_fusion_preferences: bool | dict[str, Any] | None = None,
        **model_kwargs: Any,
    ) -> Model[Any]:
        """Load a model by id (through a weights provider) or from a local folder or model file.

        Args:
            model_id_or_path: a model id (``"coco/3"``, ``"mediapipe/face-detector"``), a package folder, or a bare
                model file (``.onnx``, ``.torchscript``, ``.pt2``, ``.plan``).
            weights_provider: provider name (``roboflow``, ``local``, ``http`` or a registered one); default from
                ``IM_DEFAULT_PROVIDER``.
            api_key: credentials for the provider (default ``ROBOFLOW_API_KEY`` for Roboflow).
            backend: one backend or a list of allowed ones (``onnx``, ``torch``, ``trt``).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a torch device; ``None`` = best available.
            batch_size: the batch size to support, an int or a ``(min, max)`` range.
            quantization: one or several of ``fp32``, ``fp16``, ``bf16``, ``int8``.
            model_package_id: load exactly this package (still checked against this machine).
            onnx_execution_providers: ONNX Runtime providers to use, in order.
            dependency_models_params: per dependency name, a dict of ``from_pretrained`` arguments or an already
                loaded model instance.
            allow_untrusted_packages: also consider packages whose source is not trusted.
            verbose: print the negotiation report.
            offline: resolve from the cache only (default ``IM_OFFLINE``).
            provider_options: constructor options of the provider (e.g. ``root`` of a registry).
            session_options: options for the backend's ``load`` (ONNX: ``intra_op_num_threads``,
                ``allow_spinning``...; torch: ``num_threads``, ``dtype``...). The chosen backend gets those it
                declares and any no installed backend declares (it refuses an unknown one by name); options another
                installed backend declares are left out (``onnx_execution_providers`` when a torch package wins).
                Negotiation sees them too: TensorRT's ``engine_host_code_allowed`` (default: whether the package is
                trusted; the reference's ``trt_engine_host_code_allowed``) rejects version-compatible plans it forbids.
            nms_fusion_preferences: packages with NMS inside the graph (``nms_fused``): ``None`` (default) ranks the
                packages whose NMS im runs first, ``False`` rejects fused ones, ``True`` accepts those baked with
                300 detections / confidence 0.25 / IoU 0.7 / per class, a dict (values or ``(min, max)`` ranges)
                accepts those within and prefers the closest.
            **model_kwargs: passed to the model family; ``architecture``, ``task`` and ``class_names`` (a list of
                strings) override what a local folder or bare file says.

        Raises:
            InvalidParameterError: an argument of the wrong type or value (before any work starts).
            NoCompatiblePackageError: no package can run here (the message holds the negotiation report).
            AllPackagesFailedError: every candidate failed to load; each attempt is listed (a backend's or family's
                unexpected exception is wrapped in a ``ModelLoadingError`` naming the package and backend).
            DownloadError, RetrievalError, ... (any class but a ``ModelLoadingError``): every candidate failed with
                that same class (a download, the credentials), raised as itself; each attempt is listed.
        """
        request = _request(
            0,
            model_id_or_path,
            weights_provider=weights_provider,
            api_key=api_key,
            backend=backend,
            device=device,
            batch_size=batch_size,
            quantization=quantization,
            model_package_id=model_package_id,
            onnx_execution_providers=onnx_execution_providers,
            dependency_models_params=dependency_models_params,
            allow_untrusted_packages=allow_untrusted_packages,
            verbose=verbose,
            offline=offline,
            provider_options=provider_options,
            session_options=session_options,
            nms_fusion_preferences=nms_fusion_preferences,
            **model_kwargs,
        )
        _check_task(request.source.local_overrides.get("task"))
        _check_architecture(request.source.local_overrides)
        return _load(request)

    @classmethod
    def negotiate(cls, model_id_or_path: str | os.PathLike[str], **kwargs: Any) -> NegotiationReport:
        """Judge every package of the model for this machine without loading anything.

        Takes the same filters as :meth:`from_pretrained` (``backend``, ``device``, ``batch_size``, ...).
        """
        parameters = inspect.signature(_request).parameters.values()
        accepted = {*_LOCAL_OVERRIDES, *(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)}
        for key in kwargs:
            if key not in accepted:
                raise InvalidParameterError(f"negotiate() got an unexpected argument {key!r}.")
        request = _request(0, model_id_or_path, **kwargs)
        metadata, _ = _metadata_for(request)
        return run_negotiation(metadata, request.filters)

    @classmethod
    def describe_model(cls, model_id: str, *, print_output: bool = True, **kwargs: Any) -> ModelMetadata:
        """Print the model's overview and its packages, and return its metadata."""
        from im_core._describe import print_model

        metadata, _ = _metadata_for(_request(0, model_id, **_provider_args(kwargs)))
        if print_output:
            print_model(metadata)
        return metadata

    @classmethod
    def describe_model_package(
        cls, model_id: str, package_id: str, *, print_output: bool = True, **kwargs: Any
    ) -> ModelPackage:
        """Print one package's details (backend, batch, files, requirements) and return it."""
        from im_core._describe import print_package

        metadata, _ = _metadata_for(_request(0, model_id, **_provider_args(kwargs)))
        package = metadata.package(package_id)
        if package is None:
            ids = ", ".join(sorted(p.package_id for p in metadata.packages)) or "none"
            raise InvalidParameterError(f"Model {model_id!r} has no package {package_id!r}; its packages: {ids}.")
        if print_output:
            print_package(metadata, package)
        return package

    @staticmethod
    def describe_compute_environment(*, print_output: bool = True) -> Any:
        """Print what this machine offers (OS, CPU, GPUs, backends) and return it."""
        from im_core._describe import describe_compute_environment

        return describe_compute_environment(print_output=print_output)


def _model_id(value: Any) -> str:
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise InvalidParameterError(
        f"model_id_or_path must be a model id string or a path, got {type(value).__name__} {value!r}."
    )


_OPTION_EXAMPLES = {
    "session_options": "{'intra_op_num_threads': 2}",
    "provider_options": "{'root': 'https://models.example.com/registry'}",
}


def _request(
    depth: int,
    model_id_or_path: Any,
    from_metadata: bool = False,
    /,
    *,
    weights_provider: str | None = None,
    api_key: str | None = None,
    backend: str | list[str] | None = None,
    device: Any = None,
    batch_size: int | tuple[int, int] | None = None,
    quantization: str | list[str] | None = None,
    model_package_id: str | None = None,
    onnx_execution_providers: list[Any] | None = None,
    dependency_models_params: dict[str, Any] | None = None,
    allow_untrusted_packages: bool = False,
    verbose: bool = False,
    offline: bool | None = None,
    provider_options: dict[str, Any] | None = None,
    session_options: dict[str, Any] | None = None,
    nms_fusion_preferences: bool | dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> _Request:
    """``from_pretrained``'s arguments checked and typed, so a wrong one is a clear error before any work starts.

    ``depth`` and ``from_metadata`` are positional-only: a dependency's arguments (from ``dependency_models_params``)
    cannot set them. ``from_metadata``: the id was named by a provider's metadata (a dependency's ``modelId``), so it
    is a provider id only — validated as one and never resolved as a local path (a registry must not make im load
    files of this machine, such as a folder it placed in the cache earlier).
    """
    model_id = _model_id(model_id_or_path)
    for name, value, example in (
        ("session_options", session_options, _OPTION_EXAMPLES["session_options"]),
        ("provider_options", provider_options, _OPTION_EXAMPLES["provider_options"]),
    ):
        if value is not None and not isinstance(value, Mapping):
            raise InvalidParameterError(
                f"{name} must be a dict of option names to values, got {type(value).__name__} {value!r}; "
                f"e.g. {name}={example}."
            )
    params = dependency_models_params
    if params is not None and (not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params)):
        raise DependencyModelError(
            "dependency_models_params must be a dict keyed by dependency name, each value a dict of from_pretrained "
            f"arguments or a loaded model, got {type(params).__name__} {params!r}; "
            "e.g. dependency_models_params={'detector': {'device': 'cpu'}}."
        )
    providers = onnx_execution_providers
    if providers is not None and (isinstance(providers, (str, bytes)) or not isinstance(providers, (list, tuple))):
        raise InvalidParameterError(
            f"onnx_execution_providers must be a list, got {type(providers).__name__} {providers!r}; "
            "e.g. onnx_execution_providers=['CUDAExecutionProvider', 'CPUExecutionProvider']."
        )
    for name, text in (("weights_provider", weights_provider), ("model_package_id", model_package_id)):
        if text is not None and not isinstance(text, str):
            raise InvalidParameterError(f"{name} must be a string, got {type(text).__name__} {text!r}.")
    if api_key is not None and not isinstance(api_key, str):
        raise InvalidParameterError(f"api_key must be a string, got {type(api_key).__name__}.")  # never echo it
    filters = Filters.from_arguments(
        backend=backend,
        device=device,
        batch_size=batch_size,
        quantization=quantization,
        model_package_id=model_package_id,
        allow_untrusted_packages=allow_untrusted_packages,
        nms_fusion_preferences=nms_fusion_preferences,
    )
    options = dict(session_options or {})
    if providers is not None:
        if "onnx_execution_providers" in options:
            raise InvalidParameterError(
                "onnx_execution_providers is given twice, as an argument and in session_options; pass it once."
            )
        options["onnx_execution_providers"] = list(providers)
    filters = dataclasses.replace(filters, backend_options=dict(options))
    overrides = {k: model_kwargs.pop(k) for k in _LOCAL_OVERRIDES if k in model_kwargs}
    if from_metadata:
        from im_core._cache import validate_model_id

        source = _Source(validate_model_id(model_id), "remote")
    else:
        source = _source(model_id, overrides, _provider_name(weights_provider, provider_options))
    return _Request(
        source=source,
        filters=filters,
        weights_provider=weights_provider,
        api_key=api_key,
        offline=offline,
        provider_options=provider_options,
        session_options=options,
        dependency_models_params=dependency_models_params,
        verbose=verbose,
        model_kwargs=model_kwargs,
        depth=depth,
    )


def _provider_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    allowed = {"weights_provider", "api_key", "offline", "provider_options"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise InvalidParameterError(f"Unexpected arguments {sorted(unknown)}; accepted: {sorted(allowed)}.")
    return kwargs


def _looks_like_a_path(value: str) -> bool:
    """A string that can only mean a local file: a model file suffix, or an absolute/relative/home path."""
    from im_core._local import is_model_file

    return value.startswith(("/", "./", "../", "~", ".\\", "..\\")) or is_model_file(value)


#: the built-in providers a registry root (``provider_options={'root': ...}``) chooses between, by its kind
_REGISTRY_PROVIDERS = ("roboflow", "local", "http")


def _provider_name(weights_provider: str | None, provider_options: Mapping[str, Any] | None) -> str:
    """The provider named, else the one that reads the registry root given in ``provider_options`` (a folder →
    ``local``, an http(s) URL → ``http``; the CLI's ``--registry``), else the configured default
    (``IM_DEFAULT_PROVIDER``, or the one that reads ``IM_REGISTRY``, else ``roboflow``). A default provider of
    your own that takes a ``root`` keeps it."""
    from im_core._config import registry_provider

    if weights_provider:
        return weights_provider
    default = settings().default_provider
    if provider_options is not None and default in _REGISTRY_PROVIDERS:  # a provider of your own keeps its root
        return registry_provider(provider_options.get("root")) or default
    return default


def _source(text: str, local_overrides: dict[str, Any], weights_provider: str) -> _Source:
    """Decide once whether ``text`` is a local file, a local folder or a remote model id."""
    path = Path(text).expanduser()
    if _local_path_exists(path, text):
        resolved = path.resolve()
        return _Source(text, "folder" if resolved.is_dir() else "file", resolved, local_overrides)
    if _looks_like_a_path(text):
        raise ModelNotFoundError(
            f"No such file or folder: {text!r} (looked in {path.absolute().parent}). "
            "Check the path; a model id (e.g. 'coco/3') has no file suffix and does not start with '/', '.' or '~'."
        )
    if local_overrides:
        provider = weights_provider
        raise InvalidParameterError(
            f"{', '.join(f'{k}=' for k in sorted(local_overrides))} describe(s) a local model file or folder, "
            f"but {text!r} is not a local path: it is a model id resolved by the {provider!r} "
            "provider, whose metadata already says what it is. Drop the argument, or pass the path of a local file."
        )
    return _Source(text, "remote")


def _local_path_exists(path: Path, value: str) -> bool:
    """``path.exists()``, but a name the OS refuses as too long is an :class:`UnsafePathError` (a model id's own
    message when it is one), never a raw ``OSError``."""
    try:
        return path.exists()
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
    from im_core._cache._paths import shown, validate_model_id
    from im_core.errors import UnsafePathError

    if not _looks_like_a_path(value):
        validate_model_id(value)  # raises UnsafePathError: too long, or a segment over 255 bytes
    raise UnsafePathError(f"The path {shown(value)} is too long for the file system (ENAMETOOLONG).")


def _metadata_for(request: _Request) -> tuple[ModelMetadata, str | None]:
    """The model's metadata and, for a bare file, its file name (``None`` otherwise)."""
    source = request.source
    if source.path is not None:
        from im_core._local import local_metadata

        return local_metadata(source.path, dict(source.local_overrides))
    from im_core._cache import resolve_metadata

    if request.weights_provider:
        registry().check_provider(request.weights_provider, "the weights_provider= argument")
    else:
        registry().check_provider(settings().default_provider, "the IM_DEFAULT_PROVIDER environment variable")
    metadata = resolve_metadata(
        _provider_name(request.weights_provider, request.provider_options),
        source.text,
        api_key=request.api_key,
        offline=request.offline,
        provider_options=None if request.provider_options is None else dict(request.provider_options),
        reuse_fresh=lambda snapshot: _selected_package_is_cached(snapshot, request),
    )
    return metadata, None


def _selected_package_is_cached(metadata: ModelMetadata, request: _Request) -> bool:
    """Whether the package negotiation picks from ``metadata`` (a fresh snapshot) is entirely in the cache: then
    the snapshot is used without asking the provider (``IM_METADATA_TTL``)."""
    from im_core._cache import ModelCache

    try:
        selected = run_negotiation(metadata, request.filters).selected
    except ImError:
        return False
    package = metadata.package(selected.package_id) if selected is not None else None
    return package is not None and ModelCache().has_files(package)


def _load(request: _Request) -> Model[Any]:
    metadata, weights_file = _metadata_for(request)
    report = run_negotiation(metadata, request.filters)
    if request.verbose:
        report.print()
    logger.info("%s", report)
    if not report.ranked:
        raise NoCompatiblePackageError(
            f"No package of {metadata.model_id!r} can run here.\n{report}\n"
            "Fix: relax the filters above, install the backend a package needs, or pick another device.",
            report=report.to_dict(),
        )
    dependencies = _load_dependencies(metadata, request)
    attempts: list[tuple[PackageVerdict, ImError]] = []
    for candidate in report.ranked:
        package = metadata.package(candidate.package_id)
        assert package is not None
        try:
            model = _build(metadata, package, candidate, request, dependencies, weights_file)
        except (InvalidParameterError, CacheStorageError):
            raise  # the caller's argument, or IM_HOME (full, read-only), is wrong for every package
        except ImError as exc:
            error = exc
        except Exception as exc:  # a bug or an unforeseen file problem in a backend or family: try the next one
            error = _unexpected_failure(exc, metadata, candidate)
        else:
            if attempts:
                logger.warning(
                    "Loaded %r from package %s after %d failed attempt(s).",
                    metadata.model_id,
                    candidate.package_id,
                    len(attempts),
                )
            return model
        logger.warning(
            "Loading package %s (%s on %s) of %r failed, trying the next one: %s",
            candidate.package_id,
            candidate.backend,
            candidate.device,
            metadata.model_id,
            error.message,
        )
        attempts.append((candidate, error))
    lines = [f"  {c.package_id} [{c.backend} on {c.device}]: {type(e).__name__}: {e.message}" for c, e in attempts]
    first = attempts[0][1]
    if not isinstance(first, ModelLoadingError) and all(type(e) is type(first) for _, e in attempts):
        # every candidate failed the same way before loading (a download, the credentials, a dependency): raised as
        # its own class, so that `except DownloadError` and the like catch it (docs/errors.md, AllPackagesFailedError)
        first.context["package_attempts"] = [(c.package_id, type(e).__name__) for c, e in attempts]
        if len(attempts) > 1:
            first.message += f"\nEvery candidate package of {metadata.model_id!r} failed this way:\n" + "\n".join(lines)
            first.args = (first.message,)
        raise first
    raise AllPackagesFailedError(
        f"Every candidate package of {metadata.model_id!r} failed to load:\n" + "\n".join(lines),
        attempts=[(c.package_id, type(e).__name__) for c, e in attempts],
    ) from attempts[0][1]


def _unexpected_failure(exc: Exception, metadata: ModelMetadata, candidate: PackageVerdict) -> ModelLoadingError:
    """Wrap a non-``ImError`` raised while building ``candidate`` (traceback logged at DEBUG on logger ``im``)."""
    from im_core._cache._open import unexpected_failure_error

    error = unexpected_failure_error(exc, metadata, candidate.package_id, candidate.backend, logger=logger)
    error.__cause__ = exc
    return error


@functools.lru_cache(maxsize=1)
def from_pretrained_arguments() -> frozenset[str]:
    """The keyword names ``from_pretrained`` reads itself (its parameters and the local overrides ``architecture``,
    ``task``, ``class_names``): a family's ``LOAD_OPTIONS`` must never use one, it would never reach the family."""
    import inspect

    params = inspect.signature(AutoModel.from_pretrained).parameters.values()
    return frozenset(p.name for p in params if p.kind is not p.VAR_KEYWORD).union(_LOCAL_OVERRIDES)


def _check_load_options(family: type, options: Mapping[str, Any]) -> None:
    """Keyword arguments of ``from_pretrained`` left for the family must be ones it reads (``Model.LOAD_OPTIONS``;
    a family that does not declare them gets every keyword unchecked). A misspelt argument of ``from_pretrained``
    itself (``devcie``) lands here too, so the suggestions include those names."""
    declared = getattr(family, "LOAD_OPTIONS", None)
    if declared is not None:
        check_names(
            options,
            declared,
            f"{family.__name__} takes no load option(s)",
            " Per-call parameters (confidence, iou_threshold, ...) go to the call instead: "
            "model(image, confidence=0.5).",
            also_known=from_pretrained_arguments(),
        )


def _check_task(task: Any) -> None:
    """A task given by name (``task=`` for a local file) must be one that an installed model family implements."""
    known = {entry.task for entry in registry().models}
    if isinstance(task, str) and known:  # another type is reported with the local metadata
        check_names([task], known, "task= names a task that no installed model family implements:")


def _check_architecture(overrides: Mapping[str, Any]) -> None:
    """An architecture given by name (``architecture=`` for a local file) must be one an installed model family
    implements (for the task, when ``task=`` is given too); a near miss gets a suggestion."""
    architecture, task = overrides.get("architecture"), overrides.get("task")
    plugins = registry()
    if not isinstance(architecture, str) or not plugins.models:  # another type is reported with the local metadata
        return
    task = task if isinstance(task, str) else None
    if architecture.lower() not in plugins.architectures(task):
        raise plugins.unknown_architecture(architecture, task, origin="the architecture= argument")


def _build(
    metadata: ModelMetadata,
    package: ModelPackage,
    candidate: PackageVerdict,
    request: _Request,
    dependencies: dict[str, Any],
    weights_file: str | None,
) -> Model[Any]:
    family = registry().model_class(metadata.architecture, metadata.task, package.backend)
    _check_load_options(family, request.model_kwargs)

    def open_package(directory: Path) -> Model[Any]:
        ctx = PackageContext(
            model_id=request.source.model_id,
            directory=directory,
            package=package,
            metadata=metadata,
            backend=package.backend,
            device=candidate.target or Device("cpu"),
            dependencies=dependencies,
            options=dict(request.model_kwargs),
            session_options=_session_options_for(package.backend, request.session_options),
            weights_file=weights_file,
            class_names_override=user_class_names(request.source.local_overrides.get("class_names")),
        )
        model = family.from_package(ctx)
        if not isinstance(model, Model):
            raise PluginError(
                f"{family.__name__}.from_package returned {type(model).__name__}, not a Model: the model family is "
                "broken. Fix: update or report the plugin that provides it."
            )
        return model

    local = request.source.directory
    if local is not None:
        return open_package(local)
    # from the cache: kept from prune while the backend opens it; re-hashed (and fetched again) if it fails
    from im_core._cache import open_cached

    return open_cached(metadata, package, offline=request.offline, open=open_package)


def _load_dependencies(metadata: ModelMetadata, request: _Request) -> dict[str, Any]:
    """Load the models ``metadata`` depends on (one level deep), by dependency name."""
    params = dict(request.dependency_models_params or {})
    declared = {d.name for d in metadata.dependencies}
    unknown = sorted(set(params) - declared)
    if unknown:
        raise DependencyModelError(
            f"dependency_models_params names {unknown}, but {metadata.model_id!r} declares "
            f"{sorted(declared) or 'no dependencies'}."
        )
    if not metadata.dependencies:
        return {}
    if request.depth >= 1:
        raise DependencyModelError(
            f"{metadata.model_id!r} is itself a dependency and declares dependencies "
            f"({sorted(declared)}); only one level of dependent models is supported. Fix: load "
            f"{metadata.model_id!r} yourself with AutoModel.from_pretrained and pass the loaded model in the parent's "
            "dependency_models_params, or declare its dependencies on the parent model instead."
        )
    loaded: dict[str, Any] = {}
    for dep in metadata.dependencies:
        given = params.get(dep.name)
        if isinstance(given, Model):
            loaded[dep.name] = given
            continue
        if given is not None and not isinstance(given, dict):
            raise DependencyModelError(
                f"dependency_models_params[{dep.name!r}] must be a dict of from_pretrained arguments or a loaded "
                f"model, got {type(given).__name__}."
            )
        kwargs = dict(given or {})
        from_metadata = "model_id_or_path" not in kwargs  # the caller's own choice may be a local path
        model_id = kwargs.pop("model_id_or_path", dep.model_id)
        kwargs.setdefault("model_package_id", dep.package_id)
        kwargs.setdefault("weights_provider", request.weights_provider)
        kwargs.setdefault("api_key", request.api_key)
        kwargs.setdefault("offline", request.offline)
        kwargs.setdefault("provider_options", request.provider_options)
        kwargs.setdefault("device", request.device)
        logger.info("Loading dependency %r of %r: %s", dep.name, metadata.model_id, model_id)
        loaded[dep.name] = _load(_request(request.depth + 1, model_id, from_metadata, **kwargs))
    return loaded


def _declared_options(backend: str) -> frozenset[str] | None:
    """The ``load`` options backend ``backend`` declares (``load_options``); ``None`` if it declares none or cannot
    be imported."""
    try:
        declared = getattr(registry().backend(backend), "load_options", None)
    except Exception:  # a backend that cannot be imported or built declares nothing; it never blocks the load
        return None
    return frozenset(declared) if declared is not None else None


def _session_options_for(backend: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The session options ``backend`` gets: every option, less those another installed backend declares and
    ``backend`` does not (they are meant for that backend, e.g. ``onnx_execution_providers`` when a torch package
    was chosen). An option no backend declares is passed on, for ``backend`` to refuse it by name."""
    own = _declared_options(backend) or frozenset()
    if all(k in own for k in options):
        return dict(options)
    others: set[str] = set()
    for name in sorted(registry().backends):
        if name != backend:
            others |= _declared_options(name) or frozenset()
    left_out = sorted(k for k in options if k not in own and k in others)
    if left_out:
        logger.debug("Session options %s are not the %s backend's; left out.", left_out, backend)
    return {k: v for k, v in options.items() if k not in left_out}


def load_package(
    metadata: ModelMetadata, directory: str | os.PathLike[str], *, package_id: str | None = None, device: Any = None
) -> Model[Any]:
    """Build the model of one package from a folder holding its files, as ``from_pretrained`` would after download.

    For tools that publish packages (``im registry add``): loading the package before it is published reports, with
    the errors loading would raise, what would otherwise fail only for its users (an architecture/task no family
    implements: ``ModelImplementationNotFoundError``; class names that disagree with the network's output:
    ``CorruptedModelPackageError``; a file the backend refuses: ``ModelLoadingError``). The package is negotiated for
    this machine (``device`` as in ``from_pretrained``); it must be one that can run here.

    Raises:
        NoCompatiblePackageError: the package cannot run on this machine (its report says why).
        ImError: what loading it raises.
    """
    filters = Filters.from_arguments(device=device, model_package_id=package_id)
    report = run_negotiation(metadata, filters)
    if not report.ranked:
        raise NoCompatiblePackageError(
            f"No package of {metadata.model_id!r} can run here.\n{report}", report=report.to_dict()
        )
    candidate = report.ranked[0]
    package = metadata.package(candidate.package_id)
    assert package is not None
    family = registry().model_class(metadata.architecture, metadata.task, package.backend)
    ctx = PackageContext(
        model_id=metadata.model_id,
        directory=Path(directory),
        package=package,
        metadata=metadata,
        backend=package.backend,
        device=candidate.target or Device("cpu"),
    )
    model = family.from_package(ctx)
    if not isinstance(model, Model):
        raise PluginError(f"{family.__name__}.from_package returned {type(model).__name__}, not a Model.")
    return model
