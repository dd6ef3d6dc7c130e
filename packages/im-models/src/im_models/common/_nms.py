"""Exact greedy non-maximum suppression, vectorised (numpy only).

The reference algorithm: visit boxes by descending score (ties: lower index first); keep a box unless it overlaps a
box already kept (IoU strictly greater than the threshold; for class-aware NMS, only boxes of the same class count).
:func:`nms` returns exactly that list, and with ``max_detections`` exactly its prefix. It never loops in Python over
candidates: every Python-level step below keeps at least one box, or is one of a few steps per block.

**The sweep** (:class:`_Sweep`) visits the candidates in score order. Each candidate is checked against each kept box
that precedes it at most once (not at all once it is suppressed), in one of two vectorised ways: when a box is kept
it kills its overlaps among the candidates already looked at (*push*), and candidates looked at later meet all boxes
kept so far in one go (*pull*; the older half of the kept boxes first when there are many pairs, so that what it
kills is not checked again). How far ahead candidates are looked at follows the measured survival rate and the
number of boxes still to keep, so that with ``max_detections`` little is looked at in vain. Live candidates are then
decided in blocks of ``m ≤ block`` (``m`` at most twice the number of boxes still to keep). When blocks keep few boxes
(dense duplicates that each kill many candidates ahead), the sweep keeps one box at a time and pushes it, which
beats resolving dense blocks.

**Resolving a block** of ``m`` live boxes, given its overlap edges ``j → i`` (``j`` before ``i``): the greedy answer
``G`` is the unique solution of ``keep_i = not any_j(keep_j and j → i)`` (by induction over ``i``). Iterating that map
from ``keep = all`` gives ``K¹, K², …``; if ``Kᵗ`` and ``Kᵗ⁺¹`` first differ at ``p``, then ``Kᵗ⁺¹`` equals ``G`` on
``[0, p]`` (on ``[0, p)`` it solves the recurrence, whose solution is unique; ``p`` depends on that prefix only). Most
blocks converge in 2–3 such rounds. A block that does not (a suppression chain settles one box per round) is finished
from its final prefix by the one-box-at-a-time scan over the block's edge lists — each step keeps a box. A block with
too many candidate pairs (duplicates: ~m²) is split in halves: the first half is resolved, its kept boxes kill in the
second half, whose survivors are resolved the same way.

**Which pairs are looked at.** IoU > t ≥ 0 needs the 1-D IoU of the x-intervals, ``iw / (w_a + w_b - iw)``, to
exceed t too. As ``iw ≤ (w_a + w_b) / 2 - |Δcx|`` and ``iw ≤ min(w_a, w_b)``, that gives ``|Δcx| < c (w_a + w_b)``
with ``c = (1 - t) / (2 (1 + t))``, and ``w_b < w_a / t``; likewise in y. So a box's partners have their centre within
``rx = c (w_a + min(w_a / t, widest box))`` of its own (``ry`` alike; all bounds padded far beyond float rounding).
Boxes are indexed by an exact int64 key (class, horizontal strip of centre y, cell of centre x): a box's possible
partners are found with one ``searchsorted`` range per strip that its ``cy ± ry`` covers; the pair bounds above are
checked (with both sizes below t = 0.5, where that prunes most), and the IoU is computed in float64 with exactly the
reference's arithmetic on the remaining pairs only. The bounds only skip pairs whose IoU cannot exceed the
threshold, so the result is exact. Boxes with a zero or negative side, or a non-finite coordinate, overlap nothing
(their numpy IoU is 0 or NaN): they are kept, and never indexed.

**Few boxes** (≤ ``_DENSE_MAX``, the usual case after a confidence threshold): the index's fixed cost would dominate,
so one dense (n, n) IoU matrix gives the edges and the block resolution above decides them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from im_core.errors import InvalidParameterError

__all__ = ["box_iou", "nms"]

_ROUNDS = 3  # vectorised fixed-point rounds per block before finishing it box by kept box
_SLACK = 1e-9  # relative padding of the pair-search radii (float64 rounding is ~1e-16)
_MAX_STRIPS = 4096  # centre-y strips of the pair search
_X_CELLS = 1 << 16  # centre-x cells of the pair search
_SPLIT_PAIRS = 128  # a block with more candidate pairs per box than this is resolved in halves
_SEED_WHEN = 8  # kept boxes are taken one at a time while each decides this many candidates on average
_DENSE_MAX = 64  # up to this many boxes, one dense IoU matrix: the spatial index's fixed cost would dominate
_SPLIT_PAIRS_KILL = 16384  # candidate pairs above which candidates meet the older half of the kept boxes first


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


def _class_ranks(class_ids: np.ndarray | None, n: int) -> np.ndarray:
    """int64 (N,) small non-negative numbers, equal exactly where the class ids are equal."""
    if class_ids is None:
        return np.zeros(n, np.int64)
    if class_ids.dtype.kind in "iub" and n:
        lo, hi = int(class_ids.min()), int(class_ids.max())
        if hi - lo < 1 << 20:
            return class_ids.astype(np.int64) - lo
    return np.unique(class_ids, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])`` without a Python loop (counts ≥ 0)."""
    return np.arange(int(counts.sum())) + np.repeat(starts - (np.cumsum(counts) - counts), counts)


