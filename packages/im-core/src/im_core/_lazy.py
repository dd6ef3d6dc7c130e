"""Lazy package exports (PEP 562): a package lists ``name -> module`` and each name is imported on first use.

Used by the ``__init__`` of im_core, im_core._cache, im_models, im_providers and the backends, so that importing a
package (e.g. to read a plugin manifest next to it) does not import its implementation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    namespace: dict[str, Any], exports: Mapping[str, str], *, extra: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose public names live in submodules.

    Args:
        namespace: the package's ``globals()``; a name is stored there once imported, so later lookups are plain
            attribute reads.
        exports: public name -> the module that defines it (``"im_core._auto"``).
        extra: names defined in the package itself (``__version__``), listed by ``dir()`` too.

    Example::

        _EXPORTS = {"AutoModel": "im_core._auto"}
        __all__ = sorted(_EXPORTS)
        __getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
    """
    package = namespace["__name__"]
    names = sorted({*exports, *extra})

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return list(names)

    return __getattr__, __dir__
