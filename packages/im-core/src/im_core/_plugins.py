"""Plugin discovery through entry points, with lazy loading of implementations (DESIGN.md §1).

Entry-point groups and what each value names:

=======================  =====================================================================
``im.backends``          a :class:`BackendManifest`
``im.weights_providers`` a :class:`ProviderManifest`
``im.models``            a :class:`ModelsManifest` (a list of :class:`ModelEntry`)
``im.pipelines``         a :class:`PipelinesManifest` (a list of :class:`PipelineEntry`)
=======================  =====================================================================

Manifests are plain strings (names, tasks, ``module:attr`` targets): scanning them imports only the plugin's
light ``_plugin`` module. The implementation is imported when something needs it. A plugin whose manifest cannot
be loaded produces a warning and is remembered as broken; using it raises :class:`PluginError` naming the
distribution and the extra to install. ``import im_core`` never fails because of a plugin.
"""

from __future__ import annotations

import importlib
import inspect
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any

from im_core.errors import (
    InvalidParameterError,
    MissingDependencyError,
    ModelImplementationNotFoundError,
    PluginError,
)

__all__ = [
    "BUILTIN_PLUGINS",
    "PLUGIN_API_VERSION",
    "BackendManifest",
    "ModelEntry",
    "ModelsManifest",
    "PipelineEntry",
    "PipelinesManifest",
    "PluginRegistry",
    "ProviderManifest",
    "load_target",
    "register",
    "registry",
]

PLUGIN_API_VERSION = 1
GROUPS = ("im.backends", "im.weights_providers", "im.models", "im.pipelines")

#: Plugins that ship with im, by entry-point group: name -> (distribution, extra of the ``im`` meta-package).
#: Asking for one of these when its distribution is not installed says what to install.
BUILTIN_PLUGINS: dict[str, dict[str, tuple[str, str | None]]] = {
    "im.backends": {
        "onnx": ("im-backend-onnx", None),
        "torch": ("im-backend-torch", None),
        "trt": ("im-backend-trt", "trt"),
    },
    "im.weights_providers": {name: ("im-providers", None) for name in ("roboflow", "local", "http")},
    "im.pipelines": {name: ("im-pipelines", None) for name in ("ocr", "face-gaze")},
}
#: The distribution holding the built-in model families (group ``im.models``).
MODELS_DISTRIBUTION = "im-models"


