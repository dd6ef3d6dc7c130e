"""SAM on the CPU: one prompt on a cached image embedding vs a full call, im vs the ``transformers`` reference.

The model is the tiny randomly initialised ``SamModel`` of the tests (``tests/testlib/hf_models.py:tiny_sam``:
2-layer 32-wide ViT, patch 16, ``--image-size`` input), saved as a Hugging Face folder and, with ``--onnx``,
exported by ``im export`` to ONNX. The image is the pinned astronaut photograph (512×512 BGR), the prompt one
foreground point. Per round, in the same process and interleaved (medians over the rounds):

* ``im cached``: ``sam.segment(embedding, points=...)`` on the embedding of ``sam.embed(image)`` (decoder + post);
* ``im cached (image)``: ``sam.segment(image, points=...)``: the cache finds the embedding by the image's content
  hash (what an interactive caller that passes the image each time gets);
* ``im full``: ``segment`` with the cache disabled (``embedding_cache_size=0``): pre-process + encoder + decoder;
* ``ref full``: ``SamProcessor(images, input_points)`` + ``SamModel(**inputs)`` + ``post_process_masks``;
* ``ref cached``: ``SamProcessor(images, input_points)`` + ``SamModel(image_embeddings=..., ...)`` +
  ``post_process_masks`` (transformers' own way of re-prompting an image: the processor still resizes the image).

    .venv/bin/python benchmarks/bench_sam.py [--rounds 30] [--image-size 128] [--onnx] [--threads N]

With ``--threads``, torch's thread count is set after loading too (im's torch backend applies its own policy).
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

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / ".cache" / "test-assets" / "images" / "astronaut.png"


def _median_ms(fn: Callable[[], Any], times: list[float]) -> None:
    start = time.perf_counter()
    fn()
    times.append((time.perf_counter() - start) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--onnx", action="store_true", help="also run the exported ONNX package")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (process-wide)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import cv2
    import torch
    import transformers
    from transformers import SamModel, SamProcessor

    from im_backend_transformers import export_folder
    from im_core import AutoModel

    sys.path.insert(0, str(REPO / "tests"))
    from testlib.hf_models import tiny_sam

    if args.threads:
        torch.set_num_threads(args.threads)
    bgr = cv2.imread(str(IMAGE))
    rgb = bgr[:, :, ::-1].copy()
    h, w = bgr.shape[:2]
    point = [[w * 0.4, h * 0.5]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_sam(Path(tmp) / "tiny-sam", image_size=args.image_size)
        ref_model = SamModel.from_pretrained(str(folder)).eval()
        processor = SamProcessor.from_pretrained(str(folder))
        variants = {"transformers": folder}
        if args.onnx:
            variants["onnx"] = export_folder(folder, Path(tmp) / "onnx")
        models = {
            name: (AutoModel.from_pretrained(path), AutoModel.from_pretrained(path, embedding_cache_size=0))
            for name, path in variants.items()
        }

        def ref_full() -> Any:
            inputs = processor(images=rgb, input_points=[[point]], return_tensors="pt")
            with torch.no_grad():
                out = ref_model(**inputs)
            return processor.post_process_masks(
                out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
            )

        with torch.no_grad():
            ref_embedding = ref_model.get_image_embeddings(processor(images=rgb, return_tensors="pt")["pixel_values"])

        def ref_cached() -> Any:
            inputs = processor(images=rgb, input_points=[[point]], return_tensors="pt")
            inputs.pop("pixel_values")
            with torch.no_grad():
                out = ref_model(image_embeddings=ref_embedding, **inputs)
            return processor.post_process_masks(
                out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
            )

        runs: dict[str, Callable[[], Any]] = {"ref full": ref_full, "ref cached": ref_cached}
        for name, (cached, uncached) in models.items():
            embedding = cached.embed(bgr)
            runs[f"im cached [{name}]"] = lambda m=cached, e=embedding: m.segment(e, points=point)
            runs[f"im cached (image) [{name}]"] = lambda m=cached: m.segment(bgr, points=point)
            runs[f"im full [{name}]"] = lambda m=uncached: m.segment(bgr, points=point)
        if args.threads:
            torch.set_num_threads(args.threads)  # after loading: the backend sets its thread policy when it loads
        times: dict[str, list[float]] = {k: [] for k in runs}
        for fn in runs.values():  # warm-up
            fn()
        for _ in range(args.rounds):
            for key, fn in runs.items():
                _median_ms(fn, times[key])
    ref = statistics.median(times["ref full"])
    print(
        f"SAM tiny (image_size {args.image_size}), astronaut 512x512, one point; "
        f"transformers {transformers.__version__}, torch {torch.__version__}; {args.rounds} rounds, median ms"
    )
    print(f"{'call':34s} {'median ms':>10s} {'vs ref full':>12s}")
    for key, values in times.items():
        med = statistics.median(values)
        print(f"{key:34s} {med:10.2f} {ref / med:11.1f}x")


if __name__ == "__main__":
    main()
