"""Batches never change answers (DESIGN.md §2, issue 13): ``model([...])`` and ``model.infer_batch(items)`` give every
item the result it gets alone, on real weights (the nudenet 320n YOLOv8 detector, whose graph takes any height and
width, so images of different sizes get different canvases; MediaPipe BlazeFace, a fixed 256×256 input) and the
public-domain photographs resized to several sizes. Equality is **bitwise** (``assert_array_equal``), not within a
tolerance: same-canvas images run in one batch and ONNX Runtime's CPU kernels treat batch items alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel, Detections, Model
from im_core.errors import ImError, InvalidParameterError, ModelInputError

pytestmark = pytest.mark.weights

#: (width, height): squares, portrait, landscape, odd sizes; under nudenet's rectangular inference (320, stride 32)
#: they fall on several canvases (320×320, 256×320, 320×256, 192×320, ...)
SIZES = [(320, 320), (640, 480), (480, 640), (1280, 720), (300, 500), (512, 512), (200, 333), (720, 1280), (96, 400)]


def _photos(asset) -> list[np.ndarray]:
    import cv2

    photos = [cv2.imread(str(asset(f"images/{name}.png")), cv2.IMREAD_COLOR) for name in ("astronaut", "chelsea")]
    photos.append(cv2.imread(str(asset("images/camera.png")), cv2.IMREAD_COLOR))  # grey, read as 3 channels
    return [cv2.resize(photos[k % len(photos)], size) for k, size in enumerate(SIZES)]


@pytest.fixture(scope="module")
def photos(asset) -> list[np.ndarray]:
    return _photos(asset)


@pytest.fixture(scope="module")
def nudenet(asset) -> Model:
    return AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))


@pytest.fixture(scope="module")
def blazeface(asset) -> Model:
    return AutoModel.from_pretrained(
        asset("face/blazeface_back_256.onnx"), architecture="blazeface", task="object-detection"
    )


def _assert_same(got: Detections, want: Detections) -> None:
    np.testing.assert_array_equal(got.xyxy, want.xyxy)
    np.testing.assert_array_equal(got.confidence, want.confidence)
    np.testing.assert_array_equal(got.class_id, want.class_id)
    if want.keypoints is not None:
        np.testing.assert_array_equal(got.keypoints, want.keypoints)


def _canvases(model: Model, images: list[np.ndarray]) -> set:
    from im_core import to_images

    return {model.canvas_key(im) for im in to_images(images)}


@pytest.mark.parametrize("name", ["nudenet", "blazeface"])
def test_a_mixed_size_batch_equals_one_at_a_time_bitwise(name, request, photos):
    model = request.getfixturevalue(name)
    alone = [model(image, confidence=0.2) for image in photos]
    assert sum(len(d) for d in alone) >= 4  # real detections to compare, not empty results
    for batch in (model(photos, confidence=0.2), model.infer_batch(photos, confidence=0.2)):
        assert len(batch) == len(photos)
        for got, want in zip(batch, alone, strict=True):
            _assert_same(got, want)
    # reversed order: an image's neighbours do not matter either
    for got, want in zip(model(photos[::-1], confidence=0.2), alone[::-1], strict=True):
        _assert_same(got, want)


def test_nudenet_images_fall_on_several_canvases_and_blazeface_on_one(nudenet, blazeface, photos):
    # the case the grouping exists for: with one shared canvas the batch above would differ (measured before the
    # fix: 3 of these 9 images got other boxes or scores)
    assert len(_canvases(nudenet, photos)) >= 4
    assert _canvases(blazeface, photos) == {None}  # a fixed input: one group, one batch


def test_same_size_images_still_run_as_one_batch(nudenet, photos):
    same = [photos[1], photos[1][::-1].copy(), photos[1][:, ::-1].copy()]  # 640×480 each
    runs: list[int] = []
    forward = nudenet.forward

    def counting(prepared):
        runs.append(len(prepared.tensor))
        return forward(prepared)

    nudenet.forward = counting
    try:
        batch = nudenet(same)
        mixed = nudenet([photos[0], photos[1], photos[2], photos[1]])
    finally:
        del nudenet.forward
    assert runs[0] == 3  # one run of three
    assert sorted(runs[1:]) == [1, 1, 2]  # the two 640×480 images share a run, the others run alone
    for got, image in zip(batch, same, strict=True):
        _assert_same(got, nudenet(image))
    _assert_same(mixed[3], nudenet(photos[1]))


def test_a_corrupt_item_gets_its_own_error_and_the_others_their_results(nudenet, photos, asset, tmp_path):
    import cv2

    good = cv2.imencode(".png", photos[0])[1].tobytes()
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), photos[3])
    items = [good, b"\x89PNG\r\n\x1a\n this is not a picture", path, good[: len(good) // 3], photos[2]]
    out = nudenet.infer_batch(items, errors="return")
    assert len(out) == len(items)
    for slot in (1, 3):
        assert isinstance(out[slot], ModelInputError) and isinstance(out[slot], ImError)
        assert f"item {slot}" in out[slot].message
    _assert_same(out[0], nudenet(good))
    _assert_same(out[2], nudenet(str(path)))
    _assert_same(out[4], nudenet(photos[2]))

    with pytest.raises(ModelInputError, match="item 1"):
        nudenet.infer_batch(items)  # errors="raise", the default
    assert nudenet.infer_batch([], errors="return") == []


def test_infer_batch_refuses_bad_arguments_for_every_item(nudenet, photos):
    with pytest.raises(InvalidParameterError, match="errors"):
        nudenet.infer_batch(photos[:1], errors="ignore")
    with pytest.raises(InvalidParameterError, match="confidence"):  # a wrong name concerns every item: raised
        nudenet.infer_batch(photos[:1], errors="return", confidnce=0.5)


def test_infer_batch_splits_to_the_session_batch_limit(nudenet, photos):
    from im_core.sdk import BatchLimits

    assert nudenet.batch_limits is not None
    runs: list[int] = []
    forward = nudenet.forward

    def counting(prepared):
        runs.append(len(prepared.tensor))
        return forward(prepared)

    same = [photos[0]] * 5
    session = nudenet.package.session
    limits = session.batch_limits
    nudenet.forward = counting
    session.batch_limits = BatchLimits(1, 2)
    try:
        out = nudenet.infer_batch(same)
    finally:
        del nudenet.forward
        session.batch_limits = limits
    assert runs == [2, 2, 1]
    want = nudenet(photos[0])
    for got in out:
        _assert_same(got, want)


def test_path_items_and_a_generator_are_accepted(nudenet, photos, tmp_path):
    import cv2

    paths = []
    for k, image in enumerate(photos[:3]):
        paths.append(Path(tmp_path / f"{k}.png"))
        cv2.imwrite(str(paths[-1]), image)
    out = nudenet.infer_batch(p for p in paths)
    for got, image in zip(out, photos[:3], strict=True):
        _assert_same(got, nudenet(image))


def test_a_batch_that_fails_is_rerun_image_by_image_so_the_error_lands_on_its_image(nudenet, photos):
    from im_core.errors import ModelRuntimeError

    blank = np.zeros_like(photos[0])  # same size as photos[0]: the three share one canvas and one batch
    items = [photos[0], blank, photos[0][:, ::-1].copy()]
    forward = nudenet.forward
    runs: list[int] = []

    def failing_on_a_blank_image(prepared):  # a fault injected into the run, as a backend error would be
        runs.append(len(prepared.tensor))
        flat = prepared.tensor.reshape(len(prepared.tensor), -1)
        if np.any(flat.max(axis=1) == flat.min(axis=1)):
            raise ModelRuntimeError("the backend failed on this batch")
        return forward(prepared)

    nudenet.forward = failing_on_a_blank_image
    try:
        out = nudenet.infer_batch(items, errors="return")
        with pytest.raises(ModelRuntimeError):
            nudenet.infer_batch(items)
    finally:
        del nudenet.forward
    assert runs[:4] == [3, 1, 1, 1]  # the batch, then each image alone
    assert isinstance(out[1], ModelRuntimeError)
    _assert_same(out[0], nudenet(items[0]))
    _assert_same(out[2], nudenet(items[2]))
