"""Every layer builds its own wheel, and the im-core wheel works alone in a fresh virtual environment."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MEMBERS = [
    "im-core",
    "im-providers",
    "im-backend-onnx",
    "im-backend-torch",
    "im-backend-trt",
    "im-models",
    "im-pipelines",
    "im-serve",
    "im-ray",
]

pytestmark = pytest.mark.slow


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH; install it with `python3 -m pip install uv` (the README's first step)")
    return uv


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    for member in [*MEMBERS, "im-vision"]:
        args = [_uv(), "build", "--wheel", "--no-sources", "--out-dir", str(out)]
        args += [] if member == "im-vision" else ["--package", member]
        subprocess.run(args, cwd=REPO, check=True, capture_output=True, text=True)
    return out


def test_seven_layer_wheels_and_a_code_free_meta_package(wheels: Path) -> None:
    built = sorted(p.name for p in wheels.glob("*.whl"))
    for member in MEMBERS:
        assert any(name.startswith(member.replace("-", "_") + "-") for name in built), (member, built)
    meta = next(wheels.glob("im_vision-*.whl"))  # the meta-package `im-vision` (`im` on PyPI is another project)
    with zipfile.ZipFile(meta) as z:
        assert not [n for n in z.namelist() if n.endswith(".py")], "the meta-package must ship no code"
        metadata = z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: im-core<0.2,>=0.1.0" in metadata
    sibling_specs = [line.split(";")[0] for line in metadata.splitlines() if line.startswith("Requires-Dist: im-")]
    assert sibling_specs
    assert not [s for s in sibling_specs if "==" in s], "siblings take version bounds, never =="
    for whl in wheels.glob("im_*.whl"):
        if whl == meta:
            continue
        with zipfile.ZipFile(whl) as z:
            assert any(n.endswith("py.typed") for n in z.namelist()), whl.name


def test_im_core_wheel_alone_in_a_fresh_venv(wheels: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([_uv(), "venv", "--quiet", str(venv)], check=True)
    python = venv / "bin" / "python"
    core = next(wheels.glob("im_core-*.whl"))
    subprocess.run([_uv(), "pip", "install", "--quiet", "--python", str(python), str(core)], check=True)
    code = (
        "import sys, im_core\n"
        "env = im_core.describe_compute_environment(print_output=False)\n"
        "assert env.cpu_count >= 1 and env.backends == {}\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'cv2', 'tensorrt') if m in sys.modules]\n"
        "print('OK', heavy)\n"
        "import im_vision, im_core.errors\n"  # the one user import ships in the core wheel ...
        "assert im_vision.AutoModel is im_core.AutoModel\n"
        "try:\n    im_vision.AutoModelPipeline\n"  # ... and says what to install for a name it cannot give
        "except im_core.errors.MissingDependencyError as e:\n"
        "    print('PIPELINES', 'pip install im-pipelines' in str(e))\n"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    assert "OK []" in out.stdout
    assert "PIPELINES True" in out.stdout
    cli = subprocess.run([str(venv / "bin" / "im"), "describe-env", "--json"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert '"cpu_count"' in cli.stdout
