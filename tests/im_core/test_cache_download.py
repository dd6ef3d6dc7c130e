"""Downloads into the cache from a real loopback server: retries, truncation, checksums, dead hosts, 401/404, and
no partial file ever under a final name."""

from __future__ import annotations

import email.utils
import hashlib
import os
import time
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


def test_always_500_makes_exactly_retries_requests(served) -> None:
    """IM_DOWNLOAD_RETRIES is the total number of requests per file (documented contract), not retries squared."""
    home = ModelCache().root
    srv, md, _ = served
    srv.fail[FILE] = [500] * 20
    with pytest.raises(DownloadError, match="3 attempts"):
        ModelCache().materialize(md, md.packages[0])
    assert srv.count(FILE) == 3
    _no_partial_files(home)


def test_mixed_failures_share_one_budget(served) -> None:
    """500, 500, then bodies cut short: one retry loop, so still exactly 3 requests (no nested loop multiplying)."""
    home = ModelCache().root
    srv, md, _ = served
    srv.fail[FILE] = [500, 500]
    srv.truncate[FILE] = 300_000
    with pytest.raises(IncompleteDownloadError, match="3 attempts"):
        ModelCache().materialize(md, md.packages[0])
    assert srv.count(FILE) == 3
    _no_partial_files(home)


def test_500_then_truncated_then_success(served) -> None:
    srv, md, data = served
    srv.fail[FILE] = [500]
    srv.truncate[FILE] = 300_000
    srv.truncate_times[FILE] = 1
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "weights.onnx").read_bytes() == data and srv.count(FILE) == 3


def _gap(srv) -> float:
    """Seconds between the first and the second request to FILE."""
    times = [t for r, t in zip(srv.requests, srv.times) if r.path == FILE]
    return times[1] - times[0]


@pytest.mark.parametrize(
    ("status", "header", "at_least", "at_most"),
    [
        (503, lambda: "1", 0.95, 2.5),  # delay-seconds
        (429, lambda: email.utils.formatdate(time.time() + 3, usegmt=True), 1.0, 4.0),  # HTTP-date, 2-3 s ahead
        (500, lambda: "5", 0.0, 1.5),  # Retry-After only means something on 429/503: plain backoff
        (503, lambda: "0", 0.19, 1.5),  # "retry now" never cuts our own backoff (0.25 s +-20%)
        (429, lambda: email.utils.formatdate(time.time() - 60, usegmt=True), 0.19, 1.5),  # a date in the past
    ],
)
def test_retry_after_is_honoured(served, status, header, at_least, at_most) -> None:
    srv, md, data = served
    srv.fail[FILE] = [status]
    srv.fail_headers[FILE] = {"Retry-After": header()}
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "weights.onnx").read_bytes() == data and srv.count(FILE) == 2
    assert at_least <= _gap(srv) <= at_most


def test_retry_after_is_bounded(served, monkeypatch: pytest.MonkeyPatch) -> None:
    from im_core._cache import _http

    monkeypatch.setattr(_http, "MAX_RETRY_AFTER_S", 0.3)
    srv, md, data = served
    srv.fail[FILE] = [503]
    srv.fail_headers[FILE] = {"Retry-After": "3600"}
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "weights.onnx").read_bytes() == data and srv.count(FILE) == 2
    assert 0.25 <= _gap(srv) <= 2.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("86400", 30.0),  # bounded by MAX_RETRY_AFTER_S
        ("Thu, 01 Jan 1970 00:00:10 GMT", 0.0),  # a date in the past: no wait
        ("Thu, 01 Jan 1970 00:00:20 GMT", 5.0),  # measured against now=15
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after_parsing(value, expected) -> None:
    from im_core._cache._http import retry_after_delay

    assert retry_after_delay(value, now=15.0) == expected


def test_md5_only_mismatch_is_detected(served) -> None:
    """A registry that only declares md5 (like Roboflow's): a wrong file is refused and never lands anywhere."""
    home = ModelCache().root
    srv, md, data = served
    pkg = md.packages[0]
    md5_only = pkg.model_copy(update={"files": tuple(f.model_copy(update={"sha256": None}) for f in pkg.files)})
    assert all(f.md5 and f.sha256 is None for f in md5_only.files)
    (Path(srv.root) / FILE.lstrip("/")).write_bytes(bytes(len(data)))  # same size, other bytes
    with pytest.raises(ChecksumMismatchError, match="md5"):
        ModelCache().materialize(md, md5_only)
    _no_partial_files(home)
    assert not (home / "index" / f"md5-{md5_only.files[0].md5}").exists()


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
