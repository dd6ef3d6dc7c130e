"""Entry-point manifests of the TensorRT backend and its ``im trt`` command (light: import nothing heavy)."""

from im_core import BackendManifest, CommandManifest

MANIFEST = BackendManifest(
    name="trt",
    target="im_backend_trt._backend:TrtBackend",
    distribution="im-backend-trt",
    extra="trt",
    runtime_packages=("tensorrt-lean-cu13", "tensorrt-cu13", "tensorrt", "cuda-bindings"),
    priority={"cuda": 3, "cpu": 0},  # first on NVIDIA GPUs; engines never run on a CPU
    file_suffixes={".plan": None, ".engine": None},
    weights_files=("engine.plan",),
    aliases=("tensorrt",),
    requirements="im_backend_trt._requirements:TrtRequirements",
)

CLI = CommandManifest(
    name="trt",
    target="im_backend_trt._cli:configure",
    distribution="im-backend-trt",
    help="TensorRT tools (build an engine from ONNX).",
)
