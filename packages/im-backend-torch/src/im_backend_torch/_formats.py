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

import contextlib
import json
import os
import pickle
import threading
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from im_core.errors import CorruptedModelPackageError, InvalidParameterError, ModelLoadingError

__all__ = [
    "FORMATS",
    "check_exported_program_archive",
    "detect_format",
    "extra_files",
    "load_state_dict_module",
    "weights_only_unpickling",
]

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


#: What an archive written by ``torch.export.save`` for an ordinary network holds (under its one top folder): the
#: graph (JSON), tensors stored as raw bytes and the configs describing them, sample inputs, versions, extra files.
_ALLOWED_MEMBERS = (
    "models/",
    "data/weights/",
    "data/constants/",
    "data/sample_inputs/",
    "extra/",
    ".data/",
    "archive_format",
    "archive_version",
    "byteorder",
)
_PICKLE_FREE_CONSTANT = "tensor_"  # constants stored as raw tensor bytes (custom_obj_/opaque_obj_ are pickles)


def check_exported_program_archive(path: Path) -> None:
    """Refuse a ``.pt2`` archive whose loading could run code from the file, before torch opens it.

    ``torch.export.load`` unpickles with ``weights_only=False`` in several places: weights and constants saved with
    ``use_pickle``, custom and opaque objects among the constants (``pickle.loads``), the legacy archive format, and
    a fallback for sample inputs; AOTInductor packages carry compiled native code. An archive written by
    ``torch.export.save`` for an ordinary network has none of these (tensors are stored as raw bytes). What remains —
    the sample inputs — is loaded under :func:`weights_only_unpickling`.

    Raises:
        ModelLoadingError: the archive holds any of the above (says which member and why).
        CorruptedModelPackageError: the archive or its configs cannot be read.
    """

    def refuse(why: str) -> ModelLoadingError:
        return ModelLoadingError(
            f"Refusing to load {path.name}: {why}. Loading it would let the file run code on this machine. im loads "
            "torch.export programs whose weights and constants are plain tensors; re-export the model with "
            "torch.export.save(torch.export.export(model, example_inputs), path), or convert it to ONNX."
        )

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            formats = [n for n in names if n.endswith("/archive_format") and n.count("/") == 1]
            if not formats:
                raise refuse("it is not in the current torch.export archive format (the legacy format is unpickled)")
            root = formats[0].split("/", 1)[0] + "/"
            for name in names:
                if not name.startswith(root) or ".." in name.split("/"):
                    raise refuse(f"its member {name!r} lies outside the archive's folder {root!r}")
                if name.startswith(root + "data/aotinductor/") or name.endswith((".so", ".dll", ".dylib")):
                    raise refuse(f"it holds compiled native code ({name})")
                if name != root and not name[len(root) :].startswith(_ALLOWED_MEMBERS):
                    raise refuse(f"its member {name!r} is not part of a plain torch.export archive")
            for config_name in ("data/weights/model_weights_config.json", "data/constants/model_constants_config.json"):
                member = root + config_name
                if member not in names:
                    continue
                config = json.loads(zf.read(member).decode("utf-8")).get("config", {})
                if not isinstance(config, dict):
                    raise CorruptedModelPackageError(f"{path.name}: {config_name} is not a JSON object of entries.")
                for key, entry in config.items():
                    if not isinstance(entry, dict):
                        raise CorruptedModelPackageError(f"{path.name}: {config_name} entry {key!r} is malformed.")
                    if entry.get("use_pickle"):
                        raise refuse(f"{key!r} is stored as a pickle ({config_name})")
                    is_constant = config_name.startswith("data/constants/")
                    if is_constant and not str(entry.get("path_name", "")).startswith(_PICKLE_FREE_CONSTANT):
                        raise refuse(f"the constant {key!r} is a pickled object ({entry.get('path_name')!r})")
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorruptedModelPackageError(
            f"torch could not load {path.name} as exported-program ({type(exc).__name__}: {exc}): the archive is "
            "damaged. Fix: re-export or re-download the file."
        ) from exc


_WEIGHTS_ONLY_ENV = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
_weights_only_lock = threading.Lock()


@contextlib.contextmanager
def weights_only_unpickling() -> Iterator[None]:
    """Force ``torch.load(weights_only=True)`` for everything torch loads inside the block, even where torch's own
    code asks for ``weights_only=False`` (its exported-program loader falls back to it for sample inputs).

    ``torch.load`` reads ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` on every call; the variable is set for the block and
    restored after (serialised by a lock; another thread's ``torch.load`` meanwhile is only made stricter).
    """
    with _weights_only_lock:
        before = os.environ.get(_WEIGHTS_ONLY_ENV)
        os.environ[_WEIGHTS_ONLY_ENV] = "1"
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(_WEIGHTS_ONLY_ENV, None)
            else:
                os.environ[_WEIGHTS_ONLY_ENV] = before
