"""Typed results: numpy on the CPU, one dataclass per idea, shapes validated on construction.

All coordinates are in pixels of the *original* image (x to the right, y down), boxes as ``x1, y1, x2, y2``.

Every result serialises: ``to_dict()`` gives plain Python values only (lists, str, int, float, bool, None — never a
numpy scalar), valid JSON as it is (a non-finite float is written as the string ``"NaN"``, ``"Infinity"`` or
``"-Infinity"``), ``to_json()`` dumps it, and ``Type.from_dict(d)`` rebuilds an equal object. ``==`` compares
values exactly (NaN equals NaN in the same place). The schema is documented in ``docs/results.md``.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from im_core.errors import InvalidParameterError

__all__ = ["Classification", "Detections", "Embeddings", "Gaze", "RLEMask", "TextLine", "TextRecognition"]

_PREVIEW_ROWS = 5
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


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


# --- JSON helpers ------------------------------------------------------------------------------------------------


def _float(value: float) -> float | str:
    """A Python float, or its JSON-safe spelling when it is not finite."""
    value = float(value)
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _fix_nonfinite(value: Any) -> Any:
    if isinstance(value, list):
        return [_fix_nonfinite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return _float(value)
    return value


def _array_json(array: np.ndarray) -> Any:
    """Nested lists of Python values; non-finite floats spelled as strings."""
    if array.dtype.kind == "f":
        if array.size and not np.isfinite(array).all():
            return _fix_nonfinite(array.tolist())
        return array.tolist()
    if array.dtype.kind == "O":
        return [_json_value(v, "data") for v in array.tolist()]
    return array.tolist()


def _json_value(value: Any, where: str) -> Any:
    """Any value a result may hold, as plain JSON values."""
    if isinstance(value, np.generic):  # before str/float: np.str_ and np.float64 subclass them
        return _json_value(value.item(), where)
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, np.ndarray):
        return _array_json(value)
    if isinstance(value, RLEMask):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, where) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v, where) for v in value]
    raise InvalidParameterError(
        f"{where} holds a {type(value).__name__}, which has no JSON form: use arrays, lists, str, int, float, bool "
        "or None."
    )


def _floats_from(values: Any, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """float32 array from JSON lists (accepting the "NaN"/"Infinity" spellings), reshaped when empty."""
    try:
        out = np.asarray(values if values is not None else [], dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{name} must be a list of numbers: {exc}") from None
    if out.size == 0 and len(shape) > 1:
        out = out.reshape((0, *(s if s is not None else 0 for s in shape[1:])))
    return out


def _scalar_from(value: Any, name: str) -> float:
    if isinstance(value, str) and value in _NONFINITE:
        return _NONFINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameterError(f"{name} must be a number, got {value!r}.")
    return float(value)


def _require(d: Any, kind: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise InvalidParameterError(f"from_dict expects a dict (from to_dict() or json.loads), got {type(d).__name__}.")
    if d.get("type", kind) != kind:
        raise InvalidParameterError(f"from_dict got a {d.get('type')!r} result where {kind!r} was expected.")
    missing = [k for k in keys if k not in d]
    if missing:
        raise InvalidParameterError(f"A {kind!r} dict needs the keys {missing}; it has {sorted(d)}.")
    return d


def _to_json(d: dict[str, Any], indent: int | None) -> str:
    return json.dumps(d, indent=indent, allow_nan=False, ensure_ascii=False)


# --- equality helpers --------------------------------------------------------------------------------------------


def _arrays_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    if a.dtype.kind == "O" or b.dtype.kind == "O":
        return all(_values_equal(x, y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))
    return bool(np.array_equal(a, b))


def _values_equal(a: Any, b: Any) -> bool:
    """Exact equality of result values: arrays by shape and values (NaN == NaN), sequences element-wise."""
    sequences = (list, tuple, np.ndarray)
    if isinstance(a, sequences) and isinstance(b, sequences):
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            try:
                return _arrays_equal(a, b)
            except ValueError:  # a ragged nested list: compare element-wise
                pass
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (float, np.floating)) and isinstance(b, (float, np.floating)):
        return bool(a == b or (math.isnan(a) and math.isnan(b)))
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # an object whose == gives no single truth value
        return False


def _masks_equal(a: np.ndarray | list[RLEMask] | None, b: np.ndarray | list[RLEMask] | None) -> bool:
    """Same pixels, whichever form (dense or RLE) each side holds."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    ra = a if isinstance(a, list) else [RLEMask.encode(m) for m in a]
    rb = b if isinstance(b, list) else [RLEMask.encode(m) for m in b]
    return len(ra) == len(rb) and all(x == y for x, y in zip(ra, rb))


