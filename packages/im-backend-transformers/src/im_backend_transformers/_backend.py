"""The ``transformers`` backend: a Hugging Face model folder run on torch, one :class:`Session` per part.

A folder is ``config.json`` (its ``model_type`` picks the recipe, :mod:`im_backend_transformers._parts`) next to
``model.safetensors`` (or a sharded ``model.safetensors.index.json``). Pickle weights (``pytorch_model.bin``) are
refused unless ``allow_pickle=True`` is passed: unpickling runs code the file chooses.

Several parts of one folder (CLIP's two towers, SAM's encoder and decoder) share one loaded model: models are
kept per (folder, device, dtype) while any of their sessions lives.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from im_core import BackendBase, BackendProbe, BatchLimits, Device, ModelPackage, Verdict
from im_core.errors import (
    CorruptedModelPackageError,
    InvalidParameterError,
    MissingDependencyError,
    ModelImplementationNotFoundError,
    ModelLoadingError,
)
from im_core.sdk import load_json

__all__ = ["LOAD_OPTIONS", "TransformersBackend", "folder_config", "load_hf_model"]

#: options ``load`` understands
LOAD_OPTIONS = frozenset(
    {
        "part",  # which network of the folder (e.g. "vision", "text"); optional when the recipe has one part;
        # "generate": the whole model behind a GenerativeSession (generative vision-language models)
        "allow_pickle",  # True: also load pytorch_model.bin (unpickling runs code the file chooses)
        "dtype",  # "fp32" (default) | "fp16" | "bf16"
        "num_threads",  # torch intra-op threads (process-wide)
    }
)
_SAFE = ("model.safetensors", "model.safetensors.index.json")
_PICKLE = "pytorch_model.bin"
_MODELS: weakref.WeakValueDictionary[tuple[str, str, str], Any] = weakref.WeakValueDictionary()
_MODELS_LOCK = threading.Lock()
_MAX_CONFIG_BYTES = 4 * 2**20


def folder_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a Hugging Face folder, as a dict (at most 4 MB).

    Raises:
        CorruptedModelPackageError: missing, unreadable, not a JSON object, or without a string ``model_type``.
    """
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CorruptedModelPackageError(
            f"{folder} has no config.json: a Hugging Face model folder holds config.json next to model.safetensors. "
            "Fix: save the model with save_pretrained(), or point at the folder that has both."
        )
    if path.stat().st_size > _MAX_CONFIG_BYTES:
        raise CorruptedModelPackageError(f"{path} is larger than {_MAX_CONFIG_BYTES} bytes: not a model config.")
    data = load_json(path.read_bytes(), what=str(path), max_bytes=_MAX_CONFIG_BYTES, error=CorruptedModelPackageError)
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise CorruptedModelPackageError(f"{path} must be a JSON object with a string model_type.")
    return data


def _torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"Hugging Face model folders need torch and transformers ({exc}). "
            "Fix: pip install 'im-backend-transformers'.",
            distribution="im-backend-transformers",
        ) from exc
    return torch


