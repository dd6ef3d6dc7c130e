"""The generated documentation pages (``scripts/docs_hooks.py``): the model table lists every installed family, one
page per task with every call parameter, the CLI reference every command; ``mkdocs.yml`` lists every task page.
The site itself is built with ``mkdocs build --strict`` in ``.ci/run``."""

import importlib.util
import re
from pathlib import Path

import pytest

from im_core import registry

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "scripts" / "docs_hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate()


def test_model_table_lists_every_installed_architecture_and_pipeline(pages):
    table = pages["models.md"]
    for entry in registry().models:
        if not entry.target.startswith("im_models."):  # a family another test registered at run time
            continue
        row = next((line for line in table.splitlines() if f"`{entry.target.split(':')[-1]}`" in line), None)
        assert row is not None, entry.target
        assert all(f"`{a}`" in table for a in entry.architectures)
    assert all(f"`{name}`" in table for name in registry().pipelines)
    assert all(f"| `{name}` |" in table for name in registry().backends)


def test_one_page_per_task_with_every_call_parameter(pages):
    from im_core.sdk import load_target

    for entry in registry().models:
        if not entry.target.startswith("im_models."):  # a family another test registered at run time
            continue
        page = pages[f"tasks/{entry.task}.md"]
        family = load_target(entry.target)
        for name in getattr(family, "CALL_PARAMS", None) or {}:
            assert f"| `{name}` |" in page, (entry.target, name)
    detection = pages["tasks/object-detection.md"]
    yolo = detection.split("## YOLODetection", 1)[1].split("\n## ", 1)[0]
    assert (
        "| `confidence` | post-processing | `0.25` |" in yolo
        and "| `iou_threshold` | post-processing | `0.7` |" in yolo
    )
    detr = detection.split("## DETRDetection", 1)[1].split("\n## ", 1)[0]
    assert "| `confidence` | post-processing | `0.5` |" in detr  # DETR passes its own default


def test_cli_reference_has_every_command(pages):
    cli = pages["cli.md"]
    for command in ("describe-env", "describe-model", "negotiate", "predict", "cache", "registry", "registry add"):
        assert f"`im {command}`" in cli, command
    assert "usage: im predict" in cli


def test_mkdocs_nav_lists_every_generated_task_page(pages):
    nav = (REPO / "mkdocs.yml").read_text()
    missing = [p for p in pages if p.startswith("tasks/") and p not in nav]
    assert missing == []
    assert re.search(r"^\s*- scripts/docs_hooks\.py", nav, re.M)
