"""SSD anchors as MediaPipe's ``SsdAnchorsCalculator`` builds them, and BlazeFace's per-variant options.

Layers that share a stride share one feature map: their anchors are emitted together, cell by cell (row-major),
with every anchor of a cell adjacent. Each layer contributes one anchor per aspect ratio plus one "interpolated"
anchor (scale ``sqrt(s_i * s_{i+1})``) when ``interpolated_scale_aspect_ratio > 0``.

For BlazeFace the anchors have a fixed size (``fixed_anchor_size``): width = height = 1 in normalised units, so the
regressors are scaled by the input size only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SsdAnchorOptions", "blazeface_anchor_options", "ssd_anchors"]


@dataclass(frozen=True)
class SsdAnchorOptions:
    """The subset of MediaPipe's ``SsdAnchorsCalculatorOptions`` BlazeFace uses.

    Attributes:
        input_size: ``(height, width)`` of the network input, pixels.
        strides: stride of each layer, pixels (consecutive equal strides share a feature map).
        min_scale / max_scale: anchor scales of the first and last layer (linear in between).
        aspect_ratios: aspect ratios (width / height) of the per-layer anchors.
        interpolated_scale_aspect_ratio: aspect ratio of the extra interpolated-scale anchor; ``<= 0`` for none.
        anchor_offset: cell-centre offset, in cells (0.5 = the centre).
        fixed_anchor_size: anchors are 1×1 (normalised) instead of sized by scale and ratio.
    """

    input_size: tuple[int, int]
    strides: tuple[int, ...]
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    anchor_offset: float = 0.5
    fixed_anchor_size: bool = True


#: BlazeFace variants by square input size: front camera (128) and back camera (256), as in MediaPipe's graphs.
_BLAZEFACE = {
    128: dict(strides=(8, 16, 16, 16), min_scale=0.1484375, max_scale=0.75),
    256: dict(strides=(16, 32, 32, 32), min_scale=0.15625, max_scale=0.75),
}


def blazeface_anchor_options(input_size: tuple[int, int]) -> SsdAnchorOptions | None:
    """The MediaPipe anchor options for a BlazeFace input size, or ``None`` for a size with no known variant."""
    height, width = input_size
    if height != width or height not in _BLAZEFACE:
        return None
    return SsdAnchorOptions(input_size=(height, width), **_BLAZEFACE[height])  # type: ignore[arg-type]


def _scale(options: SsdAnchorOptions, layer: int) -> float:
    n = len(options.strides)
    if n == 1:
        return (options.min_scale + options.max_scale) / 2
    return options.min_scale + (options.max_scale - options.min_scale) * layer / (n - 1)


def ssd_anchors(options: SsdAnchorOptions) -> tuple[np.ndarray, tuple[int, ...]]:
    """Generate the anchors.

    Returns:
        anchors: float32 (A, 4) rows ``(x_center, y_center, width, height)``, normalised to [0, 1] of the input.
        group_sizes: number of anchors of each feature map (one entry per distinct consecutive stride), in order.
    """
    height, width = options.input_size
    strides = options.strides
    parts: list[np.ndarray] = []
    sizes: list[int] = []
    layer = 0
    while layer < len(strides):
        widths: list[float] = []
        heights: list[float] = []
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            scale = _scale(options, last)
            for ratio in options.aspect_ratios:
                widths.append(scale * math.sqrt(ratio))
                heights.append(scale / math.sqrt(ratio))
            if options.interpolated_scale_aspect_ratio > 0:
                following = 1.0 if last == len(strides) - 1 else _scale(options, last + 1)
                interp = math.sqrt(scale * following)
                ratio = options.interpolated_scale_aspect_ratio
                widths.append(interp * math.sqrt(ratio))
                heights.append(interp / math.sqrt(ratio))
            last += 1
        rows = math.ceil(height / strides[layer])
        cols = math.ceil(width / strides[layer])
        per_cell = len(widths)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")  # (rows, cols)
        cx = np.repeat(((xs.ravel() + options.anchor_offset) / cols)[:, None], per_cell, axis=1)
        cy = np.repeat(((ys.ravel() + options.anchor_offset) / rows)[:, None], per_cell, axis=1)
        if options.fixed_anchor_size:
            aw = np.ones_like(cx)
            ah = np.ones_like(cy)
        else:
            aw = np.broadcast_to(np.asarray(widths)[None, :], cx.shape)
            ah = np.broadcast_to(np.asarray(heights)[None, :], cy.shape)
        group = np.stack([cx, cy, aw, ah], axis=-1).reshape(-1, 4)
        parts.append(group)
        sizes.append(len(group))
        layer = last
    return np.concatenate(parts).astype(np.float32), tuple(sizes)
