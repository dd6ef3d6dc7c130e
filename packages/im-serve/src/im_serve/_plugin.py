"""Entry-point manifest of the ``im serve`` command (light: imports nothing heavy)."""

from im_core import CommandManifest

SERVE_COMMAND = CommandManifest(
    name="serve",
    target="im_serve._cli:configure",
    distribution="im-serve",
    help="Serve models over HTTP: batching, bounded queues, KServe v2 health, Prometheus metrics, drain on SIGTERM.",
)
