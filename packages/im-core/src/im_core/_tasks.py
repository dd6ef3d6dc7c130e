"""Task base classes: ``pre_process`` → ``forward`` → ``post_process``, one image in → one result out.

A model family subclasses the task base that matches its output, declares the parameters of a call with the stage
that reads each, and implements four methods::

    class MyDetector(ObjectDetectionModel):
        CALL_PARAMS = {"image_size": "pre", "confidence": "post"}
        @classmethod
        def from_package(cls, ctx: PackageContext) -> MyDetector: ...      # read config, ctx.load_session(...)
        def pre_process(self, images: list[Image], **params) -> Prepared: ...
        def forward(self, prepared: Prepared) -> Raw: ...                 # session.run(...)
        def post_process(self, raw: Raw, prepared: Prepared, **params) -> list[Detections]: ...

``model(image)`` returns one result; ``model([a, b])`` returns a list. ``model(image, confidence=0.5)`` checks the
names once, before pre-processing, and each stage receives only its own parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, Union, overload

from im_core._images import ColorFormat, Image, is_batch, to_images
from im_core._results import Classification, Detections, Embeddings, Gaze, TextRecognition
from im_core._results_depth import DepthMap
from im_core._results_semantic import SemanticSegmentation

if TYPE_CHECKING:
    import os

    import numpy as np
    import PIL.Image
    import torch

    from im_core._context import PackageContext
    from im_core._protocols import BatchLimits
    from im_core.errors import ImError

__all__ = [
    "ClassificationModel",
    "EmbeddingModel",
    "GazeModel",
    "InstanceSegmentationModel",
    "KeypointDetectionModel",
    "LoadedModelInfo",
    "Model",
    "MultiLabelClassificationModel",
    "ObjectDetectionModel",
    "SemanticSegmentationModel",
    "TextDetectionModel",
    "TextRecognitionModel",
    "check_names",
]

R = TypeVar("R")

#: How the type checker tells one image from a batch: ``model([...])`` is typed as a list of results and
#: ``model(image)`` as one result. (A 4-D numpy array or torch tensor is a batch at run time and gives a list; type
#: checkers see one result: pass a list where the type matters.)
Batch = Union[list[Any], tuple[Any, ...]]  # noqa: UP007 (a runtime alias on Python 3.10)
SingleImage = Union["np.ndarray[Any, Any]", str, "os.PathLike[str]", bytes, "PIL.Image.Image", "torch.Tensor", "Image"]

#: where a call parameter is read (``Model.CALL_PARAMS`` values)
_STAGES = ("pre", "post")

#: what ``Model.infer_batch`` does with an item that fails
ErrorMode = Literal["raise", "return"]

#: images per ``pre_process`` → ``forward`` → ``post_process`` round in ``infer_batch`` when the session sets no
#: upper bound (a bound keeps the batch tensor of a long list of items from taking gigabytes)
DEFAULT_CHUNK = 16


def check_names(
    given: Iterable[str],
    allowed: Iterable[str],
    what: str,
    hint: str = "",
    *,
    also_known: Iterable[str] = (),
) -> None:
    """Raise :class:`~im_core.errors.InvalidParameterError` naming every name of ``given`` not in ``allowed``.

    ``given`` is a mapping (its keys are checked) or any iterable of names. ``what`` says whose names they are
    ("YOLODetection takes no load option(s)"); ``hint`` is added to the message. A near miss gets a suggestion
    (``'conf' (did you mean 'confidence'?)``) drawn from ``allowed`` and ``also_known`` (names valid elsewhere, e.g.
    ``from_pretrained``'s own arguments next to a family's load options); the message then lists ``allowed``.
    Used for a family's load options (``Model.LOAD_OPTIONS``), its call parameters (``Model.CALL_PARAMS``) and a
    task given by name.
    """
    if not given:
        return
    allowed = frozenset(allowed)
    unknown = sorted(set(given) - allowed)
    if unknown:
        from im_core.errors import InvalidParameterError

        pool = sorted(allowed.union(also_known))
        named = ", ".join(f"{name!r}{_did_you_mean(name, pool)}" for name in unknown)
        raise InvalidParameterError(f"{what} {named}; it accepts: {', '.join(sorted(allowed)) or 'none'}.{hint}")


def _did_you_mean(name: str, pool: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the names of ``pool`` close to ``name``, else ``""``.

    Close: ``name`` abbreviates it (``iou`` → ``iou_threshold``), or :func:`difflib.get_close_matches` finds it; of
    the latter, only those nearly as close as the closest are named (``detection`` → three ``*-detection`` tasks,
    ``objectdetection`` → ``object-detection`` alone).
    """
    import difflib

    if not isinstance(name, str) or not name:
        return ""
    key = name.lower()
    lowered = {p.lower(): p for p in pool}  # compared case-blind ('cpuexecutionprovder' ~ 'CPUExecutionProvider')
    close = [p for p in pool if len(key) >= 3 and p.lower().startswith(key)]
    matches = difflib.get_close_matches(key, list(lowered), n=3, cutoff=0.6)  # best first
    if matches:
        best = difflib.SequenceMatcher(None, key, matches[0]).ratio()
        window = 0.05 if best >= 0.9 else 0.15  # a near-exact match stands alone (one typo in a long name)
        close += [lowered[m] for m in matches if difflib.SequenceMatcher(None, key, m).ratio() >= best - window]
    close = list(dict.fromkeys(close))[:3]
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


