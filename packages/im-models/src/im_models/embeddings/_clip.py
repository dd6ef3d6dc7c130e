"""CLIP-style dual encoder: an image tower and a text tower in one embedding space.

Package layout (a folder)::

    image_encoder.onnx   images (N, 3, H, W) float → (N, D) or pooled-able features
    text_encoder.onnx    token ids (N, L) int64 [+ attention mask (N, L)] → (N, D)
    vocab.txt            one token per line (or pass ``tokenizer=`` to from_pretrained: texts -> (ids, mask))
    clip_config.json     optional: {"image_size": 224, "mean": [...], "std": [...], "color": "rgb",
                                    "context_length": 77, "logit_scale": 100.0, "template": "a photo of a {}"}

No CLIP weights can be obtained in this project's test environment; the interface is tested with small towers
built in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from im_core import Classification, EmbeddingModel, Embeddings, Image, LoadedModelInfo, PackageContext, Session
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
from im_core.sdk import check_names, is_batch
from im_models.common import NetworkInput, prepare_batch, softmax, to_numpy
from im_models.embeddings._pooling import l2_normalize, pool_features
from im_models.embeddings._tokenizer import VocabTokenizer

__all__ = ["CLIPModel"]

#: OpenAI CLIP's normalisation constants (RGB).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_DEFAULTS: dict[str, Any] = {
    "image_size": 224,
    "mean": CLIP_MEAN,
    "std": CLIP_STD,
    "color": "rgb",
    "context_length": 77,
    "logit_scale": 100.0,
    "template": "a photo of a {}",
    "lowercase": True,
}
Tokenizer = Callable[[Sequence[str]], "tuple[np.ndarray, np.ndarray] | np.ndarray"]


class CLIPModel(EmbeddingModel):
    """Zero-shot image/text model: ``embed_images``, ``embed_texts``, ``similarity`` and ``classify``.

    ``model(image)`` returns the image's :class:`Embeddings` (task ``embedding``). Images are resized (short side to
    ``image_size``, then centre crop), normalised with CLIP's mean/std; vectors are L2-normalised.
    """

    #: keyword arguments of ``from_pretrained`` this family reads when it is built
    LOAD_OPTIONS = frozenset({*_DEFAULTS, "tokenizer"})
    CALL_PARAMS = {}

    def __init__(
        self,
        image_session: Session,
        text_session: Session,
        tokenizer: Tokenizer,
        info: LoadedModelInfo,
        config: dict[str, Any],
    ) -> None:
        self.image_session = image_session
        self.text_session = text_session
        self.tokenizer = tokenizer
        self.metadata = info
        self.logit_scale = float(config["logit_scale"])
        self.template = str(config["template"])
        size = int(config["image_size"])
        self._net = NetworkInput(
            height=size,
            width=size,
            color=str(config["color"]),  # type: ignore[arg-type]
            resize_mode="stretch",
            mean=tuple(config["mean"]),
            std=tuple(config["std"]),
        )

    @classmethod
    def from_package(cls, ctx: PackageContext) -> CLIPModel:
        config = dict(_DEFAULTS)
        if ctx.has("clip_config.json"):
            data = ctx.read_json("clip_config.json")
            if not isinstance(data, dict):
                raise CorruptedModelPackageError("clip_config.json must hold a JSON object.")
            config.update({k: v for k, v in data.items() if k in _DEFAULTS})
        if ctx.has("preprocessor_config.json"):  # a Hugging Face folder (or a package exported from one)
            config.update(_hf_image_processor(ctx.read_json("preprocessor_config.json")))
        options = dict(ctx.options)
        tokenizer = options.pop("tokenizer", None)
        check_names(options, _DEFAULTS, "CLIPModel takes no load option(s)")
        config.update(options)
        if tokenizer is None:
            if not ctx.has("vocab.txt"):
                raise CorruptedModelPackageError(
                    f"{ctx.model_id!r} has no vocab.txt; add one or pass tokenizer= (texts -> ids[, mask])."
                )
            tokens = ctx.path("vocab.txt").read_text(encoding="utf-8").split("\n")
            tokenizer = VocabTokenizer([t for t in tokens if t], int(config["context_length"]), config["lowercase"])
        image = ctx.load_part("vision", names=("image_encoder.onnx", "visual.onnx"))
        text = ctx.load_part("text", names=("text_encoder.onnx", "textual.onnx"))
        if "logit_scale" in image.metadata and "logit_scale" not in options:  # learned: it lives in the weights
            config["logit_scale"] = float(image.metadata["logit_scale"])
        side = image.inputs[0].shape[-1] if image.inputs and len(image.inputs[0].shape) == 4 else None
        if isinstance(side, int) and "image_size" not in options:  # a fixed-size tower says its own size
            config["image_size"] = side
        return cls(image, text, tokenizer, ctx.info(), config)

    # -- image tower (the Model stages) ---------------------------------------------------------------------------

    def canvas_key(self, image: Image, **params: Any) -> None:
        return None  # a fixed input size: every image gets the same canvas, so any images may share a batch

    def pre_process(self, images: list[Image], **params: Any) -> np.ndarray:
        size = self._net.height
        crops = []
        for im in images:  # short side → size, centre square (computed in original pixels: one resize)
            side = min(im.height, im.width)
            y0, x0 = (im.height - side) // 2, (im.width - side) // 2
            crops.append(Image(im.pixels[y0 : y0 + side, x0 : x0 + side], im.color))
        return prepare_batch(crops, self._net, size=(size, size))[0]

    def forward(self, prepared: np.ndarray) -> np.ndarray:
        name, out = self.image_session.inputs[0].name, self.image_session.outputs[0].name
        return to_numpy(self.image_session.run({name: prepared}, [out])[out])

    def post_process(self, raw: np.ndarray, prepared: np.ndarray, **params: Any) -> list[Embeddings]:
        vectors = l2_normalize(pool_features(raw))
        return [Embeddings(v[None]) for v in vectors]

    def embed_images(self, images: Any, **params: Any) -> Embeddings:
        """(N, D) unit vectors for one image or a list."""
        return self.embed(images, **params)

    # -- text tower -----------------------------------------------------------------------------------------------

    def embed_texts(self, texts: str | Sequence[str]) -> Embeddings:
        """(N, D) unit vectors for one text or a list of texts."""
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items or not all(isinstance(t, str) for t in items):
            raise InvalidParameterError("embed_texts needs a string or a non-empty list of strings.")
        tokens = self.tokenizer(items)
        ids, mask = tokens if isinstance(tokens, tuple) else (tokens, (np.asarray(tokens) != 0).astype(np.int64))
        feeds: dict[str, Any] = {}
        for spec, value in zip(self.text_session.inputs, (ids, mask)):
            feeds[spec.name] = np.asarray(value, dtype=spec.dtype if spec.dtype.startswith("int") else np.int64)
        out = self.text_session.outputs[0].name
        raw = to_numpy(self.text_session.run(feeds, [out])[out])
        return Embeddings(l2_normalize(pool_features(raw)))

    # -- both -----------------------------------------------------------------------------------------------------

    def similarity(self, images: Any, texts: str | Sequence[str], **params: Any) -> np.ndarray:
        """Cosine similarity, float32 (N images, M texts); ``params`` as for ``infer`` (``color_format``)."""
        return self.embed_images(images, **params).similarity(self.embed_texts(texts))

    def classify(
        self, images: Any, labels: Sequence[str], *, template: str | None = None, **params: Any
    ) -> Classification | list[Classification]:
        """Zero-shot classification: softmax over ``logit_scale * cos(image, template.format(label))``.

        Args:
            images: one image (→ one result) or a list (→ a list).
            labels: candidate class names.
            template: prompt with one ``{}``, default from the package (``"a photo of a {}"``).
            **params: as for ``infer`` (``color_format="rgb"`` for RGB numpy images).
        """
        if not labels:
            raise InvalidParameterError("classify needs at least one label.")
        prompt = self.template if template is None else template
        sim = self.similarity(images, [prompt.format(label) for label in labels], **params)
        probs = softmax(self.logit_scale * sim, axis=1)
        results = [Classification(row, tuple(labels)) for row in probs]
        return results if is_batch(images) else results[0]


def _hf_image_processor(data: Any) -> dict[str, Any]:
    """image_size / mean / std from a Hugging Face ``preprocessor_config.json`` (``crop_size`` as an int or
    ``{"height", "width"}``; ``image_mean``, ``image_std``)."""
    if not isinstance(data, dict):
        raise CorruptedModelPackageError("preprocessor_config.json must hold a JSON object.")
    out: dict[str, Any] = {}
    crop = data.get("crop_size")
    side = crop.get("height") if isinstance(crop, dict) else crop
    if isinstance(side, int) and side > 0:
        out["image_size"] = side
    for key, name in (("image_mean", "mean"), ("image_std", "std")):
        value = data.get(key)
        if isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value):
            out[name] = tuple(float(v) for v in value)
    return out
