"""``Device``: where a model runs, parsed once where a device enters im and passed down typed (DESIGN.md §2, §4).

A device enters im in three places: ``from_pretrained(device=...)`` / ``AutoModel.negotiate(device=...)``, the
``IM_DEFAULT_DEVICE`` environment variable, and what the backends report in their probes. Each is turned into a
:class:`Device` by :meth:`Device.parse`, the only code in im that reads a device string; everything downstream
(negotiation, backends, sessions, model families) reads ``.kind`` / ``.index`` instead of splitting strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from im_core.errors import InvalidParameterError

__all__ = ["DEVICE_KINDS", "Device", "DeviceKind"]

DeviceKind = Literal["cpu", "cuda", "mps"]
#: every kind of device im knows
DEVICE_KINDS: tuple[str, ...] = ("cpu", "cuda", "mps")
_ACCEPTED = "'cpu', 'cuda', 'cuda:N' (N = 0, 1, ...), 'mps', a torch.device or an im_core.Device"


@dataclass(frozen=True, eq=False)
class Device:
    """A device: ``kind`` (``cpu``, ``cuda`` or ``mps``) and, for CUDA, the GPU ``index``.

    ``Device("cuda")`` is GPU 0 (``index`` 0); CPU and MPS have no index (``None``). ``str(device)`` is the
    canonical form (``"cpu"``, ``"cuda:0"``, ``"mps"``), the one shown in reports and ``model.metadata.device``.
    A device also compares equal to its canonical string (and hashes like it), so a backend plugin written when the
    protocol passed strings (``if device != "cpu"``) keeps working.
    """

    kind: DeviceKind
    index: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in DEVICE_KINDS:
            raise InvalidParameterError(f"Device kind {self.kind!r} is not one of {', '.join(DEVICE_KINDS)}.")
        index = self.index
        if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
            raise InvalidParameterError(f"Device index {index!r} must be an int >= 0 or None.")
        if self.kind == "cuda":
            object.__setattr__(self, "index", 0 if index is None else index)
        elif index:  # cpu:0 / mps:0 are the one CPU / Apple GPU; any other index does not exist
            raise InvalidParameterError(f"Device {self.kind!r} has no index {index}; use {self.kind!r}.")
        else:
            object.__setattr__(self, "index", None)

    @classmethod
    def parse(cls, value: Any, *, source: str = "device") -> Device:
        """``value`` as a ``Device``: a string (``"cpu"``, ``"cuda"``, ``"CUDA:1"``, ``"mps"``), a ``torch.device``
        (read through its ``type`` and ``index``; torch is not imported) or a ``Device`` (returned as is).

        Args:
            value: the device to parse.
            source: where ``value`` came from, named in the error (``"device= argument"``,
                ``"IM_DEFAULT_DEVICE environment variable"``...).

        Raises:
            InvalidParameterError: ``value`` is not a device; the message names ``source`` and what is accepted.
        """
        if isinstance(value, Device):
            return value
        if isinstance(value, str):
            kind, sep, index = value.strip().lower().partition(":")
            if kind in DEVICE_KINDS and (not sep or (index.isascii() and index.isdigit())):
                return cls._checked(kind, int(index) if sep else None, value, source)
        elif isinstance(getattr(value, "type", None), str) and hasattr(value, "index"):  # torch.device (duck-typed)
            index = value.index
            if value.type in DEVICE_KINDS and (index is None or isinstance(index, int)):
                return cls._checked(value.type, index, value, source)
        raise InvalidParameterError(
            f"Invalid {source}: {value!r} ({type(value).__name__}) is not a device. Accepted: {_ACCEPTED}."
        )

    @classmethod
    def _checked(cls, kind: str, index: int | None, value: Any, source: str) -> Device:
        try:
            return cls(cast(DeviceKind, kind), index)
        except InvalidParameterError as exc:
            raise InvalidParameterError(
                f"Invalid {source}: {value!r} is not a device ({exc.message}). Accepted: {_ACCEPTED}."
            ) from None

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def is_cpu(self) -> bool:
        return self.kind == "cpu"

    @property
    def is_mps(self) -> bool:
        return self.kind == "mps"

    @property
    def torch_string(self) -> str:
        """The string ``torch.device`` takes (``"cuda:1"``, ``"cpu"``, ``"mps"``)."""
        return str(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Device):
            return (self.kind, self.index) == (other.kind, other.index)
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"

    def __repr__(self) -> str:
        return f"Device({self.kind!r})" if self.index is None else f"Device({self.kind!r}, {self.index})"
