"""SAM 2 (Segment Anything 2) in image mode: the :class:`SAMModel` flow (image encoder once per image, cached; a
light prompt decoder per prompt) with SAM 2's networks and processing.

Package layout: a Hugging Face ``Sam2Model`` folder (``config.json``, ``model.safetensors``,
``preprocessor_config.json``) run by the ``transformers`` backend, or what ``im export`` makes of it
(``image_encoder.onnx`` + ``prompt_decoder.onnx`` + the same JSON files); the parts are those of
:mod:`im_backend_transformers._sam2`. The encoder also returns two high-resolution feature maps that travel in the
:class:`~im_core.ImageEmbedding` to the decoder.

Differences from SAM, all from ``Sam2Processor`` / ``Sam2Model``: the image is resized to the square
``size["height"]×size["width"]`` (aspect ratio not kept, no padding; Pillow bilinear, antialiased), prompts are
scaled to that square, a ``not a point`` token follows a box too, the low-resolution logits go straight to the
original size (bilinear, ``align_corners=False``), and a single-mask request falls back to the best multimask
output when mask 0 is unstable (``dynamic_multimask_via_stability``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from im_core import ImageEmbedding, LoadedModelInfo, PackageContext, Prompts, PromptSegmentation, RLEMask, Session
from im_core.errors import CorruptedModelPackageError
from im_core.sdk import check_names
from im_models.common import hf_image_processor_config, resize_like_pil, resize_like_torch, to_numpy
from im_models.segment_anything._sam import _IMAGENET_MEAN, _IMAGENET_STD, SAMModel

__all__ = ["SAM2Model"]

_FEATURES = ("image_embeddings", "high_res_feats_0", "high_res_feats_1")


@dataclass(frozen=True)
class Sam2Preprocessing:
    """What ``Sam2Processor`` does to an image (from ``preprocessor_config.json``)."""

    height: int = 1024
    width: int = 1024
    rescale_factor: float = 1 / 255
    mean: tuple[float, float, float] = _IMAGENET_MEAN
    std: tuple[float, float, float] = _IMAGENET_STD
    do_normalize: bool = True
    mask_threshold: float = 0.0

    @classmethod
    def from_json(cls, data: Any) -> Sam2Preprocessing:
        """From the image-processor settings (:func:`~im_models.common.hf_image_processor_config`)."""
        if not isinstance(data, dict):
            raise CorruptedModelPackageError("preprocessor_config.json must hold a JSON object.")
        size = data.get("size") or {}
        if not isinstance(size, dict):
            size = {"height": int(size), "width": int(size)}
        return cls(
            height=int(size.get("height", 1024)),
            width=int(size.get("width", 1024)),
            rescale_factor=float(data.get("rescale_factor", 1 / 255)) if data.get("do_rescale", True) else 1.0,
            mean=tuple(float(v) for v in data.get("image_mean", _IMAGENET_MEAN)),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data.get("image_std", _IMAGENET_STD)),  # type: ignore[arg-type]
            do_normalize=bool(data.get("do_normalize", True)),
        )


class SAM2Model(SAMModel):
    """Segment Anything 2, image mode: ``embed(image)`` (cached by content), then ``segment(...)`` per prompt.

    Load option ``embedding_cache_size`` (default 8): image embeddings kept (LRU, keyed by the image's pixels).
    """

    def __init__(
        self,
        encoder: Session,
        decoder: Session,
        info: LoadedModelInfo,
        pre: Sam2Preprocessing,
        cache_size: int = 8,
    ) -> None:
        super().__init__(encoder, decoder, info, pre, cache_size)  # type: ignore[arg-type]
        self.square: Sam2Preprocessing = pre
        meta = decoder.metadata or {}
        self.dynamic = str(meta.get("dynamic_multimask_via_stability", "true")).lower() == "true"
        self.stability_delta = float(meta.get("dynamic_multimask_stability_delta", 0.05))
        self.stability_thresh = float(meta.get("dynamic_multimask_stability_thresh", 0.98))

    @classmethod
    def from_package(cls, ctx: PackageContext) -> SAM2Model:
        options = dict(ctx.options)
        check_names(options, cls.LOAD_OPTIONS, "SAM2Model takes no load option(s)")
        settings = hf_image_processor_config(ctx)
        pre = Sam2Preprocessing.from_json(settings) if settings else Sam2Preprocessing()
        encoder, decoder = ctx.load_part("image_encoder"), ctx.load_part("prompt_decoder")
        return cls(encoder, decoder, ctx.info(), pre, int(options.get("embedding_cache_size", 8)))

    # -- image encoder --------------------------------------------------------------------------------------------

    def preprocess(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """(1, 3, H, W) float32 network input of an RGB uint8 image (the processor's square size) and (H, W)."""
        pre = self.square
        resized = resize_like_pil(rgb, (pre.width, pre.height), resample=2)  # Pillow bilinear
        x = (resized.astype(np.float64) * pre.rescale_factor).astype(np.float32)
        if pre.do_normalize:
            x = ((x - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)).astype(np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), (pre.height, pre.width)

    def encode(self, image: Any) -> ImageEmbedding:
        pixels, resized = self.preprocess(np.ascontiguousarray(image.to("rgb")))
        out = self.encoder.run({self.encoder.inputs[0].name: pixels}, list(_FEATURES))
        tensors = {name: to_numpy(out[name]) for name in _FEATURES}
        return ImageEmbedding(tensors, (image.height, image.width), resized)

    # -- prompt decoder -------------------------------------------------------------------------------------------

    def decoder_inputs(self, embedding: ImageEmbedding, prompts: Prompts) -> dict[str, np.ndarray]:
        """SAM's feeds (prompts scaled to the square input) plus SAM 2's ``not a point`` after a box and the
        high-resolution feature maps."""
        feeds = super().decoder_inputs(embedding, prompts)
        if prompts.boxes is not None:  # Sam2PromptEncoder._embed_boxes pads every box with one "not a point"
            coords, labels = feeds["point_coords"], feeds["point_labels"]
            feeds["point_coords"] = np.concatenate([coords, np.zeros((*coords.shape[:2], 1, 2), np.float32)], 2)
            feeds["point_labels"] = np.concatenate([labels, np.full((*labels.shape[:2], 1), -1.0, np.float32)], 2)
        for name in _FEATURES[1:]:
            feeds[name] = embedding.tensors[name]
        return feeds

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, *, multimask: bool, mask_format: str, keep_logits: bool
    ) -> PromptSegmentation:
        feeds = self.decoder_inputs(embedding, prompts)
        names = [s.name for s in self.decoder.outputs][:2]
        out = self.decoder.run({s.name: feeds[s.name] for s in self.decoder.inputs}, names)
        logits, iou = to_numpy(out[names[0]])[0], to_numpy(out[names[1]])[0]
        if multimask:
            logits, iou = logits[:, 1:], iou[:, 1:]
        elif self.dynamic:
            logits, iou = self.stable_single(logits, iou)
        else:
            logits, iou = logits[:, :1], iou[:, :1]
        masks = self.upscale(logits, embedding) > self.pre.mask_threshold
        result_masks: Any = masks
        if mask_format == "rle":
            result_masks = [[RLEMask.encode(m) for m in row] for row in masks]
        return PromptSegmentation(
            result_masks,
            iou,
            logits if keep_logits else None,
            tuple(embedding.original_size),  # type: ignore[arg-type]
        )

    def stable_single(self, logits: np.ndarray, iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``Sam2MaskDecoder._dynamic_multimask_via_stability``: (P, M, h, w), (P, M) → (P, 1, h, w), (P, 1): mask 0
        where its stability score (area above +delta / area above -delta) reaches the threshold, else the multimask
        output with the highest predicted IoU."""
        flat = logits[:, 0].reshape(len(logits), -1)
        inner = (flat > self.stability_delta).sum(-1).astype(np.float32)
        outer = (flat > -self.stability_delta).sum(-1).astype(np.float32)
        score = np.where(outer > 0, inner / np.maximum(outer, 1), 1.0)
        best = 1 + np.argmax(iou[:, 1:], axis=-1)
        pick = np.where(score >= self.stability_thresh, 0, best)
        rows = np.arange(len(logits))
        return logits[rows, pick][:, None], iou[rows, pick][:, None]

    def upscale(self, logits: np.ndarray, embedding: ImageEmbedding) -> np.ndarray:
        """``Sam2ImageProcessor.post_process_masks`` without the threshold: (P, M, h, w) logits → (P, M, H, W)
        float32 at the original size (bilinear, ``align_corners=False``)."""
        return resize_like_torch(logits, tuple(embedding.original_size))  # type: ignore[arg-type]
