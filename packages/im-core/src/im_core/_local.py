"""Loading from local paths: a package folder (``model_config.json``) or a bare model file (DESIGN.md §3).

Both become a :class:`ModelMetadata` so they go through the same negotiation and loading as models from a provider.
Which backend loads a file comes from what the installed backends declare in their manifests (file suffixes with a
format hint, default weights-file names); a bare file whose suffix several backends load gets one package per
backend, and negotiation picks. A bare file is recognised by the metadata embedded in it (the backend's
``inspect``) and the model families' sniffers (e.g. an Ultralytics ONNX export carries its task, class names and
image size); so is the weights file of a folder whose ``model_config.json`` is missing or does not name the
architecture and task. A suffix's format hint (``.pt2`` → exported program) becomes the package's requirement
block ``{"format": hint}``, for folders and bare files alike.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from im_core._class_names import resolve_class_names, user_class_names
from im_core._metadata import BatchSpec, FileSpec, ModelMetadata, ModelPackage
from im_core._plugins import load_target, registry
from im_core.errors import CorruptedModelPackageError, ImError, InvalidParameterError

logger = logging.getLogger("im")
_T = TypeVar("_T")

__all__ = ["inspect_model_file", "is_model_file", "local_metadata"]

#: model_config.json key -> the ModelPackage field it fills (for error messages)
_CONFIG_KEYS = {"quantization": "quantization", "backend": "backend_type", "features": "model_features"}


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


def _name(value: Any, key: str, source: str | None) -> str | None:
    """``value`` of ``key`` (a non-empty string) or ``None`` when absent; anything else is an error.

    ``source`` is the file the value comes from, ``None`` for a ``from_pretrained`` argument.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    example = {"task": "object-detection", "task_type": "object-detection", "backend_type": "onnx"}.get(key, "yolov8")
    if source is None:
        raise InvalidParameterError(f"{key}= must be a string such as {example!r}, got {value!r}.")
    raise CorruptedModelPackageError(f"{source}: {key} must be a string such as {example!r}, got {value!r}.")


def is_model_file(name: str) -> bool:
    """Whether ``name``'s suffix is one an installed backend loads (``.onnx``, ``.plan``...)."""
    return Path(name).suffix.lower() in registry().file_suffixes()


def _weights_present(folder: Path, backend: str | None = None) -> list[str]:
    """The default weights files the backends declare that ``folder`` holds (best first), optionally ``backend``'s."""
    return [n for n, b in registry().weights_files() if (backend is None or b == backend) and (folder / n).is_file()]


