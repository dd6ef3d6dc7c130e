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
    AllPackagesFailedError,
    ChecksumMismatchError,
    CorruptedModelPackageError,
    DownloadError,
    DownloadTooSlowError,
    IncompleteDownloadError,
    ModelNotFoundError,
    RetrievalError,
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


def _no_partial_files(home: Path, *, resumable: bool = False) -> None:
    """Nothing half-written is visible: no blob without its exact content, no package file, and no temp file
    (``resumable``: only ``tmp/<key>.<id>.part`` files a later load can continue, none empty)."""
    for blob in (home / "blobs" / "sha256").glob("*"):
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    left = list((home / "tmp").glob("*"))
    if resumable:
        assert all(p.name.endswith(".part") and p.stat().st_size > 0 for p in left), left
    else:
        assert not left
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
    _no_partial_files(home, resumable=True)


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
    _no_partial_files(home, resumable=True)


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


# -- gzip, trickles, redirects (issue 14: items 7, 10, 11) -------------------------------------------------------


def test_a_gzip_encoded_download_is_counted_in_raw_bytes_and_identity_is_asked(served) -> None:
    """A server that gzips the file whatever the client accepts declares the encoded length: the body is decoded,
    and the declared length is compared with the bytes that came over the wire, not the decoded ones."""
    srv, md, data = served
    srv.gzip.add(FILE)
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "weights.onnx").read_bytes() == data and srv.count(FILE) == 1
    assert [r.headers.get("accept-encoding") for r in srv.requests if r.path == FILE] == ["identity"]


def _small_model(tmp_path: Path, srv_root: Path, size: int) -> tuple[bytes, str]:
    data = os.urandom(size)
    (tmp_path / "small.onnx").write_bytes(data)
    add_to_registry(
        srv_root, model_id="acme/small", architecture="yolov8", task="object-detection", files=[tmp_path / "small.onnx"]
    )
    return data, "/acme/small/onnx-fp32-b1/small.onnx"


def test_a_trickling_download_is_abandoned_with_a_clear_error(
    served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 bytes every 50 ms (320 B/s) is below IM_DOWNLOAD_MIN_SPEED=1000 over a 0.4 s window: each attempt is
    abandoned after about one window (not when the 2 KB file is done, 6 s later), and the error says why."""
    monkeypatch.setenv("IM_DOWNLOAD_MIN_SPEED", "1000")
    monkeypatch.setenv("IM_DOWNLOAD_SPEED_WINDOW", "0.4")
    monkeypatch.setenv("IM_DOWNLOAD_RETRIES", "2")
    reload_settings()
    srv, _, _ = served
    _, path = _small_model(tmp_path, Path(srv.root), 2000)
    srv.slow[path] = 0.05
    srv.chunk = 16
    md = resolve_metadata("http", "acme/small", provider_options={"root": srv.url})
    t0 = time.monotonic()
    with pytest.raises(DownloadTooSlowError, match="IM_DOWNLOAD_MIN_SPEED") as info:
        ModelCache().materialize(md, md.packages[0])
    assert time.monotonic() - t0 < 4.0 and srv.count(path) == 2
    assert isinstance(info.value, DownloadError)


def test_a_slow_download_above_the_minimum_speed_completes(served, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("IM_DOWNLOAD_MIN_SPEED", "1000")
    monkeypatch.setenv("IM_DOWNLOAD_SPEED_WINDOW", "0.3")
    reload_settings()
    srv, _, _ = served
    data, path = _small_model(tmp_path, Path(srv.root), 4000)
    srv.slow[path] = 0.02
    srv.chunk = 128  # 6.4 KB/s, for about 0.6 s
    md = resolve_metadata("http", "acme/small", provider_options={"root": srv.url})
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "small.onnx").read_bytes() == data and srv.count(path) == 1


@pytest.mark.parametrize(
    ("location", "words"),
    [(FILE, "redirect"), ("ftp://127.0.0.1/weights.onnx", "ftp"), ("http://[::1", "URL")],
    ids=["redirect-loop", "redirect-to-ftp", "redirect-to-bad-url"],
)
def test_bad_redirects_fail_at_once_with_an_im_error(served, location: str, words: str) -> None:
    """A redirect loop, a redirect to a scheme requests cannot fetch, a malformed Location: a DownloadError at
    once (not a raw requests exception, not retried)."""
    home = ModelCache().root
    srv, md, _ = served
    srv.routes[FILE] = lambda _req: (302, {"Location": location}, b"")
    with pytest.raises(DownloadError, match=words):
        ModelCache().materialize(md, md.packages[0])
    assert srv.count(FILE) == (31 if location == FILE else 1)  # requests' 30 redirects, one attempt
    _no_partial_files(home)


# -- resuming with Range requests --------------------------------------------------------------------------------

BIG = 20_000_000  # bytes of the file the resume tests cut (scripts/measure_resume.py measures 200 MB)


@pytest.fixture
def big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A registry with one BIG-byte file; returns (server, metadata, data, path)."""
    monkeypatch.setenv("IM_DOWNLOAD_RETRIES", "2")
    reload_settings()
    data = os.urandom(BIG)
    (tmp_path / "big.onnx").write_bytes(data)
    add_to_registry(
        tmp_path / "reg",
        model_id="acme/big",
        architecture="yolov8",
        task="object-detection",
        files=[tmp_path / "big.onnx"],
    )
    with servers.LoopbackServer(root=tmp_path / "reg") as srv:
        md = resolve_metadata("http", "acme/big", provider_options={"root": srv.url})
        yield srv, md, data, "/acme/big/onnx-fp32-b1/big.onnx"


def _ranges(srv, path: str) -> list[str | None]:
    return [r.headers.get("range") for r in srv.requests if r.path == path]


def test_a_cut_download_resumes_with_a_range_request(big) -> None:
    srv, md, data, path = big
    cut = len(data) * 3 // 5
    srv.truncate[path] = cut
    srv.truncate_times[path] = 1
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "big.onnx").read_bytes() == data
    assert _ranges(srv, path) == [None, f"bytes={cut}-"]
    assert srv.bytes_sent(path) == [cut, len(data) - cut]  # the second answer sent only the missing bytes