@dataclass(frozen=True, eq=False)
class RLEMask:
    """One binary mask as column-major run lengths (COCO's uncompressed RLE).

    Attributes:
        size: ``(height, width)`` of the full image the mask covers.
        counts: run lengths (uint32), starting with a run of zeros (possibly of length 0), column-major order.

    Two masks are ``==`` when they have the same size and the same pixels.
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

    def to_dict(self) -> dict[str, Any]:
        """``{"size": [height, width], "counts": [run, ...]}``: COCO's uncompressed RLE (column-major runs, zeros
        first), which ``pycocotools.mask.frPyObjects`` accepts."""
        return {"size": [int(self.size[0]), int(self.size[1])], "counts": np.asarray(self.counts).tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RLEMask:
        """The inverse of :meth:`to_dict`; checks that the runs cover exactly ``height × width`` pixels."""
        if not isinstance(d, Mapping) or "size" not in d or "counts" not in d:
            raise InvalidParameterError(f'An RLE mask must be {{"size": [h, w], "counts": [...]}}, got {d!r:.80}.')
        counts = d["counts"]
        if isinstance(counts, (str, bytes)):
            raise InvalidParameterError(
                "Compressed (string) COCO RLE counts are not read here; give the uncompressed list of run lengths."
            )
        try:
            h, w = (int(v) for v in d["size"])
            runs = np.asarray(counts, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"Malformed RLE mask: {exc}") from None
        if h < 0 or w < 0 or (runs < 0).any() or int(runs.sum()) != h * w:
            raise InvalidParameterError(
                f"RLE runs (non-negative) must cover {h * w} pixels for a {h}×{w} mask; they cover {int(runs.sum())}."
            )
        return cls(size=(h, w), counts=runs.astype(np.uint32))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RLEMask):
            return NotImplemented
        if tuple(self.size) != tuple(other.size):
            return False
        if np.array_equal(self.counts, other.counts):
            return True
        return bool(np.array_equal(self.decode(), other.decode()))  # the same pixels written with other runs

    def __hash__(self) -> int:
        return hash((tuple(self.size), self.area))

    def __repr__(self) -> str:
        return f"RLEMask(size={tuple(self.size)}, area={self.area}, runs={len(self.counts)})"


def _mask_from_json(value: Any) -> RLEMask:
    return RLEMask.from_dict(value)


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
        keypoint_names: the K keypoint names, when the model knows them (else empty).
        skeleton: pairs of 0-based keypoint indices joined by an edge, when the model knows them (else empty).

    ``det[i]``, ``det[a:b]``, ``det[index_array]`` and ``det[bool_mask]`` select detections (always a
    ``Detections``); ``det["key"]`` reads ``data["key"]``; iterating yields ``det[i]`` for each i. Two
    ``Detections`` are ``==`` when every field holds the same values (masks compared by pixels, dense or RLE alike).
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    class_names: Sequence[str] = ()
    masks: np.ndarray | list[RLEMask] | None = None
    keypoints: np.ndarray | None = None
    keypoint_confidence: np.ndarray | None = None
    data: dict[str, Any] = field(default_factory=dict)
    keypoint_names: Sequence[str] = ()
    skeleton: Sequence[tuple[int, int]] = ()

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
        if self.keypoint_names or self.skeleton:
            self.keypoint_names = tuple(str(name) for name in self.keypoint_names)
            try:
                self.skeleton = tuple((int(a), int(b)) for a, b in self.skeleton)
            except (TypeError, ValueError):
                raise InvalidParameterError(
                    f"skeleton must be pairs of keypoint indices, got {self.skeleton!r:.80}."
                ) from None
            k = self.keypoints.shape[1] if self.keypoints is not None else None
            if k is not None and self.keypoint_names and len(self.keypoint_names) != k:
                raise InvalidParameterError(f"{len(self.keypoint_names)} keypoint names for {k} keypoints.")
            bound = k if k is not None else (len(self.keypoint_names) or None)
            if bound is not None and any(not (0 <= i < bound) for edge in self.skeleton for i in edge):
                raise InvalidParameterError(f"skeleton {list(self.skeleton)} has indices outside 0..{bound - 1}.")
        else:
            self.keypoint_names, self.skeleton = (), ()

    @classmethod
    def empty(cls, class_names: Sequence[str] = ()) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), class_names)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __iter__(self) -> Iterator[Detections]:
        """Each detection as a ``Detections`` of length 1 (what ``det[i]`` gives)."""
        for i in range(len(self)):
            yield self[i]

    @property
    def names(self) -> list[str]:
        """The class name of each detection (``str(class_id)`` where the model has no names)."""
        names = self.class_names
        return [names[i] if 0 <= i < len(names) else str(i) for i in self.class_id.tolist()]

    def __getitem__(self, index: Any) -> Any:
        """``det["key"]``: ``data["key"]`` (``"class_name"``, when not in data, gives :attr:`names` as an (N,)
        str array, as in supervision). An int, a slice, an index array or a bool mask: a ``Detections``."""
        if isinstance(index, str):
            if index in self.data:
                return self.data[index]
            if index == "class_name":
                return np.array(self.names, dtype=str)
            close = difflib.get_close_matches(index, list(self.data), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidParameterError(
                f"No data key {index!r}{hint}; these detections carry {sorted(self.data) or 'no data keys'}."
            )
        if isinstance(index, (bool, np.bool_)) or not isinstance(
            index, (int, np.integer, slice, list, tuple, range, np.ndarray)
        ):
            raise InvalidParameterError(
                "Detections are selected with an int, a slice, an index array, a bool mask or a data key; got "
                f"{type(index).__name__}."
            )
        try:
            idx = np.atleast_1d(np.arange(len(self))[index])
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"Cannot select detections with {index!r:.80}: {exc}") from None
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
            keypoint_names=self.keypoint_names,
            skeleton=self.skeleton,
        )

    def __setitem__(self, key: str, value: Any) -> None:
        """``det["key"] = values``: set ``data["key"]`` (one entry per detection)."""
        if not isinstance(key, str):
            raise InvalidParameterError(f"Only data keys (str) can be assigned, got {type(key).__name__}.")
        if len(value) != len(self):
            raise InvalidParameterError(f"data[{key!r}] has {len(value)} entries for {len(self)} detections.")
        self.data[key] = value

    @classmethod
    def merge(cls, detections: Sequence[Detections]) -> Detections:
        """Concatenate several ``Detections`` (e.g. tiles of one image, or several models with the same classes).

        All must have the same ``class_names`` (the ids would mean different things otherwise), the same keypoint
        names and skeleton (parts without any are taken to share them), and — among those with at least one
        detection — the same data keys and either all or none with masks (of one image size) and keypoints (of one
        K). Masks stay dense when every part is dense, else they become RLE. Empty parts are skipped.
        """
        parts = list(detections)
        if not parts:
            return cls.empty()
        if not all(isinstance(p, Detections) for p in parts):
            raise InvalidParameterError("Detections.merge takes a sequence of Detections.")
        first = parts[0]
        named = [p for p in parts if p.keypoint_names or p.skeleton]
        kp_names, skeleton = (named[0].keypoint_names, named[0].skeleton) if named else ((), ())
        for p in parts[1:]:
            if p.class_names != first.class_names:
                raise InvalidParameterError(
                    f"Cannot merge Detections with different class_names ({list(first.class_names)[:5]}… vs "
                    f"{list(p.class_names)[:5]}…): their class ids would not mean the same classes."
                )
        if any((p.keypoint_names, p.skeleton) != (kp_names, skeleton) for p in named):
            raise InvalidParameterError("Cannot merge Detections with different keypoint names or skeletons.")
        full = [p for p in parts if len(p)]
        if not full:
            return cls(
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.float32),
                np.zeros(0, np.int64),
                first.class_names,
                keypoint_names=kp_names,
                skeleton=skeleton,
            )
        keys = list(full[0].data)
        for what, ok in (
            ("data keys", all(list(p.data) == keys or set(p.data) == set(keys) for p in full)),
            ("masks", len({p.masks is None for p in full}) == 1),
            ("keypoints", len({p.keypoints is None for p in full}) == 1),
        ):
            if not ok:
                raise InvalidParameterError(f"Cannot merge Detections whose {what} differ (some have them, some not).")
        masks: Any = None
        if full[0].masks is not None:
            sizes = {_mask_size(p) for p in full}
            if len(sizes) != 1:
                raise InvalidParameterError(f"Cannot merge masks of different image sizes: {sorted(sizes)}.")
            if all(isinstance(p.masks, np.ndarray) for p in full):
                masks = np.concatenate([p.masks for p in full])
            else:
                masks = [m for p in full for m in _rle_list(p)]
        keypoints = kconf = None
        if full[0].keypoints is not None:
            if len({p.keypoints.shape[1] for p in full if p.keypoints is not None}) != 1:
                raise InvalidParameterError("Cannot merge keypoints with different numbers of points.")
            keypoints = np.concatenate([p.keypoints for p in full if p.keypoints is not None])
            kconf = np.concatenate([p.keypoint_confidence for p in full if p.keypoint_confidence is not None])
        data: dict[str, Any] = {}
        for key in keys:
            values = [p.data[key] for p in full]
            if all(isinstance(v, np.ndarray) for v in values) and len({v.shape[1:] for v in values}) == 1:
                data[key] = np.concatenate(values)
            else:
                data[key] = [item for v in values for item in (v.tolist() if isinstance(v, np.ndarray) else v)]
        return cls(
            xyxy=np.concatenate([p.xyxy for p in full]),
            confidence=np.concatenate([p.confidence for p in full]),
            class_id=np.concatenate([p.class_id for p in full]),
            class_names=first.class_names,
            masks=masks,
            keypoints=keypoints,
            keypoint_confidence=kconf,
            data=data,
            keypoint_names=kp_names,
            skeleton=skeleton,
        )

    def dense_masks(self) -> np.ndarray | None:
        """Masks as an (N, H, W) bool array, decoding RLE if needed (may be large)."""
        if isinstance(self.masks, list):
            if not self.masks:
                return None
            return np.stack([m.decode() for m in self.masks])
        return self.masks

    # --- serialisation ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (schema: ``docs/results.md``); masks as COCO uncompressed RLE."""
        data_arrays = {
            k: {"dtype": str(v.dtype), "shape": list(v.shape)}
            for k, v in self.data.items()
            if isinstance(v, np.ndarray)
        }
        return {
            "type": "detections",
            "n": len(self),
            "xyxy": _array_json(self.xyxy),
            "confidence": _array_json(self.confidence),
            "class_id": self.class_id.tolist(),
            "class_name": self.names,
            "class_names": list(self.class_names),
            "masks": None if self.masks is None else [m.to_dict() for m in _rle_list(self)],
            "num_keypoints": None if self.keypoints is None else int(self.keypoints.shape[1]),
            "keypoints": None if self.keypoints is None else _array_json(self.keypoints),
            "keypoint_confidence": None if self.keypoint_confidence is None else _array_json(self.keypoint_confidence),
            "keypoint_names": list(self.keypoint_names),
            "skeleton": [list(edge) for edge in self.skeleton],
            "data": {str(k): _json_value(v, f"data[{k!r}]") for k, v in self.data.items()},
            "data_arrays": data_arrays,
        }

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string (strict JSON: no NaN literals)."""
        return _to_json(self.to_dict(), indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Detections:
        """Rebuild from :meth:`to_dict` output (or its ``json.loads``); derived keys (``n``, ``class_name``) are
        ignored."""
        d = _require(d, "detections", ("xyxy", "confidence", "class_id"))
        masks = d.get("masks")
        keypoints = d.get("keypoints")
        k = int(d.get("num_keypoints") or 0)
        return cls(
            xyxy=_floats_from(d["xyxy"], "xyxy", (None, 4)),
            confidence=_floats_from(d["confidence"], "confidence", (None,)),
            class_id=np.asarray(d["class_id"] or [], dtype=np.int64),
            class_names=d.get("class_names") or (),
            masks=None if masks is None else [_mask_from_json(m) for m in masks],
            keypoints=None if keypoints is None else _floats_from(keypoints, "keypoints", (None, k, 2)),
            keypoint_confidence=None
            if keypoints is None or d.get("keypoint_confidence") is None
            else _floats_from(d["keypoint_confidence"], "keypoint_confidence", (None, k)),
            data=_data_from_json(d.get("data") or {}, d.get("data_arrays") or {}),
            keypoint_names=d.get("keypoint_names") or (),
            skeleton=[tuple(e) for e in d.get("skeleton") or ()],
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Detections):
            return NotImplemented
        return (
            _arrays_equal(self.xyxy, other.xyxy)
            and _arrays_equal(self.confidence, other.confidence)
            and _arrays_equal(self.class_id, other.class_id)
            and tuple(self.class_names) == tuple(other.class_names)
            and _arrays_equal(self.keypoints, other.keypoints)
            and _arrays_equal(self.keypoint_confidence, other.keypoint_confidence)
            and tuple(self.keypoint_names) == tuple(other.keypoint_names)
            and tuple(self.skeleton) == tuple(other.skeleton)
            and _values_equal(self.data, other.data)
            and _masks_equal(self.masks, other.masks)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    # --- supervision -----------------------------------------------------------------------------------------

    def to_supervision(self) -> Any:
        """Convert to ``supervision.Detections`` (imported only here; ``pip install supervision``).

        ``xyxy``, ``confidence``, ``class_id`` and ``mask`` (dense (N, H, W) bool; RLE masks are decoded) map to
        their namesakes. ``data`` gets ``class_name`` (N,), every entry of :attr:`data` (arrays as they are, lists
        as (N,) object arrays), and, when present, ``keypoints`` float32 (N, K, 2) and ``keypoint_confidence``
        float32 (N, K) — supervision keeps key points in a separate ``KeyPoints`` type, so they travel in ``data``
        (an entry of :attr:`data` with the same name wins). ``metadata`` gets ``class_names`` (and
        ``keypoint_names`` / ``skeleton`` when known), so :meth:`from_supervision` restores them.
        """
        sv = _supervision()
        data: dict[str, Any] = {k: _column(v) for k, v in self.data.items()}
        data["class_name"] = _column(self.names)
        if self.keypoints is not None:
            data.setdefault("keypoints", self.keypoints)
            data.setdefault("keypoint_confidence", self.keypoint_confidence)
        kwargs = {
            "xyxy": self.xyxy,
            "confidence": self.confidence,
            "class_id": self.class_id,
            "mask": self.dense_masks(),
            "data": data,
        }
        metadata: dict[str, Any] = {"class_names": list(self.class_names)}
        if self.keypoint_names or self.skeleton:
            metadata.update(keypoint_names=list(self.keypoint_names), skeleton=[tuple(e) for e in self.skeleton])
        try:
            return sv.Detections(**kwargs, metadata=metadata)
        except TypeError:  # supervision before 0.24 has no metadata
            return sv.Detections(**kwargs)

    def to_supervision_keypoints(self) -> Any:
        """Convert the keypoints to ``supervision.KeyPoints``: ``xy`` (N, K, 2), ``keypoint_confidence`` (N, K),
        ``class_id`` and ``detection_confidence`` (N,), ``data`` with ``class_name`` and every entry of
        :attr:`data`. supervision keeps no skeleton or keypoint names in ``KeyPoints``: pass
        :meth:`supervision_edges` to ``sv.EdgeAnnotator(edges=...)`` and :attr:`keypoint_names` as
        ``sv.VertexLabelAnnotator``'s ``labels``.

        Raises:
            InvalidParameterError: these detections have no keypoints.
        """
        if self.keypoints is None:
            raise InvalidParameterError(
                "These detections have no keypoints (a keypoint-detection or face model gives them); use "
                "to_supervision() for boxes and masks."
            )
        sv = _supervision()
        data: dict[str, Any] = {k: _column(v) for k, v in self.data.items()}
        data["class_name"] = _column(self.names)
        common = {"xy": self.keypoints, "class_id": self.class_id, "data": data}
        try:
            return sv.KeyPoints(
                **common, keypoint_confidence=self.keypoint_confidence, detection_confidence=self.confidence
            )
        except TypeError:  # supervision before 0.29: one per-keypoint ``confidence``
            return sv.KeyPoints(**common, confidence=self.keypoint_confidence)

    def supervision_edges(self) -> list[tuple[int, int]] | None:
        """The skeleton in supervision's convention (1-based keypoint numbers, as ``sv.EdgeAnnotator(edges=...)``
        expects), or None when the model gave no skeleton (supervision then guesses one from the keypoint count)."""
        if not self.skeleton:
            return None
        return [(a + 1, b + 1) for a, b in self.skeleton]

    @classmethod
    def from_supervision(
        cls, detections: Any, *, key_points: Any = None, class_names: Sequence[str] | None = None
    ) -> Detections:
        """Build from ``supervision.Detections`` (and optionally the ``supervision.KeyPoints`` of the same objects).

        ``class_names``: given > ``metadata["class_names"]`` (written by :meth:`to_supervision`) > gathered from
        ``data["class_name"]``. A missing ``confidence`` becomes 1.0, a missing ``class_id`` 0; ``tracker_id``
        (when set) goes to ``data["tracker_id"]``; ``data["keypoints"]`` / ``data["keypoint_confidence"]`` (as
        :meth:`to_supervision` writes them) or ``key_points`` become :attr:`keypoints`; other ``data`` entries are
        kept (1-D object arrays as lists).
        """
        xyxy = np.asarray(detections.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(xyxy)
        confidence = np.ones(n, np.float32) if detections.confidence is None else detections.confidence
        class_id = np.zeros(n, np.int64) if detections.class_id is None else detections.class_id
        data = dict(getattr(detections, "data", None) or {})
        metadata = dict(getattr(detections, "metadata", None) or {})
        per_name = data.pop("class_name", None)
        if class_names is None:
            class_names = metadata.get("class_names")
        if class_names is None and per_name is not None:
            found: dict[int, str] = {int(i): str(nm) for i, nm in zip(np.asarray(class_id).tolist(), per_name)}
            class_names = [found.get(i, str(i)) for i in range(max(found, default=-1) + 1)]
        keypoints = data.pop("keypoints", None)
        kconf = data.pop("keypoint_confidence", None)
        if key_points is not None:
            keypoints = key_points.xy
            if hasattr(key_points, "keypoint_confidence"):
                kconf = key_points.keypoint_confidence
            else:  # supervision before 0.29
                kconf = getattr(key_points, "confidence", None)
        if getattr(detections, "tracker_id", None) is not None:
            data["tracker_id"] = np.asarray(detections.tracker_id)
        for key, value in data.items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "O" and value.ndim == 1:
                data[key] = value.tolist()
        mask = detections.mask
        return cls(
            xyxy=xyxy,
            confidence=confidence,
            class_id=class_id,
            class_names=class_names or (),
            masks=None if mask is None else np.asarray(mask, dtype=bool),
            keypoints=keypoints,
            keypoint_confidence=kconf,
            data=data,
            keypoint_names=metadata.get("keypoint_names") or (),
            skeleton=metadata.get("skeleton") or (),
        )

    def __repr__(self) -> str:
        extras = [k for k in ("masks", "keypoints") if getattr(self, k) is not None] + list(self.data)
        classes = sorted(set(self.names))
        shown = classes[:10] + (["…"] if len(classes) > 10 else [])
        head = f"Detections(n={len(self)}, classes={shown}, extras={extras})"
        if not len(self):
            return head
        rows = [head, f"  {'#':>3} {'x1':>8} {'y1':>8} {'x2':>8} {'y2':>8} {'conf':>6}  class"]
        names = self.names
        for i in range(min(len(self), _PREVIEW_ROWS)):
            x1, y1, x2, y2 = self.xyxy[i].tolist()
            rows.append(
                f"  {i:>3} {x1:8.1f} {y1:8.1f} {x2:8.1f} {y2:8.1f} {float(self.confidence[i]):6.3f}  {names[i]}"
            )
        if len(self) > _PREVIEW_ROWS:
            rows.append(f"  … {len(self) - _PREVIEW_ROWS} more")
        return "\n".join(rows)


def _supervision() -> Any:
    try:
        import supervision as sv
    except ImportError as exc:
        from im_core.errors import MissingDependencyError

        raise MissingDependencyError("to_supervision() needs the supervision package: pip install supervision") from exc
    return sv


def _mask_size(d: Detections) -> tuple[int, int]:
    if isinstance(d.masks, list):
        return tuple(d.masks[0].size)  # type: ignore[return-value]
    assert d.masks is not None
    return (int(d.masks.shape[1]), int(d.masks.shape[2]))


def _rle_list(d: Detections) -> list[RLEMask]:
    if isinstance(d.masks, list):
        return d.masks
    return [] if d.masks is None else [RLEMask.encode(m) for m in d.masks]


def _data_from_json(data: Mapping[str, Any], arrays: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        spec = arrays.get(key)
        if spec is None:
            out[key] = value
            continue
        try:
            dtype = np.dtype(spec["dtype"])
            shape = tuple(int(s) for s in spec["shape"])
            if dtype.kind == "O" and len(shape) == 1:
                arr = np.empty(len(value), dtype=object)
                for i, item in enumerate(value):  # item by item: equal-length lists must not become a 2-D array
                    arr[i] = item
            elif dtype.kind == "O":
                arr = np.array(value, dtype=object)
            else:
                arr = np.asarray(value, dtype=dtype)
            out[key] = arr.reshape(shape)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameterError(f"data[{key!r}] does not match its data_arrays entry {spec!r}: {exc}") from None
    return out


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

    @property
    def predicted_ids(self) -> list[int]:
        """The class ids of :attr:`predicted`."""
        if not self.multi_label:
            return [self.class_id]
        return np.flatnonzero(self.confidence >= self.threshold).tolist()

    def _name(self, i: int) -> str:
        return self.class_names[i] if i < len(self.class_names) else str(i)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (schema: ``docs/results.md``)."""
        empty = len(self.confidence) == 0
        return {
            "type": "classification",
            "confidence": _array_json(self.confidence),
            "class_names": list(self.class_names),
            "multi_label": bool(self.multi_label),
            "threshold": _float(self.threshold),
            "class_id": None if empty else self.class_id,
            "class_name": None if empty else self.class_name,
            "top_confidence": None if empty else _float(self.top_confidence),
            "predicted": [] if empty else self.predicted,
        }

    def to_json(self, indent: int | None = None) -> str:
        return _to_json(self.to_dict(), indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Classification:
        """Rebuild from :meth:`to_dict` output; the derived keys (``class_id``, ``predicted``, …) are ignored."""
        d = _require(d, "classification", ("confidence",))
        return cls(
            confidence=_floats_from(d["confidence"], "confidence", (None,)),
            class_names=d.get("class_names") or (),
            multi_label=bool(d.get("multi_label", False)),
            threshold=_scalar_from(d.get("threshold", 0.5), "threshold"),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Classification):
            return NotImplemented
        return (
            _arrays_equal(self.confidence, other.confidence)
            and tuple(self.class_names) == tuple(other.class_names)
            and bool(self.multi_label) == bool(other.multi_label)
            and _values_equal(float(self.threshold), float(other.threshold))
        )

    __hash__ = None  # type: ignore[assignment]

    def to_supervision(self) -> Any:
        """Convert to ``supervision.Classifications``: ``class_id`` = 0..C-1 and ``confidence`` the C scores (as
        supervision's own ``from_ultralytics`` does; ``get_top_k`` works on it). supervision keeps no class names:
        index :attr:`class_names` with the ids."""
        sv = _supervision()
        return sv.Classifications(class_id=np.arange(len(self.confidence)), confidence=self.confidence)

    @classmethod
    def from_supervision(
        cls, classifications: Any, class_names: Sequence[str] = (), *, multi_label: bool = False
    ) -> Classification:
        """Build from ``supervision.Classifications``: each class id's score (classes it does not list score 0)."""
        ids = np.asarray(classifications.class_id, dtype=np.int64).reshape(-1)
        scores = classifications.confidence
        scores = np.ones(len(ids), np.float32) if scores is None else np.asarray(scores, np.float32).reshape(-1)
        size = max(len(class_names), int(ids.max()) + 1 if len(ids) else 0)
        confidence = np.zeros(size, np.float32)
        confidence[ids] = scores
        return cls(confidence, class_names, multi_label=multi_label)

    def __repr__(self) -> str:
        if len(self.confidence) == 0:
            return f"Classification(no classes, multi_label={self.multi_label})"
        top = ", ".join(f"{name!r}: {score:.3f}" for name, score in self.top_k(3))
        return (
            f"Classification({self.class_name!r}, {self.top_confidence:.3f}, multi_label={self.multi_label}, "
            f"top=[{top}])"
        )


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (schema: ``docs/results.md``)."""
        return {
            "type": "embeddings",
            "dim": int(self.vectors.shape[1]),
            "normalized": bool(self.normalized),
            "vectors": _array_json(self.vectors),
        }

    def to_json(self, indent: int | None = None) -> str:
        return _to_json(self.to_dict(), indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Embeddings:
        d = _require(d, "embeddings", ("vectors",))
        vectors = _floats_from(d["vectors"], "vectors", (None, int(d.get("dim") or 0)))
        return cls(vectors, normalized=bool(d.get("normalized", True)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Embeddings):
            return NotImplemented
        return _arrays_equal(self.vectors, other.vectors) and bool(self.normalized) == bool(other.normalized)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        n, dim = self.vectors.shape
        head = ", ".join(f"{v:.4f}" for v in self.vectors[0, :4].tolist()) if n else ""
        more = ", …" if dim > 4 else ""
        return f"Embeddings(n={n}, dim={dim}, normalized={self.normalized}" + (f", first=[{head}{more}])" if n else ")")


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

    def to_dict(self) -> dict[str, Any]:
        return {"text": str(self.text), "confidence": _float(self.confidence), "polygon": _array_json(self.polygon)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextLine:
        if not isinstance(d, Mapping) or "text" not in d or "confidence" not in d:
            raise InvalidParameterError(f'A text line must be {{"text", "confidence", "polygon"}}, got {d!r:.80}.')
        return cls(
            str(d["text"]),
            _scalar_from(d["confidence"], "confidence"),
            _floats_from(d.get("polygon") or [], "polygon", (None, 2)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextLine):
            return NotImplemented
        return (
            self.text == other.text
            and _values_equal(float(self.confidence), float(other.confidence))
            and _arrays_equal(self.polygon, other.polygon)
        )

    __hash__ = None  # type: ignore[assignment]


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (schema: ``docs/results.md``); ``text`` is derived (ignored by :meth:`from_dict`)."""
        return {"type": "text_recognition", "text": self.text, "lines": [line.to_dict() for line in self.lines]}

    def to_json(self, indent: int | None = None) -> str:
        return _to_json(self.to_dict(), indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextRecognition:
        d = _require(d, "text_recognition", ("lines",))
        return cls([TextLine.from_dict(line) for line in d["lines"] or []])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextRecognition):
            return NotImplemented
        return len(self.lines) == len(other.lines) and all(a == b for a, b in zip(self.lines, other.lines))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = [f"{line.text!r} ({line.confidence:.2f})" for line in self.lines[:_PREVIEW_ROWS]]
        more = f", … {len(self.lines) - _PREVIEW_ROWS} more" if len(self.lines) > _PREVIEW_ROWS else ""
        return f"TextRecognition(n={len(self.lines)}, lines=[{', '.join(shown)}{more}])"


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (schema: ``docs/results.md``); angles in radians."""
        return {
            "type": "gaze",
            "yaw": _array_json(self.yaw),
            "pitch": _array_json(self.pitch),
            "faces": None if self.faces is None else self.faces.to_dict(),
        }

    def to_json(self, indent: int | None = None) -> str:
        return _to_json(self.to_dict(), indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Gaze:
        d = _require(d, "gaze", ("yaw", "pitch"))
        faces = d.get("faces")
        return cls(
            _floats_from(d["yaw"], "yaw", (None,)),
            _floats_from(d["pitch"], "pitch", (None,)),
            None if faces is None else Detections.from_dict(faces),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Gaze):
            return NotImplemented
        faces_equal = (
            self.faces is None and other.faces is None
            if self.faces is None or other.faces is None
            else self.faces == other.faces
        )
        return _arrays_equal(self.yaw, other.yaw) and _arrays_equal(self.pitch, other.pitch) and faces_equal

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        pairs = [f"({y:+.3f}, {p:+.3f})" for y, p in zip(self.yaw[:_PREVIEW_ROWS].tolist(), self.pitch.tolist())]
        more = f", … {len(self) - _PREVIEW_ROWS} more" if len(self) > _PREVIEW_ROWS else ""
        return f"Gaze(n={len(self)}, yaw_pitch_rad=[{', '.join(pairs)}{more}], faces={self.faces is not None})"
