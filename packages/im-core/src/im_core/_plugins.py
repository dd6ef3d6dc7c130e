"""Plugin discovery through entry points, with lazy loading of implementations (DESIGN.md §1).

Entry-point groups and what each value names:

=======================  =====================================================================
``im.backends``          a :class:`BackendManifest`
``im.weights_providers`` a :class:`ProviderManifest`
``im.models``            a :class:`ModelsManifest` (a list of :class:`ModelEntry`)
``im.pipelines``         a :class:`PipelinesManifest` (a list of :class:`PipelineEntry`)
``im.cli``               a :class:`CommandManifest` (a subcommand of ``im``)
=======================  =====================================================================

Manifests are plain data (names, tasks, numbers, ``module:attr`` targets): scanning them imports only the plugin's
light ``_plugin`` module. The implementation is imported when something needs it. A plugin whose manifest cannot
be loaded produces a warning and is remembered as broken; using it raises :class:`PluginError` naming the
distribution and the extra to install. ``import im_core`` never fails because of a plugin.

im-core holds no list of backends: each :class:`BackendManifest` declares its priority per device kind, the file
suffixes and weights-file names it loads, its aliases and how to read its requirement block, and negotiation and
local loading use only those declarations.
"""

from __future__ import annotations

import importlib
import inspect
import re
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any

from im_core.errors import (
    InvalidParameterError,
    MalformedMetadataError,
    MissingDependencyError,
    ModelImplementationNotFoundError,
    PluginError,
)

if TYPE_CHECKING:
    from im_core._tasks import Model

