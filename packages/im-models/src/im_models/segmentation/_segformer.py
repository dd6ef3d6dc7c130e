"""SegFormer semantic segmentation: one network ``segment`` (pixel_values (N, 3, H, W) → logits (N, K, H/4, W/4)).

Package: a Hugging Face folder (``config.json`` with ``model_type: segformer``, ``model.safetensors``,
``preprocessor_config.json``) run by the ``transformers`` backend, or the package ``im export`` writes from it
(``segment.onnx`` / ``segment.torchscript`` + the same JSON files).

Pre-processing is ``SegformerImageProcessor``'s (Pillow backend): every image stretched to ``size`` (512 × 512 by
default) with its ``resample`` (bilinear), rescaled by 1/255, normalised with ImageNet mean/std. Post-processing is
``post_process_semantic_segmentation(outputs, target_sizes=[(H, W)])``'s: the logits resized to the original size
with PyTorch's bilinear kernel (``align_corners=False``, reproduced in numpy by
:func:`~im_models.common.resize_like_torch`), then the argmax of each pixel. The decoding is the DeepLabV3+ head's
(:func:`~im_models.segmentation._semantic.decode_semantic`, 4 channels at a time, running argmax and softmax), so
the confidence map is the softmax maximum of each pixel.

Class names come from ``config.json``'s ``id2label``. SegFormer checkpoints have **no background class** by
convention (ADE20K's 150 classes; the processor's ``do_reduce_labels`` drops label 0 in training), so by default
every pixel keeps its best class, as the reference does, and the result's ``background_class_id`` is ``None``. A
checkpoint whose ``id2label`` names a ``background`` class (case-insensitive) gets it as ``background_class_id``,
and only then does the ``confidence`` call parameter apply: pixels below it become background (default 0: none do).
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import numpy as np

from im_core import Image, LoadedModelInfo, PackageContext, SemanticSegmentation, SemanticSegmentationModel, Session
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
from im_core.sdk import check_names
from im_models.common import (
    ImageTransform,
    hf_image_processor_config,
    resize_like_pil,
    resize_like_torch,
    resolve_detection_params,
    to_numpy,
)
from im_models.segmentation._semantic import decode_semantic

__all__ = ["SegFormerSegmentation"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class SegFormerSegmentation(SemanticSegmentationModel):
    """``model(image)`` → :class:`~im_core.SemanticSegmentation` at the image's size (class map, softmax
    confidence, the ``id2label`` class names).

    Call parameters: ``confidence`` (float, ``{class: threshold}``), only for a checkpoint with a ``background``
    class: pixels whose softmax maximum is below it become background.
    """

    LOAD_OPTIONS = frozenset()
    CALL_PARAMS: ClassVar[dict[str, str]] = {"confidence": "post"}

    def __init__(
        self, session: Session, info: LoadedModelInfo, processor: dict[str, Any], background_class_id: int | None
    ) -> None:
        self.session = session
        self.metadata = info
        self.background_class_id = background_class_id
        self._resize = bool(processor["do_resize"])
        self._height, self._width = int(processor["height"]), int(processor["width"])
        self._resample = int(processor["resample"])
        self._scale = float(processor["rescale_factor"]) if processor["do_rescale"] else 1.0
        normalize = bool(processor["do_normalize"])
        self._mean = np.asarray(processor["image_mean"] if normalize else (0, 0, 0), np.float32)
        self._std = np.asarray(processor["image_std"] if normalize else (1, 1, 1), np.float32)

    @classmethod
    def from_package(cls, ctx: PackageContext) -> SegFormerSegmentation:
        check_names(dict(ctx.options), (), "SegFormerSegmentation takes no load option(s)")
        config = ctx.read_json("config.json") if ctx.has("config.json") else None
        names = _class_names(config)
        processor = _processor(hf_image_processor_config(ctx))
        session = ctx.load_part("segment")
        lowered = [n.lower() for n in names]
        background = lowered.index("background") if "background" in lowered else None
        return cls(session, ctx.info(names), processor, background)

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) the network sees for an image of (height, width) pixels: the processor's fixed size."""
        return (self._height, self._width) if self._resize else (height, width)

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        return self.network_size(image.height, image.width)

    def pre_process(self, images: list[Image], **params: Any) -> tuple[np.ndarray, list[tuple[int, int]]]:
        h, w = self.network_size(images[0].height, images[0].width)
        pixels = [im.to("rgb") for im in images]
        if self._resize:
            pixels = [resize_like_pil(p, (w, h), self._resample) for p in pixels]
        x = (np.stack(pixels).astype(np.float32) * np.float32(self._scale) - self._mean) / self._std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), [(im.height, im.width) for im in images]

    def forward(self, prepared: tuple[np.ndarray, list[tuple[int, int]]]) -> np.ndarray:
        name, out = self.session.inputs[0].name, self.session.outputs[0].name
        return to_numpy(self.session.run({name: prepared[0]}, [out])[out])

    def post_process(self, raw: np.ndarray, prepared: Any, **params: Any) -> list[SemanticSegmentation]:
        pixels, sizes = prepared
        names = list(self.class_names)
        thresholds = None
        if self.background_class_id is not None:
            thresholds = resolve_detection_params(
                {"confidence": params.get("confidence")}, names, len(names), confidence=0.0
            ).thresholds
        elif params.get("confidence") is not None:
            raise InvalidParameterError(
                f"This SegFormer has no `background` class (its classes: {names[:10]}...), so no pixel can fall "
                "below a confidence threshold: every pixel keeps its best class. Leave `confidence` out, or use the "
                "result's `confidence` map to mask low-scoring pixels yourself."
            )
        net_h, net_w = pixels.shape[-2:]
        results = []
        for logits, (h, w) in zip(np.asarray(raw, np.float32), sizes):
            t = ImageTransform(net_w / w, net_h / h, 0.0, 0.0, h, w, net_h, net_w, (0, 0, w, h))
            class_map, conf = decode_semantic(
                logits,
                t,
                activation="softmax",
                num_classes=len(names),
                background_class_id=self.background_class_id,
                thresholds=thresholds,
                resize=partial(resize_like_torch, size=(h, w), mode="bilinear"),
            )
            results.append(SemanticSegmentation(class_map, conf, names, self.background_class_id))
        return results


