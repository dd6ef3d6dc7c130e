"""Pre-processing geometry and pixel values: letterbox, rectangular inference, mixed batches, crops, colours."""

from __future__ import annotations

import numpy as np
import pytest

from im_core import Image, to_images
from im_core.errors import CorruptedModelPackageError, ModelInputError
from im_models.common import (
    ImageTransform,
    NetworkInput,
    StaticCrop,
    parse_inference_config,
    prepare_batch,
    target_size,
    ultralytics_config,
)


def _img(h: int, w: int, color: str = "bgr", value: tuple[int, int, int] = (10, 20, 30)) -> Image:
    return Image(np.broadcast_to(np.array(value, np.uint8), (h, w, 3)).copy(), color)  # type: ignore[arg-type]


def test_letterbox_square_geometry_padding_and_rgb_flip():
    net = NetworkInput(height=320, width=320)
    tensor, (t,) = prepare_batch([_img(180, 320)], net)
    assert tensor.shape == (1, 3, 320, 320) and tensor.dtype == np.float32
    assert (t.scale_x, t.scale_y, t.offset_x, t.offset_y) == (1.0, 1.0, 0.0, 70.0)
    # BGR (10, 20, 30) → RGB planes 30, 20, 10, scaled by 1/255; padding rows are 114/255
    np.testing.assert_allclose(tensor[0, :, 160, 160], np.array([30, 20, 10]) / 255, rtol=1e-6)
    np.testing.assert_allclose(tensor[0, :, 0, 0], np.full(3, 114 / 255), rtol=1e-6)
    np.testing.assert_allclose(tensor[0, :, 69, 5], np.full(3, 114 / 255), rtol=1e-6)
    np.testing.assert_allclose(tensor[0, :, 70, 5], np.array([30, 20, 10]) / 255, rtol=1e-6)


def test_rect_inference_pads_to_stride_not_square():
    net = NetworkInput(height=640, width=640, dynamic=True, stride=32)
    tensor, (t,) = prepare_batch([_img(720, 1280)], net, rect=True)
    assert tensor.shape == (1, 3, 384, 640)
    assert t.scale_x == pytest.approx(0.5) and t.offset_y == 12.0
    box = t.boxes_to_original(np.array([[0, 12, 640, 372]], np.float32))
    np.testing.assert_allclose(box, [[0, 0, 1280, 720]])


def test_mixed_batch_shares_the_smallest_canvas():
    net = NetworkInput(height=640, width=640, dynamic=True, stride=32)
    assert target_size([(720, 1280), (1280, 720)], net, rect=True) == (640, 640)
    assert target_size([(720, 1280), (100, 200)], net, rect=True) == (384, 640)
    tensor, ts = prepare_batch([_img(720, 1280), _img(100, 200, "rgb")], net, rect=True)
    assert tensor.shape == (2, 3, 384, 640)
    assert ts[1].scale_x == pytest.approx(3.2) and ts[1].offset_y == pytest.approx(32.0)
    # the RGB image is not flipped
    np.testing.assert_allclose(tensor[1, :, 192, 320], np.array([10, 20, 30]) / 255, rtol=1e-6)


def test_stretch_normalisation_and_bgr_network():
    net = NetworkInput(
        height=4, width=8, resize_mode="stretch", color="bgr", mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0)
    )
    tensor, (t,) = prepare_batch([_img(2, 2, "bgr", (255, 0, 51))], net)
    assert tensor.shape == (1, 3, 4, 8)
    np.testing.assert_allclose(tensor[0, :, 0, 0], [(1 - 0.5) / 0.25, (0 - 0.5) / 0.5, (0.2 - 0.5) / 1.0], rtol=1e-5)
    assert (t.scale_x, t.scale_y) == (4.0, 2.0)


def test_center_crop_and_static_crop_offsets():
    net = NetworkInput(height=100, width=100, resize_mode="center-crop", padding_value=0)
    _, (t,) = prepare_batch([_img(300, 200)], net)
    assert (t.scale_x, t.offset_x, t.offset_y) == (1.0, -50.0, -100.0)
    crop = StaticCrop(50, 0, 100, 50)  # right half, top half (percent)
    net2 = NetworkInput(height=64, width=64, resize_mode="stretch")
    _, (t2,) = prepare_batch([_img(200, 400)], net2, static_crop=crop)
    assert t2.region == (200, 0, 400, 100)
    box = t2.boxes_to_original(np.array([[0, 0, 64, 64]], np.float32))
    np.testing.assert_allclose(box, [[200, 0, 400, 100]], rtol=1e-6)


