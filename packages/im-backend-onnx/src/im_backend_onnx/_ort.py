"""Importing ONNX Runtime lazily, and asking it facts it has no API for (the highest opset it accepts).

The highest opset is found by asking onnxruntime itself (tiny Identity models at trial opsets), never from a hand
table. That costs ~6 session creations, so the answer is kept on disk under ``IM_HOME/probes/``, keyed by the
onnxruntime version, its build string and the identity (path, size, mtime) of its native library: a fresh process
reads a small JSON file instead of probing again, and an upgraded or rebuilt onnxruntime is probed anew.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from im_core.errors import MissingDependencyError

__all__ = ["cached_max_opset", "import_ort", "max_opset", "probe_max_opset", "runtime_fingerprint"]

_OPSET_CEILING = 64  # far above any released ONNX opset; the search never reaches it
_CACHE_FORMAT = 1  # bump when the file's fields change; older files are then re-probed
_NATIVE_MODULE = "onnxruntime.capi.onnxruntime_pybind11_state"

_log = logging.getLogger("im")


def import_ort() -> Any:
    """The ``onnxruntime`` module, or ``MissingDependencyError`` saying what to install."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(
            f"The ONNX backend needs onnxruntime ({exc}). Install it with: pip install im-backend-onnx "
            "(pulls onnxruntime), or pip install onnxruntime-gpu for CUDA / TensorRT execution providers.",
            distribution="onnxruntime",
            extra=None,
        ) from exc
    return onnxruntime


# -- the probe itself ------------------------------------------------------------------------------------------
def _probe_options(ort: Any) -> Any:
    """Session options that make a trial session cheap: no thread pools, arena or optimisation passes.

    The opset check happens while the model is loaded, before any of those would matter. Measured on 2 cores:
    the whole search takes ~4 ms with these options vs 5-12 ms with ORT's defaults (thread pool per session).
    """
    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: the failures are the point of the probe
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options


def _accepts(ort: Any, opset: int) -> bool:
    from im_backend_onnx._proto import identity_model

    options = _probe_options(ort)
    try:
        ort.InferenceSession(identity_model(opset), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception:  # ORT raises its own Fail/InvalidGraph types
        return False
    return True


def probe_max_opset(ort: Any) -> int:
    """Highest default-domain opset ``ort`` loads: binary search over tiny Identity models (0 if none loads)."""
    lo, hi = 1, _OPSET_CEILING  # invariant: lo accepted (opset 1 always is), hi rejected
    if not _accepts(ort, lo):
        return 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _accepts(ort, mid):
            lo = mid
        else:
            hi = mid
    return lo


# -- the on-disk cache -----------------------------------------------------------------------------------------
def runtime_fingerprint(ort: Any) -> dict[str, Any]:
    """What identifies one onnxruntime build: version, build string, and its native library's path, size, mtime.

    A reinstall of the same version from another wheel (``onnxruntime`` vs ``onnxruntime-gpu``, a source build)
    changes the library file, so it gets its own cache entry.
    """
    native = sys.modules.get(_NATIVE_MODULE)
    library = str(getattr(native, "__file__", None) or getattr(ort, "__file__", None) or "")
    try:
        stat = os.stat(library)
        size, mtime_ns = stat.st_size, stat.st_mtime_ns
    except OSError:
        size, mtime_ns = -1, -1
    get_build_info = getattr(ort, "get_build_info", None)
    build = str(get_build_info()) if callable(get_build_info) else ""
    return {
        "version": str(ort.__version__),
        "build": build,
        "library": library,
        "size": size,
        "mtime_ns": mtime_ns,
    }


def _cache_file(home: Path, fingerprint: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    return home / "probes" / f"onnxruntime-max-opset-{digest}.json"


def _read_cached(path: Path, fingerprint: dict[str, Any]) -> int | None:
    """The stored opset, or ``None`` when the file is missing, unreadable, corrupt or for another build."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT or data.get("runtime") != fingerprint:
        return None
    value = data.get("max_opset")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < _OPSET_CEILING:
        return None
    return value


def _write_cached(path: Path, fingerprint: dict[str, Any], value: int) -> None:
    """Store ``value`` atomically (temp file + rename); a read-only or full ``IM_HOME`` only costs a re-probe."""
    from im_core.sdk import atomic_write

    payload = {"format": _CACHE_FORMAT, "runtime": fingerprint, "max_opset": value}
    try:
        atomic_write(path, json.dumps(payload, indent=1, sort_keys=True))
    except OSError as exc:
        _log.debug("could not store the onnxruntime opset probe in %s: %s", path, exc)


def cached_max_opset(ort: Any, home: Path) -> int:
    """:func:`probe_max_opset`, remembered in ``home/probes/`` per onnxruntime build (re-probed if missing/corrupt)."""
    fingerprint = runtime_fingerprint(ort)
    path = _cache_file(home, fingerprint)
    value = _read_cached(path, fingerprint)
    if value is not None:
        return value
    value = probe_max_opset(ort)
    if value >= 1:  # 0 means even opset 1 failed: something is broken, so do not remember it
        _write_cached(path, fingerprint, value)
    return value


@functools.lru_cache(maxsize=4)
def _max_opset(version: str, home: str) -> int:
    return cached_max_opset(import_ort(), Path(home))


def max_opset() -> int:
    """Highest default-domain opset the installed onnxruntime loads, as ONNX Runtime itself reports it.

    Read from ``IM_HOME/probes/`` when this onnxruntime build was probed before (a small JSON file); otherwise
    probed (about 6 trial sessions, ~4 ms) and stored there. Cached in memory per version and ``IM_HOME``.
    """
    from im_core.sdk import settings

    return _max_opset(import_ort().__version__, str(settings().home))
