"""Fixtures for cross-layer tests: a static HTTP server on 127.0.0.1 serving a registry folder, and the pinned
MobileNetV2 backbone exported to ONNX, TorchScript and ``.pt2`` (once per session)."""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


class _QuietHandler(SimpleHTTPRequestHandler):
    requests_seen: list[str]

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.server.requests_seen.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


@pytest.fixture
def serve_folder() -> Iterator[callable]:
    """``serve_folder(path) -> (base_url, requests_seen)``; servers stop at the end of the test."""
    servers: list[ThreadingHTTPServer] = []

    def start(folder: Path) -> tuple[str, list[str]]:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.requests_seen = []  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", server.requests_seen  # type: ignore[attr-defined]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def mobilenet_exports(asset: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The eager module and its exports: ``onnx``, ``torchscript``, ``pt2`` paths plus the ``state-dict`` asset.

    The pinned torchvision ``features.*`` state dict is loaded into the model family's module, then exported with
    a dynamic batch (ONNX opset 17; ``.pt2`` batch 1..16); input (N, 3, 224, 224), output (N, 1280).
    """
    import torch

    from im_models.embeddings._mobilenetv2 import build_mobilenet_v2_backbone

    weights = asset("embed/mobilenetv2_backbone.pt")
    module = build_mobilenet_v2_backbone()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert len(state) == 312 and all(k.startswith("features.") for k in state)
    module.load_state_dict(state, strict=True)
    module.eval()
    root = tmp_path_factory.mktemp("mobilenetv2")
    example = torch.zeros(2, 3, 224, 224)
    paths = {"onnx": root / "weights.onnx", "torchscript": root / "weights.torchscript", "pt2": root / "weights.pt2"}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy (dynamo=False) exporter says it is legacy
        torch.onnx.export(
            module,
            (example,),
            str(paths["onnx"]),
            dynamo=False,
            opset_version=17,
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
        )
        torch.jit.trace(module, example, check_trace=False).save(str(paths["torchscript"]))
    batch = torch.export.Dim("batch", min=1, max=16)
    torch.export.save(torch.export.export(module, (example,), dynamic_shapes={"x": {0: batch}}), paths["pt2"])
    return {"module": module, "state-dict": weights, **paths}