def load_hf_model(folder: Path, device: Device, *, dtype: str | None = None, allow_pickle: bool = False) -> Any:
    """The ``transformers`` model of ``folder`` on ``device`` in eval mode, shared with other callers while alive.

    Raises:
        ModelLoadingError: only pickle weights and ``allow_pickle`` is not set.
        ModelImplementationNotFoundError: no recipe for the folder's ``model_type``.
        CorruptedModelPackageError: transformers could not build the model from the files.
    """
    from im_backend_transformers._parts import RECIPES

    torch = _torch()
    folder = Path(folder)
    config = folder_config(folder)
    model_type = config["model_type"]
    recipe = RECIPES.get(model_type)
    if recipe is None:
        raise ModelImplementationNotFoundError(
            f"{folder}: im has no recipe for Hugging Face model_type {model_type!r}. Supported model types: "
            f"{', '.join(sorted(RECIPES))}. Fix: use a folder of one of those types, or export the model to ONNX "
            "yourself and load that file."
        )
    safe = any((folder / n).is_file() for n in _SAFE)
    if not safe:
        if not (folder / _PICKLE).is_file():
            raise CorruptedModelPackageError(f"{folder} has config.json but no model.safetensors.")
        if not allow_pickle:
            raise ModelLoadingError(
                f"{folder} holds only {_PICKLE}, a pickle: loading it runs code the file chooses, so im refuses it. "
                "Fix: convert it once where you trust it (model.save_pretrained(dir, safe_serialization=True)), "
                "or pass session_options={'allow_pickle': True} if you trust this file."
            )
    torch_dtype = {None: torch.float32, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(dtype)
    if torch_dtype is None:
        raise InvalidParameterError(f"dtype={dtype!r}: use 'fp32', 'fp16' or 'bf16'.")
    key = (str(folder.resolve()), str(device), str(torch_dtype))
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is not None:
            return model
        from im_core.sdk import load_target

        cls = load_target(recipe.model_class, distribution="transformers")
        try:
            model = cls.from_pretrained(str(folder), local_files_only=True, use_safetensors=safe, dtype=torch_dtype)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise CorruptedModelPackageError(
                f"transformers could not load {folder} as {recipe.model_class.split(':')[-1]}: "
                f"{type(exc).__name__}: {exc}. Fix: re-save the folder with save_pretrained()."
            ) from exc
        model = model.to(torch.device(device.torch_string)).eval()
        _MODELS[key] = model
        return model


class TransformersBackend(BackendBase):
    """The ``transformers`` backend plugin."""

    name = "transformers"
    display_name = "transformers"
    load_options = LOAD_OPTIONS

    @staticmethod
    def _do_probe() -> BackendProbe:
        """transformers and torch versions; devices as torch sees them."""
        try:
            import transformers
        except ImportError as exc:
            return BackendProbe("transformers", False, reason=f"{exc}. Fix: pip install 'im-backend-transformers'.")
        from im_backend_torch import TorchBackend

        torch_probe = TorchBackend().probe()
        if not torch_probe.available:
            return BackendProbe("transformers", False, reason=torch_probe.reason)
        details = {"torch": torch_probe.version, "cuda_build": torch_probe.details.get("cuda_build")}
        return BackendProbe("transformers", True, transformers.__version__, torch_probe.devices, details)

    def check(
        self, package: ModelPackage, probe: BackendProbe, device: Device, options: Mapping[str, Any] | None = None
    ) -> Verdict:
        """A folder needs config.json and safetensors weights (or ``allow_pickle=True`` for a pickle)."""
        if not probe.available:
            return Verdict.reject(probe.reason or "transformers is not installed")
        names = {f.name for f in package.files}
        if package.files and "config.json" not in names:
            return Verdict.reject("not a Hugging Face folder: no config.json")
        pickle_only = package.files and not names & set(_SAFE) and _PICKLE in names
        if pickle_only and not (options or {}).get("allow_pickle"):
            return Verdict.reject(
                f"only pickle weights ({_PICKLE}), which run code when loaded; pass session_options="
                "{'allow_pickle': True} if you trust them, or convert them to safetensors"
            )
        if str(device) not in probe.devices and device.kind != "cpu":
            return Verdict.reject(f"torch cannot use {device} here")
        return Verdict.accept()

    def load(self, path: Path, *, device: Device | str, package: ModelPackage | None = None, **options: Any) -> Any:
        """A session running one part of the folder holding ``path`` (its weights file or the folder itself)."""
        from im_backend_torch import TorchSession, apply_thread_policy
        from im_backend_transformers._generation import GENERATE_PART, GenerativeSession
        from im_backend_transformers._parts import parts_of

        self.check_options(options)
        device = Device.parse(device)
        torch = _torch()
        apply_thread_policy(torch, options.get("num_threads"))
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        model = load_hf_model(
            folder, device, dtype=options.get("dtype"), allow_pickle=bool(options.get("allow_pickle"))
        )
        name = options.get("part")
        if name == GENERATE_PART:  # a generative model: generate() behind a session of its own (see _generation)
            return GenerativeSession.load(folder, model, device)
        parts = parts_of(model, folder_config(folder)["model_type"])
        if name is None and len(parts) == 1:
            name = next(iter(parts))
        if not isinstance(name, str) or name not in parts:
            raise InvalidParameterError(
                f"{folder} has the parts {sorted(parts)}; pass part= one of them (got {name!r})."
            )
        part = parts[name]
        module = part.module.to(torch.device(device.torch_string))
        return TorchSession(
            module,
            torch=torch,
            device=device,
            inputs=part.inputs,
            outputs=part.outputs,
            batch_limits=BatchLimits(),
            metadata={"part": name, **part.metadata},
        )

    def inspect(self, path: Path) -> dict[str, str]:
        """``{"hf_config": <config.json text>}`` for a weights file inside a Hugging Face folder, else ``{}``."""
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        try:
            return {"hf_config": json.dumps(folder_config(folder))}
        except CorruptedModelPackageError:
            return {}
