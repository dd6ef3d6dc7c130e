"""Protocols between layers: weights providers, backends and their sessions (DESIGN.md §6).

A backend plugin reports what it can do (:meth:`BackendPlugin.probe`), judges packages (:meth:`BackendPlugin.check`)
and turns a package file into a :class:`Session`. Model families only ever talk to a ``Session``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from im_core._device import Device
from im_core._metadata import ModelMetadata, ModelPackage
from im_core.errors import ImError

__all__ = [
    "BackendPlugin",
    "BackendProbe",
    "BatchLimits",
    "Session",
    "TensorSpec",
    "Verdict",
    "WeightsProvider",
]


@dataclass(frozen=True)
class TensorSpec:
    """A named input or output of a session.

    Attributes:
        name: tensor name in the graph.
        shape: one entry per axis; an ``int`` is fixed, ``None`` or a string (symbolic name) is dynamic.
        dtype: numpy dtype name (``"float32"``, ``"float16"``, ``"int64"``, ``"uint8"``...).
    """

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.shape) if not isinstance(d, int) or d < 0)

    @property
    def is_dynamic(self) -> bool:
        return bool(self.dynamic_axes)


@dataclass(frozen=True)
class BatchLimits:
    """Batch sizes one ``run`` call may pass to the backend.

    Attributes:
        min: smallest batch the graph accepts.
        max: largest (``None`` = unbounded).
        static: the graph takes exactly ``min`` (== ``max``) items: smaller batches are zero-padded.
    """

    min: int = 1
    max: int | None = None
    static: bool = False

    @classmethod
    def fixed(cls, n: int) -> BatchLimits:
        return cls(min=n, max=n, static=True)


@runtime_checkable
class Session(Protocol):
    """A loaded network, ready to run.

    ``run`` takes a mapping of input name → array whose axis 0 is the batch (any size: the session splits and
    pads to its :class:`BatchLimits`) and returns output name → array, in the order of ``outputs``. Arrays are
    numpy on the CPU, or torch tensors where the session keeps data on a GPU (``outputs_on_device``).

    ``metadata`` holds the string metadata embedded in the network file (ONNX ``metadata_props``, TorchScript and
    ``.pt2`` extra files; ``{}`` when the file has none or the format carries none): model families read class
    names, alphabets... from it.
    """

    backend: str
    device: Device
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batch_limits: BatchLimits
    #: how concurrent ``run`` calls are handled: "lock" (serialised), "per-thread" (one context per thread)
    #: or "native" (the runtime itself is thread-safe).
    thread_safety: str
    #: string metadata embedded in the network file (``{}`` when there is none)
    metadata: Mapping[str, str]

    def run(self, feeds: Mapping[str, Any], output_names: Sequence[str] | None = None) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BackendProbe:
    """What a backend found on this machine.

    Attributes:
        name: backend name (``onnx``, ``torch``, ``trt``).
        available: whether the backend can load packages here.
        version: version of the runtime library (``onnxruntime``, ``torch``, ``tensorrt``).
        devices: devices it can run on, e.g. ``("cpu",)`` or ``("cpu", "cuda:0", "cuda:1")``: every CUDA index it can
            use, ``"mps"`` where it runs on an Apple GPU. With no device asked for, negotiation tries these (CUDA
            first). :meth:`device_values` gives them as :class:`Device` values.
        details: backend-specific facts (execution providers, max opset, compute capabilities, lean runtime...).
        reason: why it is unavailable, in words, with the fix.
    """

    name: str
    available: bool
    version: str | None = None
    devices: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    def device_values(self) -> tuple[Device, ...]:
        """``devices`` as :class:`Device` values, in the order reported; an entry that is not a device is skipped."""
        out = []
        for text in self.devices:
            try:
                out.append(Device.parse(text, source=f"device reported by the {self.name} backend's probe"))
            except ImError:
                continue
        return tuple(out)


@dataclass(frozen=True)
class Verdict:
    """A backend's judgement of one package on this machine: ``ok``, or rejected with ``reason`` in words.

    ``rank`` holds backend-specific ranking hints (larger is better), compared after the generic keys.
    """

    ok: bool
    reason: str = ""
    rank: tuple[float, ...] = ()

    @classmethod
    def accept(cls, *rank: float) -> Verdict:
        return cls(True, "", tuple(rank))

    @classmethod
    def reject(cls, reason: str) -> Verdict:
        return cls(False, reason)


@runtime_checkable
class BackendPlugin(Protocol):
    """Implementation side of an ``im.backends`` plugin."""

    name: str

    def probe(self) -> BackendProbe:
        """Inspect the runtime (cheap after the first call; never crashes without a GPU)."""
        ...

    def check(self, package: ModelPackage, probe: BackendProbe, device: Device) -> Verdict:
        """Can this package run here on ``device``? Reasons are shown to users verbatim.

        A backend may also take an ``options`` keyword: negotiation then passes the load's session options, so
        it can reject a package that ``load`` would refuse with them (TensorRT: ``engine_host_code_allowed``).
        """
        ...

    def load(self, path: Path, *, device: Device, package: ModelPackage | None = None, **options: Any) -> Session:
        """Load one model file (``weights.onnx``, ``engine.plan``...) into a session on ``device``.

        Negotiation passes a :class:`Device`; called directly, a backend may also accept what
        :meth:`Device.parse` takes (``"cuda:1"``), as the bundled ones do.

        ``options`` are backend-specific (e.g. ``onnx_execution_providers`` for ONNX, ``module`` for torch
        state dicts); an option the backend does not know raises ``InvalidParameterError``.
        """
        ...

    def inspect(self, path: Path) -> dict[str, str]:
        """Metadata embedded in a model file (ONNX metadata props, TorchScript extra files...), cheaply.

        Used to recognise bare model files; return ``{}`` when there is none.
        """
        ...


@runtime_checkable
class WeightsProvider(Protocol):
    """Implementation side of an ``im.weights_providers`` plugin.

    File URLs in the returned metadata are absolute (``http(s)://`` or ``file://``): the cache fetches them.

    Optionally, a ``snapshot_key`` attribute (a string: what the instance is connected to once its options and
    their defaults are applied, e.g. a registry's normalised root) keys its offline metadata snapshots, so that a
    model cached through one spelling of the options is found offline through another. Without it, snapshots are
    keyed by the literal constructor options.
    """

    name: str

    def get_model_metadata(self, model_id: str, *, api_key: str | None = None) -> ModelMetadata: ...
