"""The HTTP app: one worker thread per model, opportunistic batching through ``infer_batch``, bounded queues, KServe
v2 health and metadata, Prometheus metrics.

Batching never changes an answer: a worker takes whatever queued while its previous batch ran (at most
``max_batch_size`` requests), groups them by call parameters and runs each group through
``model.infer_batch(..., errors="return")``, which gives every image the result it gets alone and puts a bad image's
error in its own slot. A request's answer therefore never depends on the other requests it was batched with.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from im_core.errors import ImError, InvalidParameterError, ModelInputError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from im_core import Model, ModelSpec

__all__ = ["ModelRunner", "create_app"]

logger = logging.getLogger("im.serve")

#: names a query string may not set: they are arguments of ``infer_batch`` itself, chosen by the server
RESERVED_PARAMS = frozenset({"errors"})
#: seconds a client is told to wait before retrying a refused request (queue full, model loading, draining)
RETRY_AFTER_S = 1
PREDICT_ROUTE = "/v1/models/{model}/predict"


@runtime_checkable
class ModelRunner(Protocol):
    """What runs the models when :func:`create_app` is given ``runner=``, in place of its own worker threads (the Ray
    Serve deployment of im-ray is one: its ``@serve.batch`` and ``@serve.multiplexed`` run the models, while the
    routes, parameters, errors, metrics and drain stay im-serve's).
    """

    async def predict(self, model: str, data: bytes, params: dict[str, Any]) -> Any:
        """One image's answer: its result's ``to_dict()``, or the :class:`~im_core.errors.ImError` of this image
        (returned or raised: a 400 for bad input or parameters, else 500)."""
        ...

    def loaded(self, model: str) -> Model[Any] | None:
        """The model named ``model`` if it is loaded here (for its metadata), else None."""
        ...


class Refused(Exception):
    """A request the server does not take now (queue full, model not ready, draining): 503 with ``Retry-After``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class _Job:
    data: bytes
    params: dict[str, Any]
    key: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


@dataclass
class _Metrics:
    registry: CollectorRegistry
    requests: Any
    latency: Any
    batch_size: Any
    queue_depth: Any
    inference: Any
    load_seconds: Any


def _metrics() -> _Metrics:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry(auto_describe=True)
    return _Metrics(
        registry=registry,
        requests=Counter(
            "im_serve_requests",
            "HTTP requests by model, route and status code",
            ["model", "route", "code"],
            registry=registry,
        ),
        latency=Histogram(
            "im_serve_request_duration_seconds",
            "request latency, from arrival to response",
            ["model", "route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        ),
        batch_size=Histogram(
            "im_serve_batch_size",
            "requests taken together by a model's worker",
            ["model"],
            registry=registry,
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128),
        ),
        queue_depth=Gauge(
            "im_serve_queue_depth", "requests waiting for a model's worker", ["model"], registry=registry
        ),
        inference=Histogram(
            "im_serve_inference_seconds",
            "time of one worker batch (decode, inference, serialisation)",
            ["model"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        ),
        load_seconds=Gauge("im_serve_model_load_seconds", "time the model took to load", ["model"], registry=registry),
    )


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


@dataclass(eq=False)
class ModelWorker:
    """One model: its loading, its bounded queue and the thread that runs its batches."""

    name: str
    source: Any  # ModelSpec or a loaded Model
    metrics: _Metrics
    max_batch_size: int = 8
    max_queue: int = 64
    max_wait_s: float = 0.0
    model: Any = None
    state: str = "loading"  # loading -> ready | failed
    error: str | None = None
    _queue: collections.deque[_Job] = field(default_factory=collections.deque)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _stopping: bool = False
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=f"im-serve-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after answering what is queued (the thread is a daemon: a batch still running never holds exit)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def depth(self) -> int:
        return len(self._queue)

    def submit(self, job: _Job) -> None:
        """Queue a job.

        Raises:
            Refused: the model is not loaded, or the queue holds ``max_queue`` jobs.
        """
        with self._cond:
            if self.state != "ready" or self._stopping:
                raise Refused(
                    f"model {self.name!r} is not ready ({self.state})" + (f": {self.error}" if self.error else "")
                )
            if len(self._queue) >= self.max_queue:
                raise Refused(f"model {self.name!r} has {self.max_queue} requests waiting; retry later")
            self._queue.append(job)
            self.metrics.queue_depth.labels(self.name).set(len(self._queue))
            self._cond.notify()

    def _load(self) -> bool:
        from im_core import ModelSpec

        start = time.perf_counter()
        try:
            self.model = self.source.load() if isinstance(self.source, ModelSpec) else self.source
        except Exception as exc:  # a model that cannot load leaves the others serving
            logger.exception("im serve: model %r failed to load", self.name)
            with self._cond:
                self.state, self.error = "failed", exc.message if isinstance(exc, ImError) else repr(exc)
            return False
        self.metrics.load_seconds.labels(self.name).set(time.perf_counter() - start)
        with self._cond:
            self.state = "ready"
        logger.info("im serve: model %r ready", self.name)
        return True

    def _take(self) -> list[_Job] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None  # stopping, nothing left
            if self.max_wait_s > 0 and len(self._queue) < self.max_batch_size:
                deadline = time.monotonic() + self.max_wait_s
                while len(self._queue) < self.max_batch_size and not self._stopping:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            jobs = [self._queue.popleft() for _ in range(min(self.max_batch_size, len(self._queue)))]
            self.metrics.queue_depth.labels(self.name).set(len(self._queue))
            return jobs

    def _main(self) -> None:
        if not self._load():
            return
        while (jobs := self._take()) is not None:
            self.metrics.batch_size.labels(self.name).observe(len(jobs))
            start = time.perf_counter()
            groups: dict[str, list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for group in groups.values():
                self._run(group)
            self.metrics.inference.labels(self.name).observe(time.perf_counter() - start)

    def _run(self, group: list[_Job]) -> None:
        answers: list[Any]
        try:
            results = self.model.infer_batch([j.data for j in group], errors="return", **group[0].params)
            answers = [r if isinstance(r, ImError) else r.to_dict() for r in results]
        except Exception as exc:  # a wrong parameter name (every item of the group), or a bug: every job answered
            if not isinstance(exc, ImError):
                logger.exception("im serve: model %r failed on a batch", self.name)
            answers = [exc] * len(group)
        for job, answer in zip(group, answers):
            job.loop.call_soon_threadsafe(_settle, job.future, answer)


def _settle(future: asyncio.Future[Any], answer: Any) -> None:
    if not future.done():  # the client may have gone away
        future.set_result(answer)


async def _run(runner: ModelRunner, model: str, data: bytes, params: dict[str, Any]) -> Any:
    """The runner's answer; an exception it raises is the answer (an ImError: 4xx/500 with its message)."""
    try:
        return await runner.predict(model, data, params)
    except Exception as exc:
        if not isinstance(exc, ImError):
            logger.exception("im serve: the runner failed on model %r", model)
        return exc


def _error_status(exc: BaseException) -> int:
    if isinstance(exc, (ModelInputError, InvalidParameterError)):
        return 400
    return 500


def _error_body(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ImError):
        return {"error": {"type": type(exc).__name__, "message": exc.message, "help_url": exc.help_url}}
    return {"error": {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}}


@dataclass(eq=False)
class ServeState:
    """What the routes share (``app.state.im_serve``)."""

    workers: dict[str, ModelWorker]
    metrics: _Metrics
    draining: bool = False
    runner: ModelRunner | None = None

    def drain(self) -> None:
        """Readiness turns 503 and new work is refused; work already accepted is still answered."""
        self.draining = True

    @property
    def ready(self) -> bool:
        return not self.draining and all(w.state == "ready" for w in self.workers.values())

    def observe_batch(self, model: str, size: int) -> None:
        """Count a batch of ``size`` requests of ``model`` in ``im_serve_batch_size`` (for runners that batch)."""
        self.metrics.batch_size.labels(model).observe(size)

    def model_state(self, model: str) -> tuple[str, str | None, Any]:
        """``(state, error, loaded model or None)`` of a served model."""
        worker = self.workers.get(model)
        if worker is not None:
            return worker.state, worker.error, worker.model
        loaded = self.runner.loaded(model) if self.runner is not None else None
        return "ready", None, loaded


def create_app(
    models: Mapping[str, ModelSpec | Model[Any]],
    *,
    max_batch_size: int = 8,
    max_queue: int = 64,
    max_wait_ms: float = 0.0,
    runner: ModelRunner | None = None,
) -> FastAPI:
    """An ASGI app serving ``models`` (name -> :class:`~im_core.ModelSpec` or loaded model).

    Specs are loaded by each model's worker thread when the app starts (its lifespan), so a slow load never blocks
    the server or the other models; readiness is false until every model is loaded.

    Args:
        models: the served models by the name used in the routes (``/v1/models/{name}/predict``).
        max_batch_size: the most requests a worker takes at once (grouped by parameters, then by canvas inside
            ``infer_batch``; answers never depend on the batch).
        max_queue: requests that may wait per model; beyond it a request gets 503 with ``Retry-After``.
        max_wait_ms: how long a worker waits for a batch to fill (0, the default: it takes what queued while its
            previous batch ran; a wait pays off on GPUs only).
        runner: what runs the models instead of the app's own worker threads (:class:`ModelRunner`; im-ray's Ray
            Serve deployment). The batching, queue and loading arguments above then do not apply: the runner
            loads models when it chooses, and the models are ready from the start. A runner that batches reports
            its batch sizes to ``/metrics`` with ``app.state.im_serve.observe_batch(model, size)``.

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
    metrics = _metrics()
    if runner is not None and not isinstance(runner, ModelRunner):
        raise InvalidParameterError(
            f"runner must have async predict(model, data, params) and loaded(model), not {type(runner).__name__}."
        )
    workers = (
        {
            name: ModelWorker(
                name, source, metrics, max_batch_size=max_batch_size, max_queue=max_queue, max_wait_s=max_wait_ms / 1000
            )
            for name, source in models.items()
        }
        if runner is None
        else {}
    )
    names = frozenset(models)
    state = ServeState(workers, metrics, runner=runner)

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

    def refuse(reason: str) -> JSONResponse:
        return JSONResponse(
            {"error": {"type": "Unavailable", "message": reason}},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

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
            model = scope.get("path_params", {}).get("model", "") if route is not None else ""
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
        if model not in names:
            return unknown(model)
        if state.draining:
            return refuse("the server is shutting down")
        try:
            params = parse_params(list(request.query_params.multi_items()))
        except ImError as exc:
            return JSONResponse(_error_body(exc), status_code=400)
        data = await request.body()
        if not data:
            empty = ModelInputError("the request body is empty: send the image file's bytes (JPEG, PNG, ...).")
            return JSONResponse(_error_body(empty), status_code=400)
        if runner is not None:
            answer = await _run(runner, model, data, params)
        else:
            loop = asyncio.get_running_loop()
            job = _Job(data, params, json.dumps(params, sort_keys=True, default=repr), loop, loop.create_future())
            try:
                workers[model].submit(job)
            except Refused as exc:
                return refuse(exc.reason)
            answer = await job.future
        if isinstance(answer, BaseException):
            return JSONResponse(_error_body(answer), status_code=_error_status(answer))
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
        model_state, error, loaded = state.model_state(model)
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
        info = getattr(loaded, "metadata", None)
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

    return app
