"""The errors survey (issue 12): trigger the common mistakes a newcomer makes through the public API and the CLI,
and print what each one says.

Each case is graded by the rubric "says what went wrong, why, and how to fix it":

- A: what, why and how to fix (a near-miss name gets a suggestion; an environment variable is named);
- B: what and how to fix, the why left implicit (or the fix is generic);
- C: what went wrong only;
- F: a traceback, a silent wrong answer, or a message that blames the wrong thing.

The grade of each case is written down next to it (``grade=``) after reading its message; ``--check`` re-runs the
survey and fails when a case no longer raises the class it is graded for, so the table in the docs stays true.

Run: ``uv run python scripts/errors_survey.py`` (needs the pinned weights: ``scripts/fetch_test_assets.py``).
Nothing here reaches the internet: the "API" is a server on 127.0.0.1 that refuses every request.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import io
import os
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / ".cache" / "test-assets"
YOLO = ASSETS / "yolo" / "nudenet_320n.onnx"
PHOTO = ASSETS / "images" / "astronaut.png"


@dataclass
class Case:
    name: str
    run: Callable[[], object]
    grade: str
    #: what it raises now: an error class, "cli" (a clean CLI error), "ok" (accepted), "silent" (no error, no
    #: warning), "RuntimeError" (a CLI traceback); ``--check`` fails when this changes, so the grade is re-read
    expect: str
    note: str = ""


@contextlib.contextmanager
def env(**values: str | None) -> Iterator[None]:
    """Set (or, with ``None``, unset) environment variables, re-reading im's settings on the way in and out."""
    from im_core import reload_settings

    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reload_settings()
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reload_settings()


class _Refuse(http.server.BaseHTTPRequestHandler):
    """An API that answers 401 to everything (as Roboflow's does to a request without a valid key)."""

    def do_GET(self) -> None:
        body = b'{"error": {"message": "Unauthorized", "type": "OAuthException"}}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _cli(*argv: str, **extra_env: str) -> str:
    """Run ``im ARGV`` in a fresh interpreter; return what it printed to stderr (and stdout) and its exit code."""
    code = "import sys\nfrom im_core.cli import main\nsys.exit(main(sys.argv[1:]))"
    environ = {**os.environ, **extra_env}
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=environ)
    text = (out.stderr.strip() or out.stdout.strip())[-1500:]
    if out.returncode == 0:
        return f"(exit 0)\n{text}"
    if "Traceback (most recent call last)" in out.stderr:
        raise RuntimeError(f"traceback (exit {out.returncode}):\n{text}")
    raise _CliError(f"(exit {out.returncode}) {text}")


class _CliError(Exception):
    pass


