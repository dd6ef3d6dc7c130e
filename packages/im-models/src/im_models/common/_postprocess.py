"""Detection post-processing shared by every detector: box formats, thresholds, class filters and selection.

Call-time parameters (``model(image, confidence=..., ...)``) are resolved once per call by
:func:`resolve_detection_params` against the package's recommended parameters and the family defaults, then
:func:`select_detections` turns scored candidates into the kept indices (threshold → class filter → pre-NMS top-k →
NMS → ``max_detections``), all vectorised. The first three steps live in :mod:`im_models.common._candidates`, written
once for numpy and torch so heads whose outputs stay on a GPU run them there.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from im_core.errors import InvalidParameterError
from im_models.common._arrays import NUMPY_OPS
from im_models.common._candidates import filter_candidates
from im_models.common._nms import nms

__all__ = [
    "DetectionParams",
    "class_filter_mask",
    "class_thresholds",
    "resolve_detection_params",
    "select_detections",
    "suppress",
    "xywh_to_xyxy",
]

#: Call-time parameters every detector accepts, all read by ``post_process`` (a family declares them in its
#: ``Model.CALL_PARAMS``: ``{"image_size": "pre", **dict.fromkeys(DETECTION_PARAMS, "post")}``).
DETECTION_PARAMS = frozenset(
    {
        "confidence",
        "iou_threshold",
        "max_detections",
        "class_agnostic",
        "class_agnostic_nms",  # the reference's name for class_agnostic
        "class_filter",
        "pre_nms_top_k",
    }
)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """float (N, 4) centre-x, centre-y, width, height → float32 (N, 4) ``x1, y1, x2, y2`` (same unit)."""
    xywh = np.asarray(xywh, np.float32)
    out = np.empty(xywh.shape, np.float32)
    half = xywh[:, 2:4] * 0.5
    out[:, 0:2] = xywh[:, 0:2] - half
    out[:, 2:4] = xywh[:, 0:2] + half
    return out


def _class_index(key: Any, class_names: Sequence[str], num_classes: int, what: str) -> int:
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if 0 <= int(key) < num_classes:
            return int(key)
        raise InvalidParameterError(f"{what}: class id {key} is out of range (the model has {num_classes} classes).")
    if isinstance(key, str):
        try:
            return list(class_names).index(key)
        except ValueError:
            known = ", ".join(class_names[:20]) + (" ..." if len(class_names) > 20 else "")
            raise InvalidParameterError(f"{what}: unknown class name {key!r}. Known: {known}.") from None
    raise InvalidParameterError(f"{what}: {key!r} is neither a class name nor a class id.")


def _threshold(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0.0 <= value <= 1.0:
        raise InvalidParameterError(f"{what} must be a number in [0, 1], got {value!r}.")
    return float(value)


def class_thresholds(
    confidence: float | Mapping[Any, float] | None,
    class_names: Sequence[str],
    num_classes: int,
    *,
    default: float,
    per_class_default: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Per-class confidence thresholds.

    Args:
        confidence: one threshold; or ``{class name or id: threshold}`` (classes not listed use ``default``);
            or ``None`` (``default`` plus ``per_class_default``).
        class_names / num_classes: the model's classes.
        default: threshold for classes without their own.
        per_class_default: the package's recommended per-class thresholds (by name), used when ``confidence`` is
            ``None``.

    Returns:
        float32 (num_classes,).
    """
    if confidence is None:
        out = np.full(num_classes, default, np.float32)
        for name, value in (per_class_default or {}).items():
            if name in class_names:
                out[list(class_names).index(name)] = value
        return out
    if isinstance(confidence, Mapping):
        out = np.full(num_classes, default, np.float32)
        for key, value in confidence.items():
            out[_class_index(key, class_names, num_classes, "confidence")] = _threshold(value, f"confidence[{key!r}]")
        return out
    return np.full(num_classes, _threshold(confidence, "confidence"), np.float32)


def class_filter_mask(class_filter: Any, class_names: Sequence[str], num_classes: int) -> np.ndarray | None:
    """bool (num_classes,) of the classes to keep, from names and/or ids (``None`` keeps every class)."""
    if class_filter is None:
        return None
    if isinstance(class_filter, (str, int, np.integer)):
        class_filter = [class_filter]
    mask = np.zeros(num_classes, bool)
    for key in class_filter:
        mask[_class_index(key, class_names, num_classes, "class_filter")] = True
    return mask


