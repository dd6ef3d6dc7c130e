"""Entry-point manifest of the TensorRT backend (light: imports nothing heavy)."""

from im_core import BackendManifest

MANIFEST = BackendManifest(
    name="trt",
    target="im_backend_trt._backend:TrtBackend",
    distribution="im-backend-trt",
    extra="trt",
    runtime_packages=("tensorrt-lean-cu13", "tensorrt-cu13", "tensorrt", "cuda-bindings"),
)
