"""Entry-point manifest of the ``im ray-serve`` command (light: imports nothing heavy)."""

from im_core import CommandManifest

RAY_SERVE_COMMAND = CommandManifest(
    name="ray-serve",
    target="im_ray._cli:configure",
    distribution="im-ray",
    help="Serve models over HTTP on Ray Serve (im serve's API; @serve.batch, multiplexing, autoscaling).",
)
