"""CLIP's byte-level BPE tokenizer (:mod:`im_models.embeddings._bpe`) against ``transformers``' ``CLIPTokenizer``.

A byte-level BPE vocabulary is trained here with ``tokenizers`` and written in CLIP's slow-tokenizer format
(``vocab.json`` + ``merges.txt``; :func:`testlib.hf_models.clip_tokenizer_files`), and in the ``tokenizer.json``
format ``save_pretrained`` writes. In transformers 5 ``CLIPTokenizerFast`` is ``CLIPTokenizer`` (there is no
Python BPE any more), so the merges are also checked against a plain-Python BPE written below (OpenAI's
``simple_tokenizer`` algorithm), which does not use ``tokenizers`` at all.
"""

from __future__ import annotations

import json
import random
import unicodedata
from functools import cache
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

from im_core.errors import CorruptedModelPackageError, InvalidParameterError  # noqa: E402
from im_models.embeddings._bpe import CLIP_SPLIT_PATTERN, CLIPBPETokenizer  # noqa: E402
from testlib.hf_models import clip_tokenizer_files  # noqa: E402

CONTEXT = 16
PIECES = [
    "a photo of a cat",
    "dog",
    "ASTRONAUT",
    "Café",
    "cafe\u0301",
    "naïve",
    "Über",
    "東京の写真",
    "猫🐱",
    "😀😀",
    "👩‍👩‍👧",
    "it's",
    "we're",
    "THEY'VE",
    "I'm",
    "you'll",
    "he'd",
    "don't",
    "1234567",
    "3.14",
    "hello,world!!",
    "(x)",
    "[y]",
    "{z}",
    "#tag",
    "@me",
    "--",
    "...",
    "a\tb",
    "a\n\nb",
    "   ",
    "\u00a0nbsp",
    "<|startoftext|>",
    "<|endoftext|>",
    "e-mail",
    "ﬁ ligature",
    "Ωmega",
    "x²",
    "\u200bzero width",
    "",
]


def _strings(count: int = 300) -> list[str]:
    rng = random.Random(7)
    out = list(PIECES)
    while len(out) < count:
        words = [rng.choice(PIECES) for _ in range(rng.randint(1, 8))]
        glue = rng.choice([" ", "  ", "\t", "", "\n ", " , "])
        out.append(glue.join(words))
    out += [" ".join(PIECES) * 3, "word " * 100]  # longer than the context: truncated
    return out


@pytest.fixture(scope="module")
def vocab_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clip-vocab")
    clip_tokenizer_files(folder)
    return folder


