"""``AutoModel``: resolve a model, negotiate its best package, download it, and build the model (DESIGN.md §2–§4)."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from im_core._config import settings
from im_core._context import PackageContext
from im_core._metadata import ModelMetadata, ModelPackage
from im_core._negotiation import NegotiationReport, PackageVerdict, negotiate_packages
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

__all__ = ["AutoModel"]

logger = logging.getLogger("im")

_LOCAL_OVERRIDES = ("architecture", "task", "class_names")


@dataclass
class _Request:
    """The arguments of one ``from_pretrained`` call, threaded through the steps as one object."""

    model_id_or_path: str
    weights_provider: str | None = None
    api_key: str | None = field(default=None, repr=False)
    backend: Any = None
    device: Any = None
    batch_size: Any = None
    quantization: Any = None
    model_package_id: str | None = None
    onnx_execution_providers: Any = None
    dependency_models_params: dict[str, Any] | None = None
    allow_untrusted_packages: bool = False
    verbose: bool = False
    offline: bool | None = None
    provider_options: dict[str, Any] | None = None
    session_options: dict[str, Any] | None = None
    local_overrides: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    depth: int = 0

    def filters(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "device": self.device,
            "batch_size": self.batch_size,
            "quantization": self.quantization,
            "model_package_id": self.model_package_id,
            "allow_untrusted_packages": self.allow_untrusted_packages,
        }


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
                ``allow_spinning``...; torch: ``num_threads``, ``dtype``...); an unknown one is an error.
            **model_kwargs: passed to the model family; ``architecture``, ``task`` and ``class_names`` (a list of
                strings) override what a local folder or bare file says.

        Raises:
            InvalidParameterError: an argument of the wrong type or value (before any work starts).
            NoCompatiblePackageError: no package can run here (the message holds the negotiation report).
            AllPackagesFailedError: every candidate failed to load; each attempt is listed (a backend's or family's
                unexpected exception is wrapped in a ``ModelLoadingError`` naming the package and backend).
        """
        request = _Request(
            model_id_or_path=_model_id(model_id_or_path),
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
            local_overrides={k: model_kwargs.pop(k) for k in _LOCAL_OVERRIDES if k in model_kwargs},
            model_kwargs=model_kwargs,
            depth=int(model_kwargs.pop("_dependency_depth", 0)),
        )
        _check_arguments(request)
        return _load(request)

    @classmethod
    def negotiate(cls, model_id_or_path: str | os.PathLike[str], **kwargs: Any) -> NegotiationReport:
        """Judge every package of the model for this machine without loading anything.

        Takes the same filters as :meth:`from_pretrained` (``backend``, ``device``, ``batch_size``, ...).
        """
        request = _Request(model_id_or_path=_model_id(model_id_or_path))
        for key, value in kwargs.items():
            if key in _LOCAL_OVERRIDES:
                request.local_overrides[key] = value
            elif hasattr(request, key) and key not in ("model_kwargs", "depth", "local_overrides"):
                setattr(request, key, value)
            else:
                raise InvalidParameterError(f"negotiate() got an unexpected argument {key!r}.")
        metadata, _ = _metadata_for(request)
        return negotiate_packages(metadata, **request.filters())

    @classmethod
    def describe_model(cls, model_id: str, *, print_output: bool = True, **kwargs: Any) -> ModelMetadata:
        """Print the model's overview and its packages, and return its metadata."""
        from im_core._describe import print_model

        metadata, _ = _metadata_for(_Request(model_id_or_path=_model_id(model_id), **_provider_args(kwargs)))
        if print_output:
            print_model(metadata)
        return metadata

    @classmethod
    def describe_model_package(
        cls, model_id: str, package_id: str, *, print_output: bool = True, **kwargs: Any
    ) -> ModelPackage:
        """Print one package's details (backend, batch, files, requirements) and return it."""
        from im_core._describe import print_package

        metadata, _ = _metadata_for(_Request(model_id_or_path=_model_id(model_id), **_provider_args(kwargs)))
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


def _check_arguments(request: _Request) -> None:
    """Type checks of ``from_pretrained``'s arguments, so a wrong type is a clear error before any work starts."""
    for name, example in _OPTION_EXAMPLES.items():
        value = getattr(request, name)
        if value is not None and not isinstance(value, Mapping):
            raise InvalidParameterError(
                f"{name} must be a dict of option names to values, got {type(value).__name__} {value!r}; "
                f"e.g. {name}={example}."
            )
    params = request.dependency_models_params
    if params is not None and (not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params)):
        raise DependencyModelError(
            "dependency_models_params must be a dict keyed by dependency name, each value a dict of from_pretrained "
            f"arguments or a loaded model, got {type(params).__name__} {params!r}; "
            "e.g. dependency_models_params={'detector': {'device': 'cpu'}}."
        )
    providers = request.onnx_execution_providers
    if providers is not None and (isinstance(providers, (str, bytes)) or not isinstance(providers, (list, tuple))):
        raise InvalidParameterError(
            f"onnx_execution_providers must be a list, got {type(providers).__name__} {providers!r}; "
            "e.g. onnx_execution_providers=['CUDAExecutionProvider', 'CPUExecutionProvider']."
        )
    for name in ("weights_provider", "model_package_id", "api_key"):
        value = getattr(request, name)
        if value is not None and not isinstance(value, str):
            shown = "" if name == "api_key" else f" {value!r}"  # never echo credentials
            raise InvalidParameterError(f"{name} must be a string, got {type(value).__name__}{shown}.")


