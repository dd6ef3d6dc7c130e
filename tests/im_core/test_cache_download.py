"""Downloads into the cache from a real loopback server: retries, truncation, checksums, dead hosts, 401/404, and
no partial file ever under a final name."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from im_core._cache import ModelCache, resolve_metadata
from im_core._config import reload_settings
from im_core.errors import (
    ChecksumMismatchError,
    CorruptedModelPackageError,
    DownloadError,
    IncompleteDownloadError,
    ModelNotFoundError,
    UnauthorizedError,
)
from im_providers import add_to_registry
from testlib import servers

MODEL = "acme/detector"
FILE = f"/{MODEL}/onnx-fp32-b1/weights.onnx"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A registry with one 1 MiB weights file, served over HTTP; returns (server, metadata, data)."""
    monkeypatch.setenv("IM_DOWNLOAD_RETRIES", "3")
    monkeypatch.setenv("IM_DOWNLOAD_TIMEOUT", "5")
    reload_settings()
    data = os.urandom(1 << 20)
    (tmp_path / "weights.onnx").write_bytes(data)
    (tmp_path / "labels.txt").write_text("a\nb\n")
    add_to_registry(
        tmp_path / "reg",
        model_id=MODEL,
        architecture="yolov8",
        task="object-detection",
        files=[tmp_path / "weights.onnx", tmp_path / "labels.txt"],
    )
    with servers.LoopbackServer(root=tmp_path / "reg") as srv:
        md = resolve_metadata("http", MODEL, provider_options={"root": srv.url})
        yield srv, md, data


def _no_partial_files(home: Path) -> None:
    """Nothing half-written is visible: no blob without its exact content, no temp file, no package file."""
    for blob in (home / "blobs" / "sha256").glob("*"):
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert not list((home / "tmp").glob("*"))
    assert not [p for p in (home / "packages").rglob("weights.onnx")]


def test_download_and_fast_path(served) -> None:
    home = ModelCache().root
    srv, md, data = served
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "weights.onnx").read_bytes() == data and (folder / "labels.txt").read_text() == "a\nb\n"
    blob = home / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()
    assert os.path.samefile(blob, folder / "weights.onnx")
    assert folder == home / "packages" / folder.parent.name / "onnx-fp32-b1"
    again = ModelCache().materialize(md, md.packages[0])  # fast path: no request
    assert again == folder and srv.count(FILE) == 1


def test_500_twice_then_success(served) -> None:
    srv, md, data = served
    srv.fail[FILE] = [500, 500]
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "weights.onnx").read_bytes() == data and srv.count(FILE) == 3


def test_truncated_once_is_retried(served) -> None:
    srv, md, data = served
    srv.truncate[FILE] = 300_000
    srv.truncate_times[FILE] = 1
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "weights.onnx").read_bytes() == data and srv.count(FILE) == 2


def test_truncated_always(served) -> None:
    home = ModelCache().root
    srv, md, _ = served
    srv.truncate[FILE] = 300_000
    with pytest.raises(IncompleteDownloadError):
        ModelCache().materialize(md, md.packages[0])
    assert srv.count(FILE) == 3
    _no_partial_files(home)


def test_checksum_mismatch(served, tmp_path: Path) -> None:
    home = ModelCache().root
    srv, md, data = served
    (Path(srv.root) / FILE.lstrip("/")).write_bytes(bytes(len(data)))  # same size, other bytes
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        ModelCache().materialize(md, md.packages[0])
    _no_partial_files(home)


def test_404_and_401_fail_at_once(served) -> None:
    home = ModelCache().root
    srv, md, _ = served
    srv.fail[FILE] = [404]
    with pytest.raises(ModelNotFoundError):
        ModelCache().materialize(md, md.packages[0])
    srv.fail[FILE] = [401]
    with pytest.raises(UnauthorizedError):
        ModelCache().materialize(md, md.packages[0])
    assert srv.count(FILE) == 2
    _no_partial_files(home)


def test_dead_server(served) -> None:
    home = ModelCache().root
    _, md, _ = served
    dead = f"http://127.0.0.1:{servers.closed_port()}"
    pkg = md.packages[0]
    files = tuple(f.model_copy(update={"url": dead + "/x/" + f.name}) for f in pkg.files)
    with pytest.raises(DownloadError, match="3 attempts"):
        ModelCache().materialize(md, pkg.model_copy(update={"files": files}))
    _no_partial_files(home)


def test_unhashed_files_need_consent_and_local_files_must_exist(served) -> None:
    _, md, data = served
    pkg = md.packages[0]
    bare = tuple(f.model_copy(update={"sha256": None, "md5": None, "size": None}) for f in pkg.files)
    unhashed = pkg.model_copy(update={"files": bare})
    with pytest.raises(DownloadError, match="allow_unhashed"):
        ModelCache().materialize(md, unhashed)
    folder = ModelCache().materialize(md, unhashed, allow_unhashed=True)
    assert (folder / "weights.onnx").read_bytes() == data
    local = pkg.model_copy(update={"package_id": "local1", "files": (pkg.files[0].model_copy(update={"url": None}),)})
    with pytest.raises(CorruptedModelPackageError):
        ModelCache().materialize(md, local)


def test_progress_bar_path(served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A forced progress bar (rich, on stderr) does not disturb the download; by default none is drawn off a TTY."""
    from im_core._cache import _download

    _, md, data = served
    assert _download.progress_enabled(None, True) is False  # pytest's stderr is not a terminal
    monkeypatch.setattr(_download, "PROGRESS_MIN_BYTES", 0)
    folder = ModelCache().materialize(md, md.packages[0], progress=True)
    assert (folder / "weights.onnx").read_bytes() == data
