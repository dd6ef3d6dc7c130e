"""Entry-point manifests of the built-in weights providers and the ``im registry`` command (light: import nothing
heavy)."""

from im_core import CommandManifest, ProviderManifest

ROBOFLOW = ProviderManifest(
    name="roboflow",
    target="im_providers._roboflow:RoboflowProvider",
    distribution="im-providers",
    description="Roboflow API (GET /models/v1/external/weights), key from api_key or ROBOFLOW_API_KEY",
)
LOCAL = ProviderManifest(
    name="local",
    target="im_providers._registry:LocalRegistryProvider",
    distribution="im-providers",
    description="a registry folder holding <model_id>/metadata.json",
)
HTTP = ProviderManifest(
    name="http",
    target="im_providers._registry:HttpRegistryProvider",
    distribution="im-providers",
    description="the same registry served by any static HTTP(S) server or bucket",
)

REGISTRY_COMMAND = CommandManifest(
    name="registry",
    target="im_providers._cli:configure",
    distribution="im-providers",
    help="Build a self-hosted model registry (add).",
)
