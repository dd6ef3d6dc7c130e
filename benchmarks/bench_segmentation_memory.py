"""Peak memory of instance segmentation with RLE masks: a 4000×3000 image, 300 instances.

The whole family path runs (``YOLOSegmentation``: letterbox pre-processing, decoding, NMS, masks only inside each box,
RLE) on synthetic head outputs: a stand-in session returns (1, 4 + 80 + 32, N) candidates with 300 boxes of random
sizes (60–2 500 original pixels per side; IoU threshold 1.0 so none is suppressed) and random (1, 32, H/4, W/4)
prototypes. Each measurement runs in a fresh subprocess and reports ``ru_maxrss`` (peak resident set) before and after
the call, plus tracemalloc's peak of numpy allocations during the call.

    .venv/bin/python benchmarks/bench_segmentation_memory.py [--format rle|dense] [--instances 300]

A dense (N, H, W) bool result for 300 × 4000 × 3000 would alone be 3.6 GB; ``--format dense`` is refused above
1 GB of mask memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(fmt: str, instances: int) -> dict:
    import tracemalloc

    import numpy as np

    from im_core import TensorSpec
    from im_core._protocols import BatchLimits
    from im_core._tasks import LoadedModelInfo
    from im_models.common import DetectorPackage, ultralytics_config
    from im_models.yolo._segmentation import YOLOSegmentation

    h, w = 3000, 4000
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)
    nh, nw = 480, 640  # rectangular letterbox of 4000×3000 at 640
    n = (nh // 8) * (nw // 8) + (nh // 16) * (nw // 16) + (nh // 32) * (nw // 32)
    rng = np.random.default_rng(1)
    pred = np.zeros((1, 4 + 80 + 32, n), np.float32)
    side = rng.uniform(10, 400, (instances, 2))
    centre = rng.uniform(0, 1, (instances, 2)) * (np.array([nw, nh]) - side) + side / 2
    pred[0, 0:2, :instances] = centre.T
    pred[0, 2:4, :instances] = side.T
    pred[0, 4 + rng.integers(0, 80, instances), np.arange(instances)] = rng.uniform(0.5, 0.99, instances)
    pred[0, 84:, :instances] = rng.normal(0, 1, (32, instances))
    protos = rng.normal(0, 1, (1, 32, nh // 4, nw // 4)).astype(np.float32)

    class StandIn:  # the Session protocol, returning the synthetic head outputs
        backend, device, thread_safety = "synthetic", "cpu", "native"
        metadata: dict[str, str] = {}
        inputs = (TensorSpec("images", (None, 3, None, None), "float32"),)
        outputs = (
            TensorSpec("output0", (None, 116, None), "float32"),
            TensorSpec("output1", (None, 32, None, None), "float32"),
        )
        batch_limits = BatchLimits()

        def run(self, feeds, output_names=None):
            assert feeds["images"].shape == (1, 3, nh, nw), feeds["images"].shape
            return {"output0": pred, "output1": protos}

        def close(self):
            pass

    package = DetectorPackage(
        StandIn(),
        ultralytics_config((640, 640), dynamic=True),
        True,
        [str(i) for i in range(80)],
        {},
        None,
        "ultralytics",
    )
    model = YOLOSegmentation(
        package, LoadedModelInfo("synthetic", "yolov8", "instance-segmentation", tuple(package.class_names))
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t = time.perf_counter()
    det = model(image, mask_format=fmt, iou_threshold=1.0, max_detections=instances, confidence=0.25)
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    b = det.xyxy
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    mask_bytes = sum(m.counts.nbytes for m in det.masks) if fmt == "rle" else det.masks.nbytes
    return {
        "format": fmt,
        "instances": len(det),
        "largest_box_px": float(areas.max()),
        "total_box_px": float(areas.sum()),
        "seconds": elapsed,
        "maxrss_before_mb": before / 1024,
        "maxrss_after_mb": after / 1024,
        "tracemalloc_peak_mb": peak / 2**20,
        "mask_result_mb": mask_bytes / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", default="rle", choices=["rle", "dense"])
    ap.add_argument("--instances", type=int, default=300)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.format, args.instances)))
        return
    if args.format == "dense" and args.instances * 4000 * 3000 > 2**30:
        sys.exit(f"dense masks for {args.instances} instances would need {args.instances * 12 / 1024:.1f} GB; use rle")
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--format", args.format, "--instances", str(args.instances)],
        check=True,
        capture_output=True,
        text=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    for k, v in r.items():
        print(f"{k:>22}: {v:.1f}" if isinstance(v, float) else f"{k:>22}: {v}")
    print(
        f"{'peak RSS added':>22}: {r['maxrss_after_mb'] - r['maxrss_before_mb']:.1f} MB "
        f"(process peak {r['maxrss_after_mb']:.0f} MB; target < 1024 MB)"
    )


if __name__ == "__main__":
    main()
