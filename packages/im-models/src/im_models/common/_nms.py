"""Exact greedy non-maximum suppression, vectorised (numpy only).

The reference algorithm: visit boxes by descending score (ties: lower index first); keep a box unless it overlaps a
box already kept (IoU strictly greater than the threshold; for class-aware NMS, only boxes of the same class count).
:func:`nms` returns exactly that list (and, with ``max_detections``, exactly its prefix). Its Python-level steps are
bounded by the number of blocks plus, in the worst case, the number of kept boxes — never by the number of candidates.

**Blocks.** Candidates are taken in score order. A chunk of them is first checked against every box kept so far
(cross-check); the first ``m`` survivors form a block, where ``m = min(block, max_detections - kept)`` so that a
block never resolves more boxes than can still be reported. The block is then resolved among itself and its kept
boxes join the kept set. Survivors of the chunk after the block are simply looked at again with the next chunk
(the chunk length follows the measured survival rate so that little is looked at twice).

**Resolving a block** of ``m`` boxes, given its overlap edges ``j → i`` (``j`` before ``i``, same class, IoU >
threshold): the greedy answer ``G`` is the unique solution of ``keep_i = not any_j(keep_j and j → i)`` (by induction
over ``i``). Iterating that map from ``keep = all`` gives ``K¹, K², …``; if ``Kᵗ`` and ``Kᵗ⁺¹`` first differ at
position ``p``, then ``Kᵗ⁺¹`` equals ``G`` on ``[0, p]`` (on ``[0, p)`` it solves the recurrence, whose solution is
unique; position ``p`` only depends on that prefix). Most blocks converge in 2–3 such vectorised rounds. A block
that does not (a long suppression chain converges one position per round) is finished from that final prefix by the
one-box-at-a-time scan, vectorised over the block: take the next alive box that suppresses anything, keep it, kill
its successors. Each step keeps a box, so that loop runs at most once per kept box.

**Which pairs are looked at** (the cost of both the cross-check and the block edges): IoU > t ≥ 0 needs the 1-D
IoU of the x-intervals to exceed t as well, and for intervals that gives ``|Δcx| < (1 - t) / (2t) · min(w_a, w_b)``
(from ``|Δx1| + |Δx2| = union - inter < (1 - t) / t · inter``) and ``|Δcx| < (w_a + w_b) / 2`` (they intersect);
likewise in y. So each box has centre radii ``rx, ry`` (padded well beyond float rounding) that any partner's
centre must fall in. Boxes are indexed by an exact integer key (class, horizontal strip of centre y, rank of
centre x): a query is one ``searchsorted`` window per strip its ``cy ± ry`` covers, then ``|Δcy| ≤ ry`` is checked
and the IoU computed in float64 with exactly the reference's arithmetic on the remaining pairs only. Those bounds
only skip pairs whose IoU cannot exceed the threshold, so the result is exact. Boxes with a zero or negative side,
or a non-finite coordinate, overlap nothing (their numpy IoU is 0 or NaN) and are left out of the index.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from im_core.errors import InvalidParameterError

__all__ = ["box_iou", "nms", "top_k_indices"]

_ROUNDS = 3  # vectorised fixed-point rounds per block before finishing it box by kept box
_SLACK = 1e-9  # relative padding of the pair-search radii (float64 rounding is ~1e-16)
_MAX_STRIPS = 4096  # centre-y strips of the pair search
_X_CELLS = 1 << 16  # centre-x cells of the pair search
_SPLIT_PAIRS = 32  # a block with more candidate pairs per box than this is resolved in halves
_MIN_GENERATION = 64  # kept boxes checked against new candidates together (smaller groups are merged)


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


def _score_order(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score, ties by ascending index (NaN last), as a stable argsort of ``-scores``.

    For float32 scores this is one plain sort of ``(score rank bits << 32) | index`` (several times faster).
    """
    n = len(scores)
    if scores.dtype != np.float32 or n >= 1 << 32:
        return np.argsort(-scores.astype(np.float64, copy=False), kind="stable")
    bits = (scores + np.float32(0)).view(np.int32).astype(np.int64)  # + 0 makes -0.0 equal to 0.0
    bits ^= (bits >> 31) & 0x7FFFFFFF  # now ordered like the floats
    rank = ((1 << 31) - 1 - bits).astype(np.uint64)  # descending, in [0, 2**32)
    rank[np.isnan(scores)] = (1 << 32) - 1
    return (np.sort((rank << np.uint64(32)) | np.arange(n, dtype=np.uint64)) & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])`` without a Python loop (counts ≥ 0)."""
    return np.arange(int(counts.sum())) + np.repeat(starts - (np.cumsum(counts) - counts), counts)


class _Index:
    """Some active boxes, sorted by their :meth:`_Grid.keys`: ``keys``, ``at`` (positions) and centre ``cy``."""

    def __init__(self, keys: np.ndarray, at: np.ndarray, cy: np.ndarray) -> None:
        self.keys, self.at, self.cy = keys, at, cy

    def insert(self, other: _Index) -> None:
        where = np.searchsorted(self.keys, other.keys)
        self.keys = np.insert(self.keys, where, other.keys)
        self.at = np.insert(self.at, where, other.at)
        self.cy = np.insert(self.cy, where, other.cy)

    def retain(self, mask: np.ndarray) -> None:
        self.keys, self.at, self.cy = self.keys[mask], self.at[mask], self.cy[mask]


class _Windows(NamedTuple):
    """Per (query, strip): ``qi`` (into the active queries ``q``), start ``lo`` and ``count`` of an index range."""

    q: np.ndarray
    qi: np.ndarray
    lo: np.ndarray
    count: np.ndarray


class _Grid:
    """Geometry of the boxes in score order, and the search for overlapping pairs (see the module docstring).

    Keys are exact int64 ``(class rank, strip of centre y, cell of centre x)``, lexicographic: a box's possible
    partners lie in one contiguous key range per strip.
    """

    def __init__(self, b: np.ndarray, class_ids: np.ndarray | None, thr: float) -> None:
        """Per-box centres, search radii and keys for (N, 4) float64 boxes ``b``; ``thr`` ≥ 0."""
        self.thr = thr
        self.x1, self.y1, self.x2, self.y2 = (np.ascontiguousarray(b[:, i]) for i in range(4))
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite boxes
            w = self.x2 - self.x1
            h = self.y2 - self.y1
            self.area = w * h  # exactly the reference's areas
        # Boxes that can overlap anything: positive, finite sides (otherwise numpy's IoU is 0 or NaN).
        self.active = (w > 0) & (h > 0) & (w < np.inf) & (h < np.inf)
        act = self.active
        if not act.any():
            return
        t = thr * (1 - _SLACK)  # the reference's rounded IoU > thr implies the exact IoU > t
        rho = np.inf if t <= 0 else max((1 - t) / (2 * t), 0.0)
        pad = _SLACK * float(max(np.abs(self.x1[act]).max(), np.abs(self.y1[act]).max(), w[act].max(), h[act].max()))
        with np.errstate(invalid="ignore", over="ignore"):
            cx, cy = self.x1 + 0.5 * w, self.y1 + 0.5 * h
            rx = np.minimum(rho * w, (w + w[act].max()) * 0.5) * (1 + _SLACK) + pad
            ry = np.minimum(rho * h, (h + h[act].max()) * 0.5) * (1 + _SLACK) + pad
        self.cx, self.cy = np.where(act, cx, 0.0), np.where(act, cy, 0.0)
        self.rx, self.ry = np.where(act, rx, 0.0), np.where(act, ry, 0.0)
        self.x0 = float(self.cx[act].min())
        x_span = float(self.cx[act].max()) - self.x0
        self.x_scale = _X_CELLS / x_span if x_span > 0 else 0.0
        self.y0 = float(self.cy[act].min())
        y_span = float(self.cy[act].max()) - self.y0
        self.strip_h = max(float(self.ry[act].mean()), y_span / _MAX_STRIPS)
        self.n_strips = int(y_span // self.strip_h) + 1
        self.cls = np.zeros(len(b), np.int64)
        if class_ids is not None:
            self.cls = np.unique(class_ids, return_inverse=True)[1].reshape(-1).astype(np.int64)
        self.key = (self.cls * self.n_strips + self._strip(self.cy)) * _X_CELLS + self._cell(self.cx)

    def _strip(self, y: np.ndarray) -> np.ndarray:
        s = np.floor((y - self.y0) / self.strip_h)
        return np.minimum(np.maximum(s, 0), self.n_strips - 1).astype(np.int64)

    def _cell(self, x: np.ndarray) -> np.ndarray:
        c = np.floor((x - self.x0) * self.x_scale)
        return np.minimum(np.maximum(c, 0), _X_CELLS - 1).astype(np.int64)

    def index(self, pos: np.ndarray) -> _Index:
        """The active boxes among ``pos``, sorted by key."""
        pos = pos[self.active[pos]]
        pos = pos[np.argsort(self.key[pos])]
        return _Index(self.key[pos], pos, self.cy[pos])

    def windows(self, q: np.ndarray, index: _Index) -> _Windows:
        """Where in ``index`` the possible partners of the boxes ``q`` lie: one key range per (query, strip).

        Pairs whose centres are further apart than the query's radii cannot overlap (see the module docstring).
        """
        q = q[self.active[q]]
        cy, ry = self.cy[q], self.ry[q]
        s_lo = self._strip(cy - ry)
        n_s = self._strip(cy + ry) - s_lo + 1
        qi = np.repeat(np.arange(len(q)), n_s)  # one entry per (query, strip)
        strip = _ranges(s_lo, n_s)
        base = (self.cls[q[qi]] * self.n_strips + strip) * _X_CELLS
        cx, rx = self.cx[q], self.rx[q]
        lo = np.searchsorted(index.keys, base + np.repeat(self._cell(cx - rx), n_s), "left")
        hi = np.searchsorted(index.keys, base + np.repeat(self._cell(cx + rx) + 1, n_s), "left")
        return _Windows(q, qi, lo, hi - lo)

    def pairs(
        self, q: np.ndarray, index: _Index, *, earlier: bool = False, windows: _Windows | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every ``(a, b)``, ``a`` in ``q`` and ``b`` in ``index``, that overlap (same class, IoU > threshold).

        ``earlier``: only pairs with ``b`` before ``a``. ``windows``: :meth:`windows` of ``q``, if already known.
        """
        q, qi, lo, count = self.windows(q, index) if windows is None else windows
        cy, ry = self.cy[q], self.ry[q]
        j = _ranges(lo, count)  # one entry per candidate pair
        a = np.repeat(q[qi], count)
        d = index.cy[j]
        d -= np.repeat(cy[qi], count)
        np.abs(d, out=d)
        near = d <= np.repeat(ry[qi], count)
        if earlier:
            near &= index.at[j] < a
        a, b = a[near], index.at[j[near]]
        iw = np.minimum(self.x2[a], self.x2[b]) - np.maximum(self.x1[a], self.x1[b])
        ih = np.minimum(self.y2[a], self.y2[b]) - np.maximum(self.y1[a], self.y1[b])
        np.maximum(iw, 0.0, out=iw)
        np.maximum(ih, 0.0, out=ih)
        inter = iw * ih
        union = self.area[a] + self.area[b] - inter
        np.maximum(union, 1e-12, out=union)
        hit = inter / union > self.thr  # exactly the reference's arithmetic
        return a[hit], b[hit]


