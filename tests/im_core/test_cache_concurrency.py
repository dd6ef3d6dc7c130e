"""Real processes: eight loads of one model download each file once; a downloader killed with SIGKILL does not
block the next load; a lock holder that stops making progress times out waiters, a slow one does not."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from im_core._cache import ModelCache, _store, prune, resolve_metadata
from im_core._cache._locks import progress_lock
from im_core._config import reload_settings
from im_core._metadata import FileSpec, ModelMetadata, ModelPackage
from im_core.errors import CacheLockTimeoutError
from im_providers import add_to_registry
from testlib import servers

MODEL = "acme/detector"
PKG = "onnx-fp32-b1"

WORKER = r"""
import hashlib, json, os, sys, time
from pathlib import Path
from im_core._cache import ModelCache, prune, resolve_metadata
root, go = sys.argv[1], Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
md = resolve_metadata("http", "acme/detector", provider_options={"root": root})
folder = ModelCache().materialize(md, md.packages[0])
print(json.dumps({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}), flush=True)
"""


HOLDER = r"""
import os, sys, time
from pathlib import Path
from im_core._cache._locks import progress_lock
locks, key, ready, hold, action = sys.argv[1:6]
with progress_lock(Path(locks), key, what="a test holder", stale_s=60) as hb:
    Path(ready).touch()
    verb, *paths = action.split("|")
    end = time.monotonic() + float(hold)
    while time.monotonic() < end:
        if verb == "beat":  # alive and making progress (a slow download)
            hb.beat(force=True)
        time.sleep(0.1)
    if verb == "rename":  # a build finished: its marker appears
        os.replace(paths[0], paths[1])
    elif verb == "touch":  # the package was used (what a load does under the package lock)
        os.utime(paths[0])
    elif verb == "link":  # the blob was linked into a package being built
        Path(paths[1]).parent.mkdir(parents=True, exist_ok=True)
        os.link(paths[0], paths[1])
"""

LOADER = r"""
import sys, time
from im_core._cache import ModelCache, prune, resolve_metadata
root, seconds = sys.argv[1], float(sys.argv[2])
md = resolve_metadata("http", "acme/detector", provider_options={"root": root})
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    ModelCache().materialize(md, md.packages[0])
    n += 1
