"""Recognise a bare Ultralytics export from the metadata embedded in the file (ONNX ``metadata_props``).

Ultralytics writes string values: ``task`` (detect / segment / pose / classify / obb), ``names`` (a Python dict
literal ``{0: 'person', ...}``), ``imgsz`` (``[640, 640]``), ``stride``, ``kpt_shape`` (``[17, 3]``), and for newer
exports ``end2end`` / ``nms`` flags. Values are parsed with :func:`ast.literal_eval`, never ``eval``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

__all__ = ["sniff_ultralytics"]

_TASKS = {
    "detect": "object-detection",
    "segment": "instance-segmentation",
    "pose": "keypoint-detection",
    "classify": "classification",
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
