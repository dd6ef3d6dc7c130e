"""Which file of a package a backend runs: the one table of network file names (DESIGN.md §3).

A package folder in Roboflow's layout holds its network under a conventional name (``weights.onnx``,
``weights.torchscript``, ``engine.plan``...). :func:`backend_file_names` is the only place that knows those names and
the suffixes of each backend's files; :meth:`im_core.PackageContext.network_file` and the local-folder loader
(:mod:`im_core._local`) ask it, model families never list file names themselves (families with several networks,
such as CLIP's two towers, name their own files).
"""

from __future__ import annotations

__all__ = ["backend_file_names", "network_file_names"]

#: backend -> conventional network file names of a package folder, most preferred first
_PREFERRED_NAMES: dict[str, tuple[str, ...]] = {
    "onnx": ("weights.onnx", "model.onnx"),
    "torch": ("weights.torchscript", "weights.pt2", "weights.pt", "weights.pth"),
    "trt": ("engine.plan",),
}


def backend_file_names(backend: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(names, suffixes)`` of ``backend``'s network files.

    ``names``: the conventional file names of a package folder, most preferred first; ``suffixes``: the lower-case
    file suffixes the backend loads (``(".onnx",)`` for ``onnx``), from the bare-file table of
    :mod:`im_core._local`. Both are empty for a backend this table does not know.
    """
    from im_core._local import BARE_FILE_BACKENDS

    suffixes = tuple(s for s, (b, _) in BARE_FILE_BACKENDS.items() if b == backend)
    return _PREFERRED_NAMES.get(backend, ()), suffixes


def network_file_names() -> tuple[str, ...]:
    """Every backend's conventional network file names (onnx first, then torch, then trt)."""
    return tuple(n for names in _PREFERRED_NAMES.values() for n in names)
