"""The numpy resizes behind the Hugging Face image processors: ``pil_resize`` == Pillow's ``Image.resize`` bit for
bit (its own numpy path, without Pillow), ``float_resize`` == torch's antialiased ``interpolate``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from im_core.errors import InvalidParameterError
from im_models.embeddings._hf_image import HFImageProcessor
from im_models.embeddings._resample import float_resize, pil_resize

SIZES = [(32, 47), (224, 224), (80, 20), (400, 520), (31, 17)]


def _images(asset) -> list[np.ndarray]:
    import cv2

    rng = np.random.default_rng(0)
    return [
        cv2.imread(str(asset("images/chelsea.png"))),
        cv2.imread(str(asset("images/page.png"))),
        (rng.random((37, 53, 3)) * 255).astype(np.uint8),
    ]


@pytest.mark.weights
@pytest.mark.parametrize("resample", [2, 3])
def test_numpy_resize_equals_pillow_bit_for_bit(asset, resample: int) -> None:
    for image in _images(asset):
        for height, width in SIZES:
            want = np.asarray(PILImage.fromarray(image).resize((width, height), resample=resample))
            got = pil_resize(image, height, width, resample, use_pillow=False)
            np.testing.assert_array_equal(got, want, err_msg=f"{image.shape} -> {height}x{width}")


@pytest.mark.weights
@pytest.mark.parametrize(("resample", "mode"), [(2, "bilinear"), (3, "bicubic")])
def test_float_resize_equals_torch_antialiased_interpolate(asset, resample: int, mode: str) -> None:
    torch = pytest.importorskip("torch")
    for image in _images(asset):
        x = image.astype(np.float32) / 255
        for height, width in SIZES:
            t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
            want = torch.nn.functional.interpolate(t, size=(height, width), mode=mode, antialias=True)
            got = float_resize(x, height, width, resample)
            np.testing.assert_allclose(got, want[0].numpy().transpose(1, 2, 0), atol=2e-5)


def test_bad_resize_arguments_are_refused() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(InvalidParameterError, match="resample=0"):
        pil_resize(image, 2, 2, 0)
    with pytest.raises(InvalidParameterError, match="uint8"):
        pil_resize(image.astype(np.float32), 2, 2)
    with pytest.raises(InvalidParameterError, match="at least 1"):
        float_resize(image, 0, 2)


def test_shortest_edge_sizes_follow_transformers() -> None:
    proc = HFImageProcessor.from_config({"size": {"shortest_edge": 224}}, mean=(0, 0, 0), std=(1, 1, 1))
    assert proc.resized_size(480, 640) == (224, 298)  # int(224 * 640 / 480)
    assert proc.resized_size(641, 480) == (299, 224)
    assert proc.output_size(480, 640) == (224, 298)  # no crop configured
