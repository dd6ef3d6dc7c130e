"""Images → one NCHW batch tensor, plus the geometry to map network coordinates back to each original image.

One path for every family: optional static crop, resize (stretch / letterbox / letterbox-reflect-edges /
fit-longer-edge / center-crop) of the *small* image with OpenCV, channel flip on the resized image (never on the
full frame), then one fused scale/normalise into a preallocated float32 (or float16/uint8) batch. Constant padding
is written straight into the batch (no padded copy of the image is made; measured ~15% off ``prepare_batch`` for
1280×720 → 384×640).

Rectangular inference: for a graph with dynamic height/width, each image is fitted into the training size and
padded only up to the next multiple of ``stride`` (1280×720 at 640 → 384×640). A batch of mixed sizes would share
the smallest canvas that holds every image, which changes each image's padding and so its results: ``Model.run_images``
therefore groups images by :func:`canvas_size` (the canvas each gets alone) and only same-canvas images share a batch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from im_core import Image
from im_core.errors import InvalidParameterError
from im_models.common._config import NetworkInput, StaticCrop

__all__ = ["ImageTransform", "canvas_size", "input_spatial_dynamic", "prepare_batch", "target_size"]


@dataclass(frozen=True)
class ImageTransform:
    """Affine map from original-image pixels to network-input pixels: ``net = orig * scale + offset``.

    Folding the static crop, the resize and the padding into one ``scale``/``offset`` per axis makes boxes,
    keypoints and masks use the same two lines of arithmetic.

    Attributes:
        scale_x / scale_y: network pixels per original pixel.
        offset_x / offset_y: network-pixel position of the original image's origin (padding minus crop).
        original_height / original_width: size of the image the user passed (results are clipped to it).
        input_height / input_width: size of the network tensor this image was placed in.
        region: ``(x0, y0, x1, y1)`` of the original image that is visible to the network (static/center crop).
    """

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    original_height: int
    original_width: int
    input_height: int
    input_width: int
    region: tuple[int, int, int, int]

    def boxes_to_original(self, xyxy: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """(N, 4) network-pixel ``x1, y1, x2, y2`` → float32 original pixels, clipped to the image (or region).

        float32 input is computed in float32, float64 input in float64 (rounded to float32 at the end).
        """
        # one op per step over all four columns, in the input's precision (float64 stays float64 until the end;
        # anything else is float32, with the constants rounded to float32 as NumPy does for a Python float)
        dtype = np.float64 if xyxy.dtype == np.float64 else np.float32
        offset = np.array((self.offset_x, self.offset_y, self.offset_x, self.offset_y), dtype)
        scale = np.array((self.scale_x, self.scale_y, self.scale_x, self.scale_y), dtype)
        out = np.subtract(np.asarray(xyxy, dtype), offset)
        np.divide(out, scale, out=out)
        out = out.astype(np.float32, copy=False)
        if clip:
            x0, y0, x1, y1 = self.region
            # np.clip's arithmetic (NaN stays NaN) without its Python-level wrappers
            np.maximum(out, np.array((x0, y0, x0, y0), np.float32), out=out)
            np.minimum(out, np.array((x1, y1, x1, y1), np.float32), out=out)
        return out

    def points_to_original(self, xy: np.ndarray, *, clip: bool = False) -> np.ndarray:
        """float32 (..., 2) network-pixel points → original pixels; with ``clip``, clipped to the image (or region)
        as boxes are (Ultralytics clips keypoints so)."""
        out = np.empty(xy.shape, np.float32)
        out[..., 0] = (xy[..., 0] - self.offset_x) / self.scale_x
        out[..., 1] = (xy[..., 1] - self.offset_y) / self.scale_y
        if clip:
            x0, y0, x1, y1 = self.region
            np.clip(out[..., 0], x0, x1, out=out[..., 0])
            np.clip(out[..., 1], y0, y1, out=out[..., 1])
        return out


def input_spatial_dynamic(shape: Sequence[int | str | None]) -> bool:
    """Whether an NCHW input shape (from ``Session.inputs[0].shape``) has dynamic height or width."""
    if len(shape) != 4:
        return False
    return any(not isinstance(d, int) or d <= 0 for d in shape[2:])


def _fit(h: int, w: int, th: int, tw: int) -> tuple[int, int]:
    """Size of an ``h × w`` image scaled (up or down) to fit in ``th × tw`` with its aspect ratio kept."""
    r = min(th / h, tw / w)
    return max(1, round(h * r)), max(1, round(w * r))


def target_size(
    sizes: Sequence[tuple[int, int]], net: NetworkInput, *, rect: bool, size: tuple[int, int] | None = None
) -> tuple[int, int]:
    """The ``(height, width)`` of the batch tensor.

    Args:
        sizes: ``(h, w)`` of each (cropped) image.
        net: the network input description.
        rect: rectangular inference (only for graphs with dynamic spatial dims and aspect-keeping resizes).
        size: override of the training size (``(h, w)``), e.g. ``image_size=`` from the caller.
    """
    th, tw = size or net.size
    if not rect or net.resize_mode in ("stretch", "center-crop", "resize-shorter-center-crop"):
        return th, tw
    s = net.stride
    fitted = [_fit(h, w, th, tw) for h, w in sizes]
    bh = max(f[0] for f in fitted)
    bw = max(f[1] for f in fitted)
    return min(math.ceil(bh / s) * s, math.ceil(th / s) * s), min(math.ceil(bw / s) * s, math.ceil(tw / s) * s)


def canvas_size(
    image: Image,
    net: NetworkInput,
    *,
    rect: bool = False,
    static_crop: StaticCrop | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """The ``(height, width)`` of the batch tensor :func:`prepare_batch` gives ``image`` alone (same arguments).

    A family's ``canvas_key`` (:meth:`im_core.Model.canvas_key`): images with the same canvas may share a batch
    without changing each other's results; for a fixed input size (``rect=False``) every image has the same one.
    """
    h, w = image.height, image.width
    if static_crop is not None:
        x0, y0, x1, y1 = static_crop.pixels(h, w)
        h, w = y1 - y0, x1 - x0
    return target_size([(h, w)], net, rect=rect, size=size)


def _pixel_affine(net: NetworkInput) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel ``a, b`` with ``value = pixel * a + b`` (``None`` when the tensor keeps raw 0..255 values)."""
    scale = 1.0 if net.scaling_factor is None else 1.0 / net.scaling_factor
    n = net.channels
    mean = np.zeros(n) if net.mean is None else np.asarray(net.mean, np.float64)
    std = np.ones(n) if net.std is None else np.asarray(net.std, np.float64)
    a = scale / std
    b = -mean / std
    if np.all(a == 1.0) and np.all(b == 0.0):
        return None
    a, b = a.astype(np.float32), b.astype(np.float32)
    a.flags.writeable = b.flags.writeable = False  # shared between calls through the cache below
    return a, b


