"""Cross-process locks that wait as long as the holder is alive and making progress.

A lock is ``locks/<key>.lock`` (``filelock``: the OS releases it when the holder dies, even on SIGKILL) plus a
heartbeat file ``locks/<key>.beat`` whose mtime the holder bumps while it works (whenever bytes arrive, at most
every 0.25 s; each retry).
A waiter gives up with :class:`CacheLockTimeoutError` only after ``stale_s`` seconds with neither the lock nor a
heartbeat: a slow download of a big file never times out a waiting process.

A process that waits for a lock while it holds others (a load holds its package's lock while it waits for a blob
another process is downloading) passes ``on_wait``: it bumps the heartbeats of the locks it holds at every poll,
so its own waiters see it alive for as long as the lock it waits on shows progress (it gives up itself, and
releases them, once that lock goes stale).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from im_core.errors import CacheLockTimeoutError

__all__ = ["Heartbeat", "exclusive_use", "progress_lock", "shared_use"]

log = logging.getLogger("im.cache")

_POLL_S = 0.2
_ANNOUNCE_AFTER_S = 3.0


class Heartbeat:
    """The holder's side: ``beat()`` bumps the heartbeat file's mtime (cheap; at most every 0.25 s)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last = 0.0
        path.write_text(f"{os.getpid()}\n")

    def beat(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 0.25:
            self._last = now
            with contextlib.suppress(OSError):
                os.utime(self.path)


def _beat_state(path: Path) -> tuple[float, str]:
    try:
        st = path.stat()
        return st.st_mtime, path.read_text().strip()
    except OSError:
        return 0.0, "?"


@contextlib.contextmanager
def progress_lock(
    locks_dir: Path,
    key: str,
    *,
    what: str,
    stale_s: float,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[Heartbeat]:
    """Hold the lock ``key``; yield a :class:`Heartbeat` the holder must bump while it works.

    Args:
        what: words for the waiting message and the timeout error ("weights.onnx of model 'x'").
        stale_s: seconds without any heartbeat after which the holder is considered stuck.
        on_wait: called at every poll (about every 0.2 s) while the lock is held by another process: the caller's
            own heartbeats (of locks it already holds), so that waiting on a live holder counts as progress.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(locks_dir / f"{key}.lock"), thread_local=False)
    beat_path = locks_dir / f"{key}.beat"
    started = time.monotonic()
    last_change = time.time()
    last_seen = -1.0
    announced = False
    while True:
        try:
            lock.acquire(timeout=_POLL_S)
            break
        except Timeout:
            if on_wait is not None:
                on_wait()
            mtime, holder = _beat_state(beat_path)
            now = time.time()
            if mtime != last_seen:
                last_seen = mtime
                last_change = max(last_change, min(now, mtime)) if mtime else last_change
            if not announced and time.monotonic() - started > _ANNOUNCE_AFTER_S:
                announced = True
                log.warning("Waiting for process %s, which is fetching %s.", holder, what)
            if now - max(last_change, mtime) > stale_s:
                raise CacheLockTimeoutError(
                    f"Gave up waiting for {what}: process {holder} holds the cache lock {key!r} and showed no "
                    f"progress for {stale_s:.0f} s. If no other im process is running, delete "
                    f"{locks_dir / (key + '.lock')}; raise IM_LOCK_STALE to wait longer.",
                    key=key,
                ) from None
    try:
        heartbeat = Heartbeat(beat_path)
        yield heartbeat
    finally:
        lock.release()


# -- "in use" locks: shared by loads while a backend opens a package, exclusive for eviction ----------------------
# ``flock`` locks (POSIX): released by the OS when the holder dies, and shared locks do not exclude each other, so
# any number of loads can use a package while ``prune`` cannot take it. Where ``fcntl`` is missing (Windows) these
# are no-ops and eviction falls back to sparing recently used packages (see ModelCache.evict).
try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None  # type: ignore[assignment]

#: whether :func:`shared_use` and :func:`exclusive_use` really lock on this platform
HAS_USE_LOCKS = _fcntl is not None


def _open_lock_file(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # a read-only cache: nothing can evict from it either
        return None


@contextlib.contextmanager
def shared_use(path: Path) -> Iterator[None]:
    """Hold a shared lock on ``path`` (created if needed) while inside: waits only while an eviction holds it."""
    fd = _open_lock_file(path) if _fcntl is not None else None
    if fd is None:
        yield
        return
    try:
        _fcntl.flock(fd, _fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def exclusive_use(path: Path) -> Iterator[bool]:
    """Try to hold ``path`` exclusively, without waiting; yields False when a load holds it shared (in use)."""
    fd = _open_lock_file(path) if _fcntl is not None else None
    if fd is None:
        yield True
        return
    try:
        try:
            _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