__all__ = [
    "PLUGIN_API_VERSION",
    "BackendManifest",
    "CommandManifest",
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
GROUPS = ("im.backends", "im.weights_providers", "im.models", "im.pipelines", "im.cli")

#: The distribution holding the built-in model families (group ``im.models``).
MODELS_DISTRIBUTION = "im-models"
#: Where im's own plugins of a group come from, for the install hint when a name is not registered (no list of
#: names): backends follow the naming convention ``im-backend-<name>``; the other groups are one distribution each.
GROUP_DISTRIBUTIONS: dict[str, str] = {
    "im.backends": "im-backend-{name}",
    "im.weights_providers": "im-providers",
    "im.models": MODELS_DISTRIBUTION,
    "im.pipelines": "im-pipelines",
}
#: The code-free server meta-package; its extras (``im-vision[trt]``) are read from its installed metadata for hints.
META_PACKAGE = "im-vision"


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


def _meta_package_extra(distribution: str) -> str | None:
    """The extra of the installed meta-package that brings ``distribution`` (``im-vision[trt]``), ``None`` when it is a
    default dependency, absent, or the meta-package is not installed (only used for error messages)."""
    wanted = _canonical_dist(distribution)
    try:
        requires = importlib_metadata.distribution(META_PACKAGE).requires or []
    except Exception:  # not installed, or unreadable metadata: no extra to suggest
        return None
    for line in requires:
        spec, _, marker = line.partition(";")
        name = re.split(r"[\s\[<>=!~;(]", spec.strip(), maxsplit=1)[0]
        found = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if _canonical_dist(name) == wanted and found:
            return found.group(1)
    return None


def _canonical_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _install_hint(distribution: str | None, extra: str | None) -> str:
    if distribution and extra:
        meta = f"pip install '{META_PACKAGE}[{extra}]'"
        return f"Install it with: pip install '{distribution}' (or the meta-package extra: {meta})."
    if distribution:
        return f"Install it with: pip install '{distribution}'."
    return "Install the package that provides it."


@dataclass(frozen=True)
class BackendManifest:
    """Declares a backend and the facts negotiation and local loading use (plain data; nothing is imported).

    Attributes:
        name: the backend's name (``ModelPackage.backend``, ``backend=`` of ``from_pretrained``).
        target: ``module:attr`` of a zero-argument factory or class returning a ``BackendPlugin``.
        distribution: the distribution that ships it (named in install hints).
        extra: the meta-package extra that installs it, if any.
        runtime_packages: distributions whose versions describe the runtime.
        priority: rank per device kind (``"cpu"``, ``"cuda"``, ``"mps"``): among the packages that can run on a
            device, those of the backend with the larger number come first; a kind not listed ranks 0. im's own:
            trt ``{"cuda": 3}``, onnx ``{"cuda": 2, "cpu": 2}``, torch ``{"cuda": 1, "cpu": 1, "mps": 1}``.
        file_suffixes: model-file suffixes it loads (lower case, with the dot) mapped to a format hint or ``None``.
            A bare file with such a suffix becomes a package of this backend whose requirement block is
            ``{"format": hint}`` (``None``: no block, the backend tells from the file), e.g. ``{".pt2":
            "exported-program", ".pt": None}``.
        weights_files: default weights-file names in a package folder, best first (``("weights.onnx",)``); a
            folder that does not name its backend is loaded by the backend whose weights file it holds.
        aliases: other names accepted for this backend (``("tensorrt",)`` for ``trt``).
        requirements: ``module:attr`` of what reads this backend's requirement block
            (``ModelPackage.requirements``): a pydantic model class (validated with ``model_validate``) or a
            callable taking the block (a dict) and returning the backend's view of it, raising ``ValueError`` /
            ``TypeError`` on a bad block. Imported only when a block is checked or shown; ``None``: blocks are
            passed through unread.
    """

    name: str
    target: str
    distribution: str
    extra: str | None = None
    runtime_packages: tuple[str, ...] = ()  # distributions whose versions describe the runtime
    priority: Mapping[str, float] = field(default_factory=dict)
    file_suffixes: Mapping[str, str | None] = field(default_factory=dict)
    weights_files: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    requirements: str | None = None
    api_version: int = PLUGIN_API_VERSION

    def __post_init__(self) -> None:
        priority = dict(self.priority)
        bad = {k: v for k, v in priority.items() if not isinstance(k, str) or not _is_number(v)}
        if bad:
            raise PluginError(f"Backend {self.name!r}: priority must map device kinds to numbers, got {bad!r}.")
        suffixes = {}
        for suffix, hint in dict(self.file_suffixes).items():
            if not isinstance(suffix, str) or not re.fullmatch(r"\.[A-Za-z0-9][A-Za-z0-9._-]*", suffix):
                raise PluginError(f"Backend {self.name!r}: file suffix {suffix!r} must look like '.onnx'.")
            if hint is not None and not isinstance(hint, str):
                raise PluginError(f"Backend {self.name!r}: the format hint of {suffix!r} must be a string or None.")
            suffixes[suffix.lower()] = hint
        for label, names in (("weights_files", self.weights_files), ("aliases", self.aliases)):
            if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
                raise PluginError(f"Backend {self.name!r}: {label} must be a tuple of names, got {names!r}.")
        object.__setattr__(self, "priority", priority)  # copies: the caller's dicts may change, the manifest not
        object.__setattr__(self, "file_suffixes", suffixes)
        object.__setattr__(self, "weights_files", tuple(self.weights_files))
        object.__setattr__(self, "aliases", tuple(a.strip().lower() for a in self.aliases))

    def __hash__(self) -> int:  # the mappings are not hashable; name and target identify a manifest
        return hash((self.name, self.target, self.distribution))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
        backends: backends whose packages it can load; ``None`` (the default): any backend that can load the
            file, since a family talks to its backend only through the ``Session`` protocol.
        features: model features it supports (a package with other features is not its to load).
    """

    architectures: tuple[str, ...]
    task: str
    target: str
    backends: tuple[str, ...] | None = None
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


@dataclass(frozen=True)
class CommandManifest:
    """Declares a subcommand of the ``im`` command line (entry-point group ``im.cli``).

    ``target`` names ``configure(parser: argparse.ArgumentParser) -> handler``: it adds the subcommand's arguments
    and returns ``handler(args: argparse.Namespace) -> int`` (the exit status). It is imported when ``im`` runs;
    ``help`` is shown in ``im --help``.
    """

    name: str
    target: str
    distribution: str
    help: str = ""
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
    commands: dict[str, CommandManifest] = field(default_factory=dict)
    broken: list[_Broken] = field(default_factory=list)
    _distributions: set[str] = field(default_factory=set)  # of the manifests added (for install hints)
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
            elif isinstance(manifest, CommandManifest):
                self._put(self.commands, manifest.name, manifest, replace)
            else:
                raise PluginError(f"Entry point in {group or '?'} gave {type(manifest).__name__}, not a manifest.")
            self._distributions.add(manifest.distribution)

    @staticmethod
    def _put(table: dict[str, Any], name: str, value: Any, replace: bool) -> None:
        if name in table and not replace and table[name] != value:
            raise PluginError(f"Plugin name {name!r} is already registered; pass replace=True to override it.")
        table[name] = value

    # -- lookups ---------------------------------------------------------------------------------------------
    def backend(self, name: str) -> Any:
        """The backend plugin instance called ``name`` or one of its aliases (imported on first use)."""
        name = self.canonical_backend(name)
        manifest = self.backends.get(name)
        if manifest is None:
            raise self._unknown("im.backends", name, sorted(self.backends), "backend", also=self.backend_aliases())
        return self._instance("backend", name, manifest.target, manifest.distribution, manifest.extra)

    def provider(self, name: str, **options: Any) -> Any:
        """A weights provider instance called ``name``; options are passed to its constructor."""
        self.check_provider(name)
        manifest = self.providers[name]
        cls = load_target(manifest.target, distribution=manifest.distribution)
        _check_options(cls, options, f"weights provider {name!r}")
        return cls(**options)

    def pipeline(self, name: str) -> PipelineEntry:
        """The pipeline entry called ``name``."""
        entry = self.pipelines.get(name)
        if entry is None:
            raise self._unknown("im.pipelines", name, sorted(self.pipelines), "pipeline")
        return entry

    def check_provider(self, name: str, origin: str = "") -> None:
        """Raise :class:`PluginError` when no weights provider called ``name`` is registered; ``origin`` says where
        the name came from (``"the weights_provider= argument"``, ``"IM_DEFAULT_PROVIDER"``) and the message says
        so, with a suggestion for a near miss."""
        if name not in self.providers:
            raise self._unknown("im.weights_providers", name, sorted(self.providers), "weights provider", origin=origin)

    def architectures(self, task: str | None = None) -> list[str]:
        """Every architecture an installed model family implements (for ``task`` only, when given), sorted."""
        return sorted({a for e in self.models if task is None or e.task == task for a in e.architectures})

    def model_class(self, architecture: str, task: str, backend: str) -> type[Model[Any]]:
        """The family class for ``(architecture, task)`` that accepts ``backend`` packages."""
        entry = self.find_model(architecture, task, backend)
        return load_target(entry.target, distribution=MODELS_DISTRIBUTION)

    def find_model(self, architecture: str, task: str, backend: str | None = None, *, origin: str = "") -> ModelEntry:
        """The family entry for ``(architecture, task)`` (and ``backend``); ``origin`` names where the architecture
        came from in the error when none matches (``"the metadata of model 'x'"``)."""
        arch = architecture.lower()
        matches = [e for e in self.models if arch in e.architectures and e.task == task]
        if backend is not None:
            backend = self.canonical_backend(backend)
            with_backend = [
                e for e in matches if e.backends is None or backend in {self.canonical_backend(b) for b in e.backends}
            ]
            if matches and not with_backend:
                raise ModelImplementationNotFoundError(
                    f"The {architecture!r} {task} family does not support {backend!r} packages "
                    f"(it supports {sorted({b for e in matches for b in e.backends or ()})})."
                )
            matches = with_backend
        if not matches:
            raise self.unknown_architecture(architecture, task, origin=origin)
        return matches[-1]  # the last registered wins, so user code can override a built-in

    def unknown_architecture(
        self, architecture: str, task: str | None, origin: str = ""
    ) -> ModelImplementationNotFoundError:
        """The error for an ``(architecture, task)`` no installed family implements (``task=None``: for any task): a
        near miss among the installed architectures is suggested (those of ``task`` first); ``origin`` says where
        the name came from (``"the architecture= argument"``)."""
        from im_core._tasks import _did_you_mean

        arch = architecture.lower()
        for_task = "" if task is None else f" for task {task!r}"
        same_task = self.architectures(task)
        suggestion = _did_you_mean(arch, same_task) or _did_you_mean(arch, self.architectures())
        other_tasks = sorted({e.task for e in self.models if arch in e.architectures})
        where = f" ({origin})" if origin else ""
        if other_tasks:
            why = f" The installed families implement {architecture!r} for {', '.join(other_tasks)} only."
        else:
            why = f" No installed family knows an architecture called {architecture!r}{suggestion}."
        if not self.models:
            why += f" No model families are installed. {_install_hint(MODELS_DISTRIBUTION, None)}"
        known = sorted({f"{a}/{e.task}" for e in self.models for a in e.architectures})
        return ModelImplementationNotFoundError(
            f"No installed model family implements architecture {architecture!r}{where}{for_task}.{why}"
            f" Fix: use one of the architectures{for_task} ({', '.join(same_task) or 'none'}), or install the "
            f"package of a family that implements it."
            + ("" if task is None else f" Known: {', '.join(known) or 'none'}.")
        )

    # -- what backends declare ---------------------------------------------------------------------------------
    def canonical_backend(self, name: str) -> str:
        """``name`` lower-cased, with a registered backend's alias replaced by its name (``tensorrt`` → ``trt``)."""
        text = name.strip().lower()
        if text in self.backends:
            return text
        return self.backend_aliases().get(text, text)

    def backend_aliases(self) -> dict[str, str]:
        """Alias → backend name, as the registered backends declare them."""
        return {alias: m.name for m in self.backends.values() for alias in m.aliases if alias not in self.backends}

    def backend_priority(self, name: str, device_kind: str) -> float:
        """The rank the backend ``name`` declares for ``device_kind`` (0 when it declares none, or is unknown)."""
        manifest = self.backends.get(name)
        return float(manifest.priority.get(device_kind, 0)) if manifest is not None else 0.0

    def _by_preference(self) -> list[BackendManifest]:
        """Registered backends, the one ranked highest on CPU first (then by name): the order in which a folder's
        weights files are looked for."""
        return sorted(self.backends.values(), key=lambda m: (-float(m.priority.get("cpu", 0)), m.name))

    def file_suffixes(self) -> dict[str, list[tuple[str, str | None]]]:
        """Model-file suffix → ``(backend, format hint)`` of every backend that declares it, by backend name."""
        out: dict[str, list[tuple[str, str | None]]] = {}
        for manifest in sorted(self.backends.values(), key=lambda m: m.name):
            for suffix, hint in manifest.file_suffixes.items():
                out.setdefault(suffix, []).append((manifest.name, hint))
        return out

    def weights_files(self) -> list[tuple[str, str]]:
        """``(file name, backend)`` of every declared default weights file, best first (see :meth:`_by_preference`)."""
        return [(n, m.name) for m in self._by_preference() for n in m.weights_files]

    def requirements(self, package: Any) -> Any:
        """``package.requirements`` read by its backend's declared reader (``BackendManifest.requirements``): the
        backend's own view of the block, or the plain dict when the backend declares no reader or is not installed.

        Raises:
            MalformedMetadataError: the backend's reader refuses the block; the message names the package.
            PluginError / MissingDependencyError: the declared reader cannot be imported.
        """
        manifest = self.backends.get(package.backend)
        block = dict(package.requirements)
        if manifest is None or manifest.requirements is None:
            return block
        reader = self._instance("requirements", manifest.name, manifest.requirements, manifest.distribution, None)
        try:
            validate = getattr(reader, "model_validate", None)
            return validate(block) if validate is not None else reader(block)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            raise MalformedMetadataError(
                f"Package {package.package_id!r} declares {manifest.name} requirements the {manifest.name} backend "
                f"cannot read ({_first_line(exc)}): {block!r}. Fix: correct the package's metadata, or upgrade "
                f"{manifest.distribution}."
            ) from None

    def _instance(self, kind: str, name: str, target: str, dist: str | None, extra: str | None) -> Any:
        key = (kind, name)
        with self._lock:
            if key not in self._instances:
                factory = load_target(target, distribution=dist, extra=extra)
                self._instances[key] = factory() if callable(factory) and kind == "backend" else factory
            return self._instances[key]

    def _unknown(
        self, group: str, name: str, known: list[str], what: str, *, origin: str = "", also: Iterable[str] = ()
    ) -> PluginError:
        from im_core._tasks import _did_you_mean

        guess = _did_you_mean(name, sorted({*known, *also}))
        shown = f"{name!r}{guess}" + (f" (from {origin})" if origin else "")
        broken = [b for b in self.broken if b.group == group and b.name == name]
        if broken:
            b = broken[0]
            return PluginError(
                f"The {what} {name!r} is installed (distribution {b.distribution}) but failed to load: {b.error}. "
                f"Reinstall it: pip install --force-reinstall '{b.distribution}'."
            )
        installed = ", ".join(known) or "none"
        generic = " Install the distribution that provides it, or add one with im_core.register()."
        pattern = GROUP_DISTRIBUTIONS.get(group)
        if pattern is not None and "{name}" in pattern:  # a naming convention: im's own would be called this
            dist = pattern.format(name=name)
            extra = _meta_package_extra(dist)
            return PluginError(
                f"Unknown {what} {shown} (installed: {installed}). im's own {what}s are distributions named "
                f"{pattern.format(name='<name>')!r}; if {name!r} is one of them, it is not installed. "
                f"{_install_hint(dist, extra)} Otherwise install the distribution that provides it, or add one "
                "with im_core.register().",
                distribution=dist,
                extra=extra,
            )
        if pattern is not None and pattern not in self._distributions:
            return PluginError(
                f"Unknown {what} {shown} (installed: {installed}). im's own {what}s come with the distribution "
                f"{pattern!r}, which is not installed. {_install_hint(pattern, _meta_package_extra(pattern))}",
                distribution=pattern,
            )
        return PluginError(f"Unknown {what} {shown}. Installed: {installed}.{generic}")


def _first_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            return f"{'.'.join(str(p) for p in first.get('loc', ())) or 'value'}: {first.get('msg')}"
        except Exception:  # not pydantic's shape: fall back to the text
            pass
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
