"""Depth-Anything on the CPU: im vs the transformers pipeline on the same tiny random model and the same photo.

The model is built here with transformers' config classes (random weights, fixed seed; see
``tests/testlib/hf_models.py``), saved as a Hugging Face folder and exported to ONNX with ``im export``. Timed, per
round, interleaved and alternating which goes first (medians over rounds):

  * ``reference``: ``AutoImageProcessor`` + ``AutoModelForDepthEstimation`` + ``post_process_depth_estimation`` at the
    image size (what a transformers user runs);
  * ``im (transformers backend)``: ``AutoModel.from_pretrained(folder)(image)``: the same torch network, im's pre- and
    post-processing;
  * ``im (onnx)``: the exported package through ONNX Runtime.

    .venv/bin/python benchmarks/bench_depth.py [--rounds 30] [--image images/astronaut.png]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--image", default="images/astronaut.png", help="a pinned test image (under test-assets)")
    parser.add_argument("--size", type=int, default=56, help="the processor's network size (default 56)")
    args = parser.parse_args()

    import torch
    import transformers
    from PIL import Image as PILImage
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    from im_backend_transformers import export_folder
    from im_core import AutoModel
    from testlib.hf_models import tiny_depth_anything

    rgb = np.asarray(PILImage.open(REPO / ".cache" / "test-assets" / args.image).convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_depth_anything(Path(tmp) / "depth", size=args.size)
        onnx_dir = export_folder(folder, Path(tmp) / "onnx")
        processor = AutoImageProcessor.from_pretrained(str(folder))
        network = AutoModelForDepthEstimation.from_pretrained(str(folder)).eval()

        def reference() -> np.ndarray:
            inputs = processor(images=rgb, return_tensors="pt")
            with torch.inference_mode():
                out = network(**inputs)
            return processor.post_process_depth_estimation(out, target_sizes=[rgb.shape[:2]])[0]["predicted_depth"]

        im_torch = AutoModel.from_pretrained(folder)
        im_onnx = AutoModel.from_pretrained(onnx_dir)
        runs: dict[str, Callable[[], object]] = {
            "reference (transformers)": reference,
            "im (transformers backend)": lambda: im_torch(rgb, color_format="rgb"),
            "im (onnx, exported)": lambda: im_onnx(rgb, color_format="rgb"),
        }
        want = np.asarray(reference())
        for name in list(runs)[1:]:
            got = runs[name]().depth  # type: ignore[attr-defined]
            error = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))
            print(f"{name}: max relative difference to the reference {error:.2e}")
        for fn in runs.values():  # warm-up
            fn()
        times: dict[str, list[float]] = {k: [] for k in runs}
        names = list(runs)
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                times[name].append(_timed(runs[name]))
    h, w = rgb.shape[:2]
    print(f"\ntransformers {transformers.__version__}, torch {torch.__version__}, image {w}x{h}, {args.rounds} rounds")
    base = statistics.median(times["reference (transformers)"])
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:28s} median {med:8.2f} ms   ({med / base:.2f}x the reference)")


if __name__ == "__main__":
    main()
