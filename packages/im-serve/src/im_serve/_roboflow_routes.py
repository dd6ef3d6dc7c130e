"""The Roboflow inference server's routes on an im-serve app: ``POST /infer/{task}`` and the model registry routes
its HTTP client calls before inferring (shapes: :mod:`im_serve._roboflow`).

With a runner (``create_app(..., runner=)``) the images go to the runner, whose ``to_dict()`` answers are rendered
here; the registry lists the models the runner has loaded, ``/model/add`` and ``/model/remove`` leave loading to
the runner (``/model/add`` calls the runner's optional ``load(model)``)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from im_core.errors import ImError, InvalidParameterError, ModelInputError
from im_serve._roboflow import (
    CLIENT_TASK,
    ROUTE_TASKS,
    ClassificationResponse,
    ModelAddRequest,
    RegisteredModels,
    fetch_url,
    im_params,
    image_bytes,
    renderer,
)
from im_serve._runner import load_on_runner, run_on_runner
from im_serve._state import ServeState, error_response, refuse, request_deadline, run_jobs
from im_serve._worker import Job, ModelWorker, Refused

__all__ = ["add_roboflow_routes"]

#: the route serving each im task (for the message when a model is sent to another route)
_ROUTE_OF = {
    "object-detection": "object_detection",
    "instance-segmentation": "instance_segmentation",
    "keypoint-detection": "keypoints_detection",
    "classification": "classification",
    "multi-label-classification": "classification",
}
#: how long ``POST /model/add`` waits for a model to load
_ADD_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class _Served:
    """One served model as these routes see it: its worker's, or (with a runner) the runner's view."""

    name: str
    source: Any
    info: Any
    state: str
    max_batch_size: int
    max_queue: int | None
    worker: ModelWorker | None


def _message(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "error": {"type": kind, "message": message}}, status_code=status)


def add_roboflow_routes(app: FastAPI, state: ServeState) -> None:
    """Add ``/infer/object_detection``, ``/infer/instance_segmentation``, ``/infer/classification``,
    ``/infer/keypoints_detection``, ``GET /model/registry``, ``POST /model/add`` and ``POST /model/remove``."""
    from im_core import ModelSpec

    workers = state.workers
    runner = state.runner

    def served(name: str) -> _Served:
        worker = workers.get(name)
        if worker is not None:
            return _Served(
                name, worker.source, worker.info, worker.state, worker.max_batch_size, worker.max_queue, worker
            )
        model_state, _, info = state.model_state(name)
        return _Served(name, state.sources[name], info, model_state, state.max_batch_size, None, None)

    def every() -> list[_Served]:
        return [served(name) for name in state.sources]

    def ids(model: _Served) -> list[str]:
        """The ids a client may use for a model: its name, and the model id it was loaded from (not a local path:
        the server's file layout is not listed)."""
        out = [model.name]
        for other in (
            model.source.model_id_or_path if isinstance(model.source, ModelSpec) else None,
            getattr(model.info, "model_id", None),
        ):
            if other and str(other) not in out and not os.path.isabs(str(other)):
                out.append(str(other))
        return out

    def find(model_id: str) -> _Served | None:
        if model_id in state.sources:
            return served(model_id)
        found = [m for m in every() if model_id in ids(m)]
        return found[0] if len(found) == 1 else None

    def not_found(model_id: str) -> JSONResponse:
        return _message(404, "ModelNotFound", f"no model {model_id!r}; served: {sorted(state.sources)}")

    def registry() -> dict[str, Any]:
        """Every model whose task is known (loaded at least once), under each of its ids."""
        models = []
        for model in every():
            if model.info is None or model.state == "failed":
                continue
            task = CLIENT_TASK.get(model.info.task, model.info.task)
            for model_id in ids(model):
                models.append({"model_id": model_id, "task_type": task, "batch_size": model.max_batch_size})
        return RegisteredModels.model_validate({"models": models}).model_dump()

    async def infer(route: str, request: Request) -> Response:
        arrived = time.monotonic()
        request_type, _, tasks = ROUTE_TASKS[route]
        if state.draining:
            return refuse("the server is shutting down", roboflow=True)
        try:
            payload = json.loads(await request.body())
        except ValueError as exc:
            return error_response(ModelInputError(f"the request body is not JSON: {exc}."), roboflow=True)
        try:
            body = request_type.model_validate(payload)
        except ValidationError as exc:
            return _message(422, "ValidationError", f"invalid {route} request: {exc}")
        model = find(body.model_id)
        if model is None:
            return not_found(body.model_id)
        request.scope["im_serve_model"] = model.name  # the metrics label
        listed = isinstance(body.image, list)
        items = body.image if isinstance(body.image, list) else [body.image]
        try:
            deadline = request_deadline(request, state.deadline_ms, arrived)
            task = getattr(model.info, "task", None)
            if task is not None and task not in tasks:
                hint = f"/infer/{_ROUTE_OF[task]}" if task in _ROUTE_OF else "/v1/models/{model}/predict"
                raise InvalidParameterError(f"model {model.name!r} is a {task} model: send it to {hint}.")
            if not items:
                raise ModelInputError("the request's image list is empty: send at least one image.")
            if model.max_queue is not None and len(items) > model.max_queue:
                raise ModelInputError(
                    f"the request has {len(items)} images and at most {model.max_queue} may wait for a model "
                    "(the server's max_queue): send them in smaller lists."
                )
            names = list(model.info.class_names) if model.info is not None else None
            params, drop_all = im_params(body, names)
            images = [
                image_bytes(item, k if listed else None, allow_url=state.allow_url_images)
                for k, item in enumerate(items)
            ]
            data: list[bytes] = []
            for k, image in enumerate(images):
                if isinstance(image, str):
                    image = await asyncio.to_thread(
                        fetch_url,
                        image,
                        k if listed else None,
                        max_bytes=state.url_max_bytes,
                        timeout=state.url_timeout_s,
                    )
                data.append(image)
        except ImError as exc:
            return error_response(exc, roboflow=True)
        render = renderer(route, body, drop_all)
        if model.worker is None:
            assert runner is not None
            answers = await run_on_runner(
                runner, model.name, data, params, deadline=deadline, render=render, lenient=True
            )
        else:
            key = json.dumps(params, sort_keys=True)
            loop = asyncio.get_running_loop()
            jobs = [
                Job(d, params, key, loop, loop.create_future(), deadline=deadline, render=render, lenient=True)
                for d in data
            ]
            try:
                answers = await run_jobs(model.worker, jobs)
            except Refused as exc:
                return refuse(exc.reason, roboflow=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                return error_response(answer, roboflow=True)
        return JSONResponse(answers if listed else answers[0])

    def add_infer_route(route: str) -> None:
        response_model = ROUTE_TASKS[route][1]
        if route == "classification":
            response_model = ClassificationResponse

        async def handler(request: Request) -> Response:
            return await infer(route, request)

        handler.__name__ = f"infer_{route}"
        app.add_api_route(
            f"/infer/{route}",
            handler,
            methods=["POST"],
            response_model=None,
            responses={200: {"model": response_model}},
            summary=f"Roboflow inference server: {route.replace('_', ' ')}",
        )

    for route in ROUTE_TASKS:
        add_infer_route(route)

    @app.get("/model/registry")
    async def model_registry() -> Response:
        return JSONResponse(registry())

    async def model_body(request: Request) -> ModelAddRequest | JSONResponse:
        try:
            return ModelAddRequest.model_validate(json.loads(await request.body()))
        except (ValueError, ValidationError) as exc:
            return _message(422, "ValidationError", f'send {{"model_id": "..."}}: {exc}')

    @app.post("/model/add")
    async def model_add(request: Request) -> Response:
        body = await model_body(request)
        if isinstance(body, JSONResponse):
            return body
        model = find(body.model_id)
        if model is None:
            return not_found(body.model_id)
        worker = model.worker
        if worker is None:  # a runner: its load(model) if it has one, else the model loads on its first request
            assert runner is not None
            failed = await load_on_runner(runner, model.name, _ADD_TIMEOUT_S)
            if failed is not None:
                return refuse(f"model {model.name!r} failed to load: {failed}", roboflow=True)
            return JSONResponse(registry())
        worker.request_load()
        until = time.monotonic() + _ADD_TIMEOUT_S
        while worker.state not in ("ready", "failed") and time.monotonic() < until:
            await asyncio.sleep(0.02)
        if worker.state == "failed":
            return refuse(f"model {worker.name!r} failed to load: {worker.error}", roboflow=True)
        return JSONResponse(registry())

    @app.post("/model/remove")
    async def model_remove(request: Request) -> Response:
        body = await model_body(request)
        if isinstance(body, JSONResponse):
            return body
        model = find(body.model_id)
        if model is None:
            return not_found(body.model_id)
        if model.worker is not None:  # a runner keeps or drops models by its own LRU
            model.worker.request_unload()  # a spec model only; it loads again on its next request
        return JSONResponse(registry())
