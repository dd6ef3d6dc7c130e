"""TextGeneration: validation, to_dict/from_dict round trip, equality, the columnar form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from im_core import TextGeneration, results_to_columns
from im_core.errors import InvalidParameterError


def test_round_trip_and_equality() -> None:
    answer = TextGeneration("a cat — on a mat", np.array([5, 9, 2]), "eos", prompt_tokens=40)
    d = answer.to_dict()
    assert d == {
        "type": "text_generation",
        "text": "a cat — on a mat",
        "num_tokens": 3,
        "token_ids": [5, 9, 2],
        "finish_reason": "eos",
        "prompt_tokens": 40,
    }
    assert all(type(i) is int for i in d["token_ids"])
    again = TextGeneration.from_dict(json.loads(answer.to_json()))
    assert again == answer and again.token_ids.dtype == np.int64 and str(again) == answer.text
    assert answer != TextGeneration("a cat — on a mat", np.array([5, 9, 2]), "length", prompt_tokens=40)
    assert answer != TextGeneration("a cat", np.array([5, 9, 2]), "eos", prompt_tokens=40)
    assert TextGeneration("") == TextGeneration.from_dict({"text": ""})


@pytest.mark.parametrize(
    "bad",
    [
        {"text": 3},
        {"text": "x", "token_ids": [1.5]},
        {"text": "x", "finish_reason": "tired"},
        {"type": "embeddings", "text": "x"},
        {"token_ids": []},
        [1, 2],
    ],
)
def test_from_dict_refuses_bad_input(bad) -> None:
    with pytest.raises(InvalidParameterError):
        TextGeneration.from_dict(bad)


def test_columns_hold_the_text() -> None:
    columns = results_to_columns([TextGeneration("hello"), ValueError("broken")])
    assert columns["text"] == [["hello"], None] and columns["n"] == [1, None]
