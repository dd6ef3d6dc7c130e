"""Idle ``im serve`` with one model against a process that only loads the model (issue 13): resident memory and time
to ready.

Each round, in alternating order: (a) ``python -c`` that imports im, loads the pinned nudenet 320n with
``AutoModel.from_pretrained`` and reports its ``VmRSS`` (``/proc/self/status``) and the time from process start to
the model being loaded; (b) ``python -m im_core.cli serve nudenet=<same file> --port P`` on 127.0.0.1: the time from
spawning it to ``/v2/health/ready`` answering 200 (polled every 10 ms: a TCP connect, then one
kept client's GET), then, after 1 s idle, its ``VmRSS`` from
``/proc/PID/status`` and its number of child processes. The model-only time is also measured from the spawn (both
include the interpreter start and the imports).

Run: ``uv run python benchmarks/bench_serve_idle.py [--rounds 3] [--json out.json]``. Targets from the issue: one
process, RSS ≤ model + 150 MB, ready ≤ model load + 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / ".cache" / "test-assets" / "yolo" / "nudenet_320n.onnx"

MODEL_ONLY = """
import sys, time
start = float(sys.argv[2])
from im_core import AutoModel
model = AutoModel.from_pretrained(sys.argv[1])
loaded = time.time() - start
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
print(loaded, rss / 1024)
"""


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def _children(pid: int) -> int:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return len(path.read_text().split()) if path.exists() else 0


def model_only() -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", MODEL_ONLY, str(WEIGHTS), repr(time.time())],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def served() -> tuple[float, float, int]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = f"http://127.0.0.1:{port}/v2/health/ready"
    command = ["-m", "im_core.cli", "serve", f"nudenet={WEIGHTS}", "--port", str(port), "--log-level", "warning"]
    http = httpx.Client(timeout=1)  # made once: a client per poll costs CPU the server needs on a small machine
    start = time.time()
    proc = subprocess.Popen([sys.executable, *command])
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):  # cheap until the port opens
                    pass
                if http.get(url).status_code == 200:
                    break
            except (OSError, httpx.TransportError):
                pass
            if proc.poll() is not None:
                raise RuntimeError("im serve exited")
            time.sleep(0.01)
        ready = time.time() - start
        time.sleep(1.0)
        return ready, _rss_mb(proc.pid), _children(proc.pid)
    finally:
        http.close()
        proc.terminate()
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    loads, model_rss, readies, serve_rss, children = [], [], [], [], []
    for r in range(args.rounds):
        steps = ["model", "serve"] if r % 2 == 0 else ["serve", "model"]
        for step in steps:
            if step == "model":
                t, m = model_only()
                loads.append(t)
                model_rss.append(m)
            else:
                t, m, c = served()
                readies.append(t)
                serve_rss.append(m)
                children.append(c)
    report = {
        "cpu_count": os.cpu_count(),
        "model_only": {"load_s": statistics.median(loads), "rss_mb": statistics.median(model_rss)},
        "im_serve": {
            "ready_s": statistics.median(readies),
            "rss_mb": statistics.median(serve_rss),
            "child_processes": max(children),
        },
        "rss_overhead_mb": statistics.median(serve_rss) - statistics.median(model_rss),
        "ready_overhead_s": statistics.median(readies) - statistics.median(loads),
        "runs": {"load_s": loads, "ready_s": readies, "model_rss_mb": model_rss, "serve_rss_mb": serve_rss},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
