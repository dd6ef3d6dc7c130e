"""CLI commands backed by AutoModel: describe-model, describe-package, negotiate (``im predict`` and
``im pipeline``: :mod:`im_core._predict_cli`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

__all__ = ["describe_model_command", "describe_package_command", "format_result", "negotiate_command"]

Handler = Callable[[argparse.Namespace], int]


def _provider_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", dest="weights_provider", help="weights provider (roboflow, local, http, ...)")
    parser.add_argument("--registry", help="registry root for the local/http providers (or IM_REGISTRY)")
    parser.add_argument("--offline", action="store_true", default=None, help="use only the cache")


def _provider_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"weights_provider": args.weights_provider, "offline": args.offline}
    if args.registry:
        kwargs["provider_options"] = {"root": args.registry}
    return kwargs


def describe_model_command(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("model_id")
    _provider_arguments(parser)

    def run(args: argparse.Namespace) -> int:
        from im_core._auto import AutoModel

        AutoModel.describe_model(args.model_id, **_provider_kwargs(args))
        return 0

    return run


def describe_package_command(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("model_id")
    parser.add_argument("package_id")
    _provider_arguments(parser)

    def run(args: argparse.Namespace) -> int:
        from im_core._auto import AutoModel

        AutoModel.describe_model_package(args.model_id, args.package_id, **_provider_kwargs(args))
        return 0

    return run


def _filter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", action="append", help="allowed backend (repeatable)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--quantization", action="append")
    parser.add_argument("--package-id", dest="model_package_id")


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "backend": args.backend,
        "device": args.device,
        "batch_size": args.batch_size,
        "quantization": args.quantization,
        "model_package_id": args.model_package_id,
    }


def negotiate_command(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("model_id_or_path")
    _provider_arguments(parser)
    _filter_arguments(parser)
    parser.add_argument("--json", action="store_true")

    def run(args: argparse.Namespace) -> int:
        from im_core._auto import AutoModel

        report = AutoModel.negotiate(args.model_id_or_path, **_provider_kwargs(args), **_filters(args))
        if args.json:
            print(json.dumps(report.to_dict(), indent=2))
        else:
            report.print()
        return 0 if report.ranked else 1

    return run


def format_result(result: Any) -> str:
    """A short human-readable rendering of any result type."""
    from im_core._results import Classification, Detections, Embeddings, Gaze, TextRecognition

    if isinstance(result, Detections):
        if not len(result):
            return "  no detections"
        lines = []
        for i, (box, conf, name) in enumerate(zip(result.xyxy, result.confidence, result.names)):
            x1, y1, x2, y2 = (round(float(v), 1) for v in box)
            extra = ""
            if result.keypoints is not None:
                extra = f" +{result.keypoints.shape[1]} keypoints"
            lines.append(f"  {i}: {name} {conf:.3f} box=({x1}, {y1}, {x2}, {y2}){extra}")
        return "\n".join(lines)
    if isinstance(result, Classification):
        return "  " + ", ".join(f"{n} {s:.3f}" for n, s in result.top_k(5))
    if isinstance(result, TextRecognition):
        return "\n".join(f"  {line.text!r} ({line.confidence:.3f})" for line in result.lines) or "  no text"
    if isinstance(result, Embeddings):
        return f"  {result.vectors.shape[1]}-d embedding, norm {float((result.vectors[0] ** 2).sum() ** 0.5):.3f}"
    if isinstance(result, Gaze):
        return (
            "\n".join(
                f"  face {i}: yaw {y:.3f} rad, pitch {p:.3f} rad"
                for i, (y, p) in enumerate(zip(result.yaw, result.pitch))
            )
            or "  no faces"
        )
    return f"  {result!r}"
