"""Promptable segmentation families: SAM (``embed`` once, ``segment`` per prompt)."""
