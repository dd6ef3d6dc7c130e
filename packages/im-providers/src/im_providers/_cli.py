"""``im registry add <registry-dir> --model-id ... --architecture ... --task ... <files...>``."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

__all__ = ["configure"]


def _batch(text: str) -> int | tuple[int, int | None]:
    if ":" in text:
        lo, _, hi = text.partition(":")
        return (int(lo or 1), int(hi) if hi else None)
    return int(text)


def _size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return (int(h), int(w or h))


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add the ``registry`` subcommands to ``parser``; return the handler."""
    sub = parser.add_subparsers(dest="registry_command", required=True)
    add = sub.add_parser("add", help="add a package (files + metadata.json with sha256, md5 and sizes)")
    add.add_argument("registry_dir", type=Path, help="registry folder (created if missing)")
    add.add_argument("files", nargs="+", type=Path, help="the package's files")
    add.add_argument("--model-id", required=True, help="e.g. mediapipe/face-detector")
    add.add_argument("--architecture", default=None, help="e.g. yolov8 (default: what the network file says)")
    add.add_argument("--task", default=None, help="e.g. object-detection (default: what the network file says)")
    add.add_argument("--backend", default="onnx", help="onnx, trt, torchscript or state-dict (default onnx)")
    add.add_argument("--package-id", default=None)
    add.add_argument("--quantization", default="fp32")
    add.add_argument(
        "--batch",
        type=_batch,
        default=None,
        help="static N, or MIN:MAX (MAX empty = unbounded); default: the network's (dynamic axis: 1:)",
    )
    add.add_argument(
        "--class-names", default=None, help="comma-separated, or @file with one name per line (default: the file's)"
    )
    add.add_argument("--input-size", type=_size, default=None, help="HxW in pixels, e.g. 640x640 (default: the file's)")
    add.add_argument("--keep-names", action="store_true", help="store the network file under its own name")
    add.add_argument(
        "--no-verify", dest="verify", action="store_false", help="do not load the package before publishing it"
    )
    add.add_argument("--opset", type=int, default=None)
    add.add_argument("--variant", default=None)
    return _run


def _run(args: argparse.Namespace) -> int:
    from im_core.sdk import class_names_argument

    names = class_names_argument(args.class_names)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        path = _add(args, names)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(f"wrote {path}")
    return 0


def _add(args: argparse.Namespace, names: list[str] | None) -> Path:
    from im_providers._builder import add_to_registry

    return add_to_registry(
        args.registry_dir,
        model_id=args.model_id,
        architecture=args.architecture,
        task=args.task,
        files=args.files,
        backend=args.backend,
        package_id=args.package_id,
        quantization=args.quantization,
        batch=args.batch,
        class_names=names,
        input_size=args.input_size,
        opset=args.opset,
        variant=args.variant,
        conventional_names=not args.keep_names,
        verify=args.verify,
    )
