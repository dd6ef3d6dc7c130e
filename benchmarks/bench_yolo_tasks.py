"""End-to-end ``model(image)`` vs the raw ``InferenceSession.run`` for one segmentation, one pose and one oriented-box
model (issue 15), in the form of ``bench_yolo.py``.

Models: Ultralytics exports loaded bare (``AutoModel.from_pretrained(file)``, sniffed metadata). By default the
parity fixtures under ``tests/im_models/fixtures/ultralytics`` (tiny random-init networks at 128 px: the network is
almost free there, so the ratio shows im's own cost at its most visible); ``--models a.onnx b.onnx ...`` measures
other exports, e.g. full-width ``yolov8n-seg`` / ``-pose`` / ``-obb`` built from the Ultralytics yaml at 640 px (see
``scripts/ultralytics_reference.py`` for the environment). Image: the astronaut photograph resized to 1280×720 (BGR).

    uv run python benchmarks/bench_yolo_tasks.py [--models ...] [--threads N] [--rounds 20] [--calls 4]
        [--confidence 0.25]

Both sides use the same ORT session (``--threads`` intra-op threads). "raw" is ``InferenceSession.run`` on the
tensor ``pre_process`` made; "e2e" is ``model(image)``: conversion, pre-processing, the run, decoding, NMS (rotated
for OBB), masks / keypoints and the result. Each round times ``calls`` adjacent pairs, the order alternating per
round; reported: medians per call, the median of per-round ratios with its IQR, the ratio of medians, and the
median ``post_process`` time of a staged call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "im_models" / "fixtures" / "ultralytics"
DEFAULT = [FIXTURES / n for n in ("yolov8-seg.onnx", "yolov8-pose.onnx", "yolov8-obb.onnx")]
IMAGE = REPO / ".cache" / "test-assets" / "images" / "astronaut.png"


def bench(path: Path, image: Any, threads: int, rounds: int, calls: int, confidence: float) -> None:
    from im_core import AutoModel, to_images

    options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
    model = AutoModel.from_pretrained(path, session_options=options)
    prepared = model.pre_process(to_images(image))
    session = model.package.session._session  # the InferenceSession the model runs
    name = model.package.input_name
    tensor = prepared.tensor

    def raw() -> Any:
        return session.run(None, {name: tensor})

    def e2e() -> Any:
        return model(image, confidence=confidence)

    for _ in range(5):
        e2e()
        raw()
    e2e_t: list[float] = []
    raw_t: list[float] = []
    ratios: list[float] = []
    post: list[float] = []
    clock = time.perf_counter
    for r in range(rounds):
        e_sum = r_sum = 0.0
        for _ in range(calls):
            first, second = (e2e, raw) if r % 2 == 0 else (raw, e2e)
            t0 = clock()
            first()
            t1 = clock()
            second()
            t2 = clock()
            e, w = (t1 - t0, t2 - t1) if r % 2 == 0 else (t2 - t1, t1 - t0)
            e2e_t.append(e)
            raw_t.append(w)
            e_sum += e
            r_sum += w
        ratios.append(e_sum / r_sum)
        out = model.forward(prepared)
        t0 = clock()
        model.post_process(out, prepared, confidence=confidence)
        post.append(clock() - t0)
    ms = 1e3
    m_e2e, m_raw = statistics.median(e2e_t) * ms, statistics.median(raw_t) * ms
    q = statistics.quantiles(ratios, n=4, method="inclusive")
    found = e2e()
    print(f"{path.name}: {type(model).__name__}, input {tuple(tensor.shape)}, {len(found)} detections")
    print(f"  raw InferenceSession.run  median {m_raw:8.3f} ms")
    print(f"  model(image) e2e          median {m_e2e:8.3f} ms")
    print(f"  post_process              median {statistics.median(post) * ms:8.3f} ms")
    print(
        f"  ratio e2e / raw: median of per-round ratios {statistics.median(ratios):.3f} (IQR {q[0]:.3f} .. "
        f"{q[2]:.3f}); ratio of medians {m_e2e / m_raw:.3f}"
    )


def main() -> None:
    import cv2

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--threads", type=int, default=cpus)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--calls", type=int, default=4)
    ap.add_argument(
        "--confidence", type=float, default=0.25, help="random-init models find many boxes: raise it for fewer"
    )
    args = ap.parse_args()
    image = cv2.resize(cv2.imread(str(IMAGE)), (1280, 720))
    print(
        f"image 1280x720 BGR uint8, ORT {args.threads} intra-op thread(s) of {cpus} CPUs, {args.rounds} rounds x "
        f"{args.calls} pairs (order alternating per round)"
    )
    for path in args.models:
        bench(path, image, args.threads, args.rounds, args.calls, args.confidence)


if __name__ == "__main__":
    main()
