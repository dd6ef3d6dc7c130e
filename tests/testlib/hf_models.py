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


# -- generative vision-language models (im_backend_transformers' Florence-2 and SmolVLM / Idefics3 families) -----

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
