"""Minimum-area rotated rectangles of many integer point sets at once (``cv2.minAreaRect``, vectorised).

The minimum-area enclosing rectangle of a point set has a side on an edge of its convex hull (rotating calipers),
so :func:`min_area_rects` builds every set's hull and tries every hull edge, all sets together:

1. **Row extremes.** Only the leftmost and rightmost point of each row can be on the hull. The left extremes,
   read top to bottom as a function ``x(y)``, contribute exactly the vertices of their lower convex envelope (the
   convex minorant); the right extremes, with ``x`` negated, likewise. These are the *chains* (two per set).
2. **Chain envelopes.** A chain point on or above the segment joining its two neighbours is not a vertex; all such
   points are dropped at once, and that is repeated. Each round is exact (only non-vertices go) and a round that
   drops nothing leaves a strictly convex chain: the envelope. The few chains still changing after
   ``_ROUNDS`` rounds (a long convex arc cut off by a protruding point peels one point per round) are finished by
   the direct test — a point is a vertex iff every chord from an earlier point rises strictly less than every
   chord to a later one — over their remaining pairs. Integer arithmetic and exact slope comparisons: the hull is
   exact.
3. **Calipers.** For each hull edge of a set, every hull vertex of that set is projected on the edge direction and
   its normal; the extents give that rectangle; the smallest area wins. Among different rectangles of equal area
   (up to float32 rounding) the least tilted one wins; OpenCV, which compares float32 areas, picks whichever its
   rounding favours there.

Cost: O(points · log points) for the row extremes, a few vectorised passes over the chains, and the sum over sets
of (hull vertices)² for the calipers — hull vertices of a text region are a handful. The result is computed in
float64 from exact hulls; it agrees with ``cv2.minAreaRect`` (float32) to its precision, except that ties within
float32 rounding may fall either way.
"""

from __future__ import annotations

import numpy as np

from im_models.ocr._ragged import ragged

__all__ = ["min_area_rects", "rect_polygons"]

_ROUNDS = 6  # peeling rounds before the remaining chains are finished by the pairwise test
_TIE = 1e-6  # relative area difference under which two rectangles count as tied (OpenCV compares in float32)


