"""Loading through the cache when the cache misbehaves: prune in another process between materialising a package and
the backend opening it, a corrupt cached file, and an IM_HOME that is a file, read-only or full (a real tmpfs in a
user + mount namespace, or a real file-size limit)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from im_core import AutoModel
from im_core._cache import ModelCache, prune
from im_core._config import reload_settings
from im_core.cli import main as im_main
from im_core.errors import AllPackagesFailedError, ConfigurationError, OfflineModeError
from im_providers import add_to_registry
from testlib import servers

pytestmark = pytest.mark.weights

MODEL = "t/yolo"
WEIGHTS = f"/{MODEL}/onnx/weights.onnx"


def _registry(asset, root: Path, model_id: str = MODEL, weights: Path | None = None) -> Path:
    """``model_id``: the pinned YOLOv8 export (or ``weights``) as one ONNX package ``onnx`` in the registry ``root``."""
    src = root.parent / f"src-{model_id.replace('/', '-')}" / "weights.onnx"
    src.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(weights or asset("yolo/nudenet_320n.onnx"), src)
    add_to_registry(
        root,
        model_id=model_id,
        architecture="yolov8",
        task="object-detection",
        files=[src],
        package_id="onnx",
        class_names=[str(i) for i in range(18)],
        input_size=(320, 320),
    )
    return root


# -- prune between materialize() and the backend opening the files ----------------------------------------------

LOADER = r"""
import sys, time
from im_core import AutoModel
from im_core._cache import ModelCache

root, n, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
materialize = ModelCache.materialize

def materialize_then_wait(self, *args, **kwargs):
    folder = materialize(self, *args, **kwargs)
    time.sleep(gap)  # the backend opens the files only now: prune in the other process gets this window
    return folder

ModelCache.materialize = materialize_then_wait
ok, errors = 0, []
for _ in range(n):
    try:
        AutoModel.from_pretrained("t/yolo", weights_provider="local", provider_options={"root": root})
        ok += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}"[:400])
print(ok, flush=True)
print("\n".join(errors), file=sys.stderr)
"""


@pytest.mark.slow
def test_prune_in_another_process_never_evicts_a_package_between_materialize_and_open(asset, tmp_path: Path) -> None:
    """A process loads the model 6 times with 0.3 s between materialize() and the backend opening the files; this
    process prunes the cache to 0 bytes in a loop meanwhile. Every load succeeds (the package is marked in use),
    and prune does evict it between loads."""
    root = _registry(asset, tmp_path / "reg")
    loads = 6
    loader = subprocess.Popen(
        [sys.executable, "-c", LOADER, str(root), str(loads), "0.3"],
        env={**os.environ, "IM_PROGRESS": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    evicted = 0
    while loader.poll() is None:
        evicted += len(prune(ModelCache(), 0).removed_packages)
        time.sleep(0.01)
    out, err = loader.communicate(timeout=60)
    assert loader.returncode == 0, err[-3000:]
    assert int(out) == loads, f"{out.strip()} of {loads} loads survived:\n{err[-3000:]}"
    assert evicted >= 1  # prune was really evicting: the package was rebuilt between loads


# -- a corrupt cached file --------------------------------------------------------------------------------------


def _corrupt(path: Path) -> None:
    """Overwrite the first bytes of a cached file in place (same size: the cheap completeness check passes)."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.write(b"\xff" * 64)


