"""Face detectors: MediaPipe BlazeFace (SSD anchors, weighted NMS) and CenterFace (heatmap peaks), with landmarks."""
