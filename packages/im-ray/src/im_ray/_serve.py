"""Ray Serve: im-serve's HTTP app as a Ray Serve deployment.

::

    from ray import serve
    import im_ray

    app = im_ray.build_app({"people": "yolov8n-640", "faces": "centerface"}, num_replicas="auto")
    serve.run(app, route_prefix="/")          # POST /v1/models/people/predict, /v2/health/ready, /metrics, ...

One HTTP API, one code path: each replica builds :func:`im_serve.create_app` (``@serve.ingress``) with the replica as
its :class:`im_serve.ModelRunner`, so routes, parameters, error bodies, metrics and drain are im-serve's. What Ray
adds: requests are batched by ``@serve.batch`` (grouped by model and parameters, then by canvas inside
``infer_batch``, so an answer never depends on its batch) and models are loaded on first use by
``@serve.multiplexed`` with an LRU of ``max_models_per_replica`` per replica. Clients that send the header
``serve_multiplexed_model_id: NAME`` are routed to a replica that already holds that model.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from im_core import ModelSpec
from im_core.errors import ImError, InvalidParameterError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve import Application, Deployment

    from im_core import Model

__all__ = ["build_app", "serve_deployment"]

#: CPUs Ray reserves per replica by default (fractional: a small machine keeps CPUs for the proxy and controller)
DEFAULT_REPLICA_CPUS = 0.5


class _Replica:
    """The body of the deployment (plain class, wrapped by :func:`_deployment_class`): runs the models of one
    replica for im-serve's app."""

    def __init__(
        self,
        models: Mapping[str, ModelSpec],
        *,
        max_batch_size: int = 8,
        batch_wait_timeout_s: float = 0.0,
        max_models_per_replica: int = 3,
    ) -> None:
        from ray import serve

        self._specs = dict(models)
        self._observe_batch: Callable[[str, int], None] = lambda name, size: None
        self._loaded: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()

        # decorated per replica (plain functions: Ray keeps its LRU and queue on the decorated object), so that the
        # sizes are arguments of the deployment
        async def load(name: str) -> Model[Any]:
            return await self._load(name)

        async def run_batch(requests: list[tuple[str, bytes, dict[str, Any]]]) -> list[Any]:
            return await self._run_batch(requests)

        self._get_model = serve.multiplexed(max_num_models_per_replica=max_models_per_replica)(load)
        self._batched = serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_timeout_s)(run_batch)

    def __serve_build_asgi_app__(self) -> FastAPI:
        from im_serve import create_app

        app = create_app(self._specs, runner=self)
        self._observe_batch = app.state.im_serve.observe_batch  # batch sizes in im-serve's /metrics
        return app

    async def _load(self, name: str) -> Model[Any]:
        # not spec.load(): its per-process cache would keep every model alive after the LRU drops it
        from im_core import AutoModel

        spec = self._specs[name]
        model = await asyncio.to_thread(AutoModel.from_pretrained, spec.model_id_or_path, **spec.kwargs)
        self._loaded[name] = model
        return model

    # im_serve.ModelRunner
    async def predict(self, model: str, data: bytes, params: dict[str, Any]) -> Any:
        """One image's ``to_dict()`` or its :class:`~im_core.errors.ImError` (through ``@serve.batch``)."""
        return await self._batched((model, data, params))

    def loaded(self, model: str) -> Any:
        return self._loaded.get(model)

    async def _run_batch(self, requests: list[tuple[str, bytes, dict[str, Any]]]) -> list[Any]:
        groups: dict[tuple[str, str], list[int]] = {}
        for i, (name, _, params) in enumerate(requests):
            groups.setdefault((name, json.dumps(params, sort_keys=True, default=repr)), []).append(i)
        answers: list[Any] = [None] * len(requests)
        for (name, _), members in groups.items():
            params = requests[members[0]][2]
            self._observe_batch(name, len(members))
            try:
                model = await self._get_model(name)
                results = await asyncio.to_thread(
                    model.infer_batch, [requests[i][1] for i in members], errors="return", **params
                )
                out = [r if isinstance(r, ImError) else r.to_dict() for r in results]
            except Exception as exc:  # a wrong parameter name or a failed load: every request of the group
                out = [exc] * len(members)
            for i, answer in zip(members, out):
                answers[i] = answer
        return answers


