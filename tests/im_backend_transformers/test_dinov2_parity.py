"""DINOv2 through im == DINOv2 through ``transformers`` (``AutoImageProcessor`` + ``Dinov2Model``) on real images,
random weights (a tiny DINOv2 built with transformers' config classes, fixed seed; :func:`testlib.hf_models.
tiny_dinov2`), and the linear probe == ``Dinov2ForImageClassification``'s head (CLS ⊕ mean of patch tokens)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from im_core import AutoModel, Image
from im_core.errors import AllPackagesFailedError, InvalidParameterError

pytestmark = pytest.mark.weights

NAMES = ("astronaut", "camera", "chelsea", "page")


@pytest.fixture(scope="module")
def dino_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_dinov2

    return tiny_dinov2(tmp_path_factory.mktemp("hf") / "tiny-dinov2")


@pytest.fixture(scope="module")
def images(asset) -> list[np.ndarray]:
    return [cv2.imread(str(asset(f"images/{n}.png"))) for n in NAMES]


def _pil(images):
    from PIL import Image as PILImage

    return [PILImage.fromarray(np.ascontiguousarray(im[..., ::-1])) for im in images]


def _reference_tokens(folder: Path, images) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from transformers import AutoImageProcessor, Dinov2Model

    processor = AutoImageProcessor.from_pretrained(str(folder))
    assert type(processor).__name__ == "BitImageProcessorPil"
    model = Dinov2Model.from_pretrained(str(folder)).eval()
    pixels = processor(images=_pil(images), return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        out = model(pixel_values=pixels)
    return pixels.numpy(), out.last_hidden_state.numpy()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_reference_parity_dinov2_embeddings(dino_folder: Path, images) -> None:
    """random weights: pixel_values == BitImageProcessorPil's; cls / mean / cls+mean pooling == the same pooling of
    Dinov2Model's last_hidden_state (cls = its pooler_output) on 4 real images."""
    pixels, tokens = _reference_tokens(dino_folder, images)
    model = AutoModel.from_pretrained(dino_folder)
    assert (model.metadata.architecture, model.metadata.task) == ("dinov2", "embedding")
    np.testing.assert_allclose(model.pre_process([Image(im, "bgr") for im in images]), pixels, atol=1e-6, rtol=0)
    want = {
        "cls": tokens[:, 0],
        "mean": tokens[:, 1:].mean(axis=1),
        "cls+mean": np.concatenate([tokens[:, 0], tokens[:, 1:].mean(axis=1)], axis=1),
    }
    for pooling, vectors in want.items():
        got = AutoModel.from_pretrained(dino_folder, pooling=pooling).embed(images).vectors
        np.testing.assert_allclose(got, _unit(vectors), atol=1e-4)
        assert ((got * _unit(vectors)).sum(axis=1) >= 0.9999).all()
    raw = AutoModel.from_pretrained(dino_folder, normalize=False).embed(images).vectors
    np.testing.assert_allclose(raw, tokens[:, 0], atol=1e-4, rtol=1e-4)


def test_reference_parity_exported_onnx_equals_the_folder(dino_folder: Path, images, tmp_path: Path) -> None:
    """random weights: the ONNX backbone (dynamic H, W: position embeddings interpolated in the graph) == torch."""
    from im_backend_transformers import export_folder

    out = export_folder(dino_folder, tmp_path / "onnx")
    assert (out / "backbone.onnx").is_file() and (out / "preprocessor_config.json").is_file()
    exported = AutoModel.from_pretrained(out, pooling="cls+mean")
    assert exported.metadata.backend == "onnx"
    folder = AutoModel.from_pretrained(dino_folder, pooling="cls+mean")
    np.testing.assert_allclose(exported.embed(images).vectors, folder.embed(images).vectors, atol=1e-5)


def test_bad_pooling_is_refused(dino_folder: Path) -> None:
    with pytest.raises((InvalidParameterError, AllPackagesFailedError), match="pooling"):
        AutoModel.from_pretrained(dino_folder, pooling="max")


def _probe_package(tmp_path: Path, backbone: Path, layout: str) -> tuple[Path, object]:
    """A Dinov2ForImageClassification (random weights, 3 classes): its backbone as the folder, its classifier as
    linear_probe.<layout>, pooling cls+mean (what that head reads)."""
    import torch
    from transformers import Dinov2Config, Dinov2ForImageClassification

    torch.manual_seed(1)
    config = Dinov2Config.from_pretrained(str(backbone), num_labels=3)
    reference = Dinov2ForImageClassification(config).eval()
    folder = tmp_path / f"probe-{layout}"
    reference.dinov2.save_pretrained(str(folder))
    shutil.copy(backbone / "preprocessor_config.json", folder / "preprocessor_config.json")
    weight = reference.classifier.weight.detach().numpy()
    bias = reference.classifier.bias.detach().numpy()
    if layout == "safetensors":
        from safetensors.numpy import save_file

        save_file({"weight": weight, "bias": bias}, str(folder / "linear_probe.safetensors"))
    else:
        np.savez(folder / "linear_probe.npz", weight=weight, bias=bias)
    (folder / "probe_config.json").write_text(json.dumps({"pooling": "cls+mean"}))
    (folder / "class_names.txt").write_text("cat\nperson\nrocket\n")
    (folder / "model_config.json").write_text(
        json.dumps({"model_architecture": "dinov2-probe", "task_type": "classification"})
    )
    return folder, reference