def min_area_rects(points: np.ndarray, owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-area enclosing rectangle of each point set.

    Args:
        points: int (P, 2) points ``(x, y)``.
        owner: int (P,) set of each point, in ``[0, n)``; every set has at least one point.
        n: number of sets.

    Returns:
        ``(center, axis, sides)``: float64 (n, 2) rectangle centres, float64 (n, 2) unit direction of the first
        side, float64 (n, 2) side lengths ``(along axis, across)``. A single point gives sides ``(0, 0)``; collinear
        points give a zero second side.
    """
    p = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    o = np.asarray(owner, dtype=np.int64).reshape(-1)
    return _calipers(*_hulls(p, o, n), n)


def rect_polygons(center: np.ndarray, axis: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """Corners of rotated rectangles given as centre, unit first-side direction and side lengths.

    Args:
        center: float (N, 2).
        axis: float (N, 2) unit vectors.
        sides: float (N, 2) lengths along ``axis`` and across it.

    Returns:
        float64 (N, 4, 2) corners, in polygon order.
    """
    half = 0.5 * np.asarray(sides, np.float64)
    a = np.asarray(axis, np.float64)
    u = a * half[:, :1]  # half the first side, along the axis
    v = a[:, ::-1] * half[:, 1:] * [-1.0, 1.0]  # half the second side, along the normal (-ay, ax)
    corners = np.empty((len(a), 4, 2))
    corners[:] = np.asarray(center, np.float64)[:, None, :]
    corners[:, [0, 3]] -= u[:, None]
    corners[:, [1, 2]] += u[:, None]
    corners[:, :2] -= v[:, None]
    corners[:, 2:] += v[:, None]
    return corners


def _hulls(p: np.ndarray, owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convex hull vertices of every set, as int64 ``(x, y, owner)`` grouped by owner, each hull in polygon order.

    Consecutive hull points may repeat (a set's top or bottom row with one point); callers skip zero-length edges.
    """
    x = p[:, 0] - p[:, 0].min()
    y = p[:, 1] - p[:, 1].min()
    ny, nx = int(y.max()) + 1, int(x.max()) + 1
    row = owner * ny + y
    order = np.argsort(row * nx + x, kind="stable")
    row, x = row[order], x[order]
    first = np.flatnonzero(np.diff(row, prepend=-1))
    last = np.append(first[1:], len(row)) - 1
    g_owner, g_y = row[first] // ny, row[first] % ny
    # left chains (x) then right chains (-x), each sorted by (chain, y)
    chain = np.concatenate([g_owner, g_owner + n])
    cy = np.concatenate([g_y, g_y])
    cv = np.concatenate([x[first], -x[last]])
    chain, cy, cv = _envelopes(chain, cy, cv)
    left = chain < n
    # polygon: left chain top to bottom, then right chain bottom to top
    hx = np.concatenate([cv[left], -cv[~left][::-1]]) + p[:, 0].min()
    hy = np.concatenate([cy[left], cy[~left][::-1]]) + p[:, 1].min()
    ho = np.concatenate([chain[left], chain[~left][::-1] - n])
    order = np.argsort(ho, kind="stable")
    return hx[order], hy[order], ho[order]


def _envelopes(chain: np.ndarray, y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices of the lower convex envelope of each chain ``v(y)`` (int64 arrays sorted by ``(chain, y)``)."""
    for _ in range(_ROUNDS):
        drop = _not_convex(chain, y, v)
        if not drop.any():
            return chain, y, v
        chain, y, v = chain[~drop], y[~drop], v[~drop]
    # chains still changing: the pairwise test on their remaining points
    changing = np.zeros(int(chain.max()) + 1, bool)
    changing[chain[_not_convex(chain, y, v)]] = True
    busy = changing[chain]
    keep = ~busy
    keep[np.flatnonzero(busy)[_vertex_test(chain[busy], y[busy], v[busy])]] = True
    return chain[keep], y[keep], v[keep]


def _not_convex(chain: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """bool mask: inner chain points on or above the segment joining their two neighbours."""
    drop = np.zeros(len(chain), bool)
    if len(chain) < 3:
        return drop
    inner = (chain[1:-1] == chain[:-2]) & (chain[1:-1] == chain[2:])
    # slope(prev → point) >= slope(point → next), cross-multiplied (positive y steps)
    before = (v[1:-1] - v[:-2]) * (y[2:] - y[1:-1])
    after = (v[2:] - v[1:-1]) * (y[1:-1] - y[:-2])
    drop[1:-1] = inner & (before >= after)
    return drop


def _vertex_test(chain: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """bool mask of envelope vertices: max slope to earlier points < min slope to later points (chain ends kept)."""
    m = len(chain)
    new = np.diff(chain, prepend=-1) != 0
    start = np.maximum.accumulate(np.where(new, np.arange(m), 0))
    count = np.bincount(np.cumsum(new) - 1)
    end = start + count[np.cumsum(new) - 1]
    before_n, after_n = np.arange(m) - start, end - np.arange(m) - 1
    keep = (before_n == 0) | (after_n == 0)
    inner = np.flatnonzero(~keep)
    if len(inner) == 0:
        return keep
    # exact: slopes of integer points with small denominators compare exactly in float64
    i, j = ragged(start[inner], before_n[inner])
    steepest_before = np.full(len(inner), -np.inf)
    np.maximum.at(steepest_before, i, (v[inner[i]] - v[j]) / (y[inner[i]] - y[j]))
    i, j = ragged(inner + 1, after_n[inner])
    flattest_after = np.full(len(inner), np.inf)
    np.minimum.at(flattest_after, i, (v[j] - v[inner[i]]) / (y[j] - y[inner[i]]))
    keep[inner] = steepest_before < flattest_after
    return keep


def _calipers(hx: np.ndarray, hy: np.ndarray, ho: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotating calipers over every hull edge at once (hull points grouped by owner, in polygon order).

    Points are complex numbers ``x + iy``: a vertex seen from an edge's start, times the conjugate of the edge's
    unit direction, has the extent along the edge as real part and across it as imaginary part.
    """
    z = hx.astype(np.float64) + 1j * hy.astype(np.float64)
    count = np.bincount(ho, minlength=n)
    start = np.cumsum(count) - count
    nxt = np.arange(len(z)) + 1
    nxt[start + count - 1] = start  # every set has at least two hull points (left and right chain ends)
    step = z[nxt] - z
    length = np.abs(step)
    edge = np.flatnonzero(length > 0)
    unit = step[edge] / length[edge]
    eo = ho[edge]
    # every (edge, vertex of the same set) pair, grouped by edge
    pair, vertex = ragged(start[eo], count[eo])
    seen = (z[vertex] - z[edge][pair]) * unit.conj()[pair]
    seg = np.cumsum(count[eo]) - count[eo]
    a0, a1 = np.minimum.reduceat(seen.real, seg), np.maximum.reduceat(seen.real, seg)
    b0, b1 = np.minimum.reduceat(seen.imag, seg), np.maximum.reduceat(seen.imag, seg)
    area = (a1 - a0) * (b1 - b0)
    # best edge per set: smallest area; among rectangles tied up to float32 rounding, the least tilted one
    least = np.full(n, np.inf)
    np.minimum.at(least, eo, area)
    tied = area <= least[eo] * (1 + _TIE) + _TIE
    turn = np.angle(unit, deg=True) % 90.0
    order = np.lexsort((np.minimum(turn, 90.0 - turn), ~tied, eo))
    best = order[np.diff(eo[order], prepend=-1) != 0]
    owners = eo[best]
    middle = z[start]  # sets without an edge are one point
    middle[owners] = z[edge[best]] + (0.5 * (a0[best] + a1[best]) + 0.5j * (b0[best] + b1[best])) * unit[best]
    axis = np.ones(n, complex)
    axis[owners] = unit[best]
    sides = np.zeros((n, 2))
    sides[owners, 0] = a1[best] - a0[best]
    sides[owners, 1] = b1[best] - b0[best]
    return np.column_stack([middle.real, middle.imag]), np.column_stack([axis.real, axis.imag]), sides
