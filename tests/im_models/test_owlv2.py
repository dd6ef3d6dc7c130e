"""OWLv2 open-vocabulary detection against ``transformers`` (processor + ``Owlv2ForObjectDetection`` +
``post_process_grounded_object_detection``) on a tiny randomly initialised model (fixed seed) and real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel, Detections
from im_core.errors import InvalidParameterError

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

CLASSES = ["a cat", "remote control", "a photo of a dog"]
IMAGES = ("images/astronaut.png", "images/camera.png", "images/chelsea.png", "images/page.png")


@pytest.fixture(scope="module")
def owl_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_owlv2

    return tiny_owlv2(tmp_path_factory.mktemp("hf") / "tiny-owlv2")


@pytest.fixture(scope="module")
def images(asset) -> list[np.ndarray]:
    from PIL import Image

    found = [np.asarray(Image.open(asset(name)).convert("RGB")) for name in IMAGES]
    return [*found, np.ascontiguousarray(found[2][:40, :57])]  # a small one: upsampled, not blurred


@pytest.fixture(scope="module")
def reference(owl_folder: Path):
    """The transformers pipeline: image → processor → Owlv2ForObjectDetection → post-processing, best first."""
    from transformers import AutoProcessor, Owlv2ForObjectDetection

    model = Owlv2ForObjectDetection.from_pretrained(str(owl_folder)).eval()
    processor = AutoProcessor.from_pretrained(str(owl_folder))
    return lambda image, classes, threshold: _reference(model, processor, image, classes, threshold)


def _reference(model, processor, image: np.ndarray, classes: list[str], threshold: float) -> dict:
    import torch
    from PIL import Image

    inputs = processor(text=[classes], images=Image.fromarray(image), return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    h, w = image.shape[:2]
    found = processor.post_process_grounded_object_detection(
        outputs, threshold=threshold, target_sizes=[(h, w)], text_labels=[classes]
    )[0]
    order = torch.argsort(-found["scores"], stable=True)
    return {k: found[k][order].numpy() for k in ("boxes", "scores", "labels")}


def test_reference_parity_owlv2_random_weights(owl_folder: Path, images: list[np.ndarray], reference) -> None:
    """Random weights: im (numpy pre/post-processing, parts as sessions) == the transformers pipeline, on five real
    images (square, grayscale, landscape, a small one that is upsampled): boxes within 0.5 px, scores within 1e-4,
    the same labels, at a low threshold so that dozens of boxes are compared per image."""
    model = AutoModel.from_pretrained(owl_folder, session_options=ONE_THREAD)
    assert (model.metadata.architecture, model.metadata.task) == ("owlv2", "open-vocabulary-object-detection")
    compared = 0
    for image in images:
        got = model(image, classes=CLASSES, confidence=0.05, color_format="rgb")
        want = reference(image, CLASSES, 0.05)
        assert len(got) == len(want["scores"]) >= 5
        np.testing.assert_allclose(got.xyxy, want["boxes"], atol=0.5)
        np.testing.assert_allclose(got.confidence, want["scores"], atol=1e-4)
        np.testing.assert_array_equal(got.class_id, want["labels"])
        assert got.class_names == tuple(CLASSES)
        compared += len(got)
    assert compared >= 100


def test_pre_processing_equals_the_image_processor(owl_folder: Path, images: list[np.ndarray]) -> None:
    """The pixels im feeds the network equal Owlv2ImageProcessor's (pad to square, blur, linear resize) to 1e-5."""
    from PIL import Image
    from transformers import AutoProcessor

    from im_core import Image as ImImage

    model = AutoModel.from_pretrained(owl_folder, session_options=ONE_THREAD)
    processor = AutoProcessor.from_pretrained(str(owl_folder))
    for image in images:
        want = processor(images=Image.fromarray(image), return_tensors="np")["pixel_values"]
        got = model.pre_process([ImImage(image, "rgb")], classes=CLASSES).pixels
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_query_ids_equal_the_processors(owl_folder: Path) -> None:
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(owl_folder))
    model = AutoModel.from_pretrained(owl_folder, session_options=ONE_THREAD)
    rng = np.random.default_rng(0)
    alphabet = list("abcdefghij klmnopqrstuvwxyz ,.!?'-ÄéüßÑ0123456789 ")
    texts = ["a cat", "Remote Control", "a photo of the dog's face", "  spaced   out ", "ünïcödé!", "x-ray, 3 cats"]
    texts += ["".join(rng.choice(alphabet, size=int(rng.integers(1, 12)))).strip() or "a" for _ in range(200)]
    want = processor(text=[texts], return_tensors="np")
    short = [i for i, row in enumerate(want["input_ids"]) if len(row) == 16]  # the reference fails on longer ones
    ids, mask = model.tokenize([texts[i] for i in short])
    assert len(short) > 150
    np.testing.assert_array_equal(ids, np.stack([want["input_ids"][i] for i in short]))
    np.testing.assert_array_equal(mask, np.stack([want["attention_mask"][i] for i in short]))
    long_ids, _ = model.tokenize(["a " * 40])  # truncated to the context, still ending with end-of-text
    assert long_ids.shape == (1, 16) and long_ids[0, -1] == processor.tokenizer.eos_token_id


