"""The model cache: verified content-addressed blobs, package folders built from them, metadata snapshots.

See :mod:`im_core._cache._paths` for the layout. A package folder is complete when its marker exists and every
file has the recorded size; that check needs no network and no hashing (``im cache verify`` re-hashes).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from im_core._cache._download import fetch_to_file, hash_file, progress_enabled
from im_core._cache._locks import HAS_USE_LOCKS, exclusive_use, progress_lock, shared_use
from im_core._cache._paths import CacheLayout, model_slug, redact_url, scrub, validate_model_id
from im_core._config import settings
from im_core._json import load_json
from im_core._metadata import FileSpec, ModelMetadata, ModelPackage
from im_core.errors import (
    CacheStorageError,
    ConfigurationError,
    CorruptedModelPackageError,
    DownloadError,
    ImError,
    MalformedMetadataError,
    OfflineModeError,
    UnsafePathError,
)

__all__ = ["CachedPackage", "ModelCache", "atomic_write"]

log = logging.getLogger("im.cache")

MARKER_FORMAT = 1
SNAPSHOT_FORMAT = 1
#: query parameters that carry credentials; dropped from URLs before a snapshot is written.
SECRET_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token", "auth", "password"})


@dataclass(frozen=True)
class CachedPackage:
    """A complete package folder in the cache.

    Attributes:
        size_bytes: sum of its files' sizes (blobs shared with other packages are counted in each).
        last_used: POSIX time (seconds) of the last ``materialize`` that returned it.
    """

    model_id: str
    package_id: str
    provider: str | None
    path: Path
    marker: Path
    size_bytes: int
    last_used: float
    files: tuple[dict[str, Any], ...]


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a unique temp file in the same folder and a rename: readers see the old
    content or the new, never a partial file (folders are created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


#: what reading a damaged completion marker can raise
_MARKER_ERRORS = (OSError, ValueError, KeyError, TypeError, UnsafePathError)

_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # what model_slug and a safe package id look like


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _marker_of(folder: Path) -> Path:
    """The completion marker of the package folder ``packages/<slug>/<package_id>``."""
    return folder.parent / f".{folder.name}.complete.json"


def newest_mtime(folder: Path) -> float:
    """The latest mtime (POSIX seconds) of ``folder`` and everything under it (links not followed); adding a
    hard link updates its folder's mtime, so this is when the folder was last built into."""
    newest = 0.0
    for dirpath, dirs, names in os.walk(folder):
        for name in (".", *dirs, *names):
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
    return newest


def last_change(folder: Path) -> float:
    """When the package folder ``folder`` or its marker (present but unusable) last changed (POSIX seconds)."""
    try:
        marker = _marker_of(folder).lstat().st_mtime
    except OSError:
        marker = 0.0
    return max(newest_mtime(folder), marker)


def _clean_url(url: str | None, secrets: tuple[str | None, ...]) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in SECRET_PARAMS]
    cleaned = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, urlencode(query), ""))
    return scrub(cleaned, secrets)


