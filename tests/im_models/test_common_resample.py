"""``resize_bilinear_pil`` (what Hugging Face PIL image processors do to an image) against Pillow itself."""

from __future__ import annotations

import numpy as np
import pytest

from im_models.common import resize_bilinear_pil
from im_models.common._resample import resize_bilinear_numpy

PIL = pytest.importorskip("PIL.Image")


def _pil(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(PIL.fromarray(image).resize((size[1], size[0]), PIL.Resampling.BILINEAR))


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((300, 451, 3), (85, 128)),  # SAM-style longest side to 128: both axes reduced
        ((512, 512, 3), (60, 60)),
        ((512, 512, 3), (512, 37)),  # one axis only
        ((512, 512, 3), (700, 512)),
        ((100, 100, 3), (450, 500)),  # enlarged
        ((191, 384), (64, 128)),  # grey
    ],
)
def test_numpy_passes_give_pillows_pixels(shape: tuple[int, ...], size: tuple[int, int]) -> None:
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    expected = _pil(image, size)
    np.testing.assert_array_equal(resize_bilinear_numpy(image, size), expected)
    np.testing.assert_array_equal(resize_bilinear_pil(image, size), expected)


def test_geometries_where_pillow_13_resizes_vertically_first_stay_within_one_level() -> None:
    image = np.random.default_rng(1).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    expected = _pil(image, (300, 451)).astype(int)
    assert np.abs(resize_bilinear_numpy(image, (300, 451)).astype(int) - expected).max() <= 1
    np.testing.assert_array_equal(resize_bilinear_pil(image, (300, 451)), expected)  # Pillow itself when present
