"""SegFormer: reference-parity tests with random weights (a tiny model built with transformers' own config classes,
fixed seed), on the pinned real photographs; the exported ONNX package gives the folder's results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel, SemanticSegmentation
from im_core.errors import AllPackagesFailedError, CorruptedModelPackageError, InvalidParameterError

pytest.importorskip("transformers")

PHOTOS = ("images/astronaut.png", "images/chelsea.png", "images/camera.png")
NAMES = ("wall", "building", "sky", "floor", "tree")


@pytest.fixture(scope="module")
def segformer_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_segformer

    return tiny_segformer(tmp_path_factory.mktemp("hf") / "tiny-segformer", labels=NAMES)


def _rgb(path: Path) -> np.ndarray:
    from PIL import Image as PILImage

    return np.asarray(PILImage.open(path).convert("RGB"))


def _reference(folder: Path, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """transformers' pipeline: AutoImageProcessor + the model + post_process_semantic_segmentation at the image
    size → (class map (H, W), upsampled logits (K, H, W))."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    processor = AutoImageProcessor.from_pretrained(str(folder))
    model = AutoModelForSemanticSegmentation.from_pretrained(str(folder)).eval()
    inputs = processor(images=rgb, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    out = processor.post_process_semantic_segmentation(
        outputs, target_sizes=[rgb.shape[:2]], return_segmentation_scores=True
    )[0]
    return out.segmentation.numpy(), out.segmentation_scores.numpy()


def _assert_class_maps_agree(got: np.ndarray, want: np.ndarray) -> None:
    """≥ 99.9 % of the pixels agree and every present class's mask has IoU ≥ 0.99."""
    assert got.shape == want.shape
    assert (got == want).mean() >= 0.999
    for c in np.union1d(np.unique(got), np.unique(want)):
        a, b = got == c, want == c
        assert (a & b).sum() / (a | b).sum() >= 0.99, f"class {c}"


@pytest.mark.parametrize("photo", PHOTOS)
def test_reference_parity_random_weights(segformer_folder: Path, asset, photo: str) -> None:
    """Random weights: im's class map equals transformers' processor + model + post_process_semantic_segmentation
    (per-class mask IoU ≥ 0.99; in practice every pixel), the confidence is the softmax maximum of its logits."""
    rgb = _rgb(asset(photo))
    model = AutoModel.from_pretrained(segformer_folder)
    assert (model.metadata.architecture, model.metadata.task) == ("segformer", "semantic-segmentation")
    result = model(rgb, color_format="rgb")
    assert isinstance(result, SemanticSegmentation)
    assert result.class_names == NAMES and result.background_class_id is None
    want, logits = _reference(segformer_folder, rgb)
    assert len(np.unique(want)) >= 2  # the random model segments: the comparison is not between two constant maps
    _assert_class_maps_agree(result.class_map, want)
    probs = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
    np.testing.assert_allclose(result.confidence, probs.max(0), atol=1e-5)


def test_reference_parity_of_a_non_square_crop_and_a_batch(segformer_folder: Path, asset) -> None:
    """Random weights: mixed sizes in one call (one network size, so one batch) give each image the reference's
    map, and the map it gets alone."""
    rgb = _rgb(asset("images/chelsea.png"))
    crops = [rgb[:200, :97], rgb[40:100, 10:400], rgb]
    model = AutoModel.from_pretrained(segformer_folder)
    results = model(crops, color_format="rgb")
    for crop, result in zip(crops, results):
        _assert_class_maps_agree(result.class_map, _reference(segformer_folder, crop)[0])
        alone = model(crop, color_format="rgb")  # the same up to float rounding of a batch of 3 vs 1 in torch
        np.testing.assert_array_equal(result.class_map, alone.class_map)
        np.testing.assert_allclose(result.confidence, alone.confidence, atol=1e-5)


def test_exported_onnx_package_gives_the_folders_segmentation(segformer_folder: Path, asset, tmp_path: Path) -> None:
    from im_backend_transformers import export_folder

    out = export_folder(segformer_folder, tmp_path / "onnx")
    exported = AutoModel.from_pretrained(out)
    assert exported.metadata.backend == "onnx"
    assert exported.session.inputs[0].shape[2:] == (None, None)  # dynamic height and width
    original = AutoModel.from_pretrained(segformer_folder)
    for photo in ("images/astronaut.png", "images/chelsea.png"):
        rgb = _rgb(asset(photo))
        a, b = exported(rgb, color_format="rgb"), original(rgb, color_format="rgb")
        _assert_class_maps_agree(a.class_map, b.class_map)
        np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
    # a network size other than the processor's: the dynamic graph runs it like the folder
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 64)).astype(np.float32)
    name = exported.session.inputs[0].name
    got = np.asarray(exported.session.run({name: x})["logits"])
    want = np.asarray(original.session.run({name: x})["logits"])
    assert got.shape == (1, len(NAMES), 24, 16)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_a_background_label_takes_the_confidence_threshold(tmp_path: Path, asset) -> None:
    from testlib.hf_models import tiny_segformer

    names = ("background", "road", "car")
    folder = tiny_segformer(tmp_path / "bg", labels=names, seed=1)
    model = AutoModel.from_pretrained(folder)
    rgb = _rgb(asset("images/astronaut.png"))
    plain = model(rgb, color_format="rgb")
    assert plain.background_class_id == 0
    _assert_class_maps_agree(plain.class_map, _reference(folder, rgb)[0])  # default: no threshold, as the reference
    cut = float(np.median(plain.confidence))
    strict = model(rgb, color_format="rgb", confidence=cut)
    low = plain.confidence < cut
    assert low.any() and (strict.class_map[low] == 0).all() and (strict.confidence[low] == 0).all()
    np.testing.assert_array_equal(strict.class_map[~low], plain.class_map[~low])


