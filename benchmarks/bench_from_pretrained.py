"""What `AutoModel.from_pretrained` of a cached model adds over the backend's own session creation.

Publishes the pinned YOLOv8n-format ONNX file into a local registry, loads it once (downloads into a temporary
IM_HOME), then times, interleaved in the same process:
  * raw:  onnxruntime.InferenceSession(path) — what any ONNX user pays;
  * auto: AutoModel.from_pretrained(id, weights_provider="local") of the cached model.
Target (DESIGN.md §9): median(auto) - median(raw) <= 20 ms.

Run: uv run python benchmarks/bench_from_pretrained.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSET = REPO / ".cache" / "test-assets" / "yolo" / "nudenet_320n.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="im-bench-"))
    os.environ["IM_HOME"] = str(work / "home")
    import shutil

    import onnxruntime as ort

    from im_core import AutoModel
    from im_providers import add_to_registry

    registry = work / "registry"
    weights = work / "weights.onnx"
    shutil.copy(ASSET, weights)
    add_to_registry(
        registry,
        model_id="bench/yolo",
        architecture="yolov8",
        task="object-detection",
        files=[weights],
        package_id="onnx",
        class_names=[str(i) for i in range(18)],
        input_size=(320, 320),
    )
    kwargs = {"weights_provider": "local", "provider_options": {"root": str(registry)}}
    AutoModel.from_pretrained("bench/yolo", **kwargs)  # first load: copies into the cache
    cached = next((work / "home" / "packages").rglob("weights.onnx"))
    raw, auto = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        ort.InferenceSession(str(cached), providers=["CPUExecutionProvider"])
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        AutoModel.from_pretrained("bench/yolo", **kwargs)
        auto.append(time.perf_counter() - t)
    r, a = statistics.median(raw) * 1e3, statistics.median(auto) * 1e3
    print(f"onnxruntime session creation: median {r:.1f} ms (min {min(raw) * 1e3:.1f})")
    print(f"AutoModel.from_pretrained (cached): median {a:.1f} ms (min {min(auto) * 1e3:.1f})")
    print(f"overhead: {a - r:+.1f} ms (target <= 20 ms), {args.rounds} interleaved rounds")


if __name__ == "__main__":
    main()
