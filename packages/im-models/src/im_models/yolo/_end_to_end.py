"""NMS-free detectors (YOLOv10, YOLO26): output (B, N, 6) rows ``x1 y1 x2 y2 score class`` in network pixels."""

from __future__ import annotations

from im_models.yolo._detection import YOLODetection

__all__ = ["YOLOEndToEndDetection"]


class YOLOEndToEndDetection(YOLODetection):
    """One-to-one heads need no NMS: thresholds, class filter and ``max_detections`` only."""

    end_to_end = True
