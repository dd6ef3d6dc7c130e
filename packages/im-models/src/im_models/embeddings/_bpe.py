"""CLIP's byte-level BPE tokenizer, run by the Rust ``tokenizers`` library (the ``im-models[text]`` extra).

Built from a folder's ``tokenizer.json`` when it has one, else from CLIP's vocabulary files ``vocab.json`` (token →
id) and ``merges.txt`` (one merge ``"a b"`` per line after a ``#version`` header), the way ``transformers``'
``CLIPTokenizer`` builds its backend from them:

* normalise: NFC, every whitespace run → one space, lower case;
* pre-tokenise: split on CLIP's pattern (``<|startoftext|>``, ``<|endoftext|>``, the English contractions, runs of
  letters, single digits, runs of other non-space characters; spaces dropped), then map bytes to printable
  characters (GPT-2's byte-level alphabet);
* BPE with the suffix ``</w>`` on the last symbol of each word; unknown symbols → ``<|endoftext|>``;
* wrap in ``<|startoftext|> … <|endoftext|>``, cut to the context length (keeping both), pad with the pad token
  (``tokenizer_config.json``/``special_tokens_map.json``'s ``pad_token``, default ``<|endoftext|>``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from im_core.errors import CorruptedModelPackageError, InvalidParameterError, MissingDependencyError

__all__ = ["CLIP_SPLIT_PATTERN", "CLIPBPETokenizer"]

#: CLIP's pre-tokenisation pattern (OpenAI's ``simple_tokenizer``, as transformers writes it)
CLIP_SPLIT_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_MAX_FILE_BYTES = 64 * 2**20


def _tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError as exc:
        raise MissingDependencyError(
            f"CLIP's byte-level BPE tokenizer needs the 'tokenizers' library ({exc}). "
            "Fix: pip install 'im-models[text]'.",
            distribution="tokenizers",
        ) from exc
    return tokenizers


def _read_json(path: Path) -> Any:
    if path.stat().st_size > _MAX_FILE_BYTES:
        raise CorruptedModelPackageError(f"{path} is larger than {_MAX_FILE_BYTES} bytes.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptedModelPackageError(f"{path} is not readable JSON: {exc}") from exc


def _special(folder: Path, key: str, default: str) -> str:
    """A special token's text from ``tokenizer_config.json`` or ``special_tokens_map.json`` (a string or an
    ``{"content": ...}`` object)."""
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            value = _read_json(path)
            value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str) and value:
                return value
    return default


def _from_vocab_files(folder: Path) -> Any:
    """CLIPTokenizer's backend from ``vocab.json`` + ``merges.txt``."""
    tk = _tokenizers()
    from tokenizers import Regex, normalizers, pre_tokenizers
    from tokenizers.models import BPE

    vocab = _read_json(folder / "vocab.json")
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise CorruptedModelPackageError(f"{folder / 'vocab.json'} must map tokens to integer ids.")
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or (number == 1 and line.startswith("#version")):
            continue
        pair = line.split()
        if len(pair) != 2:
            raise CorruptedModelPackageError(f"{folder / 'merges.txt'} line {number}: expected two symbols, {line!r}.")
        merges.append((pair[0], pair[1]))
    unknown = _special(folder, "unk_token", EOS)
    model = BPE(
        vocab=vocab,
        merges=merges,
        dropout=None,
        continuing_subword_prefix="",
        end_of_word_suffix="</w>",
        fuse_unk=False,
        unk_token=unknown if unknown in vocab else None,
    )
    tokenizer = tk.Tokenizer(model)
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    specials = [t for t in (_special(folder, "bos_token", BOS), _special(folder, "eos_token", EOS)) if t in vocab]
    tokenizer.add_special_tokens([tk.AddedToken(t, special=True, normalized=False) for t in specials])
    return tokenizer


class CLIPBPETokenizer:
    """``texts -> (ids, mask)`` with CLIP's byte-level BPE.

    Attributes:
        context_length: ids per text (``text_config.max_position_embeddings``, 77 for OpenAI's CLIP).
        bos_id, eos_id, pad_id: ids of ``<|startoftext|>``, ``<|endoftext|>`` and the pad token.
    """

    def __init__(self, tokenizer: Any, context_length: int, bos: str, eos: str, pad: str) -> None:
        from tokenizers import processors

        ids = {name: tokenizer.token_to_id(name) for name in (bos, eos, pad)}
        missing = [name for name, i in ids.items() if i is None]
        if missing:
            raise CorruptedModelPackageError(f"The CLIP vocabulary has no id for {', '.join(missing)}.")
        if context_length < 2:
            raise CorruptedModelPackageError(f"context length {context_length}: CLIP needs at least 2 positions.")
        self.context_length = int(context_length)
        self.bos_id, self.eos_id, self.pad_id = ids[bos], ids[eos], ids[pad]
        tokenizer.post_processor = processors.RobertaProcessing((eos, self.eos_id), (bos, self.bos_id), False, False)
        tokenizer.enable_truncation(max_length=self.context_length)
        tokenizer.enable_padding(length=self.context_length, pad_id=self.pad_id, pad_token=pad)
        self.tokenizer = tokenizer

    @classmethod
    def from_folder(cls, folder: str | Path, context_length: int) -> CLIPBPETokenizer:
        """From ``tokenizer.json`` if present, else ``vocab.json`` + ``merges.txt``.

        Raises:
            CorruptedModelPackageError: none of those files, or they are malformed.
            MissingDependencyError: ``tokenizers`` is not installed.
        """
        folder = Path(folder)
        if (folder / "tokenizer.json").is_file():
            tk = _tokenizers()
            try:
                tokenizer = tk.Tokenizer.from_file(str(folder / "tokenizer.json"))
            except Exception as exc:  # the Rust library raises its own Exception type
                raise CorruptedModelPackageError(f"{folder / 'tokenizer.json'} could not be read: {exc}") from exc
        elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            tokenizer = _from_vocab_files(folder)
        else:
            raise CorruptedModelPackageError(
                f"{folder} has no CLIP tokenizer: expected tokenizer.json or vocab.json + merges.txt."
            )
        bos, eos = _special(folder, "bos_token", BOS), _special(folder, "eos_token", EOS)
        return cls(tokenizer, context_length, bos, eos, _special(folder, "pad_token", eos))

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tokenise ``texts``.

        Returns:
            ``(ids, mask)``: int64 (N, context_length) ids (``bos … eos pad …``) and int64 (N, context_length)
            attention mask, 1 for real tokens.
        """
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidParameterError("The CLIP tokenizer takes a list of strings.")
        encoded = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        ids = np.array([e.ids for e in encoded], np.int64).reshape(len(encoded), self.context_length)
        mask = np.array([e.attention_mask for e in encoded], np.int64).reshape(ids.shape)
        return ids, mask
