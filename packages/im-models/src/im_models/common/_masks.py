"""Instance masks from prototype masks + per-detection coefficients, computed only inside each box.

For each detection the mask logits are computed on the small window of the prototypes that covers its box, then
warped (one bilinear ``cv2.warpAffine``) straight to the box's pixels in the *original* image, and thresholded at
logit 0 (sigmoid 0.5). Nothing outside the box is ever computed, and no full-image float array is allocated.

With ``mask_format="rle"`` each box-local mask is run-length encoded directly into the full image's column-major
runs (:class:`im_core.RLEMask`), so a 12 MP image with hundreds of instances stays within the memory of the
largest single box.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from im_core import RLEMask
from im_core.errors import InvalidParameterError
from im_models.common._preprocess import ImageTransform

__all__ = ["MaskFormat", "box_pixel_bounds", "full_masks", "instance_masks", "maps_to_original", "rle_from_box_mask"]

MaskFormat = Literal["dense", "rle"]


def box_pixel_bounds(xyxy: np.ndarray, height: int, width: int) -> np.ndarray:
    """int64 (N, 4) ``x0, y0, x1, y1`` pixel index bounds (end exclusive) of float boxes, clipped to the image."""
    b = np.empty((len(xyxy), 4), np.int64)
    b[:, 0] = np.clip(np.floor(xyxy[:, 0]), 0, width)
    b[:, 1] = np.clip(np.floor(xyxy[:, 1]), 0, height)
    b[:, 2] = np.clip(np.ceil(xyxy[:, 2]), 0, width)
    b[:, 3] = np.clip(np.ceil(xyxy[:, 3]), 0, height)
    b[:, 2] = np.maximum(b[:, 2], b[:, 0])
    b[:, 3] = np.maximum(b[:, 3], b[:, 1])
    return b


def rle_from_box_mask(local: np.ndarray, x0: int, y0: int, height: int, width: int) -> RLEMask:
    """Encode a mask that is zero outside a box, given only the box's pixels.

    Args:
        local: bool (bh, bw) mask of the box ``[y0, y0+bh) × [x0, x0+bw)``, inside the image.
        x0 / y0: top-left pixel of the box.
        height / width: size of the full image.

    Returns:
        The same :class:`RLEMask` as ``RLEMask.encode`` of the full (height, width) mask, using O(box) memory.
    """
    bh, bw = local.shape
    padded = np.zeros((bw, bh + 2), np.int8)  # column-major: one row per image column
    padded[:, 1:-1] = local.T
    d = np.diff(padded, axis=1)  # (bw, bh + 1): +1 where a run of True starts, -1 where it ends (exclusive)
    cs, rs = np.nonzero(d == 1)
    ce, re = np.nonzero(d == -1)
    starts = (x0 + cs).astype(np.int64) * height + (y0 + rs)
    ends = (x0 + ce).astype(np.int64) * height + (y0 + re)
    if len(starts) > 1:  # a run reaching the bottom of a column continues at the top of the next one
        touch = ends[:-1] == starts[1:]
        if touch.any():
            starts = starts[np.concatenate(([True], ~touch))]
            ends = ends[np.concatenate((~touch, [True]))]
    edges = np.empty(2 * len(starts) + 2, np.int64)
    edges[0] = 0
    edges[1:-1:2] = starts
    edges[2:-1:2] = ends
    edges[-1] = height * width
    counts = np.diff(edges)
    if len(counts) > 1 and counts[-1] == 0:
        counts = counts[:-1]
    return RLEMask(size=(height, width), counts=counts.astype(np.uint32))


def _box_logits(protos: np.ndarray, coef: np.ndarray, bounds: np.ndarray, t: ImageTransform) -> np.ndarray | None:
    """float32 (bh, bw) mask logits for the pixels of one box (``None`` for an empty box)."""
    import cv2

    x0, y0, x1, y1 = (int(v) for v in bounds)
    bw, bh = x1 - x0, y1 - y0
    if bw <= 0 or bh <= 0:
        return None
    p, mh, mw = protos.shape
    rx, ry = mw / t.input_width, mh / t.input_height
    # source (prototype) pixel index of destination pixel u: s = u * a + b  (pixel centres at +0.5)
    ax, ay = t.scale_x * rx, t.scale_y * ry
    bx = ((x0 + 0.5) * t.scale_x + t.offset_x) * rx - 0.5
    by = ((y0 + 0.5) * t.scale_y + t.offset_y) * ry - 0.5
    sx0, sx1 = bx, bx + (bw - 1) * ax
    sy0, sy1 = by, by + (bh - 1) * ay
    wx0 = min(max(math.floor(sx0) - 1, 0), mw - 1)
    wx1 = min(max(math.ceil(sx1) + 2, wx0 + 1), mw)
    wy0 = min(max(math.floor(sy0) - 1, 0), mh - 1)
    wy1 = min(max(math.ceil(sy1) + 2, wy0 + 1), mh)
    window = protos[:, wy0:wy1, wx0:wx1]
    logits = (coef @ window.reshape(p, -1)).reshape(wy1 - wy0, wx1 - wx0).astype(np.float32, copy=False)
    m = np.array([[ax, 0.0, bx - wx0], [0.0, ay, by - wy0]], np.float64)
    return cv2.warpAffine(
        logits, m, (bw, bh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def instance_masks(
    protos: np.ndarray,
    coefficients: np.ndarray,
    xyxy: np.ndarray,
    transform: ImageTransform,
    *,
    mask_format: MaskFormat = "dense",
) -> np.ndarray | list[RLEMask]:
    """Masks of N detections at the original image size.

    Args:
        protos: float (P, mh, mw) prototype masks for this image (mh × mw covers the whole network input).
        coefficients: float (N, P) mask coefficients of each detection.
        xyxy: float (N, 4) boxes in original-image pixels (already rescaled and clipped).
        transform: the image's :class:`ImageTransform`.
        mask_format: ``"dense"`` → bool (N, H, W); ``"rle"`` → a list of N :class:`RLEMask`.

    Returns:
        The masks; pixel (y, x) is on when the bilinearly sampled logit at its centre is > 0 and it lies in the box.
    """
    if mask_format not in ("dense", "rle"):
        raise InvalidParameterError(f"mask_format must be 'dense' or 'rle', got {mask_format!r}.")
    h, w = transform.original_height, transform.original_width
    protos = np.asarray(protos, np.float32)
    coefficients = np.asarray(coefficients, np.float32)
    bounds = box_pixel_bounds(np.asarray(xyxy, np.float32), h, w)
    n = len(bounds)
    dense = np.zeros((n, h, w), bool) if mask_format == "dense" else None
    rles: list[RLEMask] = []
    for i in range(n):  # one iteration per *reported* detection (≤ max_detections), each vectorised
        logits = _box_logits(protos, coefficients[i], bounds[i], transform)
        x0, y0 = int(bounds[i, 0]), int(bounds[i, 1])
        local = np.zeros((0, 0), bool) if logits is None else logits > 0
        if dense is not None:
            if local.size:
                dense[i, y0 : y0 + local.shape[0], x0 : x0 + local.shape[1]] = local
        else:
            rles.append(rle_from_box_mask(local, x0, y0, h, w))
    return dense if dense is not None else rles


def maps_to_original(maps: np.ndarray, t: ImageTransform) -> np.ndarray:
    """float32 (k ≤ 4, mh, mw) maps covering the whole network input → float32 (k, H, W) at the original image's
    pixels: one bilinear ``cv2.warpAffine`` (pixel centres aligned, edges replicated) through the image's
    transform, so letterbox padding, stretch and static crop are undone at once."""
    import cv2

    k, mh, mw = maps.shape
    rx, ry = mw / t.input_width, mh / t.input_height
    # source index of destination pixel u: ((u + 0.5) * scale + offset) * r - 0.5  (pixel centres at +0.5)
    m = np.array(
        [
            [t.scale_x * rx, 0.0, (0.5 * t.scale_x + t.offset_x) * rx - 0.5],
            [0.0, t.scale_y * ry, (0.5 * t.scale_y + t.offset_y) * ry - 0.5],
        ],
        np.float64,
    )
    src = np.ascontiguousarray(maps.transpose(1, 2, 0), np.float32)
    out = cv2.warpAffine(
        src,
        m,
        (t.original_width, t.original_height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return out.reshape(t.original_height, t.original_width, k).transpose(2, 0, 1)


def full_masks(
    mask_logits: np.ndarray, transform: ImageTransform, *, mask_format: MaskFormat = "dense"
) -> np.ndarray | list[RLEMask]:
    """Masks of N detections from per-detection mask logits covering the whole network input (RF-DETR's mask
    head: (N, H/4, W/4)), bilinearly resized to the original image and thresholded at logit 0, not cropped to the
    boxes (as the reference's RF-DETR post-processing does). Pixels outside the visible region are off.

    Returns:
        ``"dense"``: bool (N, H, W); ``"rle"``: a list of N :class:`RLEMask`.
    """
    if mask_format not in ("dense", "rle"):
        raise InvalidParameterError(f"mask_format must be 'dense' or 'rle', got {mask_format!r}.")
    h, w = transform.original_height, transform.original_width
    logits = np.asarray(mask_logits, np.float32)
    x0, y0, x1, y1 = transform.region
    dense = np.zeros((len(logits), h, w), bool)
    for start in range(0, len(logits), 4):  # ≤ 4 maps per warp (OpenCV's channel limit)
        on = maps_to_original(logits[start : start + 4], transform) > 0
        dense[start : start + len(on), y0:y1, x0:x1] = on[:, y0:y1, x0:x1]
    return dense if mask_format == "dense" else [RLEMask.encode(m) for m in dense]
