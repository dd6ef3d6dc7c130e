"""Loading from local paths: a package folder (``model_config.json``) or a bare model file (DESIGN.md §3).

Both become a one-package :class:`ModelMetadata` so they go through the same negotiation and loading as models
from a provider. A bare file is recognised by the metadata embedded in it (the backend's ``inspect``) and the
model families' sniffers (e.g. an Ultralytics ONNX export carries its task, class names and image size).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from im_core._metadata import BACKEND_ALIASES, BatchSpec, FileSpec, ModelMetadata, ModelPackage, TorchRequirements
from im_core._plugins import load_target, registry
from im_core.errors import CorruptedModelPackageError, ImError, InvalidParameterError

__all__ = ["BARE_FILE_BACKENDS", "local_metadata"]

#: file suffix -> (backend, torch format when the suffix alone decides it)
BARE_FILE_BACKENDS: dict[str, tuple[str, str | None]] = {
    ".onnx": ("onnx", None),
    ".torchscript": ("torch", "torchscript"),
    ".ts": ("torch", "torchscript"),
    ".pt": ("torch", None),  # TorchScript or a state dict: the torch backend tells them apart
    ".pth": ("torch", None),
    ".jit": ("torch", "torchscript"),
    ".pt2": ("torch", "exported-program"),
    ".plan": ("trt", None),
    ".engine": ("trt", None),
}

_WEIGHT_NAMES = ("weights.onnx", "weights.torchscript", "weights.pt2", "engine.plan", "weights.pt", "weights.pth")


def local_metadata(path: Path, overrides: dict[str, Any]) -> tuple[ModelMetadata, str | None]:
    """Metadata for a local folder or file, and the weights file name for a bare file.

    ``overrides`` may hold ``architecture``, ``task`` and ``class_names`` given by the user; they win over what
    the folder or file says.
    """
    if path.is_dir():
        return _folder_metadata(path, overrides), None
    return _file_metadata(path, overrides), path.name


def _files_of(folder: Path) -> tuple[FileSpec, ...]:
    out = []
    for f in sorted(folder.rglob("*")):
        if f.is_file() and not f.is_symlink():
            out.append(FileSpec(name=f.relative_to(folder).as_posix(), size=f.stat().st_size))
    return tuple(out)


def _class_names(folder: Path) -> tuple[str, ...]:
    names_file = folder / "class_names.txt"
    if names_file.is_file():
        return tuple(line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip())
    return ()


def _folder_metadata(folder: Path, overrides: dict[str, Any]) -> ModelMetadata:
    config_file = folder / "model_config.json"
    config: dict[str, Any] = {}
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptedModelPackageError(f"{config_file} is not valid JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise CorruptedModelPackageError(f"{config_file} must hold a JSON object.")
    backend = config.get("backend_type")
    if backend is None:
        weights = next((n for n in _WEIGHT_NAMES if (folder / n).is_file()), None)
        if weights is None:
            raise InvalidParameterError(
                f"{folder} is not a model package: it has no model_config.json and no weights file "
                f"({', '.join(_WEIGHT_NAMES)}). Add a model_config.json with model_architecture, task_type and "
                "backend_type, or pass the model file itself."
            )
        backend = BARE_FILE_BACKENDS[Path(weights).suffix][0]
    architecture = overrides.get("architecture") or config.get("model_architecture")
    task = overrides.get("task") or config.get("task_type")
    if not architecture or not task:
        raise InvalidParameterError(
            f"{folder}/model_config.json must name model_architecture and task_type "
            f"(or pass architecture=... and task=... to from_pretrained)."
        )
    backend = BACKEND_ALIASES.get(str(backend).lower(), str(backend).lower())
    features = config.get("model_features") or {}
    torch_req = TorchRequirements(format="torchscript") if backend == "torch" else None
    package = ModelPackage(
        package_id="local",
        backend=backend,
        quantization=config.get("quantization", "unknown"),
        batch=BatchSpec(dynamic=True, min=1, max=None),
        files=_files_of(folder),
        features=features if isinstance(features, dict) else {},
        torch=torch_req,
    )
    return ModelMetadata(
        model_id=str(folder),
        architecture=str(architecture).lower(),
        task=str(task),
        class_names=tuple(overrides.get("class_names") or _class_names(folder)),
        packages=(package,),
        provider="local-path",
    )


def _file_metadata(file: Path, overrides: dict[str, Any]) -> ModelMetadata:
    suffix = file.suffix.lower()
    if suffix not in BARE_FILE_BACKENDS:
        raise InvalidParameterError(
            f"Cannot tell which backend runs {file.name}: known model file types are "
            f"{', '.join(sorted(BARE_FILE_BACKENDS))}. Pass a package folder instead."
        )
    backend, torch_format = BARE_FILE_BACKENDS[suffix]
    sniffed = _sniff(file, backend)
    architecture = overrides.get("architecture") or sniffed.get("architecture")
    task = overrides.get("task") or sniffed.get("task")
    if not architecture or not task:
        missing = " and ".join(n for n, v in (("architecture", architecture), ("task", task)) if not v)
        raise InvalidParameterError(
            f"Cannot determine the {missing} of {file.name}: it carries no metadata an installed model family "
            f"recognises. Pass {missing.replace(' and ', '=... and ')}=... to from_pretrained, e.g. "
            f"AutoModel.from_pretrained({str(file)!r}, architecture='yolov8', task='object-detection')."
        )
    input_size = sniffed.get("input_size")
    package = ModelPackage(
        package_id="local",
        backend=backend,
        batch=BatchSpec(dynamic=True, min=1, max=None),
        input_size=tuple(input_size) if input_size else None,
        files=(FileSpec(name=file.name, size=file.stat().st_size),),
        features=dict(sniffed.get("features") or {}),
        torch=TorchRequirements(format=torch_format) if torch_format else None,  # type: ignore[arg-type]
    )
    return ModelMetadata(
        model_id=str(file),
        architecture=str(architecture).lower(),
        task=str(task),
        class_names=tuple(overrides.get("class_names") or sniffed.get("class_names") or ()),
        packages=(package,),
        provider="local-path",
    )


def _sniff(file: Path, backend: str) -> dict[str, Any]:
    """Ask the backend for the file's embedded metadata, then every model family's sniffer."""
    reg = registry()
    try:
        plugin = reg.backend(backend)
        inspect = getattr(plugin, "inspect", None)
        file_metadata = inspect(file) if inspect is not None else {}
    except ImError:
        return {}
    for target in reg.sniffers:
        try:
            found = load_target(target)(file_metadata, file)
        except ImError:
            continue
        if found:
            return dict(found)
    return {}
