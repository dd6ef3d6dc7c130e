"""NMS and detection post-processing on 8 400 high-scoring candidates (perf-baselines.md §5 synthetic cases).

Cases (each an Ultralytics-layout raw output (1, 4 + C, 8400) in 640×640 pixels, every candidate scoring 0.5–0.99):
  random80  random boxes, random class of 80
  oneclass  the same boxes, all class 0 (80-class layout) — one big NMS problem
  clusters  50 objects × 168 jittered boxes, random class of 80
  1class    the random boxes in a single-class layout (1, 5, 8400)

Two timings per case, medians over interleaved rounds: ``nms`` alone (boxes/scores/classes ready) and the full
post-processing from the raw tensor (``decode_anchor_free``: threshold, argmax, xywh→xyxy, NMS, max_det 300).

    .venv/bin/python benchmarks/bench_nms.py [--rounds 15] [--check]

``--check`` also verifies each kept set against the one-box-at-a-time reference greedy NMS.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from im_models.common import nms, resolve_detection_params, xywh_to_xyxy
from im_models.yolo._decode import decode_anchor_free


def fake_pred(case: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = 8400
    if case == "clusters":
        centres = rng.uniform(60, 580, (50, 2))
        sizes = rng.uniform(30, 120, (50, 2))
        idx = np.repeat(np.arange(50), 168)
        cxcy = centres[idx] + rng.normal(0, 3, (n, 2))
        wh = sizes[idx] * rng.uniform(0.9, 1.1, (n, 2))
        cls = rng.integers(0, 80, 50)[idx]
    else:
        cxcy = rng.uniform(0, 640, (n, 2))
        wh = rng.uniform(10, 200, (n, 2))
        cls = rng.integers(0, 80, n) if case == "random80" else np.zeros(n, np.int64)
    c = 1 if case == "1class" else 80
    pred = np.zeros((1, 4 + c, n), np.float32)
    pred[0, 0:2] = cxcy.T
    pred[0, 2:4] = wh.T
    pred[0, 4 + (0 if c == 1 else cls), np.arange(n)] = rng.uniform(0.5, 0.99, n)
    pred[0, 4:] += rng.uniform(0, 0.01, (c, n)).astype(np.float32)  # background noise in the other classes
    return pred


def timeit(fn, rounds: int, calls: int = 10) -> list[float]:
    out = []
    for _ in range(rounds):
        fn()
        for _ in range(calls):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    print(f"{'case':<10} {'classes':>7} {'kept':>5} {'nms ms':>8} {'(min)':>7} {'full post ms':>13} {'(min)':>7}")
    for case in ("random80", "oneclass", "clusters", "1class"):
        pred = fake_pred(case)
        c = pred.shape[1] - 4
        names = [str(i) for i in range(c)]
        params = resolve_detection_params({"confidence": 0.25, "iou_threshold": 0.7, "max_detections": 300}, names, c)
        p = pred[0]
        boxes = xywh_to_xyxy(p[:4].T)
        scores = p[4:].max(axis=0)
        cls = p[4:].argmax(axis=0)
        times_nms: list[float] = []
        times_full: list[float] = []
        for _ in range(args.rounds):  # interleave the two measurements
            times_nms += timeit(lambda b=boxes, s=scores, k=cls: nms(b, s, 0.7, class_ids=k, max_detections=300), 1)
            times_full += timeit(lambda x=p, n=c, q=params: decode_anchor_free(x, n, q), 1)
        kept = nms(boxes, scores, 0.7, class_ids=cls, max_detections=300)
        print(
            f"{case:<10} {c:>7} {len(kept):>5} {statistics.median(times_nms):>8.2f} {min(times_nms):>7.2f} "
            f"{statistics.median(times_full):>13.2f} {min(times_full):>7.2f}"
        )
        if args.check:
            import sys
            from pathlib import Path

            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "im_models"))
            from test_nms import reference_nms

            assert kept.tolist() == reference_nms(boxes, scores, 0.7, class_ids=cls, max_det=300), case
    if args.check:
        print("kept sets identical to the reference greedy NMS")


if __name__ == "__main__":
    main()
