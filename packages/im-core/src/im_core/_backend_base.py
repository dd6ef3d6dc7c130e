"""What every backend plugin shares: a probe computed once per instance, and load-option validation."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from im_core._protocols import BackendProbe
from im_core.errors import InvalidParameterError

__all__ = ["BackendBase"]


class BackendBase(ABC):
    """Base for backend plugins: subclasses set ``name``, ``display_name``, ``load_options`` and implement
    ``_do_probe``, ``check`` and ``load`` (see :class:`im_core.BackendPlugin`)."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    load_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self._probe: BackendProbe | None = None
        self._probe_lock = threading.Lock()

    def probe(self) -> BackendProbe:
        """What the runtime offers here; computed on the first call, then cached (thread-safe)."""
        with self._probe_lock:
            if self._probe is None:
                self._probe = self._do_probe()
            return self._probe

    @abstractmethod
    def _do_probe(self) -> BackendProbe:
        """Inspect the runtime (imports it); must not crash where the hardware is absent."""

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise ``InvalidParameterError`` for options ``load`` does not understand."""
        unknown = sorted(set(options) - self.load_options)
        if unknown:
            raise InvalidParameterError(
                f"Unknown {self.display_name} backend option(s) {unknown}; known: {sorted(self.load_options)}."
            )
