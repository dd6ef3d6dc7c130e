"""``im export FOLDER OUT [--backend onnx|torch] [--opset N] [--allow-pickle]``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["configure"]


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add ``im export``'s arguments to ``parser``; return the handler."""
    parser.add_argument("source", help="a Hugging Face model folder (config.json + model.safetensors)")
    parser.add_argument("destination", help="a new or empty folder for the im package")
    parser.add_argument(
        "--backend",
        default="onnx",
        choices=("onnx", "torch"),
        metavar="onnx|torch",
        help="format to write (default onnx)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument(
        "--allow-pickle", action="store_true", help="also read pytorch_model.bin (runs code the file chooses)"
    )

    def handle(args: argparse.Namespace) -> int:
        from im_backend_transformers._export import export_folder

        out = export_folder(
            args.source, args.destination, backend=args.backend, opset=args.opset, allow_pickle=args.allow_pickle
        )
        files = sorted(p.name for p in out.iterdir())
        print(f"exported {args.source} -> {out} ({args.backend}): {', '.join(files)}")
        return 0

    return handle