@pytest.mark.parametrize("layout", ["safetensors", "npz"])
def test_reference_parity_linear_probe_equals_dinov2_for_image_classification(
    dino_folder: Path, images, tmp_path: Path, layout: str
) -> None:
    """random weights: the probe over CLS ⊕ mean(patch tokens) == Dinov2ForImageClassification(...).logits.softmax."""
    import torch
    from transformers import AutoImageProcessor

    folder, reference = _probe_package(tmp_path, dino_folder, layout)
    pixels = AutoImageProcessor.from_pretrained(str(dino_folder))(images=_pil(images), return_tensors="pt")
    with torch.inference_mode():
        want = reference(**pixels).logits.softmax(dim=1).numpy()
    model = AutoModel.from_pretrained(folder)
    assert (model.metadata.architecture, model.metadata.task) == ("dinov2-probe", "classification")
    results = model(images)
    np.testing.assert_allclose(np.stack([r.confidence for r in results]), want, atol=1e-4)
    assert results[0].class_names == ("cat", "person", "rocket")


def test_probe_without_weights_or_with_a_wrong_width_says_so(dino_folder: Path, tmp_path: Path) -> None:
    folder, _ = _probe_package(tmp_path, dino_folder, "npz")
    (folder / "probe_config.json").write_text(json.dumps({"pooling": "cls"}))  # 32-d, the probe takes 64
    with pytest.raises(Exception, match="64-d embeddings"):
        AutoModel.from_pretrained(folder)(np.zeros((40, 40, 3), np.uint8))
    (folder / "linear_probe.npz").unlink()
    with pytest.raises(AllPackagesFailedError, match="linear_probe"):
        AutoModel.from_pretrained(folder)


# -- DINOv3 (register tokens, RoPE; its processor resizes rescaled floats) -----------------------------------------


def _dinov3_reference_pixels(folder: Path, images) -> np.ndarray:
    """DINOv3ViTImageProcessorFast's steps (rescale → antialiased bilinear resize → normalise) written with torch:
    transformers has no Pillow backend for it and torchvision (which it calls) is not installed here."""
    import torch

    config = json.loads((folder / "preprocessor_config.json").read_text())
    size = (config["size"]["height"], config["size"]["width"])
    mean = torch.tensor(config["image_mean"]).view(1, 3, 1, 1)
    std = torch.tensor(config["image_std"]).view(1, 3, 1, 1)
    out = []
    for im in images:
        x = torch.from_numpy(np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1)))[None].float()
        x = x * config["rescale_factor"]
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        out.append(((x - mean) / std).numpy())
    return np.concatenate(out)


def test_reference_parity_dinov3_embeddings_and_export(images, tmp_path: Path) -> None:
    """random weights: DINOv3 (2 register tokens) — pixels == the processor's steps (within 1e-5), cls / mean of
    the patch tokens (registers skipped) == DINOv3ViTModel's; the exported ONNX package == the folder."""
    import torch
    from transformers import DINOv3ViTModel

    from im_backend_transformers import export_folder
    from testlib.hf_models import tiny_dinov3

    folder = tiny_dinov3(tmp_path / "tiny-dinov3")
    pixels = _dinov3_reference_pixels(folder, images)
    reference = DINOv3ViTModel.from_pretrained(str(folder)).eval()
    with torch.inference_mode():
        tokens = reference(pixel_values=torch.from_numpy(pixels)).last_hidden_state.numpy()
    model = AutoModel.from_pretrained(folder, pooling="mean")
    assert (model.metadata.architecture, model.registers) == ("dinov3", 2)
    np.testing.assert_allclose(model.pre_process([Image(im, "bgr") for im in images]), pixels, atol=1e-5, rtol=0)
    np.testing.assert_allclose(model.embed(images).vectors, _unit(tokens[:, 3:].mean(axis=1)), atol=1e-4)
    cls = AutoModel.from_pretrained(folder).embed(images).vectors
    np.testing.assert_allclose(cls, _unit(tokens[:, 0]), atol=1e-4)
    exported = AutoModel.from_pretrained(export_folder(folder, tmp_path / "onnx"))
    np.testing.assert_allclose(exported.embed(images).vectors, cls, atol=1e-5)
