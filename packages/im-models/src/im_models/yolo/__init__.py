"""The YOLO families (Ultralytics export layout, YOLOv5, YOLOv10/YOLO26 end-to-end). Import submodules directly."""
