"""Oriented (rotated) boxes: corners, probabilistic IoU and the NMS Ultralytics runs on them (numpy only).

A rotated box is ``xywhr``: centre ``x, y``, side lengths ``w, h`` and the angle ``r`` in radians (the ``w`` side
turned by ``r`` from the x axis, y pointing down, as Ultralytics' OBB heads give it).

Ultralytics suppresses oriented boxes with *probabilistic IoU* (each box as a 2-D Gaussian with covariance
``R diag(w²/12, h²/12) Rᵀ``; similarity ``1 - Hellinger distance`` from the Bhattacharyya distance,
arXiv:2106.06072) and *Fast-NMS* (arXiv:1904.02689): a box is dropped when any higher-scored box of its class —
kept or not — overlaps it by more than the threshold. :func:`rotated_nms` computes exactly that, in column blocks of
the (N, N) similarity matrix so that memory stays bounded, stopping once ``max_detections`` boxes are kept.
"""

from __future__ import annotations

import numpy as np

from im_core.errors import InvalidParameterError
from im_models.common._nms import _score_order

__all__ = ["probiou", "rotated_nms", "xywhr_to_corners"]

_EPS = 1e-7  # Ultralytics' eps in batch_probiou
_BLOCK_ELEMENTS = 1 << 20  # similarity-matrix entries computed per block (≈ 8 MB per float64 temporary)


def xywhr_to_corners(xywhr: np.ndarray) -> np.ndarray:
    """(N, 5) ``x, y, w, h, r`` → float32 (N, 4, 2) corners, in Ultralytics' order (``xywhr2xyxyxyxy``): centre
    ± half the turned ``w`` side ± half the turned ``h`` side, going round the box."""
    b = np.asarray(xywhr, np.float32).reshape(-1, 5)
    ctr = b[:, None, :2]
    cos, sin = np.cos(b[:, 4:5]), np.sin(b[:, 4:5])
    v1 = np.concatenate([b[:, 2:3] / 2 * cos, b[:, 2:3] / 2 * sin], axis=1)[:, None]
    v2 = np.concatenate([-b[:, 3:4] / 2 * sin, b[:, 3:4] / 2 * cos], axis=1)[:, None]
    signs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], np.float32)  # (v1, v2) signs of the four corners
    return (ctr + signs[None, :, 0:1] * v1 + signs[None, :, 1:2] * v2).astype(np.float32)


def _covariance(b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a, b, c`` of the covariance ``[[a, c], [c, b]]`` of each box's Gaussian (Ultralytics' formula)."""
    w2, h2 = b[:, 2] ** 2 / 12, b[:, 3] ** 2 / 12
    cos, sin = np.cos(b[:, 4]), np.sin(b[:, 4])
    return w2 * cos**2 + h2 * sin**2, w2 * sin**2 + h2 * cos**2, (w2 - h2) * cos * sin


def probiou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise probabilistic IoU of rotated boxes, as Ultralytics' ``batch_probiou`` computes it (float64 here).

    Args:
        a: (N, 5) ``x, y, w, h, r``.
        b: (M, 5) ``x, y, w, h, r``.

    Returns:
        float64 (N, M) similarities (≈ 1 for identical boxes, ≈ 0 for distant ones, 0 where a box has a zero side).
    """
    a = np.asarray(a, np.float64).reshape(-1, 5)
    b = np.asarray(b, np.float64).reshape(-1, 5)
    a1, b1, c1 = (v[:, None] for v in _covariance(a))
    a2, b2, c2 = (v[None, :] for v in _covariance(b))
    dx = a[:, None, 0] - b[None, :, 0]
    dy = a[:, None, 1] - b[None, :, 1]
    sa, sb, sc = a1 + a2, b1 + b2, c1 + c2
    det = sa * sb - sc**2
    t1 = (sa * dy**2 + sb * dx**2) / (det + _EPS) * 0.25
    t2 = (sc * (-dx) * dy) / (det + _EPS) * 0.5
    dets = np.sqrt(np.maximum(a1 * b1 - c1**2, 0) * np.maximum(a2 * b2 - c2**2, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t3 = np.log(det / (4 * dets + _EPS) + _EPS) * 0.5
    bd = np.clip(np.nan_to_num(t1 + t2 + t3, nan=100.0), _EPS, 100.0)
    return 1.0 - np.sqrt(1.0 - np.exp(-bd) + _EPS)


def rotated_nms(
    xywhr: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    *,
    class_ids: np.ndarray | None = None,
    max_detections: int | None = None,
) -> np.ndarray:
    """Fast-NMS of rotated boxes with probabilistic IoU, as Ultralytics' OBB predictor runs it.

    A box survives when no higher-scored box (kept or suppressed; same class unless ``class_ids`` is ``None``)
    has a probabilistic IoU with it strictly above ``iou_threshold``. Score ties are broken by the lower index.

    Args:
        xywhr: (N, 5) rotated boxes (any unit).
        scores: (N,) scores; higher is better.
        iou_threshold: suppression threshold (≥ 0).
        class_ids: (N,) ints for class-aware NMS, or ``None`` (class-agnostic).
        max_detections: stop once this many boxes are kept (the result is the full result's prefix).

    Returns:
        int64 indices into the inputs of the kept boxes, best score first.

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
    boxes = np.asarray(xywhr, np.float64).reshape(-1, 5)[order]
    cls = None if class_ids is None else np.asarray(class_ids)[order]
    step = max(1, _BLOCK_ELEMENTS // n)
    kept: list[np.ndarray] = []
    count = 0
    for start in range(0, n, step):  # column blocks: each box against every box before it
        end = min(n, start + step)
        sim = probiou(boxes[:end], boxes[start:end])  # (end, m)
        above = sim > thr
        above &= np.arange(end)[:, None] < np.arange(start, end)[None, :]  # only higher-ranked boxes suppress
        if cls is not None:
            above &= cls[:end, None] == cls[None, start:end]
        survivors = start + np.flatnonzero(~above.any(axis=0))
        kept.append(survivors)
        count += len(survivors)
        if count >= limit:
            break
    return order[np.concatenate(kept)[:limit]].astype(np.int64)
