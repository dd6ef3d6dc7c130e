"""im-backend-transformers: Hugging Face model folders for im.

- the ``transformers`` backend (:class:`TransformersBackend`): a folder with ``config.json`` and
  ``model.safetensors`` loads through ``AutoModel.from_pretrained(folder)``; each network of the model (a
  :class:`Part`) runs as one :class:`im_core.Session` on torch;
- :func:`export_folder` (``im export``): the same parts as ONNX or TorchScript files in an im package;
- the generative vision-language families, :class:`Florence2` and :class:`SmolVLM`: they run on torch behind a
  :class:`GenerativeSession` (``generate`` with a KV cache, greedy or sampling, streaming), which a family gets with
  ``ctx.load_part(GENERATE_PART)``.

Importing this package imports neither torch nor transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core.sdk import lazy_exports

_EXPORTS: dict[str, str] = {
    "Florence2": "im_backend_transformers._florence2",
    "GENERATE_PART": "im_backend_transformers._generation",
    "Generated": "im_backend_transformers._generation",
    "GenerativeSession": "im_backend_transformers._generation",
    "SmolVLM": "im_backend_transformers._smolvlm",
    "LOAD_OPTIONS": "im_backend_transformers._backend",
    "RECIPES": "im_backend_transformers._parts",
    "Part": "im_backend_transformers._parts",
    "Recipe": "im_backend_transformers._parts",
    "TransformersBackend": "im_backend_transformers._backend",
    "export_folder": "im_backend_transformers._export",
    "folder_config": "im_backend_transformers._backend",
    "load_hf_model": "im_backend_transformers._backend",
    "register_recipe": "im_backend_transformers._parts",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_backend_transformers._backend import LOAD_OPTIONS, TransformersBackend, folder_config, load_hf_model
    from im_backend_transformers._export import export_folder
    from im_backend_transformers._florence2 import Florence2
    from im_backend_transformers._generation import GENERATE_PART, Generated, GenerativeSession
    from im_backend_transformers._parts import RECIPES, Part, Recipe, register_recipe
    from im_backend_transformers._smolvlm import SmolVLM
