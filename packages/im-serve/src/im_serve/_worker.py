"""One worker thread per model: its loading and unloading, its bounded queue, per-request deadlines, and the batches
it runs through ``model.infer_batch``; and the pool that keeps at most ``max_loaded_models`` of them resident (least
recently used unloaded first).

Batching never changes an answer: a worker takes whatever queued while its previous batch ran (at most
``max_batch_size`` requests), groups them by call parameters and runs each group through
``model.infer_batch(..., errors="return")``, which gives every image the result it gets alone and puts a bad image's
error in its own slot.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from im_core.errors import ImError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["DeadlineExceeded", "Job", "Metrics", "ModelPool", "ModelWorker", "Refused", "make_metrics"]

logger = logging.getLogger("im.serve")


def _from_pretrained(spec: Any) -> Any:
    from im_core import AutoModel

    # not spec.load(): its per-process cache would keep an unloaded model in memory
    return AutoModel.from_pretrained(spec.model_id_or_path, **spec.kwargs)


#: renders one result for the response: ``render(result, width, height, seconds)`` (image size in pixels, seconds
#: the worker spent on the request's group); ``None``: ``result.to_dict()``
Render = Callable[[Any, int, int, float], Any]


class Refused(Exception):
    """A request the server does not take now (queue full, model not ready, draining): 503 with ``Retry-After``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeadlineExceeded(Exception):
    """A request still queued when its deadline passed: it was not run (504)."""


@dataclass(eq=False)
class Job:
    """One image of one request.

    Attributes:
        data: the encoded image (JPEG, PNG, ... bytes).
        params: the call parameters.
        key: ``params`` as a string; jobs with the same key run together.
        loop, future: where the answer goes (a result's JSON form, or an exception).
        deadline: ``time.monotonic()`` after which the job is no longer run (None: no deadline).
        render: how the result becomes JSON (None: ``to_dict()``).
        lenient: drop parameters the model does not take instead of failing (the Roboflow routes send some that
            only some models read).
    """

    data: bytes
    params: dict[str, Any]
    key: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    deadline: float | None = None
    render: Render | None = None
    lenient: bool = False


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Any
    latency: Any
    batch_size: Any
    queue_depth: Any
    inference: Any
    load_seconds: Any
    loads: Any
    unloads: Any
    loaded: Any
    expired: Any


def make_metrics() -> Metrics:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry(auto_describe=True)
    fast = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
    return Metrics(
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
            buckets=(*fast, 30),
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
            buckets=fast,
        ),
        load_seconds=Gauge("im_serve_model_load_seconds", "time the model took to load", ["model"], registry=registry),
        loads=Counter("im_serve_model_loads", "model loads (first and after an unload)", ["model"], registry=registry),
        unloads=Counter(
            "im_serve_model_unloads", "models unloaded to keep max_loaded_models", ["model"], registry=registry
        ),
        loaded=Gauge("im_serve_models_loaded", "models resident in memory", registry=registry),
        expired=Counter(
            "im_serve_deadline_exceeded",
            "requests answered 504: still queued at their deadline",
            ["model"],
            registry=registry,
        ),
    )


def _settle(future: asyncio.Future[Any], answer: Any) -> None:
    if not future.done():  # the client may have gone away, or the route answered 504 already
        future.set_result(answer)


def answer(job: Job, value: Any) -> None:
    """Hand ``value`` to the request waiting on ``job`` (from any thread)."""
    job.loop.call_soon_threadsafe(_settle, job.future, value)


def close_model(model: Any) -> None:
    """Release a model's runtime sessions where it exposes them (``close()`` on the model, else on its session)."""
    close = getattr(model, "close", None)
    if callable(close):
        close()
        return
    for owner, name in ((model, "session"), (model, "_session"), (getattr(model, "package", None), "session")):
        session = getattr(owner, name, None)
        if session is not None and callable(getattr(session, "close", None)):
            session.close()
            return


