"""Entry-point manifest of the ONNX Runtime backend (light: imports nothing heavy)."""

from im_core import BackendManifest

MANIFEST = BackendManifest(
    name="onnx",
    target="im_backend_onnx._backend:OnnxBackend",
    distribution="im-backend-onnx",
    extra=None,
    runtime_packages=("onnxruntime", "onnxruntime-gpu"),
    # below TensorRT engines on a GPU, first on the CPU
    priority={"cuda": 2, "cpu": 2},
    file_suffixes={".onnx": None},
    weights_files=("weights.onnx", "model.onnx"),
    aliases=("onnxruntime",),
    requirements="im_backend_onnx._requirements:OnnxRequirements",
)