def test_a_corrupt_cached_file_is_fetched_again_once(asset, tmp_path: Path, monkeypatch, caplog) -> None:
    """The cached weights were damaged on disk after a load: the next load's backend fails, the package is
    re-hashed, the file removed and downloaded once more, and the load succeeds. Offline, the same damage is an
    error that says what happened and names `im cache verify`."""
    root = _registry(asset, tmp_path / "reg")
    with servers.LoopbackServer(root=root) as srv:
        options = {"weights_provider": "http", "provider_options": {"root": srv.url}}
        AutoModel.from_pretrained(MODEL, **options)
        pkg = ModelCache().packages()[0]
        blob = ModelCache().layout.blob(pkg.files[0]["sha256"])
        _corrupt(pkg.path / "weights.onnx")
        model = AutoModel.from_pretrained(MODEL, **options)  # fails once, re-fetches, loads
        assert list(model.class_names[:2]) == ["0", "1"]
        assert srv.count(WEIGHTS) == 2
        assert "no longer match the sha256" in caplog.text
        assert blob.read_bytes() == (tmp_path / "src-t-yolo" / "weights.onnx").read_bytes()

        _corrupt(pkg.path / "weights.onnx")
        monkeypatch.setenv("IM_OFFLINE", "1")
        reload_settings()
        with pytest.raises(OfflineModeError) as info:  # the one candidate's own class (catchable by it)
            AutoModel.from_pretrained(MODEL, **options)
        message = str(info.value)
        assert "were corrupt" in message and "im cache verify" in message and "probably a bug" not in message
        assert srv.count(WEIGHTS) == 2


def test_a_package_that_fails_with_intact_files_says_the_cache_is_not_the_cause(asset, tmp_path: Path) -> None:
    """The registry serves a broken ONNX file with correct hashes: the load fails once, is not fetched again, and
    the error says the cached files were re-hashed and are intact (what `im cache verify` checks)."""
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model" * 100)
    root = _registry(asset, tmp_path / "reg", weights=broken)
    with servers.LoopbackServer(root=root) as srv:
        for _ in range(2):
            with pytest.raises(AllPackagesFailedError) as info:
                AutoModel.from_pretrained(MODEL, weights_provider="http", provider_options={"root": srv.url})
            assert "re-hashed and match" in str(info.value) and "im cache verify" in str(info.value)
        assert srv.count(WEIGHTS) == 1


# -- IM_HOME: a file, read-only, full ---------------------------------------------------------------------------


def test_a_file_as_im_home_is_a_configuration_error(asset, tmp_path: Path, monkeypatch, capsys) -> None:
    root = _registry(asset, tmp_path / "reg")
    home = tmp_path / "not-a-folder"
    home.write_text("x")
    for value in (home, home / "sub"):
        monkeypatch.setenv("IM_HOME", str(value))
        reload_settings()
        with pytest.raises(ConfigurationError, match=r"IM_HOME=.* not a folder"):
            AutoModel.from_pretrained(MODEL, weights_provider="local", provider_options={"root": str(root)})
        assert im_main(["cache", "list"]) == 2
        assert "IM_HOME" in capsys.readouterr().err


def _can_mount_tmpfs(tmp_path: Path) -> str | None:
    """Why a tmpfs cannot be mounted in a new user + mount namespace here (``None`` when it can)."""
    if shutil.which("unshare") is None:
        return "no `unshare` command"
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return None if done.returncode == 0 else f"`unshare -rm` + `mount -t tmpfs` failed: {done.stderr.strip()}"


