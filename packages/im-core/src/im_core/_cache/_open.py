"""Open a cached package: materialise it, hand the folder to the backend, and stand behind the files it read.

:func:`open_cached` is what ``AutoModel`` calls for a package that comes from a weights provider:

* the package is marked in use (:meth:`ModelCache.in_use`) from before ``materialize`` until the backend has opened
  its files, so ``prune`` in another process cannot evict it in between;
* when the backend or family fails on it, the package is re-hashed: files that no longer match the sha256 recorded
  when they were stored are removed (with their blobs) and fetched once more, and the load is tried again; when they
  all match, the error says so (the cache is not the cause);
* a full or read-only ``IM_HOME`` met by the backend (an engine or probe it writes there) is a
  :class:`CacheStorageError`, not "probably a bug".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from im_core._cache._store import ModelCache
from im_core._metadata import ModelMetadata, ModelPackage
from im_core.errors import (
    ConfigurationError,
    DependencyError,
    DependencyModelError,
    DownloadError,
    ImError,
    InvalidParameterError,
    ModelImplementationNotFoundError,
    ModelLoadingError,
    NegotiationError,
    OfflineModeError,
    RetrievalError,
)

__all__ = ["open_cached", "unexpected_failure_error"]

log = logging.getLogger("im.cache")

T = TypeVar("T")

#: failures that say nothing about the files' bytes: no re-hash for these
_NOT_ABOUT_FILES = (
    InvalidParameterError,
    ConfigurationError,
    DependencyError,
    DependencyModelError,
    ModelImplementationNotFoundError,
    NegotiationError,
    RetrievalError,
    DownloadError,
)
_STORAGE_ERRNOS = ("ENOSPC", "EDQUOT", "EROFS", "EFBIG")


def open_cached(
    metadata: ModelMetadata,
    package: ModelPackage,
    *,
    offline: bool | None,
    open: Callable[[Path], T],
    cache: ModelCache | None = None,
) -> T:
    """``open(folder)`` on the materialised ``package`` (the family's ``from_package``), at most twice.

    Raises:
        what ``materialize`` raises; what ``open`` raises, with a note that the cached files were re-hashed and are
        intact (an ``ImError``), or wrapped in a :class:`ModelLoadingError` saying so (another exception);
        OfflineModeError: a corrupt file was removed and cannot be fetched again offline.
    """
    import errno

    cache = cache if cache is not None else ModelCache()
    model_id, package_id = metadata.model_id, package.package_id
    what = f"package {package_id!r} of {model_id!r}"
    storage = {getattr(errno, name) for name in _STORAGE_ERRNOS if hasattr(errno, name)}
    discarded = False
    for attempt in (1, 2):
        with cache.in_use(model_id, package_id):
            try:
                directory = cache.materialize(metadata, package, offline=offline)
            except OfflineModeError as exc:
                if not discarded:
                    raise
                exc.message = (
                    f"{what} failed to load and some of its cached files were corrupt; they were removed and cannot "
                    f"be fetched again offline. {exc.message} (`im cache verify` repairs the cache when online.)"
                )
                exc.args = (exc.message, *exc.args[1:])
                raise
            try:
                return open(directory)
            except _NOT_ABOUT_FILES:
                raise
            except OSError as exc:
                error = cache.storage_error(exc, f"the {package.backend} backend opened {what}")
                if exc.errno in storage and error is not None:
                    raise error from exc
                failure: Exception = exc
            except Exception as exc:
                failure = exc
            damaged = cache.damaged_files(model_id, package_id)
            if damaged is None and attempt == 1:  # the package went away under the backend: build it again
                log.info("%s was removed from the cache while it was opened; loading it again", what)
                continue
            if not damaged or attempt == 2:
                explained = _explained(failure, metadata, package, damaged)
                if explained is failure:
                    raise failure
                raise explained from failure
            log.warning(
                "%s failed to load (%s: %s) and its cached file(s) %s no longer match the sha256 recorded when they "
                "were downloaded: removing them and fetching them again.",
                what,
                type(failure).__name__,
                failure.message if isinstance(failure, ImError) else failure,
                ", ".join(str(entry["name"]) for entry in damaged),
            )
            cache.discard_damaged(model_id, package_id, damaged)
            discarded = True
    raise AssertionError("unreachable")  # pragma: no cover


def _explained(
    failure: Exception, metadata: ModelMetadata, package: ModelPackage, damaged: list[dict[str, object]] | None
) -> Exception:
    """The error to raise after the re-hash: ``failure`` with a sentence about the cached files."""
    if damaged is None:
        note = (
            "Its cache folder was removed or changed while it was being opened, twice (is `im cache prune` or "
            "`im cache verify` running in a loop?); `im cache verify` checks what is left."
        )
    elif damaged:  # still damaged after a fresh fetch: the disk itself is failing
        note = (
            f"Its cached file(s) {', '.join(str(d['name']) for d in damaged)} were fetched again and still do not "
            "match their sha256: the disk holding IM_HOME may be failing. Run `im cache verify`."
        )
    else:
        note = (
            "Its cached files were re-hashed and match the sha256 recorded when they were downloaded (what `im cache "
            "verify` checks), so the cache is not the cause."
        )
    if isinstance(failure, ImError):
        failure.message = f"{failure.message} {note}"
        failure.args = (failure.message, *failure.args[1:])
        return failure
    return unexpected_failure_error(failure, metadata, package.package_id, package.backend, note=note, logger=log)


def unexpected_failure_error(
    exc: BaseException,
    metadata: ModelMetadata,
    package_id: str,
    backend: str,
    *,
    note: str = "",
    logger: logging.Logger = log,
) -> ModelLoadingError:
    """The error for a non-``ImError`` raised while a backend or model family built package ``package_id``: names
    the package, backend and family, says it is probably a bug there, and logs the traceback at DEBUG on
    ``logger`` (the caller chains ``exc`` to it). ``note`` adds what is known about the package's files."""
    logger.debug("Traceback of the failure of package %s of %r:", package_id, metadata.model_id, exc_info=exc)
    extra = f" {note}" if note else ""
    return ModelLoadingError(
        f"Package {package_id!r} of {metadata.model_id!r} failed in the {backend} backend or the "
        f"{metadata.architecture} model family with an unexpected {type(exc).__name__}: {exc}.{extra} This is "
        "probably a bug in that backend or family, or a file it does not expect; the traceback is logged at DEBUG "
        f"level (logger {logger.name!r}) and chained to this error.",
        package_id=package_id,
        backend=backend,
        error_type=type(exc).__name__,
    )
