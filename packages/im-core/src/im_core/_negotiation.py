"""Negotiation: which package of a model runs best here, and why every other one does not (DESIGN.md §4).

Filter, then rank, and keep every reason. Filters, in order: the explicit package id, disabled backends, the
requested backends, trust, batch size, quantization, an installed backend plugin that accepts the package on the
device (its own runtime checks), and an installed model family for (architecture, task, backend, features).
The device is the one asked for (``device=``, else ``IM_DEFAULT_DEVICE``); with none, each package is tried on
every device the probes of the backends in play report (:func:`device_candidates`: CUDA by index, CPU, MPS).
Ranking: CUDA before CPU; then the priority each backend's manifest declares for the device kind (im's own give
TensorRT > ONNX > torch on CUDA, ONNX > torch on CPU); quantization fit for the device; dynamic batch; the
backend's own hints; ties broken by package id in sorted order. No backend is named here.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, get_args

from im_core._config import settings
from im_core._device import Device
from im_core._metadata import ModelMetadata, ModelPackage, Quantization
from im_core._plugins import PluginRegistry, registry
from im_core._protocols import BackendProbe
from im_core.errors import ImError, InvalidParameterError

__all__ = [
    "DEFAULT_NMS_FUSION",
    "Filters",
    "NMS_FUSED",
    "NegotiationReport",
    "PackageVerdict",
    "device_candidates",
    "negotiate_packages",
    "normalize_device",
    "run_negotiation",
]

logger = logging.getLogger("im")
_QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)

_QUANT_PRIORITY = {
    "cuda": {"fp16": 4, "fp32": 3, "int8": 2, "bf16": 2, "unknown": 1},
    "cpu": {"fp32": 4, "int8": 3, "bf16": 2, "unknown": 1},
    "mps": {"fp16": 4, "fp32": 3, "unknown": 1},
}
#: quantizations allowed when none was asked for; fp16 runs on Apple GPUs as on NVIDIA ones (as the reference
#: allows it on every non-CPU device)
_DEFAULT_QUANT = {
    "cuda": {"fp32", "fp16", "bf16", "int8", "unknown"},
    "cpu": {"fp32", "bf16", "int8", "unknown"},
    "mps": {"fp32", "fp16", "unknown"},
}

#: the model feature of packages whose graph already ran NMS, and the thresholds baked into it
NMS_FUSED = "nms_fused"
_NMS_KEYS = ("max_detections", "confidence_threshold", "iou_threshold", "class_agnostic")
#: ``nms_fusion_preferences=True`` means these baked values, exactly (as the reference's defaults)
DEFAULT_NMS_FUSION: dict[str, Any] = {
    "max_detections": 300,
    "confidence_threshold": 0.25,
    "iou_threshold": 0.7,
    "class_agnostic": False,
}


_VERDICT_FIELDS = ("package_id", "backend", "quantization", "batch", "device", "reason", "rank")


@dataclass
class PackageVerdict:
    """The outcome for one package: selected/accepted with its rank, or rejected with the reason in words.

    ``device`` is the device it was accepted on as shown in reports (``"cuda:0"``); ``target`` the same as a
    :class:`~im_core.Device`, the value the package is loaded with.
    """

    package_id: str
    backend: str
    quantization: str
    batch: str
    device: str | None = None
    reason: str | None = None
    rank: int | None = None
    key: tuple[Any, ...] = ()
    target: Device | None = field(default=None, repr=False)

    @property
    def accepted(self) -> bool:
        return self.reason is None


@dataclass
class NegotiationReport:
    """Every package of a model with its verdict, and the ranking of the accepted ones.

    Attributes:
        model_id: the model negotiated.
        device: the device asked for (``None`` = best available).
        verdicts: one per package, accepted ones first in rank order, then rejected ones by package id.
        requested: the filters that were applied, for display.
    """

    model_id: str
    device: str | None
    verdicts: list[PackageVerdict] = field(default_factory=list)
    requested: dict[str, Any] = field(default_factory=dict)

    @property
    def ranked(self) -> list[PackageVerdict]:
        return [v for v in self.verdicts if v.accepted]

    @property
    def selected(self) -> PackageVerdict | None:
        ranked = self.ranked
        return ranked[0] if ranked else None

    def lines(self) -> list[str]:
        """The report as plain text lines (used in error messages)."""
        asked = ", ".join(f"{k}={v!r}" for k, v in self.requested.items() if v not in (None, False))
        out = [f"Negotiation for {self.model_id!r} (device={self.device or 'auto'}{', ' + asked if asked else ''}):"]
        if not self.verdicts:
            out.append("  the model has no packages at all")
        for v in self.verdicts:
            head = f"  {v.package_id} [{v.backend}, {v.quantization}, batch {v.batch}]"
            if v.accepted:
                tag = "SELECTED" if v.rank == 1 else f"candidate #{v.rank}"
                out.append(f"{head}: {tag} on {v.device}")
            else:
                out.append(f"{head}: rejected - {v.reason}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def print(self, console: Any = None) -> None:
        """Print the report as a rich table."""
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=escape(f"Negotiation for {self.model_id}"), title_justify="left")
        for col in ("package", "backend", "quantization", "batch", "verdict"):
            table.add_column(col, overflow="fold")
        for v in self.verdicts:  # every value escaped: "[...]" in an id or a reason is text, not rich markup
            verdict = (
                f"[green]{'selected' if v.rank == 1 else f'#{v.rank}'} on {escape(str(v.device))}[/]"
                if v.accepted
                else f"[red]rejected[/]: {escape(str(v.reason))}"
            )
            cells = (v.package_id, v.backend, v.quantization, v.batch)
            table.add_row(*(escape(str(c)) for c in cells), verdict)
        (console or Console()).print(table)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "device": self.device,
            "requested": self.requested,
            "packages": [
                {
                    k: getattr(v, k)
                    for k in ("package_id", "backend", "quantization", "batch", "device", "reason", "rank")
                }
                for v in self.verdicts
            ],
        }


def normalize_device(device: Any) -> str | None:
    """``None`` → ``None`` (auto), anything else → the canonical string of ``Device.parse(device)`` (kept for
    callers of the string API; new code uses :class:`~im_core.Device`)."""
    return None if device is None else str(Device.parse(device, source="device= argument"))


@dataclass(frozen=True)
class Filters:
    """The filters of one negotiation, validated once where the arguments enter (:meth:`from_arguments`).

    Attributes:
        backends: the allowed backends (aliases resolved), ``None`` = any.
        device: the device asked for; ``None`` = ``IM_DEFAULT_DEVICE``, else every device the backends report.
        batch: the ``(min, max)`` batch size a package must support, ``None`` = any.
        quantizations: the allowed quantizations, ``None`` = the defaults for the device.
        model_package_id: only this package.
        allow_untrusted_packages: also consider packages from untrusted sources.
        nms_fusion: packages whose graph runs NMS (model feature ``nms_fused``): ``None`` (default) accepts them
            but ranks every package whose NMS im runs first (so ``iou_threshold`` works); ``False`` rejects them;
            ``True`` accepts those baked with :data:`DEFAULT_NMS_FUSION`; a dict of the same keys, each a value or a
            ``(min, max)`` range, accepts those within and ranks them by closeness (the reference's
            ``nms_fusion_preferences``).
        backend_options: the session options of the load; each backend's ``check`` sees them when it takes an
            ``options`` argument (TensorRT: ``engine_host_code_allowed``).
    """

    backends: frozenset[str] | None = None
    device: Device | None = None
    batch: tuple[int, int] | None = None
    quantizations: frozenset[str] | None = None
    model_package_id: str | None = None
    allow_untrusted_packages: bool = False
    nms_fusion: bool | Mapping[str, Any] | None = None
    backend_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_arguments(
        cls,
        *,
        backend: str | Sequence[str] | None = None,
        device: Any = None,
        batch_size: int | tuple[int, int] | None = None,
        quantization: str | Sequence[str] | None = None,
        model_package_id: str | None = None,
        allow_untrusted_packages: bool = False,
        nms_fusion_preferences: bool | Mapping[str, Any] | None = None,
        plugins: PluginRegistry | None = None,
    ) -> Filters:
        """Validate ``from_pretrained``-style arguments; raises ``InvalidParameterError`` naming the bad one.

        Backend aliases are the ones the installed backends declare (``plugins``, default the process registry).
        """
        wanted = None if device is None else Device.parse(device, source="device= argument")
        plugins = plugins or registry()
        backends = _as_set(backend, "backend", plugins.backend_aliases())
        if backends is not None and plugins.backends:
            from im_core._tasks import check_names

            aliases = plugins.backend_aliases()
            check_names(
                sorted(backends - set(plugins.backends)),
                plugins.backends,
                "backend= names no installed backend:",
                f" Aliases: {', '.join(f'{a} = {n}' for a, n in sorted(aliases.items())) or 'none'}. im's own backends"
                " are distributions named 'im-backend-<name>': pip install 'im-backend-<name>' installs one.",
                also_known=aliases,
            )
        quants = _as_set(quantization, "quantization", allowed=_QUANTIZATIONS)
        return cls(
            backends=None if backends is None else frozenset(backends),
            device=wanted,
            batch=_batch_range(batch_size),
            quantizations=None if quants is None else frozenset(quants),
            model_package_id=model_package_id,
            allow_untrusted_packages=bool(allow_untrusted_packages),
            nms_fusion=_nms_preferences(nms_fusion_preferences),
        )


def _nms_preferences(value: Any) -> bool | dict[str, Any] | None:
    """``nms_fusion_preferences`` checked: ``None``, a bool, or a dict of :data:`_NMS_KEYS` to a value or a
    ``(min, max)`` pair (``class_agnostic``: a bool)."""
    if value is None or isinstance(value, bool):
        return value
    example = "e.g. nms_fusion_preferences={'iou_threshold': (0.5, 0.7), 'max_detections': 300}"
    if not isinstance(value, Mapping):
        raise InvalidParameterError(
            f"nms_fusion_preferences must be None, True/False or a dict, got {type(value).__name__} {value!r}; "
            f"{example}."
        )
    unknown = sorted(set(value) - set(_NMS_KEYS))
    if unknown:
        raise InvalidParameterError(f"nms_fusion_preferences has unknown key(s) {unknown}; known: {list(_NMS_KEYS)}.")
    for key, item in value.items():
        if key == "class_agnostic":
            ok = isinstance(item, bool)
        elif isinstance(item, (list, tuple)):
            ok = len(item) == 2 and all(_is_number(v) for v in item)
        else:
            ok = _is_number(item)
        if not ok:
            want = "true or false" if key == "class_agnostic" else "a number or a (min, max) pair of numbers"
            raise InvalidParameterError(f"nms_fusion_preferences[{key!r}] must be {want}, got {item!r}; {example}.")
    return dict(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _nms_fusion_verdict(package: ModelPackage, wanted: bool | Mapping[str, Any] | None) -> tuple[str | None, float]:
    """Whether a package's fused NMS passes ``wanted`` (see :attr:`Filters.nms_fusion`), and its closeness score
    (0 for packages without fused NMS; the reference's score: 1 per exact scalar match, up to 1 per range by how
    close to its middle)."""
    if NMS_FUSED not in package.features:
        return None, 0.0
    if wanted is False:
        return (
            "NMS runs inside this package's graph, so iou_threshold and the other NMS parameters would have no effect, "
            "and nms_fusion_preferences=False rejects such packages",
            0.0,
        )
    if wanted is None:
        return None, 0.0
    prefs = DEFAULT_NMS_FUSION if wanted is True else wanted
    baked = package.features.get(NMS_FUSED)
    missing = [k for k in _NMS_KEYS if not isinstance(baked, Mapping) or k not in baked]
    if missing:
        return f"its model feature {NMS_FUSED!r} is malformed (missing {', '.join(missing)})", 0.0
    assert isinstance(baked, Mapping)
    score = 0.0
    for key, want in prefs.items():
        actual = baked[key]
        if key == "class_agnostic":
            if actual != want:
                return f"its graph's NMS is {'class-agnostic' if actual else 'per class'}, not as preferred", 0.0
            score += 1.0
            continue
        lo, hi = want if isinstance(want, (list, tuple)) else (want, want)
        lo, hi = min(lo, hi), max(lo, hi)
        if not _is_number(actual) or not lo <= actual <= hi:
            shown = want if lo != hi else lo
            return f"its graph's NMS has {key} {actual!r}, outside the preferred {shown!r}", 0.0
        score += _closeness(lo, hi, actual)
    return None, score


def _closeness(lo: float, hi: float, value: float) -> float:
    if lo == hi:
        return float(abs(value - hi) < 1e-5)
    scaled = min(max((value - lo) / (hi - lo + 1e-6), 0.0), 1.0)
    return 1.0 - abs(0.5 - scaled)


#: CPU before MPS: the ranking tables have no MPS row yet, and ONNX "on mps" is the CPU with CoreML; a package
#: that runs only on MPS still lands there, and ``device="mps"`` asks for it outright.
_KIND_ORDER = {"cuda": 0, "cpu": 1, "mps": 2}


def device_candidates(probes: Iterable[BackendProbe]) -> list[Device]:
    """The devices to try when none was asked for: every device the available backends report in their probes,
    CUDA first (by index), then the CPU, then MPS; just the CPU when none reports any."""
    found = {device for probe in probes if probe.available for device in probe.device_values()}
    return sorted(found, key=lambda d: (_KIND_ORDER[d.kind], d.index or 0)) or [Device("cpu")]


def _as_set(
    value: str | Iterable[str] | None,
    name: str,
    aliases: dict[str, str] | None = None,
    allowed: Sequence[str] | None = None,
) -> set[str] | None:
    """``value`` (a string or a list of them) as a lower-cased set; ``allowed`` lists the only valid names."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else None
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    if not items or not all(isinstance(i, str) for i in items):
        raise InvalidParameterError(f"{name} must be a string or a non-empty list of strings, got {value!r}.")
    out = {(aliases or {}).get(i, i) for i in (i.strip().lower() for i in items)}
    unknown = sorted(out - set(allowed)) if allowed is not None else []
    if unknown:
        raise InvalidParameterError(
            f"{name}={value!r}: {', '.join(unknown)} is not a known value; use one or a list of "
            f"{', '.join(allowed or ())}."
        )
    return out


