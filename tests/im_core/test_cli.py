"""The ``im`` command line itself: ``--version``, the log handler, rich tables that show values as text."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from rich.console import Console


def _im(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "im_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_version_lists_im_core_first_then_the_installed_im_wheels():
    from importlib.metadata import version

    run = _im("--version")
    assert run.returncode == 0 and run.stderr == ""
    lines = run.stdout.splitlines()
    assert lines[0] == f"im-core {version('im-core')}"
    assert f"im-models {version('im-models')}" in lines and f"im-backend-onnx {version('im-backend-onnx')}" in lines
    assert lines[-1].startswith("python ")


def test_the_log_handler_shows_im_records_at_its_level_while_a_command_runs():
    import logging

    from im_core.cli import log_handler

    logger = logging.getLogger("im.test")
    stream = io.StringIO()
    old, sys.stderr = sys.stderr, stream
    try:
        with log_handler("DEBUG"):
            logger.debug("shown %s", 1)
        logger.debug("not shown after the command")
    finally:
        sys.stderr = old
    assert stream.getvalue() == "DEBUG im.test: shown 1\n"
    assert logging.getLogger("im").handlers == [] or all(
        getattr(h, "stream", None) is not stream for h in logging.getLogger("im").handlers
    )


def test_table_values_are_text_not_rich_markup():
    from im_core._describe import print_table
    from im_core._negotiation import NegotiationReport, PackageVerdict

    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    print_table(
        "T [x]", [("formats", "[torchscript, exported-program]"), ("k[bold]", "[red]not red[/]")], console=console
    )
    report = NegotiationReport(
        "m/[1]",
        None,
        [PackageVerdict("p[a]", "onnx", "fp32", "[1..8]", reason="needs opset [17] (found [bold]16[/])")],
    )
    report.print(console=console)
    text = out.getvalue()
    for shown in ("T [x]", "[torchscript, exported-program]", "k[bold]", "[red]not red[/]", "m/[1]", "p[a]", "[1..8]"):
        assert shown in text, shown
    assert "needs opset [17] (found [bold]16[/])" in text


def test_without_opencv_save_and_videos_say_what_to_install(monkeypatch):
    import pytest

    from im_core._predict_cli import opencv
    from im_core.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "cv2", None)  # as if OpenCV were not installed
    with pytest.raises(MissingDependencyError, match=r"--save .* needs OpenCV: pip install opencv-python-headless"):
        opencv("--save (drawing annotated images)")
