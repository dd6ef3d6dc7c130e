"""DETR-style detectors (RF-DETR and kin): set prediction, sigmoid scores, top-k, no NMS."""
