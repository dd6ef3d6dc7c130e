"""HTTP with retries and a status → error mapping shared by downloads and weights providers.

``requests`` is imported inside functions so that ``import im_core._cache`` stays cheap. TLS verification is never
turned off. URLs are logged and put in errors only through :func:`redact_url` (no query string: signed URLs and
keys stay out of logs).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from im_core._cache._paths import redact_url, scrub
from im_core.errors import (
    ForbiddenError,
    ImError,
    ModelNotFoundError,
    PaymentRequiredError,
    ProviderUnavailableError,
    RetrievalError,
    UnauthorizedError,
    UsagePausedError,
)

__all__ = ["RETRYABLE_STATUS", "backoff_delay", "error_for_status", "http_session", "request_with_retries"]

log = logging.getLogger("im.http")

#: statuses worth another try: request timeout, rate limit, server errors.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

_STATUS_ERRORS: dict[int, tuple[type[ImError], str]] = {
    401: (UnauthorizedError, "the credentials were refused; check the API key (ROBOFLOW_API_KEY or api_key=)"),
    402: (PaymentRequiredError, "the provider requires a paid plan for this"),
    403: (ForbiddenError, "the credentials may not access this; check the workspace and the key's scope"),
    404: (ModelNotFoundError, "not found; check the model id (and the registry root)"),
    423: (UsagePausedError, "the account's usage is paused; resume it in the provider's dashboard"),
}

_local = threading.local()


class _RedactQueries(logging.Filter):
    """Strips query strings from the arguments of urllib3's request log lines (signed URLs, ``api_key=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "?" in a for a in record.args):
            record.args = tuple(
                a.split("?", 1)[0] + "?<redacted>" if isinstance(a, str) and "?" in a else a for a in record.args
            )
        return True


_redaction_installed = False


def _install_redaction() -> None:
    global _redaction_installed
    if not _redaction_installed:
        _redaction_installed = True
        logging.getLogger("urllib3.connectionpool").addFilter(_RedactQueries())


def http_session() -> Any:
    """A ``requests.Session`` per thread (connection reuse; TLS verification on)."""
    session = getattr(_local, "session", None)
    if session is None:
        _install_redaction()
        import requests

        session = requests.Session()
        session.verify = True
        session.trust_env = True
        _local.session = session
    return session


def backoff_delay(attempt: int, *, base_s: float = 0.25, cap_s: float = 8.0, retry_after: str | None = None) -> float:
    """Seconds to sleep before attempt ``attempt + 1`` (exponential with jitter; honours ``Retry-After``)."""
    if retry_after:
        try:
            return min(float(retry_after), cap_s * 4)
        except ValueError:
            pass
    return min(cap_s, base_s * (2**attempt)) * (0.8 + 0.4 * random.random())


def error_for_status(status: int, what: str, url: str, *, default: type[ImError] = RetrievalError) -> ImError:
    """The im error for an HTTP failure status (never carries the query string of ``url``)."""
    cls, hint = _STATUS_ERRORS.get(status, (default, "the server refused the request"))
    return cls(f"{what}: HTTP {status} from {redact_url(url)}: {hint}.", status_code=status)


def request_with_retries(
    url: str,
    *,
    what: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float,
    retries: int,
    stream: bool = False,
    secrets: tuple[str | None, ...] = (),
    unavailable: type[ImError] = ProviderUnavailableError,
    on_wait: Callable[[], None] | None = None,
) -> Any:
    """GET ``url`` and return the 2xx response, retrying connection errors and 408/429/5xx with backoff.

    Args:
        what: words for error messages ("metadata of model 'x'").
        timeout_s: connect and read timeout of one attempt, in seconds.
        retries: total attempts (>= 1).
        secrets: strings (API keys) scrubbed from any message.
        unavailable: error class raised when every attempt failed on connection errors or retryable statuses.
        on_wait: called before each backoff sleep (lock heartbeats).

    Raises:
        UnauthorizedError, PaymentRequiredError, ForbiddenError, ModelNotFoundError, UsagePausedError: at once.
        ``unavailable``: after the last attempt.
    """
    import requests

    session = http_session()
    last = ""
    retry_after: str | None = None
    for attempt in range(max(1, retries)):
        if attempt:
            if on_wait is not None:
                on_wait()
            time.sleep(backoff_delay(attempt - 1, retry_after=retry_after))
        retry_after = None
        try:
            response = session.get(url, params=params, headers=headers, timeout=timeout_s, stream=stream)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = scrub(f"{type(exc).__name__}", secrets)
            log.info("%s: %s from %s (attempt %d/%d)", what, last, redact_url(url), attempt + 1, retries)
            continue
        if response.status_code < 300:
            return response
        status = response.status_code
        response.close()
        if status in RETRYABLE_STATUS:
            retry_after = response.headers.get("Retry-After")
            last = f"HTTP {status}"
            log.info("%s: HTTP %d from %s (attempt %d/%d)", what, status, redact_url(url), attempt + 1, retries)
            continue
        raise error_for_status(status, what, url)
    raise unavailable(
        f"{what}: {redact_url(url)} failed after {max(1, retries)} attempts (last: {last}). Check the network and the "
        "host, raise IM_DOWNLOAD_RETRIES / IM_DOWNLOAD_TIMEOUT, or use IM_OFFLINE=1 with a cached model.",
        attempts=max(1, retries),
    )