def _compute_constants(net: NetworkInput) -> tuple[tuple[np.ndarray, np.ndarray] | None, np.ndarray]:
    affine = _pixel_affine(net)
    # the padding value goes through exactly the same conversion as image pixels, so it is bit-identical to
    # padding the uint8 image first (what copyMakeBorder did) and converting afterwards
    fill = np.empty((net.channels, 1, 1), np.dtype(net.dtype))
    pad = np.full((1, 1, 3), net.padding_value, np.uint8)
    _convert(fill, pad, False, net, affine)
    fill.flags.writeable = False
    return affine, fill


def _compute_lut(net: NetworkInput) -> np.ndarray | None:
    """float32 (K, 256): the tensor value of each uint8 pixel value, per channel (K = 3), or one row (K = 1) when
    every channel converts alike (plain scaling); ``None`` where the look-up path does not apply.

    ``fl(fl(v * a) + b)`` in float32, bit-identical to the two-step numpy arithmetic of :func:`_convert`. Only for
    float32 tensors with 3 channels and a pixel affine (the common case).
    """
    affine = _pixel_affine(net)
    if np.dtype(net.dtype) != np.float32 or net.channels != 3 or affine is None:
        return None
    a, b = affine
    lut = np.arange(256, dtype=np.float32)[None, :] * a[:, None]  # float32 products, as np.multiply gives
    shifted = b != 0
    lut[shifted] += b[shifted, None]
    if (lut == lut[0]).all():
        lut = lut[:1].copy()
    lut.flags.writeable = False
    return lut


_cached_constants = functools.lru_cache(maxsize=64)(_compute_constants)
_cached_lut = functools.lru_cache(maxsize=64)(_compute_lut)


def _constants(net: NetworkInput) -> tuple[tuple[np.ndarray, np.ndarray] | None, np.ndarray]:
    """``(affine, fill)`` of ``net``: the pixel affine and the converted padding value, (C, 1, 1) in ``net.dtype``.

    Cached per (hashable, frozen) ``NetworkInput``; one built with unhashable fields is computed each time.
    """
    try:
        return _cached_constants(net)
    except TypeError:
        return _compute_constants(net)


