"""``im ray-serve NAME=ID ... --address --host --port --num-replicas --max-batch-size --max-models-per-replica``."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["configure"]


def _replicas(text: str) -> int | str:
    return text if text == "auto" else int(text)


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add ``im ray-serve``'s arguments to ``parser``; return the handler."""
    parser.add_argument("models", nargs="+", metavar="NAME=ID", help="a model to serve and its name in the routes")
    parser.add_argument(
        "--address", default=None, help="Ray cluster to join (default: RAY_ADDRESS, else a new local cluster)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of Ray Serve's HTTP proxy (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port of Ray Serve's HTTP proxy (default 8000)")
    parser.add_argument("--device", default=None, help="device for every model (default: im's choice)")
    parser.add_argument("--num-replicas", type=_replicas, default=1, help="replicas, or 'auto' (default 1)")
    parser.add_argument("--num-cpus", type=float, default=0.5, help="CPUs per replica (default 0.5)")
    parser.add_argument("--num-gpus", type=float, default=0, help="GPUs per replica (default 0)")
    parser.add_argument("--max-batch-size", type=int, default=8, help="most requests per batch (default 8)")
    parser.add_argument("--batch-wait-ms", type=float, default=0.0, help="wait for a batch to fill (default 0)")
    parser.add_argument(
        "--max-models-per-replica", type=int, default=3, help="models kept loaded per replica, LRU (default 3)"
    )

    def run(args: argparse.Namespace) -> int:
        from im_core import ModelSpec
        from im_core.errors import InvalidParameterError
        from im_serve import parse_model_arg

        specs: dict[str, Any] = {}
        for text in args.models:
            name, model_id = parse_model_arg(text)
            if name in specs:
                raise InvalidParameterError(f"two models are named {name!r}: give each NAME=ID a different NAME.")
            specs[name] = ModelSpec(model_id, **({} if args.device is None else {"device": args.device}))
        # workers run this interpreter, not `uv run` (which would re-create the environment in each worker)
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        import ray
        from ray import serve

        from im_ray._serve import build_app

        ray.init(address=args.address, include_dashboard=False)
        serve.start(http_options={"host": args.host, "port": args.port})
        resources: dict[str, float] = {"num_cpus": args.num_cpus}
        if args.num_gpus:
            resources["num_gpus"] = args.num_gpus
        app = build_app(
            specs,
            max_batch_size=args.max_batch_size,
            batch_wait_timeout_s=args.batch_wait_ms / 1000,
            max_models_per_replica=args.max_models_per_replica,
            num_replicas=args.num_replicas,
            ray_actor_options=resources,
        )
        serve.run(app, name="im", route_prefix="/")
        print(f"im ray-serve: serving {sorted(specs)} on http://{args.host}:{args.port}", flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        serve.shutdown()
        ray.shutdown()
        return 0

    return run
