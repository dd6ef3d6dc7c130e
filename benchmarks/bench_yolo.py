"""End-to-end ``model(image)`` vs the raw ``InferenceSession.run`` on the prepared tensor (DESIGN.md §9: <= 1.05x).

Model: the pinned nudenet 320n detector (a YOLOv8n-layout Ultralytics export, 18 classes, dynamic batch/height/width),
loaded as a bare file (sniffed metadata, no config). Image: the astronaut photograph resized to 1280×720 (BGR numpy,
the common case). Rectangular inference makes the network input 1×3×384×640 at ``--size 640`` (the peers' YOLOv8n
640 setting, the default) or 1×3×192×320 with ``--size 320`` (the model's native size).

    uv run python benchmarks/bench_yolo.py [--size 640|320] [--threads N] [--rounds 30] [--calls 4] [--classes 80]
        [--no-spin]

Both sides use the same ORT session, pinned to ``--threads`` intra-op threads (default: the CPUs this process may
use). "raw" is ``InferenceSession.run(None, {input: tensor})`` on the tensor ``pre_process`` made, i.e. the network
alone with no im code; "e2e" is ``model(image)``: input conversion, pre-processing, im's Session wrapper, the run,
decoding, NMS and the result object.

Each round times ``calls`` adjacent (e2e, raw) pairs, e2e first on even rounds and raw first on odd ones, so drift
and the order effect hit both sides alike. Reported: the median per-call time of each side, the median of the
per-round ratios (sum e2e / sum raw within the round) with its IQR, and the plain ratio of medians.

Breakdown: each round also runs one "staged" e2e by hand, timing its stages: ``to_images`` (input conversion),
``pre_process`` (resize/letterbox/normalise into a new tensor), ``forward`` (im Session wrapper + the run, right
after pre-processing, so with whatever the pre-processing left in the CPU caches), ``post_process`` (decode + NMS +
mapping boxes back). "forward - raw" is then the wrapper cost plus the cache effect of pre-processing, and
"e2e - stages" the call overhead of ``model()`` itself.

``--no-spin``: by default ORT's intra-op worker threads keep spinning for a while after each run, so with
``--threads`` equal to the CPU count they hold the other cores while ``model()`` pre- and post-processes, and
OpenCV's threads (resize, the float conversion) get no second core. With ``--no-spin`` (``allow_spinning=False``,
the same session for both sides) they sleep instead; the run itself may then be slower.

``--batch 8``: batch mode at **default settings** (issue 13): the model is ``AutoModel.from_pretrained(file)`` with
no options (im's own thread choices) and ``model([8 images])`` (8 different 1280×720 photographs: astronaut,
chelsea, camera and mirrored/flipped versions) is timed against the raw floor, a separate
``onnxruntime.InferenceSession`` with ORT's default options running the 8×3×H×W tensor im prepared (what a user
gets from ORT alone). Alternating order per round; reported per image. ``--cv2-threads K`` sets
``cv2.setNumThreads(K)`` first and ``--session-options '{"allow_spinning": false}'`` passes options to
``from_pretrained``, to compare thread settings.

``--classes 80``: the nudenet graph has an 18-class head, so an 80-class YOLOv8n head's post-processing is measured on
a synthetic (1, 84, N) output of the same anchor count (background scores < 0.1, 60 objects at 0.3–0.95, boxes
clustered so NMS has work) and added to the projection "e2e with an 80-class head".
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / ".cache" / "test-assets" / "yolo" / "nudenet_320n.onnx"
IMAGE = REPO / ".cache" / "test-assets" / "images" / "astronaut.png"


def load(size: int, threads: int, spin: bool = True, square: bool = False) -> Any:
    import onnxruntime as ort

    from im_core.testing import local_context
    from im_models.yolo._detection import YOLODetection
    from im_models.yolo._sniff import sniff_ultralytics

    meta = dict(ort.InferenceSession(str(MODEL)).get_modelmeta().custom_metadata_map)
    s = sniff_ultralytics(meta, MODEL)
    ctx = local_context(
        MODEL,
        architecture=s["architecture"],
        task=s["task"],
        class_names=s["class_names"],
        input_size=(size, size),
        features=s["features"],
        session_options={"intra_op_num_threads": threads, "inter_op_num_threads": 1, "allow_spinning": spin},
    )
    model = YOLODetection.from_package(ctx)
    if square:  # as a static export would: letterbox into the full size x size square, no rectangular inference
        model.package.rect = False
    return model


def quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def synthetic_head(classes: int, anchors: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(1, 4 + classes, anchors) float32 like a YOLOv8 head: low background scores, 60 objects in 12 clusters."""
    rng = np.random.default_rng(seed)
    out = np.empty((1, 4 + classes, anchors), np.float32)
    out[0, 0] = rng.uniform(0, width, anchors)
    out[0, 1] = rng.uniform(0, height, anchors)
    out[0, 2:4] = rng.uniform(8, 160, (2, anchors))
    out[0, 4:] = rng.uniform(0, 0.1, (classes, anchors))
    hits = rng.choice(anchors, 60, replace=False)
    centres = rng.uniform((0, 0), (width, height), (12, 2))
    out[0, 0:2, hits] = (centres[np.arange(60) % 12] + rng.normal(0, 6, (60, 2))).astype(np.float32)
    out[0, 2:4, hits] = rng.uniform(40, 120, (60, 2)).astype(np.float32)
    out[0, 4 + rng.integers(0, classes, 60), hits] = rng.uniform(0.3, 0.95, 60).astype(np.float32)
    return out