def test_input_variants_are_normalised_before_preprocessing():
    net = ultralytics_config((64, 64)).network_input
    gray = np.full((30, 40), 200, np.uint8)
    rgba = np.full((30, 40, 4), 200, np.uint8)
    deep = np.full((30, 40, 3), 200 * 257, np.uint16)
    tensors = [prepare_batch(to_images(x), net)[0] for x in (gray, rgba, deep)]
    for t in tensors:
        np.testing.assert_allclose(t[0, :, 32, 32], np.full(3, 200 / 255), rtol=1e-6)
    with pytest.raises(ModelInputError):
        to_images(np.zeros((0, 10, 3), np.uint8))


def test_parse_inference_config_roboflow_fields_and_errors():
    cfg = parse_inference_config(
        {
            "network_input": {
                "training_input_size": {"height": 320, "width": 480},
                "dynamic_spatial_size_supported": True,
                "color_mode": "bgr",
                "resize_mode": "letterbox",
                "padding_value": 127,
                "input_channels": 3,
                "scaling_factor": 255,
                "normalization": [[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]],
            },
            "forward_pass": {"max_dynamic_batch_size": 8},
            "post_processing": {"type": "nms", "fused": False},
            "image_pre_processing": {
                "static-crop": {"enabled": True, "x_min": 10, "y_min": 0, "x_max": 90, "y_max": 100}
            },
        }
    )
    n = cfg.network_input
    assert (n.height, n.width, n.dynamic, n.color, n.padding_value) == (320, 480, True, "bgr", 127)
    assert n.mean == (0.1, 0.2, 0.3) and cfg.max_dynamic_batch_size == 8 and not cfg.fused_nms
    assert cfg.static_crop == StaticCrop(10, 0, 90, 100)
    with pytest.raises(CorruptedModelPackageError, match="resize_mode"):
        parse_inference_config(
            {"network_input": {"training_input_size": {"height": 1, "width": 1}, "resize_mode": "x"}}
        )
    with pytest.raises(CorruptedModelPackageError, match="network_input"):
        parse_inference_config({})
    with pytest.raises(CorruptedModelPackageError, match="height"):
        parse_inference_config({"network_input": {"training_input_size": {"height": 0, "width": 5}}})


def test_huge_image_is_resized_without_trouble():
    net = NetworkInput(height=320, width=320, dynamic=True)
    big = Image(np.zeros((8000, 8000, 3), np.uint8), "bgr")
    tensor, (t,) = prepare_batch([big], net, rect=True)
    assert tensor.shape == (1, 3, 320, 320) and t.scale_x == pytest.approx(0.04)


def _reference(im: Image, net: NetworkInput, tensor_hw: tuple[int, int], t: ImageTransform) -> np.ndarray:
    """Straightforward float64 pipeline: flip, resize, pad the uint8 image with OpenCV, then normalise."""
    import cv2

    H, W = tensor_hw
    h, w = im.height, im.width
    rh, rw = round(t.scale_y * h), round(t.scale_x * w)
    top, left = round(t.offset_y), round(t.offset_x)
    pixels = np.ascontiguousarray(im.to(net.color))
    if (rh, rw) != (h, w):
        pixels = cv2.resize(pixels, (rw, rh), interpolation=cv2.INTER_LINEAR)
    border = cv2.BORDER_REFLECT_101 if net.resize_mode == "letterbox-reflect-edges" else cv2.BORDER_CONSTANT
    pad = net.padding_value
    padded = cv2.copyMakeBorder(pixels, top, H - rh - top, left, W - rw - left, border, value=(pad, pad, pad))
    x = padded.astype(np.float64)
    if net.channels == 1:
        x = x.mean(axis=2, keepdims=True)
    x = x / (net.scaling_factor or 1.0)
    mean = np.zeros(net.channels) if net.mean is None else np.asarray(net.mean)
    std = np.ones(net.channels) if net.std is None else np.asarray(net.std)
    return ((x - mean) / std).transpose(2, 0, 1)


_MODES = [
    dict(resize_mode="letterbox"),
    dict(resize_mode="fit-longer-edge"),
    dict(resize_mode="letterbox-reflect-edges"),
    dict(resize_mode="stretch"),
    dict(resize_mode="letterbox", color="bgr", mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3)),
    dict(resize_mode="letterbox", channels=1, padding_value=0),
    dict(resize_mode="letterbox", dtype="float16"),
    dict(resize_mode="letterbox", dtype="uint8", scaling_factor=None),
]


