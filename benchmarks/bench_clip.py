"""CLIP and DINOv2 on the CPU: im vs the ``transformers`` pipeline on the same tiny random-weight models.

Models: the tiny CLIP (2-layer 32-wide towers, 32 px images, 16-token context, a trained byte-level BPE) and the
tiny DINOv2 (2-layer 32-wide ViT, short side 36, crop 32) of ``tests/testlib/hf_models.py``, built in a temporary
folder (random weights, fixed seed). The models are tiny on purpose: the timings show the pre/post-processing and
call overheads of each side, which is what differs (the networks are the same).

Per round, in one process and interleaved, medians over the rounds:
  * ``clip image``: im ``embed_images(bgr)`` (transformers backend, and the exported ONNX package) vs
    ``CLIPProcessor(images=pil)`` + ``get_image_features``;
  * ``clip text``: im ``embed_texts(4 prompts)`` vs ``CLIPProcessor(text=..., padding=True)`` + ``get_text_features``;
  * ``clip zero-shot``: im ``classify(bgr, 5 labels)`` vs ``CLIPModel(**processor(text, images)).logits_per_image``
    softmax;
  * ``dinov2``: im ``embed(bgr)`` (torch, ONNX) vs ``AutoImageProcessor`` + ``Dinov2Model``;
  * ``clip pre-processing only``: im's ``pre_process`` vs the image processor alone (same arrays).
The reference gets a ready PIL RGB image (its conversion from numpy is not timed); im gets the BGR numpy array.
Also prints the parity figures (max |im - reference| of the unit embeddings and of the zero-shot probabilities).

    .venv/bin/python benchmarks/bench_clip.py [--rounds 30] [--threads 1] [--image astronaut]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / ".cache" / "test-assets"
LABELS = ["cat", "person", "rocket", "camera", "page of text"]
TEXTS = ["a photo of a cat", "an astronaut in space", "a man with a camera", "a page of text"]


def _unit(x: Any) -> np.ndarray:
    x = getattr(x, "pooler_output", x)
    x = x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--image", default="astronaut", help="a test image name under .cache/test-assets/images")
    args = parser.parse_args()

    import cv2
    import torch
    import transformers
    from PIL import Image as PILImage

    from im_backend_transformers import export_folder
    from im_core import AutoModel

    sys.path.insert(0, str(REPO / "tests"))
    from testlib.hf_models import tiny_clip, tiny_dinov2

    torch.set_num_threads(args.threads)
    bgr = cv2.imread(str(ASSETS / "images" / f"{args.image}.png"))
    pil = PILImage.fromarray(np.ascontiguousarray(bgr[..., ::-1]))
    work = Path(tempfile.mkdtemp(prefix="bench-clip-"))
    clip_dir, dino_dir = tiny_clip(work / "clip"), tiny_dinov2(work / "dinov2")
    so = {"session_options": {"intra_op_num_threads": args.threads}}
    im_clip = AutoModel.from_pretrained(clip_dir)
    im_clip_onnx = AutoModel.from_pretrained(export_folder(clip_dir, work / "clip-onnx"), **so)
    im_dino = AutoModel.from_pretrained(dino_dir)
    im_dino_onnx = AutoModel.from_pretrained(export_folder(dino_dir, work / "dino-onnx"), **so)
    processor = transformers.AutoProcessor.from_pretrained(str(clip_dir))
    ref_clip = transformers.CLIPModel.from_pretrained(str(clip_dir)).eval()
    dino_processor = transformers.AutoImageProcessor.from_pretrained(str(dino_dir))
    ref_dino = transformers.Dinov2Model.from_pretrained(str(dino_dir)).eval()
    prompts = [f"a photo of a {label}" for label in LABELS]

    def ref_image() -> np.ndarray:
        with torch.inference_mode():
            return _unit(ref_clip.get_image_features(**processor(images=[pil], return_tensors="pt")))

    def ref_text() -> np.ndarray:
        with torch.inference_mode():
            return _unit(ref_clip.get_text_features(**processor(text=TEXTS, return_tensors="pt", padding=True)))

    def ref_zero_shot() -> np.ndarray:
        with torch.inference_mode():
            inputs = processor(text=prompts, images=[pil], return_tensors="pt", padding=True)
            return ref_clip(**inputs).logits_per_image.softmax(dim=1).numpy()

    def ref_dinov2() -> np.ndarray:
        with torch.inference_mode():
            out = ref_dino(**dino_processor(images=[pil], return_tensors="pt"))
            return _unit(out.pooler_output)

    from im_core import Image

    cases: dict[str, list[tuple[str, Callable[[], Any]]]] = {
        "clip pre-processing only": [
            ("im (numpy, Pillow resize)", lambda: im_clip.pre_process([Image(bgr, "bgr")])),
            ("transformers", lambda: processor.image_processor(images=[pil], return_tensors="np")["pixel_values"]),
        ],
        "clip image": [
            ("im (transformers backend)", lambda: im_clip.embed_images(bgr).vectors),
            ("im (exported ONNX)", lambda: im_clip_onnx.embed_images(bgr).vectors),
            ("transformers", ref_image),
        ],
        "clip text (4 prompts)": [
            ("im (transformers backend)", lambda: im_clip.embed_texts(TEXTS).vectors),
            ("im (exported ONNX)", lambda: im_clip_onnx.embed_texts(TEXTS).vectors),
            ("transformers", ref_text),
        ],
        "clip zero-shot (5 labels)": [
            ("im (transformers backend)", lambda: im_clip.classify(bgr, LABELS).confidence[None]),
            ("im (exported ONNX)", lambda: im_clip_onnx.classify(bgr, LABELS).confidence[None]),
            ("transformers", ref_zero_shot),
        ],
        "dinov2 (cls)": [
            ("im (transformers backend)", lambda: im_dino.embed(bgr).vectors),
            ("im (exported ONNX)", lambda: im_dino_onnx.embed(bgr).vectors),
            ("transformers", ref_dinov2),
        ],
    }
    times: dict[tuple[str, str], list[float]] = {}
    parity: dict[tuple[str, str], float] = {}
    for case, runs in cases.items():
        want = runs[-1][1]()
        for name, fn in runs[:-1]:
            parity[(case, name)] = float(np.abs(np.asarray(fn()) - want).max())
    for _ in range(args.rounds):
        for case, runs in cases.items():
            for name, fn in runs:
                start = time.perf_counter()
                fn()
                times.setdefault((case, name), []).append((time.perf_counter() - start) * 1e3)
    print(
        f"transformers {transformers.__version__}, torch {torch.__version__}, {args.threads} thread(s), "
        f"image {args.image} {bgr.shape[1]}x{bgr.shape[0]}, {args.rounds} interleaved rounds, median ms"
    )
    print(f"{'case':28} {'runner':28} {'median ms':>10} {'max |im - ref|':>15}")
    for (case, name), values in times.items():
        diff = parity.get((case, name))
        shown = "" if diff is None else f"{diff:.2e}"
        print(f"{case:28} {name:28} {statistics.median(values):10.2f} {shown:>15}")


if __name__ == "__main__":
    main()