def batch_images(n: int) -> list[np.ndarray]:
    """``n`` different 1280×720 BGR photographs (the pinned ones, then mirrored and flipped versions)."""
    import cv2

    folder = IMAGE.parent
    photos = [cv2.imread(str(folder / f"{name}.png"), cv2.IMREAD_COLOR) for name in ("astronaut", "chelsea", "camera")]
    variants = [p for p in photos] + [p[:, ::-1] for p in photos] + [p[::-1] for p in photos]
    return [cv2.resize(np.ascontiguousarray(variants[k % len(variants)]), (1280, 720)) for k in range(n)]


def main_batch(args: argparse.Namespace) -> None:
    """``--batch N``: ``model([N images])`` at default settings vs ORT's own default session on the same tensor."""
    import json

    import cv2
    import onnxruntime as ort

    from im_core import AutoModel, to_images

    if args.cv2_threads is not None:
        cv2.setNumThreads(args.cv2_threads)
    options = json.loads(args.session_options) if args.session_options else None
    model = AutoModel.from_pretrained(MODEL, session_options=options)
    images = batch_images(args.batch)
    tensor = model.pre_process(to_images(images)).tensor
    floor = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])  # ORT's defaults
    name = floor.get_inputs()[0].name

    def raw() -> Any:
        return floor.run(None, {name: tensor})

    for _ in range(3):
        model(images)
        raw()
    e2e_t: list[float] = []
    raw_t: list[float] = []
    clock = time.perf_counter
    for r in range(args.rounds):
        for _ in range(args.calls):
            first, second = (lambda: model(images), raw) if r % 2 == 0 else (raw, lambda: model(images))
            t0 = clock()
            first()
            t1 = clock()
            second()
            t2 = clock()
            e, w = (t1 - t0, t2 - t1) if r % 2 == 0 else (t2 - t1, t1 - t0)
            e2e_t.append(e)
            raw_t.append(w)
    n, ms = args.batch, 1e3
    m_e2e, m_raw = statistics.median(e2e_t) * ms / n, statistics.median(raw_t) * ms / n
    print(
        f"batch {n}: tensor {tuple(tensor.shape)}, cv2 threads {cv2.getNumThreads()}, session_options {options}, "
        f"{args.rounds} rounds x {args.calls} pairs, {os.cpu_count()} CPUs"
    )
    print(f"raw ORT default session   median {m_raw:8.3f} ms/img  ({1e3 / m_raw:.1f} img/s)")
    print(f"model([{n} images])        median {m_e2e:8.3f} ms/img  ({1e3 / m_e2e:.1f} img/s)")
    print(f"ratio e2e / raw floor {m_e2e / m_raw:.3f} (<= 1.0 wanted)")


