"""The model cache under ``IM_HOME``: verified downloads, content-addressed blobs, package folders, metadata
snapshots, cross-process locks, LRU pruning (DESIGN.md §5).

Not imported by ``import im_core``. Names are imported on first use (PEP 562): loading a cached model imports
neither the maintenance code (prune/verify) nor the HTTP stack; ``requests``, ``urllib.request``, ``filelock`` and
``rich`` are imported only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CachedPackage": "im_core._cache._store",
    "ModelCache": "im_core._cache._store",
    "PruneReport": "im_core._cache._maintenance",
    "VerifyReport": "im_core._cache._maintenance",
    "atomic_write": "im_core._cache._store",
    "error_for_status": "im_core._cache._http",
    "model_slug": "im_core._cache._paths",
    "open_cached": "im_core._cache._open",
    "parse_size": "im_core._cache._maintenance",
    "prune": "im_core._cache._maintenance",
    "redact_url": "im_core._cache._paths",
    "request_with_retries": "im_core._cache._http",
    "resolve_metadata": "im_core._cache._resolve",
    "scrub": "im_core._cache._paths",
    "validate_model_id": "im_core._cache._paths",
    "verify": "im_core._cache._maintenance",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_core._cache._http import error_for_status, request_with_retries
    from im_core._cache._maintenance import PruneReport, VerifyReport, parse_size, prune, verify
    from im_core._cache._open import open_cached
    from im_core._cache._paths import model_slug, redact_url, scrub, validate_model_id
    from im_core._cache._resolve import resolve_metadata
    from im_core._cache._store import CachedPackage, ModelCache, atomic_write
