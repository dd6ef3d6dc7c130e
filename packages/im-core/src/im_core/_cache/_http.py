"""HTTP with retries and a status → error mapping shared by downloads and weights providers.

``requests`` is imported inside functions so that ``import im_core._cache`` stays cheap. TLS verification is never
turned off. URLs are logged and put in errors only through :func:`redact_url` (no query string: signed URLs and
keys stay out of logs).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from im_core._cache._paths import redact_url, scrub
from im_core._json import load_json
from im_core.errors import (
    ForbiddenError,
    ImError,
    IncompleteDownloadError,
    MalformedMetadataError,
    ModelNotFoundError,
    PaymentRequiredError,
    ProviderUnavailableError,
    RetrievalError,
    UnauthorizedError,
    UsagePausedError,
)

__all__ = [
    "MAX_RETRY_AFTER_S",
    "RETRYABLE_STATUS",
    "IncompleteBody",
    "backoff_delay",
    "error_for_status",
    "http_session",
    "request_json",
    "request_with_retries",
    "retry_after_delay",
]

log = logging.getLogger("im.http")

#: statuses worth another try: request timeout, rate limit, server errors.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: statuses whose ``Retry-After`` header is honoured (rate limit, service unavailable).
RETRY_AFTER_STATUS = frozenset({429, 503})
#: the longest wait a ``Retry-After`` header can impose, in seconds (a longer one is shortened to this).
MAX_RETRY_AFTER_S = 30.0

T = TypeVar("T")

_STATUS_ERRORS: dict[int, tuple[type[ImError], str]] = {
    401: (UnauthorizedError, "the credentials were refused, or none were sent; check the key the provider needs"),
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


def backoff_delay(attempt: int, *, base_s: float = 0.25, cap_s: float = 8.0) -> float:
    """Seconds to sleep before attempt ``attempt + 2`` (0-based ``attempt``): exponential, capped, with jitter."""
    return min(cap_s, base_s * (2**attempt)) * (0.8 + 0.4 * random.random())


def retry_after_delay(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait, clamped to ``[0, MAX_RETRY_AFTER_S]``; ``None`` if unusable.

    Accepts both forms of RFC 9110 §10.2.3: delay-seconds (``"120"``) and an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``). ``now`` is the POSIX time to measure a date against (default: now).
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        import datetime
        import email.utils

        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a date without a zone is read as UTC
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _sleep(seconds: float, on_wait: Callable[[], None] | None) -> None:
    """Sleep ``seconds``, calling ``on_wait`` before and at least every second (lock heartbeats stay fresh)."""
    deadline = time.monotonic() + seconds
    while True:
        if on_wait is not None:
            on_wait()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 1.0))


class IncompleteBody(Exception):
    """Raised by a ``consume`` callback of :func:`request_with_retries`: the body ended early (or arrived too
    slowly); worth another try.

    Args:
        message: what happened, for the log and the final error ("300000 of 1048576 bytes").
        error: the class raised when the last attempt ends this way (default :class:`IncompleteDownloadError`).
        hint: how to fix it, appended to that error's message.
    """

    def __init__(self, message: str, *, error: type[ImError] | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.error = error
        self.hint = hint


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*")


def _safe_text(exc: BaseException, secrets: tuple[str | None, ...]) -> str:
    """``exc``'s text with every URL in it reduced to scheme://host/path and the secrets scrubbed."""
    return scrub(_URL_IN_TEXT.sub(lambda m: redact_url(m.group()), str(exc)), secrets)


def _fatal_request_error(exc: Exception, what: str, url: str, secrets: tuple[str | None, ...]) -> str | None:
    """The message for a ``requests`` failure no retry can cure, or ``None`` for one worth another try.

    A redirect loop, and a URL ``requests`` cannot fetch (a redirect to ``ftp://``, a malformed ``Location``):
    these fail at once. Connection errors, timeouts and bodies cut short (``ChunkedEncodingError``,
    ``ContentDecodingError``, any other ``RequestException``) are retried.
    """
    import requests

    where = redact_url(url)
    if isinstance(exc, requests.TooManyRedirects):
        return f"{what}: {where} redirected more than 30 times (a redirect loop?); the server is misconfigured."
    if isinstance(exc, ValueError):  # InvalidSchema, MissingSchema, InvalidURL, InvalidHeader, urlparse's own
        return (
            f"{what}: {where} led to a URL or header im cannot fetch ({type(exc).__name__}: "
            f"{_safe_text(exc, secrets)}); only http(s) URLs are followed. The registry or its server is "
            "misconfigured."
        )
    return None


