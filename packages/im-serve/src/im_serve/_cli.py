"""``im serve NAME=ID ... --host --port --max-batch-size --max-wait-ms --max-queue --deadline-ms --max-loaded-models
--allow-url-images --graceful-timeout``."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["configure", "parse_model_arg"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def parse_model_arg(text: str) -> tuple[str, str]:
    """``NAME=ID`` -> ``(NAME, ID)``; a bare ``ID`` is served under its last path part without suffix.

    Raises:
        InvalidParameterError: a name that cannot be a URL path segment.
    """
    from im_core.errors import InvalidParameterError

    name, sep, model_id = text.partition("=")
    if not sep:
        model_id, name = text, Path(text.rstrip("/")).stem
    if not _NAME.match(name) or not model_id:
        raise InvalidParameterError(
            f"{text!r}: give NAME=ID, NAME made of letters, digits, '.', '_' and '-' (e.g. people=yolov8n-640)."
        )
    return name, model_id


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add ``im serve``'s arguments to ``parser``; return the handler."""
    parser.add_argument("models", nargs="+", metavar="NAME=ID", help="a model to serve and its name in the routes")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    parser.add_argument("--device", default=None, help="device for every model (default: im's choice)")
    parser.add_argument("--max-batch-size", type=int, default=8, help="most requests per batch (default 8)")
    parser.add_argument(
        "--max-wait-ms", type=float, default=0.0, help="wait for a batch to fill (default 0: no wait; for GPUs)"
    )
    parser.add_argument("--max-queue", type=int, default=64, help="requests waiting per model before 503 (default 64)")
    parser.add_argument(
        "--deadline-ms",
        type=float,
        default=None,
        help="default deadline of a request in ms: still queued then, it gets 504 unrun (default: none; a request "
        "sets its own with the X-Deadline-Ms header or ?deadline_ms=)",
    )
    parser.add_argument(
        "--max-loaded-models",
        type=int,
        default=None,
        help="most models resident at once; the least recently used idle one is unloaded and loads again on its "
        "next request (default: all)",
    )
    parser.add_argument(
        "--allow-url-images",
        action="store_true",
        help='let the Roboflow /infer/* routes fetch {"type": "url"} images (off by default: SSRF risk)',
    )
    parser.add_argument(
        "--graceful-timeout", type=float, default=30.0, help="seconds from SIGTERM to exit (default 30)"
    )
    parser.add_argument(
        "--drain-delay",
        type=float,
        default=0.5,
        help="seconds from SIGTERM to closing the listener, answering new requests 503 + Retry-After (default 0.5)",
    )
    parser.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")

    def run(args: argparse.Namespace) -> int:
        from im_core import ModelSpec
        from im_core.errors import InvalidParameterError
        from im_serve._app import create_app
        from im_serve._server import serve

        specs: dict[str, Any] = {}
        for text in args.models:
            name, model_id = parse_model_arg(text)
            if name in specs:
                raise InvalidParameterError(f"two models are named {name!r}: give each NAME=ID a different NAME.")
            options = {} if args.device is None else {"device": args.device}
            specs[name] = ModelSpec(model_id, **options)
        app = create_app(
            specs,
            max_batch_size=args.max_batch_size,
            max_queue=args.max_queue,
            max_wait_ms=args.max_wait_ms,
            deadline_ms=args.deadline_ms,
            max_loaded_models=args.max_loaded_models,
            allow_url_images=args.allow_url_images,
        )
        return serve(
            app,
            host=args.host,
            port=args.port,
            graceful_timeout=args.graceful_timeout,
            drain_delay=args.drain_delay,
            log_level=args.log_level,
        )

    return run