@dataclass(frozen=True)
class DetectionParams:
    """Resolved call-time parameters.

    Attributes:
        thresholds: float32 (C,) per-class confidence thresholds (a candidate needs score ≥ its class's value).
        iou_threshold: NMS IoU threshold (suppress when IoU > it).
        max_detections: at most this many detections per image.
        class_agnostic: NMS across classes rather than per class.
        class_mask: bool (C,) classes to keep, or ``None`` for all.
        pre_nms_top_k: only the best this-many candidates enter NMS (``None`` = all).
    """

    thresholds: np.ndarray
    iou_threshold: float
    max_detections: int
    class_agnostic: bool = False
    class_mask: np.ndarray | None = None
    pre_nms_top_k: int | None = None

    @functools.cached_property
    def min_threshold(self) -> float:
        """The lowest per-class threshold (a cheap first filter)."""
        return float(self.thresholds.min()) if len(self.thresholds) else 0.0

    @functools.cached_property
    def single_threshold(self) -> float | None:
        """The threshold when every class has the same one, else ``None``."""
        t = self.thresholds
        return float(t[0]) if len(t) and bool((t == t[0]).all()) else None


_RESOLVED: dict[tuple[Any, ...], DetectionParams] = {}
_RESOLVED_MAX = 256  # entries kept (the cache is emptied when full)


def _cache_key(
    params: Mapping[str, Any], class_names: Sequence[str], num_classes: int, recommended: Any, defaults: tuple
) -> tuple[Any, ...]:
    """A key of everything :func:`resolve_detection_params` reads (unhashable when a value is: a dict or a list).

    Values are keyed with their type, so ``True`` and ``1`` (equal and of equal hash) are told apart.
    """
    given = tuple((k, type(params[k]), params[k]) for k in DETECTION_PARAMS.intersection(params)) if params else ()
    rec = None
    if recommended is not None:
        per_class = getattr(recommended, "per_class_confidence", None) or {}
        rec = (
            getattr(recommended, "confidence", None),
            getattr(recommended, "iou_threshold", None),
            getattr(recommended, "max_detections", None),
            tuple(per_class.items()),
        )
    return (given, tuple(class_names), num_classes, rec, defaults)


def resolve_detection_params(
    params: Mapping[str, Any],
    class_names: Sequence[str],
    num_classes: int,
    *,
    recommended: Any = None,
    confidence: float = 0.25,
    iou_threshold: float = 0.7,
    max_detections: int = 300,
    pre_nms_top_k: int | None = 30000,
) -> DetectionParams:
    """Combine call-time ``params`` with the package's recommended parameters and the family defaults.

    The result is cached per distinct (hashable) input, so a plain ``model(image)`` resolves nothing after its
    first call; its arrays are read-only because they are shared.

    Args:
        params: keyword arguments of the call (``confidence``, ``iou_threshold``, ``max_detections``,
            ``class_agnostic`` (alias ``class_agnostic_nms``), ``class_filter``, ``pre_nms_top_k``; others are
            ignored here). ``confidence`` may also be ``"best"`` (the package's recommended thresholds, per class
            where it has them, else the family default: the same as leaving it out) or ``"default"`` (the family
            default, ignoring the package's recommendations), the reference's two named modes.
        class_names / num_classes: the model's classes.
        recommended: an ``im_core.RecommendedParameters`` (or ``None``); fills what the caller leaves out.
        confidence / iou_threshold / max_detections / pre_nms_top_k: family defaults.
    """
    defaults = (confidence, iou_threshold, max_detections, pre_nms_top_k)
    key = _cache_key(params, class_names, num_classes, recommended, defaults)
    try:
        hit = _RESOLVED.get(key)
        cacheable = True
    except TypeError:  # an unhashable value (per-class confidence dict, class_filter list): not cached
        hit, cacheable = None, False
    if hit is not None:
        return hit
    resolved = _resolve_params(params, class_names, num_classes, recommended, *defaults)
    resolved.thresholds.flags.writeable = False
    if resolved.class_mask is not None:
        resolved.class_mask.flags.writeable = False
    if cacheable:
        if len(_RESOLVED) >= _RESOLVED_MAX:
            _RESOLVED.clear()
        _RESOLVED[key] = resolved
    return resolved


