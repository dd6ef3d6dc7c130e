"""CTC alphabets and greedy CTC decoding, vectorised over the batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from im_core.errors import CorruptedModelPackageError
from im_models.common import as_probabilities

__all__ = ["CTCAlphabet", "greedy_decode", "load_alphabet"]

#: package files that may hold the character dictionary, one character per line, in this order of preference.
DICTIONARY_FILES = ("characters.txt", "ppocr_keys.txt", "ppocr_keys_v1.txt", "dict.txt")


class CTCAlphabet:
    """The output classes of a CTC recogniser: index 0 is the blank, then the dictionary, then (maybe) a space.

    PaddleOCR appends a space to the dictionary when it was trained with ``use_space_char``; that is detected
    from the number of output classes (``len(characters) + 2``).

    Attributes:
        symbols: object array (C,) of strings; ``symbols[0]`` is the blank (``""``).
    """

    def __init__(self, characters: Sequence[str], num_classes: int | None = None) -> None:
        symbols = ["", *characters]
        if num_classes is not None and num_classes == len(symbols) + 1:
            symbols.append(" ")
        if num_classes is not None and num_classes != len(symbols):
            raise CorruptedModelPackageError(
                f"The recogniser has {num_classes} output classes but its dictionary gives {len(symbols)} "
                f"(blank + {len(characters)} characters{' + space' if symbols[-1] == ' ' else ''})."
            )
        self.symbols = np.asarray(symbols, dtype=object)

    def __len__(self) -> int:
        return len(self.symbols)


def load_alphabet(ctx: Any, session: Any, num_classes: int | None) -> CTCAlphabet:
    """The alphabet from a dictionary file in the package, else the model file's ``character`` metadata.

    Args:
        ctx: the :class:`im_core.PackageContext`.
        session: the loaded session; ``session.metadata["character"]`` is read when present.
        num_classes: size of the recogniser's class axis, when known statically.

    Raises:
        CorruptedModelPackageError: when neither source exists or the sizes disagree.
    """
    name = ctx.first_existing(*DICTIONARY_FILES)
    if name is not None:
        text = ctx.path(name).read_text(encoding="utf-8")
    else:
        text = session.metadata.get("character")
        if text is None:
            raise CorruptedModelPackageError(
                f"Package of {ctx.model_id!r} has no character dictionary: add one of {', '.join(DICTIONARY_FILES)} "
                "(one character per line) or a 'character' metadata entry in the model file."
            )
    characters = [line.rstrip("\r\n") for line in text.split("\n")]
    if characters and characters[-1] == "":
        characters.pop()
    return CTCAlphabet(characters, num_classes)


def greedy_decode(
    probs: np.ndarray, alphabet: CTCAlphabet, lengths: np.ndarray | None = None
) -> tuple[list[str], np.ndarray]:
    """Best-path CTC decoding: argmax per step, collapse repeats, drop blanks.

    Args:
        probs: float (N, T, C) per-step class probabilities (or logits; a softmax is applied if needed).
        alphabet: the classes, blank at index 0.
        lengths: optional int (N,) number of valid steps per row (steps past it are ignored).

    Returns:
        ``(texts, confidence)``: N strings and float32 (N,) mean max-probability over the kept steps
        (0 for an empty string).
    """
    probs = as_probabilities(probs)
    n, t, _ = probs.shape
    if n == 0 or t == 0:
        return [""] * n, np.zeros(n, np.float32)
    index = probs.argmax(axis=-1)  # (N, T)
    best = np.take_along_axis(probs, index[..., None], axis=-1)[..., 0]
    keep = index != 0
    keep[:, 1:] &= index[:, 1:] != index[:, :-1]
    if lengths is not None:
        keep &= np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    count = keep.sum(axis=1)
    confidence = np.where(count > 0, (best * keep).sum(axis=1) / np.maximum(count, 1), 0.0).astype(np.float32)
    chars = alphabet.symbols[np.where(keep, index, 0)]  # blanks map to ""
    texts = ["".join(row) for row in chars]
    return texts, confidence
