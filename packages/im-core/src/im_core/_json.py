"""The one JSON reader for documents im gets from elsewhere: provider answers, registry ``metadata.json`` files,
metadata snapshots in the cache.

``json.loads`` alone lets a hostile or broken document through in two ways: deep nesting (``[[[[...``) raises a
raw ``RecursionError`` (not a ``ValueError``), and a huge body is read and parsed whole. :func:`load_json` bounds
both and turns every failure into one im error class (:class:`~im_core.errors.MalformedMetadataError` by default).
"""

from __future__ import annotations

import json
from typing import Any

from im_core.errors import ImError, MalformedMetadataError

__all__ = ["MAX_JSON_DEPTH", "json_depth_exceeds", "load_json"]

#: the deepest nesting of arrays and objects accepted (a model metadata document is about 6 levels deep).
MAX_JSON_DEPTH = 64


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests arrays/objects more than ``limit`` levels deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def load_json(
    data: bytes | str,
    *,
    what: str,
    max_bytes: int | None = None,
    max_depth: int = MAX_JSON_DEPTH,
    error: type[ImError] = MalformedMetadataError,
) -> Any:
    """Parse a JSON document from elsewhere, bounded in size and depth.

    Args:
        what: words for the error message ("metadata of model 'x' from https://...", a file path).
        max_bytes: the largest document accepted, in bytes (``None``: no bound); ``IM_METADATA_MAX_BYTES`` is the
            setting callers pass for metadata.
        max_depth: the deepest nesting of arrays/objects accepted.
        error: the class raised for every failure.

    Raises:
        ``error``: the document is larger than ``max_bytes``, not UTF-8 JSON, or nested deeper than ``max_depth``.
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if max_bytes is not None and size > max_bytes:
        raise error(
            f"{what} is {size} bytes, more than the {max_bytes} im reads (IM_METADATA_MAX_BYTES); a metadata "
            "document is a few KB. If it really is that big, raise IM_METADATA_MAX_BYTES."
        )
    try:
        value = json.loads(data)
    except RecursionError:
        value, deep = None, True
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise error(f"{what} is not readable JSON ({type(exc).__name__}: {exc}).") from None
    else:
        deep = json_depth_exceeds(value, max_depth)
    if deep:
        raise error(f"{what} is nested more than {max_depth} levels deep; it is not a metadata document.")
    return value
