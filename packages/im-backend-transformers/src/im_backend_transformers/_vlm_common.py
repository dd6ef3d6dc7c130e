"""What the vision-language families share: their generation call parameters and the image their processor gets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from im_core import Image

__all__ = ["GENERATION_DEFAULTS", "generation_kwargs", "pil_rgb"]

#: the generation call parameters (``im_core.VisionLanguageModel``'s ``GENERATION_PARAMS``) and their defaults
GENERATION_DEFAULTS: dict[str, Any] = {
    "max_new_tokens": 64,
    "do_sample": False,
    "temperature": None,
    "top_p": None,
    "top_k": None,
    "seed": None,
    "stop": (),
}


def generation_kwargs(params: Mapping[str, Any], **defaults: Any) -> dict[str, Any]:
    """``GenerativeSession.generate`` keyword arguments: the call's generation parameters over ``defaults`` over
    :data:`GENERATION_DEFAULTS` (values are checked by the session)."""
    merged = {**GENERATION_DEFAULTS, **defaults}
    merged.update({k: v for k, v in params.items() if k in GENERATION_DEFAULTS})
    return merged


def pil_rgb(image: Image) -> Any:
    """``image`` as the RGB PIL image a ``transformers`` processor takes (what users hand the reference pipeline)."""
    from PIL import Image as PILImage

    return PILImage.fromarray(np.ascontiguousarray(image.to("rgb")))
