"""Metadata resolution: ask the provider online (and snapshot the answer), read the snapshot offline."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from im_core._cache._paths import validate_model_id
from im_core._cache._store import ModelCache
from im_core._config import settings
from im_core._metadata import ModelMetadata
from im_core._secrets import add_secret, scrub_error
from im_core.errors import OfflineModeError, ProviderUnavailableError

__all__ = ["resolve_metadata"]

log = logging.getLogger("im.cache")


def snapshot_namespace(provider_name: str, provider: Any, provider_options: dict[str, Any] | None) -> str:
    """Where snapshots of a provider live: its name, plus a digest of what it is connected to.

    Two registries served by the same provider type (two ``http`` roots) must not overwrite each other's snapshot of
    the same model id, and one registry must be found however it was named: ``IM_REGISTRY`` or
    ``provider_options={'root': ...}``, with or without a trailing slash, with or without ``retries=``. So the key is
    the provider's ``snapshot_key`` (its effective source: a registry's normalised root, an API host) when it has
    one; a provider without it is keyed by its literal options.
    """
    import hashlib
    import json

    key = getattr(provider, "snapshot_key", None) if provider is not None else None
    if isinstance(key, str) and key:
        identity: Any = {"source": key}
    elif provider_options:
        identity = provider_options
    else:
        return provider_name
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return f"{provider_name}-{digest[:12]}"


def credential_digest(*keys: str | None) -> str | None:
    """A short digest of the credentials a provider answer was given for (the first non-empty key), ``None`` for
    none; stored in snapshots so a fresh one is reused only for the same credentials. Keys are never stored."""
    import hashlib

    key = next((k for k in keys if k), None)
    return None if key is None else hashlib.sha256(f"im-credential:{key}".encode()).hexdigest()[:16]


def _load_snapshot(cache: ModelCache, namespace: str, provider_name: str, model_id: str) -> ModelMetadata | None:
    exact = cache.load_metadata(namespace, model_id)
    return exact if exact is not None or namespace == provider_name else None


def _offline_provider(provider_name: str, provider_options: dict[str, Any] | None) -> Any:
    """The provider instance, to learn its ``snapshot_key`` (constructing one opens no socket); ``None`` when it
    cannot be built offline (no registry root configured, a plugin that needs the network): the snapshot is then
    looked up by the literal options, as a provider without ``snapshot_key`` is."""
    from im_core._plugins import registry
    from im_core.errors import ConfigurationError, DependencyError

    try:
        return registry().provider(provider_name, **(provider_options or {}))
    except (ConfigurationError, DependencyError):
        return None


def resolve_metadata(
    provider_name: str,
    model_id: str,
    *,
    api_key: str | None = None,
    offline: bool | None = None,
    provider_options: dict[str, Any] | None = None,
    cache: ModelCache | None = None,
    reuse_fresh: Callable[[ModelMetadata], bool] | None = None,
) -> ModelMetadata:
    """The metadata of ``model_id`` from the weights provider ``provider_name``.

    Online, the provider is asked and the answer is saved as a snapshot (without credentials); if the provider
    cannot be reached at all, a saved snapshot is used instead, with a warning. Offline (``offline=True`` or
    ``IM_OFFLINE=1``), only the snapshot is read and no socket is opened.

    ``reuse_fresh``: when given, a snapshot this provider source confirmed less than ``IM_METADATA_TTL`` seconds
    ago for the same credentials is offered to it, and returned without asking the provider if it answers True
    (``AutoModel`` answers True when the package it would load is entirely in the cache: a snapshot's file URLs may
    have lost their credentials or expired, so it is never used to download).

    Raises:
        OfflineModeError: offline and this model was never resolved online.
        RetrievalError subclasses: from the provider (not found, unauthorized, ...).
    """
    validate_model_id(model_id)
    add_secret(api_key, (provider_options or {}).get("api_key"))
    cache = cache if cache is not None else ModelCache()
    cache.check_home()  # IM_HOME is a folder (ConfigurationError if it is a file)
    offline = settings().offline if offline is None else offline
    if offline:
        provider = _offline_provider(provider_name, provider_options)
        namespace = snapshot_namespace(provider_name, provider, provider_options)
        snapshot = _load_snapshot(cache, namespace, provider_name, model_id)
        if snapshot is None:
            raise OfflineModeError(
                f"Offline mode is on and model {model_id!r} (provider {provider_name!r}) was never cached in "
                f"{cache.root}. Load it once with network access (unset IM_OFFLINE or pass offline=False), or "
                "point IM_HOME at a cache that holds it.",
                model_id=model_id,
            )
        return snapshot
    from im_core._plugins import registry

    provider = registry().provider(provider_name, **(provider_options or {}))
    namespace = snapshot_namespace(provider_name, provider, provider_options)
    options_key = (provider_options or {}).get("api_key")
    credential = credential_digest(api_key, options_key if isinstance(options_key, str) else None, _env_key(provider))
    ttl = settings().metadata_ttl_s if reuse_fresh is not None else 0.0
    fresh = cache.fresh_metadata(namespace, model_id, max_age_s=ttl, credential=credential)
    if fresh is not None and reuse_fresh is not None and reuse_fresh(fresh):  # confirmed within IM_METADATA_TTL
        log.debug("metadata of %r from a snapshot younger than IM_METADATA_TTL (provider not asked)", model_id)
        return fresh
    try:
        try:
            metadata = provider.get_model_metadata(model_id, api_key=api_key)
        except Exception as exc:  # a server may echo the key inside its answer, and a parse error quote it
            scrub_error(exc, (api_key,))
            raise
    except ProviderUnavailableError:
        snapshot = _load_snapshot(cache, namespace, provider_name, model_id)
        if snapshot is None:
            raise
        log.warning("provider %r is unreachable; using the cached metadata of %r", provider_name, model_id)
        return snapshot
    if metadata.provider is None:
        metadata = metadata.model_copy(update={"provider": provider_name})
    secrets = (api_key, settings().roboflow_api_key)
    try:
        cache.save_metadata(provider_name, model_id, metadata, secrets=secrets, credential=credential)  # the latest
        if namespace != provider_name:  # exact, for this provider's source (what offline and the TTL read)
            cache.save_metadata(namespace, model_id, metadata, secrets=secrets, credential=credential)
    except OSError as exc:  # a read-only or full IM_HOME: the model still loads online (from what the cache holds)
        error = cache.storage_error(exc, f"saving the metadata snapshot of {model_id!r}")
        reason = error.message if error is not None else f"{type(exc).__name__}: {exc}"
        level = logging.WARNING if str(cache.root) not in _SNAPSHOT_WARNED else logging.DEBUG
        _SNAPSHOT_WARNED.add(str(cache.root))
        log.log(level, "Could not save the metadata snapshot of %r, so it cannot load offline: %s", model_id, reason)
    return metadata


def _env_key(provider: Any) -> str | None:
    """The key a provider falls back to from the environment (Roboflow's ``ROBOFLOW_API_KEY``), for the digest."""
    return settings().roboflow_api_key if getattr(provider, "name", None) == "roboflow" else None


#: caches whose snapshot-write failure was already reported at WARNING in this process (later ones go to DEBUG)
_SNAPSHOT_WARNED: set[str] = set()
