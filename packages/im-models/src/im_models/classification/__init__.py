"""Image classification families (ImageNet-style single-label and multi-label)."""
