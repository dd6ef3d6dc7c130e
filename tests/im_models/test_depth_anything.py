"""Depth-Anything: reference-parity tests with random weights (a tiny model built with transformers' own config
classes, fixed seed), on the pinned real photographs; the exported ONNX package gives the folder's results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel, DepthMap
from im_core.errors import InvalidParameterError

pytest.importorskip("transformers")

PHOTOS = ("images/astronaut.png", "images/chelsea.png", "images/camera.png")


@pytest.fixture(scope="module")
def depth_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_depth_anything

    return tiny_depth_anything(tmp_path_factory.mktemp("hf") / "tiny-depth")


def _rgb(path: Path) -> np.ndarray:
    from PIL import Image as PILImage

    return np.asarray(PILImage.open(path).convert("RGB"))


def _reference(folder: Path, rgb: np.ndarray) -> np.ndarray:
    """transformers' pipeline: AutoImageProcessor + the model + post_process_depth_estimation at the image size."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    processor = AutoImageProcessor.from_pretrained(str(folder))
    model = AutoModelForDepthEstimation.from_pretrained(str(folder)).eval()
    inputs = processor(images=rgb, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    out = processor.post_process_depth_estimation(outputs, target_sizes=[rgb.shape[:2]])
    return out[0]["predicted_depth"].numpy()


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


@pytest.mark.parametrize("photo", PHOTOS)
def test_reference_parity_random_weights(depth_folder: Path, asset, photo: str) -> None:
    """Random weights: im's depth equals transformers' processor + model + post-processing within 1e-3 relative."""
    rgb = _rgb(asset(photo))
    model = AutoModel.from_pretrained(depth_folder)
    assert (model.metadata.architecture, model.metadata.task) == ("depth-anything", "depth-estimation")
    result = model(rgb, color_format="rgb")
    assert isinstance(result, DepthMap) and result.kind == "relative"
    want = _reference(depth_folder, rgb)
    assert result.shape == rgb.shape[:2] == want.shape
    assert want.std() > 1.0  # the random model's depth has structure: the comparison is not between two zeros
    assert _relative_error(result.depth, want) < 1e-3


def test_reference_parity_of_a_non_square_crop_and_a_batch(depth_folder: Path, asset) -> None:
    """Random weights: mixed sizes in one call give each image its own network size, as one at a time."""
    rgb = _rgb(asset("images/astronaut.png"))
    crops = [rgb[:300, :170], rgb[40:100, 10:400], rgb]
    model = AutoModel.from_pretrained(depth_folder)
    results = model(crops, color_format="rgb")
    for crop, result in zip(crops, results):
        assert _relative_error(result.depth, _reference(depth_folder, crop)) < 1e-3
        assert result == model(crop, color_format="rgb")


def test_exported_onnx_package_gives_the_folders_depth(depth_folder: Path, asset, tmp_path: Path) -> None:
    from im_backend_transformers import export_folder

    out = export_folder(depth_folder, tmp_path / "onnx")
    rgb = _rgb(asset("images/chelsea.png"))
    exported = AutoModel.from_pretrained(out)
    assert exported.metadata.backend == "onnx"
    original = AutoModel.from_pretrained(depth_folder)
    for image in (rgb, rgb[:200, :333]):  # two network sizes: the exported graph keeps dynamic height and width
        a, b = exported(image, color_format="rgb"), original(image, color_format="rgb")
        assert _relative_error(a.depth, b.depth) < 1e-4


def test_metric_config_gives_metric_depth(tmp_path: Path, asset) -> None:
    from testlib.hf_models import tiny_depth_anything

    folder = tiny_depth_anything(tmp_path / "metric", metric=True)
    rgb = _rgb(asset("images/camera.png"))
    result = AutoModel.from_pretrained(folder)(rgb, color_format="rgb")
    assert result.kind == "metric"
    assert _relative_error(result.depth, _reference(folder, rgb)) < 1e-3


def test_depth_map_round_trips_and_validates() -> None:
    depth = DepthMap(np.arange(12, dtype=np.float32).reshape(3, 4), kind="metric")
    assert DepthMap.from_dict(depth.to_dict()) == depth
    assert depth.normalized()[0, 0] == 255 and depth.normalized()[-1, -1] == 0  # metric: near is bright
    with pytest.raises(InvalidParameterError, match=r"\(H, W\)"):
        DepthMap(np.zeros((2, 2, 2)))
    with pytest.raises(InvalidParameterError, match="height\\*width\\*4"):
        DepthMap.from_dict({**depth.to_dict(), "height": 5})
