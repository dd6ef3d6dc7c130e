"""File names from any registry must stay inside their package folder (DESIGN.md §5)."""

from __future__ import annotations

import pytest

from im_core._metadata import FileSpec, validate_relative_path
from im_core.errors import UnsafePathError


@pytest.mark.parametrize("name", ["weights.onnx", "sub/vocab.txt", "a/./b.json", "dir/.hidden"])
def test_safe_relative_names_are_kept(name: str) -> None:
    assert validate_relative_path(name) == name.replace("/./", "/")


@pytest.mark.parametrize(
    "name",
    ["", ".", "./", "/etc/passwd", "../x", "a/../../x", "a/..", "~/.ssh/id_rsa", "a\\b", "a\x00b"],
)
def test_names_that_escape_or_name_the_folder_are_refused(name: str) -> None:
    with pytest.raises(UnsafePathError):
        validate_relative_path(name)


def test_a_file_spec_with_an_unsafe_name_is_refused() -> None:
    with pytest.raises(UnsafePathError):
        FileSpec(name="../outside.onnx", sha256="0" * 64)
