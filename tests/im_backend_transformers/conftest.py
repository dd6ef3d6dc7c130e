"""A tiny randomly initialised CLIP folder, built once per test session (see testlib.hf_models)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_clip

    return tiny_clip(tmp_path_factory.mktemp("hf") / "tiny-clip")
