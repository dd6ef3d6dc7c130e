"""Typed results: numpy on the CPU, one dataclass per idea, shapes validated on construction.

All coordinates are in pixels of the *original* image (x to the right, y down), boxes as ``x1, y1, x2, y2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from im_core.errors import InvalidParameterError

__all__ = ["Classification", "Detections", "Embeddings", "Gaze", "RLEMask", "TextLine", "TextRecognition"]


def _as(array: Any, dtype: Any, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    out = np.asarray(array, dtype=dtype)
    got = out.shape
    ok = len(got) == len(shape)
    if ok:
        for want_d, got_d in zip(shape, got):  # at most 3 dims; a plain loop is cheaper than any(genexpr)
            if want_d is not None and want_d != got_d:
                ok = False
                break
    if not ok:
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise InvalidParameterError(f"{name} must have shape {want}, got {got}.")
    return out


@dataclass(frozen=True)
class RLEMask:
    """One binary mask as column-major run lengths (COCO's uncompressed RLE).

    Attributes:
        size: ``(height, width)`` of the full image the mask covers.
        counts: run lengths (uint32), starting with a run of zeros (possibly of length 0), column-major order.
    """

    size: tuple[int, int]
    counts: np.ndarray

    @classmethod
    def encode(cls, mask: np.ndarray) -> RLEMask:
        """Encode a (H, W) bool array."""
        flat = np.asarray(mask, dtype=bool).ravel(order="F")
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        edges = np.concatenate(([0], change, [flat.size]))
        counts = np.diff(edges)
        if flat.size and flat[0]:
            counts = np.concatenate(([0], counts))
        return cls(size=(int(mask.shape[0]), int(mask.shape[1])), counts=counts.astype(np.uint32))

    def decode(self) -> np.ndarray:
        """The (H, W) bool mask."""
        h, w = self.size
        values = np.zeros(len(self.counts), dtype=bool)
        values[1::2] = True
        flat = np.repeat(values, self.counts.astype(np.int64))
        return flat.reshape((w, h)).T

    @property
    def area(self) -> int:
        return int(self.counts[1::2].sum())


@dataclass
class Detections:
    """Objects found in one image.

    Attributes:
        xyxy: float32 (N, 4) boxes in original-image pixels.
        confidence: float32 (N,) scores in [0, 1].
        class_id: int64 (N,) indices into ``class_names``.
        class_names: names of every class the model knows (index = class id).
        masks: optional (N, H, W) bool masks at the original image size, or a list of N :class:`RLEMask`.
        keypoints: optional float32 (N, K, 2) keypoint coordinates in original-image pixels.
        keypoint_confidence: optional float32 (N, K) keypoint scores.
        data: per-detection extras, each a sequence/array of length N (landmarks, polygons, text, ...).
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    class_names: Sequence[str] = ()
    masks: np.ndarray | list[RLEMask] | None = None
    keypoints: np.ndarray | None = None
    keypoint_confidence: np.ndarray | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _as(self.xyxy, np.float32, "xyxy", (None, 4))
        n = len(self.xyxy)
        self.confidence = _as(self.confidence, np.float32, "confidence", (n,))
        self.class_id = _as(self.class_id, np.int64, "class_id", (n,))
        self.class_names = tuple(self.class_names)
        if self.masks is not None:
            if isinstance(self.masks, list):
                if len(self.masks) != n or not all(isinstance(m, RLEMask) for m in self.masks):
                    raise InvalidParameterError(f"masks as RLE must be a list of {n} RLEMask objects.")
            else:
                self.masks = _as(self.masks, bool, "masks", (n, None, None))
        if self.keypoints is not None:
            self.keypoints = _as(self.keypoints, np.float32, "keypoints", (n, None, 2))
            k = self.keypoints.shape[1]
            conf = np.ones((n, k), np.float32) if self.keypoint_confidence is None else self.keypoint_confidence
            self.keypoint_confidence = _as(conf, np.float32, "keypoint_confidence", (n, k))
        elif self.keypoint_confidence is not None:
            raise InvalidParameterError("keypoint_confidence given without keypoints.")
        for key, value in self.data.items():
            if len(value) != n:
                raise InvalidParameterError(f"data[{key!r}] has {len(value)} entries for {n} detections.")

    @classmethod
    def empty(cls, class_names: Sequence[str] = ()) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), class_names)

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def names(self) -> list[str]:
        """The class name of each detection (``str(class_id)`` where the model has no names)."""
        names = self.class_names
        return [names[i] if 0 <= i < len(names) else str(i) for i in self.class_id.tolist()]

    def __getitem__(self, index: Any) -> Detections:
        """Select detections with an int, a slice, an index array or a bool mask."""
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        masks: Any = None
        if isinstance(self.masks, list):
            masks = [self.masks[i] for i in idx.tolist()]
        elif self.masks is not None:
            masks = self.masks[idx]
        return Detections(
            xyxy=self.xyxy[idx],
            confidence=self.confidence[idx],
            class_id=self.class_id[idx],
            class_names=self.class_names,
            masks=masks,
            keypoints=None if self.keypoints is None else self.keypoints[idx],
            keypoint_confidence=None if self.keypoint_confidence is None else self.keypoint_confidence[idx],
            data={k: _take(v, idx) for k, v in self.data.items()},
        )

    def dense_masks(self) -> np.ndarray | None:
        """Masks as an (N, H, W) bool array, decoding RLE if needed (may be large)."""
        if isinstance(self.masks, list):
            if not self.masks:
                return None
            return np.stack([m.decode() for m in self.masks])
        return self.masks

    def to_supervision(self) -> Any:
        """Convert to ``supervision.Detections`` (imported only here; ``pip install supervision``).

        ``xyxy``, ``confidence``, ``class_id`` and ``mask`` (dense (N, H, W) bool; RLE masks are decoded) map to
        their namesakes. ``data`` gets ``class_name`` (N,), every entry of :attr:`data` (arrays as they are, lists
        as (N,) object arrays), and, when present, ``keypoints`` float32 (N, K, 2) and ``keypoint_confidence``
        float32 (N, K) — supervision keeps key points in a separate ``KeyPoints`` type, so they travel in ``data``
        (an entry of :attr:`data` with the same name wins).
        """
        try:
            import supervision as sv
        except ImportError as exc:
            from im_core.errors import MissingDependencyError

            raise MissingDependencyError(
                "to_supervision() needs the supervision package: pip install supervision"
            ) from exc
        data: dict[str, Any] = {k: _column(v) for k, v in self.data.items()}
        data["class_name"] = _column(self.names)
        if self.keypoints is not None:
            data.setdefault("keypoints", self.keypoints)
            data.setdefault("keypoint_confidence", self.keypoint_confidence)
        return sv.Detections(
            xyxy=self.xyxy, confidence=self.confidence, class_id=self.class_id, mask=self.dense_masks(), data=data
        )

    def __repr__(self) -> str:
        extras = [k for k in ("masks", "keypoints") if getattr(self, k) is not None] + list(self.data)
        return f"Detections(n={len(self)}, classes={sorted(set(self.names))}, extras={extras})"


