"""``im trt build model.onnx --out DIR``: build a TensorRT engine package where the full builder is installed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["configure"]


def _hw(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 640x640, got {text!r}") from None
    return h, w


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add the ``build`` subcommand to ``im trt``; returns the handler."""
    sub = parser.add_subparsers(dest="trt_command", required=True)
    build = sub.add_parser("build", help="Build engine.plan + trt_config.json from an ONNX model.")
    build.add_argument("onnx", type=Path, help="the ONNX model")
    build.add_argument("--out", type=Path, required=True, help="package folder to write")
    build.add_argument("--min-batch", type=int, default=1)
    build.add_argument("--opt-batch", type=int, default=None)
    build.add_argument("--max-batch", type=int, default=16)
    build.add_argument("--shape", type=_hw, default=None, help="HxW for dynamic spatial inputs")
    build.add_argument("--workspace-gib", type=float, default=4.0)
    build.add_argument("--timing-cache", type=Path, default=None, help="default: IM_HOME/trt-timing-cache/")
    build.add_argument("--no-version-compatible", action="store_true", help="plan runnable by the full runtime only")
    build.add_argument("--fp16", action="store_true", help="TensorRT 10 only (11 needs an fp16 ONNX)")

    def run(args: argparse.Namespace) -> int:
        from im_backend_trt._build import BuildOptions, build_engine

        if not args.onnx.is_file():
            print(f"error: {args.onnx} does not exist", file=sys.stderr)
            return 2
        options = BuildOptions(
            min_batch=args.min_batch,
            opt_batch=args.opt_batch,
            max_batch=args.max_batch,
            spatial=args.shape,
            workspace_gib=args.workspace_gib,
            timing_cache=args.timing_cache,
            version_compatible=not args.no_version_compatible,
            fp16=args.fp16,
        )
        out = build_engine(args.onnx, args.out, options)  # ImError is reported by im's main()
        print(f"wrote {out / 'engine.plan'} and {out / 'trt_config.json'}")
        return 0

    return run
