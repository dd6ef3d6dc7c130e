"""im_providers."""

__all__: list[str] = []
