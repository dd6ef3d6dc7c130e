"""Recognising and loading the three torch package formats.

=====================  =====================================  ==============================================
format                 file                                   loaded with
=====================  =====================================  ==============================================
``torchscript``        zip with ``code/`` and ``constants.pkl``  ``torch.jit.load``
``exported-program``   ``.pt2`` zip with ``archive_format``     ``torch.export.load(...).module()``
``state-dict``         ``torch.save`` of tensors               ``torch.load(weights_only=True)`` into ``module=``
=====================  =====================================  ==============================================
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from im_core.errors import CorruptedModelPackageError, InvalidParameterError, ModelLoadingError

__all__ = ["FORMATS", "detect_format", "extra_files", "load_state_dict_module"]

FORMATS = ("torchscript", "exported-program", "state-dict")


def _names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def detect_format(path: Path, *, requested: str | None, has_module: bool) -> str:
    """The format of ``path``: the explicit choice, else from ``.pt2``/zip contents, else state dict with a module."""
    if requested is not None:
        if requested not in FORMATS:
            raise InvalidParameterError(f"format={requested!r} is not one of {FORMATS}.")
        return requested
    names = _names(path)
    if path.suffix == ".pt2" or any(n.endswith("/archive_format") for n in names):
        return "exported-program"
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    if has_module:
        return "state-dict"
    if names:
        raise ModelLoadingError(
            f"{path.name} looks like a torch.save() checkpoint (state dict), which needs the network's code: the "
            "model family must pass module=<nn.Module or factory>."
        )
    raise CorruptedModelPackageError(f"{path.name} is not a TorchScript, torch.export (.pt2) or torch.save file.")


def extra_files(path: Path) -> dict[str, str]:
    """The extra files of a TorchScript or ``.pt2`` archive (``<archive>/extra/<name>``: TorchScript's
    ``_extra_files``, ``torch.export.save(..., extra_files=)``) as text, read from the zip without torch."""
    out: dict[str, str] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                head, sep, tail = name.partition("/extra/")
                if sep and "/" not in head and tail:
                    out[tail] = zf.read(name).decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError):
        return {}
    return out


def _unwrap(obj: Any, name: str) -> Mapping[str, Any]:
    """A flat ``{key: tensor}`` from a state dict or a common checkpoint wrapper."""
    for key in ("state_dict", "model_state_dict", "model", "ema"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise CorruptedModelPackageError(f"{name} holds a {type(obj).__name__}, not a state dict of tensors.")
    return obj


def load_state_dict_module(torch: Any, path: Path, module: Any) -> Any:
    """Build the module (instance or zero-arg factory) and load ``path`` into it with ``weights_only=True``.

    Raises:
        ModelLoadingError: the pickle needs arbitrary code (refused), or ``module`` is not a module.
        CorruptedModelPackageError: keys or shapes do not match the module.
    """
    if not isinstance(module, torch.nn.Module):
        if not callable(module):
            raise InvalidParameterError(f"module= must be an nn.Module or a zero-argument factory, got {module!r}.")
        module = module()
        if not isinstance(module, torch.nn.Module):
            raise InvalidParameterError(f"The module factory returned {type(module).__name__}, not an nn.Module.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadingError(
            f"Refusing to load {path.name}: it is a pickle that needs arbitrary code to unpickle ({first}). "
            "im loads torch weights with weights_only=True; re-save the file as a plain state dict of tensors "
            "(torch.save(model.state_dict(), path))."
        ) from None
    except (RuntimeError, OSError, EOFError) as exc:
        raise CorruptedModelPackageError(f"{path.name} is not a readable torch.save file: {exc}") from exc
    state = _unwrap(obj, path.name)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CorruptedModelPackageError(f"{path.name} does not fit the model family's module: {exc}") from exc
    return module
