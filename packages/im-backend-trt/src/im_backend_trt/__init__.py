"""im_backend_trt."""

__all__: list[str] = []