def _lut(net: NetworkInput) -> np.ndarray | None:
    """The look-up table of :func:`_compute_lut`, cached like :func:`_constants`."""
    try:
        return _cached_lut(net)
    except TypeError:
        return _compute_lut(net)


@dataclass(frozen=True)
class _Placement:
    """How one image of a given size becomes its slot of the batch tensor (pure geometry).

    Attributes:
        crop: ``(x0, y0, x1, y1)`` of the image's pixels that are used (static crop, then centre crop), or
            ``None`` for the whole image.
        resize: ``(width, height)`` the used pixels are resized to, or ``None`` when they keep their size.
        reflect: pad by reflecting the edges (``letterbox-reflect-edges``) rather than with the padding value.
        top / left: position of the (resized) pixels in the slot.
        transform: the map back to original pixels.
    """

    crop: tuple[int, int, int, int] | None
    resize: tuple[int, int] | None
    reflect: bool
    top: int
    left: int
    transform: ImageTransform


@dataclass(frozen=True)
class _Layout:
    """Everything about a batch that depends only on its image sizes and the configuration (cached, read-only).

    Attributes:
        height / width: spatial size of the batch tensor.
        dtype: its dtype (``net.dtype``).
        placements: one per image.
        affine / fill / lut: the pixel conversion constants (:func:`_constants`, :func:`_lut`).
    """

    height: int
    width: int
    dtype: np.dtype
    placements: tuple[_Placement, ...]
    affine: tuple[np.ndarray, np.ndarray] | None
    fill: np.ndarray
    lut: np.ndarray | None


