"""A model's class names, resolved in one place with one precedence (DESIGN.md §3).

1. the user's ``class_names=`` (``AutoModel.from_pretrained``);
2. ``class_names.txt`` in the package folder (one name per line; not looked for next to a bare model file);
3. the model's metadata (a provider's ``modelMetadata``, or what a local folder's or file's metadata says);
4. names embedded in the network file (``Session.metadata``: an Ultralytics export's ``names``, a classifier's
   ``labels``...).

:meth:`im_core.PackageContext.class_names` applies it for model families; :mod:`im_core._local` applies the first
three when it describes a local folder or file.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from im_core.errors import CorruptedModelPackageError, InvalidParameterError

__all__ = [
    "CLASS_NAMES_FILE",
    "class_names_argument",
    "EMBEDDED_NAME_KEYS",
    "embedded_class_names",
    "read_class_names_file",
    "resolve_class_names",
    "user_class_names",
]

#: the package file that lists class names, one per line (Roboflow's layout)
CLASS_NAMES_FILE = "class_names.txt"
#: keys of a network file's embedded metadata that may list class names, in the order they are tried
EMBEDDED_NAME_KEYS = ("class_names", "names", "labels", "classes", "character")


def user_class_names(given: Any) -> tuple[str, ...] | None:
    """The user's ``class_names=`` as a tuple of strings; ``None`` when not given (or empty).

    Raises:
        InvalidParameterError: not a list or tuple of strings.
    """
    if given is None:
        return None
    if (
        isinstance(given, (str, bytes))
        or not isinstance(given, (list, tuple))
        or not all(isinstance(n, str) for n in given)
    ):
        raise InvalidParameterError(
            f"class_names must be a list of strings (index = class id), got {given!r}; e.g. class_names=['cat', 'dog']."
        )
    return tuple(given) or None


def read_class_names_file(path: Path) -> tuple[str, ...]:
    """Non-blank, stripped lines of a ``class_names.txt``.

    Raises:
        CorruptedModelPackageError: the file is not UTF-8 text.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptedModelPackageError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}). Fix: save it as UTF-8, one class "
            "name per line, or pass class_names=[...] to from_pretrained."
        ) from exc
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _parse_names(text: str) -> list[str] | None:
    """A list of names from a metadata value: a Python/JSON list or ``{id: name}`` dict, else one name per line."""
    text = text.strip()
    if not text:
        return None
    if text.startswith(("[", "{")):
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
        if isinstance(value, dict):
            try:
                return [str(v) for _, v in sorted((int(k), v) for k, v in value.items())]
            except (TypeError, ValueError):
                return None
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        return None
    return [line.strip() for line in text.splitlines() if line.strip()]


def embedded_class_names(metadata: Mapping[str, str], count: int | None = None) -> tuple[str, ...]:
    """Class names from a network file's metadata (:data:`EMBEDDED_NAME_KEYS`, first that parses).

    With ``count``, only a list of exactly ``count`` names is taken (another key may still match).
    """
    for key in EMBEDDED_NAME_KEYS:
        value = metadata.get(key)
        if not isinstance(value, str):
            continue
        names = _parse_names(value)
        if names and (count is None or len(names) == count):
            return tuple(names)
    return ()


def resolve_class_names(
    *,
    override: Sequence[str] | None,
    folder: Path | None,
    declared: Sequence[str] = (),
    embedded: Mapping[str, str] | None = None,
    count: int | None = None,
    model_id: str = "",
) -> tuple[str, ...]:
    """The class names by the precedence above: ``override`` > ``folder/class_names.txt`` > ``declared`` (the
    model metadata) > ``embedded`` (the network file's metadata); ``()`` when no source has any.

    Args:
        count: the number of classes of the network's output, when known (``None``, or not positive: unknown):
            names from the first three sources must have that many, embedded names of another length are skipped.
        model_id: for error messages.

    Raises:
        InvalidParameterError: ``override`` does not have ``count`` names.
        CorruptedModelPackageError: ``class_names.txt`` is not UTF-8, or it or the metadata does not have
            ``count`` names.
    """
    if count is not None and count <= 0:
        count = None  # a shape that holds no classes is the family's error to report, with the shape
    sources: list[tuple[str, Sequence[str] | None]] = [("class_names=", override)]
    if folder is not None and (folder / CLASS_NAMES_FILE).is_file():
        sources.append((str(folder / CLASS_NAMES_FILE), read_class_names_file(folder / CLASS_NAMES_FILE)))
    sources.append(("the model metadata", declared))
    for source, names in sources:
        if not names:
            continue
        if count is not None and len(names) != count:
            _wrong_count(source, len(names), count, model_id)
        return tuple(names)
    return embedded_class_names(embedded, count) if embedded else ()


def _wrong_count(source: str, got: int, count: int, model_id: str) -> None:
    of = f" of {model_id!r}" if model_id else ""
    if source == "class_names=":
        raise InvalidParameterError(
            f"class_names= lists {got} class names but the network{of} has {count} classes. Fix: pass exactly "
            f"{count} names, in class-id order."
        )
    where = "the model metadata" if source == "the model metadata" else source
    raise CorruptedModelPackageError(
        f"{where} lists {got} class names but the network{of} has {count} classes. Fix: "
        + ("one name per line in that file" if where != "the model metadata" else "correct the model's metadata")
        + f", or pass class_names=[...] ({count} names) to from_pretrained."
    )


def class_names_argument(text: str | None, *, option: str = "--class-names") -> list[str] | None:
    """A command line's class names: ``a,b,c`` or ``@file`` (one name per line); ``None`` when not given.

    Raises:
        InvalidParameterError: the ``@file`` cannot be read (missing, a folder, not UTF-8) or no class is named.
    """
    if text is None:
        return None
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise InvalidParameterError(
                f"{option} {text}: no such file {str(path)!r} (looked in {path.absolute().parent}), so im cannot "
                f"read {str(path)!r}. Give a file with one class name per line, or the names themselves: "
                f"{option} a,b,c."
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else f"{type(exc).__name__}: {exc}"
            raise InvalidParameterError(
                f"{option} {text}: cannot read {str(path)!r} ({reason}). "
                "Give a UTF-8 text file with one class name per line."
            ) from None
        names = [n.strip() for n in lines if n.strip()]
        where = f"the file {str(path)!r}"
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
        where = "the argument"
    if not names:
        raise InvalidParameterError(f"{option} {text}: {where} names no class.")
    return names
