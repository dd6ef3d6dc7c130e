"""Measure what a resumed download asks for: a file (200 MB by default) served from a loopback server is cut short,
and the Range header and body bytes of every answer are printed.

Three cases:

* ``in-load``: one load; the server cuts its first answer at ``--cut`` bytes; the load's next attempt continues.
* ``next-load``: a load with ``IM_DOWNLOAD_RETRIES=1`` is cut and fails; a new process loads the model again.
* ``killed``: a process downloading the file is killed with SIGKILL; a new process loads the model again.

    .venv/bin/python scripts/measure_resume.py [--size-mb 200] [--cut 123456789]

Not a test: it moves about a gigabyte through the loopback interface and the disk.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
MODEL = "measure/resume"
LOAD = r"""
import sys
from im_core._cache import ModelCache, resolve_metadata
md = resolve_metadata("http", "measure/resume", provider_options={"root": sys.argv[1]})
try:
    ModelCache().materialize(md, md.packages[0], progress=False)
    print("loaded")
except Exception as exc:
    print(type(exc).__name__)
"""


def _servers():
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from testlib import servers

    return servers


def _load(url: str, home: Path, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "IM_HOME": str(home), "IM_PROGRESS": "0", **env}
    return subprocess.Popen([sys.executable, "-c", LOAD, url], env=environ, stdout=subprocess.PIPE, text=True)


def _report(case: str, srv, path: str, size: int, home: Path, sha: str, seconds: float) -> None:
    ranges = [r.headers.get("range") for r in srv.requests if r.path == path]
    sent = srv.bytes_sent(path)
    blob = home / "blobs" / "sha256" / sha
    ok = blob.is_file() and hashlib.sha256(blob.read_bytes()).hexdigest() == sha
    print(f"[{case}] file {size} bytes; {len(ranges)} requests, {seconds:.1f} s; verified blob: {ok}")
    for i, (rng, n) in enumerate(zip(ranges, sent), 1):
        print(f"    request {i}: Range {rng or '(none: whole file)'}; body bytes sent {n}")
    print(f"    total body bytes sent {sum(sent)} = file + {sum(sent) - size} (bytes sent twice: 0 means none)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="file size in MB (10^6 bytes)")
    parser.add_argument("--cut", type=int, default=None, help="bytes sent before the cut (default: 61.7%%)")
    args = parser.parse_args()

    from im_providers import add_to_registry

    size = args.size_mb * 1_000_000
    cut = args.cut if args.cut is not None else int(size * 0.617)
    work = Path(tempfile.mkdtemp(prefix="im-resume-"))
    try:
        weights = work / "weights.onnx"
        digest = hashlib.sha256()
        with open(weights, "wb") as f:
            for _ in range(args.size_mb):
                block = os.urandom(1_000_000)
                digest.update(block)
                f.write(block)
        sha = digest.hexdigest()
        add_to_registry(work / "reg", model_id=MODEL, architecture="x", task="object-detection", files=[weights])
        weights.unlink()
        path = f"/{MODEL}/onnx-fp32-b1/weights.onnx"
        servers = _servers()

        with servers.LoopbackServer(root=work / "reg") as srv:  # in-load
            srv.truncate[path], srv.truncate_times[path] = cut, 1
            home = work / "home-in-load"
            t0 = time.monotonic()
            out = _load(srv.url, home, IM_DOWNLOAD_RETRIES="2").communicate()[0].strip()
            assert out == "loaded", out
            _report("in-load", srv, path, size, home, sha, time.monotonic() - t0)

        with servers.LoopbackServer(root=work / "reg") as srv:  # next-load
            srv.truncate[path], srv.truncate_times[path] = cut, 1
            home = work / "home-next-load"
            t0 = time.monotonic()
            first = _load(srv.url, home, IM_DOWNLOAD_RETRIES="1").communicate()[0].strip()
            parts = {p.name: p.stat().st_size for p in (home / "tmp").glob("*.part")}
            second = _load(srv.url, home).communicate()[0].strip()
            print(f"[next-load] first load: {first}; left in tmp/: {parts}; second load: {second}")
            _report("next-load", srv, path, size, home, sha, time.monotonic() - t0)

        with servers.LoopbackServer(root=work / "reg") as srv:  # killed
            srv.slow[path] = 0.002  # ~30 MB/s: time to kill it midway
            home = work / "home-killed"
            t0 = time.monotonic()
            proc = _load(srv.url, home)
            while sum(p.stat().st_size for p in (home / "tmp").glob("*.part")) < cut if (home / "tmp").is_dir() else 1:
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            parts = {p.name: p.stat().st_size for p in (home / "tmp").glob("*.part")}
            srv.slow.pop(path)
            second = _load(srv.url, home).communicate()[0].strip()
            print(f"[killed] killed with SIGKILL; left in tmp/: {parts}; next load: {second}")
            _report("killed", srv, path, size, home, sha, time.monotonic() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
