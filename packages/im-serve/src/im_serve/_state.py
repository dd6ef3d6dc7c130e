"""What the routes share: the served models, the options, error bodies and status codes, per-request deadlines and
the submit-and-wait of one request's jobs."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse

from im_core.errors import ImError, InvalidParameterError, ModelInputError
from im_serve._worker import DeadlineExceeded, Job, Metrics, ModelPool, ModelWorker, Refused

if TYPE_CHECKING:
    from im_serve._runner import ModelRunner

__all__ = [
    "DEADLINE_HEADER",
    "DEADLINE_PARAM",
    "RETRY_AFTER_S",
    "ServeState",
    "error_body",
    "error_response",
    "error_status",
    "refuse",
    "request_deadline",
    "run_jobs",
]

#: seconds a client is told to wait before retrying a refused request (queue full, model loading, draining)
RETRY_AFTER_S = 1
#: the request header and the query parameter that give a request's deadline, in milliseconds from its arrival
DEADLINE_HEADER = "X-Deadline-Ms"
DEADLINE_PARAM = "deadline_ms"


@dataclass(eq=False)
class ServeState:
    """What the routes share (``app.state.im_serve``).

    With a ``runner`` the pool has no workers: ``sources`` names the served models, and the runner runs them.
    """

    pool: ModelPool
    metrics: Metrics
    deadline_ms: float | None = None
    allow_url_images: bool = False
    url_max_bytes: int = 20 * 2**20
    url_timeout_s: float = 10.0
    draining: bool = False
    runner: ModelRunner | None = None
    sources: dict[str, Any] = field(default_factory=dict)  # name -> ModelSpec or loaded model, as given
    max_batch_size: int = 8

    @property
    def workers(self) -> dict[str, ModelWorker]:
        return self.pool.workers

    def drain(self) -> None:
        """Readiness turns 503 and new work is refused; work already accepted is still answered."""
        self.draining = True

    @property
    def ready(self) -> bool:
        """Not draining, preloading done, and no model failed to load (models unloaded by the LRU bound are
        loaded again on demand and do not count)."""
        return not self.draining and all(not w.preloading and w.state != "failed" for w in self.workers.values())

    def observe_batch(self, model: str, size: int) -> None:
        """Count a batch of ``size`` requests of ``model`` in ``im_serve_batch_size`` (for runners that batch)."""
        self.metrics.batch_size.labels(model).observe(size)

    def model_state(self, model: str) -> tuple[str, str | None, Any]:
        """``(state, error, metadata or None)`` of a served model: its worker's, or with a runner ``"ready"`` (the
        runner loads on demand) and the metadata of the model if the runner has it loaded."""
        worker = self.workers.get(model)
        if worker is not None:
            return worker.state, worker.error, worker.info
        loaded = self.runner.loaded(model) if self.runner is not None else None
        return "ready", None, getattr(loaded, "metadata", None)


def error_status(exc: BaseException) -> int:
    if isinstance(exc, (ModelInputError, InvalidParameterError)):
        return 400
    if isinstance(exc, Refused):
        return 503
    if isinstance(exc, DeadlineExceeded):
        return 504
    return 500


def error_body(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ImError):
        return {"error": {"type": type(exc).__name__, "message": exc.message, "help_url": exc.help_url}}
    if isinstance(exc, DeadlineExceeded):
        message = "the request was still queued at its deadline and was not run; retry, or give a longer deadline"
        return {"error": {"type": "DeadlineExceeded", "message": message}}
    if isinstance(exc, Refused):
        return {"error": {"type": "Unavailable", "message": exc.reason}}
    return {"error": {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}}


def refuse(reason: str, *, roboflow: bool = False) -> JSONResponse:
    body: dict[str, Any] = {"error": {"type": "Unavailable", "message": reason}}
    if roboflow:
        body["message"] = reason
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def error_response(exc: BaseException, *, roboflow: bool = False) -> JSONResponse:
    """The JSON error answer; the Roboflow routes also carry the message as ``message`` (its server's field)."""
    status = error_status(exc)
    body = error_body(exc)
    if roboflow:
        body["message"] = body["error"]["message"]
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


def request_deadline(request: Request, default_ms: float | None, arrived: float) -> float | None:
    """The request's deadline as a ``time.monotonic()`` value: ``X-Deadline-Ms`` header, else ``deadline_ms`` query
    parameter, else the server's default; ``None`` for none.

    Raises:
        InvalidParameterError: a value that is not a positive number of milliseconds.
    """
    text = request.headers.get(DEADLINE_HEADER)
    if text is None:
        text = request.query_params.get(DEADLINE_PARAM)
    if text is None:
        return None if default_ms is None else arrived + default_ms / 1000
    try:
        ms = float(text)
    except ValueError:
        ms = math.nan
    if not (ms > 0 and math.isfinite(ms)):
        raise InvalidParameterError(
            f"the deadline ({DEADLINE_HEADER} header or {DEADLINE_PARAM} query parameter) must be a positive number "
            f"of milliseconds, got {text!r}."
        )
    return arrived + ms / 1000


async def run_jobs(worker: ModelWorker, jobs: list[Job]) -> list[Any]:
    """Queue one request's jobs and wait for their answers (results' JSON, or exceptions). Jobs still queued at
    their deadline are taken back and answered :class:`DeadlineExceeded` (a job the worker already runs is
    waited for).

    Raises:
        Refused: the model's queue has no room, or the model is not ready.
    """
    worker.submit(jobs)
    futures = [job.future for job in jobs]
    deadline = jobs[0].deadline
    if deadline is not None:
        _, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        if pending:
            for job in worker.withdraw([j for j in jobs if j.future in pending]):
                worker.metrics.expired.labels(worker.name).inc()
                job.future.set_result(DeadlineExceeded())
    return [await future for future in futures]
