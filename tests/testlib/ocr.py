"""Rendered text and the pinned PP-OCR models, shared by the OCR family tests and the ``ocr`` pipeline tests.

Text is rendered with Pillow's built-in font (``ImageFont.load_default(size=...)``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LINES = ("Hello World 2024", "ONNX Runtime OCR test")


def render(lines: tuple[str, ...], size: int, angle: float = 0.0, pad: int = 20) -> np.ndarray:
    """Black text on white, one line per entry, rotated by ``angle`` degrees (counter-clockwise); BGR uint8."""
    font = ImageFont.load_default(size=size)
    width = max(font.getbbox(t)[2] for t in lines) + 2 * pad
    step = int(size * 1.6)
    page = Image.new("RGB", (width, step * len(lines) + 2 * pad), "white")
    draw = ImageDraw.Draw(page)
    for i, text in enumerate(lines):
        draw.text((pad, pad + i * step), text, font=font, fill="black")
    if angle:
        page = page.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")
    return np.ascontiguousarray(np.asarray(page)[:, :, ::-1])


def tight(image: np.ndarray, margin: int = 4) -> np.ndarray:
    """The ink's bounding box (non-white pixels) plus ``margin`` pixels: a text-line crop as a detector gives it."""
    ys, xs = np.nonzero(image.min(axis=2) < 200)
    y0, x0 = max(ys.min() - margin, 0), max(xs.min() - margin, 0)
    return np.ascontiguousarray(image[y0 : ys.max() + margin + 1, x0 : xs.max() + margin + 1])


#: the detector settings before issue 15 (longest side capped at 960, PaddleOCR's tool defaults). The tests of
#: small rendered images were written for them: at the reference's sizing (short side up to 736) PP-OCRv4 det splits
#: a 150-px-high two-line image's lines into words. The reference's defaults are tested in test_ocr_accuracy.py.
SMALL_PAGE_DETECTOR = {
    "limit_type": "max",
    "limit_side_len": 960,
    "box_threshold": 0.6,
    "unclip_ratio": 1.5,
    "dilate": False,
}


def detector(asset: Callable[[str], Path], file: str = "ocr/PP-OCRv6_det_tiny.onnx", **options):
    from im_core.testing import local_context
    from im_models.ocr._detection import DBTextDetector

    ctx = local_context(asset(file), architecture="pp-ocr-det", task="text-detection", options=options or None)
    return DBTextDetector.from_package(ctx)


def recognizer(asset: Callable[[str], Path], file: str = "ocr/PP-OCRv6_rec_tiny.onnx", **dependencies):
    from im_core.testing import local_context
    from im_models.ocr._recognition import CTCTextRecognizer

    ctx = local_context(asset(file), architecture="pp-ocr-rec", task="text-recognition", dependencies=dependencies)
    return CTCTextRecognizer.from_package(ctx)


def angle_classifier(asset: Callable[[str], Path]):
    from im_core.testing import local_context
    from im_models.ocr._angle import TextAngleClassifier

    path = asset("ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx")
    return TextAngleClassifier.from_package(local_context(path, architecture="pp-ocr-cls", task="classification"))