class _Reported(Exception):
    """An error raised in another interpreter: its class name and message."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def build_cases(work: Path, api: str) -> list[Case]:
    from im_core import AutoModel
    from im_providers import add_to_registry

    registry = work / "registry"
    add_to_registry(
        registry,
        model_id="demo/yolo",
        architecture="yolov8",
        task="object-detection",
        files=[YOLO],
        package_id="onnx",
        input_size=(320, 320),
    )
    local = {"weights_provider": "local", "provider_options": {"root": str(registry)}}
    model = AutoModel.from_pretrained(str(YOLO))
    image = np.zeros((240, 320, 3), np.uint8)
    folder = work / "not-a-package"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    h5 = work / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n")
    missing_names = work / "missing.txt"

    def pipeline(name: str, **kwargs: object) -> object:
        from im_pipelines import AutoModelPipeline

        return AutoModelPipeline.from_pretrained(name, **kwargs)  # type: ignore[arg-type]

    def in_subprocess(setup: str, path: Path) -> Callable[[], object]:
        """``AutoModel.from_pretrained(path)`` in a fresh interpreter after ``setup`` (which removes a package)."""

        def run() -> object:
            code = (
                "import sys, warnings\nwarnings.simplefilter('ignore')\n" + setup + "\nfrom im_core import AutoModel\n"
                "try:\n    AutoModel.from_pretrained(sys.argv[1])\n"
                "except Exception as exc:\n    print(type(exc).__name__)\n    print(exc)\n"
            )
            out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
            name, _, message = out.stdout.partition("\n")
            raise _Reported(name, message.strip() or out.stderr.strip()[-1500:])

        return run

    no_ort = "sys.modules['onnxruntime'] = None  # as if onnxruntime were not installed"
    no_onnx_backend = (
        "import im_core\nim_core.registry().backends.pop('onnx')  # as if im-backend-onnx were not installed"
    )
    onnx_folder = work / "onnx-folder"
    onnx_folder.mkdir()
    (onnx_folder / "weights.onnx").write_bytes(YOLO.read_bytes())

    def offline_miss() -> object:
        with env(IM_OFFLINE="1"):
            return AutoModel.from_pretrained("demo/never-cached", **local)

    def unauthorized(key: str | None) -> Callable[[], object]:
        def run() -> object:
            with env(ROBOFLOW_API_HOST=api, ROBOFLOW_API_KEY=key, IM_DOWNLOAD_RETRIES="1"):
                return AutoModel.from_pretrained("coco/3", weights_provider="roboflow")

        return run

    def rgb_as_bgr() -> object:
        import warnings

        from PIL import Image

        rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model(rgb)
        if not caught:
            raise _Reported("silent", "(no error, no warning: the scores change silently)")
        return f"warning: {caught[0].message}"

    def in_env(**values: str) -> Callable[[Callable[[], object]], Callable[[], object]]:
        def wrap(fn: Callable[[], object]) -> Callable[[], object]:
            def run() -> object:
                with env(**values):
                    return fn()

            return run

        return wrap

    return [
        # images
        Case("an int as the image", lambda: model(42), "A", "ModelInputError"),
        Case("an image file that does not exist", lambda: model(str(work / "nope.jpg")), "A", "ModelInputError"),
        Case(
            "a URL as the image",
            lambda: model("https://example.com/cat.jpg"),
            "A",
            "ModelInputError",
            "says URLs are not fetched and how to pass the bytes",
        ),
        Case("a (H, W, 5) array", lambda: model(np.zeros((8, 8, 5), np.uint8)), "A", "ModelInputError"),
        Case(
            "an RGB array given as BGR (the default)",
            rgb_as_bgr,
            "F",
            "silent",
            "undetectable from the pixels; documented (README 'Images', troubleshooting page)",
        ),
        # call parameters
        Case("a misspelled call parameter (conf=)", lambda: model(image, conf=0.5), "A", "InvalidParameterError"),
        Case("a threshold of the wrong type", lambda: model(image, confidence="high"), "A", "InvalidParameterError"),
        # from_pretrained arguments
        Case(
            "a misspelled from_pretrained argument (devcie=)",
            lambda: AutoModel.from_pretrained(str(YOLO), devcie="cpu"),
            "A",
            "InvalidParameterError",
        ),
        Case("device='gpu'", lambda: AutoModel.from_pretrained(str(YOLO), device="gpu"), "A", "InvalidParameterError"),
        Case(
            "IM_DEFAULT_DEVICE=gpu",
            in_env(IM_DEFAULT_DEVICE="gpu")(lambda: AutoModel.from_pretrained(str(YOLO))),
            "A",
            "InvalidParameterError",
        ),
        Case(
            "device='cuda' on a machine without a GPU",
            lambda: AutoModel.from_pretrained(str(YOLO), device="cuda"),
            "A",
            "NoCompatiblePackageError",
        ),
        Case(
            "batch_size='8' (a string)",
            lambda: AutoModel.from_pretrained(str(YOLO), batch_size="8"),
            "A",
            "InvalidParameterError",
        ),
        Case(
            "quantization='fp8'",
            lambda: AutoModel.from_pretrained(str(YOLO), quantization="fp8"),
            "A",
            "InvalidParameterError",
        ),
        Case(
            "backend='onnxx'",
            lambda: AutoModel.from_pretrained(str(YOLO), backend="onnxx"),
            "A",
            "InvalidParameterError",
        ),
        Case(
            "weights_provider='locall'",
            lambda: AutoModel.from_pretrained("demo/yolo", weights_provider="locall"),
            "A",
            "PluginError",
        ),
        Case(
            "IM_DEFAULT_PROVIDER=robflow",
            in_env(IM_DEFAULT_PROVIDER="robflow")(lambda: AutoModel.from_pretrained("demo/yolo")),
            "A",
            "PluginError",
        ),
        Case(
            "architecture='yolov88'",
            lambda: AutoModel.from_pretrained(str(YOLO), architecture="yolov88"),
            "A",
            "ModelImplementationNotFoundError",
        ),
        Case(
            "task='object-detect'",
            lambda: AutoModel.from_pretrained(str(YOLO), task="object-detect"),
            "A",
            "InvalidParameterError",
        ),
        Case(
            "class_names of the wrong length",
            lambda: AutoModel.from_pretrained(str(YOLO), class_names=["a", "b"]),
            "A",
            "InvalidParameterError",
        ),
        # ids, files and folders
        Case(
            "a local file path that does not exist",
            lambda: AutoModel.from_pretrained(str(work / "yolov8n.onnx")),
            "A",
            "ModelNotFoundError",
        ),
        Case(
            "a bare file of an unknown format (.h5)",
            lambda: AutoModel.from_pretrained(str(h5)),
            "A",
            "InvalidParameterError",
        ),
        Case(
            "a folder that is not a package",
            lambda: AutoModel.from_pretrained(str(folder)),
            "A",
            "InvalidParameterError",
        ),
        Case(
            "an unknown model id (local registry)",
            lambda: AutoModel.from_pretrained("demo/yolo-v2", **local),
            "A",
            "ModelNotFoundError",
        ),
        Case("an unknown pipeline id", lambda: pipeline("ocrr"), "A", "PluginError"),
        Case("offline, model never cached", offline_miss, "A", "OfflineModeError"),
        Case("HTTP 401 with no key at all", unauthorized(None), "A", "UnauthorizedError"),
        Case("HTTP 401 with a wrong key", unauthorized("wrong-key-123"), "A", "UnauthorizedError"),
        Case("a bare .onnx, onnxruntime not installed", in_subprocess(no_ort, YOLO), "A", "NoCompatiblePackageError"),
        Case(
            "a bare .onnx, im-backend-onnx not installed",
            in_subprocess(no_onnx_backend, YOLO),
            "A",
            "MissingDependencyError",
        ),
        Case(
            "a weights.onnx folder, im-backend-onnx not installed",
            in_subprocess(no_onnx_backend, onnx_folder),
            "A",
            "MissingDependencyError",
        ),
        Case(
            "model_package_id that the model does not have",
            lambda: AutoModel.from_pretrained("demo/yolo", model_package_id="onnx-fp16", **local),
            "A",
            "NoCompatiblePackageError",
        ),
        Case(
            "onnx_execution_providers=['CUDA'] (not a provider name)",
            lambda: AutoModel.from_pretrained(str(YOLO), onnx_execution_providers=["CUDA"]),
            "A",
            "InvalidParameterError",
        ),
        Case(
            "IM_ONNX_PROVIDERS=CPUExecutionProvder (misspelled)",
            in_env(IM_ONNX_PROVIDERS="CPUExecutionProvder")(lambda: AutoModel.from_pretrained(str(YOLO))),
            "A",
            "ConfigurationError",
        ),
        Case(
            "a pipeline given a model id of the wrong type",
            lambda: pipeline("ocr", models_parameters=[42, "b", "c"]),
            "A",
            "InvalidParameterError",
        ),
        # environment
        Case(
            "IM_OFFLINE=maybe",
            in_env(IM_OFFLINE="maybe")(lambda: AutoModel.from_pretrained(str(YOLO))),
            "A",
            "ConfigurationError",
        ),
        Case(
            "IM_DOWNLOAD_TIMEOUT=10s",
            in_env(IM_DOWNLOAD_TIMEOUT="10s")(lambda: AutoModel.from_pretrained("a/b")),
            "A",
            "ConfigurationError",
        ),
        Case(
            "IM_DISABLED_BACKENDS=onnx and a bare .onnx",
            in_env(IM_DISABLED_BACKENDS="onnx")(lambda: AutoModel.from_pretrained(str(YOLO))),
            "A",
            "NoCompatiblePackageError",
        ),
        # command line
        Case("im predict: an image that does not exist", lambda: _cli("predict", str(YOLO), "nope.jpg"), "A", "cli"),
        Case(
            "im predict: IM_DEFAULT_PROVIDER misspelled",
            lambda: _cli("predict", "demo/yolo", str(PHOTO), IM_REGISTRY=str(registry), IM_DEFAULT_PROVIDER="locall"),
            "A",
            "cli",
        ),
        Case(
            "im registry add: misspelled architecture",
            lambda: _cli(
                "registry",
                "add",
                str(work / "r2"),
                str(YOLO),
                "--model-id",
                "a/b",
                "--architecture",
                "yolov88",
                "--task",
                "object-detection",
            ),
            "A",
            "error",
            "refused at add time with did-you-mean (ModelImplementationNotFoundError)",
        ),
        Case(
            "im registry add: --class-names @missing.txt",
            lambda: _cli(
                "registry",
                "add",
                str(work / "r3"),
                str(YOLO),
                "--model-id",
                "a/b",
                "--architecture",
                "yolov8",
                "--task",
                "object-detection",
                "--class-names",
                f"@{missing_names}",
            ),
            "A",
            "error",
            "exit 2 with a one-line message, no traceback",
        ),
    ]


def run_case(case: Case) -> tuple[str, str]:
    """``(what was raised, the message)`` of one case."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            out = case.run()
    except _CliError as exc:
        return "cli" if case.expect == "cli" else "error", str(exc)
    except _Reported as exc:
        return exc.name, str(exc)
    except Exception as exc:
        from im_core.errors import ImError

        if isinstance(exc, ImError):
            return type(exc).__name__, str(exc)
        return type(exc).__name__, "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(out, str) and out.startswith("warning:"):
        return "warning", out
    if isinstance(out, str) and out.startswith("(exit 0)"):
        return "ok", out
    return "ok", f"(no error: returned {type(out).__name__})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when a case raises another class than graded")
    parser.add_argument("--markdown", action="store_true", help="print the table only, as Markdown")
    args = parser.parse_args()
    if not YOLO.is_file():
        sys.exit("The pinned weights are missing: run `uv run python scripts/fetch_test_assets.py` first.")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_address[1]}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp, env(IM_HOME=str(Path(tmp) / "home"), ROBOFLOW_API_KEY=None):
        for i, case in enumerate(build_cases(Path(tmp), api), 1):
            raised, message = run_case(case)
            rows.append((i, case, raised, message))
            if not args.markdown:
                print(f"\n## {i}. {case.name}  [{case.grade}]  {raised}\n{message}")
    server.shutdown()

    grades = [case.grade for _, case, _, _ in rows]
    print("\n| # | mistake | raises | grade | note |\n|---|---|---|---|---|")
    for i, case, raised, _ in rows:
        print(f"| {i} | {case.name} | {raised} | {case.grade} | {case.note} |")
    print(f"\n{len(rows)} cases: " + ", ".join(f"{g}: {grades.count(g)}" for g in "ABCF"))
    wrong = [(i, case.name, case.expect, raised) for i, case, raised, _ in rows if raised != case.expect]
    if args.check and wrong:
        for i, name, expect, raised in wrong:
            print(f"case {i} ({name}): graded for {expect}, raised {raised}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
