"""Mean of a map inside many quadrilaterals at once, over the pixels ``cv2.fillPoly`` would set (no drawing).

PaddleOCR scores a DB text box by the mean probability inside it: the corners are truncated to integers relative
to the box's bounding window (``floor(min)``..``ceil(max)``, clipped to the map) and ``cv2.fillPoly`` draws them into
a window-sized mask. With 8-connected lines and no sub-pixel shift, ``cv2.fillPoly`` sets the union of

* the **outline**: each edge drawn by ``cv2.line`` (8-connected Bresenham, walked left to right, after
  ``cv2.clipLine`` to the window). On a line whose major axis has length ``M`` and minor ``m`` (``M ≥ m``, ties
  count as x-major), the ``k``-th pixel from the left end is ``ceil(k·m/M - 1/2)`` steps along the minor axis;
* the **scan-line fill** (``FillEdgeCollection``): an edge ``(x0, y0) → (x1, y1)`` with ``y0 < y1`` is active on rows
  ``y0 ≤ y < y1`` at the 16.16 fixed-point abscissa ``x0·2¹⁶ + (y - y0)·trunc((x1 - x0)·2¹⁶ / (y1 - y0))`` (from the
  clipped end points when the edge leaves the window); on each row the active edges, sorted by abscissa, are filled
  in pairs from ``ceil`` of the first to ``floor`` of the second, clipped to the window.

:func:`quad_means` computes exactly those pixel sets, as column intervals per box row, with integer arithmetic over
all boxes at once (strictly convex boxes inside their windows — all text boxes away from the map border — take a
shorter path: one interval per row, from per-row minima and maxima); merges the intervals of each row; and sums the
map over them in float64 (reading the covered pixels, or from one integral image when the boxes cover much of the
map). No mask is drawn and no per-box Python loop runs. The result equals ``cv2.mean(window, mask)`` per box; tests
check it against ``cv2.fillPoly`` box by box.
"""

from __future__ import annotations

import numpy as np

from im_models.ocr._ragged import ragged

__all__ = ["quad_means", "quad_windows"]

_SHIFT = 16  # OpenCV's XY_SHIFT: drawing works in 16.16 fixed point
_GATHER_COST = 4  # a pixel read by indexing costs about this many pixels of cv2.integral


