"""NMS and detection post-processing on 8 400 high-scoring candidates, plus adversarial NMS inputs.

YOLO-like cases (each an Ultralytics-layout raw output (1, 4 + C, 8400) in 640×640 pixels, every candidate scoring
0.5–0.99; IoU 0.7, max_det 300):
  random80  random boxes, random class of 80
  oneclass  the same boxes, all class 0 (80-class layout) — one big NMS problem
  clusters  50 objects × 168 jittered boxes, random class of 80
  1class    the random boxes in a single-class layout (1, 5, 8400)
Two timings each, medians over interleaved rounds: ``nms`` alone (boxes/scores/classes ready) and the full
post-processing from the raw tensor (``decode_anchor_free``: threshold, argmax, xywh→xyxy, NMS, max_det 300).

Adversarial cases (``nms`` alone, one class, 8 400 candidates unless said):
  dupchain       2 000 copies of one box, then a chain of 4 000 boxes each overlapping the next (IoU 0.5)
  cluster-sdS    50 objects × 168 boxes, centres jittered by S px, one class, at IoU 0.3 / 0.5 / 0.7
  random         random boxes, one class, no max_det, at IoU 0.3 / 0.5 / 0.7 (kept: 1 200 – 6 400)
  random80       random boxes, 80 classes, no max_det

    .venv/bin/python benchmarks/bench_nms.py [--rounds 15] [--check]

``--check`` also verifies each kept list against the one-box-at-a-time reference greedy NMS (tests/im_models).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

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


def adversarial(case: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(boxes, scores, class_ids)`` of one adversarial case (see the module docstring)."""
    rng = np.random.default_rng(1)
    if case == "dupchain":
        x = 1000 + np.arange(4000) * 2.0
        chain = np.stack([x, np.zeros(4000), x + 10, np.full(4000, 10.0)], axis=1)
        boxes = np.concatenate([np.tile([[0.0, 0.0, 100.0, 100.0]], (2000, 1)), chain]).astype(np.float32)
        scores = np.concatenate([np.linspace(1, 0.9, 2000), np.linspace(0.89, 0.5, 4000)]).astype(np.float32)
        return boxes, scores, None
    if case.startswith("cluster"):
        rng = np.random.default_rng(0)
        centres, sizes = rng.uniform(60, 580, (50, 2)), rng.uniform(30, 120, (50, 2))
        idx = np.repeat(np.arange(50), 168)
        cxcy = centres[idx] + rng.normal(0, float(case.removeprefix("cluster-sd")), (8400, 2))
        wh = sizes[idx] * rng.uniform(0.8, 1.2, (8400, 2))
        boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1).astype(np.float32)
        return boxes, rng.uniform(0.5, 0.99, 8400).astype(np.float32), None
    xy = rng.uniform(0, 640, (8400, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 200, (8400, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0.5, 0.99, 8400).astype(np.float32)
    return boxes, scores, (rng.integers(0, 80, 8400) if case == "random80" else None)


ADVERSARIAL = [
    ("dupchain", 0.5, 300),
    ("dupchain", 0.5, None),
    *((f"cluster-sd{sd}", thr, 300) for sd in (3, 15, 40) for thr in (0.3, 0.5, 0.7)),
    *(("random", thr, None) for thr in (0.3, 0.5, 0.7)),
    ("random80", 0.7, None),
]


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
    if args.check:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "im_models"))
        from test_nms import reference_nms, reference_nms_fast
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
            assert kept.tolist() == reference_nms(boxes, scores, 0.7, class_ids=cls, max_det=300), case
    print(f"\n{'adversarial':<14} {'iou':>4} {'max_det':>7} {'kept':>5} {'nms ms':>8} {'(min)':>7}")
    for case, thr, max_det in ADVERSARIAL:
        boxes, scores, cls = adversarial(case)
        times = timeit(
            lambda b=boxes, s=scores, k=cls, t=thr, m=max_det: nms(b, s, t, class_ids=k, max_detections=m), args.rounds
        )
        kept = nms(boxes, scores, thr, class_ids=cls, max_detections=max_det)
        print(
            f"{case:<14} {thr:>4} {max_det or '-':>7} {len(kept):>5} "
            f"{statistics.median(times):>8.2f} {min(times):>7.2f}"
        )
        if args.check:
            assert kept.tolist() == reference_nms_fast(boxes, scores, thr, cls, max_det), (case, thr, max_det)
    if args.check:
        print("kept lists identical to the reference greedy NMS")


if __name__ == "__main__":
    main()
