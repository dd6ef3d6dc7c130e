"""`im cache verify` repairs corrupt blobs; `im cache prune` evicts by LRU; offline mode never opens a socket;
metadata snapshots; path safety of the cache itself."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

import pytest

from im_core._cache import ModelCache, parse_size, prune, resolve_metadata, verify
from im_core._config import reload_settings
from im_core._metadata import validate_relative_path
from im_core.cli import main as im_main
from im_core.errors import InvalidParameterError, OfflineModeError, UnsafePathError
from im_providers import add_to_registry
from testlib import servers


@pytest.fixture
def srv(tmp_path: Path):
    """Three models (100 kB, 200 kB, 300 kB weights) in a registry served over HTTP."""
    for i, size in enumerate((100_000, 200_000, 300_000), start=1):
        w = tmp_path / f"w{i}" / "weights.onnx"
        w.parent.mkdir()
        w.write_bytes(os.urandom(size))
        add_to_registry(tmp_path / "reg", model_id=f"m/{i}", architecture="yolov8", task="object-detection", files=[w])
    with servers.LoopbackServer(root=tmp_path / "reg") as server:
        yield server


def _load(srv, model_id: str) -> Path:
    md = resolve_metadata("http", model_id, provider_options={"root": srv.url})
    return ModelCache().materialize(md, md.packages[0])


def test_verify_detects_and_repairs_corrupt_blob(srv, capsys) -> None:
    home = ModelCache().root
    folder = _load(srv, "m/1")
    good = (folder / "weights.onnx").read_bytes()
    blob = home / "blobs" / "sha256" / hashlib.sha256(good).hexdigest()
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as f:  # flip bytes in place (same size: the fast path cannot notice)
        f.seek(1000)
        f.write(b"\xff" * 16)
    assert im_main(["cache", "verify"]) == 0
    out = capsys.readouterr().out
    assert "1 corrupt" in out and "1 packages repaired" in out
    assert (folder / "weights.onnx").read_bytes() == good
    assert srv.count("/m/1/onnx-fp32-b1/weights.onnx") == 2
    assert im_main(["cache", "verify"]) == 0 and "0 corrupt" in capsys.readouterr().out


def test_verify_offline_removes_but_cannot_refetch(srv) -> None:
    home = ModelCache().root
    folder = _load(srv, "m/1")
    blob = next((home / "blobs" / "sha256").iterdir())
    os.chmod(blob, 0o644)
    blob.write_bytes(b"garbage")
    report = verify(ModelCache(), offline=True)
    assert report.corrupt == [blob.name] and report.broken == ["m/1@onnx-fp32-b1"] and not report.ok
    assert not blob.exists() and not (folder / "weights.onnx").exists()
    assert im_main(["cache", "verify"]) == 0  # online again: nothing corrupt is left; the package stays to reload
    assert _load(srv, "m/1").joinpath("weights.onnx").is_file()


def test_prune_evicts_least_recently_used(srv, capsys) -> None:
    home = ModelCache().root
    for mid in ("m/1", "m/2", "m/3"):
        _load(srv, mid)
        time.sleep(0.02)
    _load(srv, "m/1")  # m/1 is now the most recently used; m/2 the least
    assert im_main(["cache", "prune", "--max-size", "450kB", "--dry-run"]) == 0
    assert len(ModelCache().packages()) == 3
    assert im_main(["cache", "prune", "--max-size", "450kB"]) == 0
    assert "m/2@onnx-fp32-b1" in capsys.readouterr().out
    left = sorted(p.model_id for p in ModelCache().packages())
    assert left == ["m/1", "m/3"]
    assert len(list((home / "blobs" / "sha256").iterdir())) == 2
    report = prune(ModelCache(), parse_size("350KB"))
    assert [p.model_id for p in ModelCache().packages()] == ["m/1"] and report.after_bytes == 100_000
    assert im_main(["cache", "list"]) == 0 and "m/1" in capsys.readouterr().out
    assert im_main(["cache", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model_id"] for r in rows] == ["m/1"] and rows[0]["size_bytes"] == 100_000


def test_prune_removes_interrupted_builds_and_reports_real_disk_use(srv, capsys: pytest.CaptureFixture[str]) -> None:
    """m/1 and m/2 lost their markers (builds interrupted); m/1's folder is older than IM_LOCK_STALE, m/2's is
    not (a build in progress). prune removes m/1's folder and blob, keeps m/2's, and counts m/2's bytes."""
    home = ModelCache().root
    f1, f2 = _load(srv, "m/1"), _load(srv, "m/2")  # 100 kB and 200 kB
    for pkg in ModelCache().packages():
        pkg.marker.unlink()
    old = time.time() - 120  # IM_LOCK_STALE is 60 s
    for p in (*f1.iterdir(), f1):
        os.utime(p, (old, old))
    label = f"{f1.parent.name}/{f1.name}"
    dry = prune(ModelCache(), 0, dry_run=True)
    assert (dry.removed_incomplete, dry.removed_blobs) == ([label], 1)  # m/2's blob is linked: it would stay
    assert (dry.before_bytes, dry.after_bytes) == (300_000, 200_000)
    assert f1.is_dir() and len(list((home / "blobs" / "sha256").iterdir())) == 2
    capsys.readouterr()
    assert im_main(["cache", "prune", "--max-size", "0", "--dry-run"]) == 0
    assert f"{label} (an interrupted build)" in capsys.readouterr().out
    report = prune(ModelCache(), 0)
    assert (report.removed_incomplete, report.removed_blobs, report.removed_packages) == ([label], 1, [])
    assert not f1.exists() and (f2 / "weights.onnx").stat().st_size == 200_000
    blobs = list((home / "blobs" / "sha256").iterdir())
    assert [b.stat().st_size for b in blobs] == [200_000] and os.path.samefile(blobs[0], f2 / "weights.onnx")
    assert (report.before_bytes, report.after_bytes) == (300_000, 200_000)


