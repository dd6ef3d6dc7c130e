"""Finding a package's network file and its recommended thresholds (families with one network file)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from im_core.errors import CorruptedModelPackageError

if TYPE_CHECKING:
    from im_core import PackageContext, RecommendedParameters

__all__ = ["backend_files", "model_file", "recommended_parameters"]

#: File names tried, in order, when the package is a folder (Roboflow's layout first).
DEFAULT_MODEL_FILES: tuple[str, ...] = ("weights.onnx", "model.onnx", "weights.torchscript", "engine.plan")


def backend_files(ctx: PackageContext) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The default weights-file names and the file suffixes the negotiated backend declares in its manifest (so a
    backend installed later, or registered at run time, finds its files in a package folder)."""
    from im_core import registry

    manifest = registry().backends.get(ctx.backend)
    if manifest is None:
        return (), ()
    return tuple(manifest.weights_files), tuple(manifest.file_suffixes)


def model_file(ctx: PackageContext, candidates: Sequence[str] = DEFAULT_MODEL_FILES) -> str:
    """The name of the network file inside ``ctx.directory``.

    A bare model file (``ctx.weights_file``) wins; otherwise the first existing of the weights files the backend
    declares, then of ``candidates``; then the only file of the package with a suffix of those.

    Raises:
        CorruptedModelPackageError: no such file, or several that could be it.
    """
    if ctx.weights_file is not None:
        return ctx.weights_file
    declared, declared_suffixes = backend_files(ctx)
    candidates = tuple(dict.fromkeys((*declared, *candidates)))
    found = ctx.first_existing(*candidates)
    if found is not None:
        return found
    suffixes = tuple({"." + c.rsplit(".", 1)[-1] for c in candidates if "." in c} | set(declared_suffixes))
    matches = sorted(f.name for f in ctx.package.files if f.name.endswith(suffixes) and ctx.has(f.name))
    if len(matches) == 1:
        return matches[0]
    what = f"several ({', '.join(matches)})" if matches else "none"
    raise CorruptedModelPackageError(
        f"Package {ctx.package.package_id!r} of {ctx.model_id!r} needs one network file "
        f"({', '.join(candidates)}); found {what} in {ctx.directory}."
    )


def recommended_parameters(ctx: PackageContext) -> RecommendedParameters | None:
    """The package's recommended thresholds, else the model's, else ``None`` (for ``resolve_detection_params``)."""
    return ctx.package.recommended_parameters or ctx.metadata.recommended_parameters
