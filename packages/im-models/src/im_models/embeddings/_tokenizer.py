"""A small vocabulary tokenizer for CLIP-style text towers (word-level; no BPE merges).

Real CLIP checkpoints ship a BPE vocabulary; a package may instead hand the model any callable
``texts -> (ids, mask)`` through ``from_pretrained(..., tokenizer=...)``. This tokenizer covers word-level
vocabularies (``vocab.txt``, one token per line, id = line number), which is what small text towers use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from im_core.errors import CorruptedModelPackageError

__all__ = ["VocabTokenizer"]

_WORDS = re.compile(r"[a-z0-9]+|[^\sa-z0-9]", re.IGNORECASE)
_START = ("<start_of_text>", "<|startoftext|>", "[CLS]", "<s>")
_END = ("<end_of_text>", "<|endoftext|>", "[SEP]", "</s>")
_UNKNOWN = ("<unk>", "[UNK]", "<|unk|>")
_PAD = ("<pad>", "[PAD]")


def _first(vocab: dict[str, int], names: Sequence[str]) -> int | None:
    return next((vocab[n] for n in names if n in vocab), None)


class VocabTokenizer:
    """Split text into lower-cased words and punctuation, map them to ids, add start/end tokens, pad.

    Attributes:
        context_length: number of ids per text (longer texts are cut, keeping the end token).
    """

    def __init__(self, tokens: Sequence[str], context_length: int = 77, lowercase: bool = True) -> None:
        self.vocab = {t: i for i, t in enumerate(tokens)}
        if not self.vocab:
            raise CorruptedModelPackageError("The text tower's vocabulary is empty.")
        self.context_length = int(context_length)
        self.lowercase = lowercase
        self.start = _first(self.vocab, _START)
        self.end = _first(self.vocab, _END)
        self.unknown = _first(self.vocab, _UNKNOWN)
        self.pad = _first(self.vocab, _PAD) or 0

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tokenise ``texts``.

        Returns:
            ``(ids, mask)``: int64 (N, context_length) token ids (padded with the pad id) and int64 (N, L) mask,
            1 for real tokens.
        """
        ids = np.full((len(texts), self.context_length), self.pad, np.int64)
        mask = np.zeros((len(texts), self.context_length), np.int64)
        for row, text in enumerate(texts):
            words = _WORDS.findall(text.lower() if self.lowercase else text)
            found = (self.vocab.get(w, self.unknown) for w in words)
            seq: list[int] = [s for s in found if s is not None]
            body = self.context_length - (self.start is not None) - (self.end is not None)
            seq = ([self.start] if self.start is not None else []) + seq[: max(body, 0)]
            seq += [self.end] if self.end is not None else []
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return ids, mask
