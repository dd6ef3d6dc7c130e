"""im_backend_torch."""

__all__: list[str] = []
