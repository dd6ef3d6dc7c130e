"""im_providers: weights providers (Roboflow API, local registry folder, static HTTP(S) registry) and a
registry builder.

The providers are plugins of the ``im.weights_providers`` entry-point group; ``im_core`` imports them only when
one is used. See :mod:`im_providers._registry` for registering a provider of your own.
"""

from im_providers._builder import add_to_registry
from im_providers._registry import HttpRegistryProvider, LocalRegistryProvider
from im_providers._roboflow import RoboflowProvider
from im_providers._wire import parse_model_metadata

__all__ = [
    "HttpRegistryProvider",
    "LocalRegistryProvider",
    "RoboflowProvider",
    "add_to_registry",
    "parse_model_metadata",
]
