"""The ``ocr`` pipeline on the real pinned PP-OCR weights: text detection → crops → angle classification →
recognition, built from loaded models (``OCRPipeline.from_models``). Text is rendered with Pillow's built-in font at
several sizes, in two lines, straight and lightly rotated; det + rec must read it back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from im_core import TextRecognition
from im_core.errors import InvalidParameterError, ModelInputError
from im_models.common import crop_quads
from im_pipelines import OCRPipeline
from testlib import ocr
from testlib.ocr import LINES, render

# -- models (loaded once per module) ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def det_v6(asset):
    return ocr.detector(asset)


@pytest.fixture(scope="module")
def det_v4(asset):
    return ocr.detector(asset, "ocr/ch_PP-OCRv4_det_infer.onnx", **ocr.SMALL_PAGE_DETECTOR)


@pytest.fixture(scope="module")
def rec_v6(asset):
    return ocr.recognizer(asset)


@pytest.fixture(scope="module")
def reader_v6(det_v6, rec_v6, asset):
    return OCRPipeline.from_models([det_v6, rec_v6, ocr.angle_classifier(asset)])


# -- end to end: detection + crops + angle + recognition -------------------------------------------------------


@pytest.mark.weights
@pytest.mark.parametrize("size", [16, 24, 32, 48])
@pytest.mark.parametrize("angle_deg", [0.0, 3.0, -2.0])
def test_pp_ocr_v6_reads_rendered_text_exactly(reader_v6, size, angle_deg):
    result = reader_v6(render(LINES, size=size, angle=angle_deg))
    assert isinstance(result, TextRecognition)
    assert [line.text for line in result.lines] == list(LINES)
    assert all(line.confidence > 0.85 for line in result.lines)
    assert all(line.polygon.shape == (4, 2) for line in result.lines)


@pytest.mark.weights
def test_pp_ocr_v4_det_with_v6_rec_reads_exactly(det_v4, rec_v6):
    reader = OCRPipeline.from_models([det_v4, rec_v6])
    for size, angle_deg in [(24, 0.0), (32, 3.0), (48, -2.0)]:
        assert reader(render(LINES, size=size, angle=angle_deg)).text == "\n".join(LINES)


@pytest.mark.weights
def test_pp_ocr_v4_rec_reads_the_characters_exactly(asset, det_v4):
    """PP-OCRv4's (Chinese + English) recogniser reads every character, but it often drops the narrow word
    spaces of Pillow's built-in font (Aileron) — a property of the model: it reads them on crops with more margin.
    So the characters are compared exactly and the spaces separately on padded crops."""
    reader = OCRPipeline.from_models([det_v4, ocr.recognizer(asset, "ocr/ch_PP-OCRv4_rec_infer.onnx")])
    image = render(LINES, size=32, angle=3)
    result = reader(image)
    assert [line.text.replace(" ", "") for line in result.lines] == [t.replace(" ", "") for t in LINES]
    assert all(line.confidence > 0.9 for line in result.lines)
    import cv2

    crops = crop_quads(image, np.stack([line.polygon for line in result.lines]))
    padded = [cv2.copyMakeBorder(c, 6, 6, 6, 6, cv2.BORDER_CONSTANT, value=(255, 255, 255)) for c in crops]
    texts, confidence = reader.models["text_recognizer"].recognize_crops(padded)
    assert texts == list(LINES)
    assert np.all(confidence > 0.9)


@pytest.mark.weights
def test_reader_turns_an_upside_down_page_right_way_up(reader_v6, det_v6, rec_v6):
    page = render(LINES, size=32)[::-1, ::-1].copy()  # rotated 180°
    assert reader_v6(page).text == "\n".join(LINES[::-1])  # the bottom line of the flipped page is read first
    without_angle = OCRPipeline.from_models([det_v6, rec_v6])
    assert without_angle(page).text != reader_v6(page).text


@pytest.mark.weights
def test_reader_on_a_list_returns_a_list_and_a_blank_page_reads_nothing(reader_v6):
    blank = np.full((200, 300, 3), 255, np.uint8)
    results = reader_v6([render(LINES, size=24), blank])
    assert [len(r) for r in results] == [2, 0]
    assert results[1].text == ""


@pytest.mark.weights
def test_ocr_bad_inputs(reader_v6, det_v6):
    text = render(LINES, size=32)
    gray = text[:, :, 0]
    rgba = np.dstack([text, np.full(text.shape[:2], 255, np.uint8)])
    deep = text.astype(np.uint16) * 257
    for image in (gray, rgba, deep):
        assert reader_v6(image).text == "\n".join(LINES)
    with pytest.raises(ModelInputError):
        reader_v6(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ModelInputError):
        det_v6(np.zeros((10, 0), np.uint8))
    huge = np.full((8000, 8000, 3), 255, np.uint8)
    huge[3000 : 3000 + text.shape[0], 2000 : 2000 + text.shape[1]] = text  # small text on a huge page
    found = det_v6(huge)
    assert len(found) <= 2 and found.data["polygon"].max() <= 8000


@pytest.mark.weights
def test_reader_accepts_pil_and_rgb_inputs(reader_v6):
    bgr = render(LINES, size=24, angle=2)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    expected = "\n".join(LINES)
    assert reader_v6(Image.fromarray(rgb)).text == expected
    assert reader_v6(rgb, color_format="rgb").text == expected
    assert reader_v6.models["text_detector"](rgb, color_format="rgb").data["polygon"].shape == (2, 4, 2)


@pytest.mark.weights
def test_reader_matches_the_recognizer_on_the_detected_polygons_and_refuses_polygons(reader_v6, det_v6, rec_v6):
    page = render(LINES, size=24, angle=2)
    without_angle = OCRPipeline.from_models([det_v6, rec_v6])
    direct = rec_v6(page, polygons=det_v6(page).data["polygon"])
    piped = without_angle(page)
    assert [(line.text, line.confidence) for line in piped.lines] == [(x.text, x.confidence) for x in direct.lines]
    np.testing.assert_array_equal([x.polygon for x in piped.lines], [x.polygon for x in direct.lines])
    assert reader_v6(page, confidence=0.99).text != reader_v6(page).text  # call parameters reach the recogniser
    with pytest.raises(InvalidParameterError, match="finds the text lines itself"):
        reader_v6(page, polygons=direct)
    with pytest.raises(InvalidParameterError, match=r"'conf' \(did you mean 'confidence'\?\)"):
        reader_v6(page, conf=0.5)