@pytest.mark.parametrize("package_id", ["../../outside", "other-package"])
def test_a_marker_naming_another_folder_is_ignored(srv, tmp_path: Path, package_id: str) -> None:
    """A marker is only trusted for its own folder: prune never removes the folder a tampered marker names."""
    folder = _load(srv, "m/1")
    pkg = ModelCache().packages()[0]
    (folder.parent / package_id).mkdir(parents=True, exist_ok=True)
    (folder.parent / package_id / "keep.txt").write_text("not the cache's")
    record = json.loads(pkg.marker.read_text())
    pkg.marker.write_text(json.dumps({**record, "package_id": package_id}))
    assert ModelCache().packages() == []
    report = prune(ModelCache(), 0)
    assert report.removed_packages == [] and (folder.parent / package_id / "keep.txt").is_file()


def test_parse_size() -> None:
    assert parse_size("500MB") == 500_000_000 and parse_size("1.5 GiB") == 3 << 29 and parse_size("10") == 10
    with pytest.raises(InvalidParameterError):
        parse_size("lots")


def _disable_network(monkeypatch: pytest.MonkeyPatch) -> list:
    """A socket guard: any connect attempt is recorded and fails."""
    attempts: list = []

    def guard(self, address, *args):
        attempts.append(address)
        raise OSError(f"network disabled by the test (connect to {address})")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket.socket, "connect_ex", guard)
    return attempts


def test_offline_serves_cached_model_without_network(srv, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _load(srv, "m/2")  # online once
    url = srv.url
    srv.stop()
    attempts = _disable_network(monkeypatch)
    monkeypatch.setenv("IM_OFFLINE", "1")
    reload_settings()
    md = resolve_metadata("http", "m/2", provider_options={"root": url})
    assert ModelCache().materialize(md, md.packages[0]) == folder
    for p in folder.iterdir():  # even with the package folder emptied, the blobs rebuild it offline
        p.unlink()
    assert (ModelCache().materialize(md, md.packages[0]) / "weights.onnx").is_file()
    with pytest.raises(OfflineModeError, match="never cached"):
        resolve_metadata("http", "m/3", provider_options={"root": url})
    assert not attempts
    with pytest.raises(OSError, match="network disabled"):  # the guard is live
        socket.create_connection(("127.0.0.1", 9))


def test_offline_uncached_file_is_a_clear_error(srv) -> None:
    md = resolve_metadata("http", "m/3", provider_options={"root": srv.url})
    with pytest.raises(OfflineModeError, match="not in the cache"):
        ModelCache().materialize(md, md.packages[0], offline=True)
    assert ModelCache().load_metadata("http", "m/3") == md
    assert ModelCache().load_metadata("http", "m/unknown") is None


def test_unreachable_provider_falls_back_to_snapshot(srv) -> None:
    md = resolve_metadata("http", "m/1", provider_options={"root": srv.url})
    url = srv.url
    srv.stop()
    assert resolve_metadata("http", "m/1", provider_options={"root": url, "retries": 1}) == md


def test_cache_paths_refuse_escaping_ids(srv) -> None:
    md = resolve_metadata("http", "m/1", provider_options={"root": srv.url})
    evil = md.model_copy(update={"model_id": "../../etc"})
    with pytest.raises(UnsafePathError):
        ModelCache().materialize(evil, evil.packages[0])
    with pytest.raises(UnsafePathError):
        ModelCache().save_metadata("../x", "m/1", md)


def test_link_through_escaping_symlink_is_refused_before_creating_anything(srv, tmp_path: Path) -> None:
    """A symlink inside a package folder pointing outside the cache: refused, and no folder is made at its target."""
    md = resolve_metadata("http", "m/1", provider_options={"root": srv.url})
    pkg = md.packages[0]
    nested = pkg.model_copy(update={"files": (pkg.files[0].model_copy(update={"name": "sub/deeper/weights.onnx"}),)})
    cache = ModelCache()
    folder = cache.layout.package_dir(md.model_id, pkg.package_id)
    folder.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "sub").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside the package folder"):
        cache.materialize(md, nested)
    assert list(outside.iterdir()) == []
    assert not cache.layout.marker(md.model_id, pkg.package_id).exists()


