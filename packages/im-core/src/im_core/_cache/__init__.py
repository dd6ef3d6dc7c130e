"""The model cache under ``IM_HOME``: verified downloads, content-addressed blobs, package folders, metadata
snapshots, cross-process locks, LRU pruning (DESIGN.md §5).

Not imported by ``import im_core``; ``requests``, ``filelock`` and ``rich`` are imported only when used.
"""

from im_core._cache._http import error_for_status, request_with_retries
from im_core._cache._maintenance import PruneReport, VerifyReport, parse_size, prune, verify
from im_core._cache._paths import model_slug, redact_url, scrub, validate_model_id
from im_core._cache._resolve import resolve_metadata
from im_core._cache._store import CachedPackage, ModelCache

__all__ = [
    "CachedPackage",
    "ModelCache",
    "PruneReport",
    "VerifyReport",
    "error_for_status",
    "model_slug",
    "parse_size",
    "prune",
    "redact_url",
    "request_with_retries",
    "resolve_metadata",
    "scrub",
    "validate_model_id",
    "verify",
]