def _run_on_tmpfs(home: Path, size: str, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter whose IM_HOME is a tmpfs of ``size`` mounted (in a private mount
    namespace, so it disappears with the process) at ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    env = {**os.environ, "IM_HOME": str(home), "IM_PROGRESS": "0"}
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", size, str(home), sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


FULL_DISK = textwrap.dedent(
    r"""
    import json, sys
    from im_core import AutoModel
    from im_core.errors import CacheStorageError
    url = sys.argv[1]
    for model_id in ("big/declared", "big/undeclared"):
        try:
            AutoModel.from_pretrained(model_id, weights_provider="http", provider_options={"root": url})
        except CacheStorageError as exc:
            print(json.dumps({"model": model_id, "message": exc.message, **exc.context}), flush=True)
        except Exception as exc:
            print(json.dumps({"model": model_id, "other": f"{type(exc).__name__}: {exc}"}), flush=True)
    """
)


def _big_registry(tmp_path: Path, size: int) -> Path:
    """Two models with ``size`` random bytes of weights: ``big/declared`` lists the size and sha256,
    ``big/undeclared`` only the sha256 (so the disk fills up while writing)."""
    weights = tmp_path / "big.onnx"
    weights.write_bytes(os.urandom(size))
    root = tmp_path / "big-reg"
    for model_id in ("big/declared", "big/undeclared"):
        doc = add_to_registry(root, model_id=model_id, architecture="yolov8", task="object-detection", files=[weights])
        if model_id == "big/undeclared":
            data = json.loads(doc.read_text())
            for f in data["modelPackages"][0]["packageFiles"]:
                f.pop("size", None)
            doc.write_text(json.dumps(data))
    return root


def test_a_full_disk_is_a_clear_error_naming_im_home_free_space_and_bytes_needed(tmp_path: Path) -> None:
    """IM_HOME is a 512 kB tmpfs; the weights are 2 MB. With a declared size the load is refused before anything
    is downloaded; without one, the disk fills up while writing (a real ENOSPC). Either way: CacheStorageError
    naming IM_HOME, the free space and the bytes needed, and no partial file left behind."""
    reason = _can_mount_tmpfs(tmp_path)
    if reason:
        pytest.skip(f"cannot simulate a full disk: {reason}")
    home = tmp_path / "home"
    with servers.LoopbackServer(root=_big_registry(tmp_path, 2_000_000)) as srv:
        done = _run_on_tmpfs(home, "512k", FULL_DISK, srv.url)
        assert done.returncode == 0, done.stderr[-3000:]
        results = {r["model"]: r for r in map(json.loads, done.stdout.splitlines())}
        assert srv.count("/big/declared/onnx-fp32-b1/big.onnx") == 0  # refused before downloading
        assert srv.count("/big/undeclared/onnx-fp32-b1/big.onnx") == 1
    for result in results.values():
        assert "other" not in result, result
        message = result["message"]
        assert f"IM_HOME={home}" in message and "free" in message, message
        assert result["free_bytes"] < 512_000
    assert (
        results["big/declared"]["needed_bytes"] == 2_000_000 and "2.0 MB needed" in results["big/declared"]["message"]
    )
    assert "full" in results["big/undeclared"]["message"]


READ_ONLY = textwrap.dedent(
    r"""
    import json, logging, os, subprocess, sys
    from pathlib import Path
    os.environ["IM_METADATA_TTL"] = "0"  # ask the registry on every load: its change below must be seen
    from im_core import AutoModel
    from im_core._config import settings
    from im_core.errors import CacheStorageError
    logging.basicConfig(level=logging.WARNING, format="LOG %(levelname)s %(message)s")
    root, home = sys.argv[1], str(settings().home)
    options = {"weights_provider": "local", "provider_options": {"root": root}}
    AutoModel.from_pretrained("t/yolo", **options)  # warm the cache
    subprocess.run(["mount", "-o", "remount,ro", home], check=True)
    doc = Path(root, "t/yolo/metadata.json")  # the registry changed meanwhile: the snapshot would be rewritten
    data = json.loads(doc.read_text())
    data["classNames"] = [f"c{i}" for i in range(18)]
    doc.write_text(json.dumps(data))
    model = AutoModel.from_pretrained("t/yolo", **options)
    print(json.dumps({"loaded": model.class_names[:2]}), flush=True)
    try:
        AutoModel.from_pretrained("t/other", **options)
    except CacheStorageError as exc:
        print(json.dumps({"error": exc.message}), flush=True)
    """
)


def test_a_read_only_im_home_serves_what_it_holds_and_says_why_it_cannot_store_more(asset, tmp_path: Path) -> None:
    """IM_HOME is remounted read-only after the cache was warmed: the cached model still loads (its snapshot, which
    cannot be rewritten, is a warning), and a model that is not cached is a CacheStorageError saying read-only."""
    reason = _can_mount_tmpfs(tmp_path)
    if reason:
        pytest.skip(f"cannot simulate a read-only IM_HOME: {reason}")
    root = _registry(asset, tmp_path / "reg")
    _registry(asset, root, model_id="t/other")
    home = tmp_path / "home"
    done = _run_on_tmpfs(home, "64m", READ_ONLY, str(root))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {"loaded": ["c0", "c1"]}
    assert "read-only" in lines[1]["error"] and f"IM_HOME={home}" in lines[1]["error"]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("LOG WARNING")]
    assert len(warnings) == 1 and "Could not save the metadata snapshot of 't/yolo'" in warnings[0], done.stderr


