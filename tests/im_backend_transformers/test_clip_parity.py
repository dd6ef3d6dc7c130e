"""CLIP through im == CLIP through ``transformers`` (``AutoProcessor`` + ``CLIPModel``) on real images, random
weights (a tiny CLIP built with transformers' own config classes, fixed seed, with a byte-level BPE tokenizer
trained in the test; see :func:`testlib.hf_models.tiny_clip`).

In transformers 5 without torchvision, ``AutoProcessor`` gives ``CLIPImageProcessorPil`` (Pillow bicubic resize,
centre crop, rescale, normalise); im reproduces those steps in numpy (``im_models.embeddings._hf_image``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from im_core import AutoModel, Image
from im_core.errors import AllPackagesFailedError, CorruptedModelPackageError, InvalidParameterError

pytestmark = pytest.mark.weights

NAMES = ("astronaut", "camera", "chelsea", "page")
LABELS = ["cat", "person", "rocket", "camera", "page of text"]
TEXTS = ["a photo of a cat", "An astronaut, in SPACE!", "東京の写真 🐱", "x " * 40]


@pytest.fixture(scope="module")
def images(asset) -> list[np.ndarray]:
    return [cv2.imread(str(asset(f"images/{n}.png"))) for n in NAMES]  # BGR, as im takes numpy images


@pytest.fixture(scope="module")
def reference(clip_folder: Path):
    import transformers

    processor = transformers.AutoProcessor.from_pretrained(str(clip_folder))
    model = transformers.CLIPModel.from_pretrained(str(clip_folder)).eval()
    return processor, model


def _unit(x) -> np.ndarray:
    x = getattr(x, "pooler_output", x).detach().numpy()
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _rgb(images: list[np.ndarray]):
    from PIL import Image as PILImage

    return [PILImage.fromarray(np.ascontiguousarray(im[..., ::-1])) for im in images]


def test_reference_parity_pixels_equal_the_image_processor(clip_folder: Path, reference, images) -> None:
    """random weights; the pixel_values themselves: im's numpy pre-processing == CLIPImageProcessorPil's."""
    processor, _ = reference
    assert type(processor.image_processor).__name__ == "CLIPImageProcessorPil"
    model = AutoModel.from_pretrained(clip_folder)
    want = processor(images=_rgb(images), return_tensors="np")["pixel_values"]
    got = model.pre_process([Image(im, "bgr") for im in images])
    assert got.shape == want.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_reference_parity_embeddings_and_zero_shot(clip_folder: Path, reference, images) -> None:
    """random weights: embed_images / embed_texts / classify == get_image_features / get_text_features /
    logits_per_image.softmax of the transformers pipeline on 4 real images."""
    import torch

    processor, ref = reference
    model = AutoModel.from_pretrained(clip_folder)
    prompts = [f"a photo of a {label}" for label in LABELS]
    inputs = processor(text=prompts, images=_rgb(images), return_tensors="pt", padding=True)
    with torch.inference_mode():
        want_images = _unit(ref.get_image_features(pixel_values=inputs["pixel_values"]))
        texts = processor(text=TEXTS, return_tensors="pt", padding=True, truncation=True)
        want_texts = _unit(ref.get_text_features(**texts))
        want_probs = ref(**inputs).logits_per_image.softmax(dim=1).numpy()
    got_images = model.embed_images(images).vectors
    got_texts = model.embed_texts(TEXTS).vectors
    np.testing.assert_allclose(got_images, want_images, atol=1e-4)
    np.testing.assert_allclose(got_texts, want_texts, atol=1e-4)
    assert _cosine(got_images, want_images).min() >= 0.9999
    assert _cosine(got_texts, want_texts).min() >= 0.9999
    results = model.classify(images, LABELS)
    got_probs = np.stack([r.confidence for r in results])
    np.testing.assert_allclose(got_probs, want_probs, atol=1e-4)
    assert [r.class_names for r in results] == [tuple(LABELS)] * 4
    sim = model.similarity(images, prompts)
    np.testing.assert_allclose(sim, got_images @ model.embed_texts(prompts).vectors.T, atol=1e-6)


def test_reference_parity_exported_onnx_package_equals_the_folder(clip_folder: Path, images, tmp_path) -> None:
    """random weights: the ONNX package `im export` writes (real tokenizer files copied) == the torch folder."""
    from im_backend_transformers import export_folder

    out = export_folder(clip_folder, tmp_path / "onnx")
    assert {"tokenizer.json", "vocab.json", "merges.txt", "processor_config.json"} <= {p.name for p in out.iterdir()}
    exported = AutoModel.from_pretrained(out)
    folder = AutoModel.from_pretrained(clip_folder)
    assert exported.metadata.backend == "onnx"
    np.testing.assert_allclose(exported.embed_images(images).vectors, folder.embed_images(images).vectors, atol=1e-5)
    np.testing.assert_allclose(exported.embed_texts(TEXTS).vectors, folder.embed_texts(TEXTS).vectors, atol=1e-5)
    a, b = exported.classify(images[0], LABELS), folder.classify(images[0], LABELS)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-5)


def test_transformers_4_layout_reads_preprocessor_config_and_vocab_files(clip_folder: Path, images, tmp_path) -> None:
    """A folder as transformers 4 saved it: preprocessor_config.json, vocab.json + merges.txt, no tokenizer.json."""
    folder = tmp_path / "v4"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt"):
        shutil.copy(clip_folder / name, folder / name)
    nested = json.loads((clip_folder / "processor_config.json").read_text())["image_processor"]
    (folder / "preprocessor_config.json").write_text(json.dumps(nested))
    old = AutoModel.from_pretrained(folder)
    new = AutoModel.from_pretrained(clip_folder)
    np.testing.assert_allclose(old.embed_images(images).vectors, new.embed_images(images).vectors, atol=1e-6)
    np.testing.assert_allclose(old.embed_texts(TEXTS).vectors, new.embed_texts(TEXTS).vectors, atol=1e-6)


def test_a_folder_without_tokenizer_files_says_how_to_fix_it(clip_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "processor_config.json"):
        shutil.copy(clip_folder / name, folder / name)
    with pytest.raises(AllPackagesFailedError) as info:
        AutoModel.from_pretrained(folder)
    assert isinstance(info.value.__cause__ or info.value, Exception)
    assert "tokenizer.json or vocab.json + merges.txt" in str(info.value) and "tokenizer=" in str(info.value)


def test_empty_label_list_and_bad_texts_are_refused(clip_folder: Path, images) -> None:
    model = AutoModel.from_pretrained(clip_folder)
    with pytest.raises(InvalidParameterError, match="at least one label"):
        model.classify(images[0], [])
    with pytest.raises(InvalidParameterError):
        model.embed_texts([])


def test_bad_processor_config_is_reported(clip_folder: Path, tmp_path: Path) -> None:
    from im_models.embeddings._hf_image import HFImageProcessor

    with pytest.raises(CorruptedModelPackageError, match="resample=0"):
        HFImageProcessor.from_config({"resample": 0}, mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(CorruptedModelPackageError, match="crop_size"):
        HFImageProcessor.from_config({"do_center_crop": True, "crop_size": "x"}, mean=(0, 0, 0), std=(1, 1, 1))
