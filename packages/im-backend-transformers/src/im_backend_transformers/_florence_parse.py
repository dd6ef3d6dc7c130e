"""Florence-2's generated text → boxes, quadrilaterals and labels in original-image pixels (im's own parser).

Florence-2 writes a location as ``<loc_N>`` tokens, ``N`` in 0..999 a bin of the image's width (x) or height (y).
The parsing rules are those of ``transformers``' ``Florence2PostProcessor`` (same regular expressions, same
phrase rules, bins → pixels as ``(N + 0.5) * size / 1000`` in float32, truncated to whole pixels as the processor
does), so the boxes equal the processor's; the coordinates of every match are dequantised in one numpy operation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BOX_TASKS", "OCR_REGION_TASKS", "PHRASE_TASKS", "TEXT_TASKS", "Parsed", "dequantize", "parse_generation"]

BINS = 1000
#: tasks whose answer is plain text
TEXT_TASKS = frozenset({"<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>", "<OCR>"})
#: tasks answering "phrase<loc_x1><loc_y1><loc_x2><loc_y2>..." (an empty phrase allowed for region proposals)
BOX_TASKS = frozenset({"<OD>", "<DENSE_REGION_CAPTION>", "<REGION_PROPOSAL>"})
#: phrase grounding: the phrases of a caption with their boxes
PHRASE_TASKS = frozenset({"<CAPTION_TO_PHRASE_GROUNDING>"})
#: OCR with regions: "text<loc_x1><loc_y1>...<loc_x4><loc_y4>" (four corners)
OCR_REGION_TASKS = frozenset({"<OCR_WITH_REGION>"})

_STRIP = ("<s>", "</s>", "<pad>")
_PHRASE = re.compile(r"([^<]+(?:<loc_\d+>){4,})")
_EMPTY_PHRASE = re.compile(r"(?:(?:<loc_\d+>){4,})")
_LABEL = re.compile(r"^\s*(.*?)(?=<od>|</od>|<box>|</box>|<bbox>|</bbox>|<loc_)")
_BOX = re.compile(r"<loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)>")
_OCR = r"(.+?)" + r"<loc_(\d+)>" * 8


@dataclass(frozen=True)
class Parsed:
    """A parsed answer: ``text`` for text tasks; else ``boxes`` float32 (N, 4) x1, y1, x2, y2 and ``labels`` (N),
    plus ``quads`` float32 (N, 4, 2) corners for OCR with regions."""

    text: str = ""
    boxes: np.ndarray | None = None
    labels: tuple[str, ...] = ()
    quads: np.ndarray | None = None


def dequantize(bins: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixels of ``bins`` (..., 2k) int, alternately x and y: ``(bin + 0.5) * size / 1000`` in float32, truncated."""
    bins = np.asarray(bins, np.int64)
    per_bin = np.array([width / BINS, height / BINS], np.float32)
    scale = np.tile(per_bin, bins.shape[-1] // 2) if bins.ndim else per_bin
    return ((bins.astype(np.float32) + np.float32(0.5)) * scale).astype(np.int32).astype(np.float32)


def _clean(text: str) -> str:
    for token in _STRIP:
        text = text.replace(token, "")
    return text


def _ascii(text: str) -> str:
    return text.encode("ascii", "ignore").decode("ascii")


def _phrases(text: str, *, allow_empty: bool, banned: Iterable[str] = ()) -> tuple[list[str], list[list[str]]]:
    """Labels and box-bin strings of each box of ``text`` (one label per box, in order)."""
    banned = frozenset(banned)
    labels: list[str] = []
    bins: list[list[str]] = []
    for phrase_text in (_EMPTY_PHRASE if allow_empty else _PHRASE).findall(_clean(text)):
        phrase_text = phrase_text.replace("<ground>", "", 1).replace("<obj>", "", 1)
        if not phrase_text and not allow_empty:
            continue
        match = _LABEL.search(phrase_text)
        if not match:
            continue
        label = match.group().strip()
        if label in banned:
            continue
        boxes = _BOX.findall(phrase_text)
        labels += [_ascii(label)] * len(boxes)
        bins += [list(b) for b in boxes]
    return labels, bins


def parse_generation(
    text: str, task: str, image_size: tuple[int, int], config: Mapping[str, Any] | None = None
) -> Parsed:
    """Parse Florence-2's decoded answer (special tokens kept) for ``task``.

    Args:
        text: ``tokenizer.decode(ids, skip_special_tokens=False)`` of the generated tokens.
        task: the task token (``"<OD>"``, ``"<CAPTION>"``...).
        image_size: (width, height) of the original image, in pixels.
        config: the processor's ``post_processor_config`` (``phrase_grounding.banned_grounding_tokens``,
            ``ocr.PATTERN`` and ``ocr.AREA_THRESHOLD``), when it has one.
    """
    width, height = image_size
    config = config or {}
    if task in BOX_TASKS or task in PHRASE_TASKS:
        banned = (
            (config.get("phrase_grounding") or {}).get("banned_grounding_tokens", ()) if task in PHRASE_TASKS else ()
        )
        labels, bins = _phrases(text, allow_empty=task == "<REGION_PROPOSAL>", banned=banned)
        boxes = dequantize(np.array(bins, np.int64).reshape(-1, 4), width, height)
        return Parsed(boxes=boxes, labels=tuple(labels))
    if task in OCR_REGION_TASKS:
        ocr = config.get("ocr") or {}
        found = re.findall(ocr.get("PATTERN") or _OCR, _clean(text))
        labels = [str(content).strip() for content, *_ in found]
        quads = dequantize(np.array([q for _, *q in found], np.int64).reshape(-1, 8), width, height).reshape(-1, 4, 2)
        threshold = float(ocr.get("AREA_THRESHOLD", 0.0) or 0.0)
        if threshold > 0 and len(quads):  # the quadrilateral's area (shoelace) against a share of the image's
            x, y = quads[..., 0], quads[..., 1]
            area = 0.5 * np.abs((x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1))
            keep = area >= width * height * threshold
            quads, labels = quads[keep], [t for t, k in zip(labels, keep.tolist()) if k]
        boxes = np.concatenate([quads.min(axis=1), quads.max(axis=1)], axis=1) if len(quads) else np.zeros((0, 4))
        return Parsed(boxes=boxes.astype(np.float32), labels=tuple(labels), quads=quads)
    return Parsed(text=text.replace("<s>", "").replace("</s>", "").strip())
