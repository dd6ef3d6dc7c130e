"""Image embedding families: backbone embedders and a CLIP-style image/text interface."""
