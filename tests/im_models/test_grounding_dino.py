"""Grounding DINO open-vocabulary detection against ``transformers`` (processor + ``GroundingDinoForObjectDetection``
+ ``post_process_grounded_object_detection``) on a tiny randomly initialised model (fixed seed) and real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel
from im_core.errors import InvalidParameterError, ModelLoadingError

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread while this module runs: on a shared 2-core machine, torch's thread pool waiting for busy
    cores makes each small op take tens of milliseconds (a (2000, 32) layer norm: 35 ms with 2 threads, 0.2 ms
    with 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: the transformers backend's sessions keep one thread too (it raises a single thread to the CPU count otherwise)
ONE_THREAD = {"num_threads": 1}

CLASSES = ["a cat", "Remote Control", "a photo of a dog"]
IMAGES = ("images/astronaut.png", "images/camera.png", "images/chelsea.png", "images/page.png")


@pytest.fixture(scope="module")
def gd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_grounding_dino

    return tiny_grounding_dino(tmp_path_factory.mktemp("hf") / "tiny-grounding-dino")


@pytest.fixture(scope="module")
def images(asset) -> list[np.ndarray]:
    from PIL import Image

    found = [np.asarray(Image.open(asset(name)).convert("RGB")) for name in IMAGES]
    return [*found, np.ascontiguousarray(found[0][:70, :300])]  # a wide one: the long side limits the size


@pytest.fixture(scope="module")
def model(gd_folder: Path):
    return AutoModel.from_pretrained(gd_folder, session_options=ONE_THREAD)


@pytest.fixture(scope="module")
def reference(gd_folder: Path):
    """The transformers pipeline: image → processor → model → post_process_grounded_object_detection, best first."""
    import torch
    from PIL import Image
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    net = GroundingDinoForObjectDetection.from_pretrained(str(gd_folder)).eval()
    processor = AutoProcessor.from_pretrained(str(gd_folder))

    def run(image: np.ndarray, classes: list[str], threshold: float, text_threshold: float) -> dict:
        inputs = processor(images=Image.fromarray(image), text=classes, return_tensors="pt")
        with torch.inference_mode():
            outputs = net(**inputs)
        found = processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold, text_threshold, target_sizes=[image.shape[:2]]
        )[0]
        order = torch.argsort(-found["scores"], stable=True)
        return {
            "boxes": found["boxes"][order].numpy(),
            "scores": found["scores"][order].numpy(),
            "text_labels": [found["text_labels"][i] for i in order.tolist()],
            "input_ids": inputs["input_ids"][0].numpy(),
            "pixel_values": inputs["pixel_values"].numpy(),
        }

    return run


def test_reference_parity_grounding_dino_random_weights(model, images, reference) -> None:
    """Random weights: im == the transformers pipeline on five real images (square, grayscale, landscape, a wide
    crop): boxes within 0.5 px, scores within 1e-4, the same text labels (``data["phrase"]``)."""
    assert (model.metadata.architecture, model.metadata.task) == ("grounding-dino", "open-vocabulary-object-detection")
    compared = 0
    for image in images:
        got = model(image, classes=CLASSES, confidence=0.3, text_threshold=0.3, color_format="rgb")
        want = reference(image, CLASSES, 0.3, 0.3)
        assert len(got) == len(want["scores"]) >= 5
        np.testing.assert_allclose(got.xyxy, want["boxes"], atol=0.5)
        np.testing.assert_allclose(got.confidence, want["scores"], atol=1e-4)
        assert list(got.data["phrase"]) == want["text_labels"]
        assert got.class_names == tuple(CLASSES) and set(got.class_id) <= {0, 1, 2}
        compared += len(got)
    assert compared >= 50


def test_pre_processing_and_tokens_equal_the_processors(model, images, reference) -> None:
    from im_core import Image

    for image in images:
        want = reference(image, CLASSES, 0.3, 0.3)
        prepared = model.pre_process([Image(image, "rgb")], classes=CLASSES)
        np.testing.assert_allclose(prepared.pixels, want["pixel_values"], atol=1e-6)
        np.testing.assert_array_equal(prepared.ids, want["input_ids"])


def test_each_token_belongs_to_its_query(model) -> None:
    ids, owner = model.tokenize(["a cat", "Remote Control", "a photo of a dog"])
    text = [model.tokenizer.id_to_token(int(i)) for i in ids]
    assert text[0] == "[CLS]" and text[-1] == "[SEP]"
    assert [t for t, o in zip(text, owner) if o == 1] == ["remote", "control"]
    assert all(o == -1 for t, o in zip(text, owner) if t in (".", "[CLS]", "[SEP]"))
    assert sorted(set(owner.tolist())) == [-1, 0, 1, 2]


def test_class_id_is_the_query_of_the_most_probable_token(model) -> None:
    """Post-processing on hand-set logits: each box's class is the query owning its most probable query token."""
    from im_core import Image

    prepared = model.pre_process([Image(np.zeros((96, 96, 3), np.uint8), "rgb")], classes=CLASSES)
    ids, owner = prepared.ids, prepared.owner
    logits = np.full((1, 30, 256), -np.inf, np.float32)
    logits[0, :, : len(ids)] = -5.0
    for q, query in enumerate([2, 0, 1, 2]):
        logits[0, q, np.flatnonzero(owner == query)[-1]] = 3.0 - q * 0.1
    logits[0, 3, 0] = 9.0  # [CLS] is the most probable position, but it belongs to no query
    boxes = np.tile(np.array([0.5, 0.5, 0.2, 0.2], np.float32), (1, 30, 1))
    found = model.post_process([logits, boxes], prepared, confidence=0.5)[0]
    assert found.class_id.tolist() == [2, 2, 0, 1]  # sorted by score: query 3 (9.0), then 0, 1, 2
    np.testing.assert_allclose(found.xyxy[0], [38.4, 38.4, 57.6, 57.6], atol=1e-4)


def test_resized_size_equals_transformers(model) -> None:
    from transformers.image_transforms import get_size_with_aspect_ratio

    from im_models.open_vocab._grounding_dino import resized_size

    rng = np.random.default_rng(0)
    for h, w in [(480, 640), (640, 480), (800, 800), (300, 2000), (1, 7), *rng.integers(1, 3000, (200, 2))]:
        for shortest, longest in [(800, 1333), (96, 144), (800, None)]:
            assert resized_size(int(h), int(w), shortest, longest) == get_size_with_aspect_ratio(
                (int(h), int(w)), shortest, longest
            )


def test_a_batch_gives_each_image_its_own_result(model, images) -> None:
    batch = model(images, classes=CLASSES, confidence=0.3, color_format="rgb")
    for image, got in zip(images, batch, strict=True):
        alone = model(image, classes=CLASSES, confidence=0.3, color_format="rgb")
        np.testing.assert_allclose(got.xyxy, alone.xyxy, atol=1e-3)
        np.testing.assert_array_equal(got.class_id, alone.class_id)


def test_export_is_refused_with_the_reason(gd_folder: Path, tmp_path: Path) -> None:
    from im_backend_transformers import export_folder

    with pytest.raises(ModelLoadingError, match="does not export"):
        export_folder(gd_folder, tmp_path / "onnx")


@pytest.mark.parametrize("classes", [[], None, ["a cat", ""]])
def test_bad_query_lists_are_refused(model, images, classes) -> None:
    params = {} if classes is None else {"classes": classes}
    with pytest.raises(InvalidParameterError, match="classes"):
        model(images[0], color_format="rgb", **params)
