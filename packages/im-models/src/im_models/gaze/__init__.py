"""Gaze estimation: L2CS-Net (yaw and pitch from two binned heads), optionally behind a face detector."""
