import io

import numpy as np
import pytest

from im_core import to_images
from im_core.errors import ModelInputError


def test_numpy_variants_become_hwc_uint8_three_channels():
    gray = np.full((4, 5), 7, np.uint8)
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 3] = 255
    deep = np.full((4, 5, 3), 65535, np.uint16)
    floats = np.full((4, 5, 3), 0.5, np.float32)
    for arr, value in [(gray, 7), (rgba, 0), (deep, 255), (floats, 128)]:
        (img,) = to_images(arr)
        assert img.pixels.shape == (4, 5, 3) and img.pixels.dtype == np.uint8
        assert int(img.pixels[0, 0, 0]) == value
        assert img.color == "bgr"
    assert to_images(gray, "rgb")[0].color == "rgb"


def test_batches_lists_and_4d_arrays():
    assert len(to_images([np.zeros((2, 2, 3), np.uint8)] * 3)) == 3
    assert len(to_images(np.zeros((2, 4, 4, 3), np.uint8))) == 2


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((4, 5, 2), np.uint8), "shape"),
        (np.full((2, 2, 3), np.nan, np.float32), "NaN"),
        ([], "empty list"),
        (42, "int"),
        (b"", "empty"),
        (b"not an image", "decoded"),
        ("/no/such/file.png", "does not exist"),
    ],
)
def test_bad_inputs_raise_model_input_error_naming_the_problem(value, fragment):
    with pytest.raises(ModelInputError, match=fragment):
        to_images(value)


def test_index_of_the_bad_item_is_named():
    with pytest.raises(ModelInputError, match="item 1"):
        to_images([np.zeros((2, 2, 3), np.uint8), object()])


def test_paths_bytes_and_pil(tmp_path):
    from PIL import Image as PILImage

    pil = PILImage.new("RGB", (6, 4), (10, 20, 30))
    path = tmp_path / "x.png"
    pil.save(path)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    from_path, from_bytes, from_pil = to_images([path, buf.getvalue(), pil])
    assert from_pil.color == "rgb" and tuple(from_pil.pixels[0, 0]) == (10, 20, 30)
    for img in (from_path, from_bytes):
        assert img.pixels.shape == (4, 6, 3)
        assert tuple(img.to("rgb")[0, 0]) == (10, 20, 30)


def test_torch_tensors_chw_and_batches():
    torch = pytest.importorskip("torch")
    t = torch.zeros((3, 4, 5), dtype=torch.uint8)
    t[0] = 200
    (img,) = to_images(t)
    assert img.pixels.shape == (4, 5, 3) and img.color == "rgb" and img.pixels[0, 0, 0] == 200
    assert len(to_images(torch.rand(2, 3, 8, 8))) == 2