@pytest.fixture(scope="module")
def json_folder(vocab_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clip-tokenizer-json")
    transformers.CLIPTokenizer.from_pretrained(str(vocab_folder)).save_pretrained(str(folder))
    assert (folder / "tokenizer.json").is_file() and not (folder / "vocab.json").exists()
    return folder


def _reference(folder: Path, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if (folder / "tokenizer_config.json").is_file():  # what save_pretrained wrote: AutoTokenizer finds the class
        tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    else:
        tok = transformers.CLIPTokenizerFast.from_pretrained(str(folder))
    assert isinstance(tok, transformers.CLIPTokenizerFast)
    out = tok(texts, padding="max_length", truncation=True, max_length=CONTEXT, return_tensors="np")
    return out["input_ids"].astype(np.int64), out["attention_mask"].astype(np.int64)


@pytest.mark.parametrize("layout", ["vocab.json+merges.txt", "tokenizer.json"])
def test_ids_and_masks_equal_transformers_clip_tokenizer(layout: str, vocab_folder: Path, json_folder: Path) -> None:
    folder = vocab_folder if layout == "vocab.json+merges.txt" else json_folder
    texts = _strings()
    ids, mask = CLIPBPETokenizer.from_folder(folder, CONTEXT)(texts)
    want_ids, want_mask = _reference(folder, texts)
    assert ids.shape == (len(texts), CONTEXT)
    bad = [t for t, a, b in zip(texts, ids, want_ids) if not np.array_equal(a, b)]
    assert not bad, bad[:5]
    np.testing.assert_array_equal(mask, want_mask)
    # the long inputs were cut to the context length, ending with <|endoftext|>
    eos = json.loads((vocab_folder / "vocab.json").read_text())["<|endoftext|>"]
    assert mask[-1].all() and ids[-1, -1] == eos


def test_both_layouts_give_the_same_ids(vocab_folder: Path, json_folder: Path) -> None:
    texts = _strings(120)
    a = CLIPBPETokenizer.from_folder(vocab_folder, CONTEXT)(texts)
    b = CLIPBPETokenizer.from_folder(json_folder, CONTEXT)(texts)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# -- an independent reference: OpenAI's BPE in plain Python ---------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars)))


def _python_bpe(folder: Path, text: str) -> list[int]:
    import regex

    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    ranks = {tuple(line.split()): i for i, line in enumerate(lines) if line}
    byte_map = _bytes_to_unicode()

    @cache
    def bpe(token: str) -> tuple[str, ...]:
        word = (*token[:-1], token[-1] + "</w>")
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if best not in ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return word

    ids = []
    for part in regex.split(r"(<\|startoftext\|>|<\|endoftext\|>)", text):  # special tokens first, as written
        if part in ("<|startoftext|>", "<|endoftext|>"):
            ids.append(vocab[part])
            continue
        clean = regex.sub(r"\s+", " ", unicodedata.normalize("NFC", part)).lower()
        for piece in regex.findall(CLIP_SPLIT_PATTERN, clean):
            ids += [vocab[t] for t in bpe("".join(byte_map[b] for b in piece.encode("utf-8")))]
    return ids


def test_merges_equal_a_plain_python_bpe(vocab_folder: Path) -> None:
    texts = _strings(200)
    ids, mask = CLIPBPETokenizer.from_folder(vocab_folder, 512)(texts)
    vocab = json.loads((vocab_folder / "vocab.json").read_text())
    for text, row, m in zip(texts, ids, mask):
        body = row[m.astype(bool)][1:-1].tolist()  # without <|startoftext|> ... <|endoftext|>
        assert body == _python_bpe(vocab_folder, text), text
    assert ids[0, 0] == vocab["<|startoftext|>"]


def test_pad_token_comes_from_the_tokenizer_config(vocab_folder: Path, tmp_path: Path) -> None:
    """LAION's CLIP checkpoints pad with "!" (id 0), not with <|endoftext|>."""
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((vocab_folder / name).read_bytes())
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"pad_token": "!"}))
    ids, mask = CLIPBPETokenizer.from_folder(tmp_path, CONTEXT)(["a cat"])
    want = transformers.CLIPTokenizer.from_pretrained(str(tmp_path))(
        ["a cat"], padding="max_length", max_length=CONTEXT, truncation=True
    )
    assert ids[0].tolist() == want["input_ids"][0] and ids[0, -1] == 0
    assert mask[0].tolist() == want["attention_mask"][0]


def test_bad_tokenizer_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(CorruptedModelPackageError, match=r"tokenizer\.json or vocab\.json \+ merges\.txt"):
        CLIPBPETokenizer.from_folder(tmp_path, CONTEXT)
    (tmp_path / "vocab.json").write_text('{"a": 0}')
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(CorruptedModelPackageError, match="line 2"):
        CLIPBPETokenizer.from_folder(tmp_path, CONTEXT)
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(CorruptedModelPackageError, match="no id for"):
        CLIPBPETokenizer.from_folder(tmp_path, CONTEXT)


def test_a_string_instead_of_a_list_is_refused(vocab_folder: Path) -> None:
    with pytest.raises(InvalidParameterError, match="list of strings"):
        CLIPBPETokenizer.from_folder(vocab_folder, CONTEXT)("a cat")  # type: ignore[arg-type]
