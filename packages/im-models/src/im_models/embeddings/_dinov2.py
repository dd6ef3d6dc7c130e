"""DINOv2 / DINOv3 image embeddings, and a linear-probe classifier on top of them.

Package layout: a Hugging Face folder (``config.json`` with ``model_type`` ``dinov2`` or ``dinov3_vit``,
``model.safetensors``, ``preprocessor_config.json``) or the package ``im export`` writes from one
(``backbone.onnx`` / ``backbone.torchscript`` + the same side files). The ``backbone`` part gives the final
layer-normed tokens (N, 1 + R + P, D): CLS, R register tokens (DINOv3), P patch tokens.

Pre-processing is the folder's image processor (DINOv2's ``BitImageProcessor``: short side to 256 with Pillow's
bicubic filter, centre crop 224, rescale, ImageNet mean/std; see :mod:`im_models.embeddings._hf_image`).

Linear probe (architecture ``dinov2-probe`` / ``dinov3-probe``, task ``classification`` or
``multi-label-classification``): the same files plus ``linear_probe.safetensors`` (or ``linear_probe.npz``) holding
``weight`` (C, D') and ``bias`` (C,), ``class_names.txt`` (C lines) and optionally ``probe_config.json``
``{"pooling": "cls", "normalize": false}``: ``logits = pooled @ weight.T + bias`` → softmax (sigmoid for
multi-label). Roboflow's ``dinov3_probe`` packages are the same idea with the linear layer inside one exported
network (``weights.onnx``): those load as plain image classifiers.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from im_core import (
    Classification,
    ClassificationModel,
    EmbeddingModel,
    Embeddings,
    Image,
    LoadedModelInfo,
    MultiLabelClassificationModel,
    PackageContext,
    Session,
)
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
from im_models.common import hf_image_processor_config, softmax, to_numpy
from im_models.embeddings._hf_image import HFImageProcessor
from im_models.embeddings._pooling import l2_normalize

__all__ = ["DINOPOOLING", "DINOv2Embedder", "DINOv2Probe", "DINOv2ProbeMultiLabel", "pool_tokens"]

#: ``pooling`` choices: the CLS token, the mean of the patch tokens, or both concatenated (DINOv2's classifier)
DINOPOOLING = ("cls", "mean", "cls+mean")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: BitImageProcessor's defaults (DINOv2)
_DEFAULT_PROCESSOR = {"size": {"shortest_edge": 256}, "crop_size": {"height": 224, "width": 224},
                      "do_center_crop": True, "resample": 3}  # fmt: skip


def pool_tokens(tokens: np.ndarray, pooling: str, registers: int = 0) -> np.ndarray:
    """float32 (N, D) — or (N, 2D) for ``cls+mean`` — from backbone tokens (N, 1 + registers + P, D)."""
    if pooling not in DINOPOOLING:
        raise InvalidParameterError(f"pooling must be one of {DINOPOOLING}, got {pooling!r}.")
    x = np.asarray(tokens, np.float32)
    if x.ndim != 3 or x.shape[1] < 2 + registers:
        raise CorruptedModelPackageError(f"The backbone gave {x.shape}; expected tokens (N, 1 + R + P, D).")
    cls, patches = x[:, 0], x[:, 1 + registers :]
    if pooling == "cls":
        return cls
    if pooling == "mean":
        return patches.mean(axis=1)
    return np.concatenate([cls, patches.mean(axis=1)], axis=1)


class _Backbone:
    """Loading and running the backbone part, shared by the embedder and the probe."""

    session: Session
    processor: HFImageProcessor
    registers: int

    @staticmethod
    def _load(ctx: PackageContext) -> tuple[Session, HFImageProcessor, int]:
        data = hf_image_processor_config(ctx) or _DEFAULT_PROCESSOR
        processor = HFImageProcessor.from_config(data, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        session = ctx.load_part("backbone", names=("backbone.onnx",))
        registers = int(session.metadata.get("num_register_tokens", 0) or 0)
        if not registers and ctx.has("config.json"):
            registers = int(ctx.read_json("config.json").get("num_register_tokens", 0) or 0)
        return session, processor, registers

    def canvas_key(self, image: Image, **params: Any) -> Any:
        return self.processor.output_size(image.height, image.width)  # a fixed crop: every image shares a batch

    def pre_process(self, images: list[Image], **params: Any) -> np.ndarray:
        return self.processor(images)

    def forward(self, prepared: np.ndarray) -> np.ndarray:
        name, out = self.session.inputs[0].name, self.session.outputs[0].name
        return to_numpy(self.session.run({name: prepared}, [out])[out])


class DINOv2Embedder(_Backbone, EmbeddingModel):
    """DINOv2/DINOv3 image embeddings: ``model(image)`` → :class:`Embeddings` (one row per image).

    Load options: ``pooling`` (``"cls"`` default, ``"mean"`` of the patch tokens, or ``"cls+mean"`` concatenated,
    2D wide) and ``normalize`` (L2-normalise the vectors, default true).
    """

    LOAD_OPTIONS = frozenset({"pooling", "normalize"})
    CALL_PARAMS = {}

    def __init__(
        self,
        session: Session,
        processor: HFImageProcessor,
        info: LoadedModelInfo,
        *,
        registers: int = 0,
        pooling: str = "cls",
        normalize: bool = True,
    ) -> None:
        if pooling not in DINOPOOLING:
            raise InvalidParameterError(f"pooling must be one of {DINOPOOLING}, got {pooling!r}.")
        self.session, self.processor, self.metadata = session, processor, info
        self.registers, self.pooling, self.normalize = registers, pooling, bool(normalize)

    @classmethod
    def from_package(cls, ctx: PackageContext) -> DINOv2Embedder:
        session, processor, registers = cls._load(ctx)
        pooling = str(ctx.options.get("pooling", "cls"))
        return cls(
            session, processor, ctx.info(), registers=registers, pooling=pooling,
            normalize=bool(ctx.options.get("normalize", True)),
        )  # fmt: skip

    def post_process(self, raw: np.ndarray, prepared: np.ndarray, **params: Any) -> list[Embeddings]:
        vectors = pool_tokens(raw, self.pooling, self.registers)
        if self.normalize:
            vectors = l2_normalize(vectors)
        return [Embeddings(v[None], self.normalize) for v in vectors]


def read_linear(ctx: PackageContext) -> tuple[np.ndarray, np.ndarray]:
    """``(weight (C, D), bias (C,))`` float32 from ``linear_probe.safetensors`` or ``linear_probe.npz`` (never a
    pickle: ``.npz`` is read with ``allow_pickle=False``)."""
    if ctx.has("linear_probe.safetensors"):
        tensors = read_safetensors(ctx.path("linear_probe.safetensors").read_bytes())
    elif ctx.has("linear_probe.npz"):
        with np.load(ctx.path("linear_probe.npz"), allow_pickle=False) as data:
            tensors = {k: data[k] for k in data.files}
    else:
        raise CorruptedModelPackageError(
            f"{ctx.model_id!r} has no linear_probe.safetensors or linear_probe.npz (weight (C, D), bias (C,))."
        )
    weight = np.asarray(tensors.get("weight"), np.float32)
    bias = np.asarray(tensors.get("bias", np.zeros(len(weight))), np.float32)
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise CorruptedModelPackageError(
            f"The linear probe needs weight (C, D) and bias (C,); got {weight.shape} and {bias.shape}."
        )
    return weight, bias


_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": None}


def read_safetensors(blob: bytes) -> dict[str, np.ndarray]:
    """Tensors of a ``.safetensors`` file (8-byte little-endian header size, JSON header, raw data); no torch."""
    try:
        (size,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + size])
    except (struct.error, ValueError) as exc:
        raise CorruptedModelPackageError(f"Not a safetensors file: {exc}") from exc
    data = memoryview(blob)[8 + size :]
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(spec.get("dtype"))
        start, end = spec["data_offsets"]
        if spec.get("dtype") == "BF16":  # upper half of a float32
            raw = np.frombuffer(data[start:end], np.uint16).astype(np.uint32) << 16
            out[name] = raw.view(np.float32).reshape(spec["shape"])
        elif dtype is None:
            raise CorruptedModelPackageError(f"safetensors tensor {name!r}: dtype {spec.get('dtype')} unsupported.")
        else:
            out[name] = np.frombuffer(data[start:end], dtype).reshape(spec["shape"]).astype(np.float32)
    return out


class DINOv2Probe(_Backbone, ClassificationModel):
    """A linear classifier over DINOv2/DINOv3 embeddings → :class:`Classification` (softmax over classes)."""

    LOAD_OPTIONS = frozenset()
    CALL_PARAMS = {}
    multi_label = False

    def __init__(
        self,
        session: Session,
        processor: HFImageProcessor,
        info: LoadedModelInfo,
        weight: np.ndarray,
        bias: np.ndarray,
        *,
        registers: int = 0,
        pooling: str = "cls",
        normalize: bool = False,
    ) -> None:
        self.session, self.processor, self.metadata = session, processor, info
        self.weight, self.bias = weight, bias
        self.registers, self.pooling, self.normalize = registers, pooling, normalize

    @classmethod
    def from_package(cls, ctx: PackageContext) -> DINOv2Probe:
        session, processor, registers = cls._load(ctx)
        weight, bias = read_linear(ctx)
        config = ctx.read_json("probe_config.json") if ctx.has("probe_config.json") else {}
        pooling = str(config.get("pooling", "cls"))
        if pooling not in DINOPOOLING:
            raise CorruptedModelPackageError(f"probe_config.json: pooling must be one of {DINOPOOLING}.")
        names = ctx.class_names(count=len(weight)) or tuple(str(i) for i in range(len(weight)))
        return cls(
            session, processor, ctx.info(names), weight, bias, registers=registers, pooling=pooling,
            normalize=bool(config.get("normalize", False)),
        )  # fmt: skip

    def post_process(self, raw: np.ndarray, prepared: np.ndarray, **params: Any) -> list[Classification]:
        vectors = pool_tokens(raw, self.pooling, self.registers)
        if self.normalize:
            vectors = l2_normalize(vectors)
        if vectors.shape[1] != self.weight.shape[1]:
            raise CorruptedModelPackageError(
                f"The linear probe takes {self.weight.shape[1]}-d embeddings; the backbone with pooling "
                f"{self.pooling!r} gives {vectors.shape[1]}-d."
            )
        logits = vectors @ self.weight.T + self.bias
        names = tuple(self.metadata.class_names)
        if self.multi_label:
            scores = 1.0 / (1.0 + np.exp(-logits))
            return [Classification(s, names, multi_label=True) for s in scores]
        return [Classification(s, names) for s in softmax(logits, axis=1)]


class DINOv2ProbeMultiLabel(DINOv2Probe, MultiLabelClassificationModel):
    """The linear probe with independent classes (sigmoid)."""

    task = "multi-label-classification"
    multi_label = True
