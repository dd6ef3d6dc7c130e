"""OCR accuracy and time: im's ``ocr`` pipeline vs RapidOCR with the same PP-OCRv4 weights on rendered pages.

Pages are rendered with Pillow's built-in font (a few line sizes, a dense 30-line page). Both read the same det + rec
ONNX files (rapidocr-onnxruntime 1.4.4's, pinned in assets/test-weights.json); no angle classifier on either side.
The character error rate (CER) is the edit distance between the page's text (lines joined by newlines) and the text
read, over the page's length; "no-space" is the same with every space removed from both (PP-OCRv4's Chinese + English
recogniser drops many of the narrow word spaces of Pillow's font). RapidOCR is optional: without it only im's
numbers are printed.

    uv run --with rapidocr-onnxruntime==1.4.4 python benchmarks/bench_ocr_accuracy.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("IM_TEST_ASSETS", REPO / ".cache" / "test-assets")) / "ocr"
DET, REC = ASSETS / "ch_PP-OCRv4_det_infer.onnx", ASSETS / "ch_PP-OCRv4_rec_infer.onnx"

_VOCABULARY = (
    "the quick brown fox jumps over lazy dog model image text line reading order box score detector page network "
    "weights pixel font size 2024 ONNX Runtime OCR test alpha beta gamma delta 17 42 3.14 Hello World"
)
WORDS = tuple(_VOCABULARY.split())


def lines_of(n: int, seed: int, words: int = 6) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=words)) for _ in range(n)]


def render(lines: list[str], size: int, pad: int = 30, spacing: float = 1.6) -> np.ndarray:
    """Black text on white, one line per entry, Pillow's built-in font at ``size``; BGR uint8."""
    font = ImageFont.load_default(size=size)
    width = max(font.getbbox(t)[2] for t in lines) + 2 * pad
    step = int(size * spacing)
    page = Image.new("RGB", (width, step * len(lines) + 2 * pad), "white")
    draw = ImageDraw.Draw(page)
    for i, text in enumerate(lines):
        draw.text((pad, pad + i * step), text, font=font, fill="black")
    return np.ascontiguousarray(np.asarray(page)[:, :, ::-1])


def pages() -> list[tuple[str, np.ndarray, str]]:
    out = []
    for size in (20, 32, 48):
        text = lines_of(6, size)
        out.append((f"6 lines, {size} px", render(text, size), "\n".join(text)))
    text = lines_of(30, 7, words=9)
    out.append(("30 lines, 18 px (dense)", render(text, 18, spacing=1.35), "\n".join(text)))
    return out


def cer(truth: str, read: str) -> float:
    """Levenshtein distance / len(truth)."""
    prev = list(range(len(read) + 1))
    for i, a in enumerate(truth, 1):
        cur = [i]
        for j, b in enumerate(read, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return prev[-1] / max(len(truth), 1)


def im_reader(det_options: dict | None = None):
    from im_core.testing import local_context
    from im_models.ocr._detection import DBTextDetector
    from im_models.ocr._recognition import CTCTextRecognizer
    from im_pipelines import OCRPipeline

    ctx = local_context(DET, architecture="pp-ocr-det", task="text-detection", options=det_options or None)
    det = DBTextDetector.from_package(ctx)
    rec = CTCTextRecognizer.from_package(local_context(REC, architecture="pp-ocr-rec", task="text-recognition"))
    pipeline = OCRPipeline.from_models([det, rec])
    return lambda image: pipeline(image).text


def rapid_reader():
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return None
    engine = RapidOCR(det_model_path=str(DET), rec_model_path=str(REC), use_cls=False)

    def read(image: np.ndarray) -> str:
        result, _ = engine(image, use_cls=False)
        return "\n".join(r[1] for r in result or [])

    return read


def timed(read, image: np.ndarray, repeats: int) -> tuple[str, float]:
    text = read(image)  # warm-up
    if repeats < 1:
        return text, float("nan")
    start = time.perf_counter()
    for _ in range(repeats):
        read(image)
    return text, (time.perf_counter() - start) / repeats * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--im-det-norm",
        choices=("default", "imagenet", "half"),
        default="default",
        help="im detector normalisation: its default, ImageNet mean/std (PaddleOCR) or 0.5/0.5 (RapidOCR's config)",
    )
    args = parser.parse_args(argv)
    norm = {
        "default": {},
        "imagenet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
        "half": {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    }[args.im_det_norm]
    readers = {"im": im_reader(norm), "rapidocr": rapid_reader()}
    if readers["rapidocr"] is None:
        print("rapidocr-onnxruntime is not installed: im only (uv run --with rapidocr-onnxruntime==1.4.4 ...)")
    print(
        f"{'page':<26} {'size':>10}  "
        + "  ".join(f"{n + ' CER':>12} {'no-space':>9} {n + ' ms':>10}" for n in readers if readers[n])
    )
    for name, image, truth in pages():
        row = f"{name:<26} {image.shape[1]:>5}x{image.shape[0]:<4}  "
        for read in readers.values():
            if read is None:
                continue
            text, ms = timed(read, image, args.repeats)
            bare = cer(truth.replace(" ", ""), text.replace(" ", ""))
            row += f"{100 * cer(truth, text):>11.1f}% {100 * bare:>8.1f}% {ms:>10.0f}  "
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
