"""Helpers for testing model families and plugins (public API for plugin authors).

``local_context`` builds the :class:`~im_core.PackageContext` a family's ``from_package`` receives, from a folder
or a single file, without a provider or the cache. Backend conformance suites live in ``im_core.testing`` too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from im_core._context import PackageContext
from im_core._device import Device
from im_core._metadata import BatchSpec, FileSpec, ModelMetadata, ModelPackage
from im_core.testing._conformance import (
    REFERENCE_BIAS,
    REFERENCE_INPUT_SHAPE,
    REFERENCE_WEIGHT,
    SessionConformance,
    reference_forward,
    reference_inputs,
    reference_torch_module,
    run_conformance,
    to_numpy,
)

__all__ = [
    "REFERENCE_BIAS",
    "REFERENCE_INPUT_SHAPE",
    "REFERENCE_WEIGHT",
    "SessionConformance",
    "local_context",
    "reference_forward",
    "reference_inputs",
    "reference_torch_module",
    "run_conformance",
    "to_numpy",
]


def local_context(
    path: str | Path,
    *,
    architecture: str,
    task: str,
    backend: str = "onnx",
    device: str | Device = "cpu",
    class_names: tuple[str, ...] | list[str] = (),
    batch: BatchSpec | None = None,
    input_size: tuple[int, int] | None = None,
    features: dict[str, Any] | None = None,
    dependencies: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    session_options: dict[str, Any] | None = None,
    model_id: str | None = None,
) -> PackageContext:
    """A context for ``Family.from_package`` over a package folder, or a single model file.

    For a file, ``ctx.weights_file`` is its name and ``ctx.directory`` its folder.
    """
    p = Path(path).resolve()
    directory, weights = (p.parent, p.name) if p.is_file() else (p, None)
    names = [f.relative_to(directory).as_posix() for f in sorted(directory.rglob("*")) if f.is_file()]
    if weights is not None:
        names = [weights]
    package = ModelPackage(
        package_id="local",
        backend=backend,
        batch=batch or BatchSpec(dynamic=True, min=1, max=None),
        input_size=input_size,
        files=tuple(FileSpec(name=n) for n in names),
        features=features or {},
    )
    metadata = ModelMetadata(
        model_id=model_id or str(p),
        architecture=architecture,
        task=task,
        class_names=tuple(class_names),
        packages=(package,),
    )
    return PackageContext(
        model_id=metadata.model_id,
        directory=directory,
        package=package,
        metadata=metadata,
        backend=backend,
        device=Device.parse(device),
        dependencies=dict(dependencies or {}),
        options=dict(options or {}),
        session_options=dict(session_options or {}),
        weights_file=weights,
    )