print(n, flush=True)
"""


def _hold(home: Path, key: str, action: str, tmp_path: Path, hold_s: float = 1.0) -> subprocess.Popen:
    """Another process holding the cache lock ``key`` for ``hold_s`` seconds, then doing ``action``."""
    ready = tmp_path / f"ready-{key[:20]}"
    env = {**os.environ, "IM_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home / "locks"), key, str(ready), str(hold_s), action],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the lock holder did not start: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    return proc


def _registry(tmp_path: Path, sizes: dict[str, int]) -> dict[str, bytes]:
    files = {}
    for name, size in sizes.items():
        files[name] = os.urandom(size)
        (tmp_path / name).write_bytes(files[name])
    add_to_registry(
        tmp_path / "reg",
        model_id=MODEL,
        architecture="yolov8",
        task="object-detection",
        files=[tmp_path / n for n in sizes],
    )
    return files


def _spawn(args: list[str], home: Path) -> subprocess.Popen:
    env = {**os.environ, "IM_HOME": str(home), "IM_PROGRESS": "0"}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_eight_processes_download_each_file_once(tmp_path: Path) -> None:
    home = ModelCache().root
    files = _registry(tmp_path, {"weights.onnx": 3 << 20, "labels.txt": 2000})
    go = tmp_path / "go"
    with servers.LoopbackServer(root=tmp_path / "reg") as srv:
        srv.slow[f"/{MODEL}/{PKG}/weights.onnx"] = 0.01  # ~0.5 s transfer: the others must wait, not re-download
        procs = [_spawn([srv.url, str(go)], home) for _ in range(8)]
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        go.touch()
        results = [p.communicate(timeout=60) for p in procs]
        codes = [p.returncode for p in procs]
        assert codes == [0] * 8, [err[-2000:] for _, err in results]
        assert srv.count(f"/{MODEL}/{PKG}/weights.onnx") == 1
        assert srv.count(f"/{MODEL}/{PKG}/labels.txt") == 1
        assert srv.count(f"/{MODEL}/metadata.json") == 8
    expected = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    for out, _ in results:
        assert json.loads(out.strip().splitlines()[-1]) == expected


@pytest.mark.slow
def test_sigkill_mid_download_then_new_load(tmp_path: Path) -> None:
    home = ModelCache().root
    files = _registry(tmp_path, {"weights.onnx": 2 << 20})
    go = tmp_path / "go"
    go.touch()
    path = f"/{MODEL}/{PKG}/weights.onnx"
    with servers.LoopbackServer(root=tmp_path / "reg") as srv:
        srv.slow[path] = 0.05  # 32 chunks of 64 KiB: ~1.6 s
        proc = _spawn([srv.url, str(go)], home)
        tmp = home / "tmp"
        deadline = time.monotonic() + 30
        while not any(p.stat().st_size > 100_000 for p in tmp.glob("*.part")) if tmp.is_dir() else True:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else ""
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert list(tmp.glob("*.part"))  # the dead process left its partial file behind...
        srv.slow.pop(path)
        md = resolve_metadata("http", MODEL, provider_options={"root": srv.url})
        t0 = time.monotonic()
        folder = ModelCache().materialize(md, md.packages[0])
        assert time.monotonic() - t0 < 10  # the dead holder's lock was released by the OS: no stale wait
        resumed_at = [r.headers.get("range") for r in srv.requests if r.path == path][1]
        start = int(resumed_at.removeprefix("bytes=").removesuffix("-"))  # only the missing bytes were asked for
        # the server records a response's bytes when its handler ends; the killed client's handler may end after
        # the resumed one (it notices the broken pipe at its next write), so wait for the resumed one's record
        deadline = time.monotonic() + 10
        while (2 << 20) - start not in srv.bytes_sent(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert start >= 100_000 and (2 << 20) - start in srv.bytes_sent(path)
    assert (folder / "weights.onnx").read_bytes() == files["weights.onnx"]
    assert not list(tmp.glob("*.part"))  # ...which the next holder continued (and moved to blobs/)
    assert srv.count(path) == 2


def test_waiter_times_out_only_without_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IM_LOCK_STALE", "1")
    reload_settings()
    locks = tmp_path / "locks"
    locks.mkdir()
    held = threading.Event()
    release = threading.Event()

    def holder(beating: bool) -> None:
        with progress_lock(locks, "k", what="x", stale_s=1.0) as hb:
            held.set()
            while not release.wait(0.1):
                if beating:
                    hb.beat()

    # a holder that keeps beating for 2.5 s (> stale_s) is waited for
    t = threading.Thread(target=holder, args=(True,))
    t.start()
    held.wait()
    threading.Timer(2.5, release.set).start()
    t0 = time.monotonic()
    with progress_lock(locks, "k", what="x", stale_s=1.0):
        assert time.monotonic() - t0 > 2.0
    t.join()
    # a holder that stops beating is given up on after stale_s
    held.clear()
    release.clear()
    t = threading.Thread(target=holder, args=(False,))
    t.start()
    held.wait()
    with pytest.raises(CacheLockTimeoutError, match="no progress"), progress_lock(locks, "k", what="x", stale_s=1.0):
        pass
    release.set()
    t.join()


def _two_models(tmp_path: Path, srv) -> list[Path]:
    folders = []
    for mid in ("m/1", "m/2"):
        w = tmp_path / mid / "weights.onnx"
        w.parent.mkdir(parents=True)
        w.write_bytes(os.urandom(50_000))
        add_to_registry(tmp_path / "reg", model_id=mid, architecture="yolov8", task="object-detection", files=[w])
        md = resolve_metadata("http", mid, provider_options={"root": srv.url})
        folders.append(ModelCache().materialize(md, md.packages[0]))
        time.sleep(0.02)
    return folders


def test_prune_waits_for_a_package_in_use_and_keeps_it(tmp_path: Path) -> None:
    """A load in another process holds m/1's package lock and uses it: prune waits for it, then keeps m/1."""
    cache = ModelCache()
    with servers.LoopbackServer(root=tmp_path / "reg") as srv:
        f1, f2 = _two_models(tmp_path, srv)
    old = {p.model_id: p for p in cache.packages()}["m/1"]  # the least recently used
    key = cache.package_lock_key("m/1", old.package_id)
    holder = _hold(cache.root, key, f"touch|{old.marker}", tmp_path)
    t0 = time.monotonic()
    report = prune(cache, 0)
    waited = time.monotonic() - t0
    assert holder.communicate(timeout=30)[1] == "" and holder.returncode == 0
    assert waited > 0.5
    assert report.removed_packages == ["m/2@onnx-fp32-b1"]
    assert [p.model_id for p in cache.packages()] == ["m/1"] and (f1 / "weights.onnx").stat().st_size == 50_000
    assert not f2.exists()