@pytest.mark.parametrize("kw", _MODES, ids=lambda kw: "-".join(str(v) for v in kw.values()))
@pytest.mark.parametrize("shape", [(37, 91), (90, 40), (64, 64)])
def test_tensor_matches_a_pad_then_normalise_reference(kw: dict, shape: tuple[int, int]) -> None:
    net = NetworkInput(height=64, width=64, **kw)
    rng = np.random.default_rng(sum(shape))
    im = Image(rng.integers(0, 256, (*shape, 3), dtype=np.uint8), "bgr")
    tensor, (t,) = prepare_batch([im], net)
    want = _reference(im, net, tensor.shape[2:], t)
    assert tensor.shape == (1, net.channels, 64, 64) and tensor.dtype == np.dtype(net.dtype)
    if net.dtype == "uint8":
        np.testing.assert_array_equal(tensor[0], want)
    else:
        tol = 2e-3 if net.dtype == "float16" else 2e-6
        np.testing.assert_allclose(tensor[0].astype(np.float64), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("kw", _MODES[:1] + _MODES[4:], ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_padding_is_bit_identical_to_converting_a_pixel_of_the_padding_value(kw: dict) -> None:
    # an image made of the padding value must give one value per channel, in the image area and the padding alike
    net = NetworkInput(height=48, width=48, **kw)
    im = Image(np.full((20, 40, 3), net.padding_value, np.uint8), "bgr")
    tensor, (t,) = prepare_batch([im], net)
    assert t.offset_y > 0  # there is padding above and below
    for plane in tensor[0]:
        assert np.unique(plane).size == 1


def test_center_crop_pads_a_small_image_with_the_padding_value():
    net = NetworkInput(height=40, width=40, resize_mode="center-crop", padding_value=7, scaling_factor=None)
    tensor, (t,) = prepare_batch([_img(10, 60, "rgb", (1, 2, 3))], net)
    assert (t.offset_x, t.offset_y) == (-10.0, 15.0)
    np.testing.assert_array_equal(tensor[0, :, 0, 0], [7, 7, 7])
    np.testing.assert_array_equal(tensor[0, :, 15, 0], [1, 2, 3])
    np.testing.assert_array_equal(tensor[0, :, 24, 39], [1, 2, 3])  # rows 15..24: the 10-row image
    np.testing.assert_array_equal(tensor[0, :, 25, 39], [7, 7, 7])


def test_pixel_constants_are_cached_and_read_only():
    net = NetworkInput(height=8, width=8, mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.5))
    from im_models.common._preprocess import _constants

    (a, _), fill = _constants(net)
    assert _constants(net)[1] is fill
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 0
    np.testing.assert_allclose(fill[:, 0, 0], (114 / 255 - np.array([0.1, 0.2, 0.3])) / 0.5, rtol=1e-6)


@pytest.mark.parametrize(
    "kw",
    [{}, {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}, {"color": "bgr", "scaling_factor": 127.5}],
    ids=["div255", "imagenet", "bgr-127.5"],
)
def test_float32_planes_are_bit_identical_to_the_two_step_numpy_arithmetic(kw: dict) -> None:
    # the float32 path converts through a per-channel 256-entry table; it must equal fl(fl(v * a) + b) exactly
    net = NetworkInput(height=40, width=56, **kw)
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    pixels[0, :3] = [[0, 0, 0], [255, 255, 255], [114, 1, 254]]
    tensor, _ = prepare_batch([Image(pixels, "bgr")], net)
    planes = pixels[..., ::-1] if net.color == "rgb" else pixels
    scale = 1.0 / (net.scaling_factor or 1.0)
    mean = np.zeros(3) if net.mean is None else np.asarray(net.mean)
    std = np.ones(3) if net.std is None else np.asarray(net.std)
    for c in range(3):
        a, b = np.float32(scale / std[c]), np.float32(-mean[c] / std[c])
        want = planes[..., c].astype(np.float32) * a
        if b != 0:
            want = want + b
        np.testing.assert_array_equal(tensor[0, c], want)


def test_layout_is_reused_for_same_sized_images_and_kept_apart_per_configuration():
    from im_models.common._preprocess import _layout

    net = NetworkInput(height=128, width=128, dynamic=True, stride=32)
    first = _layout(((72, 128),), net, True, None, None)
    assert _layout(((72, 128),), net, True, None, None) is first  # cached
    assert (first.height, first.width) == (96, 128) and first.placements[0].top == 12
    # a different size, rect, crop or padding value gets its own geometry / values
    assert _layout(((128, 72),), net, True, None, None).width == 96
    assert _layout(((72, 128),), net, False, None, None).height == 128
    cropped = _layout(((72, 128),), net, True, StaticCrop(0, 0, 50, 100), None)
    assert cropped.placements[0].crop == (0, 0, 64, 72) and first.placements[0].crop is None
    padded = NetworkInput(height=128, width=128, dynamic=True, stride=32, padding_value=0)
    t_a, _ = prepare_batch([_img(72, 128)], net, rect=True)
    t_b, _ = prepare_batch([_img(72, 128)], padded, rect=True)
    assert t_a[0, 0, 0, 0] == np.float32(114) * np.float32(1 / 255) and t_b[0, 0, 0, 0] == 0
    # repeated calls give equal tensors and equal transforms
    t_c, tr_a = prepare_batch([_img(72, 128)], net, rect=True)
    t_d, tr_b = prepare_batch([_img(72, 128)], net, rect=True)
    np.testing.assert_array_equal(t_c, t_d)
    assert tr_a == tr_b


def test_unhashable_configuration_is_computed_without_the_cache():
    net = NetworkInput(height=16, width=16, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])  # type: ignore[arg-type]
    tensor, (t,) = prepare_batch([_img(8, 16, value=(255, 0, 128))], net)
    assert t.offset_y == 4.0
    want = (np.array([128, 0, 255]) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(tensor[0, :, 8, 8], want, rtol=1e-6, atol=1e-6)


def test_large_letterboxed_slot_is_bit_identical_to_numpy_and_padding_to_the_converted_padding_value():
    # a slot this large is converted by one multi-threaded cv2.LUT over all three planes, padding rows included
    net = NetworkInput(height=384, width=640)
    pixels = np.random.default_rng(11).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    tensor, (t,) = prepare_batch([Image(pixels, "bgr")], net)
    assert tensor.shape == (1, 3, 384, 640) and t.offset_y == 12.0
    a = np.float32(1 / 255)
    np.testing.assert_array_equal(tensor[0, :, 12:372], pixels[..., ::-1].transpose(2, 0, 1).astype(np.float32) * a)
    pad = np.float32(114) * a
    assert (tensor[0, :, :12] == pad).all() and (tensor[0, :, 372:] == pad).all()


def test_crop_boxes_widen_by_the_margin_clip_and_keep_at_least_one_pixel():
    from im_models.common import crop_boxes

    image = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3)
    boxes = np.array([[50, 20, 150, 60], [-10, -10, 20, 30], [250, 150, 260, 160]], np.float32)
    crops = crop_boxes(image, boxes, margin=0.1)
    assert crops[0].shape == (48, 120, 3)  # 100x40 box + 10% per side
    np.testing.assert_array_equal(crops[0], image[16:64, 40:160])
    assert crops[0].base is not None  # views, not copies
    np.testing.assert_array_equal(crops[1], image[0:34, 0:23])  # clipped at the image's edge
    assert crops[2].shape == (1, 1, 3)  # outside the image: its corner pixel
    assert crop_boxes(image, np.zeros((0, 4))) == []
    np.testing.assert_array_equal(crop_boxes(image, boxes[:1])[0], image[20:60, 50:150])


