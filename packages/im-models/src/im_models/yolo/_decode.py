"""Raw YOLO head outputs (one image) → selected candidates, in network-input pixels. No loops over boxes.

The raw output may be a numpy array or a torch tensor on a GPU: the reduction to candidates (best class, thresholds,
class filter, pre-NMS top-k: :func:`im_models.common.filter_candidates`) runs where it lives; the survivors are copied
to the CPU for NMS (:func:`im_models.common.nms`) and the rest of the decoding.

Layouts:

* anchor-free (YOLOv8/11/12): (4 + C + E, N) — ``cx, cy, w, h``, C class scores (already sigmoid), E extras
  (32 mask coefficients for segmentation, K·3 keypoint values for pose);
* NMS-fused / end-to-end (YOLOv10, YOLO26, ``nms=True`` exports): (N, 6 + E) — ``x1, y1, x2, y2, score, class``;
* YOLOv5: (N, 5 + C + E) — ``cx, cy, w, h, objectness``, C class probabilities (score = objectness × class).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from im_core.errors import ModelRuntimeError
from im_models.common import DetectionParams, array_ops, best_class, filter_candidates, suppress, xywh_to_xyxy

__all__ = [
    "Candidates",
    "anchor_free_candidates",
    "decode_anchor_free",
    "decode_fused",
    "decode_yolov5",
    "fused_layout",
    "warn_fused_nms_params",
]

#: call parameters that only steer the NMS im runs; a graph with NMS inside ignores them
_NMS_ONLY = ("iou_threshold", "class_agnostic", "class_agnostic_nms", "pre_nms_top_k")


def warn_fused_nms_params(params: Mapping[str, Any], baked: Mapping[str, Any] | None = None) -> None:
    """Warn when the caller passes an NMS parameter to a model whose graph already ran NMS (an NMS-fused export or
    an end-to-end head): it has no effect, and silently ignoring it would give the caller results they did not ask
    for. ``baked``: the thresholds the graph was exported with (model feature ``nms_fused``), quoted."""
    given = [k for k in _NMS_ONLY if params.get(k) is not None]
    if not given:
        return
    import warnings

    fixed = f" (the graph was exported with {dict(baked)})" if baked else ""
    warnings.warn(
        f"{', '.join(given)} has no effect on this model: NMS runs inside its graph{fixed}. confidence, class_filter "
        "and max_detections still apply. To choose the IoU threshold, load a package without fused NMS "
        "(from_pretrained(..., nms_fusion_preferences=False)) or re-export the model without NMS.",
        UserWarning,
        stacklevel=4,
    )


@dataclass(frozen=True)
class Candidates:
    """Selected detections of one image, best first, in network-input pixels (numpy, on the CPU).

    Attributes:
        xyxy: float32 (K, 4).
        scores: float32 (K,).
        class_ids: int64 (K,).
        extras: float32 (K, E) per-detection extra values (mask coefficients, keypoints); E may be 0.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    extras: np.ndarray


def _empty(extra: int) -> Candidates:
    return Candidates(
        np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros((0, extra), np.float32)
    )


def _finish(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    extras: np.ndarray,
    params: DetectionParams,
    nms: bool = True,
) -> Candidates:
    """NMS (or sorting, for NMS-free heads) and ``max_detections`` on the CPU, over the copied survivors."""
    keep = suppress(boxes, scores, class_ids, params, run_nms=nms)
    return Candidates(boxes[keep], scores[keep], class_ids[keep], extras[keep])


def _check_probabilities(scores: Any, ops: Any) -> None:
    """Class scores of an anchor-free head are probabilities (sigmoid inside the export). A best score above 1 means
    the output is laid out differently — an oriented-box (``-obb``) export's angle channel read as a class, or a head
    without its sigmoid — and decoding it would give wrong boxes: refuse it instead (checked on the candidates only)."""
    if len(scores) == 0:
        return
    top = float(ops.numpy(scores).max())
    if top > 1.0 + 1e-3:
        raise ModelRuntimeError(
            f"The network's class scores reach {top:.3g}, but a YOLO detection head gives probabilities in [0, 1]: "
            "its output is not laid out as this task expects (an oriented-box '-obb' export loaded as "
            "object-detection, or a head without its sigmoid). Fix: load the file with the task it was exported "
            "for, or export it as a detection model; im refuses rather than return wrong boxes."
        )