def _resolve_params(
    params: Mapping[str, Any],
    class_names: Sequence[str],
    num_classes: int,
    recommended: Any,
    confidence: float,
    iou_threshold: float,
    max_detections: int,
    pre_nms_top_k: int | None,
) -> DetectionParams:
    """:func:`resolve_detection_params` without the cache."""
    rec_conf = getattr(recommended, "confidence", None)
    rec_iou = getattr(recommended, "iou_threshold", None)
    rec_max = getattr(recommended, "max_detections", None)
    per_class = getattr(recommended, "per_class_confidence", None) or {}
    asked = params.get("confidence")
    if asked == "default":  # the family default, whatever the package recommends
        rec_conf, per_class, asked = None, {}, None
    elif asked == "best":  # the package's recommendations: what im does when confidence is left out
        asked = None
    elif isinstance(asked, str):
        raise InvalidParameterError(
            f"confidence={asked!r}: give a number in [0, 1], a {{class: threshold}} dict, 'best' (the package's "
            "recommended thresholds) or 'default' (the model family's default)."
        )
    default_conf = rec_conf if rec_conf is not None else confidence
    thresholds = class_thresholds(asked, class_names, num_classes, default=default_conf, per_class_default=per_class)
    iou = params.get("iou_threshold")
    iou = _threshold(iou, "iou_threshold") if iou is not None else (rec_iou if rec_iou is not None else iou_threshold)
    max_det = params.get("max_detections")
    if max_det is None:
        max_det = rec_max if rec_max is not None else max_detections
    if isinstance(max_det, bool) or not isinstance(max_det, (int, np.integer)) or max_det < 0:
        raise InvalidParameterError(f"max_detections must be an integer >= 0, got {max_det!r}.")
    top_k = params.get("pre_nms_top_k", pre_nms_top_k)
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise InvalidParameterError(f"pre_nms_top_k must be a positive integer or None, got {top_k!r}.")
    return DetectionParams(
        thresholds=thresholds,
        iou_threshold=float(iou),
        max_detections=int(max_det),
        class_agnostic=_class_agnostic(params),
        class_mask=class_filter_mask(params.get("class_filter"), class_names, num_classes),
        pre_nms_top_k=None if top_k is None else int(top_k),
    )


def _class_agnostic(params: Mapping[str, Any]) -> bool:
    """``class_agnostic``, or the reference's ``class_agnostic_nms``; both given differently is an error."""
    value, alias = params.get("class_agnostic"), params.get("class_agnostic_nms")
    if value is not None and alias is not None and bool(value) != bool(alias):
        raise InvalidParameterError(
            f"class_agnostic={value!r} and class_agnostic_nms={alias!r} contradict each other; they are the same "
            "parameter (class_agnostic_nms is the reference's name), pass one."
        )
    return bool(value if value is not None else alias if alias is not None else False)


def select_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    params: DetectionParams,
    *,
    run_nms: bool = True,
) -> np.ndarray:
    """Indices of the candidates to report, best first.

    Order of operations: per-class confidence threshold → class filter → pre-NMS top-k (by score; ties: lower
    index) → NMS (class-aware unless ``params.class_agnostic``; skipped when ``run_nms`` is false, for NMS-free
    heads) → the first ``params.max_detections``. The first three steps are :func:`filter_candidates` (which heads
    with outputs on a GPU run there), the last two :func:`suppress`.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2``.
        scores: (N,) confidence of each candidate's class.
        class_ids: (N,) int class of each candidate.
        params: resolved parameters.
        run_nms: whether to run NMS.

    Returns:
        int64 indices into the inputs.
    """
    class_ids = np.asarray(class_ids, np.int64)
    idx = filter_candidates(np.asarray(scores), class_ids, params, NUMPY_OPS)
    if idx.size == 0 or params.max_detections == 0:
        return np.zeros(0, np.int64)
    return idx[suppress(boxes[idx], scores[idx], class_ids[idx], params, run_nms=run_nms)]


def suppress(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, params: DetectionParams, *, run_nms: bool = True
) -> np.ndarray:
    """The last steps of :func:`select_detections`, on candidates already filtered (on the CPU).

    NMS (class-aware unless ``params.class_agnostic``; only sorting by score when ``run_nms`` is false) and the
    first ``params.max_detections``.

    Args:
        boxes: float (N, 4) ``x1, y1, x2, y2``.
        scores: float (N,).
        class_ids: int (N,).
        params: resolved parameters.
        run_nms: whether to run NMS.

    Returns:
        int64 indices into the inputs, best first.
    """
    n = len(scores)
    if n == 0 or params.max_detections == 0:
        return np.zeros(0, np.int64)
    valid = params.iou_threshold >= 0  # else nms() raises the error
    if n == 1 and (valid or not run_nms):
        return np.zeros(1, np.int64)
    if run_nms:
        return nms(
            boxes,
            scores,
            params.iou_threshold,
            class_ids=None if params.class_agnostic else class_ids,
            max_detections=params.max_detections,
        )
    return np.argsort(-scores, kind="stable")[: params.max_detections].astype(np.int64)
