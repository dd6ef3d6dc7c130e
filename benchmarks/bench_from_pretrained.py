"""What `AutoModel.from_pretrained` of a cached model adds over the backend's own session creation.

Publishes the pinned YOLOv8n-format ONNX file into a local registry and loads it once into a temporary IM_HOME
(copies it into the cache and stores the onnxruntime max-opset probe), then measures two things:

  warm (one process, after one load of each kind):
    raw  = onnxruntime.InferenceSession(cached path, CPU)
    auto = AutoModel.from_pretrained(id, weights_provider="local")
    Plugin discovery, the backend probe and the imports of im_models/the family are already paid; what is left
    is metadata resolution, negotiation, the family's package parsing and the session creation itself.
  cold (a fresh interpreter per sample; `import onnxruntime` — and for auto `import im_core` — done before timing):
    raw  = the first InferenceSession of the process (ORT's one-time kernel/allocator setup included);
    auto = the first from_pretrained of the process: plugin discovery (entry points), the backend probe (max opset
           read from IM_HOME/probes/), the imports of the cache, providers, backend and family modules, metadata,
           negotiation and the session.
    Also shown: `import im_core` + from_pretrained together, for a process that has not imported im_core yet.
  Children run with bytecode writing on and one discarded warm-up pair, so .pyc files exist (as in an installed
  wheel) and the OS file cache is warm.

Order alternates per round (raw first on even rounds, auto first on odd ones). Reported: medians, min, the median
of the per-round differences and its IQR. Target (DESIGN.md §9): auto - raw <= 20 ms.

Run: uv run python benchmarks/bench_from_pretrained.py [--rounds 15] [--cold-rounds 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSET = REPO / ".cache" / "test-assets" / "yolo" / "nudenet_320n.onnx"
MODEL_ID = "bench/yolo"

CHILD_RAW = """
import sys, time
import onnxruntime as ort
t = time.perf_counter()
ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
print(f"RESULT {(time.perf_counter() - t) * 1e3:.4f}")
"""

CHILD_AUTO = """
import sys, time
import onnxruntime  # noqa: F401  (paid by any ONNX user; not part of the comparison)
t0 = time.perf_counter()
from im_core import AutoModel
t1 = time.perf_counter()
AutoModel.from_pretrained(sys.argv[2], weights_provider="local", provider_options={"root": sys.argv[3]})
t2 = time.perf_counter()
print(f"RESULT {(t2 - t1) * 1e3:.4f} {(t2 - t0) * 1e3:.4f}")
"""


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def _child(code: str, args: list[str], env: dict[str, str]) -> list[float]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False, cwd=REPO
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"benchmark child failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return [float(v) for v in lines[-1].split()[1:]]


def _setup(work: Path) -> tuple[Path, dict[str, object]]:
    from im_providers import add_to_registry

    registry = work / "registry"
    weights = work / "weights.onnx"
    shutil.copy(ASSET, weights)
    add_to_registry(
        registry,
        model_id=MODEL_ID,
        architecture="yolov8",
        task="object-detection",
        files=[weights],
        package_id="onnx",
        class_names=[str(i) for i in range(18)],
        input_size=(320, 320),
    )
    return registry, {"weights_provider": "local", "provider_options": {"root": str(registry)}}


def _report(label: str, raw: list[float], auto: list[float], what: str) -> None:
    diffs = [a - r for r, a in zip(raw, auto, strict=True)]
    q1, q3 = _quartiles(diffs)
    r, a = statistics.median(raw), statistics.median(auto)
    print(f"{label}: {what}")
    print(f"  raw onnxruntime session:        median {r:6.1f} ms (min {min(raw):6.1f})")
    print(f"  AutoModel.from_pretrained:      median {a:6.1f} ms (min {min(auto):6.1f})")
    print(
        f"  overhead: {a - r:+.1f} ms difference of medians; per-round median {statistics.median(diffs):+.1f} ms "
        f"(IQR {q1:+.1f} .. {q3:+.1f}), {len(raw)} rounds; target <= 20 ms"
    )


def warm(kwargs: dict[str, object], cached: Path, rounds: int) -> None:
    import onnxruntime as ort

    from im_core import AutoModel

    ort.InferenceSession(str(cached), providers=["CPUExecutionProvider"])  # first raw session of this process
    raw, auto = [], []
    for i in range(rounds):
        order = ("raw", "auto") if i % 2 == 0 else ("auto", "raw")
        for kind in order:
            t = time.perf_counter()
            if kind == "raw":
                ort.InferenceSession(str(cached), providers=["CPUExecutionProvider"])
                raw.append((time.perf_counter() - t) * 1e3)
            else:
                AutoModel.from_pretrained(MODEL_ID, **kwargs)
                auto.append((time.perf_counter() - t) * 1e3)
    _report("warm", raw, auto, "same process, plugins/probe/imports already paid")


def cold(home: Path, registry: Path, cached: Path, rounds: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["IM_HOME"] = str(home)
    raw_args = [str(cached)]
    auto_args = [str(cached), MODEL_ID, str(registry)]
    _child(CHILD_RAW, raw_args, env)  # warm-up pair: writes .pyc files, warms the OS file cache
    _child(CHILD_AUTO, auto_args, env)
    raw, auto, with_import = [], [], []
    for i in range(rounds):
        order = ("raw", "auto") if i % 2 == 0 else ("auto", "raw")
        for kind in order:
            if kind == "raw":
                raw.append(_child(CHILD_RAW, raw_args, env)[0])
            else:
                first, total = _child(CHILD_AUTO, auto_args, env)
                auto.append(first)
                with_import.append(total)
    _report("cold", raw, auto, "fresh interpreter per sample, first call of the process, onnxruntime imported")
    print(
        f"  import im_core + from_pretrained: median {statistics.median(with_import):6.1f} ms "
        f"(min {min(with_import):6.1f}); vs raw {statistics.median(with_import) - statistics.median(raw):+.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="warm rounds (one raw + one auto each)")
    parser.add_argument("--cold-rounds", type=int, default=10, help="cold rounds (two fresh interpreters each)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="im-bench-"))
    home = work / "home"
    os.environ["IM_HOME"] = str(home)
    try:
        registry, kwargs = _setup(work)
        from im_core import AutoModel

        AutoModel.from_pretrained(MODEL_ID, **kwargs)  # first load: copies into the cache, stores the opset probe
        cached = next((home / "packages").rglob("weights.onnx"))
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; model {ASSET.name}")
        warm(kwargs, cached, args.rounds)
        cold(home, registry, cached, args.cold_rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
