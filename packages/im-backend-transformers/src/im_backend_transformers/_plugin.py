"""Entry-point manifests of im-backend-transformers (light: imports nothing heavy)."""

from im_core import BackendManifest, CommandManifest, ModelEntry, ModelsManifest

MANIFEST = BackendManifest(
    name="transformers",
    target="im_backend_transformers._backend:TransformersBackend",
    distribution="im-backend-transformers",
    extra="transformers",
    runtime_packages=("transformers", "torch"),
    # behind every exported format: an exported package of the same model runs faster, without Python-level models
    priority={"cuda": 0.5, "cpu": 0.5, "mps": 0.5},
    # a Hugging Face folder: config.json next to its weights; pickle weights are recognised so that loading can
    # refuse them with the fix, instead of saying the folder has no weights
    weights_files=("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"),
    aliases=("hf", "huggingface"),
)

EXPORT_COMMAND = CommandManifest(
    name="export",
    target="im_backend_transformers._cli:configure",
    distribution="im-backend-transformers",
    help="Export a Hugging Face model folder to im packages (ONNX or TorchScript), one network file per part.",
)

#: the generative vision-language families: they need torch and transformers, so they live in this wheel (the
#: architecture names are those im_models.hf's config.json sniffer gives)
MODELS = ModelsManifest(
    entries=(
        ModelEntry(("florence-2", "florence2"), "vision-language", "im_backend_transformers._florence2:Florence2"),
        ModelEntry(("smolvlm", "idefics3"), "vision-language", "im_backend_transformers._smolvlm:SmolVLM"),
    ),
    distribution="im-backend-transformers",
)
