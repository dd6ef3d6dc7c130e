"""``im cache verify`` (re-hash and repair) and ``im cache prune`` (LRU eviction by total size)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from im_core._cache._download import hash_file
from im_core._cache._store import CachedPackage, ModelCache, last_change
from im_core._config import settings
from im_core.errors import ImError, InvalidParameterError, UnsafePathError

__all__ = ["PruneReport", "VerifyReport", "parse_size", "prune", "verify"]

log = logging.getLogger("im.cache")

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
}


def parse_size(text: str) -> int:
    """Bytes in ``"500MB"``, ``"2 GiB"``, ``"1000"`` (decimal units are powers of 10, ``*iB`` of 2)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text or "")
    if not match or match.group(2).lower() not in _UNITS:
        raise InvalidParameterError(f"Size {text!r} is not understood; use e.g. 500MB, 2GB or 1.5GiB.")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


@dataclass
class VerifyReport:
    """What ``verify`` found: blob digests checked, corrupt ones, and packages repaired or left broken."""

    checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken


@dataclass
class PruneReport:
    """What ``prune`` removed.

    Attributes:
        before_bytes, after_bytes: bytes on disk (blobs, package folders complete or not, partial downloads;
            hard links counted once); with ``dry_run``, ``after_bytes`` is what would be left.
        removed_incomplete: package folders without a completion marker (interrupted builds), as
            ``<model folder>/<package_id>`` under ``packages/``.
        removed_partial: partial downloads left in ``tmp/`` by a download nobody resumed (file names).
    """

    before_bytes: int = 0
    after_bytes: int = 0
    removed_packages: list[str] = field(default_factory=list)
    removed_blobs: int = 0
    removed_incomplete: list[str] = field(default_factory=list)
    removed_partial: list[str] = field(default_factory=list)


def verify(cache: ModelCache, *, repair: bool = True, offline: bool | None = None) -> VerifyReport:
    """Re-hash every blob (and every package file that is a copy rather than a link).

    A corrupt blob is deleted, the packages using it lose their completion marker and, when ``repair`` and online
    and the metadata snapshot still has the file's URL, are materialized again.
    """
    offline = settings().offline if offline is None else offline
    report = VerifyReport()
    bad: set[str] = set()
    for blob in sorted(cache.layout.blobs.glob("*")) if cache.layout.blobs.is_dir() else []:
        if not re.fullmatch(r"[0-9a-f]{64}", blob.name):
            continue
        report.checked += 1
        if hash_file(blob)[0] == blob.name:
            continue
        with cache.blob_lock(blob.name, what=f"blob {blob.name[:12]}"):  # not while a load writes or links it
            sha = hash_file(blob)[0] if blob.is_file() else blob.name  # re-check: it may have been replaced
            if sha == blob.name:
                continue
            log.warning("blob %s is corrupt (its content hashes to %s); removing it", blob.name, sha)
            report.corrupt.append(blob.name)
            bad.add(blob.name)
            with contextlib.suppress(OSError):
                blob.unlink()
    for pkg in cache.packages():
        label = f"{pkg.model_id}@{pkg.package_id}"
        damaged = False
        for f in pkg.files:
            path = pkg.path / f["name"]
            if f.get("sha256") in bad:
                damaged = True
                continue
            stored = cache.layout.blob(f["sha256"]) if f.get("blob") else None
            with contextlib.suppress(OSError):
                if stored is not None and os.path.samefile(stored, path):
                    continue
            report.checked += 1
            try:
                ok = hash_file(path)[0] == f.get("sha256")
            except OSError:
                ok = False
            if not ok:
                report.corrupt.append(f"{label}/{f['name']}")
                damaged = True
        if not damaged:
            continue
        with cache.package_lock(
            pkg.model_id, pkg.package_id, what=f"model {pkg.model_id!r} package {pkg.package_id!r}"
        ):
            with contextlib.suppress(OSError):
                pkg.marker.unlink()
            for f in pkg.files:  # hard links of a corrupt blob share its bytes: drop them too
                if f.get("blob"):
                    with contextlib.suppress(OSError):
                        (pkg.path / f["name"]).unlink()
        if _refetch(cache, pkg.provider, pkg.model_id, pkg.package_id, repair=repair, offline=offline):
            report.repaired.append(label)
        else:
            report.broken.append(label)
    return report


def _refetch(
    cache: ModelCache, provider: str | None, model_id: str, package_id: str, *, repair: bool, offline: bool
) -> bool:
    if not repair or offline or provider is None:
        return False
    metadata = cache.load_metadata(provider, model_id)
    package = metadata.package(package_id) if metadata is not None else None
    if metadata is None or package is None:
        log.warning("cannot repair %s@%s: no metadata snapshot lists it", model_id, package_id)
        return False
    try:
        cache.materialize(metadata, package, offline=False, progress=False)
    except ImError as exc:
        log.warning("repairing %s@%s failed: %s", model_id, package_id, exc.message)
        return False
    return True


