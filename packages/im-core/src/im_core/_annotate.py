"""Results drawn on their image, for ``im predict --save`` (OpenCV, imported when drawing; im-models depends on it).

:func:`annotate` draws any result type on a BGR image and returns a new BGR image of the same size: boxes with
their label and score, instance masks (blended), keypoints with their skeleton, text-detection polygons, OCR lines
(polygon and text), gaze arrows from each face, and the top classes of a classification. OpenCV's built-in fonts
draw ASCII only: other characters of a label are shown as ``?``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["COCO_SKELETON", "annotate"]

#: the 17 COCO person keypoints' skeleton (0-based pairs), used when a 17-keypoint model names no skeleton
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

#: BGR colours, one per class id (cycled)
_PALETTE: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72), (23, 204, 146),
    (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0), (147, 69, 52), (255, 115, 100),
    (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203), (200, 149, 255), (199, 55, 255),
)  # fmt: skip


def _color(i: int) -> tuple[int, int, int]:
    return _PALETTE[int(i) % len(_PALETTE)]


class _Pen:
    """Line width and font scale that suit the image size."""

    def __init__(self, image: np.ndarray) -> None:
        import cv2

        self.cv2 = cv2
        side = max(image.shape[:2])
        self.width = max(2, round(side / 350))
        self.font_scale = max(0.4, side / 1400)
        self.font_width = max(1, round(side / 900))

    def label(self, image: np.ndarray, text: str, x: float, y: float, color: tuple[int, int, int]) -> None:
        """``text`` on a filled box of ``color`` whose bottom-left corner is at (x, y), kept inside the image."""
        cv2 = self.cv2
        text = text.encode("ascii", "replace").decode("ascii")
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, self.font_scale, self.font_width)
        h, w = image.shape[:2]
        x0 = int(min(max(x, 0), max(w - tw - 2, 0)))
        y0 = int(y)
        if y0 - th - base - 2 < 0:  # no room above: put the label inside, below the point
            y0 = min(int(y) + th + base + 2, h - 1)
        cv2.rectangle(image, (x0, y0 - th - base - 2), (x0 + tw + 2, y0), color, -1)
        ink = (0, 0, 0) if sum(color) > 3 * 150 else (255, 255, 255)
        cv2.putText(
            image, text, (x0 + 1, y0 - base - 1), cv2.FONT_HERSHEY_SIMPLEX, self.font_scale, ink, self.font_width,
            cv2.LINE_AA,
        )  # fmt: skip


def annotate(image: np.ndarray, result: Any, *, skeleton: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
    """``result`` drawn on a copy of ``image`` (BGR uint8, H x W x 3); the returned image has the same size.

    Args:
        image: the image the result was computed on, BGR.
        result: a :class:`~im_core.Detections`, :class:`~im_core.Classification`, :class:`~im_core.TextRecognition`,
            :class:`~im_core.Gaze`, :class:`~im_core.SemanticSegmentation` (a colour per class, background left
            clear) or :class:`~im_core.Embeddings` (nothing to draw: the image is returned as is).
        skeleton: keypoint index pairs to join (a pose model's ``metadata.extra["skeleton"]``); 17 keypoints
            without one are joined as COCO persons.
    """
    from im_core._results import Classification, Detections, Gaze, TextRecognition
    from im_core._results_semantic import SemanticSegmentation

    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    pen = _Pen(out)
    if isinstance(result, Detections):
        _detections(out, result, pen, skeleton)
    elif isinstance(result, TextRecognition):
        for line in result.lines:
            if len(line.polygon):
                _polygon(out, line.polygon, (0, 200, 0), pen)
                x, y = line.polygon.min(axis=0)
                pen.label(out, line.text, x, y, (0, 200, 0))
    elif isinstance(result, Gaze):
        _gaze(out, result, pen)
    elif isinstance(result, SemanticSegmentation):
        _semantic(out, result)
    elif isinstance(result, Classification):
        for row, (name, score) in enumerate(result.top_k(3)):
            step = int(30 * pen.font_scale / 0.4 * 0.6) + 6
            pen.label(out, f"{name} {score:.2f}", 4, 4 + (row + 1) * step, _color(row))
    return out


def _semantic(image: np.ndarray, seg: Any) -> None:
    """A colour per class (by class id) over the image at 45 %; background pixels stay as they are."""
    cm = seg.class_map
    if cm.shape != image.shape[:2]:
        return
    ids = np.asarray(seg.present_class_ids, np.int64)
    palette = np.zeros((int(ids.max(initial=0)) + 1, 3), np.uint8)
    for c in ids.tolist():  # one entry per class present
        palette[c] = _color(c)
    paint = cm != (-1 if seg.background_class_id is None else seg.background_class_id)
    blend = (0.45 * palette[cm[paint]] + 0.55 * image[paint]).round()
    image[paint] = blend.astype(np.uint8)


def _polygon(image: np.ndarray, points: np.ndarray, color: tuple[int, int, int], pen: _Pen) -> None:
    pts = np.round(np.asarray(points, np.float64)).astype(np.int32).reshape(-1, 1, 2)
    pen.cv2.polylines(image, [pts], True, color, pen.width, pen.cv2.LINE_AA)


def _detections(image: np.ndarray, det: Any, pen: _Pen, skeleton: Sequence[tuple[int, int]] | None) -> None:
    cv2 = pen.cv2
    masks = det.dense_masks()
    if masks is not None and len(masks):
        layer = image.copy()
        for i, mask in enumerate(masks):
            if mask.shape == image.shape[:2]:
                layer[mask] = _color(int(det.class_id[i]))
        cv2.addWeighted(layer, 0.45, image, 0.55, 0, dst=image)
    polygons = det.data.get("polygon")
    texts = det.data.get("text")
    names = det.names
    for i in range(len(det)):
        color = _color(int(det.class_id[i]))
        x1, y1, x2, y2 = (float(v) for v in det.xyxy[i])
        if polygons is not None and len(polygons[i]):
            _polygon(image, polygons[i], color, pen)
        else:
            cv2.rectangle(image, (round(x1), round(y1)), (round(x2), round(y2)), color, pen.width, cv2.LINE_AA)
        text = str(texts[i]) if texts is not None else names[i]
        pen.label(image, f"{text} {float(det.confidence[i]):.2f}", x1, y1, color)
    if det.keypoints is not None:
        _keypoints(image, det.keypoints, det.keypoint_confidence, pen, skeleton)


def _keypoints(image: np.ndarray, points: np.ndarray, confidence: np.ndarray | None, pen: _Pen, skeleton: Any) -> None:
    cv2 = pen.cv2
    k = points.shape[1]
    if skeleton is None and k == 17:
        skeleton = COCO_SKELETON
    radius = max(2, pen.width + 1)
    for n in range(points.shape[0]):
        seen = np.ones(k, bool) if confidence is None else confidence[n] >= 0.5
        for a, b in skeleton or ():
            if 0 <= a < k and 0 <= b < k and seen[a] and seen[b]:
                pa = tuple(round(float(v)) for v in points[n, a])
                pb = tuple(round(float(v)) for v in points[n, b])
                cv2.line(image, pa, pb, _color(a + 5), pen.width, cv2.LINE_AA)
        for j in range(k):
            if seen[j]:
                p = tuple(round(float(v)) for v in points[n, j])
                cv2.circle(image, p, radius, _color(j), -1, cv2.LINE_AA)


def _gaze(image: np.ndarray, gaze: Any, pen: _Pen) -> None:
    """An arrow per face from its box centre: yaw > 0 (towards the subject's left) points to the image's right,
    pitch > 0 (up) points up; its length is the face box width (a sixth of the image without faces)."""
    cv2 = pen.cv2
    h, w = image.shape[:2]
    for i in range(len(gaze)):
        if gaze.faces is not None:
            x1, y1, x2, y2 = (float(v) for v in gaze.faces.xyxy[i])
            cv2.rectangle(image, (round(x1), round(y1)), (round(x2), round(y2)), (255, 194, 0), pen.width)
            cx, cy, length = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 10.0)
        else:
            cx, cy, length = w / 2, h / 2, max(w, h) / 6
        yaw, pitch = float(gaze.yaw[i]), float(gaze.pitch[i])
        dx = length * np.sin(yaw) * np.cos(pitch)
        dy = -length * np.sin(pitch)
        start = (round(cx), round(cy))
        end = (round(cx + dx), round(cy + dy))
        cv2.arrowedLine(image, start, end, (0, 0, 255), max(2, pen.width + 1), cv2.LINE_AA, tipLength=0.2)
        pen.label(image, f"yaw {np.degrees(yaw):.0f} pitch {np.degrees(pitch):.0f}", cx - length / 2, cy - length / 2,
                  (255, 194, 0))  # fmt: skip
