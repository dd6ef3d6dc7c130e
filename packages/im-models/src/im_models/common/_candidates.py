"""Candidate selection before NMS, written once for numpy arrays and torch tensors (on their own device).

Every detection head reduces a large raw output — e.g. (84, 8 400) scores for one image — to a few candidates:
best class per candidate (or every (candidate, class) pair for multi-label heads), per-class confidence thresholds,
the class filter and the pre-NMS top-k. These functions do exactly that with an :class:`ArrayOps` namespace, so when a
session keeps its outputs on a GPU the reduction runs there and only the survivors are copied to the CPU (see
:mod:`im_models.common._arrays`); numpy outputs go through the very same code. Results are deterministic: ties in
a top-k are broken by the lower position, so the numpy and torch paths select identical candidates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from im_models.common._arrays import ArrayOps, array_ops

if TYPE_CHECKING:
    from im_models.common._postprocess import DetectionParams

__all__ = ["best_class", "filter_candidates", "top_k_positions", "top_pairs"]


def top_k_positions(scores: Any, k: int | None, ops: ArrayOps | None = None) -> Any:
    """int64 positions of the ``k`` highest of the 1-D ``scores``, ascending (all when ``k`` is ``None`` or ≥ N).

    On ties at the k-th value the lower positions are kept, so the set is the same on every backend.
    """
    ops = ops or array_ops(scores)
    n = len(scores)
    if k is None or k >= n:
        return ops.arange(n, scores)
    if k <= 0:
        return ops.arange(0, scores)
    kth = ops.kth_largest(scores, k)
    above = scores > kth
    tie = scores == kth
    room = k - above.sum()  # how many ties still fit (a 0-d array: no device sync)
    return ops.nonzero(above | (tie & (ops.cumsum(tie) <= room)))


def top_pairs(scores: Any, k: int, ops: ArrayOps | None = None) -> tuple[Any, Any]:
    """The ``k`` best (row, column) pairs of a 2-D score matrix, best first (ties: lower flat position first).

    For multi-label heads (DETR: queries × classes), where a row may be reported with several classes.

    Returns:
        ``(rows, columns)``, int64 (k',) each with k' = min(k, rows × columns), on ``scores``' device.
    """
    ops = ops or array_ops(scores)
    flat = scores.reshape(-1)
    pos = top_k_positions(flat, k, ops)
    pos = pos[ops.argsort_desc(flat[pos])]
    cols = scores.shape[1]
    return pos // cols, pos % cols


def best_class(class_scores: Any, axis: int, min_score: float, ops: ArrayOps | None = None) -> tuple[Any, Any, Any]:
    """Best class of each candidate, keeping only candidates whose best score reaches ``min_score``.

    Args:
        class_scores: (C, N) (``axis=0``) or (N, C) (``axis=1``) scores of N candidates for C classes.
        axis: the class axis.
        min_score: a cheap first filter (the lowest per-class threshold).
        ops: the namespace (found from ``class_scores`` when omitted).

    Returns:
        ``(positions, scores, class_ids)``: int64 (K,) candidate positions (ascending), float32 (K,) their best
        score and int64 (K,) its class (the first on ties), on ``class_scores``' device.
    """
    ops = ops or array_ops(class_scores)
    if ops.is_torch:  # one reduction gives both (gathering a (C, K) subset costs more, on a GPU too)
        best, arg = ops.max_argmax(class_scores, axis)
        best = ops.float32(best)
        cand = ops.nonzero(best >= min_score)
        return cand, best[cand], arg[cand]
    best = ops.float32(ops.max(class_scores, axis))  # numpy: argmax of the survivors only (usually few)
    cand = ops.nonzero(best >= min_score)
    sub = class_scores[:, cand] if axis == 0 else class_scores[cand]
    return cand, best[cand], ops.argmax(sub, axis)


def filter_candidates(scores: Any, class_ids: Any, params: DetectionParams, ops: ArrayOps | None = None) -> Any:
    """Positions (ascending, int64) of the candidates that pass the per-class confidence threshold and the class
    filter, limited to the best ``params.pre_nms_top_k`` of them.

    Args:
        scores: float (N,) score of each candidate's class.
        class_ids: int64 (N,) class of each candidate, in ``[0, C)``.
        params: resolved parameters (thresholds, class mask, pre-NMS top-k).
        ops: the namespace (found from ``scores`` when omitted).
    """
    ops = ops or array_ops(scores)
    single = params.single_threshold
    if single is not None and ops.wide_float(scores):
        # one threshold for every class: a scalar comparison, with the same result as the per-class look-up (the
        # float32 threshold is exact in float32 and float64; narrower scores would round the scalar, so they
        # keep the look-up, whose float32 table they are promoted to)
        ok = scores >= single
    else:
        ok = scores >= ops.table(params.thresholds, scores)[class_ids]
    if params.class_mask is not None:
        ok &= ops.table(params.class_mask, scores)[class_ids]
    idx = ops.nonzero(ok)
    if params.pre_nms_top_k is not None and len(idx) > params.pre_nms_top_k:
        idx = idx[top_k_positions(scores[idx], params.pre_nms_top_k, ops)]
    return idx
