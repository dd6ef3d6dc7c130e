"""CLIP-style dual encoder: an image tower and a text tower in one embedding space.

Package layout (a folder)::

    image_encoder.onnx   images (N, 3, H, W) float → (N, D) or pooled-able features
    text_encoder.onnx    token ids (N, L) int64 [+ attention mask (N, L)] → (N, D)
    tokenizer.json       CLIP's byte-level BPE (or vocab.json + merges.txt, the slow tokenizer's files): see
                         :mod:`im_models.embeddings._bpe`; needs ``tokenizers`` (``im-models[text]``)
    vocab.txt            older packages: a word vocabulary, one token per line
                         (or pass ``tokenizer=`` to from_pretrained: texts -> (ids, mask))
    clip_config.json     optional: {"image_size": 224, "mean": [...], "std": [...], "color": "rgb",
                                    "context_length": 77, "logit_scale": 100.0, "template": "a photo of a {}"}

A Hugging Face CLIP folder (``config.json``, ``model.safetensors``, its processor and tokenizer files) and the im
package exported from it (``vision.onnx``, ``text.onnx`` and the same side files) load the same way: the image
pre-processing is then the folder's image processor (:class:`~im_models.embeddings._hf_image.HFImageProcessor`,
equal to transformers' ``CLIPImageProcessorPil``), the context length ``text_config.max_position_embeddings``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from im_core import Classification, EmbeddingModel, Embeddings, Image, LoadedModelInfo, PackageContext, Session
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
from im_core.sdk import check_names, is_batch
from im_models.common import hf_image_processor_config, softmax, to_numpy
from im_models.embeddings._hf_image import HFImageProcessor
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

    ``model(image)`` returns the image's :class:`Embeddings` (task ``embedding``). Images are resized as CLIP's
    image processor does (short side to ``image_size`` with Pillow's bicubic filter, centre crop, rescale to [0, 1],
    CLIP's mean/std); vectors are L2-normalised.
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
        processor: HFImageProcessor | None = None,
    ) -> None:
        self.image_session = image_session
        self.text_session = text_session
        self.tokenizer = tokenizer
        self.metadata = info
        self.logit_scale = float(config["logit_scale"])
        self.template = str(config["template"])
        size = int(config["image_size"])
        self.processor = processor or HFImageProcessor(
            shortest_edge=size, crop=(size, size), mean=tuple(config["mean"]), std=tuple(config["std"])
        )
        self.color = str(config["color"])

    @classmethod
    def from_package(cls, ctx: PackageContext) -> CLIPModel:
        config = dict(_DEFAULTS)
        if ctx.has("clip_config.json"):
            data = ctx.read_json("clip_config.json")
            if not isinstance(data, dict):
                raise CorruptedModelPackageError("clip_config.json must hold a JSON object.")
            config.update({k: v for k, v in data.items() if k in _DEFAULTS})
        hf_processor = hf_image_processor_config(ctx)  # a Hugging Face folder (or a package exported from one)
        hf_config = ctx.read_json("config.json") if ctx.has("config.json") else None
        if isinstance(hf_config, dict) and isinstance(hf_config.get("text_config"), dict):
            text_config = hf_config["text_config"]
            if isinstance(text_config.get("max_position_embeddings"), int):
                config["context_length"] = text_config["max_position_embeddings"]
        options = dict(ctx.options)
        tokenizer = options.pop("tokenizer", None)
        check_names(options, _DEFAULTS, "CLIPModel takes no load option(s)")
        config.update(options)
        if tokenizer is None:
            tokenizer = _package_tokenizer(ctx, config)
        image = ctx.load_part("vision", names=("image_encoder.onnx", "visual.onnx"))
        text = ctx.load_part("text", names=("text_encoder.onnx", "textual.onnx"))
        if "logit_scale" in image.metadata and "logit_scale" not in options:  # learned: it lives in the weights
            config["logit_scale"] = float(image.metadata["logit_scale"])
        processor = None
        if hf_processor and not {"image_size", "mean", "std"} & set(options):
            processor = HFImageProcessor.from_config(hf_processor, mean=config["mean"], std=config["std"])
        side = image.inputs[0].shape[-1] if image.inputs and len(image.inputs[0].shape) == 4 else None
        if isinstance(side, int) and "image_size" not in options:  # a fixed-size tower says its own size
            config["image_size"] = side
        return cls(image, text, tokenizer, ctx.info(), config, processor)

    # -- image tower (the Model stages) ---------------------------------------------------------------------------

    def canvas_key(self, image: Image, **params: Any) -> tuple[int, int]:
        # the network input size: with a centre crop, every image shares a batch
        return self.processor.output_size(image.height, image.width)

    def pre_process(self, images: list[Image], **params: Any) -> np.ndarray:
        batch = self.processor(images)
        return np.ascontiguousarray(batch[:, ::-1]) if self.color == "bgr" else batch

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
        if not labels or isinstance(labels, str):
            raise InvalidParameterError("classify needs at least one label (a list of class names).")
        probs = self.zero_shot_scores(self.embed_images(images, **params).vectors, labels, template=template)
        results = [Classification(row, tuple(labels)) for row in probs]
        return results if is_batch(images) else results[0]

    def zero_shot_scores(
        self, image_vectors: np.ndarray, labels: Sequence[str], *, template: str | None = None
    ) -> np.ndarray:
        """float32 (N, L) softmax over ``logit_scale * cos(image, template.format(label))`` for image embeddings
        already computed (``embed_images(...).vectors`` or ``run_images`` results), one row per image."""
        if not labels or isinstance(labels, str):
            raise InvalidParameterError("classify needs at least one label (a list of class names).")
        prompt = self.template if template is None else template
        texts = self.embed_texts([prompt.format(label) for label in labels]).vectors
        return softmax(self.logit_scale * (np.asarray(image_vectors, np.float32) @ texts.T), axis=1)


def _package_tokenizer(ctx: PackageContext, config: dict[str, Any]) -> Tokenizer:
    """The package's tokenizer: CLIP's byte-level BPE (``tokenizer.json``, or ``vocab.json`` + ``merges.txt``),
    else the word vocabulary of older packages (``vocab.txt``)."""
    length = int(config["context_length"])
    if ctx.has("tokenizer.json") or (ctx.has("vocab.json") and ctx.has("merges.txt")):
        from im_models.embeddings._bpe import CLIPBPETokenizer

        return CLIPBPETokenizer.from_folder(ctx.directory, length)
    if ctx.has("vocab.txt"):
        tokens = ctx.path("vocab.txt").read_text(encoding="utf-8").split("\n")
        return VocabTokenizer([t for t in tokens if t], length, config["lowercase"])
    raise CorruptedModelPackageError(
        f"{ctx.model_id!r} has no tokenizer: expected tokenizer.json or vocab.json + merges.txt (CLIP's byte-level "
        "BPE) or vocab.txt (a word vocabulary). Fix: copy the tokenizer files of the checkpoint next to the model, "
        "or pass tokenizer= (a callable texts -> (ids, mask))."
    )
