"""Input normalisation: whatever the user passes becomes :class:`Image` objects (HWC uint8, 3 channels).

Accepted: numpy arrays (HW, HW1, HW3, HW4; uint8, uint16, bool-free floats in [0, 1] or [0, 255]), PIL images,
file paths (``str`` / ``os.PathLike``), encoded bytes, and torch tensors (CHW or BCHW, RGB). The colour order is
kept as given and recorded, so a family flips channels on the small resized image, not on the full frame.

How each input is read (the contract, tested in ``tests/im_core/test_images.py``):

- **Files and bytes** are decoded exactly as ``cv2.imread(path)`` decodes them (the same call, ``cv2.imdecode`` with
  ``IMREAD_COLOR``; without OpenCV, Pillow with the same rules): the **EXIF orientation is applied**, so a phone
  photo tagged "rotate 90°" is seen upright, as image viewers show it, and boxes come back in that upright frame;
  16-bit images keep their top 8 bits (``value >> 8``); an alpha channel is dropped (the colour channels are used
  as stored, not composited over a background); grayscale and palette images become 3 channels. The pixel count is
  checked against ``IM_MAX_IMAGE_PIXELS`` from the header, before any pixel is decoded.
- **http(s) URLs** are refused with :class:`~im_core.errors.ModelInputError`: im never fetches an image over the
  network. Download it and pass the bytes (``model(requests.get(url, timeout=10).content)``) or a saved file.
- **numpy arrays** are taken as they are, in **BGR** order (OpenCV's convention) unless ``color_format="rgb"`` is
  given. Nothing in the pixels tells BGR from RGB, so no warning can be given: an RGB array passed as BGR runs with
  red and blue swapped and scores change silently. Arrays from ``cv2.imread`` / ``cv2.VideoCapture`` are BGR; arrays
  from Pillow (``np.asarray(pil_image)``), imageio, matplotlib or torchvision are RGB. uint16 arrays keep their top
  8 bits, floats in [0, 1] are scaled by 255, a fourth channel is dropped like alpha.
- **PIL images** are RGB by definition (converted with ``convert("RGB")``); ``color_format`` does not apply. They
  are used as they are: a PIL image opened from a file is *not* rotated by its EXIF tag (call
  ``PIL.ImageOps.exif_transpose`` first, or pass the path).
- **torch tensors** are RGB, CHW (or BCHW for a batch), uint8 or float.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from im_core.errors import MissingDependencyError, ModelInputError

__all__ = ["ColorFormat", "Image", "is_batch", "to_images"]

ColorFormat = Literal["bgr", "rgb"]
ACCEPTED = "numpy arrays (H,W[,C]) uint8/uint16/float, PIL images, file paths, encoded bytes, torch tensors (C,H,W)"


@dataclass(frozen=True)
class Image:
    """One image ready for pre-processing.

    Attributes:
        pixels: uint8 (H, W, 3) array, C-contiguous or a channel-reversed view of one.
        color: channel order of ``pixels``.
    """

    pixels: np.ndarray
    color: ColorFormat

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def to(self, color: ColorFormat) -> np.ndarray:
        """The pixels in ``color`` order (a view when the order must be reversed)."""
        return self.pixels if color == self.color else self.pixels[..., ::-1]


def is_batch(images: Any) -> bool:
    """Whether ``images`` is a list/tuple of images (or a 4-D batch tensor) rather than one image."""
    if isinstance(images, (list, tuple)):
        return True
    if _is_torch_tensor(images):
        return images.ndim == 4
    return isinstance(images, np.ndarray) and images.ndim == 4


def to_images(images: Any, color_format: ColorFormat = "bgr") -> list[Image]:
    """Normalise one image or a batch into a list of :class:`Image`.

    Args:
        images: one image or a list of images in any accepted form.
        color_format: channel order of numpy inputs (``"bgr"``, the OpenCV convention, unless told otherwise).

    Raises:
        ModelInputError: for an unsupported type, an empty image, or an unreadable file/bytes.
    """
    if color_format not in ("bgr", "rgb"):
        raise ModelInputError(f"color_format must be 'bgr' or 'rgb', got {color_format!r}.")
    if type(images) is np.ndarray and images.ndim == 3 and images.dtype == np.uint8 and _hw3(images.shape):
        return [Image(images, color_format)]  # the common case, already in the form _from_array returns
    if isinstance(images, (list, tuple)):
        if not images:
            raise ModelInputError("Got an empty list of images; pass at least one image.")
        return [_one(x, color_format, i) for i, x in enumerate(images)]
    if _is_torch_tensor(images) and images.ndim == 4:
        return [_one(t, color_format, i) for i, t in enumerate(images)]
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return [_one(a, color_format, i) for i, a in enumerate(images)]
    return [_one(images, color_format, None)]


def _hw3(shape: tuple[int, ...]) -> bool:
    """Whether a 3-D shape is a non-empty (H, W, 3) image."""
    return shape[2] == 3 and shape[0] > 0 and shape[1] > 0


def _where(index: int | None) -> str:
    return "" if index is None else f" (item {index} of the list)"


def _one(x: Any, color_format: ColorFormat, index: int | None) -> Image:
    if isinstance(x, np.ndarray):
        return Image(_from_array(x, index), color_format)
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if isinstance(path, str) and _is_url(path) and not os.path.exists(path):
            raise ModelInputError(
                f"Image {path!r}{_where(index)} is a URL; im does not fetch images over the network. Download it "
                "and pass the bytes, e.g. model(requests.get(url, timeout=10).content), or save it and pass the "
                "file path."
            )
        return _decode_file(path, index)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(x), index, "bytes")
    if _is_pil(x):
        _check_pixels(tuple(x.size), index, "(a PIL image)")  # a lazily opened file is decoded by convert()
        return Image(_from_array(np.asarray(x.convert("RGB")), index), "rgb")
    if _is_torch_tensor(x):
        return _from_tensor(x, index)
    raise ModelInputError(f"Cannot use an input of type {type(x).__name__}{_where(index)}. Accepted: {ACCEPTED}.")


def _is_url(text: str) -> bool:
    return text[:8].lower().startswith(("http://", "https://"))


def _from_array(a: np.ndarray, index: int | None) -> np.ndarray:
    if a.size == 0 or a.ndim < 2 or min(a.shape[:2]) == 0:
        raise ModelInputError(f"Image{_where(index)} is empty (shape {a.shape}); it needs height and width > 0.")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ModelInputError(
            f"Image{_where(index)} has shape {a.shape}; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)."
        )
    a = _to_uint8(a, index)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return a


def _to_uint8(a: np.ndarray, index: int | None) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return (a >> 8).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ModelInputError(f"Image{_where(index)} contains NaN or infinite values.")
        scale = 255.0 if float(a.max(initial=0.0)) <= 1.0 else 1.0
        return np.clip(a * scale + 0.5, 0, 255).astype(np.uint8)
    if a.dtype in (np.int16, np.int32, np.int64, np.uint32):
        return np.clip(a, 0, 255).astype(np.uint8)
    raise ModelInputError(f"Image{_where(index)} has dtype {a.dtype}; use uint8, uint16 or float.")


def _decode_file(path: str, index: int | None) -> Image:
    if not os.path.isfile(path):
        raise ModelInputError(f"Image path {path!r}{_where(index)} does not exist or is not a file.")
    with open(path, "rb") as f:
        data = f.read()
    return _decode_bytes(data, index, f"file {path!r}")


def _check_pixels(size: tuple[int, int] | None, index: int | None, what: str) -> None:
    """Refuse an image of more than ``IM_MAX_IMAGE_PIXELS`` pixels (``size`` is ``(width, height)``)."""
    if size is None:
        return
    from im_core._config import settings

    cap = settings().max_image_pixels
    width, height = size
    if cap and width * height > cap:
        shape = f"{width} x {height} = " if height > 1 else ""
        raise ModelInputError(
            f"Image {what}{_where(index)} is {shape}{width * height:,} pixels, more than the limit of "
            f"{cap:,} (IM_MAX_IMAGE_PIXELS); decoding it would take about {width * height * 3 / 1e9:.1f} GB of "
            "memory. Resize it first, or raise IM_MAX_IMAGE_PIXELS (0 = no limit) if you mean to process it."
        )


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # JPEG start-of-frame markers (not DHT, JPG, DAC)


def header_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` read from the header of an encoded PNG, JPEG, GIF, BMP or WebP image without decoding
    it (other formats: Pillow's lazy header read when Pillow is installed); ``None`` when unknown."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:2] == b"BM" and len(data) >= 26:
            if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
    except struct.error:  # a header cut short: let the decoder say what is wrong
        return None
    return _pillow_size(data)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:  # markers without a length
            i += 2
            continue
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _pillow_size(data: bytes) -> tuple[int, int] | None:
    try:
        import io
        import warnings

        from PIL import Image as PILImage
    except ImportError:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: our own limit is checked instead
            with PILImage.open(io.BytesIO(data)) as im:  # reads the header only
                return int(im.size[0]), int(im.size[1])
    except PILImage.DecompressionBombError as exc:  # over twice Pillow's own limit; it says how many pixels
        import re

        found = re.search(r"\((\d+) pixels\)", str(exc))
        return (int(found.group(1)), 1) if found else None
    except Exception:
        return None


def _decode_bytes(data: bytes, index: int | None, what: str) -> Image:
    if not data:
        raise ModelInputError(f"Image {what}{_where(index)} is empty.")
    _check_pixels(header_size(data), index, what)  # before any pixel is decoded
    try:
        import cv2
    except ImportError:
        cv2 = None  # type: ignore[assignment]
    if cv2 is not None:
        buf = np.frombuffer(data, np.uint8)
        # IMREAD_COLOR is what cv2.imread(path) uses: EXIF orientation applied, 16 bits -> top 8, alpha dropped,
        # gray and palette -> 3 channels; so a file gives the same pixels here as in the user's OpenCV code
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if decoded is None:
            raise ModelInputError(f"Image {what}{_where(index)} could not be decoded (not a supported image format).")
        _check_pixels((decoded.shape[1], decoded.shape[0]), index, what)  # a format the header check does not know
        return Image(_from_array(decoded, index), "bgr")
    return _decode_with_pillow(data, index, what)


def _decode_with_pillow(data: bytes, index: int | None, what: str) -> Image:
    """Decode without OpenCV, by the same rules as ``cv2.imread``: EXIF orientation applied
    (``ImageOps.exif_transpose``), 16-bit samples reduced to their top 8 bits, alpha dropped."""
    try:
        import io

        from PIL import Image as PILImage
        from PIL import ImageOps
    except ImportError as exc:
        raise MissingDependencyError(
            "Decoding image files needs OpenCV or Pillow: pip install opencv-python-headless (or pillow)."
        ) from exc
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            upright = ImageOps.exif_transpose(im) or im
            if upright.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):  # 16-bit gray (32-bit "I": as 16-bit)
                wide = np.asarray(upright).astype(np.int64)
                arr = np.clip(wide >> 8, 0, 255).astype(np.uint8)
            else:
                arr = np.asarray(upright.convert("RGB"))
    except Exception as exc:
        raise ModelInputError(f"Image {what}{_where(index)} could not be decoded: {exc}") from exc
    return Image(_from_array(arr, index), "rgb")


def _from_tensor(t: Any, index: int | None) -> Image:
    arr = t.detach().to("cpu").numpy()
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))  # torch convention is CHW (also when ambiguous, e.g. 3x3x3)
    return Image(_from_array(np.ascontiguousarray(arr), index), "rgb")


def _is_pil(x: Any) -> bool:
    return type(x).__module__.startswith("PIL.") and hasattr(x, "convert")


def _is_torch_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def batch_shapes(images: Sequence[Image]) -> list[tuple[int, int]]:
    """``(height, width)`` of each image."""
    return [(im.height, im.width) for im in images]
