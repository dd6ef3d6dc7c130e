"""Exact greedy non-maximum suppression, vectorised in blocks (numpy only).

The reference algorithm: visit boxes by descending score (ties: lower index first); keep a box unless it overlaps a
box already kept (IoU strictly greater than the threshold; for class-aware NMS, only boxes of the same class count).

How it is computed without a Python loop over boxes: candidates are visited in blocks of ``block`` boxes in score
order. For each block, (1) boxes that overlap an already-kept box are dropped with one (kept × block) IoU matrix;
(2) the survivors are resolved among themselves with their upper-triangular overlap matrix ``M`` (``M[j, i]``: j comes
before i and suppresses it) by iterating ``keep_i = not any_j(keep_j and M[j, i])`` from ``keep = all``. That
recurrence has exactly one solution (by induction over i, it is the greedy one) and after ``t`` rounds the first
``t`` entries are final, so the iteration stops at the greedy answer within ``block + 1`` rounds (in practice 2–4).
Visiting stops as soon as ``max_detections`` boxes are kept, which is what makes 8 400 mostly-surviving candidates
cheap: only the first few blocks are ever looked at.
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_iou", "nms", "top_k_indices"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``x1, y1, x2, y2`` boxes.

    Args:
        a: (N, 4) boxes.
        b: (M, 4) boxes.

    Returns:
        float64 (N, M); 0 where the union is empty (degenerate boxes).
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    np.maximum(iw, 0.0, out=iw)
    np.maximum(ih, 0.0, out=ih)
    inter = iw * ih
    union = area_a[:, None] + area_b[None, :] - inter
    np.maximum(union, 1e-12, out=union)
    return inter / union


def top_k_indices(scores: np.ndarray, k: int | None) -> np.ndarray:
    """Indices of the ``k`` highest scores (unordered; all indices when ``k`` is ``None`` or ≥ N)."""
    n = len(scores)
    if k is None or k >= n:
        return np.arange(n)
    if k <= 0:
        return np.zeros(0, np.int64)
    return np.argpartition(-scores, k - 1)[:k]


def _resolve_block(overlap: np.ndarray) -> np.ndarray:
    """Greedy keep-mask of a block whose (k, k) upper-triangular ``overlap[j, i]`` says j suppresses i."""
    k = overlap.shape[0]
    keep = np.ones(k, bool)
    if not overlap.any():
        return keep
    for _ in range(k + 1):
        new = ~(overlap & keep[:, None]).any(axis=0)
        if np.array_equal(new, keep):
            break
        keep = new
    return keep


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise IoU of float64 (K, 4) box pairs, with exactly the arithmetic of :func:`box_iou`."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    np.maximum(iw, 0.0, out=iw)
    np.maximum(ih, 0.0, out=ih)
    inter = iw * ih
    union = area_a + area_b - inter
    np.maximum(union, 1e-12, out=union)
    return inter / union


def _same_class_pairs(kept_cls: np.ndarray, block_cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ``(i, j)`` with ``kept_cls[i] == block_cls[j]``, enumerated without a Python loop (sort + ragged ranges)."""
    order = np.argsort(kept_cls, kind="stable")
    sk = kept_cls[order]
    lo = np.searchsorted(sk, block_cls, "left")
    counts = np.searchsorted(sk, block_cls, "right") - lo
    total = int(counts.sum())
    jj = np.repeat(np.arange(len(block_cls)), counts)
    starts = np.cumsum(counts) - counts
    ii = order[lo[jj] + np.arange(total) - starts[jj]]
    return ii, jj


def _suppressed(
    kept: np.ndarray,
    block: np.ndarray,
    exact_kept: np.ndarray,
    exact_block: np.ndarray,
    thr: float,
    kept_cls: np.ndarray | None,
    block_cls: np.ndarray | None,
) -> np.ndarray:
    """bool (M,) — which block boxes overlap some kept box by IoU > ``thr``.

    Class-aware: only same-class pairs are enumerated (few when there are many classes). Otherwise (or when most
    pairs share a class) a cheap test in the input precision finds the pairs that intersect at all (the sign of a
    float difference is exact, so this test is exact) and the float64 IoU is computed for those pairs only.
    """
    out = np.zeros(len(block), bool)
    if kept_cls is not None and block_cls is not None:
        ii, jj = _same_class_pairs(kept_cls, block_cls)
        if len(ii) * 4 < len(kept) * len(block):
            if len(ii):
                out[jj[_pair_iou(exact_kept[ii], exact_block[jj]) > thr]] = True
            return out
    iw = np.minimum(kept[:, None, 2], block[None, :, 2])
    iw -= np.maximum(kept[:, None, 0], block[None, :, 0])
    ih = np.minimum(kept[:, None, 3], block[None, :, 3])
    ih -= np.maximum(kept[:, None, 1], block[None, :, 1])
    touch = iw > 0
    touch &= ih > 0
    if kept_cls is not None and block_cls is not None:
        touch &= kept_cls[:, None] == block_cls[None, :]
    ii, jj = np.nonzero(touch)
    if ii.size:
        out[jj[_pair_iou(exact_kept[ii], exact_block[jj]) > thr]] = True
    return out


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    *,
    class_ids: np.ndarray | None = None,
    max_detections: int | None = None,
    block: int = 256,
) -> np.ndarray:
    """Greedy NMS, exactly as the one-box-at-a-time reference, computed in vectorised blocks.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2`` (any unit; float32 or float64).
        scores: (N,) scores; higher is better.
        iou_threshold: a box is suppressed by a kept box when their IoU is strictly greater than this (≥ 0).
        class_ids: (N,) ints for class-aware NMS (boxes of different classes never suppress each other);
            ``None`` for class-agnostic NMS.
        max_detections: stop once this many boxes are kept (the result is the greedy result's prefix).
        block: candidates resolved per vectorised step (grows when blocks are mostly suppressed).

    Returns:
        int64 indices into ``boxes`` of the kept boxes, best score first.
    """
    scores = np.asarray(scores)
    n = len(scores)
    limit = n if max_detections is None else min(int(max_detections), n)
    if n == 0 or limit <= 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    raw = np.asarray(boxes)
    fast_dtype = np.float32 if raw.dtype == np.float32 else np.float64
    b = raw[order].astype(np.float64)
    bf = b if fast_dtype == np.float64 else raw[order]
    c = None if class_ids is None else np.asarray(class_ids)[order]
    kept_pos: list[np.ndarray] = []
    kept = np.zeros(0, np.int64)
    count = 0
    start = 0
    size = max(1, int(block))
    while start < n and count < limit:
        stop = min(start + size, n)
        cc = None if c is None else c[start:stop]
        if count:
            sup = _suppressed(
                bf[kept], bf[start:stop], b[kept], b[start:stop], iou_threshold, None if c is None else c[kept], cc
            )
            alive = np.flatnonzero(~sup)
        else:
            alive = np.arange(stop - start)
        if alive.size:
            sb = b[start:stop][alive]
            overlap = np.triu(box_iou(sb, sb) > iou_threshold, 1)
            if cc is not None:
                sc = cc[alive]
                overlap &= sc[:, None] == sc[None, :]
            new = alive[_resolve_block(overlap)][: limit - count] + start
            kept_pos.append(new)
            kept = np.concatenate([kept, new])
            count += len(new)
        if alive.size * 4 < stop - start:  # mostly suppressed: look further ahead per step
            size = min(size * 2, 4096)
        start = stop
    if not kept_pos:
        return np.zeros(0, np.int64)
    return order[kept].astype(np.int64)
