"""Entry-point manifest of the ONNX Runtime backend (light: imports nothing heavy)."""

from im_core import BackendManifest

MANIFEST = BackendManifest(
    name="onnx",
    target="im_backend_onnx._backend:OnnxBackend",
    distribution="im-backend-onnx",
    extra=None,
    runtime_packages=("onnxruntime", "onnxruntime-gpu"),
)