def _column(value: Any) -> np.ndarray:
    """A per-detection column for supervision: arrays unchanged, other sequences as a 1-D (N,) object array."""
    if isinstance(value, np.ndarray):
        return value
    return np.fromiter(value, dtype=object, count=len(value))


def _take(value: Any, idx: np.ndarray) -> Any:
    if isinstance(value, np.ndarray):
        return value[idx]
    return [value[i] for i in idx.tolist()]


@dataclass
class Classification:
    """Class scores for one image.

    Attributes:
        confidence: float32 (C,) per-class scores (softmax, or sigmoid when ``multi_label``).
        class_names: C names (index = class id).
        multi_label: whether classes are independent (sigmoid) rather than exclusive (softmax).
        threshold: for multi-label results, the score from which a class counts as present.
    """

    confidence: np.ndarray
    class_names: Sequence[str] = ()
    multi_label: bool = False
    threshold: float = 0.5

    def __post_init__(self) -> None:
        self.confidence = _as(self.confidence, np.float32, "confidence", (None,))
        self.class_names = tuple(self.class_names)
        if self.class_names and len(self.class_names) != len(self.confidence):
            raise InvalidParameterError(f"{len(self.class_names)} class names for {len(self.confidence)} scores.")

    @property
    def class_id(self) -> int:
        """The top class (argmax)."""
        return int(np.argmax(self.confidence))

    @property
    def class_name(self) -> str:
        return self._name(self.class_id)

    @property
    def top_confidence(self) -> float:
        return float(self.confidence[self.class_id])

    def top_k(self, k: int = 5) -> list[tuple[str, float]]:
        """The k best classes as ``(name, score)``, best first."""
        order = np.argsort(-self.confidence, kind="stable")[:k]
        return [(self._name(int(i)), float(self.confidence[i])) for i in order]

    @property
    def predicted(self) -> list[str]:
        """Multi-label: every class at or above ``threshold``; single-label: the top class."""
        if not self.multi_label:
            return [self.class_name]
        return [self._name(int(i)) for i in np.flatnonzero(self.confidence >= self.threshold)]

    def _name(self, i: int) -> str:
        return self.class_names[i] if i < len(self.class_names) else str(i)

    def __repr__(self) -> str:
        return f"Classification({self.class_name!r}, {self.top_confidence:.3f}, multi_label={self.multi_label})"


