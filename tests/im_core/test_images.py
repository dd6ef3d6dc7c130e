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


def _huge_png(path, width: int, height: int) -> None:
    """A valid 1-bit grayscale PNG of ``width`` x ``height`` black pixels (a few kB on disk, each row compressed
    once; decoding it to HWC uint8 would take ``3 * width * height`` bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (width + 7) // 8)
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_a_20000_by_20000_png_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    """The default limit (IM_MAX_IMAGE_PIXELS, 178,956,970) refuses 400 million pixels from the PNG header: the
    decoder is never called (it would allocate 1.2 GB for the HWC array, more while converting)."""
    import cv2

    path = tmp_path / "huge.png"
    _huge_png(path, 20_000, 20_000)
    decoded: list[int] = []

    def imdecode(buf, flags):
        decoded.append(len(buf))
        raise AssertionError("the 400-megapixel image was decoded")

    monkeypatch.setattr(cv2, "imdecode", imdecode)
    for value in (path, path.read_bytes()):
        with pytest.raises(ModelInputError, match=r"20000 x 20000 = 400,000,000 pixels.*IM_MAX_IMAGE_PIXELS"):
            to_images(value)
    assert decoded == []


def _encoded(fmt: str, width: int, height: int) -> bytes:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), (10, 20, 30)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_the_pixel_limit_is_read_from_each_format_header(fmt, monkeypatch):
    from im_core._config import reload_settings
    from im_core._images import header_size

    assert header_size(_encoded(fmt, 123, 45)) == (123, 45)
    monkeypatch.setenv("IM_MAX_IMAGE_PIXELS", "1000")
    reload_settings()
    with pytest.raises(ModelInputError, match="40 x 30 = 1,200 pixels, more than the limit of 1,000"):
        to_images(_encoded(fmt, 40, 30))
    assert to_images(_encoded(fmt, 30, 30))[0].pixels.shape == (30, 30, 3)


def test_the_pixel_limit_applies_to_pil_images_and_can_be_lifted(monkeypatch):
    from PIL import Image as PILImage

    from im_core._config import reload_settings
    from im_core.errors import ConfigurationError

    monkeypatch.setenv("IM_MAX_IMAGE_PIXELS", "1000")
    reload_settings()
    with pytest.raises(ModelInputError, match="PIL image"):
        to_images(PILImage.new("RGB", (40, 30)))
    assert to_images(np.zeros((40, 30, 3), np.uint8))[0].pixels.shape == (40, 30, 3)  # arrays are already decoded
    monkeypatch.setenv("IM_MAX_IMAGE_PIXELS", "0")
    reload_settings()
    assert to_images(_encoded("PNG", 40, 30))[0].pixels.shape == (30, 40, 3)
    monkeypatch.setenv("IM_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ConfigurationError, match="IM_MAX_IMAGE_PIXELS"):
        reload_settings()
    monkeypatch.delenv("IM_MAX_IMAGE_PIXELS")


# -- decoding matches what users see: EXIF orientation, 16 bits, alpha, URLs ---------------------------------------

PHOTO = "images/chelsea.png"  # 451 x 300, landscape


def _jpeg_with_orientation(asset, path, orientation: int) -> None:
    """The pinned photograph as a JPEG whose EXIF says ``orientation`` (written by Pillow, as a phone would)."""
    from PIL import Image as PILImage

    exif = PILImage.Exif()
    exif[0x0112] = orientation
    PILImage.open(asset(PHOTO)).convert("RGB").save(path, exif=exif, quality=95)


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_is_applied_to_files_and_bytes_exactly_as_cv2_imread(asset, tmp_path, orientation):
    import cv2

    path = tmp_path / f"o{orientation}.jpg"
    _jpeg_with_orientation(asset, path, orientation)
    expected = cv2.imread(str(path))
    assert expected.shape == (451, 300, 3)  # upright: portrait, as a viewer shows it (stored landscape)
    from_path, from_bytes = to_images([path, path.read_bytes()])
    for img in (from_path, from_bytes):
        assert img.color == "bgr" and img.pixels.shape == (451, 300, 3)
        np.testing.assert_array_equal(img.pixels, expected)  # pixel for pixel: the same decoder


@pytest.mark.parametrize("orientation", [6, 8])
def test_without_opencv_pillow_applies_the_same_orientation(asset, tmp_path, orientation):
    import cv2

    from im_core._images import _decode_with_pillow

    path = tmp_path / f"o{orientation}.jpg"
    _jpeg_with_orientation(asset, path, orientation)
    img = _decode_with_pillow(path.read_bytes(), None, "bytes")
    expected = cv2.imread(str(path))
    assert img.color == "rgb" and img.pixels.shape == expected.shape
    # both use libjpeg(-turbo); a different IDCT build could differ by a level or two, never by the orientation
    diff = np.abs(img.to("bgr").astype(int) - expected.astype(int))
    assert diff.mean() < 1.0, diff.mean()


def test_16_bit_and_alpha_files_decode_as_cv2_imread_does(tmp_path):
    import cv2

    from im_core._images import _decode_with_pillow

    deep = np.zeros((2, 3, 3), np.uint16)
    deep[0, 0] = [0x80FF, 0x017F, 0xFFFF]
    gray16 = np.full((2, 3), 0x4DC8, np.uint16)
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 2], rgba[..., 3] = 200, 30, 0  # fully transparent: the colour is still used
    cases = {"deep.png": deep, "gray16.png": gray16, "rgba.png": rgba}
    for name, array in cases.items():
        cv2.imwrite(str(tmp_path / name), array)
        (img,) = to_images(tmp_path / name)
        np.testing.assert_array_equal(img.pixels, cv2.imread(str(tmp_path / name)), err_msg=name)
    (img,) = to_images(tmp_path / "deep.png")
    assert img.pixels[0, 0].tolist() == [0x80, 0x01, 0xFF]  # the top 8 bits
    assert to_images(tmp_path / "rgba.png")[0].pixels[0, 0].tolist() == [200, 0, 30]  # alpha dropped
    for name in ("gray16.png", "rgba.png"):  # Pillow fallback: same rules
        pil = _decode_with_pillow((tmp_path / name).read_bytes(), None, "bytes")
        np.testing.assert_array_equal(pil.to("bgr"), cv2.imread(str(tmp_path / name)), err_msg=name)


@pytest.mark.parametrize("url", ["https://example.com/cat.jpg", "HTTP://example.com/a.png"])
def test_a_url_is_refused_saying_urls_are_not_fetched_and_how_to_pass_bytes(url):
    with pytest.raises(ModelInputError, match="URL; im does not fetch") as info:
        to_images(url)
    assert "requests.get(url" in str(info.value) and "does not exist" not in str(info.value)