def _class_names(config: Any) -> list[str]:
    """``id2label`` of ``config.json``, in id order (``LABEL_i`` names included: they are what the model says)."""
    if not isinstance(config, dict):
        raise CorruptedModelPackageError("A SegFormer package needs config.json (a JSON object) with id2label.")
    labels = config.get("id2label")
    if not isinstance(labels, dict) or not labels:
        count = config.get("num_labels")
        if isinstance(count, int) and count > 0:
            return [f"LABEL_{i}" for i in range(count)]
        raise CorruptedModelPackageError("config.json has no id2label: add the class names as {'0': 'wall', ...}.")
    try:
        ids = sorted(int(k) for k in labels)
    except (TypeError, ValueError) as exc:
        raise CorruptedModelPackageError(
            f"config.json: id2label keys must be class ids, got {list(labels)[:5]}."
        ) from exc
    if ids != list(range(len(ids))):
        raise CorruptedModelPackageError(f"config.json: id2label must number the classes 0..{len(ids) - 1}.")
    return [str(labels[str(i)] if str(i) in labels else labels[i]) for i in ids]


def _processor(data: Any) -> dict[str, Any]:
    """The SegFormer image-processor settings from ``preprocessor_config.json``, with its defaults."""
    if not isinstance(data, dict):
        raise CorruptedModelPackageError("preprocessor_config.json must hold a JSON object.")
    size = data.get("size") or {"height": 512, "width": 512}
    if not isinstance(size, dict) or not all(isinstance(size.get(k), int) for k in ("height", "width")):
        raise CorruptedModelPackageError(
            f"preprocessor_config.json: SegFormer's size must be {{'height': int, 'width': int}}, got {size!r}."
        )
    return {
        "do_resize": data.get("do_resize", True),
        "height": size["height"],
        "width": size["width"],
        "resample": data.get("resample", 2),
        "do_rescale": data.get("do_rescale", True),
        "rescale_factor": data.get("rescale_factor", 1 / 255),
        "do_normalize": data.get("do_normalize", True),
        "image_mean": data.get("image_mean", _IMAGENET_MEAN),
        "image_std": data.get("image_std", _IMAGENET_STD),
    }