FILE_SIZE_LIMIT = textwrap.dedent(
    r"""
    import resource, signal, sys
    from im_core import AutoModel
    from im_core.errors import CacheStorageError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    try:
        AutoModel.from_pretrained("big/undeclared", weights_provider="http", provider_options={"root": sys.argv[1]})
    except CacheStorageError as exc:
        print(exc.message)
    """
)


def test_a_file_size_limit_is_a_clear_error(tmp_path: Path) -> None:
    """A real RLIMIT_FSIZE (ulimit -f) in a subprocess makes the download's writes fail with EFBIG: a
    CacheStorageError naming IM_HOME, not a raw OSError or "probably a bug"."""
    if not hasattr(os, "setrlimit") and sys.platform == "win32":  # pragma: no cover
        pytest.skip("no RLIMIT_FSIZE on Windows")
    with servers.LoopbackServer(root=_big_registry(tmp_path, 1_000_000)) as srv:
        done = subprocess.run(
            [sys.executable, "-c", FILE_SIZE_LIMIT, srv.url],
            env={**os.environ, "IM_PROGRESS": "0"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "too large" in done.stdout and f"IM_HOME={ModelCache().root}" in done.stdout, done.stdout + done.stderr


# -- IM_METADATA_TTL: a fresh snapshot spares the provider when the package is already cached ------------------


def test_a_warm_load_within_the_metadata_ttl_asks_the_registry_nothing(asset, tmp_path: Path, monkeypatch) -> None:
    """As the reference's auto-resolution cache (AUTO_LOADER_CACHE_EXPIRATION_MINUTES): a model loaded online is
    not asked for again within IM_METADATA_TTL when the package it loads is in the cache; other credentials, an
    expired snapshot or IM_METADATA_TTL=0 ask again, and an unchanged answer renews the snapshot."""
    root = _registry(asset, tmp_path / "reg")
    meta = f"/{MODEL}/metadata.json"
    with servers.LoopbackServer(root=root) as srv:
        options = {"weights_provider": "http", "provider_options": {"root": srv.url}}
        first = AutoModel.from_pretrained(MODEL, **options)
        assert srv.count(meta) == 1
        again = AutoModel.from_pretrained(MODEL, **options)
        assert srv.count(meta) == 1  # served from the fresh snapshot, the files from the cache
        assert again.metadata.package_id == first.metadata.package_id
        AutoModel.from_pretrained(MODEL, api_key="another-credential", **options)
        assert srv.count(meta) == 2  # a snapshot is trusted only for the credentials it was given for
        old = time.time() - 2 * 86400
        for checked in ModelCache().root.glob("metadata/**/*.checked"):  # when the registry last confirmed it
            os.utime(checked, (old, old))
        AutoModel.from_pretrained(MODEL, **options)
        assert srv.count(meta) == 3  # expired: asked again ...
        AutoModel.from_pretrained(MODEL, **options)
        assert srv.count(meta) == 3  # ... and the unchanged answer renewed it
        monkeypatch.setenv("IM_METADATA_TTL", "0")
        reload_settings()
        AutoModel.from_pretrained(MODEL, **options)
        assert srv.count(meta) == 4


def test_a_fresh_snapshot_whose_package_is_not_cached_is_not_trusted(asset, tmp_path: Path) -> None:
    """The snapshot is fresh but the package negotiation picks is not in the cache (here: pruned): its URLs could
    have expired, so the registry is asked again before anything is downloaded."""
    root = _registry(asset, tmp_path / "reg")
    meta = f"/{MODEL}/metadata.json"
    with servers.LoopbackServer(root=root) as srv:
        options = {"weights_provider": "http", "provider_options": {"root": srv.url}}
        AutoModel.from_pretrained(MODEL, **options)
        prune(ModelCache(), 0)
        AutoModel.from_pretrained(MODEL, **options)
        assert srv.count(meta) == 2 and srv.count(WEIGHTS) == 2
