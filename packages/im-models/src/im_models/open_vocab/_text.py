"""Text queries for the open-vocabulary detectors: validation, the folder's tokenizer, and a per-text cache.

The tokenizer is the folder's ``tokenizer.json`` run by the ``tokenizers`` library (im-models' ``[text]`` extra,
imported when a model is built), so ids are those of the model's own tokenizer (OWLv2: CLIP's byte-level BPE;
Grounding DINO: BERT's WordPiece, also readable from a bare ``vocab.txt``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from im_core import PackageContext
from im_core.errors import CorruptedModelPackageError, InvalidParameterError, MissingDependencyError

__all__ = ["QueryCache", "load_tokenizer", "query_list", "token_id"]

_HINT = 'Pass classes=["a cat", "remote control"]: one text query per kind of object to find.'


def query_list(classes: Any) -> tuple[str, ...]:
    """The text queries of a call as a tuple of non-blank strings (one string is one query).

    Raises:
        InvalidParameterError: ``classes`` is missing, empty, or holds something other than non-blank strings.
    """
    if classes is None:
        raise InvalidParameterError(f"An open-vocabulary detector needs text queries (classes=), none given. {_HINT}")
    items: Any = [classes] if isinstance(classes, str) else classes
    if not isinstance(items, (list, tuple)) or not items:
        raise InvalidParameterError(f"classes must be a non-empty list of strings, got {classes!r}. {_HINT}")
    bad = [c for c in items if not isinstance(c, str) or not c.strip()]
    if bad:
        raise InvalidParameterError(f"classes must hold non-blank strings; these are not: {bad!r}. {_HINT}")
    return tuple(items)


def _special(config: dict[str, Any], key: str) -> str | None:
    value = config.get(key)
    if isinstance(value, dict):  # {"content": "[PAD]", ...} in older tokenizer_config.json files
        value = value.get("content")
    return value if isinstance(value, str) else None


def load_tokenizer(ctx: PackageContext, *, vocab_txt: bool = False) -> tuple[Any, dict[str, Any]]:
    """``(tokenizers.Tokenizer, tokenizer_config)`` from ``tokenizer.json`` (or, with ``vocab_txt``, a BERT
    WordPiece tokenizer built from ``vocab.txt`` and the ``do_lower_case`` of ``tokenizer_config.json``).

    Raises:
        MissingDependencyError: ``tokenizers`` is not installed.
        CorruptedModelPackageError: neither file is in the package.
    """
    try:
        import tokenizers
    except ImportError as exc:
        raise MissingDependencyError(
            f"Open-vocabulary detectors tokenize their text queries with the tokenizers library ({exc}). "
            "Fix: pip install 'im-models[text]'.",
            distribution="im-models",
        ) from exc
    config = ctx.read_json("tokenizer_config.json") if ctx.has("tokenizer_config.json") else {}
    if not isinstance(config, dict):
        raise CorruptedModelPackageError("tokenizer_config.json must hold a JSON object.")
    if ctx.has("tokenizer.json"):
        return tokenizers.Tokenizer.from_file(str(ctx.path("tokenizer.json"))), config
    if vocab_txt and ctx.has("vocab.txt"):
        from tokenizers.implementations import BertWordPieceTokenizer

        lower = bool(config.get("do_lower_case", True))
        wordpiece = BertWordPieceTokenizer(str(ctx.path("vocab.txt")), lowercase=lower)
        return wordpiece._tokenizer, config
    wanted = "tokenizer.json or vocab.txt" if vocab_txt else "tokenizer.json"
    raise CorruptedModelPackageError(
        f"{ctx.model_id!r} has no {wanted}: the text queries cannot be tokenized. Fix: save the model's tokenizer "
        "next to it (AutoTokenizer.from_pretrained(...).save_pretrained(folder))."
    )


def token_id(tokenizer: Any, config: dict[str, Any], key: str, default: int) -> int:
    """Id of the special token named by ``tokenizer_config.json[key]`` (``pad_token``...), else ``default``."""
    name = _special(config, key)
    found = tokenizer.token_to_id(name) if name is not None else None
    return int(found) if found is not None else default


class QueryCache:
    """Embeddings of text queries, computed once per text and kept (least recently used first out).

    ``embed`` is called with the texts not cached yet and returns one row per text.
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], capacity: int = 4096) -> None:
        self._embed = embed
        self._capacity = capacity
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), D) float32 embeddings, in order."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._rows))
        if missing:
            rows = np.asarray(self._embed(missing), np.float32)
            with self._lock:
                for text, row in zip(missing, rows, strict=True):
                    self._rows[text] = row
                found = {t: self._rows[t] for t in texts}
                while len(self._rows) > self._capacity:
                    self._rows.popitem(last=False)
        else:
            with self._lock:
                found = {t: self._rows[t] for t in texts}
        with self._lock:
            for t in found:
                if t in self._rows:
                    self._rows.move_to_end(t)
        return np.stack([found[t] for t in texts])

    def __len__(self) -> int:
        return len(self._rows)
