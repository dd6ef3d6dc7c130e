"""Recognise a bare Ultralytics export from the metadata embedded in the file (ONNX ``metadata_props``, or the
``config.txt`` extra file of a TorchScript export, which holds the same facts as one JSON object).

Ultralytics writes string values: ``task`` (detect / segment / pose / classify / obb), ``names`` (a Python dict
literal ``{0: 'person', ...}``), ``imgsz`` (``[640, 640]``), ``stride``, ``kpt_shape`` (``[17, 3]``), and for newer
exports ``end2end`` / ``nms`` flags; the export's arguments are in ``args`` (a dict whose ``nms`` says whether NMS is
inside the graph, for exports that have no top-level ``nms``). Values are parsed with :func:`ast.literal_eval` (or
JSON), never ``eval``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

__all__ = ["sniff_ultralytics"]

_TASKS = {
    "detect": "object-detection",
    "segment": "instance-segmentation",
    "pose": "keypoint-detection",
    "classify": "classification",
    # rotated boxes: im_models.yolo._obb (decoded as object-detection, the angle channel would be read as a class)
    "obb": "oriented-object-detection",
}


def _literal(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("true", "1", "yes")


def sniff_ultralytics(file_metadata: dict[str, str], path: Path | None = None) -> dict[str, Any] | None:
    """Model facts from an Ultralytics export's metadata, or ``None`` if the file is not one.

    Returns:
        ``{"architecture", "task", "class_names", "input_size", "features"}`` where known; ``features`` holds
        ``{"ultralytics": {"stride", "kpt_shape", "end2end", "nms", "version", "imgsz"}}`` (and ``nms_fused`` when
        the export has NMS in the graph).
    """
    if not isinstance(file_metadata, dict):
        return None
    file_metadata = _with_torchscript_config(file_metadata)
    author = str(file_metadata.get("author", ""))
    task = _TASKS.get(str(file_metadata.get("task", "")).strip())
    if task is None or ("Ultralytics" not in author and "names" not in file_metadata):
        return None
    out: dict[str, Any] = {"architecture": "yolov8", "task": task}
    names = _literal(file_metadata.get("names"))
    if isinstance(names, dict):
        try:
            ordered = sorted((int(k), str(v)) for k, v in names.items())
        except (TypeError, ValueError):
            ordered = []
        if ordered and [k for k, _ in ordered] == list(range(len(ordered))):
            out["class_names"] = [v for _, v in ordered]
    elif isinstance(names, (list, tuple)):
        out["class_names"] = [str(v) for v in names]
    imgsz = _literal(file_metadata.get("imgsz"))
    if isinstance(imgsz, int):
        imgsz = [imgsz, imgsz]
    if isinstance(imgsz, (list, tuple)) and len(imgsz) == 2 and all(isinstance(v, int) and v > 0 for v in imgsz):
        out["input_size"] = (int(imgsz[0]), int(imgsz[1]))
    stride = _literal(file_metadata.get("stride"))
    if isinstance(stride, (list, tuple)) and stride:
        stride = max(stride)
    kpt = _literal(file_metadata.get("kpt_shape"))
    end2end = _flag(file_metadata.get("end2end"))
    fused = _flag(file_metadata.get("nms"))
    if fused is None:  # older exports: only the export arguments say whether NMS was put in the graph
        args = _literal(file_metadata.get("args"))
        if isinstance(args, dict) and isinstance(args.get("nms"), bool):
            fused = args["nms"]
    ultra: dict[str, Any] = {"stride": int(stride) if isinstance(stride, (int, float)) and stride > 0 else 32}
    if isinstance(kpt, (list, tuple)) and len(kpt) == 2:
        ultra["kpt_shape"] = [int(kpt[0]), int(kpt[1])]
    if end2end is not None:
        ultra["end2end"] = end2end
    if fused is not None:
        ultra["nms"] = fused
    if "version" in file_metadata:
        ultra["version"] = str(file_metadata["version"])
    features: dict[str, Any] = {"ultralytics": ultra}
    if end2end or fused:
        features["nms_fused"] = {}
    out["features"] = features
    return out


def _with_torchscript_config(file_metadata: dict[str, str]) -> dict[str, str]:
    """An Ultralytics TorchScript export keeps its metadata as JSON in the extra file ``config.txt``: spread it into
    the string-valued form ONNX metadata has (Python literals, read back with :func:`ast.literal_eval`)."""
    config = file_metadata.get("config.txt")
    if "task" in file_metadata or not isinstance(config, str) or len(config) > 1_000_000:
        return file_metadata
    try:
        parsed = json.loads(config)
    except (ValueError, RecursionError):
        return file_metadata
    if not isinstance(parsed, dict):
        return file_metadata
    spread = {str(k): v if isinstance(v, str) else repr(v) for k, v in parsed.items()}
    return {**file_metadata, **spread}
