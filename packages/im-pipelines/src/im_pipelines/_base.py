"""What every pipeline is: several loaded models, run as one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from im_core import Model
from im_core.errors import InvalidParameterError

__all__ = ["Pipeline"]


class Pipeline(ABC):
    """Base of pipelines: ``roles`` name the models in order; ``optional`` roles may be left out (at the end).

    ``pipeline(image)`` gives one result, ``pipeline([a, b])`` a list, like a model.
    """

    roles: ClassVar[tuple[str, ...]] = ()
    optional: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, models: dict[str, Model[Any]]) -> None:
        self.models = models

    @classmethod
    def from_models(cls, models: Sequence[Model[Any]], **kwargs: Any) -> Pipeline:
        """Build the pipeline from loaded models given in ``roles`` order."""
        required = [r for r in cls.roles if r not in cls.optional]
        if not len(required) <= len(models) <= len(cls.roles):
            raise InvalidParameterError(
                f"{cls.__name__} takes the models {list(cls.roles)} (optional: {sorted(cls.optional) or 'none'}) "
                f"in that order; got {len(models)}."
            )
        for role, model in zip(cls.roles, models):
            if not isinstance(model, Model):
                raise InvalidParameterError(f"The {role!r} model of {cls.__name__} is a {type(model).__name__}.")
        return cls.build(dict(zip(cls.roles, models)), **kwargs)

    @classmethod
    @abstractmethod
    def build(cls, models: dict[str, Model[Any]], **kwargs: Any) -> Pipeline:
        """Check the models fit together and make the pipeline."""

    @abstractmethod
    def __call__(self, images: Any, **params: Any) -> Any:
        """Run the pipeline on one image or a list of images."""

    def __repr__(self) -> str:
        parts = ", ".join(f"{role}={m.metadata.model_id!r}" for role, m in self.models.items())
        return f"<{type(self).__name__} {parts}>"
