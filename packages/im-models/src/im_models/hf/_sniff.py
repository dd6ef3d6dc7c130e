"""Recognise a Hugging Face model folder from its ``config.json`` (given by the ``transformers`` backend's
``inspect`` as ``{"hf_config": <json text>}``) and name im's architecture and task for it.

Reading the config needs no ``transformers``: this runs wherever im-models is installed, so an exported package's
``config.json`` and the folder it came from are named alike.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

__all__ = ["HF_MODEL_TYPES", "sniff_hf_config"]

#: config.json ``model_type`` -> (im architecture, task)
HF_MODEL_TYPES: dict[str, tuple[str, str]] = {
    "clip": ("clip", "embedding"),
    "siglip": ("siglip", "embedding"),
    "dinov2": ("dinov2", "embedding"),
    "dinov3_vit": ("dinov3", "embedding"),
    "depth_anything": ("depth-anything", "depth-estimation"),
    "sam": ("sam", "promptable-segmentation"),
    "sam2": ("sam2", "promptable-segmentation"),
    "owlv2": ("owlv2", "open-vocabulary-object-detection"),
    "owlvit": ("owlvit", "open-vocabulary-object-detection"),
    "grounding-dino": ("grounding-dino", "open-vocabulary-object-detection"),
    "segformer": ("segformer", "semantic-segmentation"),
    "florence2": ("florence-2", "vision-language"),
    "idefics3": ("smolvlm", "vision-language"),
    "smolvlm": ("smolvlm", "vision-language"),
    "qwen2_5_vl": ("qwen2.5-vl", "vision-language"),
    "paligemma": ("paligemma", "vision-language"),
}

#: the task a ``transformers`` class name implies, for model types without an entry (so that the error for an
#: unsupported model names its architecture and the supported ones, instead of asking for a task)
_CLASS_SUFFIX_TASKS = (
    ("ForImageClassification", "classification"),
    ("ForObjectDetection", "object-detection"),
    ("ForInstanceSegmentation", "instance-segmentation"),
    ("ForSemanticSegmentation", "semantic-segmentation"),
    ("ForDepthEstimation", "depth-estimation"),
    ("ForConditionalGeneration", "vision-language"),
    ("ForCausalLM", "vision-language"),
)


def sniff_hf_config(file_metadata: dict[str, str], path: Path | None = None) -> dict[str, Any] | None:
    """``{"architecture", "task"}`` (and ``class_names`` from a non-default ``id2label``) for a Hugging Face
    folder, or ``None`` when ``file_metadata`` holds no ``hf_config``.

    A ``model_type`` im has no family for is still named (architecture = the model type, task from the class name
    or ``embedding``), so loading fails with the list of supported architectures.
    """
    text = file_metadata.get("hf_config") if isinstance(file_metadata, dict) else None
    if not isinstance(text, str):
        return None
    try:
        config = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        return None
    model_type = config["model_type"].strip().lower()
    classes = [c for c in config.get("architectures") or () if isinstance(c, str)]
    if model_type in HF_MODEL_TYPES:
        architecture, task = HF_MODEL_TYPES[model_type]
    else:
        architecture = model_type
        task = next((t for suffix, t in _CLASS_SUFFIX_TASKS for c in classes if c.endswith(suffix)), "embedding")
    found: dict[str, Any] = {"architecture": architecture, "task": task}
    labels = config.get("id2label")
    if isinstance(labels, dict) and labels and not _default_labels(labels):
        with contextlib.suppress(ValueError, TypeError):
            found["class_names"] = [str(labels[k]) for k in sorted(labels, key=int)]
    return found


def _default_labels(labels: dict[str, Any]) -> bool:
    """transformers writes ``{"0": "LABEL_0", "1": "LABEL_1"}`` when a model has no class names."""
    return all(str(v) == f"LABEL_{k}" for k, v in labels.items())
