"""Open-vocabulary detection on the CPU: im vs the ``transformers`` pipeline, on tiny RANDOM-weight models.

Models (no weights can be downloaded here): the tiny OWLv2 and Grounding DINO of ``tests/testlib/hf_models.py``
(fixed seed), saved as Hugging Face folders. Per round, in the same process and interleaved, on one real image
(``chelsea.png``, 451×300) with three text queries:

* ``reference``: ``processor(text=..., images=...)`` → ``model(**inputs)`` → the processor's post-processing;
* ``im folder``: ``AutoModel.from_pretrained(folder)(image, classes=...)`` (the ``transformers`` backend; the query
  embeddings of OWLv2 are cached by text, as in steady use);
* ``im folder, queries re-embedded``: the same with OWLv2's query cache cleared before each call (what the
  reference does every call);
* ``im onnx`` (OWLv2 only): the package ``im export`` writes, run by ONNX Runtime;
* the pre-processing alone: im's ``pre_process`` vs the reference processor's call.

Medians over the rounds, milliseconds. torch runs ``--threads`` intra-op threads (default 1: on a busy shared
machine torch's thread pool makes small ops far slower); ONNX Runtime gets the same count.

    .venv/bin/python benchmarks/bench_owl.py [--rounds 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / ".cache" / "test-assets"
CLASSES = ["a cat", "remote control", "a photo of a dog"]


def _median_ms(fn: Callable[[], Any], times: list[float]) -> None:
    start = time.perf_counter()
    fn()
    times.append((time.perf_counter() - start) * 1000)


def _interleaved(cases: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    for fn in cases.values():  # warm up: first-call costs (lazy imports, allocator) are not what is compared
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            _median_ms(fn, times[name])
    return {name: statistics.median(t) for name, t in times.items()}


def _owl_cases(folder: Path, onnx: Path, image: Any, threads: int) -> dict[str, Callable[[], Any]]:
    import torch
    from transformers import AutoProcessor, Owlv2ForObjectDetection

    from im_core import AutoModel
    from im_core import Image as ImImage

    ref = Owlv2ForObjectDetection.from_pretrained(str(folder)).eval()
    processor = AutoProcessor.from_pretrained(str(folder))
    rgb = np.asarray(image)
    model = AutoModel.from_pretrained(folder, session_options={"num_threads": threads})
    exported = AutoModel.from_pretrained(onnx, session_options={"intra_op_num_threads": threads})

    def reference() -> Any:
        inputs = processor(text=[CLASSES], images=image, return_tensors="pt")
        with torch.inference_mode():
            out = ref(**inputs)
        size = [(image.height, image.width)]
        return processor.post_process_grounded_object_detection(out, 0.1, size, [CLASSES])

    def fresh() -> Any:
        model.query_cache._rows.clear()
        return model(rgb, classes=CLASSES, color_format="rgb")

    return {
        "reference": reference,
        "im folder": lambda: model(rgb, classes=CLASSES, color_format="rgb"),
        "im folder, queries re-embedded": fresh,
        "im onnx": lambda: exported(rgb, classes=CLASSES, color_format="rgb"),
        "pre-processing: reference processor": lambda: processor(text=[CLASSES], images=image, return_tensors="pt"),
        "pre-processing: im": lambda: model.pre_process([ImImage(rgb, "rgb")], classes=CLASSES),
    }


def _gd_cases(folder: Path, image: Any, threads: int) -> dict[str, Callable[[], Any]]:
    import torch
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    from im_core import AutoModel
    from im_core import Image as ImImage

    ref = GroundingDinoForObjectDetection.from_pretrained(str(folder)).eval()
    processor = AutoProcessor.from_pretrained(str(folder))
    rgb = np.asarray(image)
    model = AutoModel.from_pretrained(folder, session_options={"num_threads": threads})

    def reference() -> Any:
        inputs = processor(images=image, text=CLASSES, return_tensors="pt")
        with torch.inference_mode():
            out = ref(**inputs)
        size = [(image.height, image.width)]
        return processor.post_process_grounded_object_detection(out, inputs["input_ids"], 0.25, 0.25, size)

    return {
        "reference": reference,
        "im folder": lambda: model(rgb, classes=CLASSES, color_format="rgb"),
        "pre-processing: reference processor": lambda: processor(images=image, text=CLASSES, return_tensors="pt"),
        "pre-processing: im": lambda: model.pre_process([ImImage(rgb, "rgb")], classes=CLASSES),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sys.path.insert(0, str(REPO / "tests"))
    import torch
    import transformers
    from PIL import Image

    from im_backend_transformers import export_folder
    from testlib.hf_models import tiny_grounding_dino, tiny_owlv2

    torch.set_num_threads(args.threads)
    image = Image.open(ASSETS / "images" / "chelsea.png").convert("RGB")
    with tempfile.TemporaryDirectory() as tmp:
        owl = tiny_owlv2(Path(tmp) / "owlv2")
        onnx = export_folder(owl, Path(tmp) / "owlv2-onnx")
        gd = tiny_grounding_dino(Path(tmp) / "grounding-dino")
        results = {
            "OWLv2 (64×64, 3 queries)": _interleaved(_owl_cases(owl, onnx, image, args.threads), args.rounds),
            "Grounding DINO (96 short side, 3 queries)": _interleaved(_gd_cases(gd, image, args.threads), args.rounds),
        }
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, {args.threads} thread(s), ", end="")
    print(f"{args.rounds} interleaved rounds, medians (ms), image {image.width}×{image.height}")
    for model, cases in results.items():
        print(f"\n{model}")
        for name, ms in cases.items():
            print(f"  {name:<40} {ms:9.2f}")


if __name__ == "__main__":
    main()
