"""A package's recommended thresholds (families with one network file load it with ``ctx.network_file()``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from im_core import PackageContext, RecommendedParameters

__all__ = ["recommended_parameters"]


def recommended_parameters(ctx: PackageContext) -> RecommendedParameters | None:
    """The package's recommended thresholds, else the model's, else ``None`` (for ``resolve_detection_params``)."""
    return ctx.package.recommended_parameters or ctx.metadata.recommended_parameters