def main() -> None:
    import cv2

    from im_core import to_images

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=640, help="training size the image is fitted into (640 or 320)")
    ap.add_argument("--threads", type=int, default=cpus, help=f"ORT intra-op threads for both sides (default {cpus})")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=4, help="adjacent (e2e, raw) pairs per round")
    ap.add_argument("--classes", type=int, default=0, help="also measure post-processing of a synthetic C-class head")
    ap.add_argument(
        "--no-spin",
        action="store_true",
        help="ORT worker threads sleep right after a run instead of spinning (allow_spinning=False, both sides)",
    )
    ap.add_argument(
        "--square",
        action="store_true",
        help="letterbox into the full size x size square like a static export (the peers' 640x640 case)",
    )
    ap.add_argument("--batch", type=int, default=0, help="batch mode at default settings (see the module doc)")
    ap.add_argument("--cv2-threads", type=int, default=None, help="batch mode: cv2.setNumThreads(K) first")
    ap.add_argument("--session-options", default=None, help="batch mode: JSON session_options for from_pretrained")
    args = ap.parse_args()
    if args.batch:
        main_batch(args)
        return
    model = load(args.size, args.threads, spin=not args.no_spin, square=args.square)
    image = cv2.resize(cv2.imread(str(IMAGE)), (1280, 720))
    prepared = model.pre_process(to_images(image))
    name = model.package.input_name
    ort_session = model.package.session._session  # the same InferenceSession the model runs
    tensor = prepared.tensor

    def raw() -> Any:
        return ort_session.run(None, {name: tensor})

    raw_out = raw()
    for _ in range(5):  # warm-up: thread pools, allocator arenas, branch predictors
        model(image)
        raw()

    e2e_t: list[float] = []
    raw_t: list[float] = []
    ratios: list[float] = []
    stages: dict[str, list[float]] = {k: [] for k in ("to_images", "pre_process", "forward", "post_process")}
    clock = time.perf_counter
    for r in range(args.rounds):
        e_sum = r_sum = 0.0
        for _ in range(args.calls):
            if r % 2 == 0:
                t0 = clock()
                model(image)
                t1 = clock()
                raw()
                t2 = clock()
                e, w = t1 - t0, t2 - t1
            else:
                t0 = clock()
                raw()
                t1 = clock()
                model(image)
                t2 = clock()
                w, e = t1 - t0, t2 - t1
            e2e_t.append(e)
            raw_t.append(w)
            e_sum += e
            r_sum += w
        ratios.append(e_sum / r_sum)
        t0 = clock()
        images = to_images(image)
        t1 = clock()
        prep = model.pre_process(images)
        t2 = clock()
        out = model.forward(prep)
        t3 = clock()
        model.post_process(out, prep)
        t4 = clock()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[key].append(dt)

    ms = 1e3
    m_e2e, m_raw = statistics.median(e2e_t) * ms, statistics.median(raw_t) * ms
    q1, q3 = quartiles(ratios)
    print(
        f"input tensor {tuple(tensor.shape)} {tensor.dtype}, image 1280x720 BGR uint8, ORT {args.threads} intra-op "
        f"thread(s) of {cpus} CPUs{' (no spinning)' if args.no_spin else ''}, {args.rounds} rounds x {args.calls} "
        "pairs (order alternating per round)"
    )
    print(f"raw InferenceSession.run  median {m_raw:8.3f} ms  (min {min(raw_t) * ms:.3f})")
    print(f"model(image) e2e          median {m_e2e:8.3f} ms  (min {min(e2e_t) * ms:.3f})")
    print(
        f"ratio e2e / raw: median of per-round ratios {statistics.median(ratios):.3f} (IQR {q1:.3f} .. {q3:.3f}); "
        f"ratio of medians {m_e2e / m_raw:.3f}; target <= 1.05"
    )
    med = {k: statistics.median(v) * ms for k, v in stages.items()}
    print("where e2e time goes (medians of the staged calls):")
    print(f"  to_images (input conversion)      {med['to_images']:8.3f} ms")
    print(f"  pre_process (resize+pad+norm)     {med['pre_process']:8.3f} ms")
    print(
        f"  forward (wrapper + run)           {med['forward']:8.3f} ms   forward - raw {med['forward'] - m_raw:+.3f} ms"
    )
    print(f"  post_process (decode+NMS+boxes)   {med['post_process']:8.3f} ms")
    staged = sum(med.values())
    print(f"  e2e - sum of stages (call overhead) {m_e2e - staged:+.3f} ms")
    fixed = med["to_images"] + med["pre_process"] + med["post_process"]
    print(f"  pre+post+conversion = {fixed:.3f} ms = {fixed / m_raw * 100:.1f}% of raw")
    result = model(image)
    print(f"detections: {len(result)} {np.round(result.xyxy, 1).tolist()[:3]}")
    if args.classes:
        anchors = int(raw_out[0].shape[2])
        names = tuple(str(i) for i in range(args.classes))
        wide = type(model)(model.package, replace(model.metadata, class_names=names))
        head = synthetic_head(args.classes, anchors, int(tensor.shape[2]), int(tensor.shape[3]))
        wide.post_process([head], prepared)
        post_c = []
        for _ in range(max(20, args.rounds)):
            t0 = clock()
            found = wide.post_process([head], prepared)
            post_c.append(clock() - t0)
        pc = statistics.median(post_c) * ms
        projected = m_e2e - med["post_process"] + pc
        print(
            f"synthetic {args.classes}-class head (1, {4 + args.classes}, {anchors}): post_process median {pc:.3f} ms "
            f"({len(found[0])} detections); projected e2e with that head {projected:.3f} ms = "
            f"{projected / m_raw:.3f}x raw (a real 80-class graph's run would also be slightly slower)"
        )


if __name__ == "__main__":
    main()
