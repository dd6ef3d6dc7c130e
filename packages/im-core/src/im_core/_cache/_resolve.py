"""Metadata resolution: ask the provider online (and snapshot the answer), read the snapshot offline."""

from __future__ import annotations

import logging
from typing import Any

from im_core._cache._paths import validate_model_id
from im_core._cache._store import ModelCache
from im_core._config import settings
from im_core._metadata import ModelMetadata
from im_core.errors import OfflineModeError, ProviderUnavailableError

__all__ = ["resolve_metadata"]

log = logging.getLogger("im.cache")


def snapshot_namespace(provider_name: str, provider_options: dict[str, Any] | None) -> str:
    """Where snapshots of a provider live: its name, plus a digest of its options (two registries served by the
    same provider type, e.g. two ``http`` roots, must not overwrite each other's snapshot of the same model id)."""
    if not provider_options:
        return provider_name
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(provider_options, sort_keys=True, default=str).encode()).hexdigest()
    return f"{provider_name}-{digest[:12]}"


def _load_snapshot(cache: ModelCache, namespace: str, provider_name: str, model_id: str) -> ModelMetadata | None:
    exact = cache.load_metadata(namespace, model_id)
    return exact if exact is not None or namespace == provider_name else None


def resolve_metadata(
    provider_name: str,
    model_id: str,
    *,
    api_key: str | None = None,
    offline: bool | None = None,
    provider_options: dict[str, Any] | None = None,
    cache: ModelCache | None = None,
) -> ModelMetadata:
    """The metadata of ``model_id`` from the weights provider ``provider_name``.

    Online, the provider is asked and the answer is saved as a snapshot (without credentials); if the provider
    cannot be reached at all, a saved snapshot is used instead, with a warning. Offline (``offline=True`` or
    ``IM_OFFLINE=1``), only the snapshot is read and no socket is opened.

    Raises:
        OfflineModeError: offline and this model was never resolved online.
        RetrievalError subclasses: from the provider (not found, unauthorized, ...).
    """
    validate_model_id(model_id)
    cache = cache if cache is not None else ModelCache()
    namespace = snapshot_namespace(provider_name, provider_options)
    offline = settings().offline if offline is None else offline
    if offline:
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
    try:
        metadata = provider.get_model_metadata(model_id, api_key=api_key)
    except ProviderUnavailableError:
        snapshot = _load_snapshot(cache, namespace, provider_name, model_id)
        if snapshot is None:
            raise
        log.warning("provider %r is unreachable; using the cached metadata of %r", provider_name, model_id)
        return snapshot
    if metadata.provider is None:
        metadata = metadata.model_copy(update={"provider": provider_name})
    secrets = (api_key, settings().roboflow_api_key)
    cache.save_metadata(provider_name, model_id, metadata, secrets=secrets)  # the latest, used by `im cache verify`
    if namespace != provider_name:
        cache.save_metadata(namespace, model_id, metadata, secrets=secrets)  # exact, for this provider's options
    return metadata
