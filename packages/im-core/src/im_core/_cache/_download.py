"""Fetch one file to a temp path while hashing it; verify size and checksum before anyone sees it.

``http(s)://`` URLs go through ``requests`` (streamed; retried only by :func:`request_with_retries`);
``file://`` URLs are copied (local registries). The caller renames the verified temp file into place atomically.

An HTTP download asks for the file itself (``Accept-Encoding: identity``; a server that encodes it anyway is
decoded, and its ``Content-Length`` is compared with the bytes on the wire), reads whatever has arrived (so the
lock heartbeat beats as long as bytes come, however slowly), gives an attempt up when it brings less than
``IM_DOWNLOAD_MIN_SPEED`` bytes/s over an ``IM_DOWNLOAD_SPEED_WINDOW`` window, and continues a temp file cut short
with ``Range: bytes=N-`` (verified by the whole file's checksum). On a failure of the connection the temp file is
kept for the next attempt to continue; on any other error it is removed here.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from im_core._cache._http import IncompleteBody, request_with_retries
from im_core._cache._paths import redact_url
from im_core.errors import (
    ChecksumMismatchError,
    DownloadError,
    DownloadTooSlowError,
    IncompleteDownloadError,
    ModelNotFoundError,
)

__all__ = ["Fetched", "fetch_to_file", "hash_file"]

log = logging.getLogger("im.cache")


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
    min_speed: float | None = None,
    speed_window_s: float | None = None,
) -> Fetched:
    """Download ``url`` into ``tmp_path`` and verify it against the declared size and digests.

    Resuming: when ``tmp_path`` already holds bytes (a download cut short, by this process or by one that died)
    and the file has a declared digest to verify the result, only the missing bytes are asked for
    (``Range: bytes=N-``). A server that answers 200 sends the whole file instead; a resumed file that fails its
    checksum is thrown away and downloaded once more in full. When a download fails on the connection (cut short,
    too slow, retries exhausted, interrupted), what arrived stays in ``tmp_path`` for the next attempt to continue;
    on any other failure ``tmp_path`` is removed.

    Args:
        min_speed, speed_window_s: bytes per second each window of ``speed_window_s`` seconds must bring, or the
            attempt is abandoned (default: ``IM_DOWNLOAD_MIN_SPEED`` / ``IM_DOWNLOAD_SPEED_WINDOW``; 0 turns it off).

    Raises:
        IncompleteDownloadError: the body kept ending early (every attempt).
        DownloadTooSlowError: every attempt stayed below the minimum speed.
        ChecksumMismatchError: size or digest differ from the declared ones (not retried).
        DownloadError / RetrievalError subclasses: connection failures after retries; 401/403/404 at once.
    """
    want_md5 = md5 is not None and sha256 is None  # sha256 is stronger: md5 only when it is all we have
    transfer: _Transfer | None = None
    try:
        if urlsplit(url).scheme == "file":
            fetched = _copy_local(url, tmp_path, name=name, size=size, md5=want_md5, beat=beat)
            _verify(fetched, name=name, url=url, size=size, sha256=sha256, md5=md5 if want_md5 else None)
            return fetched
        if min_speed is None or speed_window_s is None:
            from im_core._config import settings

            s = settings()
            min_speed = s.download_min_speed if min_speed is None else min_speed
            speed_window_s = s.download_speed_window_s if speed_window_s is None else speed_window_s
        transfer = _Transfer(
            url,
            tmp_path,
            name=name,
            size=size,
            want_md5=md5 is not None,
            timeout_s=timeout_s,
            retries=retries,
            beat=beat,
            progress=progress,
            min_speed=min_speed,
            speed_window_s=speed_window_s,
            resume=sha256 is not None or md5 is not None,  # only a verifiable file is spliced from two answers
        )

        def verify(fetched: Fetched) -> Fetched:
            _verify(fetched, name=name, url=url, size=size, sha256=sha256, md5=md5 if want_md5 else None)
            return fetched

        if transfer.have and size is not None and transfer.have >= size:  # complete (killed before the rename)?
            try:
                return verify(transfer.hash_partial())
            except ChecksumMismatchError:
                log.info("%s: the partial file left in %s is not the file; downloading it again", name, tmp_path.name)
                transfer.restart()
        fetched = transfer.run()
        try:
            return verify(fetched)
        except ChecksumMismatchError:
            if not transfer.resumed:
                raise
            log.warning("%s: the resumed download failed its checksum; downloading the whole file again", name)
            transfer.restart()
            return verify(transfer.run())
    except BaseException as exc:
        if transfer is None or not transfer.keep_after(exc):
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


#: bytes asked of each read of a response: read1 returns as soon as any are there, so the heartbeat, the progress
#: bar and the speed check see every byte that arrives; writes and hashing still go in CHUNK pieces.
READ = 256 << 10
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _Transfer:
    """One HTTP download into ``tmp_path`` (streamed; every retry is :func:`request_with_retries`'s one loop, so
    ``retries`` bounds the number of requests), continued across attempts with ``Range`` requests.

    ``have`` is the number of bytes at the start of ``tmp_path`` that the next request can continue from.
    """

    def __init__(
        self,
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
        min_speed: float,
        speed_window_s: float,
        resume: bool,
    ) -> None:
        self.url, self.tmp_path, self.name, self.size, self.want_md5 = url, tmp_path, name, size, want_md5
        self.timeout_s, self.retries, self.beat, self.progress = timeout_s, retries, beat, progress
        self.min_speed, self.speed_window_s, self.resume = min_speed, speed_window_s, resume
        self.have = 0
        if resume:
            with contextlib.suppress(OSError):
                self.have = tmp_path.stat().st_size
        self.asked = 0  # the offset the last request asked for (0: the whole file)
        self.resumed = False  # whether the last answer continued bytes that were already there
        self.continuable = True  # False once an answer came content-encoded (its offsets are not the file's)

    # -- state ---------------------------------------------------------------------------------------------------
    def restart(self) -> None:
        """Forget the bytes on disk: the next request asks for the whole file."""
        self.have, self.resumed = 0, False
        with contextlib.suppress(OSError):
            self.tmp_path.unlink()

    def keep_after(self, exc: BaseException) -> bool:
        """Whether ``tmp_path`` is worth keeping after ``exc`` ended the download: bytes a later attempt can
        continue, after a failure of the connection (not of the content, not of the credentials)."""
        connection = isinstance(exc, (IncompleteDownloadError, DownloadTooSlowError, KeyboardInterrupt))
        connection = connection or type(exc) is DownloadError  # retries exhausted on connection errors or 5xx
        return connection and self.resume and self.continuable and self.have > 0

    def hash_partial(self) -> Fetched:
        """The file as it is on disk (a complete download whose process died before the rename)."""
        hasher, n = StreamHasher(md5=self.want_md5), 0
        try:
            with open(self.tmp_path, "rb") as f:
                while chunk := f.read(CHUNK):
                    hasher.update(chunk)
                    n += len(chunk)
                    self.beat()
        finally:
            sha, md5 = hasher.digests()
        return Fetched(self.tmp_path, n, sha, md5)

    def _headers(self) -> dict[str, str]:
        # identity: the declared size and digests are of the file itself, and only identity bytes can be resumed
        headers = {"Accept-Encoding": "identity"}
        self.asked = self.have if self.resume and self.continuable else 0
        if self.asked:
            headers["Range"] = f"bytes={self.asked}-"
        return headers

    def _retry_status(self, status: int) -> bool:
        if status == 416 and self.asked:  # the range is past the server's file: ask for the whole file again
            log.info("%s: the server refused bytes=%d- (416); downloading the whole file", self.name, self.asked)
            self.restart()
            return True
        return False

    # -- transfer ------------------------------------------------------------------------------------------------
    def run(self) -> Fetched:
        """Download what is missing (every attempt continues what the previous ones brought)."""
        return request_with_retries(
            self.url,
            what=f"downloading {self.name}",
            headers=self._headers,
            timeout_s=self.timeout_s,
            retries=self.retries,
            stream=True,
            unavailable=DownloadError,
            on_wait=self.beat,
            consume=self._consume,
            retry_status=self._retry_status,
        )

    def _start(self, response: Any) -> int:
        """The offset the answer's body starts at (0 for a whole file); raises IncompleteBody for a 206 that does
        not continue what was asked."""
        if response.status_code != 206:
            return 0  # 200: the whole file (also the answer of a server that ignores Range)
        match = _RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        encoded = response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
        if not self.asked or encoded or match is None or int(match.group(1)) != self.asked:
            self.restart()
            raise IncompleteBody(
                f"a partial answer for other bytes than asked (Content-Range {response.headers.get('Content-Range')!r})"
            )
        return self.asked

    def _consume(self, response: Any) -> Fetched:
        import requests
        import urllib3

        start = self._start(response)
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            self.continuable = False  # decoded bytes have no offset the server knows: this answer cannot be resumed
        declared = response.headers.get("Content-Length", "")
        body_length = int(declared) if declared.isdigit() else None  # of the bytes on the wire (encoded if so)
        total = self.size
        if total is None and body_length is not None and self.continuable:
            total = start + body_length
        hasher, n = StreamHasher(md5=self.want_md5), start
        self.resumed = start > 0
        raw = response.raw
        read = getattr(raw, "read1", None)  # recent urllib3 2.x; older ones: read() of 64 KiB pieces
        pending: list[bytes] = []  # arrived, not yet written: written and hashed in CHUNK pieces
        try:
            with (
                open(self.tmp_path, "r+b" if start else "wb") as f,
                _progress_bar(self.name, total, self.progress) as bar,
            ):

                def flush() -> None:
                    data = b"".join(pending)
                    pending.clear()
                    hasher.update(data)
                    f.write(data)
                    self.have = n  # what is on disk: a later attempt (or load) continues after it

                self.have = start  # "wb" emptied the file; "r+b" keeps the bytes a 206 continues
                if start:  # the bytes already there go through the hashes first
                    f.truncate(start)
                    while chunk := f.read(CHUNK):
                        hasher.update(chunk)
                        self.beat()
                    bar(start)
                window_start, window_bytes = time.monotonic(), 0
                while True:
                    try:
                        chunk = read(READ, decode_content=True) if read else raw.read(64 << 10, decode_content=True)
                    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                        flush()  # what arrived is good
                        raise IncompleteBody(f"{type(exc).__name__} after {n} bytes", hint=self._kept_hint(n)) from None
                    if not chunk:
                        break
                    pending.append(chunk)
                    n += len(chunk)
                    if self.size is not None and n > self.size:
                        raise ChecksumMismatchError(
                            f"{self.name}: the server sent more than the declared {self.size} bytes."
                        )
                    if n - self.have >= CHUNK:
                        flush()
                    self.beat()  # on every arrival (throttled in the heartbeat): a slow download is alive
                    bar(len(chunk))
                    now = time.monotonic()
                    if self.min_speed and now - window_start >= self.speed_window_s:
                        wire = raw.tell()
                        if wire - window_bytes < self.min_speed * (now - window_start):
                            flush()
                            raise IncompleteBody(
                                f"{wire - window_bytes} bytes in the last {now - window_start:.1f} s, below "
                                f"IM_DOWNLOAD_MIN_SPEED={self.min_speed:g} bytes/s",
                                error=DownloadTooSlowError,
                                hint="The server or the network is too slow; lower IM_DOWNLOAD_MIN_SPEED (0 turns "
                                "the check off) or lengthen IM_DOWNLOAD_SPEED_WINDOW if this link is that slow. "
                                + self._kept_hint(n),
                            )
                        window_start, window_bytes = now, wire
                flush()
        finally:
            sha, md5 = hasher.digests()
        wire = raw.tell()  # bytes of the body as sent: the encoded length when the server encoded it anyway
        if body_length is not None and wire < body_length:
            raise IncompleteBody(f"{wire} of {body_length} bytes", hint=self._kept_hint(n))
        if self.size is not None and n < self.size:
            raise IncompleteBody(f"{n} of {self.size} bytes", hint=self._kept_hint(n))
        return Fetched(self.tmp_path, n, sha, md5)

    def _kept_hint(self, n: int) -> str:
        if self.resume and self.continuable and n:
            return f"the {n} bytes that arrived are kept, and the next attempt continues from there."
        return "partial data was discarded."


@contextlib.contextmanager
def _progress_bar(name: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr for big files when enabled, else a no-op ``advance(n_bytes)``."""
    if not enabled or (total is not None and total < PROGRESS_MIN_BYTES):
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    ) as bar:
        task = bar.add_task(escape(name), total=total)  # a file name with "[...]" is text, not markup
        yield lambda n: bar.advance(task, n)


def progress_enabled(requested: bool | None, show_setting: bool) -> bool:
    """Whether to draw bars: ``requested`` wins; by default only when stderr is a terminal and IM_PROGRESS is on."""
    if requested is not None:
        return requested
    return show_setting and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
