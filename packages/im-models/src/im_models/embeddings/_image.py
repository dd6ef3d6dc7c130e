"""Image embeddings from a backbone package (ONNX, TorchScript, or a torch state dict plus a known module)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import numpy as np

from im_core import EmbeddingModel, Embeddings, Image, LoadedModelInfo, PackageContext, Session
from im_models.classification._classifier import center_window
from im_models.classification._config import ClassifierConfig, load_classifier_config
from im_models.common import prepare_batch, to_numpy
from im_models.embeddings._pooling import l2_normalize, pool_features

__all__ = ["ImageEmbedder"]

#: modules for state-dict packages, by architecture: ``module:factory`` strings, imported only when used.
STATE_DICT_MODULES = {
    "mobilenetv2-backbone": "im_models.embeddings._mobilenetv2:build_mobilenet_v2_backbone",
    "mobilenet-v2": "im_models.embeddings._mobilenetv2:build_mobilenet_v2_backbone",
}
_SELF_DESCRIBING = (".onnx", ".torchscript", ".pt2", ".plan", ".engine")


def _module_factory(architecture: str) -> Any:
    target = STATE_DICT_MODULES.get(architecture.lower())
    if target is None:
        return None
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


class ImageEmbedder(EmbeddingModel):
    """Backbone → pooled, L2-normalised vector per image (an :class:`Embeddings` with one row each).

    Pre-processing is read like a classifier's (``preprocessing.json`` or ``inference_config.json``; see
    :mod:`im_models.classification._config`), except that by default the whole image is stretched to the input
    size (no centre crop: an embedding should see everything). Extra ``preprocessing.json`` keys: ``pooling``
    (``auto``/``avg``/``max``/``cls``/``mean``/``none``) and ``normalize`` (default true).

    For a torch state-dict package (``weights.pt`` / ``.pth``; the backend tells a state dict from a TorchScript
    archive saved under those names by its contents), the module comes from :data:`STATE_DICT_MODULES` by
    architecture (``mobilenetv2-backbone`` → :func:`~im_models.embeddings._mobilenetv2.build_mobilenet_v2_backbone`).
    """

    #: keyword arguments of ``from_pretrained`` this family reads when it is built
    LOAD_OPTIONS = frozenset({"pooling", "normalize"})
    CALL_PARAMS = {}

    def __init__(
        self, session: Session, info: LoadedModelInfo, config: ClassifierConfig, pooling: str, normalize: bool
    ) -> None:
        self.session = session
        self.metadata = info
        self.config = config
        self.pooling = pooling
        self.normalize = normalize
        self._input = session.inputs[0].name
        self._output = session.outputs[0].name

    @classmethod
    def from_package(cls, ctx: PackageContext) -> ImageEmbedder:
        name = ctx.network_file()
        options: dict[str, Any] = {}
        if ctx.backend == "torch" and not name.lower().endswith(_SELF_DESCRIBING):
            factory = _module_factory(ctx.metadata.architecture)
            if factory is not None:  # the module, in case the .pt/.pth file is a state dict (the backend tells)
                options.update(module=factory)
        session = ctx.load_session(name, **options)
        shape = session.inputs[0].shape if session.inputs else ()
        config = load_classifier_config(ctx, shape)
        extra = ctx.read_json("preprocessing.json") if ctx.has("preprocessing.json") else {}
        if not ctx.has("preprocessing.json"):
            config = ClassifierConfig(config.network, None, False, config.inference_config, config.activation)
        pooling = str(extra.get("pooling", ctx.options.get("pooling", "auto")))
        normalize = bool(extra.get("normalize", ctx.options.get("normalize", True)))
        pool_features(np.zeros((1, 1), np.float32), pooling)  # validates the name early
        return cls(session, ctx.info(), config, pooling, normalize)

    def canvas_key(self, image: Image, **params: Any) -> None:
        return None  # a fixed input size: every image gets the same canvas, so any images may share a batch

    def pre_process(self, images: list[Image], **params: Any) -> np.ndarray:
        cfg = self.config
        if cfg.inference_config is not None:
            ic = cfg.inference_config
            return prepare_batch(images, ic.network_input, static_crop=ic.static_crop)[0]
        net = cfg.network
        if cfg.center_crop:
            windows = [center_window(im.height, im.width, net.height, net.width, cfg.resize_short) for im in images]
            images = [Image(im.pixels[y0:y1, x0:x1], im.color) for im, (x0, y0, x1, y1) in zip(images, windows)]
        return prepare_batch(images, net)[0]

    def forward(self, prepared: np.ndarray) -> np.ndarray:
        out = self.session.run({self._input: prepared}, [self._output])[self._output]
        return to_numpy(out)

    def post_process(self, raw: np.ndarray, prepared: np.ndarray, **params: Any) -> list[Embeddings]:
        vectors = pool_features(raw, self.pooling)
        if self.normalize:
            vectors = l2_normalize(vectors)
        return [Embeddings(v[None], self.normalize) for v in vectors]

    def compare(self, a: Any, b: Any) -> float | np.ndarray:
        """Cosine similarity between images: a float for two single images, else an (N, M) array."""
        from im_core.sdk import is_batch

        sim = self.embed(a).similarity(self.embed(b))
        return float(sim[0, 0]) if not is_batch(a) and not is_batch(b) else sim