def test_prune_keeps_a_blob_that_a_load_is_linking(tmp_path: Path) -> None:
    """No complete package uses the blob, but another process holds its lock and links it into a package being
    built: prune waits for the lock and then keeps the blob."""
    cache = ModelCache()
    with servers.LoopbackServer(root=tmp_path / "reg") as srv:
        f1, _ = _two_models(tmp_path, srv)
    pkg = {p.model_id: p for p in cache.packages()}["m/1"]
    sha = pkg.files[0]["sha256"]
    pkg.marker.unlink()
    shutil.rmtree(f1)  # m/1 is now a blob only; the holder plays a load that is linking it
    blob = cache.layout.blob(sha)
    holder = _hold(cache.root, sha, f"link|{blob}|{f1 / 'weights.onnx'}", tmp_path)
    t0 = time.monotonic()
    report = prune(cache, 0)
    assert holder.communicate(timeout=30)[1] == "" and holder.returncode == 0
    assert time.monotonic() - t0 > 0.5
    assert blob.is_file() and os.path.samefile(blob, f1 / "weights.onnx")
    assert report.removed_packages == ["m/2@onnx-fp32-b1"] and report.removed_blobs == 1  # m/2's blob only


@pytest.mark.slow
def test_prune_in_a_loop_never_breaks_a_concurrent_load(tmp_path: Path) -> None:
    """One process loads a model over and over while this one prunes the cache to zero over and over."""
    files = _registry(tmp_path, {"weights.onnx": 200_000, "labels.txt": 100})
    home = ModelCache().root
    with servers.LoopbackServer(root=tmp_path / "reg") as srv:
        env = {**os.environ, "IM_HOME": str(home), "IM_PROGRESS": "0"}
        loader = subprocess.Popen(
            [sys.executable, "-c", LOADER, srv.url, "3"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        prunes = 0
        while loader.poll() is None:
            prune(ModelCache(), 0)
            prunes += 1
        out, err = loader.communicate(timeout=30)
        assert loader.returncode == 0, err.decode()[-3000:]
        assert int(out) > 0 and prunes > 0
        md = resolve_metadata("http", MODEL, provider_options={"root": srv.url})
        folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "weights.onnx").read_bytes() == files["weights.onnx"]


def _file_model(tmp_path: Path, model_id: str, digest: str) -> ModelMetadata:
    """A one-file model whose weights (1000 random bytes, the same for every model id) have only ``digest``."""
    src = tmp_path / "shared-weights.onnx"
    if not src.exists():
        src.write_bytes(os.urandom(1000))
    hexdigest = hashlib.new(digest, src.read_bytes()).hexdigest()
    spec = FileSpec(name="weights.onnx", url=src.as_uri(), size=1000, **{digest: hexdigest})
    package = ModelPackage(package_id="p1", backend="onnx", files=(spec,))
    return ModelMetadata(model_id=model_id, architecture="yolov8", task="object-detection", packages=(package,))


@pytest.mark.parametrize("case", ["sha256-download", "md5-download", "md5-cached-blob"])
def test_a_load_waiting_on_a_live_process_keeps_its_package_lock_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Another process holds the lock of a file (its download, or its blob) for 2.5 s, beating: it is alive. Load
    2 holds the package lock and waits for it; load 3 waits for load 2. With a stale limit of 1 s, nobody gives
    up: load 2 passes the other process's liveness on to its package lock."""
    monkeypatch.setenv("IM_LOCK_STALE", "1")
    reload_settings()
    digest = case.split("-")[0]
    cache = ModelCache()
    cache.layout.ensure()
    md = _file_model(tmp_path, "acme/y", digest)
    spec = md.packages[0].files[0]
    key = spec.sha256 or f"md5-{spec.md5}"
    if case == "md5-cached-blob":  # the blob and its md5 index entry are cached (another model shares them)
        other = _file_model(tmp_path, "acme/x", digest)
        ModelCache().materialize(other, other.packages[0])
        key = hashlib.sha256((tmp_path / "shared-weights.onnx").read_bytes()).hexdigest()  # the blob's lock
    holder = _hold(cache.root, key, "beat", tmp_path, hold_s=2.5)
    results: dict[str, object] = {}

    def load(name: str) -> None:
        try:
            results[name] = ModelCache().materialize(md, md.packages[0])
        except Exception as exc:  # reported by the assertion below
            results[name] = exc

    load2 = threading.Thread(target=load, args=("load 2",))
    load2.start()
    pkg_beat = cache.layout.locks / f"{cache.package_lock_key('acme/y', 'p1')}.beat"
    deadline = time.monotonic() + 10
    while not pkg_beat.exists():  # load 2 holds the package lock (and now waits for the holder)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    load("load 3")
    load2.join(30)
    assert holder.communicate(timeout=30)[1] == "" and holder.returncode == 0
    folder = cache.layout.package_dir("acme/y", "p1")
    assert results == {"load 2": folder, "load 3": folder}
    assert (folder / "weights.onnx").read_bytes() == (tmp_path / "shared-weights.onnx").read_bytes()


@pytest.mark.parametrize("cached", [False, True])
def test_prune_between_fetching_and_linking_an_md5_only_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    """A file with only an md5 (every Roboflow file): prune runs just before each blob lock the load takes, i.e.
    it wins every race for it. The load still links the file (fetching it again if prune deleted it)."""
    md = _file_model(tmp_path, "acme/y", "md5")
    cache = ModelCache()
    if cached:  # its blob is cached but unlinked: another model had it, and was evicted
        other = _file_model(tmp_path, "acme/x", "md5")
        cache.materialize(other, other.packages[0])
        assert cache.evict(cache.packages()[0])
    prunes: list[int] = []
    blob_lock = ModelCache.blob_lock

    def prune_first(self: ModelCache, sha256: str, **kwargs: object):
        if not pruning:  # the load's blob lock (not prune's own): prune takes it first
            pruning.append(True)
            prunes.append(prune(ModelCache(), 0).removed_blobs)
            pruning.clear()
        return blob_lock(self, sha256, **kwargs)

    pruning: list[bool] = []

    monkeypatch.setattr(ModelCache, "blob_lock", prune_first)
    folder = cache.materialize(md, md.packages[0])
    assert (folder / "weights.onnx").read_bytes() == (tmp_path / "shared-weights.onnx").read_bytes()
    assert prunes == ([1, 0] if cached else [0])  # a cached blob was deleted, and fetched again
    sha = hashlib.sha256((tmp_path / "shared-weights.onnx").read_bytes()).hexdigest()
    assert os.path.samefile(cache.layout.blob(sha), folder / "weights.onnx")
    assert (cache.layout.index / f"md5-{md.packages[0].files[0].md5}").read_text() == sha


def test_a_load_that_waited_for_the_build_does_not_build_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Load a builds the package (its download held by the server); load b finds it incomplete and waits for the
    package lock. Once a is done, b checks again and returns the folder: the marker is written once."""
    _registry(tmp_path, {"weights.onnx": 10_000})
    path = f"/{MODEL}/{PKG}/weights.onnx"
    writes: list[Path] = []
    atomic_write = _store.atomic_write
    monkeypatch.setattr(_store, "atomic_write", lambda p, text: (writes.append(p), atomic_write(p, text))[1])
    checks: list[tuple[str, bool]] = []
    is_complete = ModelCache._is_complete

    def check(self: ModelCache, *args: object) -> bool:
        checks.append((threading.current_thread().name, result := is_complete(self, *args)))
        return result

    monkeypatch.setattr(ModelCache, "_is_complete", check)
    gate = threading.Event()
    results: dict[str, Path] = {}
    with servers.LoopbackServer(root=tmp_path / "reg") as srv:
        srv.gate[path] = gate
        md = resolve_metadata("http", MODEL, provider_options={"root": srv.url})

        def load() -> None:
            results[threading.current_thread().name] = ModelCache().materialize(md, md.packages[0])

        loads = [threading.Thread(target=load, name=name) for name in ("a", "b")]
        loads[0].start()
        deadline = time.monotonic() + 10
        while srv.count(path) == 0:  # a holds the package lock; the server holds its download
            assert time.monotonic() < deadline
            time.sleep(0.01)
        loads[1].start()
        while ("b", False) not in checks:  # b found the package incomplete: it waits for the lock
            assert time.monotonic() < deadline and loads[1].is_alive()
            time.sleep(0.01)
        gate.set()
        for t in loads:
            t.join(30)
        assert srv.count(path) == 1
    assert results["a"] == results["b"] and (results["a"] / "weights.onnx").stat().st_size == 10_000
    assert [p.name for p in writes if p.name.endswith(".complete.json")] == [f".{PKG}.complete.json"]
    assert [ok for name, ok in checks if name == "b"] == [False, True]


def test_prune_keeps_an_old_looking_incomplete_folder_whose_build_completes(tmp_path: Path) -> None:
    """m/1's folder has no marker and has not changed for an hour, but another process holds its package lock
    and completes it (its marker appears): prune waits for the lock, then keeps the folder and its blob."""
    cache = ModelCache()
    with servers.LoopbackServer(root=tmp_path / "reg") as srv:
        f1, _ = _two_models(tmp_path, srv)
    pkg = {p.model_id: p for p in cache.packages()}["m/1"]
    aside = tmp_path / "marker-aside"
    os.replace(pkg.marker, aside)
    old = time.time() - 3600
    for p in (*f1.iterdir(), f1):
        os.utime(p, (old, old))
    holder = _hold(cache.root, cache.package_lock_key("m/1", pkg.package_id), f"rename|{aside}|{pkg.marker}", tmp_path)
    t0 = time.monotonic()
    report = prune(cache, 10**9)
    assert holder.communicate(timeout=30)[1] == "" and holder.returncode == 0
    assert time.monotonic() - t0 > 0.5
    assert report.removed_incomplete == [] and report.removed_blobs == 0
    assert (f1 / "weights.onnx").stat().st_size == 50_000 and pkg.marker.is_file()
    assert os.path.samefile(f1 / "weights.onnx", cache.layout.blob(pkg.files[0]["sha256"]))


def test_a_slow_live_download_keeps_its_waiters_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Load a downloads a 1.2 MiB file at ~600 KB/s (2 s: over 1 MiB takes longer than IM_LOCK_STALE=1 s); load b
    waits for it. Bytes keep arriving, so a's heartbeat keeps beating on time and b waits instead of giving up
    (it used to beat once per 1 MiB read: below 1 MiB per IM_LOCK_STALE, a live download looked dead)."""
    monkeypatch.setenv("IM_LOCK_STALE", "1")
    reload_settings()
    files = _registry(tmp_path, {"weights.onnx": 1_200_000})
    path = f"/{MODEL}/{PKG}/weights.onnx"
    results: dict[str, object] = {}
    with servers.LoopbackServer(root=tmp_path / "reg") as srv:
        srv.slow[path] = 0.1  # 64 KiB per 0.1 s
        md = resolve_metadata("http", MODEL, provider_options={"root": srv.url})

        def load(name: str) -> None:
            try:
                results[name] = ModelCache().materialize(md, md.packages[0])
            except Exception as exc:  # reported by the assertion below
                results[name] = exc

        a = threading.Thread(target=load, args=("a",))
        a.start()
        deadline = time.monotonic() + 10
        while srv.count(path) == 0:  # a holds the locks and is downloading
            assert time.monotonic() < deadline
            time.sleep(0.01)
        load("b")
        a.join(30)
        assert srv.count(path) == 1
    folder = ModelCache().layout.package_dir(MODEL, PKG)
    assert results == {"a": folder, "b": folder}
    assert (folder / "weights.onnx").read_bytes() == files["weights.onnx"]
