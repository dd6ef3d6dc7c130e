"""Tiny, randomly initialised Hugging Face models built with ``transformers``' own config classes (fixed seed) and
saved in the layout users download (``config.json`` + ``model.safetensors`` [+ processor / tokenizer files]).

No weights can be downloaded in this project's test environments: reference parity is proven on these folders
(the same weights and inputs through im and through the ``transformers`` pipeline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_clip(folder: Path, *, seed: int = 0, image_size: int = 32, context_length: int = 16) -> Path:
    """A CLIP with 2-layer, 32-wide towers and 16-d projections, saved to ``folder`` with its processor: the image
    processor and a byte-level BPE tokenizer trained here (:func:`clip_tokenizer_files`: ``vocab.json``,
    ``merges.txt``, and ``tokenizer.json`` + ``tokenizer_config.json`` as ``save_pretrained`` writes them), like a
    real download."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    tokens = clip_tokenizer_files(folder)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={
            "vocab_size": tokens["vocab_size"],
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": context_length,
            "bos_token_id": tokens["bos_token_id"],
            "eos_token_id": tokens["eos_token_id"],
            "pad_token_id": tokens["eos_token_id"],
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
    images = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size=image_size)
    text = CLIPTokenizer.from_pretrained(str(folder), model_max_length=context_length)
    CLIPProcessor(image_processor=images, tokenizer=text).save_pretrained(str(folder))
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


#: words the tiny CLIP vocabularies are trained on (fixed, so the trained merges are too)
_CORPUS_WORDS = [
    "a",
    "photo",
    "of",
    "the",
    "cat",
    "dog",
    "bird",
    "car",
    "person",
    "astronaut",
    "camera",
    "grass",
    "space",
    "red",
    "green",
    "blue",
    "picture",
    "image",
    "on",
    "in",
    "with",
    "and",
    "an",
    "small",
    "large",
    "two",
    "people",
    "running",
    "sitting",
    "street",
    "city",
    "night",
    "day",
    "sky",
    "water",
    "tree",
    "house",
    "café",
    "naïve",
    "über",
    "zoë",
    "東京",
    "写真",
    "猫",
    "🐱",
    "😀",
    "it's",
    "we're",
    "they've",
    "i'm",
    "you'll",
    "he'd",
    "don't",
    "123",
    "4567",
    "hello,",
    "world!",
    "(x)",
    "[y]",
    "{z}",
    "#tag",
    "@me",
]


def clip_tokenizer_files(folder: Path, *, merges: int = 300, seed: int = 0) -> dict[str, int]:
    """Train a byte-level BPE vocabulary with ``tokenizers`` and write it in CLIP's slow-tokenizer format.

    ``vocab.json``: the 256 byte symbols, the same with ``</w>``, the merged symbols in merge order, then
    ``<|startoftext|>`` and ``<|endoftext|>`` (last, as in OpenAI's CLIP); ``merges.txt``: ``#version: 0.2`` then
    one merge per line. Returns ``{"vocab_size", "bos_token_id", "eos_token_id"}``.
    """
    import json
    import random

    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    rng = random.Random(seed)
    corpus = [" ".join(rng.choice(_CORPUS_WORDS) for _ in range(rng.randint(1, 12))) for _ in range(2000)]
    split = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    trainer = trainers.BpeTrainer(
        vocab_size=100_000, initial_alphabet=alphabet, end_of_word_suffix="</w>", show_progress=False
    )
    tok.train_from_iterator(corpus, trainer)
    pairs = [tuple(m) if isinstance(m, list) else tuple(m.split()) for m in json.loads(tok.to_str())["model"]["merges"]]
    pairs = pairs[:merges]
    symbols = [*alphabet, *(a + "</w>" for a in alphabet)]
    symbols += [a + b for a, b in pairs if a + b not in set(symbols)]
    symbols += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {s: i for i, s in enumerate(dict.fromkeys(symbols))}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in pairs)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"vocab_size": len(vocab), "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"]}


def tiny_dinov2(folder: Path, *, seed: int = 0) -> Path:
    """A DINOv2 with a 2-layer, 32-wide ViT (patch 8, pre-trained size 40: a 5x5 position grid) and its image
    processor as DINOv2 ships it, scaled down (short side 36 bicubic, centre crop 32: a 4x4 grid, so the position
    embeddings are interpolated like the real 518 → 224), saved to ``folder``."""
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    config = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, image_size=40, patch_size=8
    )
    Dinov2Model(config).eval().save_pretrained(str(folder))
    BitImageProcessor(
        size={"shortest_edge": 36},
        crop_size={"height": 32, "width": 32},
        resample=3,
        do_center_crop=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(str(folder))
    return folder


def tiny_dinov3(folder: Path, *, seed: int = 0) -> Path:
    """A DINOv3 ViT (2 layers, 32 wide, patch 8, 2 register tokens, RoPE) saved to ``folder`` with the
    ``preprocessor_config.json`` DINOv3 ships, scaled down (``DINOv3ViTImageProcessorFast``: stretch to 32x32,
    bilinear on rescaled floats, ImageNet mean/std). That processor exists only as a torchvision backend, so the
    file is written here rather than by ``save_pretrained``."""
    import json

    import torch
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(seed)
    config = DINOv3ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=8,
        image_size=32, num_register_tokens=2,
    )  # fmt: skip
    DINOv3ViTModel(config).eval().save_pretrained(str(folder))
    processor = {
        "image_processor_type": "DINOv3ViTImageProcessorFast",
        "do_resize": True,
        "size": {"height": 32, "width": 32},
        "resample": 2,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))
    return folder
