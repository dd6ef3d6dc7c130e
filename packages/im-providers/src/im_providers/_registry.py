"""Self-hosted registries: ``<root>/<model_id>/metadata.json`` in the Roboflow wire shape.

* ``local``: ``root`` is a folder (or a ``file://`` URL); file URLs become ``file://`` URLs.
* ``http``: ``root`` is an ``http(s)://`` URL of any static server or bucket; relative file URLs resolve against
  the ``metadata.json`` URL.

``root`` defaults to ``IM_REGISTRY``. Model ids may contain ``/`` (``mediapipe/face-detector``); ids that would
leave the registry (``..``, absolute, backslashes) are refused with :class:`UnsafePathError`.

Registering a provider of your own
----------------------------------
A provider is any class taking keyword options whose instances have ``name`` and
``get_model_metadata(model_id, *, api_key=None) -> ModelMetadata`` (file URLs absolute). Declare it with an entry
point in the group ``im.weights_providers`` pointing at a :class:`im_core.ProviderManifest`, or at runtime::

    from im_core import ProviderManifest, register
    register(ProviderManifest(name="s3", target="my_pkg.providers:S3Provider", distribution="my-pkg"))
    AutoModel.from_pretrained("coco/3", weights_provider="s3")

Reuse :func:`im_providers.parse_model_metadata` if your source serves the same wire document.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote, urlsplit

from im_core.errors import ConfigurationError, MalformedMetadataError, ModelNotFoundError, UnsafePathError
from im_core.sdk import ModelMetadata, load_json, request_json, settings, validate_model_id
from im_providers._wire import parse_model_metadata

__all__ = ["METADATA_FILE", "HttpRegistryProvider", "LocalRegistryProvider"]

log = logging.getLogger("im.providers")

METADATA_FILE = "metadata.json"


def _root_or_setting(root: str | Path | None, name: str) -> str:
    value = str(root) if root is not None else settings().registry_url
    if not value:
        raise ConfigurationError(
            f"The {name!r} weights provider needs a registry root: pass provider_options={{'root': ...}} or set "
            "IM_REGISTRY (a folder for 'local', an http(s):// URL for 'http')."
        )
    return value


class LocalRegistryProvider:
    """Reads ``<root>/<model_id>/metadata.json`` from a folder."""

    name = "local"

    def __init__(self, root: str | Path | None = None) -> None:
        value = _root_or_setting(root, self.name)
        scheme = urlsplit(value).scheme
        if scheme == "file":
            from urllib.request import url2pathname  # imports http.client and ssl: only for a file:// root

            value = url2pathname(urlsplit(value).path)
        elif scheme in ("http", "https"):
            raise ConfigurationError(f"The 'local' provider needs a folder, got the URL {value!r}; use 'http'.")
        self.root = Path(value).expanduser().resolve()

    @property
    def snapshot_key(self) -> str:
        """The registry folder (resolved): offline snapshots are found however the root was given."""
        return str(self.root)

    def get_model_metadata(self, model_id: str, *, api_key: str | None = None) -> ModelMetadata:
        """Parse ``<root>/<model_id>/metadata.json``; ``api_key`` is ignored.

        Raises:
            UnsafePathError: the id leaves the registry. ModelNotFoundError: no such entry.
            MalformedMetadataError: not JSON, nested too deep, larger than ``IM_METADATA_MAX_BYTES``, or not a
                model description.
        """
        validate_model_id(model_id)
        path = (self.root / model_id / METADATA_FILE).resolve()
        if not path.is_relative_to(self.root):
            raise UnsafePathError(f"Model id {model_id!r} resolves outside the registry {self.root}; refusing it.")
        if not path.is_file():
            raise ModelNotFoundError(
                f"Model {model_id!r} is not in the registry {self.root} (no {model_id}/{METADATA_FILE}). "
                "Add it with `im registry add` or check the id.",
                model_id=model_id,
            )
        limit = settings().metadata_max_bytes
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)  # one byte more than allowed tells a too-large file without reading it all
        except OSError as exc:
            raise MalformedMetadataError(f"{path} is not readable ({type(exc).__name__}: {exc}).") from None
        document = load_json(data, what=str(path), max_bytes=limit)
        return parse_model_metadata(
            document, model_id=model_id, base_url=path.as_uri(), provider=self.name, default_trusted=True
        )


class HttpRegistryProvider:
    """Fetches ``<root>/<model_id>/metadata.json`` over HTTP(S) (TLS verified; retries 408/429/5xx)."""

    name = "http"

    def __init__(self, root: str | None = None, *, timeout_s: float | None = None, retries: int | None = None) -> None:
        value = _root_or_setting(root, self.name)
        if urlsplit(value).scheme not in ("http", "https"):
            raise ConfigurationError(f"The 'http' provider needs an http(s):// URL, got {value!r}; use 'local'.")
        self.root = value.rstrip("/") + "/"
        self.timeout_s = timeout_s if timeout_s is not None else settings().download_timeout_s
        self.retries = retries if retries is not None else settings().download_retries

    @property
    def snapshot_key(self) -> str:
        """The registry URL (normalised; timeouts and retries are not part of it): offline snapshots are found
        however the root was given (``IM_REGISTRY`` or ``provider_options``)."""
        return self.root

    def metadata_url(self, model_id: str) -> str:
        validate_model_id(model_id)
        return self.root + "/".join(quote(part, safe="") for part in model_id.split("/")) + "/" + METADATA_FILE

    def get_model_metadata(self, model_id: str, *, api_key: str | None = None) -> ModelMetadata:
        """GET the entry's ``metadata.json`` and parse it; ``api_key`` is ignored.

        Raises:
            ModelNotFoundError (404), UnauthorizedError (401), ForbiddenError (403), ProviderUnavailableError
            (connection errors, bodies cut short, 5xx after retries; a redirect loop at once), MalformedMetadataError
            (not JSON, nested too deep, larger than ``IM_METADATA_MAX_BYTES``, not a model description).
        """
        url = self.metadata_url(model_id)
        document = request_json(
            url, what=f"metadata of model {model_id!r}", timeout_s=self.timeout_s, retries=self.retries
        )
        return parse_model_metadata(document, model_id=model_id, base_url=url, provider=self.name, default_trusted=True)