def _deployment_class() -> type:
    from ray import serve

    @serve.ingress()
    class ImDeployment(_Replica):
        """im-serve's app served by Ray Serve (see :mod:`im_ray`)."""

    return ImDeployment


def _specs(models: Mapping[str, ModelSpec | str]) -> dict[str, ModelSpec]:
    if not models:
        raise InvalidParameterError("give at least one model: {'name': ModelSpec(...) or 'model-id'}.")
    return {name: spec if isinstance(spec, ModelSpec) else ModelSpec(spec) for name, spec in models.items()}


def serve_deployment(
    *,
    name: str = "im",
    num_replicas: int | str | None = None,
    autoscaling_config: Mapping[str, Any] | None = None,
    max_ongoing_requests: int | None = None,
    max_queued_requests: int | None = None,
    ray_actor_options: Mapping[str, Any] | None = None,
    max_batch_size: int = 8,
    **deployment_options: Any,
) -> Deployment:
    """The Ray Serve deployment (unbound): ``serve_deployment(...).bind(models, max_batch_size=...)``.

    Args:
        name: the deployment's name.
        num_replicas: replicas, or ``"auto"`` for autoscaling (Ray's default: 1).
        autoscaling_config: Ray Serve's autoscaling settings as they are (``{"min_replicas": 1, "max_replicas":
            4, "target_ongoing_requests": 8}``).
        max_ongoing_requests: requests a replica takes at once (default ``2 * max_batch_size``, so that batches can
            fill; Ray's own default, 5, would cap them).
        max_queued_requests: requests waiting per caller before Ray answers 503 (Ray's default: no bound).
        ray_actor_options: resources per replica (default ``{"num_cpus": 0.5}``; ``{"num_gpus": 1}`` on GPUs).
        max_batch_size: used only for the default of ``max_ongoing_requests``; give the same value to ``bind``.
        **deployment_options: any other ``Deployment.options`` argument (``health_check_period_s``,
            ``graceful_shutdown_timeout_s``...).
    """
    options: dict[str, Any] = {
        "name": name,
        "max_ongoing_requests": max_ongoing_requests or 2 * max_batch_size,
        "ray_actor_options": dict(ray_actor_options or {"num_cpus": DEFAULT_REPLICA_CPUS}),
        **deployment_options,
    }
    if num_replicas is not None:
        options["num_replicas"] = num_replicas
    if autoscaling_config is not None:
        options["autoscaling_config"] = dict(autoscaling_config)
    if max_queued_requests is not None:
        options["max_queued_requests"] = max_queued_requests
    from ray import serve

    deployment = cast("Deployment", serve.deployment(_deployment_class()))
    return deployment.options(**options)


def build_app(
    models: Mapping[str, ModelSpec | str],
    *,
    max_batch_size: int = 8,
    batch_wait_timeout_s: float = 0.0,
    max_models_per_replica: int = 3,
    **options: Any,
) -> Application:
    """A Ray Serve application serving ``models`` (name -> :class:`~im_core.ModelSpec` or model id) with
    im-serve's routes: ``serve.run(build_app(...), route_prefix="/")``.

    Args:
        models: the served models by their name in the routes (``/v1/models/{name}/predict``).
        max_batch_size: most requests per ``@serve.batch`` call (default 8).
        batch_wait_timeout_s: how long a batch waits to fill (default 0: no wait; a few ms pays off on GPUs).
        max_models_per_replica: models a replica keeps loaded (``@serve.multiplexed``'s LRU; default 3).
        **options: :func:`serve_deployment`'s arguments (replicas, autoscaling, resources...).

    Raises:
        InvalidParameterError: no model, or a bound below 1.
    """
    if max_batch_size < 1 or max_models_per_replica < 1 or batch_wait_timeout_s < 0:
        raise InvalidParameterError(
            "max_batch_size and max_models_per_replica must be at least 1 and batch_wait_timeout_s at least 0, got "
            f"{max_batch_size}, {max_models_per_replica} and {batch_wait_timeout_s}."
        )
    specs = _specs(models)
    deployment = serve_deployment(max_batch_size=max_batch_size, **options)
    return deployment.bind(
        specs,
        max_batch_size=max_batch_size,
        batch_wait_timeout_s=batch_wait_timeout_s,
        max_models_per_replica=max_models_per_replica,
    )