def _format_block(backend: str, weights: list[str]) -> dict[str, Any]:
    """The requirement block the weights files' suffixes decide (as for bare files): ``{"format": hint}`` when the
    backend declares one hint for all of them, else ``{}`` (the backend tells from the file it loads).

    E.g. ``.pt2`` → exported program, ``.torchscript`` → TorchScript; ``.pt``/``.pth`` (TorchScript zip or state
    dict) and folders holding several formats are left to the backend.
    """
    hints = dict(registry().file_suffixes())
    formats = {dict(hints.get(Path(n).suffix.lower(), ())).get(backend) for n in weights}
    if len(formats) != 1 or None in formats:
        return {}
    return {"format": formats.pop()}


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _validated(build: Callable[[], _T], source: str) -> _T:
    """Run a pydantic constructor; a ``ValidationError`` becomes a ``CorruptedModelPackageError`` naming the key."""
    try:
        return build()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err.get("loc", ())) or "value"
            key = _CONFIG_KEYS.get(field, field)
            problems.append(f"{key}={err.get('input')!r}: {err.get('msg')}")
        raise CorruptedModelPackageError(
            f"{source} has invalid values: " + "; ".join(problems) + ". Fix: correct those keys in the file."
        ) from None


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
    backend = _name(config.get("backend_type"), "backend_type", str(config_file))
    reg = registry()
    if backend is None:
        present = _weights_present(folder)
        if not present:
            known = ", ".join(n for n, _ in reg.weights_files()) or "none: no backend is installed"
            orphans = sorted(
                (f.name, _OWN_BACKEND_SUFFIXES[f.suffix.lower()])
                for f in folder.iterdir()
                if f.is_file()
                and f.suffix.lower() in _OWN_BACKEND_SUFFIXES
                and f.suffix.lower() not in known_suffixes()
            )
            if orphans:
                from im_core.errors import MissingDependencyError

                name, own = orphans[0]
                raise MissingDependencyError(
                    f"{folder} holds {name}, and no installed backend loads {Path(name).suffix} files: the {own} "
                    f"package is not installed (or failed to load; `im describe-env` lists the installed backends). "
                    f"Install it: pip install '{own}'.",
                    distribution=own,
                )
            raise InvalidParameterError(
                f"{folder} is not a model package: it has no model_config.json and no weights file "
                f"({known}). Add a model_config.json with model_architecture, task_type and "
                "backend_type, or pass the model file itself."
            )
        backend = next(b for n, b in reg.weights_files() if n == present[0])
    backend = reg.canonical_backend(str(backend))
    weights = _weights_present(folder, backend)
    source = str(config_file)
    architecture = _name(overrides.get("architecture"), "architecture", None) or _name(
        config.get("model_architecture"), "model_architecture", source
    )
    task = _name(overrides.get("task"), "task", None) or _name(config.get("task_type"), "task_type", source)
    sniffed: dict[str, Any] = {}
    if (not architecture or not task) and weights:
        sniffed = _sniff(folder / weights[0], backend)  # e.g. an Ultralytics export names its task itself
        architecture = architecture or sniffed.get("architecture")
        task = task or sniffed.get("task")
    if not architecture or not task:
        raise InvalidParameterError(_unknown_folder_message(folder, config_file, backend, weights, architecture, task))
    features = config.get("model_features") or sniffed.get("features") or {}
    input_size = sniffed.get("input_size")
    package = _validated(
        lambda: ModelPackage(
            package_id="local",
            backend=backend,
            quantization=_lower(config.get("quantization", "unknown")),
            batch=BatchSpec(dynamic=True, min=1, max=None),
            input_size=tuple(input_size) if input_size else None,
            files=_files_of(folder),
            features=features if isinstance(features, dict) else {},
            requirements=_format_block(backend, weights),
        ),
        str(config_file) if config else str(folder),
    )
    return ModelMetadata(
        model_id=str(folder),
        architecture=str(architecture).lower(),
        task=str(task),
        class_names=resolve_class_names(
            override=user_class_names(overrides.get("class_names")),
            folder=folder,
            declared=tuple(sniffed.get("class_names") or ()),
        ),
        packages=(package,),
        provider="local-path",
    )


def _unknown_folder_message(
    folder: Path, config_file: Path, backend: str, weights: list[str], architecture: Any, task: Any
) -> str:
    """What was found in ``folder``, what is missing, and the two ways to fix it."""
    missing = [n for n, v in (("architecture", architecture), ("task", task)) if not v]
    keys = {"architecture": "model_architecture", "task": "task_type"}
    entries = sorted(p.name for p in folder.iterdir())
    found = ", ".join(entries[:12]) + (f" and {len(entries) - 12} more" if len(entries) > 12 else "")
    if config_file.is_file():
        where = f"its model_config.json has no {' and no '.join(keys[m] for m in missing)}"
        add = f"add {' and '.join(keys[m] for m in missing)} to {config_file}"
    else:
        where = "it has no model_config.json"
        example = {
            "model_architecture": architecture or "yolov8",
            "task_type": task or "object-detection",
            "backend_type": backend,
        }
        add = f"add {config_file} holding {json.dumps(example)} (with your model's values)"
    sniffed = f", and {weights[0]} carries no metadata an installed model family recognises" if weights else ""
    return (
        f"Cannot tell the {' and '.join(missing)} of the model in {folder}: {where}{sniffed}. Found: {found}. "
        f"Fix: either pass {' and '.join(f'{m}=...' for m in missing)} to from_pretrained, e.g. "
        f"AutoModel.from_pretrained({str(folder)!r}, architecture='yolov8', task='object-detection'), or {add}."
    )


#: model-file suffixes of im's own backend distributions, used only to name what to install when no installed
#: backend claims a file (negotiation and loading read the installed backends' manifests, never this table)
_OWN_BACKEND_SUFFIXES = {
    ".onnx": "im-backend-onnx",
    ".torchscript": "im-backend-torch",
    ".pt2": "im-backend-torch",
    ".pt": "im-backend-torch",
    ".pth": "im-backend-torch",
    ".safetensors": "im-backend-transformers",
    ".plan": "im-backend-trt",
    ".engine": "im-backend-trt",
}


def known_suffixes() -> set[str]:
    """The model-file suffixes some installed backend loads."""
    return set(registry().file_suffixes())


