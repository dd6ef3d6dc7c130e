"""SAM 2's parts in image mode: ``image_encoder`` (pixels → the image embedding and the two high-resolution feature
maps the mask decoder adds back while upscaling, run once per image) and ``prompt_decoder`` (those + a batch of
prompts → low-resolution mask logits, predicted IoU and object-score logits), exportable to ONNX as two graphs.

As for SAM (:mod:`im_backend_transformers._sam`) the decoder takes every prompt kind as one labelled point sequence:
``1`` / ``0`` (foreground / background point), ``2`` / ``3`` (a box's corners), ``-1`` (not a point: SAM 2 appends
one after a points-only prompt and one after a box) and ``-10`` (padding). It returns every mask token's output;
the family takes transformers' slice (``multimask_output``) and its single-mask stability fallback
(``dynamic_multimask_via_stability``, from the part's metadata) in numpy, so one graph serves both.
"""

from __future__ import annotations

from typing import Any

from im_backend_transformers._parts import Part
from im_core import TensorSpec

__all__ = ["sam2_parts"]


def sam2_parts(model: Any) -> dict[str, Part]:
    """Parts of a ``transformers`` ``Sam2Model`` (image mode: no memory, ``no_memory_embedding`` added).

    ``image_encoder``: ``pixel_values`` (N, 3, S, S) float32, resized and normalised as ``Sam2Processor`` does →
    ``image_embeddings`` (N, C, S/16, S/16), ``high_res_feats_0`` (N, C/8, S/4, S/4) and ``high_res_feats_1``
    (N, C/4, S/8, S/8) float32 (``Sam2Model.get_image_embeddings``: the decoder's ``conv_s0`` / ``conv_s1`` already
    applied).

    ``prompt_decoder`` (one image, batch axis 1; its P prompts on axis 1): the three encoder outputs (batch 1);
    ``point_coords`` (1, P, K, 2) float32, x/y in pixels of the S×S network input; ``point_labels`` (1, P, K)
    float32; ``mask_input`` (1, P, S/4, S/4) float32 (previous low-resolution logits); ``has_mask_input`` (1, P)
    float32 → ``low_res_masks`` (1, P, M, S/4, S/4) float32 logits, ``iou_predictions`` (1, P, M) and
    ``object_score_logits`` (1, P, 1), M = ``1 + num_multimask_outputs``.
    """
    import torch

    cfg = model.config
    size = int(cfg.prompt_encoder_config.image_size)
    grid = size // int(cfg.prompt_encoder_config.patch_size)
    channels = int(cfg.vision_config.fpn_hidden_size)
    sizes = [tuple(int(v) for v in s) for s in cfg.vision_config.backbone_feature_sizes]
    decoder_cfg = cfg.mask_decoder_config

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.sam = model

        def forward(self, pixel_values: Any) -> tuple[Any, Any, Any]:
            sam = self.sam
            batch = pixel_values.shape[0]
            maps = sam.vision_encoder(pixel_values, return_dict=True).fpn_hidden_states
            s0 = sam.mask_decoder.conv_s0(maps[0])
            s1 = sam.mask_decoder.conv_s1(maps[1])
            last = maps[-1] + sam.no_memory_embedding.reshape(1, -1, 1, 1)
            return last.reshape(batch, -1, *sizes[-1]), s0, s1

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.sam = model

        def forward(
            self,
            image_embeddings: Any,
            high_res_feats_0: Any,
            high_res_feats_1: Any,
            point_coords: Any,
            point_labels: Any,
            mask_input: Any,
            has_mask_input: Any,
        ) -> tuple[Any, Any, Any]:
            sam = self.sam
            encoder = sam.prompt_encoder
            sparse = encoder._embed_points(point_coords, point_labels.long(), pad=False)  # (1, P, K, C)
            has = has_mask_input[0].reshape(-1, 1, 1, 1)
            no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
            dense = has * encoder.mask_embed(mask_input[0][:, None]) + (1 - has) * no_mask  # (P, C, h, w)
            position = sam.get_image_wide_positional_embeddings()
            return _decode_all(
                sam.mask_decoder, image_embeddings, position, sparse, dense, [high_res_feats_0, high_res_feats_1]
            )

    masks = 1 + int(model.mask_decoder.num_multimask_outputs)
    low = 4 * grid
    feat_specs = (
        TensorSpec("image_embeddings", (None, channels, *sizes[2]), "float32"),
        TensorSpec("high_res_feats_0", (None, channels // 8, *sizes[0]), "float32"),
        TensorSpec("high_res_feats_1", (None, channels // 4, *sizes[1]), "float32"),
    )

    def decoder_example() -> tuple[Any, ...]:
        coords = torch.tensor([[[10.0, 20.0], [30.0, 40.0], [0.0, 0.0]], [[5.0, 5.0], [50.0, 60.0], [0.0, 0.0]]])
        labels = torch.tensor([[1.0, 0.0, -1.0], [2.0, 3.0, -1.0]])
        return (
            torch.zeros((1, channels, *sizes[2])),
            torch.zeros((1, channels // 8, *sizes[0])),
            torch.zeros((1, channels // 4, *sizes[1])),
            coords[None],
            labels[None],
            torch.zeros((1, 2, low, low)),
            torch.tensor([[0.0, 1.0]]),
        )

    stability = {
        "image_size": str(size),
        "dynamic_multimask_via_stability": str(bool(decoder_cfg.dynamic_multimask_via_stability)).lower(),
        "dynamic_multimask_stability_delta": repr(float(decoder_cfg.dynamic_multimask_stability_delta)),
        "dynamic_multimask_stability_thresh": repr(float(decoder_cfg.dynamic_multimask_stability_thresh)),
    }
    return {
        "image_encoder": Part(
            module=Encoder().eval(),
            inputs=(TensorSpec("pixel_values", (None, 3, size, size), "float32"),),
            outputs=feat_specs,
            example=lambda: (torch.zeros((2, 3, size, size)),),
            metadata={"image_size": str(size)},
        ),
        "prompt_decoder": Part(
            module=Decoder().eval(),
            inputs=(
                *(TensorSpec(s.name, (1, *s.shape[1:]), "float32") for s in feat_specs),
                TensorSpec("point_coords", (1, None, None, 2), "float32"),
                TensorSpec("point_labels", (1, None, None), "float32"),
                TensorSpec("mask_input", (1, None, low, low), "float32"),
                TensorSpec("has_mask_input", (1, None), "float32"),
            ),
            outputs=(
                TensorSpec("low_res_masks", (1, None, masks, low, low), "float32"),
                TensorSpec("iou_predictions", (1, None, masks), "float32"),
                TensorSpec("object_score_logits", (1, None, 1), "float32"),
            ),
            example=decoder_example,
            metadata=stability,
        ),
    }


def _decode_all(
    decoder: Any, image: Any, position: Any, sparse: Any, dense: Any, high_res: list[Any]
) -> tuple[Any, Any, Any]:
    """``Sam2MaskDecoder.forward`` for one image and P prompts, returning every mask token's mask and IoU (it
    slices them by ``multimask_output``; the family does that instead, so one graph serves both)."""
    import torch

    _, channels, height, width = image.shape
    prompts = sparse.shape[1]
    tokens = torch.cat([decoder.obj_score_token.weight, decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = tokens.repeat(1, prompts, 1, 1)
    tokens = torch.cat((tokens, sparse), dim=2).to(decoder.iou_token.weight.dtype)
    embedded = (image + dense).reshape(prompts, channels, height, width)  # dense: (P, C, h, w); image: batch 1
    point_embedding, image_out = decoder.transformer(
        point_embeddings=tokens.reshape(prompts, 1, tokens.shape[2], tokens.shape[3]),
        image_embeddings=embedded,
        image_positional_embeddings=position.expand(prompts, -1, -1, -1),
        attention_similarity=None,
        target_embedding=None,
    )
    iou_token = point_embedding[:, :, 1, :]
    mask_tokens = point_embedding[:, :, 2 : 2 + decoder.num_mask_tokens, :]
    image_out = image_out.transpose(2, 3).reshape(prompts, channels, height, width)
    feat_s0, feat_s1 = high_res
    upscaled = decoder.upscale_conv1(image_out) + feat_s1
    upscaled = decoder.activation(decoder.upscale_layer_norm(upscaled))
    upscaled = decoder.activation(decoder.upscale_conv2(upscaled) + feat_s0)
    hyper = torch.stack(
        [mlp(mask_tokens[:, :, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=2
    )
    _, up_channels, up_height, up_width = upscaled.shape
    upscaled = upscaled.reshape(prompts, 1, up_channels, up_height * up_width)
    masks = (hyper @ upscaled).reshape(1, prompts, -1, up_height, up_width)
    iou = decoder.iou_prediction_head(iou_token).reshape(1, prompts, -1)
    objects = decoder.pred_obj_score_head(point_embedding[:, :, 0, :]).reshape(1, prompts, 1)
    return masks, iou, objects
