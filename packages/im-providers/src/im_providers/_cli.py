"""``im registry add <registry-dir> --model-id ... --architecture ... --task ... <files...>``."""

from __future__ import annotations

import argparse
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
    add.add_argument("--architecture", required=True, help="e.g. yolov8")
    add.add_argument("--task", required=True, help="e.g. object-detection")
    add.add_argument("--backend", default="onnx", help="onnx, trt, torchscript or state-dict (default onnx)")
    add.add_argument("--package-id", default=None)
    add.add_argument("--quantization", default="fp32")
    add.add_argument("--batch", type=_batch, default=1, help="static N, or MIN:MAX (MAX empty = unbounded)")
    add.add_argument("--class-names", default=None, help="comma-separated, or @file with one name per line")
    add.add_argument("--input-size", type=_size, default=None, help="HxW in pixels, e.g. 640x640")
    add.add_argument("--opset", type=int, default=None)
    add.add_argument("--variant", default=None)
    return _run


def _run(args: argparse.Namespace) -> int:
    from im_providers._builder import add_to_registry

    names = None
    if args.class_names:
        if args.class_names.startswith("@"):
            lines = Path(args.class_names[1:]).read_text(encoding="utf-8").splitlines()
            names = [n.strip() for n in lines if n.strip()]
        else:
            names = [n.strip() for n in args.class_names.split(",") if n.strip()]
    path = add_to_registry(
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
    )
    print(f"wrote {path}")
    return 0
