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


def tiny_sam(folder: Path, *, seed: int = 0, image_size: int = 128) -> Path:
    """A SAM with a 2-layer, 32-wide ViT (patch 16), 32 output channels and a 2-layer mask decoder, saved to
    ``folder`` with its (Pillow) image processor.

    Weights are drawn again (fan-in scaled normal, seeded) after construction: SAM's own initialisation gives
    mask logits of ~1e-5, where the ``> 0`` threshold would compare rounding noise instead of masks.
    """
    import math

    import torch
    from transformers import SamConfig, SamModel
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    torch.manual_seed(seed)
    config = SamConfig(
        vision_config={
            "hidden_size": 32,
            "output_channels": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 16,
            "window_size": 4,
            "global_attn_indexes": [1],
            "num_pos_feats": 16,
            "mlp_dim": 64,
        },
        prompt_encoder_config={"hidden_size": 32, "image_size": image_size, "patch_size": 16, "mask_input_channels": 8},
        mask_decoder_config={
            "hidden_size": 32,
            "mlp_dim": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
    )
    model = SamModel(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or "positional_embedding" in name:
                continue
            if param.dim() > 1:
                param.normal_(0, 1.0 / math.sqrt(param[0].numel()))
            elif name.endswith("bias"):
                param.normal_(0, 0.1)
    model.save_pretrained(str(folder))
    low = image_size // 4
    SamImageProcessorPil(
        size={"longest_edge": image_size},
        pad_size={"height": image_size, "width": image_size},
        mask_size={"longest_edge": low},
        mask_pad_size={"height": low, "width": low},
    ).save_pretrained(str(folder))
    return folder


def tiny_sam2(folder: Path, *, seed: int = 1, image_size: int = 128) -> Path:
    """A SAM 2 with a 5-block, 4-stage Hiera backbone (widths 16-128, one global-attention block), a 32-wide FPN
    and a 2-layer mask decoder, saved to ``folder`` with the ``preprocessor_config.json`` of a ``Sam2ImageProcessor``
    (written as JSON: that processor needs torchvision, which is not installed here).

    Weights are drawn again (fan-in scaled normal, seeded) after construction, as for :func:`tiny_sam`; with seed 0
    the single-mask token answers every prompt with an all-foreground mask, seed 1 gives varied masks.
    """
    import json
    import math

    import torch
    from transformers import Sam2Config, Sam2Model

    torch.manual_seed(seed)
    s = image_size
    config = Sam2Config(
        vision_config={
            "backbone_config": {
                "model_type": "sam2_hiera_det_model",
                "hidden_size": 16,
                "num_attention_heads": 1,
                "image_size": [s, s],
                "blocks_per_stage": [1, 1, 2, 1],
                "embed_dim_per_stage": [16, 32, 64, 128],
                "num_attention_heads_per_stage": [1, 1, 1, 1],
                "window_size_per_stage": [4, 4, 2, 2],
                "global_attention_blocks": [3],
                "window_positional_embedding_background_size": [4, 4],
            },
            "backbone_channel_list": [128, 64, 32, 16],
            "backbone_feature_sizes": [[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
            "fpn_hidden_size": 32,
        },
        prompt_encoder_config={"hidden_size": 32, "image_size": s, "patch_size": 16, "mask_input_channels": 8},
        mask_decoder_config={
            "hidden_size": 32,
            "mlp_dim": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
    )
    model = Sam2Model(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or "positional_embedding" in name:
                continue
            if param.dim() > 1:
                param.normal_(0, 1.0 / math.sqrt(param[0].numel()))
            elif name.endswith("bias") or "no_memory" in name:
                param.normal_(0, 0.1)
    model.save_pretrained(str(folder))
    processor = {
        "image_processor_type": "Sam2ImageProcessor",
        "processor_class": "Sam2Processor",
        "do_resize": True,
        "size": {"height": s, "width": s},
        "mask_size": {"height": s // 4, "width": s // 4},
        "resample": 2,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
        "do_convert_rgb": True,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))
    return folder


#: words the tiny CLIP-style BPE vocabularies merge into whole tokens (every other word falls back to bytes)
_BPE_WORDS = ("a", "cat", "photo", "of", "the", "remote", "control", "person", "dog", "face")


def tiny_clip_bpe_tokenizer(*, pad_token: str = "!", model_max_length: int = 16) -> Any:
    """A ``transformers`` ``CLIPTokenizer`` with CLIP's byte-level BPE layout and a 500-odd-token vocabulary: the
    256 byte symbols (alone and word-final), merges that spell :data:`_BPE_WORDS`, then ``<|startoftext|>`` and
    ``<|endoftext|>`` as the two highest ids (as in CLIP, where the text tower pools at the largest id)."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for s in [*symbols, *(f"{s}</w>" for s in symbols)]:
        vocab.setdefault(s, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _BPE_WORDS:
        left = word[0]
        for i, ch in enumerate(word[1:], start=1):
            right = ch + ("</w>" if i == len(word) - 1 else "")
            merges.append((left, right))
            left = left + right
            vocab.setdefault(left, len(vocab))
    merges = list(dict.fromkeys(merges))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, pad_token=pad_token, model_max_length=model_max_length)


def tiny_owlv2(folder: Path, *, seed: int = 0, image_size: int = 64, patch_size: int = 8) -> Path:
    """An OWLv2 detector (``Owlv2ForObjectDetection``) with 2-layer, 32-wide towers, a 16-token context and
    ``image_size`` / ``patch_size`` patches, saved with its processor (``Owlv2ImageProcessor`` resizing to
    ``image_size``, the tiny CLIP BPE tokenizer) to ``folder``."""
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    tokenizer = tiny_clip_bpe_tokenizer()
    torch.manual_seed(seed)
    config = Owlv2Config(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "pad_token_id": 0,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch_size,
        },
        projection_dim=32,
    )
    Owlv2ForObjectDetection(config).eval().save_pretrained(str(folder))
    processor = Owlv2ImageProcessor(size={"height": image_size, "width": image_size})
    Owlv2Processor(image_processor=processor, tokenizer=tokenizer).save_pretrained(str(folder))
    return folder


def tiny_bert_wordpiece_tokenizer() -> Any:
    """A ``transformers`` ``BertTokenizer`` (WordPiece, lower-cased) whose special ids are BERT-base-uncased's where
    Grounding DINO hard-codes them (``[CLS]`` 101, ``[SEP]`` 102, ``.`` 1012, ``?`` 1029), with letters, digits,
    ``##`` continuations and the words of :data:`_BPE_WORDS` as whole tokens; 1100 ids."""
    from transformers import BertTokenizer

    fixed = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1012: ".", 1029: "?"}
    pieces = [*"abcdefghijklmnopqrstuvwxyz0123456789,!'-"]
    pieces += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    pieces += [w for w in _BPE_WORDS if len(w) > 1] + ["##s", "##ing", "##ed", "remo", "##te"]
    tokens = dict(fixed)
    free = (i for i in range(1100) if i not in fixed)
    for piece in pieces:
        tokens[next(free)] = piece
    for i in free:
        tokens[i] = f"[unused{i}]"
    vocab = {tokens[i]: i for i in range(1100)}
    return BertTokenizer(vocab=vocab, do_lower_case=True)


def tiny_grounding_dino(folder: Path, *, seed: int = 0, shortest_edge: int = 96, longest_edge: int = 144) -> Path:
    """A Grounding DINO (``GroundingDinoForObjectDetection``): a 1-block-per-stage Swin backbone, a 1-layer 32-wide
    BERT, 1 encoder and 2 decoder layers (the fewest its weight tying takes) of width 32 and 30 queries, saved with
    its processor (images resized to ``shortest_edge`` / ``longest_edge``: 96 is the least that leaves the last
    feature level 2 × 2 for its group norm; the tiny BERT WordPiece tokenizer) to ``folder``."""
    import torch
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    tokenizer = tiny_bert_wordpiece_tokenizer()
    torch.manual_seed(seed)
    config = GroundingDinoConfig(
        backbone_config={
            "model_type": "swin",
            "embed_dim": 8,
            "depths": [1, 1, 1, 1],
            "num_heads": [1, 1, 1, 1],
            "window_size": 4,
            "out_indices": [2, 3, 4],
        },
        text_config={
            "model_type": "bert",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
        },
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=30,
        encoder_n_points=2,
        decoder_n_points=2,
    )
    GroundingDinoForObjectDetection(config).eval().save_pretrained(str(folder))
    size = {"shortest_edge": shortest_edge, "longest_edge": longest_edge}
    processor = GroundingDinoImageProcessor(size=size)
    GroundingDinoProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(str(folder))
    return folder


_CORPUS = (
    "a photo of a cat on the mat. The dog runs in the park, and a red car waits by the house!",
    "Locate the objects with category name in the image. What does the image describe?",
    "Describe in detail what is shown in the image. Describe with a paragraph what is shown in the image.",
    "What is the text in the image? What is the text in the image, with regions?",
    "Locate the phrases in the caption: Locate the region proposals in the image. with their descriptions.",
    "User: Assistant: What is in this picture? How many people are there? Answer in one word, 0123456789.",
)


def _byte_level_bpe(special: list[str], vocab_size: int = 320) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on a few sentences (no download), ``special`` first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS) * 4, trainer)
    return tok


#: what Florence-2's processor parses with (the original model's post-processing configuration)
FLORENCE_POST_PROCESSOR_CONFIG = {
    "ocr": {"PATTERN": r"(.+?)" + r"<loc_(\d+)>" * 8, "AREA_THRESHOLD": 0.0},
    "phrase_grounding": {"banned_grounding_tokens": ["the image", "image", "it"]},
    "pure_text": {},
    "description_with_bboxes": {},
    "description_with_polygons": {},
    "polygons": {},
    "bboxes": {},
    "description_with_bboxes_or_polygons": {},
}


def tiny_florence2(folder: Path, *, seed: int = 0, image_size: int = 64) -> Path:
    """A Florence-2 (DaViT 4 stages of 1 block, 8-32 wide; BART 1+1 layers, 32 wide) with a trained byte-level BPE
    vocabulary plus Florence's special tokens (``<loc_0>``..``<loc_999>``, ``<od>``..., ``<image>``), its
    ``Florence2Processor`` (CLIP image processor at ``image_size``², 5 image tokens), saved to ``folder``.

    Word embeddings are not tied, so the random decoder does not only repeat its start token."""
    import torch
    from transformers import (
        BartTokenizer,
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    tok = _byte_level_bpe(["<s>", "<pad>", "</s>", "<unk>"])
    tokenizer = BartTokenizer(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    extra = ["<od>", "</od>", "<ocr>", "</ocr>", *(f"<loc_{i}>" for i in range(1000))]
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [*extra, "<cap>", "</cap>", "<poly>", "</poly>", "<sep>"]}
    )
    torch.manual_seed(seed)
    config = Florence2Config(
        vision_config={
            "depths": (1, 1, 1, 1),
            "embed_dim": (8, 16, 16, 32),
            "num_heads": (1, 2, 2, 2),
            "num_groups": (1, 2, 2, 2),
            "window_size": 2,
            "projection_dim": 32,
            "drop_path_rate": 0.0,
            "max_position_embeddings": 8,
            "max_temporal_embeddings": 4,
        },
        text_config={
            "model_type": "bart",
            "vocab_size": len(tokenizer),
            "d_model": 32,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "decoder_ffn_dim": 32,
            "max_position_embeddings": 128,
            "bos_token_id": 0,
            "pad_token_id": 1,
            "eos_token_id": 2,
            "decoder_start_token_id": 2,
            "tie_word_embeddings": False,
        },
        image_token_id=tokenizer.image_token_id,
        tie_word_embeddings=False,
    )
    Florence2ForConditionalGeneration(config).eval().save_pretrained(str(folder))
    image_processor = CLIPImageProcessor(
        size={"height": image_size, "width": image_size},
        do_center_crop=False,
        image_seq_length=(image_size // 32) ** 2 + 1,
    )
    Florence2Processor(
        image_processor=image_processor, tokenizer=tokenizer, post_processor_config=FLORENCE_POST_PROCESSOR_CONFIG
    ).save_pretrained(str(folder))
    return folder


#: SmolVLM's chat template (Idefics3 layout): "User:<image>question<end_of_utterance>\nAssistant:"
_IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def tiny_smolvlm(folder: Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """A SmolVLM in the Idefics3 layout (``model_type`` ``idefics3``, as SmolVLM-Instruct): SigLIP-style vision
    tower (1 layer, 32 wide, 8-px patches) with pixel shuffle (×2) into a 2-layer, 32-wide Llama, a trained
    byte-level BPE vocabulary with the image tokens, its ``Idefics3Processor`` (no image splitting, ``image_size``²,
    4 image tokens) and chat template, saved to ``folder``."""
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        PreTrainedTokenizerFast,
    )

    special = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>"]
    tok = _byte_level_bpe([*special, "<global-img>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=["<image>", "<fake_token_around_image>", "<global-img>"],
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in special}
    torch.manual_seed(seed)
    config = Idefics3Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 8,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 256,
            "bos_token_id": ids["<|im_start|>"],
            "eos_token_id": ids["<end_of_utterance>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": False,
        },
        scale_factor=2,
        image_token_id=ids["<image>"],
        tie_word_embeddings=False,
    )
    Idefics3ForConditionalGeneration(config).eval().save_pretrained(str(folder))
    image_processor = Idefics3ImageProcessor(
        do_image_splitting=False,
        size={"longest_edge": image_size},
        max_image_size={"longest_edge": image_size},
    )
    Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=(image_size // 8) ** 2 // 4,
        chat_template=_IDEFICS3_CHAT_TEMPLATE,
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