def load_target(target: str, *, distribution: str | None = None, extra: str | None = None) -> Any:
    """Import ``"package.module:attr"`` and return the attribute.

    Raises:
        MissingDependencyError: the module (or something it imports) is not installed; says what to install.
        PluginError: the target string is malformed or the attribute does not exist.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise PluginError(f"Plugin target {target!r} is not of the form 'package.module:attribute'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = _install_hint(distribution, extra)
        raise MissingDependencyError(
            f"Cannot import {module_name!r} ({exc}). {hint}", distribution=distribution, extra=extra
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{module_name!r} has no attribute {attr!r} (plugin target {target!r}).") from None
    return obj


def _install_hint(distribution: str | None, extra: str | None) -> str:
    if distribution and extra:
        return f"Install it with: pip install '{distribution}' (or the meta-package extra: pip install 'im[{extra}]')."
    if distribution:
        return f"Install it with: pip install '{distribution}'."
    return "Install the package that provides it."


@dataclass(frozen=True)
class BackendManifest:
    """Declares a backend. ``target`` names a zero-argument factory or class returning a ``BackendPlugin``."""

    name: str
    target: str
    distribution: str
    extra: str | None = None
    runtime_packages: tuple[str, ...] = ()  # distributions whose versions describe the runtime
    api_version: int = PLUGIN_API_VERSION


@dataclass(frozen=True)
class ProviderManifest:
    """Declares a weights provider. ``target`` names a class taking keyword options, returning a provider."""

    name: str
    target: str
    distribution: str
    description: str = ""
    api_version: int = PLUGIN_API_VERSION


@dataclass(frozen=True)
class ModelEntry:
    """One model family implementation.

    Attributes:
        architectures: architecture names it serves (``"yolov8"``, ``"yolo11"``...).
        task: the task (``object-detection``, ``instance-segmentation``, ``classification``...).
        target: ``module:Class`` of the family (a ``im_core.Model`` subclass with ``from_package``).
        backends: backends whose packages it can load.
        features: model features it supports (a package with other features is not its to load).
    """

    architectures: tuple[str, ...]
    task: str
    target: str
    backends: tuple[str, ...] = ("onnx", "torch", "trt")
    features: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ModelsManifest:
    """Model families of one distribution.

    ``sniffers`` name functions ``(file_metadata: dict[str, str], path: Path) -> dict | None`` that recognise a bare
    model file from the metadata embedded in it (e.g. an Ultralytics ONNX export) and return
    ``{"architecture", "task", "class_names", "input_size", "features"}`` (only what they know), or ``None``.
    """

    entries: tuple[ModelEntry, ...]
    distribution: str
    sniffers: tuple[str, ...] = ()
    api_version: int = PLUGIN_API_VERSION


@dataclass(frozen=True)
class PipelineEntry:
    """A pipeline: ``target`` names a class with ``from_models(models, **kwargs)``."""

    name: str
    target: str
    default_models: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class PipelinesManifest:
    entries: tuple[PipelineEntry, ...]
    distribution: str
    api_version: int = PLUGIN_API_VERSION


@dataclass
class _Broken:
    group: str
    name: str
    distribution: str | None
    error: str


@dataclass
class PluginRegistry:
    """The plugins of this process: scanned from entry points once, plus those added with :func:`register`."""

    backends: dict[str, BackendManifest] = field(default_factory=dict)
    providers: dict[str, ProviderManifest] = field(default_factory=dict)
    models: list[ModelEntry] = field(default_factory=list)
    sniffers: list[str] = field(default_factory=list)
    pipelines: dict[str, PipelineEntry] = field(default_factory=dict)
    broken: list[_Broken] = field(default_factory=list)
    _instances: dict[tuple[str, str], Any] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- scanning --------------------------------------------------------------------------------------------
    def scan(self, entry_points: Iterable[Any] | None = None) -> None:
        """Read every entry point of the im groups (or the given ones, for tests)."""
        eps = entry_points if entry_points is not None else _im_entry_points()
        for ep in eps:
            try:
                manifest = ep.load()
            except Exception as exc:  # a broken plugin must never break im_core
                self._mark_broken(ep.group, ep.name, _distribution_name(ep), f"{type(exc).__name__}: {exc}")
                continue
            try:
                self.add(manifest, group=ep.group)
            except PluginError as exc:
                self._mark_broken(ep.group, ep.name, _distribution_name(ep), exc.message)

    def _mark_broken(self, group: str, name: str, dist: str | None, error: str) -> None:
        self.broken.append(_Broken(group, name, dist, error))
        warnings.warn(
            f"im plugin {name!r} (group {group}, distribution {dist or 'unknown'}) could not be loaded and is "
            f"skipped: {error}. Reinstall or upgrade that distribution.",
            RuntimeWarning,
            stacklevel=3,
        )

    def add(self, manifest: Any, *, group: str | None = None, replace: bool = False) -> None:
        """Add one manifest (from an entry point or :func:`register`)."""
        version = getattr(manifest, "api_version", None)
        if version != PLUGIN_API_VERSION:
            raise PluginError(
                f"Plugin manifest {manifest!r} declares plugin API {version}; this im-core speaks "
                f"{PLUGIN_API_VERSION}. Install matching versions of im-core and the plugin."
            )
        with self._lock:
            if isinstance(manifest, BackendManifest):
                self._put(self.backends, manifest.name, manifest, replace)
            elif isinstance(manifest, ProviderManifest):
                self._put(self.providers, manifest.name, manifest, replace)
            elif isinstance(manifest, ModelsManifest):
                self.models.extend(manifest.entries)
                self.sniffers.extend(manifest.sniffers)
            elif isinstance(manifest, PipelinesManifest):
                for entry in manifest.entries:
                    self._put(self.pipelines, entry.name, entry, replace)
            else:
                raise PluginError(f"Entry point in {group or '?'} gave {type(manifest).__name__}, not a manifest.")

    @staticmethod
    def _put(table: dict[str, Any], name: str, value: Any, replace: bool) -> None:
        if name in table and not replace and table[name] != value:
            raise PluginError(f"Plugin name {name!r} is already registered; pass replace=True to override it.")
        table[name] = value

    # -- lookups ---------------------------------------------------------------------------------------------
    def backend(self, name: str) -> Any:
        """The backend plugin instance called ``name`` (imported on first use)."""
        manifest = self.backends.get(name)
        if manifest is None:
            raise self._unknown("im.backends", name, sorted(self.backends), "backend")
        return self._instance("backend", name, manifest.target, manifest.distribution, manifest.extra)

    def provider(self, name: str, **options: Any) -> Any:
        """A weights provider instance called ``name``; options are passed to its constructor."""
        manifest = self.providers.get(name)
        if manifest is None:
            raise self._unknown("im.weights_providers", name, sorted(self.providers), "weights provider")
        cls = load_target(manifest.target, distribution=manifest.distribution)
        _check_options(cls, options, f"weights provider {name!r}")
        return cls(**options)

    def pipeline(self, name: str) -> PipelineEntry:
        """The pipeline entry called ``name``."""
        entry = self.pipelines.get(name)
        if entry is None:
            raise self._unknown("im.pipelines", name, sorted(self.pipelines), "pipeline")
        return entry

    def model_class(self, architecture: str, task: str, backend: str) -> type:
        """The family class for ``(architecture, task)`` that accepts ``backend`` packages."""
        entry = self.find_model(architecture, task, backend)
        return load_target(entry.target, distribution=MODELS_DISTRIBUTION)

    def find_model(self, architecture: str, task: str, backend: str | None = None) -> ModelEntry:
        arch = architecture.lower()
        matches = [e for e in self.models if arch in e.architectures and e.task == task]
        if backend is not None:
            with_backend = [e for e in matches if backend in e.backends]
            if matches and not with_backend:
                raise ModelImplementationNotFoundError(
                    f"The {architecture!r} {task} family does not support {backend!r} packages "
                    f"(it supports {sorted({b for e in matches for b in e.backends})})."
                )
            matches = with_backend
        if not matches:
            known = sorted({f"{a}/{e.task}" for e in self.models for a in e.architectures})
            hint = f" No model families are installed. {_install_hint(MODELS_DISTRIBUTION, None)}"
            hint = "" if self.models else hint
            raise ModelImplementationNotFoundError(
                f"No installed model family implements architecture {architecture!r} for task {task!r}.{hint}"
                f" Known: {', '.join(known) or 'none'}."
            )
        return matches[-1]  # the last registered wins, so user code can override a built-in

    def _instance(self, kind: str, name: str, target: str, dist: str | None, extra: str | None) -> Any:
        key = (kind, name)
        with self._lock:
            if key not in self._instances:
                factory = load_target(target, distribution=dist, extra=extra)
                self._instances[key] = factory() if callable(factory) else factory
            return self._instances[key]

    def _unknown(self, group: str, name: str, known: list[str], what: str) -> PluginError:
        broken = [b for b in self.broken if b.group == group and b.name == name]
        if broken:
            b = broken[0]
            return PluginError(
                f"The {what} {name!r} is installed (distribution {b.distribution}) but failed to load: {b.error}. "
                f"Reinstall it: pip install --force-reinstall '{b.distribution}'."
            )
        installed = ", ".join(known) or "none"
        builtin = BUILTIN_PLUGINS.get(group, {}).get(name)
        if builtin is not None:
            dist, extra = builtin
            return PluginError(
                f"The {what} {name!r} comes with the distribution {dist!r}, which is not installed (installed: "
                f"{installed}). {_install_hint(dist, extra)}",
                distribution=dist,
                extra=extra,
            )
        return PluginError(
            f"Unknown {what} {name!r}. Installed: {installed}."
            f" Install the distribution that provides it, or add one with im_core.register()."
        )


def _check_options(factory: Any, options: dict[str, Any], what: str) -> None:
    """Raise :class:`InvalidParameterError` if ``factory(**options)`` cannot bind (names only; values never shown)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no introspectable signature: let the call decide
        return
    try:
        signature.bind(**options)
    except TypeError as exc:
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        accepted = [p.name for p in signature.parameters.values() if p.kind in kinds]
        raise InvalidParameterError(
            f"provider_options {sorted(options)} do not fit the {what}: {exc}. It accepts: "
            f"{', '.join(accepted) or 'no options'}.",
            accepted=accepted,
        ) from None


