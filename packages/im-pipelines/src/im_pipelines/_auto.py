"""``AutoModelPipeline``: load the models of a pipeline with AutoModel and chain them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from im_core import AutoModel, Model, registry
from im_core.errors import InvalidParameterError, RetrievalError
from im_core.sdk import load_target
from im_pipelines._base import Pipeline

__all__ = ["AutoModelPipeline"]


class AutoModelPipeline:
    """Entry point: ``AutoModelPipeline.from_pretrained("ocr", models_parameters=[det_id, rec_id])``."""

    @classmethod
    def from_pretrained(
        cls,
        pipeline_id: str,
        models_parameters: Sequence[str | os.PathLike[str] | dict[str, Any] | Model[Any]] | None = None,
        **kwargs: Any,
    ) -> Pipeline:
        """Load every model of the pipeline (through :meth:`AutoModel.from_pretrained`) and chain them.

        Args:
            pipeline_id: a registered pipeline (``ocr``, ``face-gaze``, or one added with ``im_core.register``).
            models_parameters: one entry per model, in the pipeline's order: a model id or path, a dict of
                ``from_pretrained`` arguments (``{"model_id_or_path": ..., "device": "cuda"}``), or a loaded model.
                Defaults to the pipeline's default models, where it has them (``ocr`` and its alias ``pp-ocrv6``:
                ``pp-ocrv6-det/small`` and ``pp-ocrv6-rec/small``, the ids Roboflow's registry gives them).
            **kwargs: ``from_pretrained`` arguments shared by every model (``weights_provider``, ``device``...);
                a model's own dict wins.
        """
        entry = registry().pipeline(pipeline_id)
        pipeline_cls = load_target(entry.target, distribution="im-pipelines")
        params = list(models_parameters) if models_parameters is not None else list(entry.default_models)
        if not params:
            raise InvalidParameterError(
                f"The {pipeline_id!r} pipeline has no default models: pass models_parameters with one model per "
                f"role, in order: {list(pipeline_cls.roles)}."
            )
        if models_parameters is not None:
            return pipeline_cls.from_models([_load(p, kwargs, pipeline_id, i) for i, p in enumerate(params)])
        try:
            models = [_load(p, kwargs, pipeline_id, i) for i, p in enumerate(params)]
        except RetrievalError as exc:
            raise InvalidParameterError(
                f"The {pipeline_id!r} pipeline's default models {params} could not be retrieved "
                f"({type(exc).__name__}: {exc.message.splitlines()[0]}). Fix: use a weights provider that has them, "
                f"or pass models_parameters with one model per role, in order: {list(pipeline_cls.roles)}."
            ) from exc
        return pipeline_cls.from_models(models)


def _load(param: Any, shared: dict[str, Any], pipeline_id: str, index: int) -> Model[Any]:
    if isinstance(param, Model):
        return param
    if isinstance(param, (str, os.PathLike)):
        return AutoModel.from_pretrained(param, **shared)
    if isinstance(param, dict):
        args = {**shared, **param}
        model_id = args.pop("model_id_or_path", None)
        if model_id is None:
            raise InvalidParameterError(
                f"models_parameters[{index}] of the {pipeline_id!r} pipeline needs a 'model_id_or_path' key."
            )
        return AutoModel.from_pretrained(model_id, **args)
    raise InvalidParameterError(
        f"models_parameters[{index}] of the {pipeline_id!r} pipeline is a {type(param).__name__}; give a model id, "
        "a dict of from_pretrained arguments, or a loaded model."
    )