#: IM_HOME folders found usable by :meth:`ModelCache.check_home` in this process (each is checked once)
_HOMES_CHECKED: set[str] = set()
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def human_bytes(n: float) -> str:
    """``n`` bytes as ``"512 B"``, ``"1.5 MB"``, ``"2.0 GB"`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - the loop always returns


def _free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


class ModelCache:
    """The cache under ``home`` (default ``settings().home``, i.e. ``IM_HOME``)."""

    def __init__(self, home: Path | None = None) -> None:
        self.root = Path(home) if home is not None else settings().home
        self.layout = CacheLayout(self.root)

    # -- the cache folder itself -------------------------------------------------------------------------------
    def check_home(self) -> None:
        """Raise :class:`ConfigurationError` if ``IM_HOME`` (or the nearest of its parents that exists) is not a
        folder; it is created later, when something is written. Checked once per process and folder."""
        key = str(self.root)
        if key in _HOMES_CHECKED:
            return
        probe = self.root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            where = "is a file" if probe == self.root else f"cannot be created: {probe} is a file"
            raise ConfigurationError(
                f"IM_HOME={self.root} {where}, not a folder; the model cache needs a folder. Point IM_HOME at a "
                "folder (it is created if missing), or move that file away."
            )
        _HOMES_CHECKED.add(key)

    def storage_error(self, exc: OSError, action: str, *, needed: int | None = None) -> ImError | None:
        """The im error for an ``OSError`` raised while writing under ``IM_HOME`` (``None`` if it is not about
        storage: the caller re-raises it). ``action`` completes "while ..."; ``needed`` is the bytes still to
        store."""
        free = _free_bytes(self.root)
        space = f"{human_bytes(free)} free" if free is not None else "free space unknown"
        need = f", {human_bytes(needed)} needed" if needed else ""
        home = f"IM_HOME={self.root}"
        if exc.errno in _NO_SPACE:
            return CacheStorageError(
                f"The disk holding {home} is full ({space}{need}) while {action}. Free space (im cache prune "
                "--max-size SIZE evicts least-recently-used models) or point IM_HOME at a disk with room.",
                free_bytes=free,
                needed_bytes=needed,
            )
        if exc.errno in _READ_ONLY:
            return CacheStorageError(
                f"{home} is read-only or not writable by this user ({exc.strerror}: {exc.filename}) while "
                f"{action}. Packages already in the cache still load from it; to fetch new ones, make it writable "
                "or point IM_HOME at a writable folder.",
                free_bytes=free,
                needed_bytes=needed,
            )
        if exc.errno == errno.EFBIG:
            return CacheStorageError(
                f"A file is too large for the filesystem of {home} or for this process's file-size limit "
                f"(ulimit -f) while {action} ({space}{need}). Raise the limit or point IM_HOME at another disk.",
                free_bytes=free,
                needed_bytes=needed,
            )
        if exc.errno in (errno.ENOTDIR, errno.EEXIST) and exc.filename and str(exc.filename).startswith(str(self.root)):
            return ConfigurationError(
                f"{exc.filename} is in the way inside {home} ({exc.strerror}) while {action}: a file stands where "
                "the cache needs a folder. Remove it, or point IM_HOME at another folder."
            )
        return None

    def bytes_to_fetch(self, package: ModelPackage, *, allow_unhashed: bool = False) -> int:
        """Bytes of ``package``'s files whose blob is not cached (files of unknown size count 0)."""
        total = 0
        for spec in package.files:
            if spec.url is None or spec.size is None:
                continue
            try:
                index_key = self._index_key(spec, "", allow_unhashed)
            except DownloadError:
                continue
            if self._lookup(spec, index_key) is None:
                total += spec.size
        return total

    def has_files(self, package: ModelPackage) -> bool:
        """Whether every downloadable file of ``package`` is already in the cache (so loading it needs no URL)."""
        for spec in package.files:
            if spec.url is None:
                continue
            try:
                index_key = self._index_key(spec, "", False)
            except DownloadError:
                return False
            if self._lookup(spec, index_key) is None:
                return False
        return True

    # -- packages ------------------------------------------------------------------------------------------
    def materialize(
        self,
        metadata: ModelMetadata,
        package: ModelPackage,
        *,
        offline: bool | None = None,
        progress: bool | None = None,
        allow_unhashed: bool = False,
    ) -> Path:
        """Make every file of ``package`` present and verified; return the package folder.

        Files are named by ``FileSpec.name`` inside ``IM_HOME/packages/<slug>/<package_id>/`` (hard links to
        ``blobs/sha256/<hex>``, copies where links are impossible). A complete folder is returned at once: no
        network, no hashing. Offline, a missing file raises :class:`OfflineModeError`.

        Locking (shared with ``prune``): the package's lock is held while the folder is checked, built and marked
        complete; each blob's lock (key: its sha256) is held while it is looked up and linked, so ``prune`` never
        deletes a blob between the moment a load finds it and the moment the load has linked it.

        Raises:
            OfflineModeError: offline and a file is not cached.
            CorruptedModelPackageError: a local file (``url`` None) is missing or differs from its digest.
            DownloadError (and subclasses), RetrievalError subclasses (401/403/404): fetching failed.
            CacheStorageError: ``IM_HOME`` is full (checked before downloading, from the declared sizes, and while
                writing), read-only, or a file is too large for it; the message names the free and needed bytes.
            ConfigurationError: ``IM_HOME`` is a file, not a folder.
        """
        s = settings()
        offline = s.offline if offline is None else offline
        model_id = validate_model_id(metadata.model_id)
        pkg_dir = self.layout.package_dir(model_id, package.package_id)
        marker = self.layout.marker(model_id, package.package_id)
        self.check_home()
        complete = self._is_complete(marker, pkg_dir, package)
        if complete and not self._writable():  # a read-only cache: nothing can prune it, and no lock can be taken
            return pkg_dir
        what = f"model {model_id!r} package {package.package_id!r}"
        try:
            return self._materialize(
                metadata,
                package,
                pkg_dir,
                marker,
                what=what,
                offline=offline,
                progress=progress,
                allow_unhashed=allow_unhashed,
            )
        except OSError as exc:
            needed = None if offline else self.bytes_to_fetch(package, allow_unhashed=allow_unhashed)
            error = self.storage_error(exc, f"storing {what}", needed=needed)
            if error is None:
                raise
            raise error from exc

    def _materialize(
        self,
        metadata: ModelMetadata,
        package: ModelPackage,
        pkg_dir: Path,
        marker: Path,
        *,
        what: str,
        offline: bool,
        progress: bool | None,
        allow_unhashed: bool,
    ) -> Path:
        s = settings()
        model_id = metadata.model_id
        self.layout.ensure()
        with self.package_lock(model_id, package.package_id, what=what) as pkg_hb:
            # checked again under the lock, even when it was incomplete: a load that waited for this lock while
            # another built the package finds it complete and does not build it again
            if self._is_complete(marker, pkg_dir, package):
                with contextlib.suppress(OSError):
                    os.utime(marker)
                return pkg_dir
            show = progress_enabled(progress, s.progress)
            if not offline:
                self._check_space(package, what=what, allow_unhashed=allow_unhashed)
            entries: list[dict[str, Any]] = []
            for spec in package.files:
                if spec.url is None:
                    entries.append(self._local_entry(pkg_dir, spec, what))
                    continue
                sha = self._ensure_linked(
                    spec,
                    pkg_dir,
                    what=what,
                    offline=offline,
                    progress=show,
                    allow_unhashed=allow_unhashed,
                    beat=pkg_hb.beat,
                )
                size = (pkg_dir / spec.name).stat().st_size
                entries.append({"name": spec.name, "size": size, "sha256": sha, "md5": spec.md5, "blob": True})
            record = {
                "format": MARKER_FORMAT,
                "provider": metadata.provider,
                "model_id": model_id,
                "package_id": package.package_id,
                "backend": package.backend,
                "completed_at": time.time(),
                "files": entries,
            }
            atomic_write(marker, json.dumps(record, indent=1))
        log.info("%s is ready in %s", what, pkg_dir)
        return pkg_dir

    def _check_space(self, package: ModelPackage, *, what: str, allow_unhashed: bool) -> None:
        """Refuse a download that cannot fit before it starts (declared sizes of files not cached vs free space)."""
        needed = self.bytes_to_fetch(package, allow_unhashed=allow_unhashed)
        free = _free_bytes(self.root)
        if needed and free is not None and needed > free:
            raise CacheStorageError(
                f"Not enough space for {what} under IM_HOME={self.root}: {human_bytes(free)} free, "
                f"{human_bytes(needed)} needed ({needed:,} bytes to download). Free space (im cache prune --max-size "
                "SIZE evicts least-recently-used models) or point IM_HOME at a disk with room.",
                free_bytes=free,
                needed_bytes=needed,
            )

    def _writable(self) -> bool:
        target = self.layout.locks if self.layout.locks.is_dir() else self.root
        return os.access(target, os.W_OK)

    @staticmethod
    def package_lock_key(model_id: str, package_id: str) -> str:
        """The lock key of a package folder (``locks/<key>.lock``)."""
        return f"pkg-{model_slug(model_id)}-{package_id}"

    def package_lock(self, model_id: str, package_id: str, *, what: str) -> contextlib.AbstractContextManager[Any]:
        """Hold the lock of a package folder (``materialize`` builds and marks it complete under it; ``prune``
        evicts under it). Yields a heartbeat with ``beat()``."""
        return self.package_dir_lock(self.layout.package_dir(model_id, package_id), what=what)

    def package_dir_lock(self, pkg_dir: Path, *, what: str) -> contextlib.AbstractContextManager[Any]:
        """The lock of the package folder ``pkg_dir`` (``packages/<slug>/<package_id>``), found from the folder
        alone: ``prune`` takes it to remove a folder that has no marker, hence no model id."""
        key = f"pkg-{pkg_dir.parent.name}-{pkg_dir.name}"  # == package_lock_key(model_id, package_id)
        return progress_lock(self.layout.locks, key, what=what, stale_s=settings().lock_stale_s)

    def in_use(self, model_id: str, package_id: str) -> contextlib.AbstractContextManager[None]:
        """Mark a package as in use while inside (a shared lock, ``locks/<key>.use``): a load holds it from before
        ``materialize`` until the backend has opened the files, and ``evict`` (``prune``) keeps a package whose lock
        it cannot take exclusively. A read-only cache takes no lock (nothing can evict from it)."""
        with contextlib.suppress(OSError):  # the first load into an empty cache: the lock needs its folder
            self.layout.locks.mkdir(parents=True, exist_ok=True)
        return shared_use(self.layout.locks / f"{self.package_lock_key(model_id, package_id)}.use")

    def blob_lock(
        self, sha256: str, *, what: str, on_wait: Callable[[], None] | None = None
    ) -> contextlib.AbstractContextManager[Any]:
        """Hold the lock of one blob (its sha256 is the key, as for a download that declares that sha256).

        ``on_wait`` (the heartbeats of locks the caller holds) is called while another process holds it.
        """
        self.layout.blob(sha256)  # validates the hex
        return progress_lock(self.layout.locks, sha256, what=what, stale_s=settings().lock_stale_s, on_wait=on_wait)

    def _is_complete(self, marker: Path, pkg_dir: Path, package: ModelPackage) -> bool:
        try:
            record = json.loads(marker.read_text())
            files = {f["name"]: f for f in record["files"]}
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if set(files) != {f.name for f in package.files}:
            return False
        for spec in package.files:
            entry = files[spec.name]
            if (spec.sha256 and entry.get("sha256") != spec.sha256) or (spec.md5 and entry.get("md5") != spec.md5):
                return False
            if spec.size is not None and entry.get("size") != spec.size:
                return False
            try:
                if (pkg_dir / spec.name).stat().st_size != entry.get("size"):
                    return False
            except OSError:
                return False
        return True

    def _local_entry(self, pkg_dir: Path, spec: FileSpec, what: str) -> dict[str, Any]:
        path = pkg_dir / spec.name
        if not path.is_file():
            raise CorruptedModelPackageError(
                f"{spec.name} of {what} has no URL and is not in {pkg_dir}; the package is incomplete."
            )
        sha, md5, size = hash_file(path, md5=spec.md5 is not None)
        if (
            (spec.sha256 and sha != spec.sha256)
            or (spec.md5 and md5 != spec.md5)
            or (spec.size is not None and size != spec.size)
        ):
            raise CorruptedModelPackageError(f"{spec.name} of {what} differs from its declared size or digest.")
        return {"name": spec.name, "size": size, "sha256": sha, "md5": spec.md5, "blob": False}

    def _lookup(self, spec: FileSpec, index_key: str | None) -> str | None:
        sha = spec.sha256
        if sha is None and index_key is not None:
            try:
                sha = (self.layout.index / index_key).read_text().strip()
                self.layout.blob(sha)
            except (OSError, UnsafePathError):
                return None
        if sha is None:
            return None
        try:
            size = self.layout.blob(sha).stat().st_size
        except OSError:
            return None
        return sha if spec.size is None or size == spec.size else None

    def _index_key(self, spec: FileSpec, what: str, allow_unhashed: bool) -> str | None:
        """The ``index/`` key of a file without sha256 (``md5-<hex>`` or ``url-<hash>``); None when it has one."""
        assert spec.url is not None
        if spec.sha256 is not None:
            return None
        if spec.md5 is not None:
            return f"md5-{spec.md5}"
        if allow_unhashed:
            return f"url-{hashlib.sha256(spec.url.encode()).hexdigest()[:40]}"
        raise DownloadError(
            f"{spec.name} of {what} has no sha256 or md5 in its metadata, so it cannot be verified; pass "
            "allow_unhashed=True to accept it, or add checksums to the registry (im registry add does)."
        )

    def _ensure_linked(
        self,
        spec: FileSpec,
        pkg_dir: Path,
        *,
        what: str,
        offline: bool,
        progress: bool,
        allow_unhashed: bool,
        beat: Callable[[], None],
    ) -> str:
        """Make ``spec``'s blob present (downloading it if needed) and link it into ``pkg_dir``; return its sha256.

        The blob is looked up again and linked while its lock is held, the lock ``prune`` takes before deleting
        it; a downloaded blob is put in place under that lock too, so ``prune`` never sees it unlinked. While this
        waits for another process's lock, ``beat`` (the package lock's heartbeat) is bumped: the caller's waiters
        see it alive as long as the process it waits for is.
        """
        assert spec.url is not None
        index_key = self._index_key(spec, what, allow_unhashed)
        label = f"{spec.name} of {what}"
        sha = self._lookup(spec, index_key)
        if sha is not None:
            with self.blob_lock(sha, what=label, on_wait=beat):
                if self._lookup(spec, index_key) == sha:
                    self._link(self.layout.blob(sha), pkg_dir, spec.name)
                    return sha
            log.info("%s: blob %s was removed (prune?) before it was linked; fetching it again", label, sha[:12])
        if offline:
            raise OfflineModeError(
                f"{label} is not in the cache ({self.root}) and offline mode is on. Load the model once "
                "with network access (unset IM_OFFLINE), then it will load offline."
            )
        key = spec.sha256 or index_key
        assert key is not None
        s = settings()
        with progress_lock(self.layout.locks, key, what=label, stale_s=s.lock_stale_s, on_wait=beat) as hb:

            def beat_both() -> None:
                hb.beat()
                beat()

            def locked(sha: str) -> contextlib.AbstractContextManager[Any]:
                # a sha256 spec's download lock is the blob lock; otherwise take the blob lock too (never the
                # reverse order)
                return contextlib.nullcontext() if sha == key else self.blob_lock(sha, what=label, on_wait=beat_both)

            sha = self._lookup(spec, index_key)  # another process may have fetched it while we waited
            if sha is not None:
                with locked(sha):
                    if self._lookup(spec, index_key) == sha:
                        self._link(self.layout.blob(sha), pkg_dir, spec.name)
                        return sha
                log.info("%s: blob %s was removed (prune?) before it was linked; fetching it again", label, sha[:12])
            tmp, sha = self._download(spec, key, label=label, progress=progress, beat=beat_both)
            try:
                with locked(sha):
                    os.replace(tmp, self.layout.blob(sha))
                    if index_key is not None:
                        atomic_write(self.layout.index / index_key, sha)
                    self._link(self.layout.blob(sha), pkg_dir, spec.name)
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            return sha

    def _download(
        self, spec: FileSpec, key: str, *, label: str, progress: bool, beat: Callable[[], None]
    ) -> tuple[Path, str]:
        """Fetch and verify ``spec`` into a read-only file in ``tmp/`` (the caller holds the lock ``key``).

        Returns:
            ``(path, sha256)``: the caller moves the file to ``blobs/`` under the blob's lock (or removes it).
        """
        assert spec.url is not None
        s = settings()
        tmp = self.layout.tmp / f"{key}.{uuid.uuid4().hex}.part"
        # left by a holder that failed or died (we hold the lock): the longest is continued, the others removed
        parts = sorted(self.layout.tmp.glob(f"{key}.*.part"), key=_size, reverse=True)
        for i, part in enumerate(parts):
            with contextlib.suppress(OSError):
                if i == 0:
                    os.replace(part, tmp)
                else:
                    part.unlink()
        log.info("downloading %s from %s", label, redact_url(spec.url))
        fetched = fetch_to_file(
            spec.url,
            tmp,
            name=spec.name,
            size=spec.size,
            sha256=spec.sha256,
            md5=spec.md5,
            timeout_s=s.download_timeout_s,
            retries=s.download_retries,
            beat=beat,
            progress=progress,
        )  # on failure it removes tmp, or keeps it for the next download to continue
        try:
            os.chmod(tmp, 0o444)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return tmp, fetched.sha256

    def delete_blob_if_unlinked(self, sha256: str) -> bool:
        """Delete a blob under its lock unless a package folder links it (hard-link count > 1); True if deleted.

        A blob with other links is in a package that is being built (or one whose build was interrupted), so it
        stays; a blob whose packages were copies (no hard links) has nothing else that needs it.
        """
        path = self.layout.blob(sha256)
        with self.blob_lock(sha256, what=f"blob {sha256[:12]}"):
            try:
                if path.stat().st_nlink > 1:
                    return False
                path.unlink()
            except FileNotFoundError:
                return False
        return True

    def evict(self, package: CachedPackage) -> bool:
        """Remove a package folder and its marker under the package's lock; True if removed.

        It is kept (False) when it was used after ``package`` was listed (its marker's mtime, the last-use time,
        changed), and while a load holds it :meth:`in_use` (between ``materialize`` and the backend having opened
        its files). Where the platform has no shared locks, a package used in the last ``IM_LOCK_STALE`` seconds is
        kept instead.
        """
        what = f"model {package.model_id!r} package {package.package_id!r}"
        use = self.layout.locks / f"{self.package_lock_key(package.model_id, package.package_id)}.use"
        with self.package_lock(package.model_id, package.package_id, what=what), exclusive_use(use) as free:
            if not free:
                log.info("keeping %s: a load is opening it", what)
                return False
            try:
                if package.marker.stat().st_mtime != package.last_used:
                    return False
                if not HAS_USE_LOCKS and time.time() - package.last_used < settings().lock_stale_s:
                    return False  # pragma: no cover - Windows
                package.marker.unlink()
            except FileNotFoundError:
                pass  # evicted by someone else meanwhile; clear what may be left
            shutil.rmtree(package.path, ignore_errors=True)
        return True

    # -- re-checking a package a backend failed to open -------------------------------------------------------
    def damaged_files(self, model_id: str, package_id: str) -> list[dict[str, Any]] | None:
        """Re-hash a complete package's files against the sha256 its marker recorded when they were stored; the
        marker entries of those that differ (or are missing or unreadable): ``[]`` when all match, ``None`` when
        the package has no readable marker any more (it was removed meanwhile: nothing to compare with)."""
        pkg_dir = self.layout.package_dir(model_id, package_id)
        try:
            files = self._read_marker(self.layout.marker(model_id, package_id)).files
        except _MARKER_ERRORS:
            return None
        damaged = []
        for entry in files:
            try:
                ok = hash_file(pkg_dir / entry["name"])[0] == entry.get("sha256")
            except OSError:
                ok = False
            if not ok:
                damaged.append(entry)
        return damaged

    def discard_damaged(self, model_id: str, package_id: str, damaged: list[dict[str, Any]]) -> None:
        """Drop a package's completion marker and its ``damaged`` files (and the blobs they are links to, or that
        are corrupt too), under the package's lock and each blob's lock: the next ``materialize`` fetches them."""
        pkg_dir = self.layout.package_dir(model_id, package_id)
        what = f"model {model_id!r} package {package_id!r}"
        with self.package_lock(model_id, package_id, what=what):
            with contextlib.suppress(OSError):
                self.layout.marker(model_id, package_id).unlink()
            for entry in damaged:
                path = pkg_dir / entry["name"]
                sha = entry.get("sha256")
                if entry.get("blob") and isinstance(sha, str):
                    blob = self.layout.blob(sha)
                    with self.blob_lock(sha, what=f"blob {sha[:12]}"):
                        try:
                            corrupt = os.path.samefile(blob, path) or hash_file(blob)[0] != sha
                        except OSError:
                            corrupt = False
                        if corrupt:
                            with contextlib.suppress(OSError):
                                blob.unlink()
                with contextlib.suppress(OSError):
                    path.unlink()

    def incomplete_folders(self) -> list[Path]:
        """Package folders without a usable completion marker: builds in progress, interrupted ones, and folders
        whose marker cannot be read or does not describe them (:meth:`packages` skips those, so nothing else
        would ever remove them)."""
        out: list[Path] = []
        for folder in self.layout.packages.glob("*/*") if self.layout.packages.is_dir() else []:
            name_ok = _FOLDER.fullmatch(folder.name) and _FOLDER.fullmatch(folder.parent.name)
            if name_ok and folder.is_dir() and not folder.is_symlink() and not self._has_valid_marker(folder):
                out.append(folder)
        return sorted(out)

    def _has_valid_marker(self, folder: Path) -> bool:
        marker = _marker_of(folder)
        if not marker.exists():
            return False
        try:
            self._read_marker(marker)
        except _MARKER_ERRORS:
            return False
        return True

    def remove_incomplete(self, folder: Path, *, older_than: float) -> bool:
        """Remove a package folder that has no usable marker and nothing newer than ``older_than`` (POSIX seconds),
        with its unusable marker if it has one, under the package's lock (a build in progress holds it: this waits
        for it, then finds its marker); True if removed."""
        marker = _marker_of(folder)
        with self.package_dir_lock(folder, what=f"the incomplete package folder {folder}"):
            if self._has_valid_marker(folder) or last_change(folder) >= older_than:
                return False
            with contextlib.suppress(FileNotFoundError):
                if marker.is_dir() and not marker.is_symlink():
                    shutil.rmtree(marker, ignore_errors=True)
                else:
                    marker.unlink()
            shutil.rmtree(folder, ignore_errors=True)
        return True

    @staticmethod
    def _link(blob: Path, pkg_dir: Path, name: str) -> None:
        """Hard-link (or copy) ``blob`` to ``pkg_dir/name``, refusing names that resolve outside ``pkg_dir``.

        The check comes before any folder is created: an existing symlink inside the package must not get a
        folder made at its target outside the cache.
        """
        dest = pkg_dir / name
        pkg_dir.mkdir(parents=True, exist_ok=True)
        if not dest.parent.resolve().is_relative_to(pkg_dir.resolve()):
            raise UnsafePathError(f"{name!r} resolves outside the package folder {pkg_dir}; refusing it.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if not dest.is_symlink() and os.path.samefile(blob, dest):
                return
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        try:
            try:
                os.link(blob, tmp)
            except OSError:
                shutil.copyfile(blob, tmp)
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def packages(self) -> list[CachedPackage]:
        """Every complete package in the cache, least recently used first (a folder whose marker is unreadable is
        not one: ``prune`` removes it as an interrupted build once it is older than ``IM_LOCK_STALE``)."""
        out: list[CachedPackage] = []
        for marker in self.layout.packages.glob("*/.*.complete.json"):
            try:
                out.append(self._read_marker(marker))
            except _MARKER_ERRORS as exc:
                log.warning("ignoring unreadable cache marker %s (%s)", marker, type(exc).__name__)
        return sorted(out, key=lambda p: (p.last_used, p.model_id, p.package_id))

    def _read_marker(self, marker: Path) -> CachedPackage:
        """The package a completion marker describes; raises one of ``_MARKER_ERRORS`` if it is unreadable,
        malformed, or names another folder than its own."""
        record = json.loads(marker.read_text())
        files = tuple(record["files"])
        if self.layout.marker(record["model_id"], record["package_id"]) != marker:
            raise ValueError("it names another package")  # evict() would remove that package's folder
        return CachedPackage(
            model_id=record["model_id"],
            package_id=record["package_id"],
            provider=record.get("provider"),
            path=marker.parent / record["package_id"],
            marker=marker,
            size_bytes=sum(int(f["size"]) for f in files),
            last_used=marker.stat().st_mtime,
            files=files,
        )

    # -- metadata snapshots --------------------------------------------------------------------------------
    def save_metadata(
        self,
        provider: str,
        model_id: str,
        metadata: ModelMetadata,
        *,
        secrets: tuple[str | None, ...] = (),
        credential: str | None = None,
    ) -> None:
        """Write a snapshot of ``metadata`` for offline use (credentials stripped from URLs; ``secrets`` scrubbed).

        ``credential``: a digest of the credentials the answer was given for (:func:`credential_digest`), so that a
        fresh snapshot is only reused online for the same credentials. An unchanged answer is not rewritten; the
        time the provider last confirmed the snapshot is the mtime of a ``.checked`` file beside it.
        """
        data = metadata.model_dump(mode="json")
        for pkg in data.get("packages", []):
            for f in pkg.get("files", []):
                f["url"] = _clean_url(f.get("url"), secrets)
        doc = {
            "format": SNAPSHOT_FORMAT,
            "provider": provider,
            "model_id": model_id,
            "credential": credential,
            "metadata": data,
        }
        text = scrub(json.dumps(doc, indent=1), secrets)
        path = self.layout.snapshot(provider, model_id)
        checked = path.with_suffix(".checked")
        with contextlib.suppress(OSError):
            if path.read_text() == text:  # unchanged since the last load: no rewrite, just record the confirmation
                checked.touch()
                return
        atomic_write(path, text)
        with contextlib.suppress(OSError):
            checked.touch()

    def fresh_metadata(
        self, provider: str, model_id: str, *, max_age_s: float, credential: str | None
    ) -> ModelMetadata | None:
        """The snapshot of ``(provider, model_id)`` if the provider confirmed it less than ``max_age_s`` seconds ago
        for the same ``credential``; else ``None`` (then the provider is asked)."""
        if max_age_s <= 0:
            return None
        path = self.layout.snapshot(provider, model_id)
        try:
            age = time.time() - path.with_suffix(".checked").stat().st_mtime
            if not 0 <= age < max_age_s:
                return None
            doc = load_json(path.read_bytes(), what=str(path), max_bytes=settings().metadata_max_bytes)
            if doc.get("credential") != credential:
                return None
            return ModelMetadata.model_validate(doc["metadata"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, MalformedMetadataError):
            return None

    def load_metadata(self, provider: str, model_id: str) -> ModelMetadata | None:
        """The snapshot saved for ``(provider, model_id)``, or ``None`` if there is none (or it is unreadable)."""
        path = self.layout.snapshot(provider, model_id)
        try:
            doc = load_json(path.read_bytes(), what=str(path), max_bytes=settings().metadata_max_bytes)
            return ModelMetadata.model_validate(doc["metadata"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, MalformedMetadataError) as exc:
            log.warning("ignoring unreadable metadata snapshot %s (%s)", path, type(exc).__name__)
            return None
