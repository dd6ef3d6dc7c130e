"""``import im_vision``: the one import users need, light, lazy, and clear when im-pipelines is missing."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import im_core
import im_vision
from im_core.errors import DOCS_ERRORS_URL, DOCS_URL, MissingDependencyError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_import_is_as_light_as_im_core():
    out = _run("import sys, json, im_vision\nprint(json.dumps(sorted(sys.modules)))")
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not loaded & {"torch", "onnxruntime", "tensorrt", "tensorrt_lean", "cv2", "rich", "requests"}
    assert "im_pipelines" not in loaded and "im_core._auto" not in loaded


def test_names_are_the_same_objects_as_in_their_home_modules():
    from im_pipelines import AutoModelPipeline

    assert im_vision.AutoModel is im_core.AutoModel
    assert im_vision.AutoModelPipeline is AutoModelPipeline
    for name in ("Detections", "Classification", "Embeddings", "Gaze", "TextRecognition", "TextLine", "RLEMask"):
        assert getattr(im_vision, name) is getattr(im_core, name)
    assert set(dir(im_vision)) >= set(im_vision.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = im_vision.Nope


def test_without_im_pipelines_the_pipeline_name_says_what_to_install():
    code = (
        "import sys\nsys.modules['im_pipelines'] = None\nimport im_vision\n"
        "from im_vision import AutoModel\n"
        "try:\n    im_vision.AutoModelPipeline\nexcept ImportError as e:\n    print(type(e).__name__, e)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(MissingDependencyError.__name__)
    assert "pip install im-pipelines" in out.stdout


def test_help_links_and_project_urls_come_from_one_constant():
    assert f"{DOCS_URL}errors/" == DOCS_ERRORS_URL
    pyprojects = [REPO / "pyproject.toml", *sorted((REPO / "packages").glob("*/pyproject.toml"))]
    for path in pyprojects:
        urls = tomllib.loads(path.read_text())["project"]["urls"]
        assert urls["Documentation"] == DOCS_URL, path
        assert {"Homepage", "Source"} <= set(urls), path
    site_url = re.search(r"^site_url:\s*(\S+)", (REPO / "mkdocs.yml").read_text(), re.M)
    assert site_url and site_url.group(1) == DOCS_URL


def test_the_meta_package_has_a_name_of_its_own():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == "im-vision"  # `im` on PyPI is an unrelated project
    assert "trt" in project["optional-dependencies"]
