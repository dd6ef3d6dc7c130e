"""Hugging Face model folders: what a ``config.json`` says about the model (no ``transformers`` import)."""

from im_models.hf._sniff import HF_MODEL_TYPES, sniff_hf_config

__all__ = ["HF_MODEL_TYPES", "sniff_hf_config"]