def _provider_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    allowed = {"weights_provider", "api_key", "offline", "provider_options"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise InvalidParameterError(f"Unexpected arguments {sorted(unknown)}; accepted: {sorted(allowed)}.")
    return kwargs


def _looks_like_a_path(value: str) -> bool:
    """A string that can only mean a local file: a model file suffix, or an absolute/relative/home path."""
    from im_core._local import BARE_FILE_BACKENDS

    return value.startswith(("/", "./", "../", "~", ".\\", "..\\")) or Path(value).suffix.lower() in BARE_FILE_BACKENDS


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
    path = Path(request.model_id_or_path).expanduser()
    if _local_path_exists(path, request.model_id_or_path):
        from im_core._local import local_metadata

        return local_metadata(path.resolve(), request.local_overrides)
    if _looks_like_a_path(request.model_id_or_path):
        raise ModelNotFoundError(
            f"No such file or folder: {request.model_id_or_path!r} (looked in {path.absolute().parent}). "
            "Check the path; a model id (e.g. 'coco/3') has no file suffix and does not start with '/', '.' or '~'."
        )
    from im_core._cache import resolve_metadata

    provider = request.weights_provider or settings().default_provider
    if request.local_overrides:
        raise InvalidParameterError(
            f"{', '.join(f'{k}=' for k in sorted(request.local_overrides))} describe(s) a local model file or folder, "
            f"but {request.model_id_or_path!r} is not a local path: it is a model id resolved by the {provider!r} "
            "provider, whose metadata already says what it is. Drop the argument, or pass the path of a local file."
        )
    metadata = resolve_metadata(
        provider,
        request.model_id_or_path,
        api_key=request.api_key,
        offline=request.offline,
        provider_options=request.provider_options,
    )
    return metadata, None


def _load(request: _Request) -> Model[Any]:
    metadata, weights_file = _metadata_for(request)
    report = negotiate_packages(metadata, **request.filters())
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
    raise AllPackagesFailedError(
        f"Every candidate package of {metadata.model_id!r} failed to load:\n" + "\n".join(lines),
        attempts=[(c.package_id, type(e).__name__) for c, e in attempts],
    ) from attempts[0][1]


def _unexpected_failure(exc: Exception, metadata: ModelMetadata, candidate: PackageVerdict) -> ModelLoadingError:
    """Wrap a non-``ImError`` raised while building ``candidate`` (traceback logged at DEBUG on logger ``im``)."""
    logger.debug("Traceback of the failure of package %s of %r:", candidate.package_id, metadata.model_id, exc_info=exc)
    error = ModelLoadingError(
        f"Package {candidate.package_id!r} of {metadata.model_id!r} failed in the {candidate.backend} backend or the "
        f"{metadata.architecture} model family with an unexpected {type(exc).__name__}: {exc}. This is probably a "
        "bug in that backend or family, or a file it does not expect; the traceback is logged at DEBUG level "
        "(logger 'im') and chained to this error.",
        package_id=candidate.package_id,
        backend=candidate.backend,
        error_type=type(exc).__name__,
    )
    error.__cause__ = exc
    return error


def _check_load_options(family: type, options: dict[str, Any]) -> None:
    """Keyword arguments of ``from_pretrained`` left for the family must be ones it reads (``Model.LOAD_OPTIONS``;
    a family that does not declare them gets every keyword unchecked)."""
    declared = getattr(family, "LOAD_OPTIONS", None)
    if declared is not None:
        check_names(
            options,
            declared,
            f"{family.__name__} takes no load option(s)",
            " Per-call parameters (confidence, iou_threshold, ...) go to the call instead: "
            "model(image, confidence=0.5).",
        )


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
    path = Path(request.model_id_or_path).expanduser()

    def open_package(directory: Path) -> Model[Any]:
        session_options: dict[str, Any] = dict(request.session_options or {})
        if request.onnx_execution_providers is not None and package.backend == "onnx":
            session_options["onnx_execution_providers"] = request.onnx_execution_providers
        ctx = PackageContext(
            model_id=request.model_id_or_path if not path.exists() else str(path),
            directory=directory,
            package=package,
            metadata=metadata,
            backend=package.backend,
            device=candidate.device or "cpu",
            dependencies=dependencies,
            options=dict(request.model_kwargs),
            session_options=session_options,
            weights_file=weights_file,
        )
        model = family.from_package(ctx)
        if not isinstance(model, Model):
            raise PluginError(
                f"{family.__name__}.from_package returned {type(model).__name__}, not a Model: the model family is "
                "broken. Fix: update or report the plugin that provides it."
            )
        return model

    if path.exists():
        return open_package(path.resolve() if path.is_dir() else path.resolve().parent)
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
        model_id = kwargs.pop("model_id_or_path", dep.model_id)
        kwargs.setdefault("model_package_id", dep.package_id)
        kwargs.setdefault("weights_provider", request.weights_provider)
        kwargs.setdefault("api_key", request.api_key)
        kwargs.setdefault("offline", request.offline)
        kwargs.setdefault("provider_options", request.provider_options)
        kwargs.setdefault("device", request.device)
        logger.info("Loading dependency %r of %r: %s", dep.name, metadata.model_id, model_id)
        loaded[dep.name] = AutoModel.from_pretrained(model_id, _dependency_depth=request.depth + 1, **kwargs)
    return loaded