def test_a_partial_file_left_by_a_failed_load_is_resumed_by_the_next(big, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every attempt of the first load is cut: it fails, and keeps its partial file (in tmp/, never under a final
    name). The next load continues it from where the last attempt stopped."""
    home = ModelCache().root
    srv, md, data, path = big
    step = len(data) // 4
    srv.truncate[path] = step
    with pytest.raises(IncompleteDownloadError):
        ModelCache().materialize(md, md.packages[0])
    _no_partial_files(home, resumable=True)
    assert [p.stat().st_size for p in (home / "tmp").glob("*.part")] == [2 * step]
    del srv.truncate[path]
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "big.onnx").read_bytes() == data
    assert _ranges(srv, path) == [None, f"bytes={step}-", f"bytes={2 * step}-"]
    assert srv.bytes_sent(path) == [step, step, len(data) - 2 * step]
    assert not list((home / "tmp").glob("*"))


def test_a_server_without_ranges_gets_a_full_download(big) -> None:
    srv, md, data, path = big
    srv.ranges = False
    srv.truncate[path] = 1_000_000
    srv.truncate_times[path] = 1
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "big.onnx").read_bytes() == data
    assert _ranges(srv, path) == [None, "bytes=1000000-"] and srv.bytes_sent(path) == [1_000_000, len(data)]


def test_a_resumed_file_that_fails_its_checksum_is_downloaded_again_in_full(big) -> None:
    """The partial file on disk is not a prefix of the real file (the file changed on the server, or the disk
    lied): the resumed result fails the sha256 check, so it is thrown away and fetched whole once more."""
    home = ModelCache().root
    srv, md, data, path = big
    sha = md.packages[0].files[0].sha256
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    (home / "tmp" / f"{sha}.0123abcd.part").write_bytes(bytes(1_000_000))  # left by a dead process; wrong bytes
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "big.onnx").read_bytes() == data
    assert _ranges(srv, path) == ["bytes=1000000-", None]
    assert srv.bytes_sent(path) == [len(data) - 1_000_000, len(data)]
    assert not list((home / "tmp").glob("*"))


def test_a_complete_partial_file_needs_no_request(big) -> None:
    """A process killed after its download finished but before the rename left the whole file in tmp/."""
    home = ModelCache().root
    srv, md, data, path = big
    sha = md.packages[0].files[0].sha256
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    (home / "tmp" / f"{sha}.0123abcd.part").write_bytes(data)
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "big.onnx").read_bytes() == data and srv.count(path) == 0


# -- a failed download is catchable by its class through AutoModel ------------------------------------------------


def test_a_failed_download_is_raised_as_its_own_class_by_from_pretrained(served) -> None:
    from im_core import AutoModel

    srv, _, data = served
    (Path(srv.root) / FILE.lstrip("/")).write_bytes(bytes(len(data)))  # same size, other bytes
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        AutoModel.from_pretrained(MODEL, weights_provider="http", provider_options={"root": srv.url})
    srv.fail[FILE] = [401]
    with pytest.raises(RetrievalError) as info:  # the category catches it too
        AutoModel.from_pretrained(MODEL, weights_provider="http", provider_options={"root": srv.url})
    assert isinstance(info.value, UnauthorizedError) and info.value.context["status_code"] == 401


def test_every_candidate_failing_the_same_way_raises_that_class_listing_each(served, tmp_path: Path) -> None:
    from im_core import AutoModel

    srv, _, _ = served
    for pid in ("a-first", "b-second"):
        add_to_registry(
            Path(srv.root),
            model_id="acme/two",
            architecture="yolov8",
            task="object-detection",
            files=[tmp_path / "weights.onnx"],
            package_id=pid,
        )
    for pid in ("a-first", "b-second"):
        srv.fail[f"/acme/two/{pid}/weights.onnx"] = [401]
    with pytest.raises(UnauthorizedError) as info:
        AutoModel.from_pretrained("acme/two", weights_provider="http", provider_options={"root": srv.url})
    assert "a-first" in info.value.message and "b-second" in info.value.message
    assert info.value.context["package_attempts"] == [
        ("a-first", "UnauthorizedError"),
        ("b-second", "UnauthorizedError"),
    ]
    # different failures: the aggregate error, as before
    srv.fail["/acme/two/a-first/weights.onnx"] = [401]
    srv.fail["/acme/two/b-second/weights.onnx"] = [404]
    with pytest.raises(AllPackagesFailedError):
        AutoModel.from_pretrained("acme/two", weights_provider="http", provider_options={"root": srv.url})
