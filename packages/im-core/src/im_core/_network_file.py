"""Which file of a package a backend runs (DESIGN.md §3).

A package folder in Roboflow's layout holds its network under a conventional name (``weights.onnx``,
``weights.torchscript``, ``engine.plan``...). Each backend declares those names and the suffixes of its files in its
manifest (``BackendManifest.weights_files`` / ``file_suffixes``); :func:`backend_file_names` is the one place that
reads them for :meth:`im_core.PackageContext.network_file` and the local-folder loader (:mod:`im_core._local`).
Model families never list file names themselves (families with several networks, such as CLIP's two towers, name
their own files).
"""

from __future__ import annotations

__all__ = ["backend_file_names", "network_file_names"]


def backend_file_names(backend: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(names, suffixes)`` of ``backend``'s network files, as its manifest declares them.

    ``names``: the conventional file names of a package folder, most preferred first; ``suffixes``: the lower-case
    file suffixes the backend loads (``(".onnx",)`` for ``onnx``). Both are empty for a backend that is not installed.
    """
    from im_core._plugins import registry

    manifest = registry().backends.get(backend)
    if manifest is None:
        return (), ()
    return tuple(manifest.weights_files), tuple(s.lower() for s in manifest.file_suffixes)


def network_file_names() -> tuple[str, ...]:
    """Every installed backend's conventional network file names, the backend ranked highest on CPU first."""
    from im_core._plugins import registry

    return tuple(name for name, _ in registry().weights_files())