def _batch_range(batch_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1:
        return batch_size, batch_size
    if (
        isinstance(batch_size, (tuple, list))
        and len(batch_size) == 2
        and all(isinstance(b, int) and b >= 1 for b in batch_size)
        and batch_size[0] <= batch_size[1]
    ):
        return int(batch_size[0]), int(batch_size[1])
    raise InvalidParameterError(f"batch_size must be a positive int or a (min, max) tuple, got {batch_size!r}.")


def _batch_text(wanted: tuple[int, int]) -> int | tuple[int, int]:
    lo, hi = wanted
    return lo if lo == hi else (lo, hi)


def _batch_reason(package: ModelPackage, wanted: tuple[int, int] | None) -> str | None:
    if wanted is None:
        return None
    lo, hi = wanted
    b = package.batch
    if not b.dynamic:
        if lo <= b.min <= hi:
            return None
        return f"static batch {b.min}, but batch_size {_batch_text(wanted)} was requested"
    top = b.max if b.max is not None else float("inf")
    if b.min <= lo and hi <= top:
        return None
    return f"dynamic batch {b.describe()} does not cover the requested batch_size {_batch_text(wanted)}"


def negotiate_packages(
    metadata: ModelMetadata,
    *,
    backend: str | Sequence[str] | None = None,
    device: Any = None,
    batch_size: int | tuple[int, int] | None = None,
    quantization: str | Sequence[str] | None = None,
    model_package_id: str | None = None,
    allow_untrusted_packages: bool = False,
    nms_fusion_preferences: bool | Mapping[str, Any] | None = None,
    plugins: PluginRegistry | None = None,
) -> NegotiationReport:
    """Judge every package of ``metadata`` for this machine; see the module docstring for the rules.

    Validates the arguments (:meth:`Filters.from_arguments`), then :func:`run_negotiation`.
    """
    filters = Filters.from_arguments(
        backend=backend,
        device=device,
        batch_size=batch_size,
        quantization=quantization,
        model_package_id=model_package_id,
        allow_untrusted_packages=allow_untrusted_packages,
        nms_fusion_preferences=nms_fusion_preferences,
        plugins=plugins,
    )
    return run_negotiation(metadata, filters, plugins=plugins)


def run_negotiation(
    metadata: ModelMetadata, filters: Filters, *, plugins: PluginRegistry | None = None
) -> NegotiationReport:
    """Judge every package of ``metadata`` for this machine with already-validated ``filters``."""
    reg = plugins or registry()
    wanted_device = filters.device if filters.device is not None else settings().default_device
    backends, quants, wanted_batch = filters.backends, filters.quantizations, filters.batch
    model_package_id, allow_untrusted_packages = filters.model_package_id, filters.allow_untrusted_packages
    disabled = frozenset(reg.canonical_backend(b) for b in settings().disabled_backends)
    report = NegotiationReport(
        metadata.model_id,
        None if wanted_device is None else str(wanted_device),
        requested={
            "backend": sorted(backends) if backends else None,
            "batch_size": None if wanted_batch is None else _batch_text(wanted_batch),
            "quantization": sorted(quants) if quants else None,
            "model_package_id": model_package_id,
            "disabled_backends": sorted(disabled) or None,
            "nms_fusion_preferences": filters.nms_fusion,
        },
    )
    if model_package_id is not None and metadata.package(model_package_id) is None:
        ids = ", ".join(sorted(p.package_id for p in metadata.packages)) or "none"
        report.verdicts = [
            PackageVerdict(
                p.package_id,
                p.backend,
                p.quantization,
                p.batch.describe(),
                reason=f"not the requested package {model_package_id!r}",
            )
            for p in sorted(metadata.packages, key=lambda p: p.package_id)
        ]
        from im_core._tasks import _did_you_mean

        guess = _did_you_mean(model_package_id, sorted(p.package_id for p in metadata.packages))
        report.requested["note"] = f"package {model_package_id!r} does not exist{guess}; packages: {ids}"
        return report
    probes: dict[str, Any] = {}
    accepted: list[PackageVerdict] = []
    rejected: list[PackageVerdict] = []
    static = {
        package.package_id: _static_reason(
            package, model_package_id, disabled, backends, allow_untrusted_packages, wanted_batch
        )
        for package in metadata.packages
    }
    if wanted_device is not None:
        devices = [wanted_device]
    else:
        needed = sorted({p.backend for p in metadata.packages if static[p.package_id] is None})
        devices = device_candidates(_probes(needed, reg, probes))
    for package in metadata.packages:
        verdict = PackageVerdict(package.package_id, package.backend, package.quantization, package.batch.describe())
        verdict.reason = static[package.package_id]
        if verdict.reason is None:
            _judge_on_devices(verdict, package, metadata, devices, filters, reg, probes)
        (accepted if verdict.accepted else rejected).append(verdict)
    accepted.sort(key=lambda v: v.package_id)
    accepted.sort(key=lambda v: v.key, reverse=True)  # stable: ties keep package-id order
    for i, v in enumerate(accepted, 1):
        v.rank = i
    rejected += [PackageVerdict(s.package_id, "?", "?", "?", reason=s.reason) for s in metadata.skipped_packages]
    report.verdicts = accepted + sorted(rejected, key=lambda v: v.package_id)
    return report


def _static_reason(
    package: ModelPackage,
    package_id: str | None,
    disabled: frozenset[str],
    backends: AbstractSet[str] | None,
    allow_untrusted: bool,
    wanted_batch: tuple[int, int] | None,
) -> str | None:
    if package_id is not None and package.package_id != package_id:
        return f"not the requested package {package_id!r}"
    if package.backend in disabled:
        return f"backend {package.backend!r} is disabled by IM_DISABLED_BACKENDS"
    if backends is not None and package.backend not in backends:
        return f"backend {package.backend!r} is not among the requested {sorted(backends)}"
    if not package.trusted and not allow_untrusted:
        return "the package comes from an untrusted source (pass allow_untrusted_packages=True to allow it)"
    return _batch_reason(package, wanted_batch)


def _probes(backends: Iterable[str], reg: PluginRegistry, probes: dict[str, Any]) -> list[BackendProbe]:
    """The probes of ``backends`` (cached in ``probes``); a backend that cannot be probed is left out here and
    rejects its packages with the reason in :func:`_judge`."""
    out = []
    for name in backends:
        try:
            if name not in probes:
                probes[name] = reg.backend(name).probe()
            out.append(probes[name])
        except Exception:  # reported per package by _judge
            continue
    return out


def _judge_on_devices(
    verdict: PackageVerdict,
    package: ModelPackage,
    metadata: ModelMetadata,
    devices: list[Device],
    filters: Filters,
    reg: PluginRegistry,
    probes: dict[str, Any],
) -> None:
    reasons: list[str] = []
    fusion_reason, fusion_score = _nms_fusion_verdict(package, filters.nms_fusion)
    if fusion_reason is not None:
        verdict.reason = fusion_reason
        return
    fused = NMS_FUSED in package.features
    for device in devices:
        kind = device.kind
        reason, backend_rank = _judge(package, metadata, device, filters, reg, probes)
        if reason is None:
            verdict.device, verdict.target = str(device), device
            verdict.key = (
                device.is_cuda,
                # by default the NMS im runs (iou_threshold works) before NMS baked into the graph
                not fused if filters.nms_fusion is None else True,
                reg.backend_priority(package.backend, kind),
                _QUANT_PRIORITY.get(kind, {}).get(package.quantization, 0),
                package.batch.dynamic,
                0 if package.batch.dynamic else -package.batch.min,  # a smaller static batch pads less
                *backend_rank,
                fusion_score,
            )
            return
        reasons.append(reason if len(devices) == 1 else f"on {device}: {reason}")
    verdict.reason = "; ".join(reasons)


def _judge(
    package: ModelPackage,
    metadata: ModelMetadata,
    device: Device,
    filters: Filters,
    reg: PluginRegistry,
    probes: dict[str, Any],
) -> tuple[str | None, tuple[float, ...]]:
    quants = filters.quantizations
    try:
        plugin = reg.backend(package.backend)
        if package.backend not in probes:
            probes[package.backend] = plugin.probe()
        probe = probes[package.backend]
    except ImError as exc:
        return f"backend {package.backend!r} is not usable here: {exc.message}", ()
    except Exception as exc:  # a broken backend plugin rejects its packages instead of stopping negotiation
        return _plugin_bug(package.backend, "probe", exc), ()
    if not probe.available:
        return f"{package.backend} runtime unavailable: {probe.reason}", ()
    try:
        reg.requirements(package)  # the backend's own reader refuses a block it cannot read, in words
        judged = _check(plugin, package, probe, device, filters.backend_options)
    except InvalidParameterError:
        raise
    except ImError as exc:
        return exc.message, ()
    except Exception as exc:
        return _plugin_bug(package.backend, "check", exc), ()
    if not judged.ok:
        return judged.reason, ()
    kind = device.kind
    allowed = quants if quants is not None else _DEFAULT_QUANT.get(kind, _DEFAULT_QUANT["cpu"])
    if package.quantization not in allowed:
        why = "requested" if quants is not None else f"allowed by default on {kind}"
        hint = "" if quants is not None else f" (pass quantization='{package.quantization}' to allow it)"
        return f"quantization {package.quantization} is not {why} ({sorted(allowed)}){hint}", ()
    try:
        entry = reg.find_model(metadata.architecture, metadata.task, package.backend, origin="the model's metadata")
    except ImError as exc:
        return exc.message, ()
    unsupported = sorted(set(package.features) - set(entry.features) - {"ultralytics"})
    if unsupported:
        return f"the {metadata.architecture} family does not support package features {unsupported}", ()
    return None, judged.rank


def _check(plugin: Any, package: ModelPackage, probe: BackendProbe, device: Device, options: Mapping[str, Any]) -> Any:
    """``plugin.check``, with the load's session options where the plugin's ``check`` takes ``options``."""
    try:
        takes = "options" in inspect.signature(plugin.check).parameters
    except (TypeError, ValueError):
        takes = False
    if takes:
        return plugin.check(package, probe, device, options=dict(options))
    return plugin.check(package, probe, device)


def _plugin_bug(backend: str, step: str, exc: Exception) -> str:
    """The rejection reason for a backend plugin whose ``probe``/``check`` raised something unexpected."""
    logger.debug("The %s backend's %s raised:", backend, step, exc_info=exc)
    return (
        f"the {backend} backend plugin's {step}() failed unexpectedly ({type(exc).__name__}: {exc}); "
        "update or report that plugin"
    )