def test_an_unchanged_snapshot_is_not_rewritten_on_every_load(srv) -> None:
    md = resolve_metadata("http", "m/1", provider_options={"root": srv.url})
    path = ModelCache().layout.snapshot("http", "m/1")
    before = path.stat()
    resolve_metadata("http", "m/1", provider_options={"root": srv.url})  # same answer: same file, not replaced
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    changed = md.model_copy(update={"class_names": ("x", "y")})
    ModelCache().save_metadata("http", "m/1", changed)
    assert path.stat().st_ino != before.st_ino
    assert ModelCache().load_metadata("http", "m/1") == changed


@pytest.mark.parametrize("model_id", ["a" * 10_000, "x" * 300 + "/1", "é" * 200 + "/1"])
def test_very_long_model_ids_are_unsafe_path_errors(tmp_path: Path, model_id: str) -> None:
    """A 10,000-character id, or a segment over 255 bytes (300 ASCII, or 200 two-byte characters), is refused with
    UnsafePathError (not the OS's raw ENAMETOOLONG), and the message does not print the whole id."""
    from im_core import AutoModel

    with pytest.raises(UnsafePathError, match=r"too long|bytes per name") as info:
        AutoModel.from_pretrained(model_id, weights_provider="local", provider_options={"root": str(tmp_path)})
    assert len(str(info.value)) < 600
    with pytest.raises(UnsafePathError):
        resolve_metadata("local", model_id, provider_options={"root": str(tmp_path)})


