"""Known API keys, kept out of every log record of the ``im`` loggers, of provider errors and of the CLI's output.

A key becomes known when im reads it (``ROBOFLOW_API_KEY``) or is handed it (``api_key=`` of ``from_pretrained``
and ``resolve_metadata``, an ``api_key`` provider option). From then on:

* :class:`SecretFilter`, attached to every ``im`` logger (:data:`LOGGERS`, and any ``im.*`` logger that exists when
  :func:`install` runs), replaces it with ``***`` in each record's message, its formatted traceback and stack;
* :func:`scrub_error` does the same to an exception raised while a provider's answer was fetched or parsed (a server
  that echoes the key inside its metadata puts it in our messages);
* :func:`scrubbing_streams` wraps ``sys.stdout``/``sys.stderr`` while an ``im`` command runs.

Strings shorter than :data:`MIN_SECRET_LENGTH` are not treated as keys: replacing them everywhere would garble
messages (``"local"`` is a placeholder key, not a secret).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

__all__ = [
    "LOGGERS",
    "MIN_SECRET_LENGTH",
    "SecretFilter",
    "add_secret",
    "install",
    "known_secrets",
    "scrub_error",
    "scrub_known",
    "scrubbing_streams",
]

#: every logger name im's own packages use (a test checks the sources against it); they get the filter even before
#: the module that logs through them is imported
LOGGERS = ("im", "im.cache", "im.http", "im.providers", "im.serve")
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def add_secret(*values: str | None) -> None:
    """Remember API keys (``None``, empty and short strings are ignored) and make sure the filter is installed."""
    global _secrets
    new = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
    if new - set(_secrets):
        with _lock:
            # longest first, so that a key containing another is replaced whole
            _secrets = tuple(sorted(set(_secrets) | new, key=lambda s: (-len(s), s)))
    install()


def known_secrets() -> tuple[str, ...]:
    return _secrets


def scrub_known(text: str, extra: Iterable[str | None] = ()) -> str:
    """``text`` with every known key (and every string of ``extra``) replaced by ``***``."""
    for secret in (*_secrets, *(e for e in extra if e)):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _contains_secret(text: str, extra: tuple[str | None, ...] = ()) -> bool:
    return any(s and s in text for s in (*_secrets, *extra))


class SecretFilter(logging.Filter):
    """Replaces known keys in a record's message (its arguments merged in), traceback text and stack by ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error reporting
            return True
        if _contains_secret(message):
            record.msg, record.args = scrub_known(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and _contains_secret(record.exc_text):
            record.exc_text = scrub_known(record.exc_text)
        if record.stack_info and _contains_secret(record.stack_info):
            record.stack_info = scrub_known(record.stack_info)
        return True


_FILTER = SecretFilter()


def install() -> None:
    """Attach the filter to each logger of :data:`LOGGERS` and to every existing ``im.*`` logger (idempotent)."""
    names = set(LOGGERS) | {n for n in list(logging.root.manager.loggerDict) if n.startswith("im.")}
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def scrub_error(exc: BaseException, extra: Iterable[str | None] = ()) -> BaseException:
    """Remove known keys (and ``extra``) from ``exc`` in place: its message, string arguments and string context
    values; a chained cause or context that holds one is dropped. Returns ``exc``."""
    extras = tuple(e for e in extra if e)
    if not _secrets and not extras:
        return exc
    message = getattr(exc, "message", None)
    if isinstance(message, str) and _contains_secret(message, extras):
        exc.message = scrub_known(message, extras)  # type: ignore[attr-defined]
    if any(isinstance(a, str) and _contains_secret(a, extras) for a in exc.args):
        exc.args = tuple(scrub_known(a, extras) if isinstance(a, str) else a for a in exc.args)
    context = getattr(exc, "context", None)
    if isinstance(context, dict):
        for key, value in list(context.items()):
            if isinstance(value, str) and _contains_secret(value, extras):
                context[key] = scrub_known(value, extras)
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None and _contains_secret(f"{linked!s} {linked!r}", extras):
            exc.__cause__ = None
            exc.__suppress_context__ = True
            exc.__context__ = None
            break
    return exc


class _ScrubbingStream:
    """A text stream that writes through to ``stream`` with known keys replaced."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub_known(text) if isinstance(text, str) else text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def scrubbing_streams() -> Iterator[None]:
    """While inside, ``sys.stdout`` and ``sys.stderr`` replace known keys with ``***`` (the ``im`` command)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ScrubbingStream(saved[0]), _ScrubbingStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