def test_confidence_without_a_background_class_is_refused(segformer_folder: Path) -> None:
    model = AutoModel.from_pretrained(segformer_folder)
    with pytest.raises(InvalidParameterError, match="no `background` class"):
        model(np.zeros((32, 48, 3), np.uint8), confidence=0.5)


def test_bad_package_files_are_named(segformer_folder: Path, tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(segformer_folder, tmp_path / "bad"))
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**processor, "size": {"shortest_edge": 64}}))
    with pytest.raises(AllPackagesFailedError, match="size must be") as info:
        AutoModel.from_pretrained(folder)
    assert isinstance(info.value.__cause__, CorruptedModelPackageError)
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "id2label": {"0": "wall", "2": "sky"}}))
    with pytest.raises(AllPackagesFailedError, match=r"id2label must number the classes 0\.\.1"):
        AutoModel.from_pretrained(folder)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize(("src", "dst"), [((16, 16), (300, 451)), ((37, 29), (12, 100)), ((5, 7), (5, 7))])
def test_resize_like_torch_equals_torch_interpolate(mode: str, src: tuple[int, int], dst: tuple[int, int]) -> None:
    """The numpy kernels behind SegFormer's and Depth-Anything's post-processing equal PyTorch's (up-, down- and
    same-size resizes, several channels)."""
    torch = pytest.importorskip("torch")
    from im_models.common import resize_like_torch

    x = np.random.default_rng(0).standard_normal((3, *src)).astype(np.float32) * 4
    want = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=dst, mode=mode, align_corners=False)
    got = resize_like_torch(x, dst, mode)  # type: ignore[arg-type]
    assert got.shape == (3, *dst) and got.dtype == np.float32
    np.testing.assert_allclose(got, want[0].numpy(), rtol=0, atol=5e-5)
    with pytest.raises(InvalidParameterError, match="mode must be"):
        resize_like_torch(x, dst, "nearest")  # type: ignore[arg-type]
