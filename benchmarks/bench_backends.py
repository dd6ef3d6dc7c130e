"""Per-call overhead of each backend's ``Session.run`` over the raw library call (DESIGN.md §9; target ≤ 2%).

For a 1×3×640×640 float32 input:

- ``onnx``: ``OnnxSession.run`` vs ``InferenceSession.run`` on the *same* ORT session
  (model: the pinned nudenet YOLOv8n-layout detector, ``.cache/test-assets/yolo/nudenet_320n.onnx``, dynamic H/W);
- ``torch-eager``: ``TorchSession.run`` on the MobileNetV2 backbone state dict (pinned, ``embed/``) vs calling the
  module under ``torch.inference_mode``;
- ``torchscript``: the same network traced, ``TorchSession.run`` vs calling the traced module.

Rounds are interleaved (raw, im, raw, im… with the order flipped every round) so drift affects both sides; the
report gives the median per-call time of each side, their ratio, and the median of per-round ratios. The absolute
overhead (µs) is also measured on the conformance reference network (1×3×8×8), where the runtime's own work is tiny.

Run: ``.venv/bin/python benchmarks/bench_backends.py [--rounds 15 --calls 5 --json out.json]``.
No GPU is used; TensorRT is not benchmarked here (no engine can run without a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("IM_TEST_ASSETS", REPO / ".cache" / "test-assets"))


def _per_call(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def compare(raw: Callable[[], Any], ours: Callable[[], Any], *, rounds: int, calls: int, warmup: int = 3) -> dict:
    """Interleaved timing; seconds per call."""
    for _ in range(warmup):
        raw()
        ours()
    raw_t, our_t, ratios = [], [], []
    for r in range(rounds):
        if r % 2:
            o = _per_call(ours, calls)
            w = _per_call(raw, calls)
        else:
            w = _per_call(raw, calls)
            o = _per_call(ours, calls)
        raw_t.append(w)
        our_t.append(o)
        ratios.append(o / w)
    raw_med, our_med = statistics.median(raw_t), statistics.median(our_t)
    return {
        "raw_ms": raw_med * 1e3,
        "im_ms": our_med * 1e3,
        "overhead_us": (our_med - raw_med) * 1e6,
        "ratio": our_med / raw_med,
        "median_round_ratio": statistics.median(ratios),
    }


def bench_onnx(rounds: int, calls: int, x: np.ndarray) -> dict:
    from im_backend_onnx import OnnxBackend

    session = OnnxBackend().load(ASSETS / "yolo/nudenet_320n.onnx", device="cpu")
    ort_session, name = session._session, session.inputs[0].name
    outputs = [o.name for o in session.outputs]
    return compare(
        lambda: ort_session.run(outputs, {name: x}), lambda: session.run({name: x}), rounds=rounds, calls=calls
    )


def _mobilenet() -> Any:
    import torch

    from im_models.embeddings._mobilenetv2 import build_mobilenet_v2_backbone

    module = build_mobilenet_v2_backbone()
    module.load_state_dict(torch.load(ASSETS / "embed/mobilenetv2_backbone.pt", weights_only=True))
    return module.eval()


def bench_torch(rounds: int, calls: int, x: np.ndarray, tmp: Path) -> dict[str, dict]:
    import torch

    from im_backend_torch import TorchBackend
    from im_models.embeddings._mobilenetv2 import build_mobilenet_v2_backbone

    spec = [("images", (None, 3, 640, 640), "float32")]
    out = [("features", (None, 1280), "float32")]
    results = {}
    eager = TorchBackend().load(
        ASSETS / "embed/mobilenetv2_backbone.pt",
        device="cpu",
        module=build_mobilenet_v2_backbone,
        inputs=spec,
        outputs=out,
    )
    module = eager._fn
    xt = torch.from_numpy(x)

    def raw_eager() -> Any:
        with torch.inference_mode():
            return module(xt).numpy()

    results["torch-eager"] = compare(raw_eager, lambda: eager.run({"images": x}), rounds=rounds, calls=calls)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(_mobilenet(), torch.zeros(1, 3, 640, 640), check_trace=False).save(str(tmp / "m.ts"))
    scripted = TorchBackend().load(tmp / "m.ts", device="cpu", inputs=spec, outputs=out)
    traced = scripted._fn

    def raw_ts() -> Any:
        with torch.inference_mode():
            return traced(xt).numpy()

    results["torchscript"] = compare(raw_ts, lambda: scripted.run({"images": x}), rounds=rounds, calls=calls)
    return results


def bench_tiny_overhead(rounds: int) -> dict[str, dict]:
    """Absolute per-call overhead on the 1×3×8×8 reference network (the runtime's own work is a few µs)."""
    import torch

    from im_backend_onnx import OnnxBackend
    from im_backend_torch import TorchBackend
    from im_core.testing import reference_inputs, reference_torch_module

    sys.path.insert(0, str(REPO / "tests" / "im_backend_onnx"))
    from conftest import build_reference_onnx  # type: ignore[import-not-found]

    x = reference_inputs(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_reference_onnx(Path(tmp) / "ref.onnx")
        onnx = OnnxBackend().load(path, device="cpu", intra_op_num_threads=1)
        ort_session = onnx._session
        out = {
            "onnx-tiny": compare(
                lambda: ort_session.run(["logits", "pooled"], {"images": x}),
                lambda: onnx.run({"images": x}),
                rounds=rounds,
                calls=2000,
            )
        }
    module = reference_torch_module()
    sd = Path(tempfile.mkdtemp()) / "ref.pt"
    torch.save(module.state_dict(), sd)
    session = TorchBackend().load(
        sd,
        device="cpu",
        module=reference_torch_module,
        inputs=[("images", (None, 3, 8, 8), "float32")],
        outputs=[("logits", (None, 4), "float32"), ("pooled", (None, 3), "float32")],
    )
    xt = torch.from_numpy(x)

    def raw() -> Any:
        with torch.inference_mode():
            a, b = module(xt)
            return a.numpy(), b.numpy()

    out["torch-tiny"] = compare(raw, lambda: session.run({"images": x}), rounds=rounds, calls=2000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    x = np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)
    import torch

    results: dict[str, Any] = {
        "input": "1x3x640x640 float32",
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    results["onnx"] = bench_onnx(args.rounds, args.calls, x)
    with tempfile.TemporaryDirectory() as tmp:
        results.update(bench_torch(args.rounds, args.calls, x, Path(tmp)))
    results.update(bench_tiny_overhead(args.rounds))
    for name, r in results.items():
        if isinstance(r, dict):
            print(
                f"{name:12s} raw {r['raw_ms']:9.3f} ms  im {r['im_ms']:9.3f} ms  overhead {r['overhead_us']:8.1f} µs  "
                f"ratio {r['ratio']:.4f}  (median round ratio {r['median_round_ratio']:.4f})"
            )
        else:
            print(f"{name}: {r}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
