"""Fetch one file to a temp path while hashing it; verify size and checksum before anyone sees it.

``http(s)://`` URLs go through ``requests`` (streamed; retried only by :func:`request_with_retries`);
``file://`` URLs are copied (local registries). The caller renames the verified temp file into place atomically;
on any error the temp file is removed here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from im_core._cache._http import IncompleteBody, request_with_retries
from im_core._cache._paths import redact_url
from im_core.errors import ChecksumMismatchError, DownloadError, IncompleteDownloadError, ModelNotFoundError

__all__ = ["Fetched", "fetch_to_file", "hash_file"]


CHUNK = 1 << 20  # bytes per read
PROGRESS_MIN_BYTES = 16 << 20  # files smaller than this never get a progress bar


@dataclass(frozen=True)
class Fetched:
    """A verified temp file: its size in bytes and lower-case hex digests."""

    path: Path
    size: int
    sha256: str
    md5: str | None


class StreamHasher:
    """sha256 (and md5 when asked) of a byte stream, computed on background threads.

    ``hashlib`` releases the GIL for large buffers, so hashing overlaps with socket reads and disk writes instead
    of adding to them. Feed 1 MiB chunks with :meth:`update`; :meth:`digests` waits and returns hex strings.
    """

    def __init__(self, *, md5: bool) -> None:
        import queue
        import threading

        self._hashes = [hashlib.sha256()] + ([hashlib.md5(usedforsecurity=False)] if md5 else [])
        self._queues: list[queue.Queue[bytes | None]] = [queue.Queue(maxsize=32) for _ in self._hashes]
        self._threads = [
            threading.Thread(target=self._run, args=(h, q), daemon=True, name="im-hash")
            for h, q in zip(self._hashes, self._queues)
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _run(h: Any, q: Any) -> None:
        while (chunk := q.get()) is not None:
            h.update(chunk)

    def update(self, chunk: bytes) -> None:
        for q in self._queues:
            q.put(chunk)

    def close(self) -> None:
        for q in self._queues:
            q.put(None)
        for t in self._threads:
            t.join()

    def digests(self) -> tuple[str, str | None]:
        self.close()
        return self._hashes[0].hexdigest(), (self._hashes[1].hexdigest() if len(self._hashes) > 1 else None)


def hash_file(path: Path, *, md5: bool = False) -> tuple[str, str | None, int]:
    """``(sha256, md5 or None, size in bytes)`` of a file, read in 1 MiB chunks."""
    h, m, n = hashlib.sha256(), (hashlib.md5(usedforsecurity=False) if md5 else None), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            if m is not None:
                m.update(chunk)
            n += len(chunk)
    return h.hexdigest(), (m.hexdigest() if m is not None else None), n


def fetch_to_file(
    url: str,
    tmp_path: Path,
    *,
    name: str,
    size: int | None,
    sha256: str | None,
    md5: str | None,
    timeout_s: float,
    retries: int,
    beat: Callable[[], None],
    progress: bool,
) -> Fetched:
    """Download ``url`` into ``tmp_path`` and verify it against the declared size and digests.

    Raises:
        IncompleteDownloadError: the body kept ending early (every attempt).
        ChecksumMismatchError: size or digest differ from the declared ones (not retried).
        DownloadError / RetrievalError subclasses: connection failures after retries; 401/403/404 at once.
    """
    want_md5 = md5 is not None and sha256 is None  # sha256 is stronger: md5 only when it is all we have
    try:
        if urlsplit(url).scheme == "file":
            fetched = _copy_local(url, tmp_path, name=name, size=size, md5=want_md5, beat=beat)
        else:
            fetched = _download_http(
                url,
                tmp_path,
                name=name,
                size=size,
                want_md5=md5 is not None,
                timeout_s=timeout_s,
                retries=retries,
                beat=beat,
                progress=progress,
            )
        _verify(fetched, name=name, url=url, size=size, sha256=sha256, md5=md5 if want_md5 else None)
        return fetched
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _verify(fetched: Fetched, *, name: str, url: str, size: int | None, sha256: str | None, md5: str | None) -> None:
    where = redact_url(url)
    if size is not None and fetched.size < size:
        raise IncompleteDownloadError(f"{name} from {where}: got {fetched.size} of {size} bytes.")
    if size is not None and fetched.size != size:
        raise ChecksumMismatchError(f"{name} from {where}: got {fetched.size} bytes, the metadata says {size}.")
    if sha256 is not None and fetched.sha256 != sha256:
        raise ChecksumMismatchError(
            f"{name} from {where}: sha256 {fetched.sha256} differs from the declared {sha256}; the file was "
            "discarded. The registry entry or the file on the server is wrong (or was tampered with)."
        )
    if md5 is not None and fetched.md5 != md5:
        raise ChecksumMismatchError(
            f"{name} from {where}: md5 {fetched.md5} differs from the declared {md5}; the file was discarded."
        )


def _copy_local(
    url: str, tmp_path: Path, *, name: str, size: int | None, md5: bool, beat: Callable[[], None]
) -> Fetched:
    from urllib.request import url2pathname  # imports http.client and ssl: only when a file is copied

    source = Path(url2pathname(urlsplit(url).path))  # url2pathname decodes %-escapes (once)
    if not source.is_file():
        raise ModelNotFoundError(f"{name}: the registry lists {source} but that file does not exist.")
    h, m, n = hashlib.sha256(), (hashlib.md5(usedforsecurity=False) if md5 else None), 0
    with open(source, "rb") as src, open(tmp_path, "wb") as dst:
        while chunk := src.read(CHUNK):
            dst.write(chunk)
            h.update(chunk)
            if m is not None:
                m.update(chunk)
            n += len(chunk)
            beat()
    return Fetched(tmp_path, n, h.hexdigest(), m.hexdigest() if m is not None else None)


def _download_http(
    url: str,
    tmp_path: Path,
    *,
    name: str,
    size: int | None,
    want_md5: bool,
    timeout_s: float,
    retries: int,
    beat: Callable[[], None],
    progress: bool,
) -> Fetched:
    """Stream ``url`` into ``tmp_path``; every retry (connection, status, body cut short) is the one loop's in
    :func:`request_with_retries`, so ``retries`` bounds the number of requests."""

    def consume(response: Any) -> Fetched:
        return _stream(response, tmp_path, name=name, size=size, want_md5=want_md5, beat=beat, progress=progress)

    return request_with_retries(
        url,
        what=f"downloading {name}",
        timeout_s=timeout_s,
        retries=retries,
        stream=True,
        unavailable=DownloadError,
        on_wait=beat,
        consume=consume,
    )


def _stream(
    response: Any,
    tmp_path: Path,
    *,
    name: str,
    size: int | None,
    want_md5: bool,
    beat: Callable[[], None],
    progress: bool,
) -> Fetched:
    import requests
    import urllib3

    declared = response.headers.get("Content-Length")
    total = size if size is not None else (int(declared) if declared and declared.isdigit() else None)
    hasher, n = StreamHasher(md5=want_md5), 0
    try:
        with open(tmp_path, "wb") as f, _progress_bar(name, total, progress) as advance:
            try:
                for chunk in response.iter_content(chunk_size=CHUNK):
                    hasher.update(chunk)
                    f.write(chunk)
                    n += len(chunk)
                    if size is not None and n > size:
                        raise ChecksumMismatchError(f"{name}: the server sent more than the declared {size} bytes.")
                    beat()
                    advance(len(chunk))
            except (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError) as exc:
                raise IncompleteBody(f"{type(exc).__name__} after {n} bytes") from None
    finally:
        sha, md5 = hasher.digests()
    if declared and declared.isdigit() and n < int(declared):
        raise IncompleteBody(f"{n} of {declared} bytes")
    if size is not None and n < size:
        raise IncompleteBody(f"{n} of {size} bytes")
    return Fetched(tmp_path, n, sha, md5)


@contextlib.contextmanager
def _progress_bar(name: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr for big files when enabled, else a no-op ``advance(n_bytes)``."""
    if not enabled or (total is not None and total < PROGRESS_MIN_BYTES):
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    ) as bar:
        task = bar.add_task(name, total=total)
        yield lambda n: bar.advance(task, n)


def progress_enabled(requested: bool | None, show_setting: bool) -> bool:
    """Whether to draw bars: ``requested`` wins; by default only when stderr is a terminal and IM_PROGRESS is on."""
    if requested is not None:
        return requested
    return show_setting and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
