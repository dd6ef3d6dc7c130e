"""Known API keys never reach a log record of the ``im`` loggers (message, arguments, traceback)."""

from __future__ import annotations

import io
import logging
import re
import uuid
from pathlib import Path

import pytest

from im_core._secrets import LOGGERS, add_secret, scrub_error
from im_core.errors import MalformedMetadataError

REPO = Path(__file__).resolve().parents[2]


def test_every_im_logger_of_the_sources_is_filtered() -> None:
    """A module that logs through an ``im`` logger not in LOGGERS would escape the filter until it exists."""
    names: set[str] = set()
    for path in (REPO / "packages").rglob("*.py"):
        names |= set(re.findall(r"getLogger\(\s*[\"'](im(?:\.[\w.]+)?)[\"']\s*\)", path.read_text()))
    assert "im.cache" in names and names <= set(LOGGERS), sorted(names - set(LOGGERS))


def test_the_filter_scrubs_message_arguments_and_traceback() -> None:
    key = f"key-{uuid.uuid4().hex}"
    add_secret(key)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        for name in LOGGERS:
            try:
                raise ValueError(f"the server said {key}")
            except ValueError:
                logging.getLogger(name).warning("answer %s and %r", f"x{key}x", {"k": key}, exc_info=True)
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert text.count("the server said ***") == len(LOGGERS) and "answer x***x and {'k': '***'}" in text
    assert key not in text


def test_scrub_error_cleans_message_context_and_drops_a_leaking_cause() -> None:
    key = f"key-{uuid.uuid4().hex}"
    add_secret(key)

    def fail() -> None:
        try:
            raise ValueError(f"input_value='{key}'")
        except ValueError as cause:
            raise MalformedMetadataError(f"model {key!r} is invalid", model_id=key) from cause

    with pytest.raises(MalformedMetadataError) as info:
        fail()
    exc = scrub_error(info.value)
    assert key not in f"{exc} {exc!r} {exc.message} {exc.context}" and exc.__cause__ is None
