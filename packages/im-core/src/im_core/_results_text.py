"""Text a generative model wrote: :class:`TextGeneration` (a caption, an OCR read-out, a chat answer).

Same rules as :mod:`im_core._results`: plain JSON from ``to_dict()``, ``from_dict()`` rebuilds an equal object, ``==``
compares values exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from im_core.errors import InvalidParameterError

__all__ = ["FINISH_REASONS", "TextGeneration"]

#: why generation ended: the model wrote its end-of-sequence token, reached ``max_new_tokens``, or wrote a stop string
FINISH_REASONS = ("eos", "length", "stop")


@dataclass
class TextGeneration:
    """One generated answer.

    Attributes:
        text: the decoded answer, special tokens removed (as the family's reference decodes it).
        token_ids: int64 (T,) the generated token ids, the end-of-sequence token included when it was written
            (the prompt excluded).
        finish_reason: ``"eos"`` (the model ended its answer), ``"length"`` (``max_new_tokens`` reached) or
            ``"stop"`` (a stop string was written; it ends ``text``).
        prompt_tokens: how many tokens the prompt had (image tokens included), 0 when unknown.
    """

    text: str
    token_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    finish_reason: str = "eos"
    prompt_tokens: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InvalidParameterError(f"text must be a str, got {type(self.text).__name__}.")
        ids = np.asarray(self.token_ids)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise InvalidParameterError(f"token_ids must be a 1-D array of integers, got {ids.dtype} {ids.shape}.")
        self.token_ids = ids.astype(np.int64, copy=False)
        if self.finish_reason not in FINISH_REASONS:
            raise InvalidParameterError(f"finish_reason must be one of {FINISH_REASONS}, got {self.finish_reason!r}.")
        self.prompt_tokens = int(self.prompt_tokens)

    @property
    def num_tokens(self) -> int:
        """How many tokens were generated."""
        return int(self.token_ids.shape[0])

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (schema: ``docs/results.md``); ``num_tokens`` is derived (ignored by :meth:`from_dict`)."""
        return {
            "type": "text_generation",
            "text": self.text,
            "num_tokens": self.num_tokens,
            "token_ids": [int(i) for i in self.token_ids.tolist()],
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextGeneration:
        if not isinstance(d, Mapping):
            raise InvalidParameterError(
                f"from_dict expects a dict (from to_dict() or json.loads), got {type(d).__name__}."
            )
        if d.get("type", "text_generation") != "text_generation":
            raise InvalidParameterError(
                f"from_dict got a {d.get('type')!r} result where 'text_generation' was expected."
            )
        if "text" not in d:
            raise InvalidParameterError(f"A 'text_generation' dict needs the key 'text'; it has {sorted(d)}.")
        ids = d.get("token_ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise InvalidParameterError("token_ids must be a list of integers.")
        return cls(
            d["text"],
            np.asarray(ids, np.int64),
            str(d.get("finish_reason", "eos")),
            int(d.get("prompt_tokens") or 0),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextGeneration):
            return NotImplemented
        return (
            self.text == other.text
            and np.array_equal(self.token_ids, other.token_ids)
            and self.finish_reason == other.finish_reason
            and self.prompt_tokens == other.prompt_tokens
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"TextGeneration({text!r}, tokens={self.num_tokens}, finish_reason={self.finish_reason!r})"
