"""The HTTP app: one worker thread per model (:mod:`im_serve._worker`), opportunistic batching through
``infer_batch``, bounded queues, per-request deadlines, at most ``max_loaded_models`` models resident, KServe v2
health and metadata, Prometheus metrics, and the Roboflow inference server's routes (:mod:`im_serve._roboflow`).
With ``runner=`` (a :class:`ModelRunner`, :mod:`im_serve._runner`) the same routes hand each image to the runner
instead of the worker threads.

Batching never changes an answer: a worker takes whatever queued while its previous batch ran (at most
``max_batch_size`` requests), groups them by call parameters and runs each group through
``model.infer_batch(..., errors="return")``, which gives every image the result it gets alone and puts a bad image's
error in its own slot. A request's answer therefore never depends on the other requests it was batched with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from im_core.errors import ImError, InvalidParameterError, ModelInputError
from im_serve._runner import ModelRunner, run_on_runner
from im_serve._state import (
    DEADLINE_PARAM,
    ServeState,
    error_body,
    error_response,
    refuse,
    request_deadline,
    run_jobs,
)
from im_serve._worker import Job, ModelPool, ModelWorker, Refused, make_metrics

if TYPE_CHECKING:
    from im_core import Model, ModelSpec

__all__ = ["ModelRunner", "create_app", "parse_params"]

#: names a query string may not set: they are arguments of ``infer_batch`` itself, chosen by the server
RESERVED_PARAMS = frozenset({"errors"})
PREDICT_ROUTE = "/v1/models/{model}/predict"


def _param_value(values: list[str]) -> Any:
    """A query parameter's value: JSON where it parses (``0.4``, ``true``, ``[1, 2]``), else the string; a repeated
    parameter gives a list."""

    def one(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return text

    parsed = [one(v) for v in values]
    return parsed[0] if len(parsed) == 1 else parsed


def parse_params(items: list[tuple[str, str]]) -> dict[str, Any]:
    """The call parameters of a query string (``?confidence=0.4&class_filter=a&class_filter=b``).

    Raises:
        InvalidParameterError: a reserved name (``errors``).
    """
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        grouped.setdefault(name, []).append(value)
    bad = sorted(RESERVED_PARAMS & grouped.keys())
    if bad:
        raise InvalidParameterError(f"query parameter {bad[0]!r} is set by the server and cannot be given.")
    return {name: _param_value(values) for name, values in grouped.items()}


def create_app(
    models: Mapping[str, ModelSpec | Model[Any]],
    *,
    max_batch_size: int = 8,
    max_queue: int = 64,
    max_wait_ms: float = 0.0,
    deadline_ms: float | None = None,
    max_loaded_models: int | None = None,
    allow_url_images: bool = False,
    url_max_bytes: int = 20 * 2**20,
    url_timeout_s: float = 10.0,
    runner: ModelRunner | None = None,
) -> FastAPI:
    """An ASGI app serving ``models`` (name -> :class:`~im_core.ModelSpec` or loaded model).

    Specs are loaded by each model's worker thread when the app starts (its lifespan), so a slow load never blocks
    the server or the other models; readiness is false until every preloaded model is loaded.

    Args:
        models: the served models by the name used in the routes (``/v1/models/{name}/predict``, ``model_id`` of the
            Roboflow routes).
        max_batch_size: the most requests a worker takes at once (grouped by parameters, then by canvas inside
            ``infer_batch``; answers never depend on the batch).
        max_queue: images that may wait per model; beyond it a request gets 503 with ``Retry-After``.
        max_wait_ms: how long a worker waits for a batch to fill (0, the default: it takes what queued while its
            previous batch ran; a wait pays off on GPUs only).
        deadline_ms: the default deadline of a request, in ms from its arrival (``None``: none); a request still
            queued at its deadline is answered 504 and not run. A request sets its own with the ``X-Deadline-Ms``
            header or the ``deadline_ms`` query parameter.
        max_loaded_models: the most models given as specs that are resident at once (``None``: all). The first
            ``max_loaded_models`` specs are loaded at start; the others on their first request. Before a model
            loads, the least recently used idle one is unloaded (its sessions closed); its next request waits in its
            queue while it loads again. Models given already loaded are never unloaded and do not count.
        allow_url_images: whether the Roboflow routes fetch ``{"type": "url"}`` images (off: a server-side request
            forgery risk; such requests get 400).
        url_max_bytes: the largest image fetched from a URL.
        url_timeout_s: the timeout of a URL fetch's connection and of each read.
        runner: what runs the models instead of the app's own worker threads (:class:`ModelRunner`; im-ray's Ray
            Serve deployment), for every route (``/v1/models/{name}/predict`` and the Roboflow ``/infer/*``).
            ``max_batch_size`` (other than as the batch size the Roboflow registry reports), ``max_queue``,
            ``max_wait_ms`` and ``max_loaded_models`` then do not apply: the runner batches, queues and loads models
            when it chooses, and the models are ready from the start. Deadlines apply up to the moment a request is
            handed to the runner (past it: 504, not run); after that it is waited for. A runner that batches
            reports its batch sizes to ``/metrics`` with ``app.state.im_serve.observe_batch(model, size)``.

    Raises:
        InvalidParameterError: no model, a bad name, or a bound below 1.
    """
    from im_core import Model, ModelSpec

    if not models:
        raise InvalidParameterError("create_app needs at least one model: {'name': ModelSpec(...)}.")
    for name, source in models.items():
        if not name or "/" in name or not isinstance(name, str):
            raise InvalidParameterError(f"model name {name!r}: give a non-empty name without '/'.")
        if not isinstance(source, (ModelSpec, Model)):
            raise InvalidParameterError(
                f"model {name!r}: give an im_core.ModelSpec or a loaded model, not {type(source).__name__}."
            )
    if max_batch_size < 1 or max_queue < 1 or max_wait_ms < 0:
        raise InvalidParameterError(
            f"max_batch_size and max_queue must be at least 1 and max_wait_ms at least 0, got {max_batch_size}, "
            f"{max_queue} and {max_wait_ms}."
        )
    if (max_loaded_models is not None and max_loaded_models < 1) or (deadline_ms is not None and deadline_ms <= 0):
        raise InvalidParameterError(
            f"max_loaded_models must be at least 1 and deadline_ms above 0 (or None), got {max_loaded_models} and "
            f"{deadline_ms}."
        )
    if runner is not None and not isinstance(runner, ModelRunner):
        raise InvalidParameterError(
            f"runner must have async predict(model, data, params) and loaded(model), not {type(runner).__name__}."
        )
    metrics = make_metrics()
    pool = ModelPool(max_loaded_models, metrics)
    specs = 0
    for name, source in models.items() if runner is None else ():
        preload = True
        if isinstance(source, ModelSpec):
            specs += 1
            preload = max_loaded_models is None or specs <= max_loaded_models
        pool.workers[name] = ModelWorker(
            name,
            source,
            metrics,
            pool,
            max_batch_size=max_batch_size,
            max_queue=max_queue,
            max_wait_s=max_wait_ms / 1000,
            preload=preload,
        )
    workers = pool.workers
    names = frozenset(models)
    state = ServeState(
        pool,
        metrics,
        deadline_ms=deadline_ms,
        allow_url_images=allow_url_images,
        url_max_bytes=url_max_bytes,
        url_timeout_s=url_timeout_s,
        runner=runner,
        sources=dict(models),
        max_batch_size=max_batch_size,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for worker in workers.values():
            worker.start()
        try:
            yield
        finally:
            state.drain()
            for worker in workers.values():
                await asyncio.to_thread(worker.stop, 0.2)

    app = FastAPI(title="im serve", lifespan=lifespan)
    app.state.im_serve = state

    def unknown(model: str) -> JSONResponse:
        return JSONResponse(
            {"error": {"type": "ModelNotFound", "message": f"no model {model!r}; served: {sorted(names)}"}},
            status_code=404,
        )

    async def count(scope: dict[str, Any], receive: Any, send: Any, app_: Any) -> None:
        """Pure ASGI middleware (cheaper than Starlette's ``BaseHTTPMiddleware``): requests and latency by route."""
        if scope["type"] != "http":
            await app_(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await app_(scope, receive, send_status)
        finally:
            route = scope.get("route")  # the router writes the matched route and path parameters into the scope
            path = getattr(route, "path", "unmatched")
            model = scope.get("im_serve_model") or (
                scope.get("path_params", {}).get("model", "") if route is not None else ""
            )
            if model and model not in names:
                model = "unknown"  # a bounded label set: never a client-chosen string
            metrics.requests.labels(model, path, str(status[0])).inc()
            metrics.latency.labels(model, path).observe(time.perf_counter() - start)

    class _Count:
        def __init__(self, app_: Any) -> None:
            self.app = app_

        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            await count(scope, receive, send, self.app)

    app.add_middleware(_Count)

    @app.post(PREDICT_ROUTE)
    async def predict(model: str, request: Request) -> Response:
        arrived = time.monotonic()
        if model not in names:
            return unknown(model)
        if state.draining:
            return refuse("the server is shutting down")
        try:
            deadline = request_deadline(request, state.deadline_ms, arrived)
            params = parse_params([(k, v) for k, v in request.query_params.multi_items() if k != DEADLINE_PARAM])
        except ImError as exc:
            return JSONResponse(error_body(exc), status_code=400)
        data = await request.body()
        if not data:
            empty = ModelInputError("the request body is empty: send the image file's bytes (JPEG, PNG, ...).")
            return JSONResponse(error_body(empty), status_code=400)
        if runner is not None:
            (answer,) = await run_on_runner(runner, model, [data], params, deadline=deadline)
        else:
            loop = asyncio.get_running_loop()
            key = json.dumps(params, sort_keys=True, default=repr)
            job = Job(data, params, key, loop, loop.create_future(), deadline=deadline)
            try:
                (answer,) = await run_jobs(workers[model], [job])
            except Refused as exc:
                return refuse(exc.reason)
        if isinstance(answer, BaseException):
            return error_response(answer)
        return JSONResponse(answer)

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        return JSONResponse({"ready": state.ready}, status_code=200 if state.ready else 503)

    @app.get("/v2/models/{model}")
    async def model_metadata(model: str) -> Response:
        if model not in names:
            return unknown(model)
        model_state, error, info = state.model_state(model)
        body: dict[str, Any] = {
            "name": model,
            "versions": [],
            "platform": "im",
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1]}],
            "outputs": [{"name": "result", "datatype": "BYTES", "shape": [1]}],
            "state": model_state,
        }
        if error:
            body["error"] = error
        if info is not None:
            body["platform"] = f"im-{info.backend}" if info.backend else "im"
            body["parameters"] = {
                "model_id": info.model_id,
                "architecture": info.architecture,
                "task": info.task,
                "class_names": list(info.class_names),
                "backend": info.backend,
                "device": info.device,
                "package_id": info.package_id,
            }
        return JSONResponse(body)

    @app.get("/v2/models/{model}/ready")
    async def model_ready(model: str) -> Response:
        if model not in names:
            return unknown(model)
        ok = state.model_state(model)[0] == "ready" and not state.draining
        return JSONResponse({"name": model, "ready": ok}, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        for name, worker in workers.items():
            metrics.queue_depth.labels(name).set(worker.depth)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    from im_serve._roboflow_routes import add_roboflow_routes

    add_roboflow_routes(app, state)
    return app
