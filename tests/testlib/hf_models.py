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
