"""Semantic segmentation (DeepLabV3+, RF-DETR) and YOLACT instance segmentation."""