@dataclass
class Embeddings:
    """Feature vectors, one row per input.

    Attributes:
        vectors: float32 (N, D); L2-normalised when ``normalized``.
        normalized: whether each row has unit L2 norm.
    """

    vectors: np.ndarray
    normalized: bool = True

    def __post_init__(self) -> None:
        self.vectors = _as(self.vectors, np.float32, "vectors", (None, None))

    def __len__(self) -> int:
        return len(self.vectors)

    def similarity(self, other: Embeddings | np.ndarray) -> np.ndarray:
        """Cosine similarity, float32 (N, M), between these rows and ``other``'s rows."""
        b = other.vectors if isinstance(other, Embeddings) else np.atleast_2d(np.asarray(other, np.float32))
        a = self.vectors
        an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return (an @ bn.T).astype(np.float32)


@dataclass
class TextLine:
    """One recognised line of text.

    Attributes:
        text: the decoded string.
        confidence: mean per-character confidence in [0, 1].
        polygon: float32 (P, 2) outline in original-image pixels (4 points for a rotated box).
    """

    text: str
    confidence: float
    polygon: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))

    def __post_init__(self) -> None:
        self.polygon = _as(self.polygon, np.float32, "polygon", (None, 2))


@dataclass
class TextRecognition:
    """Text read from one image (OCR): lines in reading order."""

    lines: list[TextLine] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All lines joined with newlines."""
        return "\n".join(line.text for line in self.lines)

    def __len__(self) -> int:
        return len(self.lines)


@dataclass
class Gaze:
    """Gaze direction of each face in one image.

    Attributes:
        yaw: float32 (N,) horizontal angle in radians (positive = to the subject's left).
        pitch: float32 (N,) vertical angle in radians (positive = up).
        faces: optional :class:`Detections` of the faces the angles belong to (same order).
    """

    yaw: np.ndarray
    pitch: np.ndarray
    faces: Detections | None = None

    def __post_init__(self) -> None:
        self.yaw = _as(self.yaw, np.float32, "yaw", (None,))
        self.pitch = _as(self.pitch, np.float32, "pitch", (len(self.yaw),))
        if self.faces is not None and len(self.faces) != len(self.yaw):
            raise InvalidParameterError(f"{len(self.faces)} faces for {len(self.yaw)} gaze angles.")

    def __len__(self) -> int:
        return len(self.yaw)
