"""A tiny randomly initialised CLIP folder, built once per test session (see testlib.hf_models)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_clip

    return tiny_clip(tmp_path_factory.mktemp("hf") / "tiny-clip")


@pytest.fixture(scope="session")
def florence_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_florence2

    return tiny_florence2(tmp_path_factory.mktemp("hf") / "tiny-florence2")


@pytest.fixture(scope="session")
def smolvlm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_smolvlm

    return tiny_smolvlm(tmp_path_factory.mktemp("hf") / "tiny-smolvlm")


@pytest.fixture(scope="session")
def real_images(asset) -> list:
    """Three real photos (RGB PIL images; the reference pipeline's input) of different sizes."""
    from PIL import Image

    names = ("images/astronaut.png", "images/chelsea.png", "images/page.png")
    return [Image.open(asset(name)).convert("RGB") for name in names]
