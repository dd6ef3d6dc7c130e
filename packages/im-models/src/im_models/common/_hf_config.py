"""The image-processor settings of a Hugging Face folder (or of a package ``im export`` wrote from one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from im_core.errors import CorruptedModelPackageError

if TYPE_CHECKING:
    from im_core import PackageContext

__all__ = ["hf_image_processor_config"]


def hf_image_processor_config(ctx: PackageContext) -> dict[str, Any]:
    """``preprocessor_config.json`` (the hub layout), else the ``image_processor`` object of
    ``processor_config.json`` (what ``transformers`` 5 ``save_pretrained`` writes for a processor); ``{}`` when the
    package has neither.

    Raises:
        CorruptedModelPackageError: the settings are not a JSON object.
    """
    if ctx.has("preprocessor_config.json"):
        data = ctx.read_json("preprocessor_config.json")
    elif ctx.has("processor_config.json"):
        data = ctx.read_json("processor_config.json")
        data = data.get("image_processor", {}) if isinstance(data, dict) else data
    else:
        return {}
    if not isinstance(data, dict):
        raise CorruptedModelPackageError("The image processor's config must be a JSON object.")
    return data