class _Index:
    """Some active boxes, sorted by their :attr:`_Grid.key`: ``keys``, ``at`` (positions) and centre ``cy``."""

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
    """Per (query, strip): ``qi`` (into the active queries ``q``), start ``lo`` and ``lengths`` of an index range."""

    q: np.ndarray
    qi: np.ndarray
    lo: np.ndarray
    lengths: np.ndarray


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
        self.active = act = (w > 0) & (h > 0) & (w < np.inf) & (h < np.inf)
        if act.all():
            x1, y1 = self.x1, self.y1
        elif act.any():
            x1, y1, w, h = self.x1[act], self.y1[act], w[act], h[act]
        else:
            return
        t = min(thr * (1 - _SLACK), 1.0)  # the reference's rounded IoU > thr implies the exact IoU > t
        c = (1 - t) / (2 * (1 + t)) * (1 + _SLACK)
        w_max, h_max = float(w.max()), float(h.max())
        self.pad = pad = _SLACK * max(float(np.abs(x1).max()), float(np.abs(y1).max()), w_max, h_max)
        cx, cy = x1 + 0.5 * w, y1 + 0.5 * h
        cw, ch = c * w, c * h
        with np.errstate(divide="ignore"):  # t = 0: a partner may be as wide as the widest box
            rx = cw + c * np.minimum(w / t, w_max) + pad
            ry = ch + c * np.minimum(h / t, h_max) + pad
        self.x0, self.y0 = float(cx.min()), float(cy.min())
        x_span, y_span = float(cx.max()) - self.x0, float(cy.max()) - self.y0
        self.x_scale = _X_CELLS / x_span if x_span > 0 else 0.0
        self.strip_h = max(float(ry.mean()), y_span / _MAX_STRIPS)
        self.n_strips = int(y_span // self.strip_h) + 1
        if not act.all():  # inactive boxes: zero radii (they are never queried nor indexed)
            self.cx, self.cy, self.cw, self.ch, self.rx, self.ry = (np.zeros(len(act)) for _ in range(6))
            self.cx[act], self.cy[act], self.cw[act], self.ch[act], self.rx[act], self.ry[act] = cx, cy, cw, ch, rx, ry
        else:
            self.cx, self.cy, self.cw, self.ch, self.rx, self.ry = cx, cy, cw, ch, rx, ry
        self.cls = _class_ranks(class_ids, len(act))
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
        qq = q[qi]  # the query of each (query, strip) range
        j = _ranges(lo, count)  # one entry per candidate pair
        d = index.cy[j]
        d -= np.repeat(self.cy[qq], count)
        np.abs(d, out=d)
        if self.thr < 0.5:  # the query's radius is loose: use the partner's size too (see the module docstring)
            d -= self.ch[index.at[j]]
            near = d <= np.repeat(self.ch[qq] + self.pad, count)
        else:
            near = d <= np.repeat(self.ry[qq], count)
        a = np.repeat(qq, count)
        if earlier:
            near &= index.at[j] < a
        a, b = a[near], index.at[j[near]]
        if self.thr < 0.5:
            d = self.cx[a] - self.cx[b]
            np.abs(d, out=d)
            d -= self.cw[b]
            near = d <= self.cw[a] + self.pad
            a, b = a[near], b[near]
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


def _dense_keep(boxes: np.ndarray, cls: np.ndarray | None, thr: float) -> np.ndarray:
    """Greedy keep-mask of a few float64 (n, 4) boxes in visiting order, from their full (n, n) IoU matrix.

    Same float64 IoU arithmetic as the spatial path (:func:`box_iou`) and the same strict ``IoU > thr``; degenerate
    or non-finite boxes get IoU 0 or NaN and so suppress nothing.
    """
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN IoU, which suppresses nothing
        over = box_iou(boxes, boxes) > thr
    if cls is not None:
        over &= cls[:, None] == cls[None, :]
    src, dst = np.triu(over, 1).nonzero()  # edges j → i with j visited before i
    return _resolve(len(boxes), src, dst)


def _block_keep(grid: _Grid, cand: np.ndarray) -> np.ndarray:
    """Greedy keep-mask of the block ``cand`` (positions, ascending) among itself.

    A block of heavily overlapping boxes (duplicates: ~m² pairs) is split in halves instead: the first half is
    resolved, its kept boxes suppress in the second half, and the second half's survivors are resolved.
    """
    m = len(cand)
    index = grid.index(cand)
    windows = grid.windows(cand, index)
    if m <= 32 or int(windows.lengths.sum()) <= _SPLIT_PAIRS * m:
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


class _Sweep:
    """The visit in score order: candidates before ``pos`` are decided, ``found`` holds the kept ones.

    ``alive[i]``: candidate ``i`` is not suppressed by any box kept so far — known for ``i < horizon``; ``pending``
    indexes the active candidates in ``[pos, horizon)`` (possibly some dead or decided ones too). Each kept box
    suppresses in ``pending`` once (push); candidates beyond the horizon meet the kept boxes when the horizon moves
    (pull), the oldest kept boxes first when there are many pairs, so that what they suppress is not checked again.
    """

    def __init__(self, grid: _Grid, limit: int) -> None:
        self.grid, self.limit = grid, limit
        self.n = len(grid.active)
        self.alive = np.ones(self.n, bool)
        self.pending = grid.index(np.zeros(0, np.int64))
        self.kept: list[np.ndarray] = []  # positions of the kept active boxes, ascending, if needed for a pull
        self.found: list[np.ndarray] = []
        self.count = self.pos = self.horizon = 0
        self.rate = 1.0  # fraction of the last stretch that survived the kept boxes
        self.seed_span = 0.0  # candidates decided per kept box (capped), running average while seeding

    def look_ahead(self, m: int, span: float = 1.0) -> None:
        """Move the horizon until ``[pos, horizon)`` holds ``m`` live candidates (or all of them).

        ``span``: candidates expected to be decided per kept box (beyond those the kept boxes suppress so far).
        """
        alive, grid = self.alive, self.grid
        have = int(np.count_nonzero(alive[self.pos : self.horizon]))
        while have < m and self.horizon < self.n:
            if len(self.kept) > 1:
                self.kept = [np.concatenate(self.kept)]
            # for about as many live candidates as boxes may still be kept
            want = max(m, self.limit - self.count) - have
            stop = min(self.n, self.horizon + int(1.25 * want * span / self.rate) + 16)
            stretch = grid.index(np.arange(self.horizon, stop))
            if self.kept:
                self.suppress(self.kept[0], stretch)
                stretch.retain(alive[stretch.at])
            survivors = int(np.count_nonzero(alive[self.horizon : stop]))
            self.rate = max(survivors, 1) / (stop - self.horizon)
            self.pending.insert(stretch)
            have += survivors
            self.horizon = stop

    def suppress(self, kept: np.ndarray, candidates: _Index) -> None:
        """Kill the candidates that the kept boxes at ``kept`` (ascending) overlap.

        With many candidate pairs, the older half of the kept boxes goes first, and what it kills is dropped from
        ``candidates`` before the other half is checked.
        """
        grid = self.grid
        if len(kept) > len(candidates.at):
            dead, _ = grid.pairs(candidates.at, grid.index(kept))
        else:
            windows = grid.windows(kept, candidates)
            if len(kept) >= 32 and int(windows.lengths.sum()) > _SPLIT_PAIRS_KILL:
                self.suppress(kept[: len(kept) // 2], candidates)
                candidates.retain(self.alive[candidates.at])
                self.suppress(kept[len(kept) // 2 :], candidates)
                return
            _, dead = grid.pairs(kept, candidates, windows=windows)
        self.alive[dead] = False

    def keep(self, new: np.ndarray) -> None:
        """Record the newly kept boxes (positions, ascending) and let them suppress the candidates ahead."""
        self.found.append(new)
        self.count += len(new)
        new = new[self.grid.active[new]]
        if self.count < self.limit and self.pos < self.n and new.size:
            self.suppress(new, self.pending)
            if self.horizon < self.n:
                self.kept.append(new)

    def block(self, m: int) -> bool:
        """Resolve the next ``m`` live candidates together; whether to continue one kept box at a time."""
        self.look_ahead(m)
        cand = self.pos + np.flatnonzero(self.alive[self.pos : self.horizon])[:m]
        if not cand.size:
            self.pos = self.n
            return False
        self.pos = int(cand[-1]) + 1 if len(cand) == m else self.horizon
        self.pending.retain((self.pending.at >= self.pos) & self.alive[self.pending.at])
        new = cand[_block_keep(self.grid, cand)][: self.limit - self.count]
        self.keep(new)
        self.seed_span = 4.0 * _SEED_WHEN
        return len(new) * _SEED_WHEN < len(cand)

    def seed(self) -> bool:
        """Keep the next live candidate; whether that is still worth doing one at a time."""
        self.look_ahead(1, self.seed_span)
        live = self.alive[self.pos : self.horizon]
        if not live.any():
            self.pos = self.n
            return False
        i = self.pos + int(live.argmax())
        span, self.pos = i + 1 - self.pos, i + 1
        self.keep(np.array([i]))
        self.seed_span += (min(span, 4 * _SEED_WHEN) - self.seed_span) / 4
        return self.seed_span >= _SEED_WHEN


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
    boxes = np.asarray(boxes).reshape(-1, 4)
    if n <= _DENSE_MAX:
        return order[_dense_keep(np.take(boxes, order, axis=0).astype(np.float64), cls, thr)][:limit].astype(np.int64)
    grid = _Grid(np.take(boxes, order, axis=0).astype(np.float64, copy=False), cls, thr)
    if not grid.active.any():
        return order[:limit].astype(np.int64)
    sweep = _Sweep(grid, limit)
    size = max(1, int(block))
    seeding = False
    while sweep.pos < n and sweep.count < limit:
        if seeding:  # one kept box at a time while each one suppresses many candidates
            seeding = sweep.seed()
        else:
            m = min(size, 2 * (limit - sweep.count))  # a chain keeps every other box: twice what is still needed
            seeding = sweep.block(m)
    return order[np.concatenate(sweep.found)].astype(np.int64) if sweep.found else np.zeros(0, np.int64)
