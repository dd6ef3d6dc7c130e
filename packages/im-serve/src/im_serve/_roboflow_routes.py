"""The Roboflow inference server's routes on an im-serve app: ``POST /infer/{task}`` and the model registry routes
its HTTP client calls before inferring (shapes: :mod:`im_serve._roboflow`)."""

from __future__ import annotations

import asyncio
import json
import os
import time
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


def _message(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "error": {"type": kind, "message": message}}, status_code=status)


def add_roboflow_routes(app: FastAPI, state: ServeState) -> None:
    """Add ``/infer/object_detection``, ``/infer/instance_segmentation``, ``/infer/classification``,
    ``/infer/keypoints_detection``, ``GET /model/registry``, ``POST /model/add`` and ``POST /model/remove``."""
    from im_core import ModelSpec

    workers = state.workers

    def ids(name: str, worker: ModelWorker) -> list[str]:
        """The ids a client may use for a model: its name, and the model id it was loaded from (not a local path:
        the server's file layout is not listed)."""
        out = [name]
        for other in (
            worker.source.model_id_or_path if isinstance(worker.source, ModelSpec) else None,
            getattr(worker.info, "model_id", None),
        ):
            if other and str(other) not in out and not os.path.isabs(str(other)):
                out.append(str(other))
        return out

    def find(model_id: str) -> ModelWorker | None:
        if model_id in workers:
            return workers[model_id]
        found = [w for name, w in workers.items() if model_id in ids(name, w)]
        return found[0] if len(found) == 1 else None

    def not_found(model_id: str) -> JSONResponse:
        return _message(404, "ModelNotFound", f"no model {model_id!r}; served: {sorted(workers)}")

    def registry() -> dict[str, Any]:
        """Every model whose task is known (loaded at least once), under each of its ids."""
        models = []
        for name, worker in workers.items():
            if worker.info is None or worker.state == "failed":
                continue
            task = CLIENT_TASK.get(worker.info.task, worker.info.task)
            for model_id in ids(name, worker):
                models.append({"model_id": model_id, "task_type": task, "batch_size": worker.max_batch_size})
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
        worker = find(body.model_id)
        if worker is None:
            return not_found(body.model_id)
        request.scope["im_serve_model"] = worker.name  # the metrics label
        listed = isinstance(body.image, list)
        items = body.image if isinstance(body.image, list) else [body.image]
        try:
            deadline = request_deadline(request, state.deadline_ms, arrived)
            task = getattr(worker.info, "task", None)
            if task is not None and task not in tasks:
                hint = f"/infer/{_ROUTE_OF[task]}" if task in _ROUTE_OF else "/v1/models/{model}/predict"
                raise InvalidParameterError(f"model {worker.name!r} is a {task} model: send it to {hint}.")
            if not items:
                raise ModelInputError("the request's image list is empty: send at least one image.")
            if len(items) > worker.max_queue:
                raise ModelInputError(
                    f"the request has {len(items)} images and at most {worker.max_queue} may wait for a model "
                    "(the server's max_queue): send them in smaller lists."
                )
            names = list(worker.info.class_names) if worker.info is not None else None
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
        key = json.dumps(params, sort_keys=True)
        loop = asyncio.get_running_loop()
        jobs = [
            Job(d, params, key, loop, loop.create_future(), deadline=deadline, render=render, lenient=True)
            for d in data
        ]
        try:
            answers = await run_jobs(worker, jobs)
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
        worker = find(body.model_id)
        if worker is None:
            return not_found(body.model_id)
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
        worker = find(body.model_id)
        if worker is None:
            return not_found(body.model_id)
        worker.request_unload()  # a spec model only; it loads again on its next request
        return JSONResponse(registry())