def error_for_status(status: int, what: str, url: str, *, default: type[ImError] = RetrievalError) -> ImError:
    """The im error for an HTTP failure status (never carries the query string of ``url``)."""
    cls, hint = _STATUS_ERRORS.get(status, (default, "the server refused the request"))
    return cls(f"{what}: HTTP {status} from {redact_url(url)}: {hint}.", status_code=status)


def request_with_retries(
    url: str,
    *,
    what: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    timeout_s: float,
    retries: int,
    stream: bool = False,
    secrets: tuple[str | None, ...] = (),
    unavailable: type[ImError] = ProviderUnavailableError,
    on_wait: Callable[[], None] | None = None,
    consume: Callable[[Any], T] | None = None,
    retry_status: Callable[[int], bool] | None = None,
) -> Any:
    """GET ``url``, retrying connection errors, 408/429/5xx and (with ``consume``) bodies cut short.

    This is the only retry loop of im's HTTP: ``retries`` is the total number of requests, whatever mix of
    failures happens (``IM_DOWNLOAD_RETRIES=3``: at most 3 requests). Between attempts it sleeps with exponential
    backoff and jitter (:func:`backoff_delay`), or, after a 429 or 503 with a ``Retry-After`` header, as long as
    the server asks when that is longer (at most :data:`MAX_RETRY_AFTER_S` seconds).

    Every ``requests`` exception becomes an im error: connection errors, timeouts and bodies cut short are
    retried; a redirect loop or a redirect to a URL that cannot be fetched (``ftp://``, malformed) fails at once.

    Args:
        what: words for error messages ("metadata of model 'x'").
        headers: request headers, or a function called before each attempt that returns them (a download asks
            for the bytes it still lacks with ``Range``).
        timeout_s: connect and read timeout of one attempt, in seconds.
        retries: total attempts (>= 1; 1 means no retry).
        secrets: strings (API keys) scrubbed from any message.
        unavailable: error class raised when every attempt failed on connection errors or retryable statuses, and
            at once for a redirect loop or an unusable URL.
        on_wait: called before and during each backoff sleep (lock heartbeats).
        consume: called with each 2xx response (closed afterwards); its result is returned. It raises
            :class:`IncompleteBody` when the body ended early, which counts as a failed attempt. Without it the
            open 2xx response itself is returned (the caller closes it).
        retry_status: called with any other failure status that is not retried anyway; when it returns True the
            answer counts as a failed attempt worth another try (a 416 after the caller dropped its ``Range``).

    Raises:
        UnauthorizedError, PaymentRequiredError, ForbiddenError, ModelNotFoundError, UsagePausedError: at once.
        ``unavailable``: after the last attempt, when it failed on the connection or the status; at once for a
            redirect loop or a URL that cannot be fetched.
        IncompleteDownloadError (or the :class:`IncompleteBody`'s ``error``): after the last attempt, when its
            body ended early.
    """
    import requests

    session = http_session()
    attempts = max(1, retries)
    last = ""
    body_failure: IncompleteBody | None = None
    delay = 0.0
    for attempt in range(attempts):
        if attempt:
            _sleep(delay, on_wait)
        delay = backoff_delay(attempt)
        sent_headers = headers() if callable(headers) else headers
        try:
            response = session.get(url, params=params, headers=sent_headers, timeout=timeout_s, stream=stream)
        except (requests.RequestException, ValueError) as exc:
            fatal = _fatal_request_error(exc, what, url, secrets)
            if fatal is not None:
                raise unavailable(fatal) from None
            last, body_failure = scrub(f"{type(exc).__name__}", secrets), None
            log.info("%s: %s from %s (attempt %d/%d)", what, last, redact_url(url), attempt + 1, attempts)
            continue
        status = response.status_code
        if status < 300:
            if consume is None:
                return response
            try:
                return consume(response)
            except IncompleteBody as exc:
                last, body_failure = str(exc), exc
                log.info("%s: body ended early (%s); attempt %d/%d", what, last, attempt + 1, attempts)
                continue
            finally:
                response.close()
        response.close()
        if status not in RETRYABLE_STATUS and not (retry_status is not None and retry_status(status)):
            raise error_for_status(status, what, url)
        last, body_failure = f"HTTP {status}", None
        if status in RETRY_AFTER_STATUS:
            asked = retry_after_delay(response.headers.get("Retry-After"))
            delay = max(asked, delay) if asked is not None else delay  # never below our own backoff ("0" too)
        log.info("%s: HTTP %d from %s (attempt %d/%d)", what, status, redact_url(url), attempt + 1, attempts)
    if body_failure is not None and body_failure.error not in (None, IncompleteDownloadError):
        raise body_failure.error(
            f"{what}: {redact_url(url)} failed after {attempts} attempts (last: {last}). {body_failure.hint}".rstrip(),
            attempts=attempts,
        )
    if body_failure is not None:
        hint = body_failure.hint or "partial data was discarded."
        raise IncompleteDownloadError(
            f"{what}: the connection from {redact_url(url)} kept closing before the whole file arrived ({last}) after "
            f"{attempts} attempts. Check the network or the server; {hint}",
            attempts=attempts,
        )
    raise unavailable(
        f"{what}: {redact_url(url)} failed after {attempts} attempts (last: {last}). Check the network and the "
        "host, raise IM_DOWNLOAD_RETRIES / IM_DOWNLOAD_TIMEOUT, or use IM_OFFLINE=1 with a cached model.",
        attempts=attempts,
    )


