"""SAM's parts: ``image_encoder`` (pixels → image embeddings, run once per image) and ``prompt_decoder`` (image
embeddings + a batch of prompts → low-resolution mask logits and predicted IoU), exportable to ONNX as two graphs.

The decoder takes every kind of prompt through one graph, the way the original SAM ONNX export does: points and
box corners are one sequence of labelled points, label ``1`` (foreground), ``0`` (background), ``2`` / ``3`` (a
box's top-left / bottom-right corner), ``-1`` (not a point: ``transformers`` appends one such point to a points-only
prompt) and ``-10`` (padding, embedded as zeros). A mask prompt is ``mask_input`` with ``has_mask_input`` = 1.
The decoder returns all ``1 + num_multimask_outputs`` masks; a family keeps mask 0 (single) or the others
(multimask), the slice ``transformers``' ``multimask_output`` takes.
"""

from __future__ import annotations

from typing import Any

from im_backend_transformers._parts import Part
from im_core import TensorSpec

__all__ = ["sam_parts"]


def sam_parts(model: Any) -> dict[str, Part]:
    """Parts of a ``transformers`` ``SamModel``.

    ``image_encoder``: ``pixel_values`` (N, 3, S, S) float32, normalised and padded as ``SamProcessor`` does →
    ``image_embeddings`` (N, C, S/16, S/16) float32.

    ``prompt_decoder`` (one image, batch axis 1; its P prompts on axis 1): ``image_embeddings`` (1, C, h, w);
    ``point_coords`` (1, P, K, 2) float32, x/y in pixels of the resized (not yet padded) network input;
    ``point_labels`` (1, P, K) float32; ``mask_input`` (1, P, 4h, 4w) float32 (previous low-resolution logits);
    ``has_mask_input`` (1, P) float32, 1 where ``mask_input`` is used → ``low_res_masks`` (1, P, M, 4h, 4w) float32
    logits and ``iou_predictions`` (1, P, M) float32, M = ``1 + num_multimask_outputs``; each prompt is K labelled
    points.
    """
    import torch

    cfg = model.config
    size = int(cfg.prompt_encoder_config.image_size)
    grid = int(cfg.prompt_encoder_config.image_embedding_size)
    channels = int(cfg.vision_config.output_channels)

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.sam = model

        def forward(self, pixel_values: Any) -> Any:
            return self.sam.vision_encoder(pixel_values).last_hidden_state

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.sam = model

        def forward(
            self, image_embeddings: Any, point_coords: Any, point_labels: Any, mask_input: Any, has_mask_input: Any
        ) -> tuple[Any, Any]:
            sam = self.sam
            coords, labels = point_coords[0], point_labels[0]  # one image: its P prompts are the batch here
            prompts = coords.shape[0]
            sparse = _embed_points(sam, coords, labels, size)  # (P, K, C)
            has = has_mask_input[0].reshape(-1, 1, 1, 1)
            no_mask = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
            dense = has * sam.prompt_encoder.mask_embed(mask_input[0][:, None]) + (1 - has) * no_mask
            image = image_embeddings.expand(prompts, -1, -1, -1)
            position = sam.get_image_wide_positional_embeddings().expand(prompts, -1, -1, -1)
            masks, iou = _decode_all(sam.mask_decoder, image, position, sparse[:, None], dense)
            return masks[None], iou[None]

    decoder = model.mask_decoder
    masks = 1 + int(decoder.num_multimask_outputs)

    def decoder_example() -> tuple[Any, ...]:
        coords = torch.tensor([[[10.0, 20.0], [30.0, 40.0], [0.0, 0.0]], [[5.0, 5.0], [50.0, 60.0], [3.0, 7.0]]])
        labels = torch.tensor([[1.0, 0.0, -1.0], [2.0, 3.0, 1.0]])
        return (
            torch.zeros((1, channels, grid, grid)),
            coords[None],
            labels[None],
            torch.zeros((1, 2, 4 * grid, 4 * grid)),
            torch.tensor([[0.0, 1.0]]),
        )

    return {
        "image_encoder": Part(
            module=Encoder().eval(),
            inputs=(TensorSpec("pixel_values", (None, 3, size, size), "float32"),),
            outputs=(TensorSpec("image_embeddings", (None, channels, grid, grid), "float32"),),
            example=lambda: (torch.zeros((2, 3, size, size)),),
            metadata={"image_size": str(size)},
        ),
        "prompt_decoder": Part(
            module=Decoder().eval(),
            inputs=(
                TensorSpec("image_embeddings", (1, channels, grid, grid), "float32"),
                TensorSpec("point_coords", (1, None, None, 2), "float32"),
                TensorSpec("point_labels", (1, None, None), "float32"),
                TensorSpec("mask_input", (1, None, 4 * grid, 4 * grid), "float32"),
                TensorSpec("has_mask_input", (1, None), "float32"),
            ),
            outputs=(
                TensorSpec("low_res_masks", (1, None, masks, 4 * grid, 4 * grid), "float32"),
                TensorSpec("iou_predictions", (1, None, masks), "float32"),
            ),
            example=decoder_example,
            metadata={"image_size": str(size)},
        ),
    }


def _embed_points(sam: Any, coords: Any, labels: Any, size: int) -> Any:
    """``SamPromptEncoder._embed_points`` / ``_embed_boxes`` as one labelled sequence (box corners: labels 2, 3)."""
    import torch

    encoder = sam.prompt_encoder
    normalised = (coords + 0.5) / size  # transformers: shift to the pixel centre, divide by the input size
    embedding = sam.shared_image_embedding(normalised)
    label = labels[..., None]
    embedding = torch.where(label == -1, encoder.not_a_point_embed.weight, embedding)
    embedding = torch.where(label == -10, torch.zeros_like(embedding), embedding)
    for value, table in enumerate(encoder.point_embed):
        embedding = torch.where(label == value, embedding + table.weight, embedding)
    return embedding


def _decode_all(decoder: Any, image: Any, position: Any, sparse: Any, dense: Any) -> tuple[Any, Any]:
    """``SamMaskDecoder.forward`` returning every mask token's mask and IoU (it slices them by
    ``multimask_output``; the family does that slice instead, so one graph serves both)."""
    import torch

    batch, channels, height, width = image.shape
    tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = tokens.repeat(batch, 1, 1, 1)
    tokens = torch.cat((tokens, sparse), dim=2).to(decoder.iou_token.weight.dtype)
    point_embedding, image_out = decoder.transformer(
        point_embeddings=tokens,
        image_embeddings=image + dense,
        image_positional_embeddings=position,
        attention_similarity=None,
        target_embedding=None,
    )
    iou_token = point_embedding[:, :, 0, :]
    mask_tokens = point_embedding[:, :, 1 : 1 + decoder.num_mask_tokens, :]
    image_out = image_out.transpose(2, 3).reshape(batch, channels, height, width)
    upscaled = decoder.upscale_conv1(image_out)
    upscaled = decoder.activation(decoder.upscale_layer_norm(upscaled))
    upscaled = decoder.activation(decoder.upscale_conv2(upscaled))
    hyper = torch.stack(
        [mlp(mask_tokens[:, :, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=2
    )
    _, up_channels, up_height, up_width = upscaled.shape
    upscaled = upscaled.reshape(batch, 1, up_channels, up_height * up_width)
    masks = (hyper @ upscaled).reshape(batch, -1, up_height, up_width)
    iou = decoder.iou_prediction_head(iou_token).reshape(batch, -1)
    return masks, iou
