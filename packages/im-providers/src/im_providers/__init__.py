"""im_providers: weights providers (Roboflow API, local registry folder, static HTTP(S) registry) and a
registry builder.

The providers are plugins of the ``im.weights_providers`` entry-point group; ``im_core`` imports them only when
one is used. See :mod:`im_providers._registry` for registering a provider of your own. Names are imported on
first use (PEP 562): reading the entry-point manifests (:mod:`im_providers._plugin`) imports no provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core.sdk import lazy_exports

_EXPORTS: dict[str, str] = {
    "HttpRegistryProvider": "im_providers._registry",
    "LocalRegistryProvider": "im_providers._registry",
    "RoboflowProvider": "im_providers._roboflow",
    "add_to_registry": "im_providers._builder",
    "parse_model_metadata": "im_providers._wire",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_providers._builder import add_to_registry
    from im_providers._registry import HttpRegistryProvider, LocalRegistryProvider
    from im_providers._roboflow import RoboflowProvider
    from im_providers._wire import parse_model_metadata
