"""What im runs of a Hugging Face model: its *parts*, each one network with named inputs and outputs.

A part is what becomes one :class:`im_core.Session` (run on torch by the ``transformers`` backend) and one exported
file (``<part>.onnx``, ``<part>.torchscript``): CLIP has ``vision`` and ``text``, SAM ``image_encoder`` and
``prompt_decoder``, DINOv2 one ``backbone``. The same :class:`Part` is run and exported, so an exported package gives
the results of the folder it came from.

Which parts a model has is a *recipe*, keyed by ``config.json``'s ``model_type`` (:data:`RECIPES`): the
``transformers`` class to load and a function building the parts from the loaded model. Recipes are named by
``module:function`` strings and imported only when a folder of that type is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from im_core import TensorSpec

__all__ = ["RECIPES", "Part", "Recipe", "register_recipe"]


@dataclass(frozen=True)
class Part:
    """One network of a model, as a torch module with named tensors.

    Attributes:
        module: a ``torch.nn.Module`` whose ``forward`` takes the inputs positionally, in ``inputs`` order, and
            returns one tensor or a tuple in ``outputs`` order.
        inputs: name, shape (``None`` = dynamic axis) and dtype of each input.
        outputs: name, shape and dtype of each output.
        example: builds example inputs (a tuple of tensors, batch ≥ 2 where the batch is dynamic) for tracing and
            export.
        metadata: string facts a family needs that live in the weights rather than in the files (CLIP's logit
            scale): the session's ``metadata``, and ONNX ``metadata_props`` / TorchScript extra files on export.
    """

    module: Any
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    example: Callable[[], tuple[Any, ...]]
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """How to run a ``model_type``: ``model_class`` (``"transformers:CLIPModel"``) loaded with ``from_pretrained``,
    and ``parts`` (``"module:function"``) taking that model and returning ``{part name: Part}``."""

    model_class: str
    parts: str


#: config.json ``model_type`` -> recipe. Families add theirs with :func:`register_recipe`.
RECIPES: dict[str, Recipe] = {
    "clip": Recipe("transformers:CLIPModel", "im_backend_transformers._clip:clip_parts"),
    "depth_anything": Recipe(
        "transformers:DepthAnythingForDepthEstimation", "im_backend_transformers._depth:depth_anything_parts"
    ),
    "sam": Recipe("transformers:SamModel", "im_backend_transformers._sam:sam_parts"),
    "sam2": Recipe("transformers:Sam2Model", "im_backend_transformers._sam2:sam2_parts"),
    "grounding-dino": Recipe(
        "transformers:GroundingDinoForObjectDetection", "im_backend_transformers._grounding_dino:grounding_dino_parts"
    ),
    "owlv2": Recipe("transformers:Owlv2ForObjectDetection", "im_backend_transformers._owlv2:owlv2_parts"),
    "dinov2": Recipe("transformers:Dinov2Model", "im_backend_transformers._dinov2:dinov2_parts"),
    "dinov3_vit": Recipe("transformers:DINOv3ViTModel", "im_backend_transformers._dinov2:dinov2_parts"),
    "florence2": Recipe(
        "transformers:Florence2ForConditionalGeneration", "im_backend_transformers._generation:no_parts"
    ),
    "idefics3": Recipe("transformers:Idefics3ForConditionalGeneration", "im_backend_transformers._generation:no_parts"),
    "smolvlm": Recipe("transformers:SmolVLMForConditionalGeneration", "im_backend_transformers._generation:no_parts"),
    "segformer": Recipe(
        "transformers:SegformerForSemanticSegmentation", "im_backend_transformers._segformer:segformer_parts"
    ),
}


def register_recipe(model_type: str, recipe: Recipe) -> None:
    """Add or replace the recipe of ``model_type`` (the last registered wins)."""
    RECIPES[model_type] = recipe


def parts_of(model: Any, model_type: str) -> Mapping[str, Part]:
    """``{name: Part}`` of a loaded model, from its recipe."""
    from im_core.sdk import load_target

    builder: Callable[[Any], Mapping[str, Part]] = load_target(
        RECIPES[model_type].parts, distribution="im-backend-transformers"
    )
    return builder(model)
