"""Shared fixtures: a private IM_HOME per test, the pinned test weights, and device markers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("IM_TEST_ASSETS", REPO / ".cache" / "test-assets"))
MANIFEST = REPO / "assets" / "test-weights.json"


@pytest.fixture(autouse=True)
def _hermetic_im_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty IM_HOME and fresh settings; no IM_* leaks in from the developer's shell."""
    for key in list(os.environ):
        if (key.startswith("IM_") and key != "IM_TEST_ASSETS") or key == "ROBOFLOW_API_KEY":
            monkeypatch.delenv(key, raising=False)
    home = tmp_path_factory.mktemp("im_home")
    monkeypatch.setenv("IM_HOME", str(home))
    from im_core._config import reload_settings

    reload_settings()
    yield home
    reload_settings()


def _asset_index() -> dict[str, str]:
    data = json.loads(MANIFEST.read_text())
    return {m["dest"]: m["sha256"] for p in data["packages"] for m in p["members"]}


@pytest.fixture(scope="session")
def asset() -> callable:
    """``asset("face/centerface.onnx")`` -> path of a pinned, verified test file.

    The files are fetched by ``scripts/fetch_test_assets.py`` (``.ci/run`` does it first). A missing file fails
    the test with the command to run: tests on real weights must not silently skip.
    """
    index = _asset_index()

    def get(dest: str) -> Path:
        if dest not in index:
            raise KeyError(f"{dest!r} is not in assets/test-weights.json")
        path = ASSETS / dest
        if not path.is_file():
            pytest.fail(f"test asset {dest} is missing: run `python scripts/fetch_test_assets.py` first")
        return path

    return get


def _has_cuda() -> bool:
    from im_core._runtime import detect_gpus

    return bool(detect_gpus()[0])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="no NVIDIA GPU on this machine (GPU tests run only where one is present)")
    for item in items:
        if "gpu" in item.keywords or "trt" in item.keywords:
            item.add_marker(skip)