@dataclass(frozen=True)
class LoadedModelInfo:
    """What a loaded model is and where it came from (``model.metadata``)."""

    model_id: str
    architecture: str
    task: str
    class_names: tuple[str, ...] = ()
    package_id: str | None = None
    backend: str | None = None
    device: str | None = None
    quantization: str | None = None
    provider: str | None = None
    source: str | None = None  # folder the package was loaded from
    extra: dict[str, Any] = field(default_factory=dict)


class Model(ABC, Generic[R]):
    """Base of every model family. Subclasses set ``task`` and implement the four abstract methods."""

    task: ClassVar[str] = ""
    #: the keyword arguments of ``from_pretrained`` the family reads from ``PackageContext.options`` when it is built;
    #: ``AutoModel`` refuses any other before loading anything. ``None``: not declared, every keyword is passed on
    #: unchecked (the family validates its options itself).
    LOAD_OPTIONS: ClassVar[frozenset[str] | None] = None
    #: the parameters of a call (``model(image, confidence=0.5)``), each with the stage that reads it: ``"pre"``
    #: (``pre_process``) or ``"post"`` (``post_process``). :meth:`run_images` refuses any other name before
    #: pre-processing and hands each stage only its own parameters. ``None``: not declared, every parameter goes to
    #: both stages unchecked (the family validates them itself).
    CALL_PARAMS: ClassVar[Mapping[str, str] | None] = None
    metadata: LoadedModelInfo

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("CALL_PARAMS")
        if declared is not None:
            wrong = {k: v for k, v in dict(declared).items() if v not in _STAGES}
            if wrong:
                from im_core.errors import PluginError

                raise PluginError(
                    f"{cls.__qualname__}.CALL_PARAMS maps each call parameter to 'pre' or 'post'; got {wrong}."
                )

    @classmethod
    @abstractmethod
    def from_package(cls, ctx: PackageContext) -> Model[R]:
        """Build the model from a package folder (see :class:`im_core.PackageContext`)."""

    @abstractmethod
    def pre_process(self, images: list[Image], **params: Any) -> Any:
        """Turn images into the network's input tensors (plus whatever post-processing needs)."""

    @abstractmethod
    def forward(self, prepared: Any) -> Any:
        """Run the network."""

    @abstractmethod
    def post_process(self, raw: Any, prepared: Any, **params: Any) -> list[R]:
        """Turn raw outputs into one result per image."""

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.metadata.class_names

    @overload
    def infer(
        self, images: list[Any] | tuple[Any, ...], *, color_format: ColorFormat = ..., **params: Any
    ) -> list[R]: ...

    @overload
    def infer(self, images: SingleImage, *, color_format: ColorFormat = ..., **params: Any) -> R: ...

    def infer(self, images: Any, *, color_format: ColorFormat = "bgr", **params: Any) -> R | list[R]:
        """Run the model on one image (→ one result) or a list of images (→ a list of results).

        Args:
            images: numpy HWC uint8 (BGR unless ``color_format="rgb"``), PIL images, paths, bytes, torch tensors;
                or a list/tuple of them. (A 4-D numpy array or torch tensor is a batch too and gives a list, but
                type checkers see it as one image: pass a list where the type matters.)
            color_format: channel order of numpy inputs.
            **params: family parameters (``confidence``, ``iou_threshold``, ``max_detections``...), the names in
                :attr:`CALL_PARAMS`.
        """
        batch = is_batch(images)
        normalized = to_images(images, color_format)
        results = self.run_images(normalized, **params)
        return results if batch else results[0]

    def run_images(self, images: Sequence[Image], **params: Any) -> list[R]:
        """The three stages on already-normalised images; ``params`` are checked and split by :meth:`split_params`.

        Batches never change answers: the images are grouped by :meth:`canvas_key` (the network canvas each image
        gets alone), each group runs on its own, and the results come back in input order, so every image gets
        the result it gets alone.
        """
        pre, post = self.split_params(params)
        images = list(images)
        groups = self._groups(images, pre)
        if len(groups) == 1:
            return self._run_group(images, pre, post)
        results: list[Any] = [None] * len(images)
        for index in groups:
            for i, result in zip(index, self._run_group([images[i] for i in index], pre, post), strict=True):
                results[i] = result
        return results

    def canvas_key(self, image: Image, **pre_params: Any) -> Hashable:
        """What decides the network input of ``image`` besides its own pixels: images with equal keys may share a
        batch without changing each other's results.

        The default, the image's ``(height, width)``, is always safe (same-sized images get the same canvas) but
        batches nothing across sizes. A family overrides it with the canvas the image gets alone: a constant for
        a fixed input size (every image shares one batch), the padded size for rectangular inference. A family
        that batches items of its own inside ``forward`` (or takes per-image call parameters) returns a constant
        and keeps its own batches independent of their composition.

        Args:
            image: one normalised image.
            **pre_params: the call's ``"pre"`` parameters (``image_size``...).
        """
        return (image.height, image.width)

    @property
    def batch_limits(self) -> BatchLimits | None:
        """The batch sizes the model's network takes in one run (its session's), or ``None`` when unknown.

        The default reads ``self.session``, ``self._session`` or ``self.package.session`` where the family keeps
        one; a family with another layout overrides it. :meth:`infer_batch` splits long lists of items to this size.
        """
        from im_core._protocols import BatchLimits

        for owner, name in ((self, "session"), (self, "_session"), (getattr(self, "package", None), "session")):
            limits = getattr(getattr(owner, name, None), "batch_limits", None)
            if isinstance(limits, BatchLimits):
                return limits
        return None

    def _groups(self, images: Sequence[Image], pre: Mapping[str, Any]) -> list[list[int]]:
        """Indices of ``images`` grouped by :meth:`canvas_key`, groups in order of first appearance."""
        if len(images) <= 1:
            return [list(range(len(images)))]
        groups: dict[Hashable, list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(self.canvas_key(image, **pre), []).append(i)
        return list(groups.values())

    def _run_group(self, images: list[Image], pre: Mapping[str, Any], post: Mapping[str, Any]) -> list[R]:
        prepared = self.pre_process(images, **pre)
        raw = self.forward(prepared)
        return self.post_process(raw, prepared, **post)

    @overload
    def infer_batch(
        self,
        items: Iterable[Any],
        *,
        errors: Literal["raise"] = ...,
        color_format: ColorFormat = ...,
        **params: Any,
    ) -> list[R]: ...

    @overload
    def infer_batch(
        self,
        items: Iterable[Any],
        *,
        errors: Literal["return"],
        color_format: ColorFormat = ...,
        **params: Any,
    ) -> list[R | ImError]: ...

    def infer_batch(
        self,
        items: Iterable[Any],
        *,
        errors: ErrorMode = "raise",
        color_format: ColorFormat = "bgr",
        **params: Any,
    ) -> list[R] | list[R | ImError]:
        """Run the model on many items, each getting the result it gets alone; one result per item, in order.

        Each item (any accepted image form: array, PIL image, path, bytes, tensor) is decoded on its own, so a bad
        item's error is its own. Decoded images are grouped by network canvas (:meth:`canvas_key`), each group is
        split to the network's batch limit (:attr:`batch_limits`; :data:`DEFAULT_CHUNK` images when it sets none)
        and run, and the results are put back in input order.

        Args:
            items: the images (a list, tuple or any iterable; each item is one image).
            errors: ``"raise"`` (default): the first failing item's :class:`~im_core.errors.ImError` is raised.
                ``"return"``: a failing item's error takes its slot of the returned list and every other item
                is still answered (a batch that fails is retried item by item, so the error lands on the item
                that caused it).
            color_format: channel order of numpy inputs.
            **params: the call parameters (:attr:`CALL_PARAMS`); a wrong name raises whatever ``errors`` says,
                since it concerns every item.

        Raises:
            InvalidParameterError: ``errors`` is neither ``"raise"`` nor ``"return"``, or a parameter name is unknown.
            ImError: with ``errors="raise"``, the first item that fails.
        """
        from im_core._images import _one
        from im_core.errors import ImError, InvalidParameterError

        if errors not in ("raise", "return"):
            raise InvalidParameterError(f"errors must be 'raise' or 'return', got {errors!r}.")
        if color_format not in ("bgr", "rgb"):
            raise InvalidParameterError(f"color_format must be 'bgr' or 'rgb', got {color_format!r}.")
        pre, post = self.split_params(params)
        items = list(items)
        slots: list[Any] = [None] * len(items)
        images: list[Image] = []
        owners: list[int] = []
        for i, item in enumerate(items):
            try:
                image = item if isinstance(item, Image) else _one(item, color_format, i)
            except ImError as exc:
                if errors == "raise":
                    raise
                slots[i] = exc
                continue
            images.append(image)
            owners.append(i)
        limits = self.batch_limits
        chunk = limits.max if limits is not None and limits.max else DEFAULT_CHUNK
        for group in self._groups(images, pre) if images else []:
            for start in range(0, len(group), chunk):
                part = group[start : start + chunk]
                for k, result in zip(part, self._run_part([images[k] for k in part], pre, post, errors), strict=True):
                    slots[owners[k]] = result
        return slots

    def _run_part(
        self, images: list[Image], pre: Mapping[str, Any], post: Mapping[str, Any], errors: ErrorMode
    ) -> list[Any]:
        """Run one group chunk; with ``errors="return"`` a failed chunk is rerun image by image."""
        from im_core.errors import ImError

        try:
            return list(self._run_group(images, pre, post))
        except ImError as exc:
            if errors == "raise":
                raise
            if len(images) == 1:
                return [exc]
        out: list[Any] = []
        for image in images:
            out += self._run_part([image], pre, post, errors)
        return out

    def split_params(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check call parameters against :attr:`CALL_PARAMS` and split them into ``(pre, post)`` stage parameters.

        Raises:
            InvalidParameterError: a name the family does not declare (with the accepted names, and a suggestion
                for a near miss).
        """
        declared = self.CALL_PARAMS
        if declared is None:
            return dict(params), dict(params)
        check_names(params, declared, f"{type(self).__name__} does not take parameter(s)", also_known=("color_format",))
        pre = {k: v for k, v in params.items() if declared[k] == "pre"}
        post = {k: v for k, v in params.items() if declared[k] == "post"}
        return pre, post

    @overload
    def __call__(self, images: Batch, **params: Any) -> list[R]: ...

    @overload
    def __call__(self, images: SingleImage, **params: Any) -> R: ...

    def __call__(self, images: Any, **params: Any) -> R | list[R]:
        """Same as :meth:`infer`: one image → one result, a list → a list."""
        return self.infer(images, **params)

    def __repr__(self) -> str:
        m = self.metadata
        names = f"{len(m.class_names)} classes" if m.class_names else "no class names"
        return (
            f"<{type(self).__name__} {m.model_id!r} {m.architecture}/{m.task} package={m.package_id} "
            f"backend={m.backend} device={m.device} {m.quantization or ''} ({names})>"
        )


class ObjectDetectionModel(Model[Detections]):
    task = "object-detection"


class InstanceSegmentationModel(Model[Detections]):
    task = "instance-segmentation"


class KeypointDetectionModel(Model[Detections]):
    task = "keypoint-detection"


class ClassificationModel(Model[Classification]):
    task = "classification"


class MultiLabelClassificationModel(Model[Classification]):
    task = "multi-label-classification"


class EmbeddingModel(Model[Embeddings]):
    """Image embeddings: each image gives an :class:`Embeddings` with one row."""

    task = "embedding"

    def embed(self, images: Any, **params: Any) -> Embeddings:
        """Embed one image or a list into one (N, D) :class:`Embeddings`."""
        import numpy as np

        results = self.infer(images if is_batch(images) else [images], **params)
        assert isinstance(results, list)
        return Embeddings(np.concatenate([r.vectors for r in results]), all(r.normalized for r in results))


class TextDetectionModel(Model[Detections]):
    """Text detection: boxes with their polygons in ``Detections.data["polygon"]``."""

    task = "text-detection"


class TextRecognitionModel(Model[TextRecognition]):
    task = "text-recognition"


class GazeModel(Model[Gaze]):
    task = "gaze-estimation"


class DepthEstimationModel(Model[DepthMap]):
    """Monocular depth: each image gives a :class:`~im_core.DepthMap` at its original size."""

    task = "depth-estimation"


class SemanticSegmentationModel(Model[SemanticSegmentation]):
    """Semantic segmentation: one class per pixel (:class:`~im_core.SemanticSegmentation`)."""

    task = "semantic-segmentation"