def _disk_usage(paths: list[Path]) -> int:
    """Bytes of the regular files among ``paths`` (links not followed; hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in paths:
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def _inodes(paths: list[Path]) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for path in paths:
        with contextlib.suppress(OSError):
            st = path.lstat()
            out.add((st.st_dev, st.st_ino))
    return out


def _files_under(folders: list[Path]) -> list[Path]:
    return [Path(d) / n for folder in folders for d, _, names in os.walk(folder) for n in names]


def _on_disk(cache: ModelCache) -> list[Path]:
    """Every file that holds model bytes: blobs, package folders' files (complete or not), partial downloads."""
    folders = [p for p in cache.layout.packages.glob("*/*") if p.is_dir() and not p.is_symlink()]
    return _files_under([cache.layout.blobs, cache.layout.tmp, *folders])


def _kept_files(cache: ModelCache, kept: list[CachedPackage]) -> list[Path]:
    paths = [pkg.path / f["name"] for pkg in kept for f in pkg.files]
    return paths + [cache.layout.blob(f["sha256"]) for pkg in kept for f in pkg.files if f.get("blob")]


def _usage(cache: ModelCache, kept: list[CachedPackage]) -> int:
    return _disk_usage(_kept_files(cache, kept))


def _remove_stale_partials(cache: ModelCache, older_than: float, *, dry_run: bool) -> list[str]:
    """Delete the partial downloads in ``tmp/`` (``<key>.<uuid>.part``, kept so that a later download of the same
    file resumes) that nothing changed since ``older_than`` and whose download lock nobody holds; their names."""
    from filelock import FileLock, Timeout

    removed: list[str] = []
    if not cache.layout.tmp.is_dir():
        return removed
    for part in sorted(cache.layout.tmp.glob("*.part")):
        try:
            if part.stat().st_mtime >= older_than:
                continue
        except OSError:
            continue
        if dry_run:
            removed.append(part.name)
            continue
        lock = FileLock(str(cache.layout.locks / f"{part.name.split('.', 1)[0]}.lock"), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except (Timeout, OSError):  # a download of that file is running: it owns the partial file
            continue
        try:
            part.unlink()
            removed.append(part.name)
        except OSError:
            pass
        finally:
            lock.release()
    return removed


def prune(cache: ModelCache, max_size_bytes: int, *, dry_run: bool = False) -> PruneReport:
    """Remove interrupted builds, evict least-recently-used packages until the packages kept (their files and
    blobs, hard links counted once) fit in ``max_size_bytes``, then delete every blob no kept package uses.

    An interrupted build is a package folder with no usable completion marker (none, or one that cannot be read)
    and nothing in it (nor that marker) newer than ``IM_LOCK_STALE`` seconds; younger ones are builds in progress
    and stay (with the blobs they link).

    Safe next to loads in other processes: a package, complete or not, is removed under its lock (the one
    ``materialize`` holds) and kept if it was used (or completed) after the listing; a blob is deleted under its
    lock and only when no package folder links it, so a load that is linking it keeps it.
    """
    blobs = [p for p in cache.layout.blobs.glob("*") if p.is_file()] if cache.layout.blobs.is_dir() else []
    packages = cache.packages()  # least recently used first
    report = PruneReport(before_bytes=_disk_usage(_on_disk(cache)))
    older_than = time.time() - settings().lock_stale_s
    building: list[Path] = []  # incomplete folders that stay
    for folder in cache.incomplete_folders():
        if last_change(folder) < older_than and (dry_run or cache.remove_incomplete(folder, older_than=older_than)):
            report.removed_incomplete.append(f"{folder.parent.name}/{folder.name}")
        else:
            building.append(folder)
    report.removed_partial = _remove_stale_partials(cache, older_than, dry_run=dry_run)
    kept = list(packages)
    for pkg in packages:
        if _usage(cache, kept) <= max_size_bytes:
            break
        kept.remove(pkg)
        if dry_run or cache.evict(pkg):
            report.removed_packages.append(f"{pkg.model_id}@{pkg.package_id}")
        else:
            log.info("keeping %s@%s: it was used while pruning", pkg.model_id, pkg.package_id)
            kept.append(pkg)
    used = {f.get("sha256") for p in kept for f in p.files if f.get("blob")}
    linked = _inodes(_files_under(building)) if dry_run else set()  # what delete_blob_if_unlinked would keep
    for blob in blobs:
        if blob.name in used or not re.fullmatch(r"[0-9a-f]{64}", blob.name) or _inodes([blob]) & linked:
            continue
        if dry_run or cache.delete_blob_if_unlinked(blob.name):
            report.removed_blobs += 1
    if not dry_run and cache.layout.index.is_dir():
        for entry in cache.layout.index.glob("*"):  # pointers to blobs that are gone (or to nothing valid)
            try:
                target: Path | None = cache.layout.blob(entry.read_text().strip())
            except UnsafePathError:
                target = None
            except OSError:
                continue
            if target is None or not target.is_file():
                with contextlib.suppress(OSError):
                    entry.unlink()
    if dry_run:  # kept packages, builds in progress (with the blobs they link) and partial downloads
        partials = [p for p in _files_under([cache.layout.tmp]) if p.name not in set(report.removed_partial)]
        report.after_bytes = _disk_usage(_kept_files(cache, kept) + _files_under(building) + partials)
    else:
        report.after_bytes = _disk_usage(_on_disk(cache))
    return report
