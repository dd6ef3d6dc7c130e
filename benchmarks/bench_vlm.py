"""End-to-end CPU latency of im's vision-language families vs the reference ``transformers`` pipeline, on the tiny
random models of the tests (``tests/testlib/hf_models.py``: Florence-2, SmolVLM in the Idefics3 layout).

Per family, one real photo (``.cache/test-assets/images/chelsea.png``, 451×300), greedy decoding, ``--tokens`` new
tokens:

- reference: ``processor(...)`` → ``model.generate(**inputs, do_sample=False, max_new_tokens=N)`` →
  ``batch_decode`` (Florence-2: ``post_process_generation`` for ``<OD>``; SmolVLM: its chat template first);
- im: ``AutoModel.from_pretrained(folder)`` then ``model.detect(image)`` / ``model.ask(image, prompt)`` (numpy image
  in, typed result out: the conversion to PIL, the processor, ``GenerativeSession.generate``, decoding and im's
  parser).

Both sides run the same weights in the same process with one torch thread (a shared machine makes more threads
noisy), interleaved (reference first on even rounds, im first on odd ones); reported: the median of each side
(ms), the difference and the ratio of medians, and whether the generated tokens are identical.

Run: ``uv run python benchmarks/bench_vlm.py [--rounds 20] [--tokens 16] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
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
ASSETS = Path(os.environ.get("IM_TEST_ASSETS", REPO / ".cache" / "test-assets"))
sys.path.insert(0, str(REPO / "tests"))


def _interleaved(reference: Callable[[], Any], im: Callable[[], Any], rounds: int) -> tuple[list[float], list[float]]:
    ref_times: list[float] = []
    im_times: list[float] = []
    for _ in range(2):  # warm-up
        reference(), im()
    for r in range(rounds):
        order = ((reference, ref_times), (im, im_times)) if r % 2 == 0 else ((im, im_times), (reference, ref_times))
        for fn, times in order:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return ref_times, im_times


def _row(family: str, ref_times: list[float], im_times: list[float], same: bool) -> dict[str, Any]:
    ref, im = statistics.median(ref_times) * 1e3, statistics.median(im_times) * 1e3
    return {
        "family": family,
        "reference_ms": round(ref, 2),
        "im_ms": round(im, 2),
        "diff_ms": round(im - ref, 2),
        "ratio": round(im / ref, 3),
        "same_tokens": same,
    }


def bench_florence(folder: Path, image: Any, tokens: int, rounds: int) -> dict[str, Any]:
    import torch
    from transformers import AutoProcessor, Florence2ForConditionalGeneration

    from im_core import AutoModel

    model = AutoModel.from_pretrained(folder, session_options={"num_threads": 1})
    processor = AutoProcessor.from_pretrained(str(folder))
    net = Florence2ForConditionalGeneration.from_pretrained(str(folder)).eval()
    pixels = np.asarray(image)

    def reference() -> Any:
        inputs = processor(text="<OD>", images=image, return_tensors="pt")
        with torch.inference_mode():
            out = net.generate(**inputs, do_sample=False, max_new_tokens=tokens)
        text = processor.batch_decode(out, skip_special_tokens=False)[0]
        return out, processor.post_process_generation(text, task="<OD>", image_size=image.size)

    def ours() -> Any:
        return model.detect(pixels, color_format="rgb", max_new_tokens=tokens)

    same = (
        reference()[0][0, 1:].tolist()
        == model.session.generate(model.session.prepare(text="<OD>", images=image), max_new_tokens=tokens)[
            0
        ].ids.tolist()
    )
    return _row("florence-2 <OD>", *_interleaved(reference, ours, rounds), same)


def bench_smolvlm(folder: Path, image: Any, tokens: int, rounds: int) -> dict[str, Any]:
    import torch
    from transformers import AutoProcessor, Idefics3ForConditionalGeneration

    from im_core import AutoModel

    model = AutoModel.from_pretrained(folder, session_options={"num_threads": 1})
    processor = AutoProcessor.from_pretrained(str(folder))
    net = Idefics3ForConditionalGeneration.from_pretrained(str(folder)).eval()
    pixels = np.asarray(image)
    prompt = "What is in this picture?"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]

    def reference() -> Any:
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(text=text, images=[image], return_tensors="pt")
        with torch.inference_mode():
            out = net.generate(**inputs, do_sample=False, max_new_tokens=tokens)
        new = out[:, inputs["input_ids"].shape[1] :]
        return new, processor.batch_decode(new, skip_special_tokens=True)[0]

    def ours() -> Any:
        return model.ask(pixels, prompt, color_format="rgb", max_new_tokens=tokens)

    same = reference()[0][0].tolist() == ours().token_ids.tolist()
    return _row("smolvlm ask", *_interleaved(reference, ours, rounds), same)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch
    import transformers
    from PIL import Image

    from testlib.hf_models import tiny_florence2, tiny_smolvlm

    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(1)
    image = Image.open(ASSETS / "images" / "chelsea.png").convert("RGB")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            bench_florence(tiny_florence2(Path(tmp) / "florence2"), image, args.tokens, args.rounds),
            bench_smolvlm(tiny_smolvlm(Path(tmp) / "smolvlm"), image, args.tokens, args.rounds),
        ]
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, 1 thread, {args.tokens} new tokens")
    print(f"{'family':<18} {'reference ms':>12} {'im ms':>8} {'diff ms':>8} {'ratio':>6}  same tokens")
    for row in rows:
        print(
            f"{row['family']:<18} {row['reference_ms']:>12.2f} {row['im_ms']:>8.2f} {row['diff_ms']:>8.2f} "
            f"{row['ratio']:>6.3f}  {row['same_tokens']}"
        )
    if args.json:
        args.json.write_text(json.dumps({"transformers": transformers.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
