"""Download throughput: ModelCache (stream + sha256 + md5 + size check + atomic rename + link) vs curl.

Serves a 200 MB file (default) from a loopback HTTP server on 127.0.0.1 (zero-copy ``sendfile``), then times
``ModelCache.materialize`` of a registry package holding it and ``curl -s -o /dev/null`` of the same URL.

    .venv/bin/python benchmarks/bench_download.py [--size-mb 200] [--repeat 3]
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


def _servers():
    """The tests' loopback server (``tests/testlib/servers.py``), imported the way the tests import it."""
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from testlib import servers

    return servers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from im_core._cache import ModelCache, resolve_metadata
    from im_providers import add_to_registry

    work = Path(tempfile.mkdtemp(prefix="im-bench-"))
    try:
        weights = work / "weights.onnx"
        with open(weights, "wb") as f:
            for _ in range(args.size_mb):
                f.write(os.urandom(1 << 20))
        nbytes = weights.stat().st_size
        add_to_registry(
            work / "reg", model_id="bench/model", architecture="x", task="object-detection", files=[weights]
        )
        weights.unlink()
        results: dict[str, list[float]] = {"im ModelCache (download+verify)": []}
        with _servers().LoopbackServer(root=work / "reg") as srv:
            md = resolve_metadata("http", "bench/model", provider_options={"root": srv.url})
            url = md.packages[0].files[0].url
            for i in range(args.repeat):
                cache = ModelCache(work / f"home{i}")
                t0 = time.perf_counter()
                cache.materialize(md, md.packages[0], progress=False)
                results["im ModelCache (download+verify)"].append(time.perf_counter() - t0)
                shutil.rmtree(work / f"home{i}")
            curl = shutil.which("curl")
            if curl:
                for label, out in (("curl -s -o /dev/null", "/dev/null"), ("curl -s -o file", str(work / "c.bin"))):
                    results[label] = []
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        subprocess.run([curl, "-s", "-o", out, url], check=True)
                        results[label].append(time.perf_counter() - t0)
            else:
                print("curl not found: only im is measured")
        print(f"file: {nbytes / 1e6:.0f} MB from {srv.url} (loopback), {args.repeat} runs each")
        for label, times in results.items():
            best, med = min(times), statistics.median(times)
            print(f"{label:34} best {nbytes / best / 1e6:7.0f} MB/s   median {nbytes / med / 1e6:7.0f} MB/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
