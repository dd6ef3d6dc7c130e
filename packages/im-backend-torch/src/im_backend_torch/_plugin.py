"""Entry-point manifest of the PyTorch backend (light: imports nothing heavy)."""

from im_core import BackendManifest

MANIFEST = BackendManifest(
    name="torch",
    target="im_backend_torch._backend:TorchBackend",
    distribution="im-backend-torch",
    extra=None,
    runtime_packages=("torch",),
)
