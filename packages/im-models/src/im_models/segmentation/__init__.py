"""Semantic segmentation (DeepLabV3+, RF-DETR, YOLO26, SegFormer) and YOLACT instance segmentation."""