def test_exported_onnx_package_gives_the_folders_results(
    owl_folder: Path, images: list[np.ndarray], tmp_path: Path
) -> None:
    from im_backend_transformers import export_folder

    out = export_folder(owl_folder, tmp_path / "onnx", backend="onnx")
    assert {"image.onnx", "text.onnx", "tokenizer.json", "processor_config.json"} <= {p.name for p in out.iterdir()}
    exported = AutoModel.from_pretrained(out)
    folder = AutoModel.from_pretrained(owl_folder, session_options=ONE_THREAD)
    assert exported.metadata.backend == "onnx"
    assert exported.metadata.task == "open-vocabulary-object-detection"
    for image in images[:3]:
        got = exported(image, classes=CLASSES, confidence=0.05, color_format="rgb")
        want = folder(image, classes=CLASSES, confidence=0.05, color_format="rgb")
        assert len(got) == len(want) >= 5
        np.testing.assert_allclose(got.xyxy, want.xyxy, atol=0.05)
        np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-4)
        np.testing.assert_array_equal(got.class_id, want.class_id)


def test_query_embeddings_are_computed_once_per_text(owl_folder: Path, images: list[np.ndarray]) -> None:
    model = AutoModel.from_pretrained(owl_folder, session_options=ONE_THREAD)
    calls: list[int] = []
    run = model.text_session.run
    model.text_session.run = lambda feeds, names=None: calls.append(len(feeds["input_ids"])) or run(feeds, names)
    first = model(images[0], classes=CLASSES, color_format="rgb")
    again = model(images[0], classes=CLASSES, color_format="rgb")
    model(images[1], classes=[CLASSES[0], "a person"], color_format="rgb")
    assert calls == [3, 1]  # the second call embeds nothing; the third only the new text
    assert first == again


def test_a_batch_gives_each_image_its_own_result(owl_folder: Path, images: list[np.ndarray]) -> None:
    model = AutoModel.from_pretrained(owl_folder, session_options=ONE_THREAD)
    batch = model(images[:3], classes=CLASSES, confidence=0.05, color_format="rgb")
    for image, got in zip(images[:3], batch, strict=True):
        alone = model(image, classes=CLASSES, confidence=0.05, color_format="rgb")
        np.testing.assert_allclose(got.xyxy, alone.xyxy, atol=1e-3)
        np.testing.assert_array_equal(got.class_id, alone.class_id)


def test_nms_and_max_detections(owl_folder: Path, images: list[np.ndarray]) -> None:
    from im_models.common import box_iou

    model = AutoModel.from_pretrained(owl_folder, session_options=ONE_THREAD)
    everything = model(images[2], classes=CLASSES, confidence=0.0, color_format="rgb")
    assert len(everything) == 64  # one box per patch (8 × 8) above a zero threshold
    assert np.all(np.diff(everything.confidence) <= 0)
    top = model(images[2], classes=CLASSES, confidence=0.0, max_detections=5, color_format="rgb")
    assert top == everything[:5]
    kept = model(images[2], classes=CLASSES, confidence=0.0, iou_threshold=0.3, color_format="rgb")
    assert isinstance(kept, Detections) and 0 < len(kept) < len(everything)
    for c in np.unique(kept.class_id):
        same = kept[kept.class_id == c]
        iou = box_iou(same.xyxy, same.xyxy) - np.eye(len(same))
        assert iou.max(initial=0.0) <= 0.3 + 1e-6


@pytest.mark.parametrize("classes", [[], None, "", ["a cat", "  "], [3]])
def test_bad_query_lists_are_refused(owl_folder: Path, images: list[np.ndarray], classes) -> None:
    model = AutoModel.from_pretrained(owl_folder, session_options=ONE_THREAD)
    params = {} if classes is None else {"classes": classes}
    with pytest.raises(InvalidParameterError, match="classes"):
        model(images[0], color_format="rgb", **params)
