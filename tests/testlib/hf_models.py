"""Tiny, randomly initialised Hugging Face models built with ``transformers``' own config classes (fixed seed) and
saved in the layout users download (``config.json`` + ``model.safetensors`` [+ processor / tokenizer files]).

No weights can be downloaded in this project's test environments: reference parity is proven on these folders
(the same weights and inputs through im and through the ``transformers`` pipeline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_clip(folder: Path, *, seed: int = 0, image_size: int = 32, context_length: int = 16) -> Path:
    """A CLIP with 2-layer, 32-wide towers, 16-d projections and a 300-token vocabulary, saved to ``folder``."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={
            "vocab_size": 300,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": context_length,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).eval().save_pretrained(str(folder))
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size=image_size).save_pretrained(str(folder))
    return folder


def toy_tokenizer(context_length: int = 16) -> Any:
    """texts -> (ids, mask) int64 (N, context_length): bos, one id per character, eos (for backend tests only)."""
    import numpy as np

    def tokenize(texts: list[str]) -> tuple[Any, Any]:
        ids = np.zeros((len(texts), context_length), np.int64)
        mask = np.zeros_like(ids)
        for i, text in enumerate(texts):
            seq = [1, *(3 + ord(c) % 290 for c in text[: context_length - 2]), 2]
            ids[i, : len(seq)], mask[i, : len(seq)] = seq, 1
        return ids, mask

    return tokenize


def tiny_depth_anything(folder: Path, *, seed: int = 0, size: int = 56, metric: bool = False) -> Path:
    """A Depth-Anything (4-layer, 32-wide DINOv2 backbone, patch 14) with its DPT image processor (``size`` × ``size``,
    keep aspect ratio, multiples of 14, bicubic, ImageNet mean/std), saved to ``folder``."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    try:
        from transformers import DPTImageProcessorPil as Processor
    except ImportError:  # pragma: no cover - older transformers: one (PIL) processor
        from transformers import DPTImageProcessor as Processor

    torch.manual_seed(seed)
    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=size,
        patch_size=14,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
        initializer_range=0.2,  # the default 0.02 makes a random 4-layer model's depth ~1e-7 everywhere
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        reassemble_factors=[4, 2, 1, 0.5],
        patch_size=14,
        depth_estimation_type="metric" if metric else "relative",
        max_depth=20 if metric else 1,
        initializer_range=0.2,
    )
    model = DepthAnythingForDepthEstimation(config).eval()
    with torch.no_grad():  # about half the pixels above the final ReLU: a depth map with structure, not zeros
        model.head.conv3.bias.fill_(20.0)
    model.save_pretrained(str(folder))
    Processor(
        size={"height": size, "width": size},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,
        do_pad=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(str(folder))
    return folder


def tiny_segformer(folder: Path, *, seed: int = 0, size: int = 64, labels: tuple[str, ...] | None = None) -> Path:
    """A SegFormer (4 stages of one block, 8-16 wide) with a 5-class head named like ADE20K classes (no background
    class) and its image processor (``size`` × ``size``, Pillow bilinear, ImageNet mean/std), saved to ``folder``."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    try:
        from transformers import SegformerImageProcessorPil as Processor
    except ImportError:  # pragma: no cover - older transformers: one (PIL) processor
        from transformers import SegformerImageProcessor as Processor

    names = labels or ("wall", "building", "sky", "floor", "tree")
    torch.manual_seed(seed)
    config = SegformerConfig(
        num_encoder_blocks=4,
        depths=[1, 1, 1, 1],
        sr_ratios=[8, 4, 2, 1],
        hidden_sizes=[8, 8, 16, 16],
        num_attention_heads=[1, 1, 2, 2],
        decoder_hidden_size=16,
        image_size=size,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        initializer_range=0.2,  # a random head with the default 0.02 gives near-uniform logits
    )
    SegformerForSemanticSegmentation(config).eval().save_pretrained(str(folder))
    Processor(
        size={"height": size, "width": size},
        resample=2,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(str(folder))
    return folder