@pytest.mark.parametrize("mode", ["letterbox", "stretch", "fit-longer-edge", "center-crop"])
@pytest.mark.parametrize("rect", [False, True])
def test_canvas_size_is_the_canvas_an_image_gets_alone(mode, rect):
    from im_models.common import canvas_size

    net = NetworkInput(height=320, width=320, dynamic=True, stride=32, resize_mode=mode)
    for h, w in [(720, 1280), (480, 640), (333, 200), (320, 320), (50, 400)]:
        image = _img(h, w)
        for crop in (None, StaticCrop(10, 5, 90, 60)):
            for size in (None, (256, 416)):
                tensor, _ = prepare_batch([image], net, rect=rect, static_crop=crop, size=size)
                assert canvas_size(image, net, rect=rect, static_crop=crop, size=size) == tensor.shape[2:]


def test_resize_shorter_center_crop_is_ultralytics_classification_geometry():
    """Ultralytics classifies at the export size by scaling the shorter side to it and keeping the centre (its
    ``classify_transforms``: Resize(size) then CenterCrop(size)); no letterbox padding."""
    import cv2

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (300, 600, 3), np.uint8)
    net = NetworkInput(height=100, width=100, resize_mode="resize-shorter-center-crop")
    tensor, (t,) = prepare_batch([Image(pixels, "bgr")], net)
    assert tensor.shape == (1, 3, 100, 100)
    centre = cv2.resize(pixels[:, 150:450], (100, 100), interpolation=cv2.INTER_LINEAR)[..., ::-1]  # RGB
    np.testing.assert_allclose(tensor[0].transpose(1, 2, 0), centre / 255.0, atol=1.5 / 255)
    assert (t.scale_x, t.scale_y) == (100 / 300, 100 / 300)
    # the network's corners are the centre square's corners in the original image
    box = t.boxes_to_original(np.array([[0, 0, 100, 100]], np.float32))
    np.testing.assert_allclose(box, [[150, 0, 450, 300]], atol=1e-4)
    # a rectangular network input: scaled so the image covers it, then the centre (here 300x600 → 200x400 crop)
    wide = NetworkInput(height=100, width=200, resize_mode="resize-shorter-center-crop")
    _, (tw,) = prepare_batch([Image(pixels, "bgr")], wide, rect=True)
    np.testing.assert_allclose(tw.boxes_to_original(np.array([[0, 0, 200, 100]], np.float32)), [[0, 0, 600, 300]])