def _resolve(m: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Greedy keep-mask of ``m`` boxes in visiting order, given the edges ``src[e] → dst[e]`` (``src < dst``)."""
    keep = np.ones(m, bool)
    if src.size == 0:
        return keep
    final = 0  # keep[:final] is the greedy answer (see the module docstring)
    for _ in range(_ROUNDS):
        new = np.ones(m, bool)
        new[dst[keep[src]]] = False
        diff = np.flatnonzero(new[final:] != keep[final:])
        keep = new
        if diff.size == 0:
            return keep
        final += int(diff[0]) + 1
    # Finish one kept box at a time: alive = not suppressed by a kept box before ``cur``.
    alive = keep
    alive[final:] = True
    done = src < final
    alive[dst[done & keep[src]]] = False
    src, dst = src[~done], dst[~done]
    by_src = np.argsort(src, kind="stable")
    src, dst = src[by_src], dst[by_src]
    starts = np.searchsorted(src, np.arange(m + 1)).tolist()
    todo = alive & (np.diff(starts) > 0)  # alive boxes that suppress something
    todo[:final] = False
    while True:
        i = int(todo.argmax())
        if not todo[i]:
            return alive
        killed = dst[starts[i] : starts[i + 1]]
        alive[killed] = False
        todo[killed] = False
        todo[i] = False


def _block_keep(grid: _Grid, cand: np.ndarray) -> np.ndarray:
    """Greedy keep-mask of the block ``cand`` (positions, ascending) among itself.

    A block of heavily overlapping boxes (duplicates: ~m² pairs) is split in halves instead: the first half is
    resolved, its kept boxes suppress in the second half, and the second half's survivors are resolved.
    """
    m = len(cand)
    index = grid.index(cand)
    windows = grid.windows(cand, index)
    if m <= 32 or int(windows.count.sum()) <= _SPLIT_PAIRS * m:
        later, earlier = grid.pairs(cand, index, earlier=True, windows=windows)
        return _resolve(m, np.searchsorted(cand, earlier), np.searchsorted(cand, later))
    half = m // 2
    keep = np.zeros(m, bool)
    keep[:half] = _block_keep(grid, cand[:half])
    rest = cand[half:]
    alive = np.ones(len(rest), bool)
    _, dead = grid.pairs(cand[:half][keep[:half]], grid.index(rest))
    alive[np.searchsorted(rest, dead)] = False
    if alive.any():
        keep[half:][alive] = _block_keep(grid, rest[alive])
    return keep


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
        block: most candidates resolved per vectorised step.

    Returns:
        int64 indices into ``boxes`` of the kept boxes, best score first.

    Raises:
        InvalidParameterError: ``iou_threshold`` is negative or NaN.
    """
    thr = float(iou_threshold)
    if not thr >= 0:
        raise InvalidParameterError(f"iou_threshold must be a number >= 0, got {iou_threshold!r}.")
    scores = np.asarray(scores)
    n = len(scores)
    limit = n if max_detections is None else min(int(max_detections), n)
    if n == 0 or limit <= 0:
        return np.zeros(0, np.int64)
    order = _score_order(scores)
    cls = None if class_ids is None else np.asarray(class_ids)[order]
    grid = _Grid(np.asarray(boxes)[order].astype(np.float64), cls, thr)
    if not grid.active.any():
        return order[:limit].astype(np.int64)
    size = max(1, int(block))
    alive = np.ones(n, bool)  # not suppressed by a kept box (known before ``horizon``)
    pending = grid.index(np.zeros(0, np.int64))  # active candidates in [pos, horizon) not known to be dead
    generations: list[_Index] = []  # the kept active boxes, oldest first (what a new stretch is checked against)
    found: list[np.ndarray] = []
    count = pos = horizon = 0
    rate = 1.0  # fraction of the last stretch that survived the kept boxes
    while pos < n and count < limit:
        m = min(size, 2 * (limit - count))  # a chain keeps every other box: twice what is still needed
        have = int(np.count_nonzero(alive[pos:horizon]))
        while have < m and horizon < n:
            # Look further ahead, for about as many live candidates as boxes may still be kept. The new stretch
            # meets the kept boxes one generation at a time, so that what the first kill is not checked again.
            stop = min(n, horizon + int(1.25 * (max(m, limit - count) - have) / rate) + 16)
            stretch = grid.index(np.arange(horizon, stop))
            for kept in generations:
                if len(kept.at) <= len(stretch.at):
                    _, dead = grid.pairs(kept.at, stretch)
                else:
                    dead, _ = grid.pairs(stretch.at, kept)
                alive[dead] = False
                stretch.retain(alive[stretch.at])
            survivors = int(np.count_nonzero(alive[horizon:stop]))
            rate = max(survivors, 1) / (stop - horizon)
            pending.insert(stretch)
            have += survivors
            horizon = stop
        cand = pos + np.flatnonzero(alive[pos:horizon])[:m]
        if not cand.size:
            break
        pos = int(cand[-1]) + 1 if len(cand) == m else horizon
        new = cand[_block_keep(grid, cand)][: limit - count]
        found.append(new)
        count += len(new)
        if count < limit and pos < n:  # the new kept boxes suppress what lies ahead
            pending.retain((pending.at >= pos) & alive[pending.at])
            new_index = grid.index(new)
            _, dead = grid.pairs(new_index.at, pending)
            alive[dead] = False
            if horizon < n:
                generations.append(new_index)
                if len(generations) > 1 and len(generations[-1].at) < _MIN_GENERATION:
                    generations[-2].insert(generations.pop())
    return order[np.concatenate(found)].astype(np.int64)