def test_a_registry_file_name_over_255_bytes_is_refused(srv, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A registry entry whose file name has a 300-byte segment: its package is skipped with the reason, and the load
    is a clear im error (no raw OSError from the file system, no 'probably a bug')."""
    from im_core import AutoModel
    from im_core.errors import ImError, NoCompatiblePackageError

    doc_path = tmp_path / "reg" / "m" / "1" / "metadata.json"
    doc = json.loads(doc_path.read_text())
    long_name = "w" * 300 + ".onnx"
    doc["modelPackages"][0]["packageFiles"][0]["fileHandle"] = long_name
    doc_path.write_text(json.dumps(doc))
    with pytest.raises(UnsafePathError, match="too long"):
        validate_relative_path(long_name)
    with pytest.raises(UnsafePathError, match="too long"):
        validate_relative_path("sub/" + "é" * 128)  # 256 bytes
    assert validate_relative_path("sub/" + "é" * 127) == "sub/" + "é" * 127  # 254 bytes: fine
    with pytest.raises(ImError) as info:
        AutoModel.from_pretrained("m/1", weights_provider="http", provider_options={"root": srv.url})
    assert isinstance(info.value, NoCompatiblePackageError), info.value
    assert "too long" in caplog.text


@pytest.mark.parametrize("damage", ["garbage", "a-list", "missing-field", "a-folder"])
def test_a_package_whose_marker_is_unreadable_is_pruned_once_stale(
    srv, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """m/1's marker is damaged: it is not a package (list skips it) but an interrupted build, which prune removes
    (folder, marker and blob) once nothing of it changed for IM_LOCK_STALE seconds; m/2 is untouched."""
    home = ModelCache().root
    f1, f2 = _load(srv, "m/1"), _load(srv, "m/2")
    marker = {p.model_id: p for p in ModelCache().packages()}["m/1"].marker
    if damage == "garbage":
        marker.write_bytes(b"\x00\xff not json")
    elif damage == "a-list":
        marker.write_text("[]")
    elif damage == "missing-field":
        marker.write_text(json.dumps({"model_id": "m/1", "package_id": f1.name}))
    else:
        marker.unlink()
        marker.mkdir()
    assert [p.model_id for p in ModelCache().packages()] == ["m/2"]
    label = f"{f1.parent.name}/{f1.name}"
    assert prune(ModelCache(), 10**9).removed_incomplete == []  # fresh: it may be a build in progress
    assert f1.is_dir()
    old = time.time() - 120  # IM_LOCK_STALE is 60 s
    for p in (*f1.iterdir(), f1, marker):
        os.utime(p, (old, old))
    capsys.readouterr()
    assert im_main(["cache", "prune", "--max-size", "10GB"]) == 0
    assert f"{label} (an interrupted build)" in capsys.readouterr().out
    assert not f1.exists() and not marker.exists()
    assert (f2 / "weights.onnx").stat().st_size == 200_000
    assert [b.stat().st_size for b in (home / "blobs" / "sha256").iterdir()] == [200_000]
    assert _load(srv, "m/1").joinpath("weights.onnx").stat().st_size == 100_000  # and it loads again


def test_offline_snapshots_are_keyed_by_the_effective_registry(
    srv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Warm through IM_REGISTRY, then offline through provider_options naming the same registry (or the other way
    round, or with a trailing slash and retries=): the snapshot is found. Another registry's root is not."""
    from im_core import AutoModel

    monkeypatch.setenv("IM_REGISTRY", srv.url)
    reload_settings()
    assert im_main(["describe-model", "m/1", "--provider", "http"]) == 0  # m/1 through IM_REGISTRY
    resolve_metadata("http", "m/2", provider_options={"root": srv.url + "/"})  # m/2 through an option
    resolve_metadata("local", "m/3", provider_options={"root": str(tmp_path / "reg")})  # m/3 from the folder
    monkeypatch.setenv("IM_OFFLINE", "1")
    reload_settings()
    attempts = _disable_network(monkeypatch)
    for options in ({"root": srv.url}, {"root": srv.url + "/", "retries": 1}):
        md = AutoModel.describe_model("m/1", weights_provider="http", provider_options=options, print_output=False)
        assert md.model_id == "m/1"
    capsys.readouterr()
    assert im_main(["describe-model", "m/1", "--provider", "http", "--registry", srv.url, "--offline"]) == 0
    assert "m/1" in capsys.readouterr().out
    assert resolve_metadata("http", "m/2").model_id == "m/2"  # warmed with an option, found through IM_REGISTRY
    assert resolve_metadata("local", "m/3", provider_options={"root": str(tmp_path / "reg" / ".." / "reg")})
    with pytest.raises(OfflineModeError, match="never cached"):
        resolve_metadata("http", "m/1", provider_options={"root": "http://127.0.0.1:9/another-registry"})
    monkeypatch.setenv("IM_REGISTRY", "http://127.0.0.1:9/another-registry")
    reload_settings()
    with pytest.raises(OfflineModeError, match="never cached"):
        resolve_metadata("http", "m/2")
    assert not attempts


def test_prune_removes_partial_downloads_nobody_resumed_but_not_one_in_flight(tmp_path: Path, capsys) -> None:
    """A failed download keeps its ``.part`` file so that the next download of that file resumes; one nobody
    resumes is removed by prune once stale, and never while a download holds that file's lock."""
    from filelock import FileLock

    cache = ModelCache()
    cache.layout.tmp.mkdir(parents=True, exist_ok=True)
    cache.layout.locks.mkdir(parents=True, exist_ok=True)
    stale, fresh, in_flight = ("a" * 64, "b" * 64, "c" * 64)
    old = time.time() - 3600
    for key in (stale, fresh, in_flight):
        part = cache.layout.tmp / f"{key}.0123.part"
        part.write_bytes(b"x" * 1000)
        if key != fresh:
            os.utime(part, (old, old))
    holder = FileLock(str(cache.layout.locks / f"{in_flight}.lock"), thread_local=False)
    with holder:  # another download of that file is running (held in this process: flock is per open file)
        report = prune(cache, parse_size("10GB"))
    assert report.removed_partial == [f"{stale}.0123.part"]
    assert sorted(p.name.split(".")[0] for p in cache.layout.tmp.glob("*.part")) == [fresh, in_flight]
    assert im_main(["cache", "prune", "--max-size", "10GB"]) == 0
    assert f"tmp/{in_flight}.0123.part (a partial download nobody resumed)" in capsys.readouterr().out
