"""End-to-end ``model(image)`` vs the raw ``session.run`` on the prepared tensor, same process, interleaved.

Model: the pinned nudenet 320n detector (a YOLOv8n-layout Ultralytics export with dynamic batch/height/width),
loaded as a bare file (sniffed metadata, no config). Image: the astronaut photograph resized to 1280×720 (BGR
numpy, the common case). Rectangular inference makes the network input 1×3×192×320 at the native 320 size, or
1×3×384×640 with ``--size 640`` (same weights run at 640, like the peers' YOLOv8n 640 numbers).

    .venv/bin/python benchmarks/bench_yolo.py [--size 320|640] [--rounds 12] [--calls 10] [--threads N]

Each round: one untimed call of each, then ``calls`` timed calls of each, alternating e2e and raw; medians over
all rounds. The ratio is median(e2e) / median(raw); on a busy machine the median of the ratios of adjacent
(e2e, raw) pairs is steadier, and is printed too. The pre/post split shows where the difference goes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def load(size: int):
    import onnxruntime as ort

    from im_core.testing import local_context
    from im_models.yolo._detection import YOLODetection
    from im_models.yolo._sniff import sniff_ultralytics

    path = REPO / ".cache" / "test-assets" / "yolo" / "nudenet_320n.onnx"
    meta = dict(ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map)
    s = sniff_ultralytics(meta, path)
    ctx = local_context(
        path,
        architecture=s["architecture"],
        task=s["task"],
        class_names=s["class_names"],
        input_size=(size, size),
        features=s["features"],
    )
    return YOLODetection.from_package(ctx)


def main() -> None:
    import cv2

    from im_core import to_images

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--calls", type=int, default=10)
    args = ap.parse_args()
    model = load(args.size)
    image = cv2.resize(cv2.imread(str(REPO / ".cache" / "test-assets" / "images" / "astronaut.png")), (1280, 720))
    prepared = model.pre_process(to_images(image))
    feeds = {model.package.input_name: prepared.tensor}
    session = model.package.session
    e2e: list[float] = []
    raw: list[float] = []
    pre: list[float] = []
    post: list[float] = []
    outputs = session.run(feeds)
    raw_out = [outputs[o.name] for o in session.outputs]
    for _ in range(5):
        model(image)
        session.run(feeds)
    for _ in range(args.rounds):
        model(image)
        session.run(feeds)
        for _ in range(args.calls):
            t = time.perf_counter()
            model(image)
            e2e.append(time.perf_counter() - t)
            t = time.perf_counter()
            session.run(feeds)
            raw.append(time.perf_counter() - t)
        for _ in range(args.calls):
            t = time.perf_counter()
            model.pre_process(to_images(image))
            pre.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.post_process(raw_out, prepared)
            post.append(time.perf_counter() - t)
    m_e2e, m_raw = statistics.median(e2e) * 1e3, statistics.median(raw) * 1e3
    print(f"input tensor {tuple(prepared.tensor.shape)}, image 1280x720, n={len(e2e)} per path")
    print(f"raw session.run      median {m_raw:7.2f} ms  (min {min(raw) * 1e3:.2f})")
    print(f"model(image) e2e     median {m_e2e:7.2f} ms  (min {min(e2e) * 1e3:.2f})")
    print(f"  pre_process        median {statistics.median(pre) * 1e3:7.3f} ms")
    print(f"  post_process       median {statistics.median(post) * 1e3:7.3f} ms")
    paired = statistics.median(a / b for a, b in zip(e2e, raw))
    print(f"ratio e2e / raw      {m_e2e / m_raw:.3f}  (min/min {min(e2e) / min(raw):.3f}, paired {paired:.3f})")
    faces = model(image)
    print(f"detections: {len(faces)} {faces.names} {np.round(faces.xyxy, 1).tolist()}")


if __name__ == "__main__":
    main()
