"""Per-call overhead of each backend's ``Session.run`` over the raw library call (DESIGN.md §9; target ≤ 2%).

For a 1×3×640×640 float32 input:

- ``onnx``: ``OnnxSession.run`` vs ``InferenceSession.run`` on the *same* ORT session
  (model: the pinned nudenet YOLOv8n-layout detector, ``.cache/test-assets/yolo/nudenet_320n.onnx``, dynamic H/W);
- ``torch-eager``: ``TorchSession.run`` on the MobileNetV2 backbone state dict (pinned, ``embed/``) vs calling the
  module under ``torch.inference_mode``;
- ``torchscript``: the same network traced, ``TorchSession.run`` vs calling the traced module.

Threads are pinned for both sides: the ONNX session is created with ``intra_op_num_threads=--threads`` and
``inter_op_num_threads=1`` (raw and im run that same session), torch gets ``torch.set_num_threads(--threads)`` (and
``num_threads=`` on load, so the backend's own thread policy cannot change it); the count is checked after each
comparison. Default: the CPUs this process may use. On a shared machine ``--threads 1`` gives steadier numbers.

Each round times a block of ``--calls`` raw calls and a block of ``--calls`` im calls, raw first on even rounds and
im first on odd ones, so drift and the order effect hit both sides alike. The number of rounds comes from a time
budget per comparison (``--budget`` seconds; the per-call time is measured during warm-up), at least
``--min-rounds``; ``--rounds`` fixes it instead. A comparison stops early (after an even number of rounds, never
below ``--min-rounds``) when the machine slows down and the budget is spent. Reported: the median per-call time of
each side, their difference (µs), the ratio of medians, and the median of the per-round ratios (im / raw) with its
IQR — the number to compare with the target.
The absolute overhead (µs) is also measured on the conformance reference network (1×3×8×8), where the runtime's own
work is tiny.

Run: ``uv run python benchmarks/bench_backends.py [--threads N] [--budget 20] [--calls 2] [--json out.json]``
(about 1.5 minutes with the defaults). No GPU is used; TensorRT is not benchmarked here (no engine runs without a GPU).
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


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


class Plan:
    """How many rounds of ``calls`` calls per side: fixed, or from a time budget per comparison."""

    def __init__(self, *, calls: int, budget_s: float, min_rounds: int, rounds: int | None) -> None:
        self.calls, self.budget_s, self.min_rounds, self.rounds = calls, budget_s, min_rounds, rounds

    def rounds_for(self, per_call_s: float, calls: int) -> int:
        if self.rounds is not None:
            return self.rounds
        return max(self.min_rounds, int(self.budget_s / (2 * calls * max(per_call_s, 1e-7))))


def compare(raw: Callable[[], Any], ours: Callable[[], Any], plan: Plan, *, calls: int | None = None) -> dict:
    """Interleaved timing with the order alternating per round; times in seconds per call, reported in ms/µs."""
    calls = calls or plan.calls
    for _ in range(3):
        raw()
        ours()
    warm = min(_per_call(raw, max(1, calls)), _per_call(ours, max(1, calls)))
    rounds = plan.rounds_for(warm, calls)
    raw_t, our_t, ratios = [], [], []
    deadline = time.perf_counter() + plan.budget_s  # a machine that slows down after warm-up stops at the budget
    for r in range(rounds):
        if plan.rounds is None and r >= plan.min_rounds and r % 2 == 0 and time.perf_counter() > deadline:
            rounds = r
            break
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
    q1, q3 = _quartiles(ratios)
    return {
        "raw_ms": raw_med * 1e3,
        "im_ms": our_med * 1e3,
        "overhead_us": (our_med - raw_med) * 1e6,
        "ratio": our_med / raw_med,
        "median_round_ratio": statistics.median(ratios),
        "round_ratio_iqr": [q1, q3],
        "rounds": rounds,
        "calls_per_block": calls,
    }


def _check_torch_threads(threads: int, where: str) -> None:
    import torch

    if torch.get_num_threads() != threads:
        raise SystemExit(f"torch threads changed to {torch.get_num_threads()} (pinned {threads}) during {where}")


def bench_onnx(plan: Plan, threads: int, x: np.ndarray) -> dict:
    from im_backend_onnx import OnnxBackend

    session = OnnxBackend().load(
        ASSETS / "yolo/nudenet_320n.onnx", device="cpu", intra_op_num_threads=threads, inter_op_num_threads=1
    )
    ort_session, name = session._session, session.inputs[0].name
    opts = ort_session.get_session_options()
    assert opts.intra_op_num_threads == threads, opts.intra_op_num_threads
    outputs = [o.name for o in session.outputs]
    return compare(lambda: ort_session.run(outputs, {name: x}), lambda: session.run({name: x}), plan)


def _mobilenet() -> Any:
    import torch

    from im_models.embeddings._mobilenetv2 import build_mobilenet_v2_backbone

    module = build_mobilenet_v2_backbone()
    module.load_state_dict(torch.load(ASSETS / "embed/mobilenetv2_backbone.pt", weights_only=True))
    return module.eval()


def bench_torch(plan: Plan, threads: int, x: np.ndarray, tmp: Path) -> dict[str, dict]:
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
        num_threads=threads,
    )
    module = eager._fn
    xt = torch.from_numpy(x)

    def raw_eager() -> Any:
        with torch.inference_mode():
            return module(xt).numpy()

    results["torch-eager"] = compare(raw_eager, lambda: eager.run({"images": x}), plan)
    _check_torch_threads(threads, "torch-eager")
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(_mobilenet(), torch.zeros(1, 3, 640, 640), check_trace=False).save(str(tmp / "m.ts"))
    scripted = TorchBackend().load(tmp / "m.ts", device="cpu", inputs=spec, outputs=out, num_threads=threads)
    traced = scripted._fn

    def raw_ts() -> Any:
        with torch.inference_mode():
            return traced(xt).numpy()

    results["torchscript"] = compare(raw_ts, lambda: scripted.run({"images": x}), plan)
    _check_torch_threads(threads, "torchscript")
    return results


def bench_tiny_overhead(plan: Plan, threads: int) -> dict[str, dict]:
    """Absolute per-call overhead on the 1×3×8×8 reference network (the runtime's own work is a few µs).

    One intra-op thread on both sides here whatever ``--threads`` says: a thread pool only adds wake-up noise to a
    graph this small. Blocks of 2000 calls; a quarter of the budget each (this measurement is steady).
    """
    import torch

    from im_backend_onnx import OnnxBackend
    from im_backend_torch import TorchBackend
    from im_core.testing import reference_inputs, reference_torch_module

    sys.path.insert(0, str(REPO / "tests" / "im_backend_onnx"))
    from conftest import build_reference_onnx  # type: ignore[import-not-found]

    plan = Plan(calls=2000, budget_s=plan.budget_s / 4, min_rounds=plan.min_rounds, rounds=plan.rounds)
    x = reference_inputs(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_reference_onnx(Path(tmp) / "ref.onnx")
        onnx = OnnxBackend().load(path, device="cpu", intra_op_num_threads=1, inter_op_num_threads=1)
        ort_session = onnx._session
        out = {
            "onnx-tiny": compare(
                lambda: ort_session.run(["logits", "pooled"], {"images": x}),
                lambda: onnx.run({"images": x}),
                plan,
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
        num_threads=threads,
    )
    xt = torch.from_numpy(x)

    def raw() -> Any:
        with torch.inference_mode():
            a, b = module(xt)
            return a.numpy(), b.numpy()

    out["torch-tiny"] = compare(raw, lambda: session.run({"images": x}), plan, calls=2000)
    _check_torch_threads(threads, "torch-tiny")
    return out


def main(argv: list[str] | None = None) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=cpus, help=f"intra-op threads, both sides (default {cpus})")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per comparison (sets the round count)")
    parser.add_argument("--calls", type=int, default=2, help="calls per block (one block per side per round)")
    parser.add_argument("--min-rounds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=None, help="fixed round count (overrides --budget)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    plan = Plan(calls=args.calls, budget_s=args.budget, min_rounds=args.min_rounds, rounds=args.rounds)
    x = np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)
    import torch

    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "input": "1x3x640x640 float32",
        "cpus": cpus,
        "threads": f"{args.threads} (ORT intra-op, inter-op 1; torch.set_num_threads); tiny ONNX: 1",
    }
    started = time.perf_counter()
    results["onnx"] = bench_onnx(plan, args.threads, x)
    with tempfile.TemporaryDirectory() as tmp:
        results.update(bench_torch(plan, args.threads, x, Path(tmp)))
    results.update(bench_tiny_overhead(plan, args.threads))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    for name, r in results.items():
        if isinstance(r, dict):
            q1, q3 = r["round_ratio_iqr"]
            print(
                f"{name:12s} raw {r['raw_ms']:9.3f} ms  im {r['im_ms']:9.3f} ms  overhead {r['overhead_us']:8.1f} µs  "
                f"ratio of medians {r['ratio']:.4f}  median round ratio {r['median_round_ratio']:.4f} "
                f"(IQR {q1:.4f}..{q3:.4f}; {r['rounds']} rounds x {r['calls_per_block']} calls/side)"
            )
        else:
            print(f"{name}: {r}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
