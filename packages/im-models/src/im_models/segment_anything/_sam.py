"""SAM (Segment Anything): one image encoder run per image, a light prompt decoder run per prompt.

Package layout: a Hugging Face ``SamModel`` folder (``config.json``, ``model.safetensors``,
``preprocessor_config.json``) run by the ``transformers`` backend, or what ``im export`` makes of it
(``image_encoder.onnx`` + ``prompt_decoder.onnx`` + the same JSON files). The two networks are the parts of
:mod:`im_backend_transformers._sam`: the decoder takes every prompt kind through one graph (points and box corners
as one labelled sequence).

Pre-processing is ``SamProcessor``'s: RGB, longest side resized to ``size["longest_edge"]`` (Pillow bilinear,
antialiased), ``× rescale_factor``, normalised with ``image_mean`` / ``image_std``, zero-padded bottom-right to
``pad_size``. Prompts in original pixels are scaled like ``SamProcessor`` scales them. Post-processing is
``post_process_masks``: logits upsampled (bilinear) to the padded input size, the padding cropped, resized to the
original size, ``> 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from im_core import (
    ImageEmbedding,
    LoadedModelInfo,
    PackageContext,
    PromptableSegmentationModel,
    Prompts,
    PromptSegmentation,
    RLEMask,
    Session,
)
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
from im_core.sdk import check_names
from im_models.common import hf_image_processor_config, resize_like_pil, to_numpy

__all__ = ["SAMModel"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
#: cv2.resize takes at most this many channels in one call
_CV_CHANNELS = 512


@dataclass(frozen=True)
class SamPreprocessing:
    """What ``SamProcessor`` does to an image (from ``preprocessor_config.json``)."""

    longest_edge: int = 1024
    pad_height: int = 1024
    pad_width: int = 1024
    rescale_factor: float = 1 / 255
    mean: tuple[float, float, float] = _IMAGENET_MEAN
    std: tuple[float, float, float] = _IMAGENET_STD
    do_normalize: bool = True
    mask_threshold: float = 0.0

    @classmethod
    def from_json(cls, data: Any) -> SamPreprocessing:
        """From the image-processor settings (:func:`~im_models.common.hf_image_processor_config`)."""
        if not isinstance(data, dict):
            raise CorruptedModelPackageError("preprocessor_config.json must hold a JSON object.")
        size, pad = data.get("size") or {}, data.get("pad_size") or {}
        edge = int(size.get("longest_edge", 1024)) if isinstance(size, dict) else int(size)
        if not isinstance(pad, dict):
            pad = {"height": int(pad), "width": int(pad)}
        return cls(
            longest_edge=edge,
            pad_height=int(pad.get("height", edge)),
            pad_width=int(pad.get("width", edge)),
            rescale_factor=float(data.get("rescale_factor", 1 / 255)) if data.get("do_rescale", True) else 1.0,
            mean=tuple(float(v) for v in data.get("image_mean", _IMAGENET_MEAN)),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data.get("image_std", _IMAGENET_STD)),  # type: ignore[arg-type]
            do_normalize=bool(data.get("do_normalize", True)),
        )

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """``SamImageProcessor._get_preprocess_shape``: longest side → ``longest_edge``, rounded half up."""
        scale = self.longest_edge * 1.0 / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)


class SAMModel(PromptableSegmentationModel):
    """Segment Anything: ``embed(image)`` (image encoder, cached by content), then ``segment(...)`` per prompt.

    Load option ``embedding_cache_size`` (default 8): image embeddings kept (LRU, keyed by the image's pixels).
    """

    LOAD_OPTIONS = frozenset({"embedding_cache_size"})

    def __init__(
        self,
        encoder: Session,
        decoder: Session,
        info: LoadedModelInfo,
        pre: SamPreprocessing,
        cache_size: int = 8,
    ) -> None:
        from im_core import EmbeddingCache

        self.encoder = encoder
        self.decoder = decoder
        self.metadata = info
        self.pre = pre
        self.embedding_cache = EmbeddingCache(cache_size)
        mask_spec = next((s for s in decoder.inputs if s.name == "mask_input"), None)
        shape = tuple(mask_spec.shape[-2:]) if mask_spec is not None else (None, None)
        self.low_res_size: tuple[int, int] | None = shape if all(isinstance(d, int) for d in shape) else None  # type: ignore[assignment]

    @classmethod
    def from_package(cls, ctx: PackageContext) -> SAMModel:
        options = dict(ctx.options)
        check_names(options, cls.LOAD_OPTIONS, "SAMModel takes no load option(s)")
        settings = hf_image_processor_config(ctx)
        pre = SamPreprocessing.from_json(settings) if settings else SamPreprocessing()
        encoder = ctx.load_part("image_encoder")
        decoder = ctx.load_part("prompt_decoder")
        return cls(encoder, decoder, ctx.info(), pre, int(options.get("embedding_cache_size", 8)))

    # -- image encoder --------------------------------------------------------------------------------------------

    def preprocess(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """(1, 3, pad_h, pad_w) float32 network input of an RGB uint8 image, and its resized (height, width)."""
        pre = self.pre
        height, width = rgb.shape[:2]
        new_h, new_w = pre.resized_size(height, width)
        resized = resize_like_pil(rgb, (new_w, new_h), resample=2)  # Pillow bilinear, as SamProcessor
        x = (resized.astype(np.float64) * pre.rescale_factor).astype(np.float32)
        if pre.do_normalize:
            x = ((x - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)).astype(np.float32)
        canvas = np.zeros((1, 3, pre.pad_height, pre.pad_width), np.float32)
        canvas[0, :, :new_h, :new_w] = x.transpose(2, 0, 1)
        return canvas, (new_h, new_w)

    def encode(self, image: Any) -> ImageEmbedding:
        pixels, resized = self.preprocess(np.ascontiguousarray(image.to("rgb")))
        name, out = self.encoder.inputs[0].name, self.encoder.outputs[0].name
        embeddings = to_numpy(self.encoder.run({name: pixels}, [out])[out])
        return ImageEmbedding({"image_embeddings": embeddings}, (image.height, image.width), resized)

    # -- prompt decoder -------------------------------------------------------------------------------------------

    def decoder_inputs(self, embedding: ImageEmbedding, prompts: Prompts) -> dict[str, np.ndarray]:
        """The decoder's feeds: prompts scaled to the resized input, as one labelled point sequence per prompt."""
        if prompts.points is None and prompts.boxes is None:
            raise InvalidParameterError("mask_input refines a prompt: give points= or boxes= with it.")
        height, width = embedding.original_size
        new_h, new_w = embedding.input_size
        scale = np.array([new_w / width, new_h / height])  # SamProcessor's _normalize_coordinates
        count = len(prompts)
        coords, labels = [], []
        if prompts.points is not None:
            coords.append(prompts.points * scale)
            labels.append(prompts.labels.astype(np.float64))  # type: ignore[union-attr]
        if prompts.boxes is not None:
            coords.append(prompts.boxes.reshape(-1, 2, 2) * scale)
            labels.append(np.tile([2.0, 3.0], (count, 1)))
        else:  # transformers pads a points-only prompt with one "not a point"
            coords.append(np.zeros((count, 1, 2)))
            labels.append(np.full((count, 1), -1.0))
        low = self.low_res_size or (4 * embedding.tensors["image_embeddings"].shape[-2],) * 2
        if prompts.mask_input is None:
            mask = np.zeros((1, count, *low), np.float32)
            has = np.zeros((1, count), np.float32)
        else:
            mask = prompts.mask_input
            if tuple(mask.shape[-2:]) != tuple(low):
                raise InvalidParameterError(
                    f"mask_input is {tuple(mask.shape[-2:])}; this model takes {tuple(low)} low-resolution logits "
                    "(a previous result's low_res_logits[p, m])."
                )
            mask = np.array(np.broadcast_to(mask[:, 0][None], (1, count, *low)), np.float32)
            has = np.ones((1, count), np.float32)
        return {
            "image_embeddings": embedding.tensors["image_embeddings"],
            "point_coords": np.concatenate(coords, axis=1).astype(np.float32)[None],
            "point_labels": np.concatenate(labels, axis=1).astype(np.float32)[None],
            "mask_input": mask,
            "has_mask_input": has,
        }

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, *, multimask: bool, mask_format: str, keep_logits: bool
    ) -> PromptSegmentation:
        feeds = self.decoder_inputs(embedding, prompts)
        names = [s.name for s in self.decoder.outputs]
        out = self.decoder.run({s.name: feeds[s.name] for s in self.decoder.inputs}, names)
        logits, iou = to_numpy(out[names[0]])[0], to_numpy(out[names[1]])[0]
        keep = slice(1, None) if multimask else slice(0, 1)  # transformers' multimask_output
        logits, iou = logits[:, keep], iou[:, keep]
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

    def upscale(self, logits: np.ndarray, embedding: ImageEmbedding) -> np.ndarray:
        """``post_process_masks`` without the threshold: (P, M, h, w) logits → (P, M, H, W) float32 at the original
        size (bilinear to the padded input, crop the padding, bilinear to the original size)."""
        import cv2

        p, m, h, w = logits.shape
        height, width = embedding.original_size
        new_h, new_w = embedding.input_size
        planes = logits.reshape(p * m, h, w).transpose(1, 2, 0)
        out = np.empty((height, width, p * m), np.float32)
        for start in range(0, p * m, _CV_CHANNELS):
            chunk = np.ascontiguousarray(planes[:, :, start : start + _CV_CHANNELS])
            big = cv2.resize(chunk, (self.pre.pad_width, self.pre.pad_height), interpolation=cv2.INTER_LINEAR)
            big = big.reshape(self.pre.pad_height, self.pre.pad_width, -1)[:new_h, :new_w]
            big = np.ascontiguousarray(big)
            if p * m <= _CV_CHANNELS and p * m > 1:  # straight into the result: no 4-byte-per-pixel copy
                cv2.resize(big, (width, height), dst=out, interpolation=cv2.INTER_LINEAR)
                continue
            final = cv2.resize(big, (width, height), interpolation=cv2.INTER_LINEAR)
            out[:, :, start : start + chunk.shape[2]] = final.reshape(height, width, -1)
        return out.transpose(2, 0, 1).reshape(p, m, height, width)
