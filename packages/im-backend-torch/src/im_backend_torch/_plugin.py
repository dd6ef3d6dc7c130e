"""Entry-point manifest of the PyTorch backend (light: imports nothing heavy)."""

from im_core import BackendManifest

MANIFEST = BackendManifest(
    name="torch",
    target="im_backend_torch._backend:TorchBackend",
    distribution="im-backend-torch",
    extra=None,
    runtime_packages=("torch",),
    # behind ONNX Runtime and TensorRT where they run; the backend for Apple GPUs
    priority={"cuda": 1, "cpu": 1, "mps": 1},
    file_suffixes={
        ".torchscript": "torchscript",
        ".ts": "torchscript",
        ".jit": "torchscript",
        ".pt2": "exported-program",
        ".pt": None,  # TorchScript or a state dict: the backend tells them apart
        ".pth": None,
    },
    weights_files=("weights.torchscript", "weights.pt2", "weights.pt", "weights.pth"),
    aliases=("torchscript", "torch-script"),
    requirements="im_backend_torch._requirements:TorchRequirements",
)