def _file_metadata(file: Path, overrides: dict[str, Any]) -> ModelMetadata:
    suffix = file.suffix.lower()
    known = registry().file_suffixes()
    claims = known.get(suffix)
    if not claims:
        from im_core.errors import MissingDependencyError

        own = _OWN_BACKEND_SUFFIXES.get(suffix)
        if own is not None:  # a format one of im's own backends loads: that backend is what is missing
            raise MissingDependencyError(
                f"{file.name} is a {suffix} model, and no installed backend loads {suffix} files: the "
                f"{own} package is not installed (or failed to load; `im describe-env` lists the installed "
                f"backends). Install it: pip install '{own}'.",
                distribution=own,
            )
        raise InvalidParameterError(
            f"Cannot tell which backend runs {file.name}: the installed backends load "
            f"{', '.join(sorted(known)) or 'no model files (none is installed)'}. Pass a package folder instead, "
            "or install the backend that loads this file type."
        )
    sniffed: dict[str, Any] = {}
    for backend, _ in claims:
        sniffed = _sniff(file, backend)
        if sniffed:
            break
    architecture = _name(overrides.get("architecture"), "architecture", None) or sniffed.get("architecture")
    task = _name(overrides.get("task"), "task", None) or sniffed.get("task")
    if not architecture or not task:
        missing = " and ".join(n for n, v in (("architecture", architecture), ("task", task)) if not v)
        raise InvalidParameterError(
            f"Cannot determine the {missing} of {file.name}: it carries no metadata an installed model family "
            f"recognises. Pass {missing.replace(' and ', '=... and ')}=... to from_pretrained, e.g. "
            f"AutoModel.from_pretrained({str(file)!r}, architecture='yolov8', task='object-detection')."
        )
    input_size = sniffed.get("input_size")
    packages = tuple(
        ModelPackage(
            package_id="local" if len(claims) == 1 else f"local-{backend}",
            backend=backend,
            batch=BatchSpec(dynamic=True, min=1, max=None),
            input_size=tuple(input_size) if input_size else None,
            files=(FileSpec(name=file.name, size=file.stat().st_size),),
            features=dict(sniffed.get("features") or {}),
            requirements={"format": hint} if hint else {},
        )
        for backend, hint in claims
    )
    return ModelMetadata(
        model_id=str(file),
        architecture=str(architecture).lower(),
        task=str(task),
        class_names=resolve_class_names(
            override=user_class_names(overrides.get("class_names")),
            folder=None,
            declared=tuple(sniffed.get("class_names") or ()),
        ),
        packages=packages,
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
    except Exception as exc:  # a plugin's bug must not stop loading: sniffing is a convenience
        logger.warning("The %s backend could not inspect %s (%s: %s).", backend, file.name, type(exc).__name__, exc)
        return {}
    for target in reg.sniffers:
        try:
            found = load_target(target)(file_metadata, file)
        except ImError:
            continue
        except Exception as exc:
            logger.warning("Sniffer %s failed on %s (%s: %s); skipping it.", target, file.name, type(exc).__name__, exc)
            continue
        if found:
            return dict(found)
    return {}


def inspect_model_file(path: str | Path, backend: str | None = None, *, load: bool = False) -> dict[str, Any]:
    """What bare loading learns from a model file, for tools that publish it (``im registry add``).

    The same steps as ``AutoModel.from_pretrained("model.onnx")``: the backend's ``inspect`` (the metadata embedded
    in the file) and every installed model family's sniffer (e.g. an Ultralytics export names its task, class names,
    image size and stride).

    Args:
        path: the model file.
        backend: the backend that runs it (a name or alias); default: each installed backend that loads the file's
            suffix, until one recognises it.
        load: also load the file on the CPU with that backend, to report its ``inputs`` and ``outputs``
            (:class:`~im_core.sdk.TensorSpec`: names, shapes with dynamic axes as strings or ``None``, dtypes).

    Returns:
        ``{"backend", "architecture", "task", "class_names", "input_size", "features", "inputs", "outputs"}``, only
        the keys that are known (``{}`` when no installed backend loads the file).

    Raises:
        ImError: only from ``load=True`` (the backend refused the file, e.g. ``ModelLoadingError``).
    """
    file = Path(path)
    reg = registry()
    if backend is not None:
        candidates = [reg.canonical_backend(backend)]
    else:
        candidates = [name for name, _ in reg.file_suffixes().get(file.suffix.lower(), [])]
    if not candidates:
        return {}
    found: dict[str, Any] = {"backend": candidates[0]}
    for name in candidates:
        sniffed = _sniff(file, name)
        if sniffed:
            found = {"backend": name, **sniffed}
            break
    if load:
        from im_core._device import Device

        session = reg.backend(found["backend"]).load(file, device=Device("cpu"))
        found["inputs"] = list(session.inputs)
        found["outputs"] = list(session.outputs)
    return found