def _distribution_name(ep: Any) -> str | None:
    """The name of the distribution declaring ``ep`` (only for messages: reading it parses that distribution's
    METADATA file, so it is not done for plugins that load)."""
    try:
        return getattr(getattr(ep, "dist", None), "name", None)
    except Exception:  # unreadable metadata: the message says "unknown"
        return None


_entry_points_cache: list[Any] | None = None


def _im_entry_points(*, refresh: bool = False) -> list[Any]:
    """The entry points of the im groups (:data:`GROUPS`), in group order; read once per process.

    ``importlib.metadata.entry_points()`` reads the metadata of every installed distribution, so it is called once
    for all groups (not once per group) and the answer is kept; ``refresh=True`` reads it again (a distribution
    installed since). Python 3.10/3.11 return a ``SelectableGroups`` and 3.12+ an ``EntryPoints``: both have
    ``select(group=...)``.
    """
    global _entry_points_cache
    if _entry_points_cache is None or refresh:
        every = importlib_metadata.entry_points()
        _entry_points_cache = [ep for group in GROUPS for ep in every.select(group=group)]
    return list(_entry_points_cache)


_registry: PluginRegistry | None = None
_registry_lock = threading.Lock()


def registry(*, refresh: bool = False) -> PluginRegistry:
    """The process-wide plugin registry, scanned on first use (or again with ``refresh=True``, which also reads
    the installed distributions' entry points again)."""
    global _registry
    with _registry_lock:
        if _registry is None or refresh:
            fresh = PluginRegistry()
            if refresh:
                _im_entry_points(refresh=True)
            fresh.scan()
            if _registry is not None:  # keep what user code registered
                for m in _user_manifests:
                    fresh.add(m, replace=True)
            _registry = fresh
        return _registry


_user_manifests: list[Any] = []


def register(manifest: Any, *, replace: bool = False) -> None:
    """Add a plugin defined in user code (a backend, provider, models or pipelines manifest).

    Example::

        from im_core import ProviderManifest, register
        register(ProviderManifest(name="mine", target="my_pkg.provider:MyProvider", distribution="my-pkg"))
    """
    registry().add(manifest, replace=replace)
    _user_manifests.append(manifest)
