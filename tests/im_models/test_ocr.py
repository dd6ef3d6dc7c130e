"""PP-OCR families on the real pinned weights: DB detection, CTC recognition, the 0/180 angle classifier.

Text is rendered with Pillow's built-in font (``ImageFont.load_default(size=...)``) at several sizes, in two lines,
straight and lightly rotated. Reading whole pages (det → angle → rec) is the ``ocr`` pipeline's job: its tests are
in ``tests/im_pipelines/test_ocr_reading.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from im_core import Detections, TextRecognition
from im_core.errors import DependencyModelError, InvalidParameterError
from im_core.testing import local_context
from im_models.common._crops import crop_quads, order_quads
from im_models.ocr._angle import TextAngleClassifier
from im_models.ocr._ctc import CTCAlphabet, greedy_decode
from im_models.ocr._db import rect_corners
from im_models.ocr._detection import DBTextDetector
from im_models.ocr._recognition import CTCTextRecognizer
from testlib import ocr
from testlib.ocr import LINES, render, tight

# -- models (loaded once per module) ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def det_v6(asset):
    ctx = local_context(asset("ocr/PP-OCRv6_det_tiny.onnx"), architecture="pp-ocr-det", task="text-detection")
    return DBTextDetector.from_package(ctx)


@pytest.fixture(scope="module")
def det_v4(asset):
    ctx = local_context(
        asset("ocr/ch_PP-OCRv4_det_infer.onnx"),
        architecture="pp-ocr-det",
        task="text-detection",
        options=ocr.SMALL_PAGE_DETECTOR,  # the sizing these small-image tests were written for (see testlib.ocr)
    )
    return DBTextDetector.from_package(ctx)


@pytest.fixture(scope="module")
def angle(asset):
    path = asset("ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx")
    return TextAngleClassifier.from_package(local_context(path, architecture="pp-ocr-cls", task="classification"))


def _recognizer(path, **dependencies) -> CTCTextRecognizer:
    ctx = local_context(path, architecture="pp-ocr-rec", task="text-recognition", dependencies=dependencies)
    return CTCTextRecognizer.from_package(ctx)


@pytest.fixture(scope="module")
def rec_v6(asset):
    return _recognizer(asset("ocr/PP-OCRv6_rec_tiny.onnx"))


# -- detection -------------------------------------------------------------------------------------------------


@pytest.mark.weights
@pytest.mark.parametrize("which", ["det_v6", "det_v4"])
def test_db_detector_finds_two_tilted_lines_in_reading_order(which, request):
    detector = request.getfixturevalue(which)
    image = render(LINES, size=32, angle=3)
    found = detector(image)
    assert isinstance(found, Detections)
    assert len(found) == 2
    assert found.names == ["text", "text"]
    polygons = found.data["polygon"]
    assert polygons.shape == (2, 4, 2)
    assert np.all(found.confidence > 0.6)
    # reading order: first line above the second
    assert polygons[0, :, 1].mean() < polygons[1, :, 1].mean()
    # the text is tilted up by 3 degrees (counter-clockwise): the top edge rises to the right
    top = polygons[0, 1] - polygons[0, 0]
    assert np.degrees(np.arctan2(-top[1], top[0])) == pytest.approx(3.0, abs=1.5)
    # boxes are the bounds of the polygons, inside the image
    np.testing.assert_allclose(found.xyxy[:, :2], polygons.min(axis=1))
    h, w = image.shape[:2]
    assert np.all(polygons >= 0) and np.all(polygons[..., 0] <= w) and np.all(polygons[..., 1] <= h)


@pytest.mark.weights
def test_db_detector_thresholds_are_call_parameters(det_v6):
    image = render(LINES, size=24)
    assert len(det_v6(image, box_threshold=0.99)) == 0
    assert len(det_v6(image, confidence=0.5)) == 2
    with pytest.raises(InvalidParameterError, match="iou"):
        det_v6(image, iou=0.5)


@pytest.mark.weights
def test_db_detector_batch_of_different_sizes_matches_single_calls(det_v6):
    a, b = render(LINES, size=24), render(LINES[:1], size=40, angle=-2)
    batch = det_v6([a, b])
    for image, result in zip((a, b), batch):
        single = det_v6(image)
        assert len(single) == len(result)
        np.testing.assert_allclose(single.data["polygon"], result.data["polygon"], atol=2.0)


# -- recognition of single line crops --------------------------------------------------------------------------


@pytest.mark.weights
def test_recognizer_reads_a_line_image(rec_v6):
    line = tight(render(LINES[1:], size=32))
    result = rec_v6(line)
    assert result.text == LINES[1]
    assert result.lines[0].polygon.tolist() == [
        [0, 0],
        [line.shape[1], 0],
        [line.shape[1], line.shape[0]],
        [0, line.shape[0]],
    ]


@pytest.mark.weights
def test_recognizer_batches_crops_of_very_different_widths(rec_v6):
    words = ["OCR", "Hello World 2024", "ONNX Runtime OCR test", "a", "42"]
    crops = [tight(render((w,), size=28)) for w in words]
    texts, confidence = rec_v6.recognize_crops(crops)
    assert texts == words
    assert confidence.shape == (5,) and np.all(confidence > 0.5)
    # the same crops one by one give the same strings (batching by width changes nothing)
    assert [rec_v6.recognize_crops([c])[0][0] for c in crops] == words


@pytest.mark.weights
def test_recognizer_batch_gives_each_crop_its_single_result_bitwise(rec_v6):
    # batches never change answers: each crop gets the canvas width it gets alone, so text and confidence are
    # bitwise those of a call with that crop only, whatever the other crops are
    words = ["OCR", "Hello World 2024", "ONNX Runtime OCR test", "a", "42", "Hi", "x1", "Batch"]
    crops = [tight(render((w,), size=s)) for w, s in zip(words, (28, 22, 30, 26, 28, 24, 32, 20))]
    texts, confidence = rec_v6.recognize_crops(crops)
    for k, crop in enumerate(crops):
        alone_text, alone_conf = rec_v6.recognize_crops([crop])
        assert texts[k] == alone_text[0]
        np.testing.assert_array_equal(confidence[k : k + 1], alone_conf)


@pytest.mark.weights
def test_db_detector_mixed_size_batch_equals_single_calls_bitwise(det_v6):
    images = [render(LINES, size=24), render(LINES[:1], size=40, angle=-2), render(LINES[1:], size=30)]
    batch = det_v6(images)
    for image, result in zip(images, batch, strict=True):
        single = det_v6(image)
        np.testing.assert_array_equal(single.xyxy, result.xyxy)
        np.testing.assert_array_equal(single.confidence, result.confidence)
        np.testing.assert_array_equal(single.data["polygon"], result.data["polygon"])


@pytest.mark.weights
@pytest.mark.parametrize(
    "crop",
    [
        np.zeros((40, 1, 3), np.uint8),  # one pixel wide
        np.full((48, 1, 3), 255, np.uint8),
        np.full((1, 1, 3), 255, np.uint8),
        np.full((60, 400, 3), 255, np.uint8),  # blank
        np.zeros((60, 400, 3), np.uint8),
    ],
    ids=["width1-black", "width1-white", "1x1", "blank-white", "blank-black"],
)
def test_degenerate_crops_give_an_empty_result(rec_v6, crop):
    result = rec_v6(crop)
    assert isinstance(result, TextRecognition)
    assert result.lines == [] and result.text == ""


@pytest.mark.weights
def test_recognizer_reads_the_quadrilaterals_it_is_given(rec_v6, det_v6):
    page = render(LINES, size=32, angle=3)
    quads = det_v6(page).data["polygon"]
    result = rec_v6(page, polygons=quads)
    assert [line.text for line in result.lines] == list(LINES)
    np.testing.assert_array_equal(np.stack([line.polygon for line in result.lines]), quads)
    # the same as cutting the quadrilaterals out by hand and reading the crops
    texts, confidence = rec_v6.recognize_crops(crop_quads(page, quads))
    assert texts == list(LINES) and [line.confidence for line in result.lines] == confidence.tolist()
    # RGB pixels, nested lists, a batch with one entry per image (none for a blank page)
    rgb = np.ascontiguousarray(page[:, :, ::-1])
    assert rec_v6(rgb, color_format="rgb", polygons=quads.tolist()).text == "\n".join(LINES)
    blank = np.full((100, 300, 3), 255, np.uint8)
    both = rec_v6([page, blank], polygons=[quads, np.zeros((0, 4, 2))])
    assert [r.text for r in both] == ["\n".join(LINES), ""]
    assert rec_v6(page, polygons=[]).lines == []
    with pytest.raises(InvalidParameterError, match=r"one \(N, 4, 2\) array of quadrilaterals per image: 2 image"):
        rec_v6([page, blank], polygons=quads)
    with pytest.raises(InvalidParameterError, match=r"quadrilaterals .* got shape \[2, 2, 2\]"):
        rec_v6(page, polygons=quads[:, :2])
    with pytest.raises(InvalidParameterError, match=r"did you mean 'polygons'"):
        rec_v6(page, polygon=quads)


@pytest.mark.weights
def test_recognizer_reads_lines_only_and_points_pages_to_the_ocr_pipeline(asset, det_v6, angle):
    for dependencies in ({"text_detector": det_v6}, {"text_detector": det_v6, "angle_classifier": angle}):
        with pytest.raises(DependencyModelError, match=r"'ocr' pipeline.*AutoModelPipeline.from_pretrained\('ocr'"):
            _recognizer(asset("ocr/PP-OCRv6_rec_tiny.onnx"), **dependencies)


@pytest.mark.weights
def test_ocr_crop_batch_sizes_are_load_options_apart_from_from_pretrained_batch_size(asset, tmp_path):
    import json
    import shutil

    path = asset("ocr/PP-OCRv6_rec_tiny.onnx")
    ctx = local_context(path, architecture="pp-ocr-rec", task="text-recognition", options={"recognition_batch_size": 2})
    assert CTCTextRecognizer.from_package(ctx)._batch == 2
    with pytest.raises(InvalidParameterError, match=r"'batch_size' \(did you mean 'recognition_batch_size'\?\)"):
        CTCTextRecognizer.from_package(
            local_context(path, architecture="pp-ocr-rec", task="text-recognition", options={"batch_size": 2})
        )
    cls_path = asset("ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx")
    ctx = local_context(
        cls_path, architecture="pp-ocr-cls", task="classification", options={"classification_batch_size": 3}
    )
    classifier = TextAngleClassifier.from_package(ctx)
    assert classifier._batch == 3 and classifier.metadata.extra["flip_threshold"] == 0.9
    # a package's ocr_config.json written with the older key still sets it
    folder = tmp_path / "rec"
    folder.mkdir()
    shutil.copy(path, folder / "weights.onnx")
    (folder / "ocr_config.json").write_text(json.dumps({"batch_size": 5, "confidence": 0.4}))
    recognizer = CTCTextRecognizer.from_package(
        local_context(folder, architecture="pp-ocr-rec", task="text-recognition")
    )
    assert (recognizer._batch, recognizer._confidence) == (5, 0.4)


# -- angle classifier ------------------------------------------------------------------------------------------


@pytest.mark.weights
@pytest.mark.parametrize("size", [20, 32])
def test_angle_classifier_tells_upright_from_rotated_180(angle, size):
    crops = [tight(render((t,), size=size)) for t in LINES]
    flipped = [c[::-1, ::-1].copy() for c in crops]
    results = angle(crops + flipped)
    assert [r.class_name for r in results] == ["0", "0", "180", "180"]
    assert all(r.top_confidence > 0.9 for r in results)
    assert angle.upside_down(crops + flipped).tolist() == [False, False, True, True]


@pytest.mark.weights
def test_angle_classifier_pads_instead_of_squashing(angle):
    """A long line (aspect ≫ 192/48) is cut at 192 px after resizing to height 48, never squashed."""
    from im_models.ocr._lines import line_batch

    long_line = tight(render(("ONNX Runtime OCR test and a much longer line of text",), size=24))
    batch = line_batch([long_line], 48, 192)
    assert batch.shape == (1, 3, 48, 192)
    short = tight(render(("OCR",), size=24))
    short_batch = line_batch([short], 48, 192)
    width = int(np.ceil(48 * short.shape[1] / short.shape[0]))
    assert np.all(short_batch[0, :, :, width:] == 0.0)  # right side is padding
    assert angle(short).class_name == "0"


# -- decoding units --------------------------------------------------------------------------------------------


def test_greedy_ctc_collapses_repeats_drops_blanks_and_averages_confidence():
    alphabet = CTCAlphabet(["a", "b"], num_classes=4)  # blank, a, b, space
    assert alphabet.symbols.tolist() == ["", "a", "b", " "]
    steps = [[1, 1, 0, 1, 2, 3, 2], [0, 0, 0, 0, 0, 0, 0]]
    probs = np.full((2, 7, 4), 0.01, np.float32)
    for n, row in enumerate(steps):
        probs[n, np.arange(7), row] = 0.97  # rows sum to 1: used as probabilities
    probs[0, 1] = [0.01, 0.7, 0.28, 0.01]  # repeated 'a': collapsed, only the first step counts
    texts, conf = greedy_decode(probs, alphabet)
    assert texts == ["aab b", ""]
    assert conf[0] == pytest.approx(0.97) and conf[1] == 0.0
    logits = np.log(probs)  # un-normalised scores are softmaxed first
    assert greedy_decode(logits * 3, alphabet)[0] == texts


def test_alphabet_size_must_match_the_network():
    from im_core.errors import CorruptedModelPackageError

    with pytest.raises(CorruptedModelPackageError, match="output classes"):
        CTCAlphabet(["a", "b"], num_classes=10)


def test_rect_corners_match_opencv_and_quads_are_ordered_clockwise():
    import cv2

    rng = np.random.default_rng(0)
    rects = np.column_stack([rng.uniform(50, 100, (20, 2)), rng.uniform(5, 40, (20, 2)), rng.uniform(-90, 90, 20)])
    ours = rect_corners(rects)
    for r, q in zip(rects, ours):
        np.testing.assert_allclose(q, cv2.boxPoints(((r[0], r[1]), (r[2], r[3]), r[4])), atol=1e-3)
    ordered = order_quads(ours)
    # clockwise in image coordinates (y down): positive shoelace area
    x, y = ordered[..., 0], ordered[..., 1]
    area = 0.5 * (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)
    assert np.all(area > 0)
    assert np.all(ordered[:, 0, 0] <= ordered[:, 1, 0] + 1e-3)


def test_crop_quads_warps_a_rotated_box_upright_and_turns_tall_crops():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 50:150] = 255
    crop = crop_quads(image, np.array([[[50, 40], [150, 40], [150, 60], [50, 60]]], np.float32))[0]
    assert crop.shape == (20, 100, 3) and crop.mean() > 250
    tall = crop_quads(image, np.array([[[10, 10], [20, 10], [20, 60], [10, 60]]], np.float32))[0]
    assert tall.shape == (10, 50, 3)
    assert crop_quads(image, np.zeros((0, 4, 2), np.float32)) == []


@pytest.mark.weights
def test_automodel_routes_bare_pp_ocr_files_to_these_families(asset):
    from im_core import AutoModel

    det = AutoModel.from_pretrained(
        asset("ocr/PP-OCRv6_det_tiny.onnx"), architecture="pp-ocr-det", task="text-detection"
    )
    rec = AutoModel.from_pretrained(
        asset("ocr/PP-OCRv6_rec_tiny.onnx"), architecture="pp-ocr-rec", task="text-recognition"
    )
    cls = AutoModel.from_pretrained(
        asset("ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx"), architecture="pp-ocr-cls", task="classification"
    )
    assert (type(det), type(rec), type(cls)) == (DBTextDetector, CTCTextRecognizer, TextAngleClassifier)
    page = render(LINES, size=32)
    crops = crop_quads(page, det(page).data["polygon"])
    assert rec.recognize_crops(crops)[0] == list(LINES)
    assert [r.class_name for r in cls(crops)] == ["0", "0"]
