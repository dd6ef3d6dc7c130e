"""The README runs as written (issue 12 item 2): every ```python block, after the quickstart it points to, and the
test command it shows is the one CI runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
ASSETS = Path(os.environ.get("IM_TEST_ASSETS", REPO / ".cache" / "test-assets"))
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def _python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def _run(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IM_")}
    env["IM_HOME"] = str(home)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as the repository after "Try it": the pinned assets in ``.cache/test-assets`` and the
    quickstart run (the main job), which built ``.cache/quickstart-registry``."""
    manifest = json.loads((REPO / "assets" / "test-weights.json").read_text(encoding="utf-8"))
    wanted = [m["dest"] for p in manifest["packages"] for m in p["members"]]
    missing = [dest for dest in wanted if not (ASSETS / dest).is_file()]
    if missing:
        pytest.fail(f"test assets {missing} are missing: run `python scripts/fetch_test_assets.py` first")
    root = tmp_path_factory.mktemp("checkout")
    (root / ".cache").mkdir()
    (root / ".cache" / "test-assets").symlink_to(ASSETS.resolve())
    (root / "examples").mkdir()
    shutil.copy(REPO / "examples" / "quickstart.py", root / "examples" / "quickstart.py")
    done = _run([sys.executable, "examples/quickstart.py"], root, root / "im-home")
    assert done.returncode == 0, done.stderr
    assert "face" in done.stdout
    for model_id in ("mediapipe/face-detector", "ppocr/det", "ppocr/rec", "ppocr/cls"):
        assert (root / ".cache" / "quickstart-registry" / model_id / "metadata.json").is_file(), model_id
    return root


def test_the_readme_has_python_snippets() -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 3
    assert any("AutoModel.from_pretrained" in b for b in blocks)
    assert any("AutoModelPipeline.from_pretrained" in b for b in blocks)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_every_readme_python_block_runs_as_written(checkout: Path, index: int) -> None:
    code = _python_blocks()[index]
    done = _run([sys.executable, "-c", code], checkout, checkout / f"im-home-{index}")
    assert done.returncode == 0, f"README python block {index} failed:\n{code}\n--- stderr:\n{done.stderr}"


def test_the_main_snippets_print_what_they_promise(checkout: Path) -> None:
    face, ocr = (b for b in _python_blocks() if "from_pretrained(" in b and "register(" not in b)
    out = _run([sys.executable, "-c", face], checkout, checkout / "im-home-face").stdout
    assert re.search(r"\[\[\s*\d", out), out  # one box (N, 4) printed
    assert _run([sys.executable, "-c", ocr], checkout, checkout / "im-home-ocr").stdout.strip(), "no text read"


def test_the_readme_test_command_is_what_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    command = next(line for line in text.splitlines() if "pytest -n auto -q" in line and line.startswith(".tools"))
    for step in command.split(" && "):
        step = step.removeprefix(".tools/bin/")
        assert step.split(" --")[0] in ci, f"README step {step!r} is not in .ci/run"
    assert "python3 -m venv .tools && .tools/bin/pip install" in ci  # uv as the README installs it (PEP 668)
