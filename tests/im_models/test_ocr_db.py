"""DB post-processing against a straightforward per-region reference (the PaddleOCR ``DBPostProcess`` recipe,
OpenCV one contour at a time) on synthetic probability maps with several, touching, tiny, holed, border and rotated
regions.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyclipper
import pytest

from im_models.common._crops import order_quads
from im_models.ocr._db import DBParams, db_boxes

# -- references: one region at a time -------------------------------------------------------------------------


def reference_means(prob: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """PaddleOCR's ``box_score_fast``, box by box."""
    h, w = prob.shape
    out = np.zeros(len(quads), np.float32)
    for i, quad in enumerate(np.asarray(quads, np.float32)):
        x0, y0 = np.clip(np.floor(quad.min(axis=0)), 0, [w - 1, h - 1]).astype(int)
        x1, y1 = np.clip(np.ceil(quad.max(axis=0)), 0, [w - 1, h - 1]).astype(int)
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        cv2.fillPoly(mask, [(quad - [x0, y0]).astype(np.int32)], 1)
        out[i] = cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0]
    return out


def snapped_box(rect) -> np.ndarray:
    """``cv2.boxPoints`` with OpenCV's float32 rounding undone: corners within 1e-3 of an integer are that integer."""
    corners = cv2.boxPoints(rect).astype(np.float64)
    near = np.abs(corners - np.rint(corners)) < 1e-3
    return np.where(near, np.rint(corners), corners)


