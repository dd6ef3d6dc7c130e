"""The CLIP-style interface, on small towers written in the test (no CLIP weights can be obtained here).

Two kinds of tower, both plain ONNX graphs built with ``onnx.helper``:
* hand-set weights that make the result predictable: the image tower embeds an image's mean colour and the text
  tower embeds the colour words of a prompt, so zero-shot ``classify`` must pick the image's colour;
* randomly initialised weights, for shapes, normalisation, batching and the tokenizer plumbing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from im_core import Classification, Embeddings
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
from im_core.testing import local_context
from im_models.embeddings._clip import CLIPModel
from im_models.embeddings._tokenizer import VocabTokenizer

VOCAB = ["<pad>", "<start_of_text>", "<end_of_text>", "<unk>", "a", "photo", "of", "red", "green", "blue", "cat"]
DIM = 8


def _write_towers(folder, token_table: np.ndarray, projection: np.ndarray) -> None:
    """image (N,3,H,W) → mean colour @ projection; text (ids, mask) → masked mean of token_table rows @ projection."""
    from onnx import TensorProto, helper, numpy_helper, save

    def model(nodes, inputs, inits):
        out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", projection.shape[1]])
        graph = helper.make_graph(nodes, "tower", inputs, [out], inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    w = numpy_helper.from_array(projection.astype(np.float32), "w")
    image = model(
        [
            helper.make_node("ReduceMean", ["images"], ["colour"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["colour", "w"], ["embedding"]),
        ],
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [w],
    )
    text = model(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["tokens"], axis=0),  # (N, L, 3)
            helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
            helper.make_node("Mul", ["tokens", "mask3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
            helper.make_node("ReduceSum", ["maskf", "axis1"], ["count"], keepdims=1),
            helper.make_node("Div", ["summed", "count"], ["mean"]),
            helper.make_node("MatMul", ["mean", "w"], ["embedding"]),
        ],
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["n", "l"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["n", "l"]),
        ],
        [
            numpy_helper.from_array(token_table.astype(np.float32), "table"),
            numpy_helper.from_array(np.array([2], np.int64), "axis2"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
            w,
        ],
    )
    save(image, str(folder / "image_encoder.onnx"))
    save(text, str(folder / "text_encoder.onnx"))
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")


def _load(folder, **options) -> CLIPModel:
    return CLIPModel.from_package(local_context(folder, architecture="clip", task="embedding", options=options))


@pytest.fixture
def colour_clip(tmp_path) -> CLIPModel:
    """Hand-set towers: colour words map to RGB axes, other words to nothing; one orthonormal projection."""
    table = np.zeros((len(VOCAB), 3), np.float32)
    for axis, word in enumerate(("red", "green", "blue")):
        table[VOCAB.index(word), axis] = 1.0
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(DIM, 3)))
    _write_towers(tmp_path, table, q.T)  # (3, DIM), preserves angles
    # plain /255 scaling centred on grey, so a colour's sign pattern survives normalisation
    (tmp_path / "clip_config.json").write_text(json.dumps({"mean": [0.5] * 3, "std": [0.5] * 3, "image_size": 32}))
    return _load(tmp_path)


@pytest.fixture
def random_clip(tmp_path) -> CLIPModel:
    rng = np.random.default_rng(1)
    _write_towers(tmp_path, rng.normal(size=(len(VOCAB), 3)), rng.normal(size=(3, DIM)))
    return _load(tmp_path)


def _solid_bgr(rgb, size=(40, 60)) -> np.ndarray:
    return np.broadcast_to(np.array(rgb[::-1], np.uint8), (*size, 3)).copy()


def test_hand_set_towers_zero_shot_classify_picks_the_colour(colour_clip):
    images = [_solid_bgr((230, 20, 20)), _solid_bgr((20, 230, 20)), _solid_bgr((20, 20, 230))]
    results = colour_clip.classify(images, ["red", "green", "blue"])
    assert [r.class_name for r in results] == ["red", "green", "blue"]
    assert all(isinstance(r, Classification) and r.top_confidence > 0.9 for r in results)
    one = colour_clip.classify(images[2], ["red", "blue"], template="{}")
    assert isinstance(one, Classification) and one.class_name == "blue"
    sim = colour_clip.similarity(images, ["a photo of a red cat", "green"])
    assert sim.shape == (3, 2) and sim[0, 0] > sim[0, 1] and sim[1, 1] > sim[1, 0]


def test_hand_set_towers_honour_rgb_input(colour_clip):
    red_rgb = np.ascontiguousarray(_solid_bgr((230, 20, 20))[:, :, ::-1])
    assert colour_clip.classify(red_rgb, ["red", "blue"]).class_name == "blue"  # read as BGR by default
    assert colour_clip.classify(red_rgb, ["red", "blue"], color_format="rgb").class_name == "red"
    rgb = colour_clip.embed(red_rgb, color_format="rgb")
    bgr = colour_clip.embed(_solid_bgr((230, 20, 20)))
    np.testing.assert_allclose(rgb.vectors, bgr.vectors, atol=1e-6)


def test_random_towers_shapes_and_normalisation(random_clip):
    images = [_solid_bgr((10, 200, 90)), np.random.default_rng(2).integers(0, 255, (50, 70, 3), dtype=np.uint8)]
    image_vectors = random_clip.embed_images(images)
    assert isinstance(image_vectors, Embeddings) and image_vectors.vectors.shape == (2, DIM)
    single = random_clip(images[1])
    assert isinstance(single, Embeddings) and single.vectors.shape == (1, DIM)
    np.testing.assert_allclose(single.vectors[0], image_vectors.vectors[1], atol=1e-5)
    texts = random_clip.embed_texts(["a photo of a cat", "A PHOTO OF A CAT", "red", "zebra"])
    assert texts.vectors.shape == (4, DIM)
    np.testing.assert_allclose(np.linalg.norm(texts.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(texts.vectors[0], texts.vectors[1], atol=1e-6)  # lower-cased
    assert random_clip.embed_texts("red").vectors.shape == (1, DIM)
    probs = random_clip.classify(images, ["cat", "red", "blue"])
    assert [float(p.confidence.sum()) for p in probs] == pytest.approx([1.0, 1.0], abs=1e-5)


def test_random_towers_with_a_custom_tokenizer(tmp_path):
    rng = np.random.default_rng(3)
    _write_towers(tmp_path, rng.normal(size=(len(VOCAB), 3)), rng.normal(size=(3, DIM)))
    calls = []

    def tokenizer(texts):
        calls.append(list(texts))
        ids = np.array([[1, VOCAB.index("cat"), 2, 0]] * len(texts), np.int64)
        return ids, (ids != 0).astype(np.int64) | (np.arange(4) == 0)

    model = _load(tmp_path, tokenizer=tokenizer)
    assert model.embed_texts(["anything", "else"]).vectors.shape == (2, DIM)
    assert calls == [["anything", "else"]]


def test_tokenizer_adds_markers_maps_unknowns_and_truncates():
    tok = VocabTokenizer(VOCAB, context_length=6)
    ids, mask = tok(["a red zebra!", "a photo of a red cat and more"])
    assert ids[0].tolist() == [1, 4, 7, 3, 3, 2]  # <start> a red <unk> <unk>(!) <end>
    assert mask[0].tolist() == [1] * 6
    assert ids[1, 0] == 1 and ids[1, -1] == 2 and mask[1].sum() == 6
    short_ids, short_mask = tok(["red"])
    assert short_ids[0].tolist() == [1, 7, 2, 0, 0, 0] and short_mask[0].tolist() == [1, 1, 1, 0, 0, 0]


def test_clip_package_errors(tmp_path, random_clip):
    with pytest.raises(InvalidParameterError):
        random_clip.embed_texts([])
    with pytest.raises(InvalidParameterError):
        random_clip.classify(_solid_bgr((1, 2, 3)), [])
    (tmp_path / "vocab.txt").unlink()
    with pytest.raises(CorruptedModelPackageError, match="vocab"):
        _load(tmp_path)
