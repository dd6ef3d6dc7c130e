"""Depth maps: one value per pixel of the original image."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from im_core._results import _require, _to_json
from im_core.errors import InvalidParameterError

__all__ = ["DepthMap"]

_KINDS = ("relative", "metric")


@dataclass(eq=False)
class DepthMap:
    """Per-pixel depth of one image, at the image's original size.

    Attributes:
        depth: float32 (H, W). ``kind="relative"``: relative inverse depth as the model predicts it (larger is
            nearer; no unit, the scale differs between images). ``kind="metric"``: distance in metres.
        kind: ``"relative"`` or ``"metric"``.
    """

    depth: np.ndarray
    kind: str = "relative"

    def __post_init__(self) -> None:
        depth = np.asarray(self.depth, dtype=np.float32)
        if depth.ndim != 2:
            raise InvalidParameterError(f"depth must be (H, W), got shape {depth.shape}.")
        if self.kind not in _KINDS:
            raise InvalidParameterError(f"kind must be one of {_KINDS}, got {self.kind!r}.")
        self.depth = depth

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        return (int(self.depth.shape[0]), int(self.depth.shape[1]))

    def normalized(self) -> np.ndarray:
        """uint8 (H, W) for display: the depth range mapped onto 0-255 (nearest = 255 for relative depth)."""
        d = self.depth
        finite = np.isfinite(d)
        if not finite.any():
            return np.zeros(d.shape, np.uint8)
        lo, hi = float(d[finite].min()), float(d[finite].max())
        scaled = (np.where(finite, d, lo) - lo) / max(hi - lo, 1e-12)
        if self.kind == "metric":  # near = bright for both kinds
            scaled = 1.0 - scaled
        return np.round(scaled * 255).astype(np.uint8)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: the float32 map as little-endian base64 (``docs/results.md``)."""
        return {
            "type": "depth",
            "kind": self.kind,
            "height": self.shape[0],
            "width": self.shape[1],
            "dtype": "float32",
            "data": base64.b64encode(self.depth.astype("<f4").tobytes()).decode("ascii"),
        }

    def to_json(self, indent: int | None = None) -> str:
        return _to_json(self.to_dict(), indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DepthMap:
        d = _require(d, "depth", ("height", "width", "data"))
        try:
            h, w = int(d["height"]), int(d["width"])
            raw = base64.b64decode(str(d["data"]), validate=True)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"A 'depth' dict needs integer height/width and base64 data: {exc}") from None
        if h < 0 or w < 0 or len(raw) != h * w * 4:
            raise InvalidParameterError(f"A 'depth' dict's data holds {len(raw)} bytes, not height*width*4.")
        return cls(np.frombuffer(raw, "<f4").reshape(h, w).astype(np.float32), kind=str(d.get("kind", "relative")))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DepthMap):
            return NotImplemented
        return self.kind == other.kind and np.array_equal(self.depth, other.depth, equal_nan=True)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        h, w = self.shape
        if self.depth.size == 0:
            return f"DepthMap({h}x{w}, {self.kind})"
        low, high = float(np.nanmin(self.depth)), float(np.nanmax(self.depth))
        return f"DepthMap({h}x{w}, {self.kind}, min={low:.4g}, max={high:.4g})"
