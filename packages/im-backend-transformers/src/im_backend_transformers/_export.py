"""Export a Hugging Face model folder to im packages: one network file per part, plus the files the family reads.

``export_folder(src, dst, backend="onnx")`` writes ``dst/<part>.onnx`` for every part of the recipe (TorchScript:
``<part>.torchscript``), copies the processor and tokenizer files and ``config.json``, and writes a
``model_config.json`` naming the architecture, task and backend, so ``AutoModel.from_pretrained(dst)`` loads the
exported package with ONNX Runtime or TorchScript and no ``transformers``.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from im_core import Device
from im_core.errors import InvalidParameterError, ModelLoadingError

__all__ = ["export_folder"]

#: files a family may read besides the networks (processors, tokenizers, class names)
_SIDE_FILES = (
    "config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "image_processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "added_tokens.json",
    "generation_config.json",
    "class_names.txt",
)
_SUFFIX = {"onnx": ".onnx", "torch": ".torchscript"}


def export_folder(
    source: str | Path,
    destination: str | Path,
    *,
    backend: str = "onnx",
    opset: int = 17,
    allow_pickle: bool = False,
) -> Path:
    """Write an im package of ``backend`` (``"onnx"`` or ``"torch"``) for the Hugging Face folder ``source``.

    Returns:
        ``destination``, which then holds ``<part>.onnx`` / ``<part>.torchscript`` per part, the side files and
        ``model_config.json``.

    Raises:
        InvalidParameterError: unknown backend, or ``destination`` is a non-empty folder.
        ModelImplementationNotFoundError: no recipe for the folder's ``model_type``.
        ModelLoadingError: a part could not be traced or exported (the message names it).
    """
    import torch

    from im_backend_transformers._backend import folder_config, load_hf_model
    from im_backend_transformers._parts import parts_of
    from im_core.sdk import registry

    if backend not in _SUFFIX:
        raise InvalidParameterError(f"backend={backend!r}: export writes 'onnx' or 'torch' packages.")
    src, dst = Path(source), Path(destination)
    if dst.exists() and any(dst.iterdir()):
        raise InvalidParameterError(f"{dst} is not empty; export into a new or empty folder.")
    config = folder_config(src)
    metadata = _sniffed(src)
    model = load_hf_model(src, Device.parse("cpu"), allow_pickle=allow_pickle)
    parts = parts_of(model, config["model_type"])
    dst.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        target = dst / f"{name}{_SUFFIX[backend]}"
        try:
            # tracing warns about every Python-level branch of transformers' code, and about its own deprecation
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if backend == "onnx":
                    _onnx(torch, part, target, opset)
                else:
                    _torchscript(torch, part, target)
        except Exception as exc:  # tracing/export failures are torch's many exception types
            raise ModelLoadingError(f"Exporting part {name!r} of {src} to {backend} failed: {exc}") from exc
    for side in _SIDE_FILES:
        if (src / side).is_file():
            shutil.copy2(src / side, dst / side)
    package_config = {
        "model_architecture": metadata.get("architecture", config["model_type"]),
        "task_type": metadata.get("task"),
        "backend_type": registry().canonical_backend(backend),
        "exported_from": {"model_type": config["model_type"], "parts": sorted(parts)},
    }
    (dst / "model_config.json").write_text(json.dumps(package_config, indent=2) + "\n", encoding="utf-8")
    return dst


def _sniffed(folder: Path) -> dict[str, Any]:
    """Architecture and task as loading the folder would name them (the families' sniffers)."""
    from im_core.sdk import inspect_model_file

    found = inspect_model_file(folder / "config.json", backend="transformers") or {}
    return {k: v for k, v in found.items() if k in ("architecture", "task")}


def _onnx(torch: Any, part: Any, target: Path, opset: int) -> None:
    import onnx

    dynamic = {
        spec.name: {i: f"{spec.name}_{i}" for i, d in enumerate(spec.shape) if d is None}
        for spec in (*part.inputs, *part.outputs)
    }
    torch.onnx.export(
        part.module,
        part.example(),
        str(target),
        input_names=[s.name for s in part.inputs],
        output_names=[s.name for s in part.outputs],
        dynamic_axes={k: v for k, v in dynamic.items() if v},
        opset_version=opset,
        dynamo=False,
    )
    if part.metadata:
        proto = onnx.load(str(target))
        for key, value in part.metadata.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(target))


def _torchscript(torch: Any, part: Any, target: Path) -> None:
    with torch.inference_mode():
        traced = torch.jit.trace(part.module, part.example(), check_trace=False, strict=False)
    torch.jit.save(traced, str(target), _extra_files={k: v for k, v in part.metadata.items()})
