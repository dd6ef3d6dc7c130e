"""The Roboflow weights API: ``GET {host}/models/v1/external/weights?modelId=...`` with a bearer key.

Pages are followed through ``nextPage`` → ``startAfter`` (at most :data:`MAX_PAGES`), and every page's
``modelPackages`` are parsed by the one wire parser. 408/429/5xx and connection errors are retried with backoff;
401/402/403/404/423 raise distinct errors at once. The key never appears in logs, errors or the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from im_core.errors import ImError, InvalidParameterError, MalformedMetadataError, UnauthorizedError
from im_core.sdk import ModelMetadata, request_json, scrub, settings, validate_model_id
from im_providers._wire import check_field, parse_model_metadata

__all__ = ["MAX_PAGES", "RoboflowProvider"]

log = logging.getLogger("im.providers")

MAX_PAGES = 10
WEIGHTS_PATH = "/models/v1/external/weights"


class RoboflowProvider:
    """Client of the Roboflow weights API.

    Args:
        api_host: base URL (default ``ROBOFLOW_API_HOST`` or ``https://api.roboflow.com``).
        api_key: default key (else ``ROBOFLOW_API_KEY``); a per-call ``api_key`` wins.
        page_size: ``pageSize`` query parameter, when set.
        timeout_s: per-request timeout in seconds (default ``IM_DOWNLOAD_TIMEOUT``).
        retries: attempts per page (default ``IM_DOWNLOAD_RETRIES``).
        extra_headers: headers sent with every API request (a gateway's or deployment's own), never logged; they
            cannot replace ``Authorization``, which comes from the key.
        extra_query_params: query parameters added to every API request (they cannot replace ``modelId``,
            ``pageSize`` or ``startAfter``).

    Raises:
        InvalidParameterError: ``extra_headers`` / ``extra_query_params`` is not a mapping of strings to strings, or
            names a header or parameter im sets itself.
    """

    name = "roboflow"

    def __init__(
        self,
        api_host: str | None = None,
        api_key: str | None = None,
        *,
        page_size: int | None = None,
        timeout_s: float | None = None,
        retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query_params: Mapping[str, str] | None = None,
    ) -> None:
        s = settings()
        self.extra_headers = _string_map(extra_headers, "extra_headers", reserved={"authorization"})
        self.extra_query_params = _string_map(
            extra_query_params, "extra_query_params", reserved={"modelid", "pagesize", "startafter"}
        )
        self.api_host = (api_host or s.roboflow_api_host).rstrip("/")
        self._api_key = api_key
        self.page_size = page_size
        self.timeout_s = timeout_s if timeout_s is not None else s.download_timeout_s
        self.retries = retries if retries is not None else s.download_retries

    @property
    def snapshot_key(self) -> str:
        """The API host: offline snapshots are found whether it came from ``ROBOFLOW_API_HOST`` or an option."""
        return self.api_host

    def __repr__(self) -> str:
        return f"RoboflowProvider(api_host={self.api_host!r})"

    def get_model_metadata(self, model_id: str, *, api_key: str | None = None) -> ModelMetadata:
        """Every page of the model's metadata, parsed.

        Raises:
            UnauthorizedError (401), PaymentRequiredError (402), ForbiddenError (403), ModelNotFoundError (404),
            UsagePausedError (423), ProviderUnavailableError (retries exhausted), MalformedMetadataError.
        """
        validate_model_id(model_id)
        key = api_key or self._api_key or settings().roboflow_api_key
        headers = dict(self.extra_headers)
        if key and key != "local":
            headers["Authorization"] = f"Bearer {key}"
        url = self.api_host + WEIGHTS_PATH
        first: dict[str, Any] | None = None
        packages: list[Any] = []
        cursor: str | None = None
        for page_no in range(1, MAX_PAGES + 1):
            params: dict[str, Any] = {**self.extra_query_params, "modelId": model_id}
            if self.page_size:
                params["pageSize"] = self.page_size
            if cursor:
                params["startAfter"] = cursor
            try:
                page = self._page(url, params, headers, model_id, key)
            except UnauthorizedError as exc:
                raise self._unauthorized(exc, model_id, key, api_key) from None
            first = first or page
            where = f"Roboflow metadata of model {model_id!r} (page {page_no})"
            packages.extend(check_field(page, "modelPackages", list, where=where) or ())
            cursor = check_field(page, "nextPage", str, where=where)
            if not cursor:
                break
        else:
            log.warning("model %r: stopped after %d metadata pages", model_id, MAX_PAGES)
        assert first is not None
        document = {**first, "modelPackages": packages}
        return parse_model_metadata(document, model_id=model_id, provider=self.name)

    def _unauthorized(
        self, exc: UnauthorizedError, model_id: str, key: str | None, call_key: str | None
    ) -> UnauthorizedError:
        """A 401 that says whether a key was sent at all and, if so, where it came from."""
        status = f"Roboflow refused the request for model {model_id!r} (HTTP 401 from {self.api_host})"
        if not key or key == "local":
            why = (
                "the key 'local' is a placeholder and is never sent"
                if key
                else "none was passed as api_key= and ROBOFLOW_API_KEY is not set"
            )
            message = (
                f"{status}: no API key was sent ({why}), and this model needs one. Fix: set "
                "ROBOFLOW_API_KEY=<your key> or pass api_key=... (keys: https://app.roboflow.com/settings/api). If "
                "the model lives in your own registry, select it instead: weights_provider='local' (or 'http') "
                "with IM_REGISTRY=<registry folder or URL>."
            )
        else:
            origin = (
                "the api_key= argument"
                if call_key
                else "the provider's api_key option"
                if self._api_key
                else "the ROBOFLOW_API_KEY environment variable"
            )
            message = (
                f"{status}: the API key from {origin} was refused (invalid, revoked, or for another host). "
                "Fix: check the key in your Roboflow workspace settings and set it again."
            )
        return UnauthorizedError(message, **exc.context)

    def _page(
        self, url: str, params: dict[str, Any], headers: dict[str, str], model_id: str, key: str | None
    ) -> dict[str, Any]:
        try:
            body = request_json(
                url,
                what=f"Roboflow metadata of model {model_id!r}",
                params=params,
                headers=headers,
                timeout_s=self.timeout_s,
                retries=self.retries,
                secrets=(key,),
            )
        except ImError as exc:  # belt and braces: no key in any message
            exc.message = scrub(exc.message, (key,))
            exc.args = (exc.message,)
            raise
        page = body.get("modelMetadata") if isinstance(body, dict) else None
        if not isinstance(page, dict):
            raise MalformedMetadataError(f"Roboflow's answer for model {model_id!r} has no 'modelMetadata' object.")
        return page


def _string_map(value: Mapping[str, str] | None, name: str, *, reserved: set[str]) -> dict[str, str]:
    """``value`` as a dict of strings; a name im sets itself (compared case-insensitively) is refused."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidParameterError(
            f"{name} must be a dict of strings to strings, e.g. {name}={{'X-Gateway': 'eu-1'}}; got "
            f"{type(value).__name__}."
        )
    clash = sorted(k for k in value if k.lower() in reserved)
    if clash:
        raise InvalidParameterError(f"{name} may not set {clash}: im sets them itself.")
    return dict(value)
