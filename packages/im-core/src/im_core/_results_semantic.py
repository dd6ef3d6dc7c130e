"""Semantic segmentation result: one class per pixel of the original image.

Kept apart from :mod:`im_core._results` (the instance results); it follows the same contract: numpy on the CPU,
shapes validated on construction, ``to_dict`` → plain JSON values, ``from_dict`` → an equal object, ``==`` exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from im_core._results import (
    Detections,
    RLEMask,
    _array_json,
    _arrays_equal,
    _floats_from,
    _require,
    _supervision,
    _to_json,
)
from im_core.errors import InvalidParameterError

__all__ = ["SemanticSegmentation"]


@dataclass(eq=False)
class SemanticSegmentation:
    """The class of every pixel of one image.

    Attributes:
        class_map: int64 (H, W) class id of each pixel, at the original image size (index into ``class_names``).
        confidence: optional float32 (H, W) score of each pixel's class in [0, 1] (0 where a pixel fell below the
            confidence threshold and was given the background class).
        class_names: names of every class the model knows (index = class id).
        background_class_id: the class that pixels below the threshold get (``None`` if the model has none).

    ``seg.mask("road")`` (or a class id) is the bool (H, W) mask of one class; ``seg.masks()`` gives the present
    classes' ids and their masks; ``seg.present_class_ids`` lists the classes that cover at least one pixel.
    """

    class_map: np.ndarray
    confidence: np.ndarray | None = None
    class_names: Sequence[str] = ()
    background_class_id: int | None = None

    def __post_init__(self) -> None:
        cm = np.asarray(self.class_map)
        if cm.ndim != 2:
            raise InvalidParameterError(f"class_map must have shape (H, W), got {cm.shape}.")
        if cm.dtype.kind not in "iub":
            raise InvalidParameterError(f"class_map must hold integer class ids, got dtype {cm.dtype}.")
        self.class_map = cm.astype(np.int64, copy=False)
        if self.confidence is not None:
            conf = np.asarray(self.confidence, np.float32)
            if conf.shape != cm.shape:
                raise InvalidParameterError(f"confidence must have the class map's shape {cm.shape}, got {conf.shape}.")
            self.confidence = conf
        self.class_names = tuple(self.class_names)
        if self.background_class_id is not None:
            self.background_class_id = int(self.background_class_id)
        if self.class_names and cm.size:
            lo, hi = int(cm.min()), int(cm.max())
            if lo < 0 or hi >= len(self.class_names):
                raise InvalidParameterError(
                    f"class_map holds class ids {lo}..{hi}, outside the {len(self.class_names)} class names."
                )

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the image."""
        return (int(self.class_map.shape[0]), int(self.class_map.shape[1]))

    @property
    def present_class_ids(self) -> list[int]:
        """The class ids that cover at least one pixel, ascending."""
        return np.unique(self.class_map).tolist()

    def class_id_of(self, name_or_id: str | int) -> int:
        """The id of a class given by name or id."""
        if isinstance(name_or_id, str):
            if name_or_id not in self.class_names:
                raise InvalidParameterError(f"Unknown class {name_or_id!r}; the classes are {list(self.class_names)}.")
            return self.class_names.index(name_or_id)
        return int(name_or_id)

    def mask(self, name_or_id: str | int) -> np.ndarray:
        """bool (H, W): the pixels of one class (by name or id)."""
        return self.class_map == self.class_id_of(name_or_id)

    def masks(self, *, include_background: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(class_ids (K,), masks bool (K, H, W))`` of the present classes (the background left out unless
        ``include_background``)."""
        ids = np.asarray(self.present_class_ids, np.int64)
        if not include_background and self.background_class_id is not None:
            ids = ids[ids != self.background_class_id]
        return ids, self.class_map[None, :, :] == ids[:, None, None]

    def to_detections(self, *, include_background: bool = False) -> Detections:
        """One :class:`Detections` row per present class: its mask, the box around it, and its mean pixel
        confidence (1.0 when the result has no confidence map)."""
        ids, masks = self.masks(include_background=include_background)
        xyxy = np.zeros((len(ids), 4), np.float32)
        conf = np.ones(len(ids), np.float32)
        for i in range(len(ids)):  # one iteration per class present, each vectorised
            rows, cols = np.any(masks[i], axis=1), np.any(masks[i], axis=0)
            y = np.flatnonzero(rows)
            x = np.flatnonzero(cols)
            xyxy[i] = (x[0], y[0], x[-1] + 1, y[-1] + 1)
            if self.confidence is not None:
                conf[i] = float(self.confidence[masks[i]].mean())
        names = self.class_names or tuple(str(i) for i in range(int(self.class_map.max(initial=-1)) + 1))
        return Detections(xyxy, conf, ids, names, masks=masks)

    def to_supervision(self) -> Any:
        """supervision has no semantic-segmentation type; its equivalent is ``supervision.Detections`` with one
        detection per present (non-background) class: ``mask`` the class's pixels, ``xyxy`` the box around them,
        ``confidence`` their mean score, ``data["class_name"]`` (what :meth:`to_detections` holds)."""
        _supervision()
        return self.to_detections().to_supervision()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: each present class as ``{"class_id", "class_name", "mask": RLE}`` (the class map
        losslessly, run-length encoded), plus the confidence map as nested lists (or ``None``)."""
        ids, masks = self.masks(include_background=True)
        h, w = self.shape
        return {
            "type": "semantic-segmentation",
            "height": h,
            "width": w,
            "class_names": list(self.class_names),
            "background_class_id": self.background_class_id,
            "classes": [
                {
                    "class_id": int(c),
                    "class_name": self.class_names[c] if c < len(self.class_names) else str(int(c)),
                    "mask": RLEMask.encode(m).to_dict(),
                }
                for c, m in zip(ids.tolist(), masks)
            ],
            "confidence": None if self.confidence is None else _array_json(self.confidence),
        }

    def to_json(self, indent: int | None = None) -> str:
        return _to_json(self.to_dict(), indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SemanticSegmentation:
        """Rebuild from :meth:`to_dict` output; the class masks must cover every pixel exactly once."""
        d = _require(d, "semantic-segmentation", ("height", "width", "classes"))
        h, w = int(d["height"]), int(d["width"])
        class_map = np.full((h, w), -1, np.int64)
        for entry in d["classes"]:
            m = RLEMask.from_dict(entry["mask"]).decode()
            if m.shape != (h, w):
                raise InvalidParameterError(f"A class mask of size {m.shape} in a {h}×{w} semantic segmentation.")
            if (class_map[m] >= 0).any():
                raise InvalidParameterError("Two class masks of a semantic segmentation cover the same pixel.")
            class_map[m] = int(entry["class_id"])
        if (class_map < 0).any():
            raise InvalidParameterError("The class masks of a semantic segmentation leave pixels without a class.")
        conf = d.get("confidence")
        return cls(
            class_map=class_map,
            confidence=None if conf is None else _floats_from(conf, "confidence", (h, w)).reshape(h, w),
            class_names=d.get("class_names") or (),
            background_class_id=d.get("background_class_id"),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemanticSegmentation):
            return NotImplemented
        return (
            _arrays_equal(self.class_map, other.class_map)
            and _arrays_equal(self.confidence, other.confidence)
            and tuple(self.class_names) == tuple(other.class_names)
            and self.background_class_id == other.background_class_id
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        h, w = self.shape
        names = [self.class_names[c] if c < len(self.class_names) else str(c) for c in self.present_class_ids]
        return f"SemanticSegmentation({h}×{w}, classes present={names})"
