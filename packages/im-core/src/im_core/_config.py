"""Settings read once from ``IM_*`` environment variables (DESIGN.md §2).

Nothing happens at import time: :func:`settings` reads the environment on first call and caches the result;
:func:`reload_settings` re-reads it (tests and long-running programs that change the environment).
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from im_core._device import Device
from im_core.errors import ConfigurationError

__all__ = ["Settings", "reload_settings", "settings"]

#: Pillow's DecompressionBombError threshold (2 x Image.MAX_IMAGE_PIXELS): about 13,400 x 13,400 pixels
DEFAULT_MAX_IMAGE_PIXELS = 178_956_970

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Every knob im reads from the environment.

    Attributes:
        home: cache root (``IM_HOME``, default ``~/.cache/im``).
        offline: resolve everything from the cache, never touch the network (``IM_OFFLINE``).
        disabled_backends: backends negotiation must never pick (``IM_DISABLED_BACKENDS``, comma-separated).
        default_device: the device of ``IM_DEFAULT_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``), or ``None`` for
            "best available"; a value that is not a device raises ``InvalidParameterError`` naming the variable.
        default_provider: weights provider used when none is named (``IM_DEFAULT_PROVIDER``; else the one that reads
            ``IM_REGISTRY`` when it is set, :func:`registry_provider`; else ``roboflow``).
        registry_url: root of the registry for the ``local``/``http`` providers (``IM_REGISTRY``).
        log_level: level of the ``im`` logger (``IM_LOG_LEVEL``, default ``WARNING``).
        onnx_execution_providers: preferred ONNX Runtime providers (``IM_ONNX_PROVIDERS``, comma-separated).
        download_timeout_s: connect/read timeout of one HTTP request in seconds (``IM_DOWNLOAD_TIMEOUT``).
        download_retries: total requests per URL, counting the first (``IM_DOWNLOAD_RETRIES``, default 4, 1 = never
            retry); connection errors, 408/429/5xx and bodies cut short each use one.
        download_min_speed: bytes per second a download must average over each ``download_speed_window_s`` window,
            or the attempt is abandoned (``IM_DOWNLOAD_MIN_SPEED``, default 1024; 0 turns the check off).
        download_speed_window_s: the window of that check, in seconds (``IM_DOWNLOAD_SPEED_WINDOW``, default 60).
        metadata_max_bytes: the largest metadata document (provider answer, registry ``metadata.json``) im reads
            (``IM_METADATA_MAX_BYTES``, default 16 MiB).
        lock_stale_s: seconds without progress after which a lock holder is considered dead (``IM_LOCK_STALE``).
        metadata_ttl_s: seconds a model's metadata snapshot is trusted online without asking the provider again
            (``IM_METADATA_TTL``, default 86400 = one day, as the reference's auto-resolution cache; 0 = always ask).
            Only a snapshot saved for the same provider source and the same credentials counts.
        progress: show progress bars when stderr is a terminal (``IM_PROGRESS``, default on).
        max_image_pixels: largest image (width x height) decoded from a file or encoded bytes
            (``IM_MAX_IMAGE_PIXELS``, default 178,956,970, Pillow's decompression-bomb limit; 0 = no limit).
        roboflow_api_key: ``ROBOFLOW_API_KEY`` (never logged).
        roboflow_api_host: ``ROBOFLOW_API_HOST`` (default ``https://api.roboflow.com``).
    """

    home: Path
    offline: bool = False
    disabled_backends: frozenset[str] = field(default_factory=frozenset)
    default_device: Device | None = None
    default_provider: str = "roboflow"
    registry_url: str | None = None
    log_level: str = "WARNING"
    onnx_execution_providers: tuple[str, ...] = ()
    download_timeout_s: float = 30.0
    download_retries: int = 4
    download_min_speed: float = 1024.0
    download_speed_window_s: float = 60.0
    metadata_max_bytes: int = 16 << 20
    lock_stale_s: float = 60.0
    metadata_ttl_s: float = 86400.0
    progress: bool = True
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    roboflow_api_key: str | None = field(default=None, repr=False)
    roboflow_api_host: str = "https://api.roboflow.com"

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        home = env.get("IM_HOME") or str(Path("~/.cache/im").expanduser())
        return cls(
            home=Path(home).expanduser(),
            offline=_bool(env, "IM_OFFLINE", False),
            disabled_backends=frozenset(_csv(env.get("IM_DISABLED_BACKENDS", ""), lower=True)),
            default_device=_device(env.get("IM_DEFAULT_DEVICE")),
            default_provider=env.get("IM_DEFAULT_PROVIDER") or registry_provider(env.get("IM_REGISTRY")) or "roboflow",
            registry_url=env.get("IM_REGISTRY") or None,
            log_level=_log_level(env.get("IM_LOG_LEVEL", "WARNING")),
            onnx_execution_providers=tuple(_csv(env.get("IM_ONNX_PROVIDERS", ""))),
            download_timeout_s=_number(env, "IM_DOWNLOAD_TIMEOUT", 30.0, float, minimum=0.1),
            download_retries=int(_number(env, "IM_DOWNLOAD_RETRIES", 4, int, minimum=1)),
            download_min_speed=_number(env, "IM_DOWNLOAD_MIN_SPEED", 1024.0, float, minimum=0.0),
            download_speed_window_s=_number(env, "IM_DOWNLOAD_SPEED_WINDOW", 60.0, float, minimum=0.1),
            metadata_max_bytes=int(_number(env, "IM_METADATA_MAX_BYTES", 16 << 20, int, minimum=1024)),
            lock_stale_s=_number(env, "IM_LOCK_STALE", 60.0, float, minimum=1.0),
            metadata_ttl_s=_number(env, "IM_METADATA_TTL", 86400.0, float, minimum=0.0),
            progress=_bool(env, "IM_PROGRESS", True),
            max_image_pixels=int(_number(env, "IM_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS, int, minimum=0)),
            roboflow_api_key=env.get("ROBOFLOW_API_KEY") or None,
            roboflow_api_host=(env.get("ROBOFLOW_API_HOST") or "https://api.roboflow.com").rstrip("/"),
        )


def registry_provider(root: object) -> str | None:
    """The provider that reads a registry root: ``http`` for an ``http(s)://`` URL, ``local`` for anything else (a
    folder, a ``file://`` URL); ``None`` for no root. So ``IM_REGISTRY`` or ``provider_options={'root': ...}`` (the
    CLI's ``--registry``) select their provider when none is named."""
    if root is None or (isinstance(root, str) and not root.strip()):
        return None
    text = str(root).strip().lower()
    return "http" if text.startswith(("http://", "https://")) else "local"


def _device(raw: str | None) -> Device | None:
    if raw is None or not raw.strip():
        return None
    return Device.parse(raw, source="IM_DEFAULT_DEVICE environment variable")


def _csv(value: str, *, lower: bool = False) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    return [v.lower() for v in items] if lower else items


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def _number(env: dict[str, str], name: str, default: float, kind: type, *, minimum: float) -> float | int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a {kind.__name__}; unset it or give a number.") from None
    if not math.isfinite(value):  # nan compares False with everything (a wait that never ends); inf overflows later
        raise ConfigurationError(f"{name}={raw!r} is not a finite number; unset it or give a finite number.")
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r} is below the minimum {minimum}.")
    return value


def _log_level(raw: str) -> str:
    level = raw.strip().upper() or "WARNING"
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigurationError(f"IM_LOG_LEVEL={raw!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL.")
    return level


_lock = threading.Lock()
_cached: Settings | None = None


def settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    global _cached
    if _cached is None:
        with _lock:
            if _cached is None:
                _cached = Settings.from_environ()
                import logging

                from im_core._secrets import add_secret

                logging.getLogger("im").setLevel(_cached.log_level)
                add_secret(_cached.roboflow_api_key)  # and the filter that keeps keys out of im's log records
    return _cached


def reload_settings() -> Settings:
    """Forget the cached settings and read the environment again."""
    global _cached
    with _lock:
        _cached = None
    return settings()
