"""``im serve`` against the in-process ``model(bytes)`` loop (issue 13): latency at concurrency 1, throughput and
p99/p50 at concurrency 16, interleaved round by round so drift hits both sides alike.

The server is ``python -m im_core.cli serve nudenet=<pinned nudenet 320n> --log-level warning`` on 127.0.0.1 (a
subprocess; no access log); the in-process side loads the same file in this process. The image is the pinned
astronaut photograph (512×512 PNG bytes), sent as the request body. Each round runs, in alternating order:
``--calls`` in-process calls; ``--calls`` requests over one keep-alive connection (concurrency 1); the in-process loop
again for images/s; ``--calls`` × 16 requests from 16 threads with a keep-alive connection each (concurrency 16).

Run: ``uv run python benchmarks/bench_serve.py [--rounds 4] [--calls 40] [--json out.json]``. Targets from the
issue: c=1 p50 ≤ in-process p50 × 1.10 + 2 ms; c=16 images/s ≥ 0.9× the loop's, p99/p50 ≤ 1.5.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / ".cache" / "test-assets"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    import httpx

    from im_core import AutoModel

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    weights = ASSETS / "yolo" / "nudenet_320n.onnx"
    data = (ASSETS / "images" / "astronaut.png").read_bytes()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = ["-m", "im_core.cli", "serve", f"nudenet={weights}", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen([sys.executable, *command])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        model = AutoModel.from_pretrained(weights)
        predict = f"{url}/v1/models/nudenet/predict"
        for _ in range(5):  # warm-up, both sides
            model(data)
            httpx.post(predict, content=data).raise_for_status()

        local_lat: list[float] = []
        served_lat: list[float] = []
        served16_lat: list[float] = []
        local_ips: list[float] = []
        served_ips: list[float] = []

        def local_c1() -> None:
            for _ in range(args.calls):
                t = time.perf_counter()
                model(data)
                local_lat.append(time.perf_counter() - t)

        def served_c1() -> None:
            with httpx.Client() as http:
                for _ in range(args.calls):
                    t = time.perf_counter()
                    http.post(predict, content=data).raise_for_status()
                    served_lat.append(time.perf_counter() - t)

        def local_loop() -> None:
            n = args.calls
            t = time.perf_counter()
            for _ in range(n):
                model(data)
            local_ips.append(n / (time.perf_counter() - t))

        def served_c16() -> None:
            def client(_: int) -> list[float]:
                out = []
                with httpx.Client(timeout=120) as http:
                    for _ in range(args.calls):
                        t = time.perf_counter()
                        http.post(predict, content=data).raise_for_status()
                        out.append(time.perf_counter() - t)
                return out

            t = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                lats = [x for rows in pool.map(client, range(args.clients)) for x in rows]
            served_ips.append(len(lats) / (time.perf_counter() - t))
            served16_lat.extend(lats)

        for r in range(args.rounds):
            pairs = [(local_c1, served_c1), (local_loop, served_c16)]
            for a, b in pairs:
                (a(), b()) if r % 2 == 0 else (b(), a())

        report = {
            "c1_p50_ms": {
                "in_process": statistics.median(local_lat) * 1e3,
                "served": statistics.median(served_lat) * 1e3,
            },
            "c1_target_ms": statistics.median(local_lat) * 1e3 * 1.10 + 2,
            "c16_images_per_s": {
                "in_process_loop": statistics.median(local_ips),
                "served": statistics.median(served_ips),
            },
            "c16_ratio": statistics.median(served_ips) / statistics.median(local_ips),
            "c16_p50_ms": statistics.median(served16_lat) * 1e3,
            "c16_p99_ms": _pct(served16_lat, 0.99) * 1e3,
            "c16_p99_over_p50": _pct(served16_lat, 0.99) / statistics.median(served16_lat),
        }
        print(json.dumps(report, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