def _place(
    shape: tuple[int, int],
    region: tuple[int, int, int, int],
    canvas: tuple[int, int],
    fit_into: tuple[int, int],
    net: NetworkInput,
) -> _Placement:
    """The :class:`_Placement` of an image of ``shape`` (h, w) whose ``region`` is used, in an (H, W) ``canvas``.

    ``fit_into``: the (height, width) that aspect-keeping modes fit the region into (the training size, or the
    caller's ``image_size``).
    """
    x0, y0, x1, y1 = region
    h, w = y1 - y0, x1 - x0
    H, W = canvas
    mode = net.resize_mode
    crop = None if region == (0, 0, shape[1], shape[0]) else region
    top_off: float
    left_off: float
    if mode == "stretch":
        rh, rw = H, W
        top = left = 0
        top_off = left_off = 0.0
        sx, sy = W / w, H / h
    elif mode == "resize-shorter-center-crop":
        # scale so the region covers the canvas, keep the centre: the same as cropping the centre of the region
        # that maps onto the canvas, then resizing it (done that way: one resize of fewer pixels)
        s = max(H / h, W / w)
        ch, cw = min(h, max(1, round(H / s))), min(w, max(1, round(W / s)))
        cy0, cx0 = (h - ch) // 2, (w - cw) // 2
        crop = (x0 + cx0, y0 + cy0, x0 + cx0 + cw, y0 + cy0 + ch)
        rh, rw = H, W
        top = left = 0
        sx, sy = W / cw, H / ch
        top_off, left_off = -cy0 * sy, -cx0 * sx
    elif mode == "center-crop":
        # no scaling: the centre of the region, padded where it is smaller than the input
        cy0, cx0 = max(0, (h - H) // 2), max(0, (w - W) // 2)
        rh, rw = min(H, h - cy0), min(W, w - cx0)
        crop = (x0 + cx0, y0 + cy0, x0 + cx0 + rw, y0 + cy0 + rh)
        top, left = (H - rh) // 2, (W - rw) // 2
        top_off, left_off = top - cy0, left - cx0
        sx = sy = 1.0
    else:
        rh, rw = _fit(h, w, *fit_into)
        rh, rw = min(rh, H), min(rw, W)
        top, left = (0, 0) if mode == "fit-longer-edge" else ((H - rh) // 2, (W - rw) // 2)
        top_off, left_off = top, left
        sx, sy = rw / w, rh / h
    if mode == "resize-shorter-center-crop":
        assert crop is not None
        resize = (rw, rh) if (rh, rw) != (crop[3] - crop[1], crop[2] - crop[0]) else None
    else:
        resize = (rw, rh) if mode != "center-crop" and (rh, rw) != (h, w) else None
    transform = ImageTransform(
        scale_x=sx,
        scale_y=sy,
        offset_x=left_off - x0 * sx,
        offset_y=top_off - y0 * sy,
        original_height=shape[0],
        original_width=shape[1],
        input_height=H,
        input_width=W,
        region=region,
    )
    reflect = mode == "letterbox-reflect-edges" and (rh, rw) != (H, W)
    return _Placement(crop, resize, reflect, top, left, transform)


def _compute_layout(
    shapes: tuple[tuple[int, int], ...],
    net: NetworkInput,
    rect: bool,
    static_crop: StaticCrop | None,
    size: tuple[int, int] | None,
) -> _Layout:
    regions = [(0, 0, w, h) if static_crop is None else static_crop.pixels(h, w) for h, w in shapes]
    canvas = target_size([(y1 - y0, x1 - x0) for x0, y0, x1, y1 in regions], net, rect=rect, size=size)
    fit_into = size or net.size
    placements = tuple(_place(sh, rg, canvas, fit_into, net) for sh, rg in zip(shapes, regions, strict=True))
    affine, fill = _constants(net)
    return _Layout(*canvas, np.dtype(net.dtype), placements, affine, fill, _lut(net))


_cached_layout = functools.lru_cache(maxsize=128)(_compute_layout)


def _layout(
    shapes: tuple[tuple[int, int], ...],
    net: NetworkInput,
    rect: bool,
    static_crop: StaticCrop | None,
    size: tuple[int, int] | None,
) -> _Layout:
    """The :class:`_Layout` of a batch of images of ``shapes`` ((h, w) each).

    Cached: a stream of same-sized frames computes its geometry once (each call would otherwise run a few dozen
    lines of Python, which is measurable next to the network when the CPU caches are cold after a run). A
    configuration with unhashable fields is computed each time.
    """
    try:
        return _cached_layout(shapes, net, rect, static_crop, size)
    except TypeError:
        return _compute_layout(shapes, net, rect, static_crop, size)


def prepare_batch(
    images: Sequence[Image],
    net: NetworkInput,
    *,
    rect: bool = False,
    static_crop: StaticCrop | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, list[ImageTransform]]:
    """Build the network input for a list of images.

    Args:
        images: normalised images (HWC uint8, any colour order; the order is read from each image).
        net: how the network wants its input (size, resize mode, padding, colour, scaling, normalisation).
        rect: rectangular inference for graphs with dynamic spatial dims (pads to ``net.stride`` multiples only).
        static_crop: crop (percent of the image) applied before resizing.
        size: ``(height, width)`` to use instead of the training size.

    Returns:
        ``(tensor, transforms)``: tensor of shape (B, C, H, W) in ``net.dtype`` (C = ``net.channels``), values
        ``(pixel / scaling_factor - mean) / std``; one :class:`ImageTransform` per image.
    """
    import cv2

    if not images:
        raise InvalidParameterError("prepare_batch needs at least one image.")
    layout = _layout(tuple((im.height, im.width) for im in images), net, rect, static_crop, size)
    H, W = layout.height, layout.width
    out = np.empty((len(images), net.channels, H, W), layout.dtype)
    for i, (im, place) in enumerate(zip(images, layout.placements, strict=True)):
        pixels = im.pixels
        flip = im.color != net.color
        if pixels.strides[-1] < 0:  # a channel-reversed view: use the underlying array, remember the order
            pixels = pixels[..., ::-1]
            flip = not flip
        if place.crop is not None:
            x0, y0, x1, y1 = place.crop
            pixels = pixels[y0:y1, x0:x1]
        if place.resize is not None:
            pixels = cv2.resize(pixels, place.resize, interpolation=cv2.INTER_LINEAR)
        top, left = place.top, place.left
        if place.reflect:
            rh, rw = pixels.shape[:2]
            pixels = cv2.copyMakeBorder(
                np.ascontiguousarray(pixels), top, H - rh - top, left, W - rw - left, cv2.BORDER_REFLECT_101
            )
            top = left = 0
        _write(out[i], pixels, flip, net, layout.affine, layout.lut, top, left, layout.fill)
    return out, [place.transform for place in layout.placements]


def _write(
    dst: np.ndarray,
    hwc: np.ndarray,
    flip: bool,
    net: NetworkInput,
    affine: tuple[np.ndarray, np.ndarray] | None,
    lut: np.ndarray | None,
    top: int,
    left: int,
    fill: np.ndarray,
) -> None:
    """Place an (h, w, 3) uint8 image at ``(top, left)`` of a (C, H, W) slot and fill the rest with ``fill``.

    With a look-up table (float32 tensors, 3 channels: :func:`_compute_lut`) see :func:`_write_planar`. Otherwise
    the image is converted with numpy and the constant padding (``fill``: the padding value already converted,
    (C, 1, 1)) is written into the border strips; no padded uint8 copy of the image is made.
    """
    if lut is not None:
        _write_planar(dst, hwc, flip, lut, top, left, net.padding_value)
        return
    h, w = hwc.shape[:2]
    H, W = dst.shape[1:]
    if (h, w) == (H, W):
        _convert(dst, hwc, flip, net, affine)
        return
    _convert(dst[:, top : top + h, left : left + w], hwc, flip, net, affine)
    _pad(dst, top, left, h, w, fill)


def _pad(dst: np.ndarray, top: int, left: int, h: int, w: int, value: np.ndarray | int) -> None:
    """Set the border of a (C, H, W) slot around its (h, w) block at ``(top, left)`` to ``value``."""
    H, W = dst.shape[1:]
    if top:
        dst[:, :top] = value
    if top + h < H:
        dst[:, top + h :] = value
    if left:
        dst[:, top : top + h, :left] = value
    if left + w < W:
        dst[:, top : top + h, left + w :] = value


def _write_planar(
    dst: np.ndarray, hwc: np.ndarray, flip: bool, lut: np.ndarray, top: int, left: int, padding_value: int
) -> None:
    """:func:`_write` for float32 3-channel slots through a look-up table.

    The image is first laid out as a padded planar uint8 slot (3, H, W) (padding value in the border, channels in
    network order: ``cv2.mixChannels``), then converted by ``cv2.LUT`` straight into ``dst``: one call over the
    whole (3·H, W) slot when every channel converts alike, else one per plane. The padding goes through the same
    table, so it is bit-identical to converting a pixel of the padding value. One large ``cv2.LUT`` is spread over
    OpenCV's threads, which matters because writing the float32 tensor is the costliest step of pre-processing
    (memory-bound: a 384×640 tensor is 2.9 MB).

    Args:
        dst: float32 (3, H, W) slot of the batch tensor (C-contiguous).
        hwc: (h, w, 3) uint8 image.
        flip: reverse the channel order.
        lut: float32 (1, 256) or (3, 256) from :func:`_compute_lut`.
        top / left: where the image goes.
        padding_value: uint8 value of the border.
    """
    import cv2

    _, H, W = dst.shape
    h, w = hwc.shape[:2]
    planar = np.empty((3, H, W), np.uint8)
    _pad(planar, top, left, h, w, padding_value)
    inner = planar[:, top : top + h, left : left + w]
    planes = [inner[0], inner[1], inner[2]]
    order = (2, 1, 0) if flip else (0, 1, 2)
    done = cv2.mixChannels([np.ascontiguousarray(hwc)], planes, [order[0], 0, order[1], 1, order[2], 2])
    for got, want in zip(done, planes, strict=True):
        if got is not want:  # OpenCV could not write into the view (never seen): copy its result in
            want[...] = got
    if len(lut) == 1 and dst.flags.c_contiguous:
        pairs = [(planar.reshape(3 * H, W), lut[0], dst.reshape(3 * H, W))]
    else:
        pairs = [(planar[c], lut[c if len(lut) == 3 else 0], dst[c]) for c in range(3)]
    for src, table, view in pairs:
        written = cv2.LUT(src, table, dst=view)
        if written is not view:  # as above
            view[...] = written


def _convert(
    dst: np.ndarray, hwc: np.ndarray, flip: bool, net: NetworkInput, affine: tuple[np.ndarray, np.ndarray] | None
) -> None:
    """Write an (h, w, 3) uint8 image into a (C, h, w) view: channel order, scaling and normalisation in one pass."""
    import cv2

    planes = cv2.split(np.ascontiguousarray(hwc))
    if flip:
        planes = planes[::-1]
    if net.channels == 1:
        gray = (planes[0].astype(np.float32) + planes[1] + planes[2]) / 3.0
        planes = (gray,)
    for c, plane in enumerate(planes):
        if affine is None:
            dst[c] = plane
            continue
        a, b = affine
        np.multiply(plane, a[c], out=dst[c], casting="unsafe")
        if b[c] != 0:
            dst[c] += b[c]
