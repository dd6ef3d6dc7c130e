"""The columnar form of results: one row per image, columns as lists, ready for ``pyarrow.table(columns)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from im_core._results import (
    Classification,
    Detections,
    Embeddings,
    Gaze,
    TextRecognition,
    _rle_list,
)
from im_core._results_text import TextGeneration
from im_core.errors import InvalidParameterError

__all__ = ["results_to_columns"]

_BASE = ("path", "n", "xyxy", "confidence", "class_id", "class_name", "masks", "error")


def results_to_columns(
    results: Sequence[Any],
    paths: Sequence[Any] | None = None,
    errors: Sequence[Any] | None = None,
) -> dict[str, list[Any]]:
    """One row per image, as a dict of equally long lists (``pyarrow.table(columns)``, ``pandas.DataFrame``).

    Args:
        results: one result per image (what ``model([...])`` or ``infer_batch`` returns); an exception or None in
            a slot is a failed image (``infer_batch(..., errors="return")`` puts the error there).
        paths: optional name of each image (str or ``os.PathLike``), written to ``path``.
        errors: optional error of each image (an exception, a message or None), for callers who keep errors apart
            from results; a non-empty one makes that row a failed row.

    Returns:
        Always the columns ``path`` (str or None), ``n`` (detections, lines or predicted classes; None on a failed
        row), ``xyxy`` (list of ``[x1, y1, x2, y2]``), ``confidence`` (list of float), ``class_id`` (list of int),
        ``class_name`` (list of str), ``masks`` (list of COCO uncompressed RLE ``{"size": [h, w], "counts": [...]}``
        or None when the model gives no masks) and ``error`` (``"ErrorClass: message"`` or None). Extra columns
        appear only when some result needs them: ``keypoints`` / ``keypoint_confidence`` (pose and faces),
        ``text`` (OCR lines; a generated answer as one entry), ``yaw`` / ``pitch`` (gaze, radians), ``embedding``
        (one vector per image).
        A failed row holds None in every column but ``path`` and ``error``. Values are plain Python (no numpy
        scalars); floats stay floats, NaN and infinities included (Arrow and Parquet store them as they are — for
        strict JSON use each result's ``to_dict``).
    """
    results = list(results)
    for name, other in (("paths", paths), ("errors", errors)):
        if other is not None and len(other) != len(results):
            raise InvalidParameterError(f"{name} has {len(other)} entries for {len(results)} results.")
    rows = []
    for i, result in enumerate(results):
        row: dict[str, Any] = {"path": None if paths is None or paths[i] is None else str(paths[i])}
        error = errors[i] if errors is not None else None
        if isinstance(result, BaseException) and error is None:
            error = result
        if error is not None and error != "":
            row["error"] = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
        elif result is None:
            row["error"] = "no result"
        else:
            row.update(_row(result))
            row["error"] = None
        rows.append(row)
    names = list(_BASE) + [k for k in _EXTRA if any(k in row for row in rows)]
    return {name: [row.get(name) for row in rows] for name in names}


_EXTRA = ("keypoints", "keypoint_confidence", "text", "yaw", "pitch", "embedding")


def _list(array: np.ndarray) -> Any:
    return array.tolist()


def _detections(d: Detections) -> dict[str, Any]:
    row: dict[str, Any] = {
        "n": len(d),
        "xyxy": _list(d.xyxy),
        "confidence": _list(d.confidence),
        "class_id": d.class_id.tolist(),
        "class_name": d.names,
        "masks": None if d.masks is None else [m.to_dict() for m in _rle_list(d)],
    }
    if d.keypoints is not None:
        row["keypoints"] = _list(d.keypoints)
        row["keypoint_confidence"] = _list(np.asarray(d.keypoint_confidence))
    return row


def _row(result: Any) -> dict[str, Any]:
    if isinstance(result, Detections):
        return _detections(result)
    if isinstance(result, Classification):
        ids = result.predicted_ids if len(result.confidence) else []
        return {
            "n": len(ids),
            "confidence": [float(result.confidence[i]) for i in ids],
            "class_id": ids,
            "class_name": [result._name(i) for i in ids],
        }
    if isinstance(result, TextRecognition):
        boxes = [
            [*line.polygon.min(axis=0).tolist(), *line.polygon.max(axis=0).tolist()] if len(line.polygon) else None
            for line in result.lines
        ]
        return {
            "n": len(result.lines),
            "xyxy": boxes,
            "confidence": [float(line.confidence) for line in result.lines],
            "text": [line.text for line in result.lines],
        }
    if isinstance(result, Gaze):
        row = _detections(result.faces) if result.faces is not None else {"n": len(result)}
        row.update(yaw=_list(result.yaw), pitch=_list(result.pitch))
        return row
    if isinstance(result, TextGeneration):  # one answer per image: its text, in the OCR lines' column
        return {"n": 1, "text": [result.text]}
    if isinstance(result, Embeddings):
        if len(result) != 1:
            raise InvalidParameterError(f"An Embeddings result per image holds one vector, this one {len(result)}.")
        return {"embedding": _list(result.vectors[0])}
    from im_core._results_semantic import SemanticSegmentation

    if isinstance(result, SemanticSegmentation):  # one row per present class, as its to_detections()
        return _detections(result.to_detections())
    raise InvalidParameterError(
        "results_to_columns takes Detections, Classification, TextRecognition, TextGeneration, Gaze, Embeddings or "
        f"SemanticSegmentation (or an exception for a failed image), got {type(result).__name__}."
    )