def request_json(
    url: str,
    *,
    what: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float,
    retries: int,
    secrets: tuple[str | None, ...] = (),
    max_bytes: int | None = None,
) -> Any:
    """GET a JSON document (a provider's metadata answer) with :func:`request_with_retries` and parse it with
    :func:`~im_core.sdk.load_json`.

    A body cut short is retried like a connection error (after the last attempt: :class:`ProviderUnavailableError`,
    so a saved snapshot can stand in). ``max_bytes`` (default ``IM_METADATA_MAX_BYTES``) bounds what is read: a
    longer body is refused without reading it all.

    Raises:
        MalformedMetadataError: larger than ``max_bytes``, not JSON, or nested too deep (not retried).
        The errors of :func:`request_with_retries` (401/403/404 at once, ``ProviderUnavailableError`` after retries).
    """
    import requests
    import urllib3

    if max_bytes is None:
        from im_core._config import settings

        max_bytes = settings().metadata_max_bytes
    limit, unavailable = max_bytes, ProviderUnavailableError
    where = f"{what} from {redact_url(url)}"

    def too_big(size: str) -> MalformedMetadataError:
        return MalformedMetadataError(
            f"{where} is {size} bytes, more than the {limit} im reads (IM_METADATA_MAX_BYTES); a metadata document is "
            "a few KB. If it really is that big, raise IM_METADATA_MAX_BYTES."
        )

    def consume(response: Any) -> Any:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_big(declared)
        body = bytearray()
        try:
            for chunk in response.iter_content(chunk_size=64 << 10):
                body += chunk
                if len(body) > limit:
                    raise too_big("more than " + str(limit))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise IncompleteBody(f"{type(exc).__name__} after {len(body)} bytes", error=unavailable) from None
        return load_json(bytes(body), what=where, max_bytes=limit)

    return request_with_retries(
        url,
        what=what,
        params=params,
        headers=headers,
        timeout_s=timeout_s,
        retries=retries,
        stream=True,
        secrets=secrets,
        unavailable=unavailable,
        consume=consume,
    )
