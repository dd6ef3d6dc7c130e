"""Layout of ``IM_HOME`` and the small, security-relevant helpers around names and URLs.

Layout (all under the cache root)::

    blobs/sha256/<hex>                       content-addressed files (read-only)
    index/<key>                              md5- or URL-keyed pointers to a sha256 blob (text: the hex)
    packages/<slug>/<package_id>/<name>      package folders: hard links (or copies) of blobs
    packages/<slug>/.<package_id>.complete.json   completion marker; its mtime is the last-use time (LRU)
    metadata/<provider>/<slug>.json          metadata snapshots for offline use
    locks/<key>.lock, locks/<key>.beat       cross-process locks and the holder's heartbeat
    locks/pkg-<slug>-<package_id>.use        "in use" lock: shared by loads until the backend opened the package
    tmp/<key>.<uuid>.part                    downloads in flight (same filesystem, so renames are atomic)
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from im_core.errors import UnsafePathError

__all__ = ["CacheLayout", "model_slug", "redact_url", "scrub", "validate_model_id"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PROVIDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


#: longest model id, in characters; a registry stores it as a path, and its folder names hold one segment each
MAX_MODEL_ID_CHARS = 512
#: longest file or folder name (one path segment), in UTF-8 bytes: the limit of every common filesystem
MAX_NAME_BYTES = 255


def shown(value: str, limit: int = 80) -> str:
    """``repr(value)``, shortened to about ``limit`` characters for messages (a 10,000-character id stays readable)."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value)} characters)"


def check_name_lengths(value: str, what: str) -> None:
    """Raise :class:`UnsafePathError` if a ``/``-separated segment of ``value`` is over :data:`MAX_NAME_BYTES`
    bytes in UTF-8 (the OS would refuse it with a raw ``ENAMETOOLONG``)."""
    for part in value.split("/"):
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > MAX_NAME_BYTES:
            raise UnsafePathError(
                f"The {what} {shown(value)} has a path segment of {size} bytes; file systems allow at most "
                f"{MAX_NAME_BYTES} bytes per name. Use a shorter name."
            )


def validate_model_id(model_id: str) -> str:
    """Return ``model_id`` if it is a safe registry key (``coco/3``, ``mediapipe/face-detector``).

    Raises:
        UnsafePathError: empty, absolute, with ``..``/``.``/empty segments, a backslash, NUL, ``~`` or control chars,
            longer than :data:`MAX_MODEL_ID_CHARS` characters, or with a segment over :data:`MAX_NAME_BYTES` bytes.
    """
    if not isinstance(model_id, str) or not model_id:
        raise UnsafePathError(f"Model id {model_id!r} is empty or not a string.")
    if len(model_id) > MAX_MODEL_ID_CHARS:
        raise UnsafePathError(
            f"Model id {shown(model_id)} is too long: at most {MAX_MODEL_ID_CHARS} characters are allowed."
        )
    if any(ord(c) < 32 for c in model_id) or "\\" in model_id or model_id.startswith(("~", "/")):
        raise UnsafePathError(f"Model id {shown(model_id)} contains a control character, a backslash or is absolute.")
    parts = PurePosixPath(model_id).parts
    if any(p in ("..", ".", "") for p in model_id.split("/")) or not parts:
        raise UnsafePathError(f"Model id {shown(model_id)} would leave the registry folder; refusing it.")
    check_name_lengths(model_id, "model id")
    return model_id


def model_slug(model_id: str) -> str:
    """A folder name for ``model_id``: readable, collision-free (a hash suffix), never a path."""
    validate_model_id(model_id)
    readable = _SAFE.sub("_", model_id.replace("/", "--")).strip("._-")[:64] or "model"
    return f"{readable}-{hashlib.sha256(model_id.encode()).hexdigest()[:12]}"


def redact_url(url: str) -> str:
    """``scheme://host/path`` of ``url``: no credentials, query string or fragment (safe to log)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrub(text: str, secrets: tuple[str | None, ...]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class CacheLayout:
    """Paths inside one cache root (``IM_HOME``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.index = self.root / "index"
        self.packages = self.root / "packages"
        self.metadata = self.root / "metadata"
        self.locks = self.root / "locks"
        self.tmp = self.root / "tmp"

    def ensure(self) -> None:
        for d in (self.blobs, self.index, self.packages, self.metadata, self.locks, self.tmp):
            d.mkdir(parents=True, exist_ok=True)

    def blob(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise UnsafePathError(f"{sha256!r} is not a sha256 hex digest.")
        return self.blobs / sha256

    def package_dir(self, model_id: str, package_id: str) -> Path:
        return self.packages / model_slug(model_id) / _safe_component(package_id, "package id")

    def marker(self, model_id: str, package_id: str) -> Path:
        return self.packages / model_slug(model_id) / f".{_safe_component(package_id, 'package id')}.complete.json"

    def snapshot(self, provider: str, model_id: str) -> Path:
        return self.metadata / _safe_component(provider, "provider name") / f"{model_slug(model_id)}.json"


def _safe_component(value: str, what: str) -> str:
    if not _PROVIDER.match(value or ""):
        raise UnsafePathError(
            f"The {what} {value!r} is not a safe folder name ([A-Za-z0-9._-], not starting with '.')."
        )
    return value