def anchor_free_candidates(pred: Any, num_classes: int, params: DetectionParams) -> Candidates:
    """The candidates of one image of an anchor-free head before NMS: best class, thresholds, class filter and
    pre-NMS top-k, run where ``pred`` lives (numpy, or a torch tensor on its device); only the survivors are copied
    to the CPU. ``xyxy`` of the result holds the head's raw ``cx, cy, w, h`` (not yet converted), in candidate
    order (not sorted by score).

    Args:
        pred: (4 + C + E, N) raw output for one image (numpy array or torch tensor).
        num_classes: C.
        params: thresholds and limits.
    """
    ops = array_ops(pred)
    extra = pred.shape[0] - 4 - num_classes
    cand, best, cls = best_class(pred[4 : 4 + num_classes], 0, params.min_threshold, ops)
    _check_probabilities(best, ops)
    keep = filter_candidates(best, cls, params, ops)
    if len(keep) == 0 or params.max_detections == 0:
        return _empty(extra)
    sel = cand[keep]
    return Candidates(
        ops.numpy(pred[:4, sel].T),
        ops.numpy(best[keep]),
        ops.numpy(cls[keep], np.int64),
        ops.numpy(pred[4 + num_classes :, sel].T),
    )


def decode_anchor_free(pred: Any, num_classes: int, params: DetectionParams) -> Candidates:
    """Decode one image of an anchor-free head.

    Best class, thresholds, class filter and pre-NMS top-k run where ``pred`` lives (numpy, or a torch tensor on its
    device); only the survivors' boxes, scores, classes and extras are copied to the CPU for NMS.

    Args:
        pred: (4 + C + E, N) raw output for one image (numpy array or torch tensor).
        num_classes: C.
        params: thresholds, NMS and limits.
    """
    c = anchor_free_candidates(pred, num_classes, params)
    if len(c.scores) == 0:
        return c
    return _finish(xywh_to_xyxy(c.xyxy), c.scores, c.class_ids, c.extras, params)


def fused_layout(shape: tuple[Any, ...], extra: int | None, hint: bool) -> bool:
    """Whether a 3-D head output is laid out as rows ``(B, N, 6 + E)`` (NMS in the graph, or an end-to-end head)
    rather than anchor-free columns ``(B, 4 + C + E, N)``: the layout decides, not the architecture's name (a YOLO26
    export with its one-to-many head has columns, an ``nms=True`` YOLOv8 export has rows).

    Args:
        shape: the output's shape (ints; other entries are unknown dims).
        extra: E, the values per detection beyond box, score and class (0 for boxes, 1 for an oriented box's angle,
            P mask coefficients, K·D keypoint values), or ``None`` when unknown.
        hint: what the metadata says (end-to-end or NMS-fused), used when the shape cannot tell.
    """
    last = shape[2] if len(shape) == 3 and isinstance(shape[2], int) else None
    if last is None or extra is None:
        return hint
    return last == 6 + extra


def decode_fused(pred: Any, params: DetectionParams, num_classes: int) -> Candidates:
    """Decode one image of an NMS-fused / end-to-end head: (N, 6 + E) rows ``x1 y1 x2 y2 score class [extras]``.

    No NMS is run (the graph did it); thresholds, class filter and ``max_detections`` still apply (where ``pred``
    lives; only the surviving rows are copied). Rows with a class id outside ``[0, num_classes)`` (padding rows of
    fixed-size outputs) are dropped.
    """
    ops = array_ops(pred)
    extra = pred.shape[1] - 6
    scores = ops.float32(pred[:, 4])
    cls = pred[:, 5]
    cand = ops.nonzero((scores >= params.min_threshold) & (cls >= 0) & (cls < num_classes))
    keep = filter_candidates(scores[cand], ops.int64(cls[cand]), params, ops)
    if len(keep) == 0 or params.max_detections == 0:
        return _empty(extra)
    rows = ops.numpy(pred[cand[keep]])
    return _finish(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64), rows[:, 6:], params, nms=False)


def decode_yolov5(pred: Any, num_classes: int, params: DetectionParams) -> Candidates:
    """Decode one image of a YOLOv5 head: (N, 5 + C + E) rows ``cx cy w h objectness class-probs [extras]``.

    Score = objectness × class probability; the reduction runs where ``pred`` lives, as in
    :func:`decode_anchor_free`.
    """
    ops = array_ops(pred)
    extra = pred.shape[1] - 5 - num_classes
    obj = ops.float32(pred[:, 4])
    cand = ops.nonzero(obj >= params.min_threshold)  # score = obj × p ≤ obj: a safe first filter
    probs = ops.float32(pred[cand, 5 : 5 + num_classes]) * obj[cand, None]
    scores, cls = ops.max_argmax(probs, 1)
    keep = filter_candidates(scores, cls, params, ops)
    if len(keep) == 0 or params.max_detections == 0:
        return _empty(extra)
    sel = cand[keep]
    boxes = xywh_to_xyxy(ops.numpy(pred[sel, :4]))
    extras = ops.numpy(pred[sel, 5 + num_classes :])
    return _finish(boxes, ops.numpy(scores[keep]), ops.numpy(cls[keep], np.int64), extras, params)
