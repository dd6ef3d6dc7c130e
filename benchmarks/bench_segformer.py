"""SegFormer on the CPU: im vs the transformers pipeline on the same tiny random model and the same photo.

The model is built here with transformers' config classes (random weights, fixed seed; see
``tests/testlib/hf_models.py``), saved as a Hugging Face folder and exported to ONNX with ``im export``. Timed, per
round, interleaved and alternating which goes first (medians over rounds):

  * ``reference``: ``AutoImageProcessor`` + ``AutoModelForSemanticSegmentation`` +
    ``post_process_semantic_segmentation`` at the image size (what a transformers user runs);
  * ``im (transformers backend)``: ``AutoModel.from_pretrained(folder)(image)``: the same torch network, im's pre- and
    post-processing (which also gives the per-pixel softmax confidence the reference does not compute);
  * ``im (onnx)``: the exported package through ONNX Runtime.

    .venv/bin/python benchmarks/bench_segformer.py [--rounds 30] [--image images/astronaut.png] [--size 64]
        [--threads 1]

Every runner gets the same number of intra-op threads (``--threads``, default 1: on a shared, oversubscribed
machine torch's spinning worker threads make a tiny network's latency swing by 10-50x from call to call).
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
    parser.add_argument("--size", type=int, default=64, help="the processor's network size (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of torch and ONNX Runtime")
    args = parser.parse_args()

    import torch
    import transformers
    from PIL import Image as PILImage
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    from im_backend_transformers import export_folder
    from im_core import AutoModel
    from testlib.hf_models import tiny_segformer

    torch.set_num_threads(args.threads)
    rgb = np.asarray(PILImage.open(REPO / ".cache" / "test-assets" / args.image).convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_segformer(Path(tmp) / "segformer", size=args.size)
        onnx_dir = export_folder(folder, Path(tmp) / "onnx")
        processor = AutoImageProcessor.from_pretrained(str(folder))
        network = AutoModelForSemanticSegmentation.from_pretrained(str(folder)).eval()

        def reference() -> np.ndarray:
            inputs = processor(images=rgb, return_tensors="pt")
            with torch.inference_mode():
                out = network(**inputs)
            return processor.post_process_semantic_segmentation(out, target_sizes=[rgb.shape[:2]])[0]

        im_torch = AutoModel.from_pretrained(folder, session_options={"num_threads": args.threads})
        im_onnx = AutoModel.from_pretrained(onnx_dir, session_options={"intra_op_num_threads": args.threads})
        runs: dict[str, Callable[[], object]] = {
            "reference (transformers)": reference,
            "im (transformers backend)": lambda: im_torch(rgb, color_format="rgb"),
            "im (onnx, exported)": lambda: im_onnx(rgb, color_format="rgb"),
        }
        want = np.asarray(reference())
        for name in list(runs)[1:]:
            got = runs[name]().class_map  # type: ignore[attr-defined]
            ious = [((got == c) & (want == c)).sum() / ((got == c) | (want == c)).sum() for c in np.unique(want)]
            print(
                f"{name}: {(got == want).mean() * 100:.4f} % of pixels agree with the reference, "
                f"min class IoU {min(ious):.4f} over {len(ious)} classes present"
            )
        for fn in runs.values():  # warm-up
            fn()
        times: dict[str, list[float]] = {k: [] for k in runs}
        names = list(runs)
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                times[name].append(_timed(runs[name]))
    h, w = rgb.shape[:2]
    print(
        f"\ntransformers {transformers.__version__}, torch {torch.__version__}, image {w}x{h}, "
        f"network {args.size}x{args.size}, {args.threads} thread(s), {args.rounds} rounds"
    )
    base = statistics.median(times["reference (transformers)"])
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:28s} median {med:8.2f} ms   ({med / base:.2f}x the reference)")


if __name__ == "__main__":
    main()
