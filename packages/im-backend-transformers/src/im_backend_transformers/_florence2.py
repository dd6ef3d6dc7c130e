"""Florence-2 (``model_type`` ``florence2``, ``transformers``' ``Florence2ForConditionalGeneration``): one model,
many tasks, each chosen by a task token in the prompt.

=================================  ==================================================  ===========================
task                               call                                                result
=================================  ==================================================  ===========================
``<CAPTION>``                      ``model.caption(image)``                            :class:`TextGeneration`
``<DETAILED_CAPTION>``             ``model.caption(image, detail="detailed")``         :class:`TextGeneration`
``<MORE_DETAILED_CAPTION>``        ``model.caption(image, detail="more_detailed")``    :class:`TextGeneration`
``<OCR>``                          ``model.ocr(image)``                                :class:`TextGeneration`
``<OCR_WITH_REGION>``              ``model.ocr(image, regions=True)``                  :class:`Detections`
``<OD>``                           ``model.detect(image)``                             :class:`Detections`
``<DENSE_REGION_CAPTION>``         ``model(image, task="<DENSE_REGION_CAPTION>")``     :class:`Detections`
``<REGION_PROPOSAL>``              ``model(image, task="<REGION_PROPOSAL>")``          :class:`Detections`
``<CAPTION_TO_PHRASE_GROUNDING>``  ``model.ground(image, "a cat on a mat")``           :class:`Detections`
=================================  ==================================================  ===========================

Prompts, pixels and token ids are the folder's ``Florence2Processor``'s; the answer is parsed by im
(:mod:`im_backend_transformers._florence_parse`) into boxes in original-image pixels. Detections: ``class_names`` are
the labels (object names, phrases, OCR text) in order of first appearance, ``confidence`` is 1 (Florence-2 gives no
scores), OCR regions carry their four corners in ``data["polygon"]`` (N, 4, 2) and ``xyxy`` is their bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from im_backend_transformers._florence_parse import (
    BOX_TASKS,
    OCR_REGION_TASKS,
    PHRASE_TASKS,
    TEXT_TASKS,
    parse_generation,
)
from im_backend_transformers._generation import GENERATE_PART, GenerativeSession
from im_backend_transformers._vlm_common import GENERATION_DEFAULTS, generation_kwargs, pil_rgb
from im_core import Detections, Image, PackageContext, TextGeneration, VisionLanguageModel
from im_core.errors import InvalidParameterError, ModelLoadingError
from im_core.sdk import check_names

__all__ = ["Florence2", "TASKS"]

#: the tasks this family runs
TASKS = tuple(sorted(TEXT_TASKS | BOX_TASKS | PHRASE_TASKS | OCR_REGION_TASKS))
_WITH_TEXT = PHRASE_TASKS


class Florence2(VisionLanguageModel[Any]):
    """Florence-2 on the ``transformers`` backend: ``model(image, task="<OD>")`` → one result per image.

    Call parameters: ``task`` (default ``"<CAPTION>"``), ``text`` (the phrase to ground), and the generation
    parameters (:data:`im_core.VisionLanguageModel` ``GENERATION_PARAMS``; default ``max_new_tokens=256``, greedy).
    """

    LOAD_OPTIONS = frozenset()
    CALL_PARAMS = {"task": "pre", "text": "pre", **dict.fromkeys(GENERATION_DEFAULTS, "pre")}

    def __init__(self, session: GenerativeSession, info: Any) -> None:
        self.session = session
        self.metadata = info
        self.post_config = getattr(session.processor, "post_processor_config", None) or {}

    @classmethod
    def from_package(cls, ctx: PackageContext) -> Florence2:
        check_names(ctx.options, (), "Florence2 takes no load option(s)")
        session = ctx.load_part(GENERATE_PART)
        if not isinstance(session, GenerativeSession):
            raise ModelLoadingError(
                f"Florence-2 runs from its Hugging Face folder on the transformers backend (it is not exported); "
                f"{ctx.model_id!r} loaded on {ctx.backend!r}. Fix: load the folder with backend='transformers'."
            )
        return cls(session, ctx.info())

    # -- the Model stages ---------------------------------------------------------------------------------------------

    def pre_process(self, images: list[Image], **params: Any) -> list[tuple[Any, ...]]:
        task = params.pop("task", "<CAPTION>")
        text = params.pop("text", None)
        if task not in TASKS:
            raise InvalidParameterError(f"Florence-2 task {task!r} is not supported; use one of {', '.join(TASKS)}.")
        if task in _WITH_TEXT:
            if not isinstance(text, str) or not text.strip():
                raise InvalidParameterError(f"Florence-2 task {task} needs text= (the phrase(s) to locate).")
            prompt = task + text
        elif text is not None:
            raise InvalidParameterError(f"Florence-2 task {task} takes no text= (only {', '.join(_WITH_TEXT)} do).")
        else:
            prompt = task
        kwargs = generation_kwargs(params, max_new_tokens=256)
        prepared = []
        for image in images:
            inputs = self.session.prepare(text=prompt, images=pil_rgb(image))
            prepared.append((inputs, task, (image.width, image.height), kwargs))
        return prepared

    def forward(self, prepared: list[Any]) -> list[Any]:
        return [self.session.generate(inputs, **kwargs)[0] for inputs, _, _, kwargs in prepared]

    def post_process(self, raw: list[Any], prepared: list[Any], **params: Any) -> list[Any]:
        return [self._answer(g, task, size) for g, (_, task, size, _) in zip(raw, prepared)]

    def _answer(self, generated: Any, task: str, size: tuple[int, int]) -> TextGeneration | Detections:
        text = self.session.decode(generated.ids, skip_special_tokens=False)
        parsed = parse_generation(text, task, size, self.post_config)
        if parsed.boxes is None:
            return TextGeneration(parsed.text, generated.ids, generated.finish_reason, generated.prompt_tokens)
        names = tuple(dict.fromkeys(parsed.labels))
        index = {name: i for i, name in enumerate(names)}
        data: dict[str, Any] = {}
        if parsed.quads is not None:
            data["polygon"] = parsed.quads
        return Detections(
            xyxy=parsed.boxes,
            confidence=np.ones(len(parsed.boxes), np.float32),
            class_id=np.array([index[label] for label in parsed.labels], np.int64),
            class_names=names,
            data=data,
        )

    # -- one method per task -----------------------------------------------------------------------------------------

    def caption(self, images: Any, *, detail: str = "", **params: Any) -> Any:
        """A caption: ``detail`` ``""`` (short), ``"detailed"`` or ``"more_detailed"`` → :class:`TextGeneration`."""
        tasks = {"": "<CAPTION>", "detailed": "<DETAILED_CAPTION>", "more_detailed": "<MORE_DETAILED_CAPTION>"}
        if detail not in tasks:
            raise InvalidParameterError(f"detail={detail!r}: use '', 'detailed' or 'more_detailed'.")
        return self.infer(images, task=tasks[detail], **params)

    def ocr(self, images: Any, *, regions: bool = False, **params: Any) -> Any:
        """The text in the image: one :class:`TextGeneration`, or with ``regions=True`` :class:`Detections` of
        lines (class names = the text, ``data["polygon"]`` the corners)."""
        return self.infer(images, task="<OCR_WITH_REGION>" if regions else "<OCR>", **params)

    def detect(self, images: Any, **params: Any) -> Any:
        """Objects with their category names → :class:`Detections`."""
        return self.infer(images, task="<OD>", **params)

    def ground(self, images: Any, phrase: str, **params: Any) -> Any:
        """Boxes of the phrases of ``phrase`` (a caption) → :class:`Detections` (class names = the phrases)."""
        return self.infer(images, task="<CAPTION_TO_PHRASE_GROUNDING>", text=phrase, **params)