def reference_db_boxes(prob: np.ndarray, p: DBParams) -> tuple[np.ndarray, np.ndarray]:
    """``DBPostProcess`` (quad boxes, fast score, pyclipper unclip), one contour at a time."""
    binary = (prob > p.threshold).astype(np.uint8)
    if p.dilate:
        binary = cv2.dilate(binary, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) > p.max_candidates:
        areas = np.array([cv2.contourArea(c) for c in contours])
        contours = [contours[i] for i in np.argsort(-areas, kind="stable")[: p.max_candidates]]
    quads, scores = [], []
    for contour in contours:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < p.min_size:
            continue
        score = reference_means(prob, order_quads(snapped_box(((cx, cy), (w, h), angle))))[0]
        if score < p.box_threshold:
            continue
        # unclip as PaddleOCR does: Clipper's round-joined offset of the box by area * ratio / perimeter (shapely's
        # Polygon area and length), then the offset polygon's minimum-area rectangle
        box = cv2.boxPoints(((cx, cy), (w, h), angle))
        x, y = box[:, 0].astype(np.float64), box[:, 1].astype(np.float64)
        area = abs(sum(x[i] * y[i - 3] - x[i - 3] * y[i] for i in range(4))) / 2.0
        length = sum(float(np.hypot(x[i] - x[i - 1], y[i] - y[i - 1])) for i in range(4))
        offset = pyclipper.PyclipperOffset()
        offset.AddPath(box, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        expanded = offset.Execute(area * p.unclip_ratio / length)
        if not expanded:
            continue
        grown = cv2.minAreaRect(np.array(expanded, np.int32).reshape(-1, 1, 2))
        if min(grown[1]) < p.min_size + 2:
            continue
        quads.append(order_quads(cv2.boxPoints(grown))[0])
        scores.append(score)
    return np.array(quads, np.float32).reshape(-1, 4, 2), np.array(scores, np.float32)


# -- synthetic inputs -------------------------------------------------------------------------------------------


def random_quads(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """Rotated rectangles of all sizes (some crossing the border), random and integer-cornered quadrilaterals."""
    c = rng.uniform(-4, [w + 4, h + 4], (n, 2))
    s = rng.uniform(0.2, 40, (n, 2))
    s[: n // 4, 1] = rng.uniform(0, 4, n // 4)  # thin
    angle = rng.uniform(-90, 90, n)
    rects = np.stack([cv2.boxPoints(((x, y), (a, b), t)) for (x, y), (a, b), t in zip(c, s, angle)])
    free = rng.uniform(-6, [w + 6, h + 6], (n, 4, 2))  # concave, self-intersecting
    grid = rng.integers(-2, [w + 2, h + 2], (n, 4, 2)) + rng.choice([0.0, 0.5, 0.999, -0.001], (n, 4, 2))
    quads = np.concatenate([order_quads(rects), order_quads(free), free, grid]).astype(np.float32)
    # PaddleOCR boxes always reach into the map (they enclose a contour of it)
    reaches = (quads.max(axis=1) >= 0).all(axis=1) & (quads.min(axis=1) <= [w - 1, h - 1]).all(axis=1)
    return quads[reaches]


def text_map(h: int, w: int, lines, blur: float = 1.0) -> np.ndarray:
    """DB-like probability map: filled rotated rectangles ``(cx, cy, length, thickness, angle, level)``, blurred."""
    prob = np.zeros((h, w), np.float32)
    for cx, cy, length, thick, angle, level in lines:
        corners = cv2.boxPoints(((cx, cy), (length, thick), angle))
        cv2.fillPoly(prob, [np.round(corners).astype(np.int32)], float(level))
    return np.clip(cv2.GaussianBlur(prob, (0, 0), blur), 0, 1) if blur else prob


def scene(kind: str) -> np.ndarray:
    if kind == "lines":  # two columns of rotated text lines of different lengths, thicknesses and levels
        rng = np.random.default_rng(1)
        lines = [
            (75 + 150 * (i % 2) + rng.uniform(-8, 8), 12 + 20 * (i // 2), rng.uniform(40, 120), rng.uniform(5, 8))
            for i in range(28)
        ]
        return text_map(300, 300, [(*line, rng.uniform(-4, 4), rng.uniform(0.85, 1.0)) for line in lines])
    if kind == "touching":  # two lines that touch (one contour), two that nearly touch, one tall and one steep
        return text_map(
            160,
            200,
            [(60, 30, 80, 8, 0, 1), (140, 30, 80, 8, 0, 1), (60, 60, 80, 8, 3, 1), (145, 61, 80, 8, -3, 1),
             (30, 115, 8, 60, 0, 1), (120, 115, 90, 10, 35, 0.9)],
        )  # fmt: skip
    if kind == "tiny":  # specks and slivers below the size filter next to one real line
        prob = text_map(80, 120, [(60, 40, 70, 8, 2, 1)], blur=0)
        prob[5, 5] = prob[10, 20:22] = prob[70:72, 100:102] = 0.9
        prob[60:62, 10:40] = 0.95  # 2 rows thick: short side 1 < min_size
        prob[20, 100:118] = 0.95
        return prob
    if kind == "hole":  # a ring (outer and hole contour) and a line with a low-probability gap inside
        prob = text_map(120, 160, [(80, 90, 120, 14, 0, 1)], blur=0.6)
        cv2.rectangle(prob, (20, 10), (70, 50), 1.0, thickness=6)
        prob[86:94, 70:90] = 0.1
        return prob
    if kind == "border":  # lines cut by the map border, tilted so their rectangles poke out
        return text_map(100, 140, [(10, 50, 60, 10, 25, 1), (120, 3, 80, 10, -6, 1), (70, 97, 150, 8, 2, 0.9)])
    raise AssertionError(kind)


# -- the whole decoder ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lines", "touching", "tiny", "hole", "border"])
@pytest.mark.parametrize(
    "params",
    [DBParams(), DBParams(box_threshold=0.3, min_size=2.0), DBParams(dilate=True), DBParams(max_candidates=3)],
    ids=["default", "permissive", "dilate", "few-candidates"],
)
def test_db_boxes_equal_the_per_region_reference(kind, params):
    prob = scene(kind)
    quads, scores = db_boxes(prob, params)
    ref_quads, ref_scores = reference_db_boxes(prob, params)
    assert len(quads) == len(ref_quads) and len(quads) > 0
    np.testing.assert_allclose(quads, ref_quads, atol=1e-3)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-6)


def test_db_boxes_scenes_have_what_they_claim():
    found = {kind: db_boxes(scene(kind), DBParams())[0] for kind in ["lines", "touching", "tiny", "hole", "border"]}
    assert len(found["lines"]) == 28
    assert len(found["touching"]) == 5  # the two touching lines are one region
    assert len(found["tiny"]) == 1  # specks and slivers are dropped by the size filter
    assert len(found["border"]) == 3
    # the ring's outer border and its hole are both candidates (RETR_LIST), as in PaddleOCR
    binary = (scene("hole") > 0.3).astype(np.uint8)
    assert len(cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)[0]) > len(
        cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
    )


def test_db_boxes_on_a_blank_map_and_on_specks_only():
    empty = db_boxes(np.zeros((64, 64), np.float32), DBParams())
    assert empty[0].shape == (0, 4, 2) and empty[1].shape == (0,)
    specks = np.zeros((64, 64), np.float32)
    specks[::8, ::8] = 1.0
    quads, scores = db_boxes(specks, DBParams())
    assert quads.shape == (0, 4, 2) and scores.shape == (0,)
