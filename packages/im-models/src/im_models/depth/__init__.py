"""Monocular depth estimation (Depth-Anything v1/v2, relative and metric)."""

from im_models.depth._depth_anything import DepthAnything

__all__ = ["DepthAnything"]
