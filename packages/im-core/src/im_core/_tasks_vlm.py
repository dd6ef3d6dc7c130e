"""The ``vision-language`` task: a generative model answers a text prompt about an image.

A family of this task writes text with a language model (greedy or sampled, with a KV cache, up to
``max_new_tokens``, optionally streamed token by token) and turns it into a typed result: a
:class:`~im_core.TextGeneration` for a caption, an OCR read-out or a chat answer, and :class:`~im_core.Detections`
where the text names regions (Florence-2's ``<loc_N>`` boxes). The generation parameters are call parameters, the
same names in every family (``VisionLanguageModel.GENERATION_PARAMS``)::

    answer = model(image, prompt="What is in the image?", max_new_tokens=32)        # TextGeneration
    sampled = model(image, prompt="...", do_sample=True, temperature=0.7, seed=0)   # reproducible with a seed
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from im_core._tasks import Model

__all__ = ["GENERATION_PARAMS", "VisionLanguageModel"]

R = TypeVar("R")

#: generation call parameters of every vision-language family: ``max_new_tokens`` (int), ``do_sample`` (False:
#: greedy), ``temperature``, ``top_p``, ``top_k`` (sampling only; ``None``: the model's generation config),
#: ``seed`` (int: sampling is reproducible) and ``stop`` (strings that end the answer)
GENERATION_PARAMS = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "seed", "stop")


class VisionLanguageModel(Model[R]):
    """Base of generative vision-language families (task ``vision-language``).

    One image in → one answer out, as for every task; a list of images gets one answer each, every image
    generated on its own (batches never change answers).
    """

    task = "vision-language"
    #: the generation call parameters every family of this task takes (:data:`GENERATION_PARAMS`)
    GENERATION_PARAMS: ClassVar[tuple[str, ...]] = GENERATION_PARAMS

    def canvas_key(self, image: Any, **pre_params: Any) -> None:
        return None  # each image is generated on its own inside forward: any images may share a call