def quad_windows(quads: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer corners and bounding windows of quadrilaterals, as PaddleOCR's ``box_score_fast`` makes them.

    Args:
        quads: float (N, 4, 2) corners ``(x, y)`` in map pixels.
        height: map height.
        width: map width.

    Returns:
        ``(points, origin, size)``: int64 (N, 4, 2) corners relative to the window, truncated towards zero; int64
        (N, 2) window origins ``(x, y)``; int64 (N, 2) window sizes ``(columns, rows)``, each at least 1.
    """
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    limit = np.array([width - 1, height - 1], np.float64)
    origin = np.clip(np.floor(q.min(axis=1)), 0, limit).astype(np.int64)
    end = np.clip(np.ceil(q.max(axis=1)), 0, limit).astype(np.int64)
    points = np.trunc(q - origin[:, None, :]).astype(np.int64)
    return points, origin, end - origin + 1


def quad_means(values: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over the pixels ``cv2.fillPoly`` sets for each quadrilateral in its window.

    Args:
        values: float (H, W) map (a DB probability map).
        quads: float (N, 4, 2) corners ``(x, y)`` in map pixels, in polygon order.

    Returns:
        float32 (N,) means (0 where a box covers no pixel).
    """
    v = np.asarray(values)
    h, w = v.shape
    points, origin, size = quad_windows(quads, h, w)
    n = len(points)
    if n == 0:
        return np.zeros(0, np.float32)
    # strictly convex quads inside their windows (every text box not cut by the map border): one interval per row
    inside = ((points >= 0) & (points < size[:, None, :])).all(axis=(1, 2))
    simple = inside & _strictly_convex(points)
    parts = []
    if simple.any():
        parts.append(_convex_runs(points[simple], np.flatnonzero(simple)))
    if not simple.all():
        parts.append(_general_runs(points[~simple], size[~simple], np.flatnonzero(~simple)))
    owner, row, start, stop = (np.concatenate(column) for column in zip(*parts))
    x0 = start + origin[owner, 0]
    x1 = stop + origin[owner, 0] + 1
    sums = np.bincount(owner, _interval_sums(v, row + origin[owner, 1], x0, x1), minlength=n)
    counts = np.bincount(owner, x1 - x0, minlength=n)
    return (sums / np.maximum(counts, 1.0)).astype(np.float32)


def _edges(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge ``i`` of each polygon runs from corner ``i - 1`` to corner ``i``, as ``cv2.fillPoly`` walks it.

    Returns int64 ``(p0, p1, box)``: (4N, 2) start and end points and (4N,) polygon index.
    """
    return points[:, [3, 0, 1, 2]].reshape(-1, 2), points.reshape(-1, 2), np.repeat(np.arange(len(points)), 4)


def _strictly_convex(points: np.ndarray) -> np.ndarray:
    """bool (N,): the integer quadrilateral turns the same way, strictly, at every corner."""
    d = np.roll(points, -1, axis=1) - points
    e = np.roll(d, -1, axis=1)
    cross = d[:, :, 0] * e[:, :, 1] - d[:, :, 1] * e[:, :, 0]
    return (cross > 0).all(axis=1) | (cross < 0).all(axis=1)


def _convex_runs(points: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of strictly convex integer quads that lie inside their windows: one column interval per row.

    There the scan-line fill has exactly two active edges per row (so it runs from the smaller to the larger
    abscissa), and its union with the outline is one interval per row (checked against ``cv2.fillPoly`` on
    hundreds of thousands of random quads), so per-row minima and maxima replace sorting.
    """
    p0, p1, box = _edges(points)
    y_lo, y_hi = points[:, :, 1].min(axis=1), points[:, :, 1].max(axis=1)
    rows = y_hi - y_lo + 1
    base = np.cumsum(rows) - rows - y_lo  # flat slot of (polygon, row) = base[polygon] + row
    lo = np.full(int(rows.sum()), np.iinfo(np.int64).max)
    hi = np.full(len(lo), -1)
    owner, row, start, stop = _outline_runs(p0, p1, box)
    np.minimum.at(lo, base[owner] + row, start)
    np.maximum.at(hi, base[owner] + row, stop)
    top, x_top, slope, count = _fill_edges(p0, p1)
    edge, y = ragged(top, count)
    x = x_top[edge] + (y - top[edge]) * slope[edge]
    slot = base[box[edge]] + y
    left = np.full(len(lo), np.iinfo(np.int64).max)
    right = np.full(len(lo), np.iinfo(np.int64).min)
    np.minimum.at(left, slot, x)
    np.maximum.at(right, slot, x)
    first, last = (left + (1 << _SHIFT) - 1) >> _SHIFT, right >> _SHIFT
    filled = (right >= left) & (first <= last)
    lo = np.where(filled, np.minimum(lo, first), lo)
    hi = np.where(filled, np.maximum(hi, last), hi)
    owner = np.repeat(np.arange(len(points)), rows)
    row = np.arange(len(lo)) - base[owner]
    drawn = hi >= lo  # every row of a convex outline has pixels; kept as a guard
    return ids[owner[drawn]], row[drawn], lo[drawn], hi[drawn]


def _general_runs(
    points: np.ndarray, size: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of any integer quads (clipped to their windows, possibly concave or degenerate) as merged intervals."""
    p0, p1, box = _edges(points)
    t0, t1, inside = _clip_lines(p0, p1, size[box, 0], size[box, 1])
    outline = _outline_runs(t0[inside], t1[inside], box[inside])
    fill = _fill_runs(p0, p1, t0, t1, box, size)
    owner, row, start, stop = _merge_runs(*(np.concatenate(pair) for pair in zip(outline, fill)))
    return ids[owner], row, start, stop


def _fill_edges(p0: np.ndarray, p1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``CollectPolyEdges`` for end points inside the window: per edge its top row, 16.16 abscissa there, slope
    per row (C integer division) and number of active rows (0 for a horizontal edge)."""
    down = p0[:, 1] < p1[:, 1]
    top = np.where(down, p0[:, 1], p1[:, 1])
    count = np.abs(p1[:, 1] - p0[:, 1])
    x_top = np.where(down, p0[:, 0], p1[:, 0]) << _SHIFT
    x_bottom = np.where(down, p1[:, 0], p0[:, 0]) << _SHIFT
    return top, x_top, _trunc_div(x_bottom - x_top, np.maximum(count, 1)), count


def _interval_sums(values: np.ndarray, y: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """float64 sums of ``values[y, x0:x1]`` for many row intervals (``x1`` exclusive, ``x0 < x1``).

    Reads the covered pixels directly when they are few compared with the region the intervals span, else builds
    one float64 integral image of that region (about four times cheaper per pixel); both sum in float64, as
    ``cv2.mean`` does.
    """
    import cv2

    counts = x1 - x0
    total = int(counts.sum())
    if total == 0:
        return np.zeros(len(y))
    top, left = int(y.min()), int(x0.min())
    region = values[top : int(y.max()) + 1, left : int(x1.max())]
    if total * _GATHER_COST < region.size:
        first = np.cumsum(counts) - counts
        index = np.intp if values.size >= 2**31 else np.int32
        flat = np.repeat((y * values.shape[1] + x0 - first).astype(index), counts)
        flat += np.arange(total, dtype=index)
        picked = np.take(np.ascontiguousarray(values).reshape(-1), flat).astype(np.float64)
        return np.add.reduceat(picked, first)
    table = cv2.integral(region.astype(np.float32, copy=False), sdepth=cv2.CV_64F)
    y, x0, x1 = y - top, x0 - left, x1 - left
    return table[y + 1, x1] - table[y, x1] - table[y + 1, x0] + table[y, x0]


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C integer division (rounds towards zero) of int64 arrays; ``b`` must be non-zero."""
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def _clip_lines(
    p0: np.ndarray, p1: np.ndarray, cols: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``cv2.clipLine`` for many segments: int64 (E, 2) end points clipped to ``[0, cols) × [0, rows)``.

    Follows OpenCV's steps exactly, including the partly moved end points it leaves behind for a segment that
    misses the rectangle (the fill still uses them). Returns ``(t0, t1, inside)``, ``inside`` bool (E,): whether
    any part of the segment is in the rectangle.
    """
    x1, y1 = p0[:, 0].copy(), p0[:, 1].copy()
    x2, y2 = p1[:, 0].copy(), p1[:, 1].copy()
    right, bottom = cols - 1, rows - 1

    def code(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x < 0) * 1 + (x > right) * 2 + (y < 0) * 4 + (y > bottom) * 8

    def shift(num: np.ndarray, den: np.ndarray, on: np.ndarray) -> np.ndarray:
        # OpenCV: (int64)((double)num / den), only where ``on`` (den is non-zero there)
        return np.where(on, np.trunc(num / np.where(on, den, 1)), 0).astype(np.int64)

    c1, c2 = code(x1, y1), code(x2, y2)
    todo = ((c1 & c2) == 0) & ((c1 | c2) != 0)
    on = todo & ((c1 & 12) != 0)
    a = np.where(c1 < 8, 0, bottom)
    x1 = x1 + shift((a - y1) * (x2 - x1), y2 - y1, on)
    y1 = np.where(on, a, y1)
    c1 = np.where(on, (x1 < 0) * 1 + (x1 > right) * 2, c1)
    on = todo & ((c2 & 12) != 0)
    a = np.where(c2 < 8, 0, bottom)
    x2 = x2 + shift((a - y2) * (x2 - x1), y2 - y1, on)
    y2 = np.where(on, a, y2)
    c2 = np.where(on, (x2 < 0) * 1 + (x2 > right) * 2, c2)
    todo &= ((c1 & c2) == 0) & ((c1 | c2) != 0)
    on = todo & (c1 != 0)
    a = np.where(c1 == 1, 0, right)
    y1 = y1 + shift((a - x1) * (y2 - y1), x2 - x1, on)
    x1 = np.where(on, a, x1)
    c1 = np.where(on, 0, c1)
    on = todo & (c2 != 0)
    a = np.where(c2 == 1, 0, right)
    y2 = y2 + shift((a - x2) * (y2 - y1), x2 - x1, on)
    x2 = np.where(on, a, x2)
    c2 = np.where(on, 0, c2)
    return np.stack([x1, y1], axis=1), np.stack([x2, y2], axis=1), (c1 | c2) == 0


def _outline_runs(
    t0: np.ndarray, t1: np.ndarray, owner: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of 8-connected Bresenham lines (already clipped), as one column interval per line row.

    Returns ``(owner, row, start, stop)`` int64 arrays, ``stop`` inclusive.
    """
    swap = t1[:, 0] < t0[:, 0]  # cv2.line walks from the left end point
    s = np.where(swap[:, None], t1, t0)
    e = np.where(swap[:, None], t0, t1)
    dx = e[:, 0] - s[:, 0]
    dy = e[:, 1] - s[:, 1]
    step = np.where(dy < 0, -1, 1)
    ady = np.abs(dy)
    line, j = ragged(np.zeros(len(s), np.int64), ady + 1)  # j: rows from the start point
    dx, ady, vert = dx[line], ady[line], ady[line] > dx[line]
    # x-major: row j holds the pixels k with ceil(k·ady/dx - 1/2) == j, k in [first(j), first(j + 1))
    safe = np.maximum(ady, 1)
    first = np.where(j == 0, 0, (2 * j - 1) * dx // (2 * safe) + 1)
    last = np.where(j == ady, dx, (2 * j + 1) * dx // (2 * safe))
    # y-major: one pixel per row, ceil(j·dx/ady - 1/2) columns right of the start
    col = -((ady - 2 * j * dx) // (2 * safe))
    start = s[line, 0] + np.where(vert, col, first)
    stop = s[line, 0] + np.where(vert, col, last)
    return owner[line], s[line, 1] + step[line] * j, start, stop


def _fill_runs(
    p0: np.ndarray, p1: np.ndarray, t0: np.ndarray, t1: np.ndarray, box: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scan-line fill of ``cv2.fillPoly`` (``CollectPolyEdges`` + ``FillEdgeCollection``) as column intervals.

    ``p0, p1``: int64 (E, 2) edge end points; ``t0, t1``: the same clipped by :func:`_clip_lines`; ``box``: int64 (E,)
    polygon of each edge; ``size``: int64 (N, 2) window ``(columns, rows)`` per polygon. Returns ``(owner, row,
    start, stop)``.
    """
    n = len(size)
    cols, rows = size[:, 0], size[:, 1]
    sloped = p0[:, 1] != p1[:, 1]
    down = p0[:, 1] < p1[:, 1]
    top = np.where(down, p0[:, 1], p1[:, 1])
    bottom = np.where(down, p1[:, 1], p0[:, 1])
    # 16.16 fixed point from the clipped end points where the edge left the window (the same points otherwise)
    cy0 = np.where(t0[:, 1] != t1[:, 1], t0[:, 1], p0[:, 1])
    cy1 = np.where(t0[:, 1] != t1[:, 1], t1[:, 1], p1[:, 1])
    cx0, cx1 = t0[:, 0] << _SHIFT, t1[:, 0] << _SHIFT
    slope = np.where(sloped, _trunc_div(cx1 - cx0, np.where(cy1 != cy0, cy1 - cy0, 1)), 0)
    x_top = np.where(down, cx0 + (p0[:, 1] - cy0) * slope, cx1 + (p1[:, 1] - cy1) * slope)
    x_bottom = x_top + (bottom - top) * slope
    # FillEdgeCollection draws nothing for fewer than two (non-horizontal) edges or a polygon outside the window
    big = np.iinfo(np.int64).max
    bounds = np.tile(np.array([big, -big, big, -big]), (n, 1))
    np.minimum.at(bounds[:, 0], box[sloped], top[sloped])
    np.maximum.at(bounds[:, 1], box[sloped], bottom[sloped])
    np.minimum.at(bounds[:, 2], box[sloped], np.minimum(x_top, x_bottom)[sloped])
    np.maximum.at(bounds[:, 3], box[sloped], np.maximum(x_top, x_bottom)[sloped])
    drawn = np.bincount(box, sloped, minlength=n) >= 2
    drawn &= (bounds[:, 1] >= 0) & (bounds[:, 0] < rows) & (bounds[:, 3] >= 0) & (bounds[:, 2] < cols << _SHIFT)
    active = sloped & drawn[box]
    # one entry per (edge, drawn row): rows top <= y < bottom, clipped to the window
    first = np.maximum(top, 0)
    edge, y = ragged(first, np.where(active, np.minimum(bottom, rows[box]) - first, 0))
    x = x_top[edge] + (y - top[edge]) * slope[edge]
    span = int(rows.max())
    key = box[edge] * span + y
    order = np.lexsort((x, key))  # active edges of a row sorted by abscissa, rows of a box together
    key, x = key[order[0::2]], x[order]
    # every row crosses an even number of half-open edges: pair them in order
    owner, y = np.divmod(key, span)
    start = (x[0::2] + (1 << _SHIFT) - 1) >> _SHIFT
    stop = x[1::2] >> _SHIFT
    width = cols[owner]
    keep = (start < width) & (stop >= 0)
    start = np.maximum(start, 0)
    stop = np.minimum(stop, width - 1)
    keep &= start <= stop
    return owner[keep], y[keep], start[keep], stop[keep]


def _merge_runs(
    owner: np.ndarray, row: np.ndarray, start: np.ndarray, stop: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Union of column intervals per ``(owner, row)``: disjoint intervals covering the same pixels."""
    if len(owner) == 0:
        return owner, row, start, stop
    span = int(stop.max()) + 2  # intervals lie in [0, span): one sort key for (owner, row, start)
    key = (owner * (int(row.max()) + 1) + row) * span
    order = np.argsort(key + start, kind="stable")
    key, start, stop = key[order], start[order], stop[order]
    # running maximum of the interval ends within each row (the row key offsets keep rows apart)
    reach = np.maximum.accumulate(key + stop) - key
    opens = np.ones(len(key), bool)
    opens[1:] = (key[1:] != key[:-1]) | (start[1:] > reach[:-1])
    first = np.flatnonzero(opens)
    last = np.append(first[1:], len(key)) - 1
    return owner[order[first]], row[order[first]], start[first], reach[last]
