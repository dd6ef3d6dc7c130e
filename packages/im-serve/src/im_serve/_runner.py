"""Requests run by a :class:`ModelRunner` (``create_app(..., runner=)``) instead of the app's worker threads: the
routes, parameters, error bodies, metrics, deadlines and drain stay im-serve's; the runner batches, loads and runs
the models (im-ray's Ray Serve deployment is one)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from im_core.errors import ImError, InvalidParameterError
from im_serve._worker import DeadlineExceeded, Render

if TYPE_CHECKING:
    from im_core import Model

__all__ = ["ModelRunner", "load_on_runner", "run_on_runner"]

logger = logging.getLogger("im.serve")


@runtime_checkable
class ModelRunner(Protocol):
    """What runs the models when :func:`create_app` is given ``runner=``, in place of its own worker threads (the Ray
    Serve deployment of im-ray is one: its ``@serve.batch`` and ``@serve.multiplexed`` run the models, while the
    routes, parameters, errors, metrics, deadlines and drain stay im-serve's).

    A runner may also have ``async load(model)``, which loads a model ahead of its first request: the Roboflow
    ``POST /model/add`` route calls it when it is there (the Roboflow client adds a model before inferring).
    """

    async def predict(self, model: str, data: bytes, params: dict[str, Any]) -> Any:
        """One image's answer: its result's ``to_dict()``, or the :class:`~im_core.errors.ImError` of this image
        (returned or raised: a 400 for bad input or parameters, else 500)."""
        ...

    def loaded(self, model: str) -> Model[Any] | None:
        """The model named ``model`` if it is loaded here (for its metadata), else None."""
        ...


def _result(d: Any) -> Any:
    """An im result rebuilt from the ``to_dict()`` a runner answered (for the Roboflow routes' rendering)."""
    from im_core import Classification, Detections

    kind = d.get("type") if isinstance(d, Mapping) else None
    if kind == "detections":
        return Detections.from_dict(d)
    if kind == "classification":
        return Classification.from_dict(d)
    raise InvalidParameterError(
        f"this model gives {kind or type(d).__name__} results, which the Roboflow routes do not serve: use "
        "/v1/models/{model}/predict."
    )


def _render(render: Render, data: bytes, answer: Any, seconds: float) -> Any:
    from im_core.sdk import to_images

    image = to_images(data)[0]  # the upright size, as the worker reports it (EXIF orientation applied)
    return render(_result(answer), image.width, image.height, seconds)


async def _one(runner: ModelRunner, model: str, data: bytes, params: dict[str, Any], render: Render | None) -> Any:
    start = time.perf_counter()
    try:
        answer = await runner.predict(model, data, params)
    except Exception as exc:  # an exception the runner raises is the answer (an ImError: 4xx/500 with its message)
        if not isinstance(exc, ImError):
            logger.exception("im serve: the runner failed on model %r", model)
        return exc
    if render is None or isinstance(answer, BaseException):
        return answer
    try:
        return await asyncio.to_thread(_render, render, data, answer, time.perf_counter() - start)
    except Exception as exc:
        if not isinstance(exc, ImError):
            logger.exception("im serve: model %r: a result could not be rendered", model)
        return exc


async def run_on_runner(
    runner: ModelRunner,
    model: str,
    data: list[bytes],
    params: dict[str, Any],
    *,
    deadline: float | None = None,
    render: Render | None = None,
    lenient: bool = False,
) -> list[Any]:
    """The answers of one request's images (results' JSON, or exceptions), each image through
    ``runner.predict`` (concurrently: a runner that batches may take them together).

    A request whose deadline (``time.monotonic()``) has passed before it is handed to the runner is answered
    :class:`DeadlineExceeded` for every image and not run; once handed over, it is waited for (the runner has its
    own queue and timeouts). ``lenient`` drops parameters the model does not take, when the runner has the model
    loaded (its ``CALL_PARAMS``); before its first load they are passed as given.
    """
    if deadline is not None and time.monotonic() >= deadline:
        return [DeadlineExceeded() for _ in data]
    if lenient:
        call_params = getattr(runner.loaded(model), "CALL_PARAMS", None)
        if isinstance(call_params, Mapping):
            params = {k: v for k, v in params.items() if k in call_params}
    return list(await asyncio.gather(*(_one(runner, model, d, params, render) for d in data)))


async def load_on_runner(runner: ModelRunner, model: str, timeout: float) -> BaseException | None:
    """Have the runner load ``model`` if it can (its optional ``async load(model)``); the error if that failed."""
    load = getattr(runner, "load", None)
    if not callable(load):
        return None
    try:
        await asyncio.wait_for(load(model), timeout)
    except Exception as exc:
        if not isinstance(exc, ImError):
            logger.exception("im serve: the runner failed to load model %r", model)
        return exc
    return None