@dataclass(eq=False)
class ModelWorker:
    """One model: its loading and unloading, its bounded queue and the thread that runs its batches.

    States: ``loading`` (first load, requests refused 503), ``ready``, ``unloaded`` (not resident: the next request
    queues and the worker loads it again), ``failed`` (requests refused 503 with the load error).
    """

    name: str
    source: Any  # ModelSpec or a loaded Model
    metrics: Metrics
    pool: ModelPool
    max_batch_size: int = 8
    max_queue: int = 64
    max_wait_s: float = 0.0
    preload: bool = True
    model: Any = None
    info: Any = None  # the model's metadata, kept after an unload
    call_params: Any = None  # the model's CALL_PARAMS, kept after an unload
    state: str = "loading"
    error: str | None = None
    last_used: float = 0.0
    _queue: collections.deque[Job] = field(default_factory=collections.deque)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _stopping: bool = False
    _evict: bool = False
    _want_load: bool = False
    _initial: bool = True  # the first load (preloading): requests are refused until it is done
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        if not self.preload:
            self.state, self._initial = "unloaded", False

    @property
    def preloading(self) -> bool:
        """Whether its first load (at start) is not done yet."""
        return self._initial

    @property
    def evictable(self) -> bool:
        """Whether the pool may unload it: models given as specs (a loaded model could not be loaded again)."""
        from im_core import ModelSpec

        return isinstance(self.source, ModelSpec)

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

    def submit(self, jobs: list[Job]) -> None:
        """Queue the jobs of one request, all or none. An unloaded model is loaded again by its worker; the jobs
        wait in the queue meanwhile.

        Raises:
            Refused: the model is loading for the first time or failed to load, the worker is stopping, or the
                queue has no room for every job.
        """
        with self._cond:
            if self.state == "failed" or (self.state == "loading" and self._initial):
                raise Refused(
                    f"model {self.name!r} is not ready ({self.state})" + (f": {self.error}" if self.error else "")
                )
            if self._stopping:
                raise Refused(f"model {self.name!r} is stopping")
            if len(self._queue) + len(jobs) > self.max_queue:
                raise Refused(f"model {self.name!r} has {self.max_queue} requests waiting; retry later")
            self._queue.extend(jobs)
            self.last_used = time.monotonic()
            self._evict = False  # in use: the pool picks another
            self.metrics.queue_depth.labels(self.name).set(len(self._queue))
            self._cond.notify()

    def withdraw(self, jobs: list[Job]) -> list[Job]:
        """Take back the jobs still queued (not yet taken by the worker); return them."""
        with self._cond:
            out = []
            for job in jobs:
                try:
                    self._queue.remove(job)
                except ValueError:
                    continue
                out.append(job)
            self.metrics.queue_depth.labels(self.name).set(len(self._queue))
            return out

    def request_load(self) -> None:
        """Load an unloaded model in the background (``POST /model/add``)."""
        with self._cond:
            self.last_used = time.monotonic()
            self._evict = False
            if self.state == "unloaded":
                self._want_load = True
                self._cond.notify()

    def request_unload(self) -> None:
        """Unload once idle (the pool's choice, or ``POST /model/remove``); a request in the meantime cancels it."""
        with self._cond:
            if self.state == "ready" and self.evictable:
                self._evict = True
                self._cond.notify()

    # --- the worker thread -------------------------------------------------------------------------------------

    def _load(self) -> bool:
        from im_core import ModelSpec

        start = time.perf_counter()
        try:
            model = _from_pretrained(self.source) if isinstance(self.source, ModelSpec) else self.source
        except Exception as exc:  # a model that cannot load leaves the others serving
            logger.exception("im serve: model %r failed to load", self.name)
            with self._cond:
                self.state, self.error = "failed", exc.message if isinstance(exc, ImError) else repr(exc)
                failed = list(self._queue)
                self._queue.clear()
            self.pool.changed()
            for job in failed:
                answer(job, Refused(f"model {self.name!r} failed to load: {self.error}"))
            return False
        self.metrics.load_seconds.labels(self.name).set(time.perf_counter() - start)
        self.metrics.loads.labels(self.name).inc()
        with self._cond:
            self.model, self.info = model, getattr(model, "metadata", None)
            self.call_params = getattr(model, "CALL_PARAMS", None)
            self.state, self.error = "ready", None
        self.pool.changed()
        logger.info("im serve: model %r ready", self.name)
        return True

    def _unload(self) -> None:
        with self._cond:
            model, self.model = self.model, None
            self.state, self._evict = "unloaded", False
        close_model(model)
        del model
        gc.collect()
        self.metrics.unloads.labels(self.name).inc()
        self.pool.changed()
        logger.info("im serve: model %r unloaded", self.name)

    def _next(self) -> str:
        """Wait for something to do: ``run``, ``load``, ``unload`` or ``stop``."""
        with self._cond:
            while True:
                if self._queue or self._want_load:
                    if self.state == "unloaded":
                        self._want_load = False
                        return "load"
                    if self._queue and self.state == "ready":
                        return "run"
                    self._want_load = False
                elif self._evict and self.state == "ready" and not self._stopping:
                    return "unload"
                if self._stopping and not self._queue:
                    return "stop"
                self._cond.wait()

    def _take(self) -> list[Job]:
        """The next batch; jobs past their deadline are answered 504 and left out."""
        with self._cond:
            if self.max_wait_s > 0 and len(self._queue) < self.max_batch_size:
                until = time.monotonic() + self.max_wait_s
                while len(self._queue) < self.max_batch_size and not self._stopping:
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            now = time.monotonic()
            jobs: list[Job] = []
            late: list[Job] = []
            while self._queue and len(jobs) < self.max_batch_size:
                job = self._queue.popleft()
                (late if job.deadline is not None and job.deadline < now else jobs).append(job)
            self.metrics.queue_depth.labels(self.name).set(len(self._queue))
        for job in late:
            self.metrics.expired.labels(self.name).inc()
            answer(job, DeadlineExceeded())
        return jobs

    def _main(self) -> None:
        if self.preload:
            self._load()
            with self._cond:
                self._initial = False
        while (what := self._next()) != "stop":
            if what == "load":
                self.pool.reserve(self)
                self._load()
            elif what == "unload":
                self._unload()
            elif jobs := self._take():
                self.metrics.batch_size.labels(self.name).observe(len(jobs))
                start = time.perf_counter()
                groups: dict[str, list[Job]] = {}
                for job in jobs:
                    groups.setdefault(job.key, []).append(job)
                for group in groups.values():
                    self._run(group)
                self.metrics.inference.labels(self.name).observe(time.perf_counter() - start)

    def _params(self, job: Job) -> dict[str, Any]:
        if job.lenient and isinstance(self.call_params, Mapping):
            return {k: v for k, v in job.params.items() if k in self.call_params}
        return job.params

    def _run(self, group: list[Job]) -> None:
        from im_core.sdk import to_images

        start = time.perf_counter()
        answers: list[Any] = [None] * len(group)
        images, slots = [], []
        for k, job in enumerate(group):
            try:
                images.append(to_images(job.data)[0])  # decoded here: each error is its own, and sizes are known
                slots.append(k)
            except ImError as exc:
                answers[k] = exc
        results: list[Any] = []
        if images:
            try:
                results = self.model.infer_batch(images, errors="return", **self._params(group[0]))
            except Exception as exc:  # a wrong parameter name (every item of the group), or a bug
                if not isinstance(exc, ImError):
                    logger.exception("im serve: model %r failed on a batch", self.name)
                results = [exc] * len(images)
        seconds = time.perf_counter() - start
        for k, image, result in zip(slots, images, results):
            job = group[k]
            if isinstance(result, BaseException):
                answers[k] = result
                continue
            try:
                answers[k] = (
                    result.to_dict() if job.render is None else job.render(result, image.width, image.height, seconds)
                )
            except Exception as exc:
                if not isinstance(exc, ImError):
                    logger.exception("im serve: model %r: a result could not be rendered", self.name)
                answers[k] = exc
        for job, value in zip(group, answers):
            answer(job, value)


class ModelPool:
    """The served models, and the bound on how many are resident: before a worker loads its model, the least
    recently used idle resident model (given as a spec) is unloaded while ``limit`` are resident."""

    def __init__(self, limit: int | None, metrics: Metrics) -> None:
        self.limit = limit
        self.metrics = metrics
        self.workers: dict[str, ModelWorker] = {}
        self._cond = threading.Condition()

    def changed(self) -> None:
        """A worker loaded or unloaded: update the gauge, wake the workers waiting for room."""
        with self._cond:
            self.metrics.loaded.set(sum(1 for w in self.workers.values() if w.model is not None))
            self._cond.notify_all()

    def reserve(self, me: ModelWorker) -> None:
        """Block ``me``'s worker thread until there is room for its model, unloading others; then mark it loading."""
        while True:
            with self._cond:
                others = [
                    w for w in self.workers.values() if w is not me and w.evictable and w.state in ("loading", "ready")
                ]
                if self.limit is None or not me.evictable or len(others) < self.limit or me._stopping:
                    with me._cond:
                        me.state = "loading"
                    return
                idle = [w for w in others if w.state == "ready"]
                if idle:
                    min(idle, key=lambda w: w.last_used).request_unload()
                self._cond.wait(0.05)
