"""im_ray: run im models on Ray.

- Ray Data, offline: :func:`read_images` (files, folders, globs, URIs → ``bytes`` + ``path`` rows),
  :func:`predict_dataset` (one prediction row per input row, errors as rows) and :class:`Predictor`, the callable
  class behind it, for ``Dataset.map_batches``.
- Ray Serve, online: :func:`build_app` (im-serve's HTTP API as a Ray Serve application, with ``@serve.batch`` and
  ``@serve.multiplexed``) and :func:`serve_deployment`; ``im ray-serve NAME=ID ...`` on the command line.

Names are imported on first use (PEP 562): ``import im_ray`` does not import Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core.sdk import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "IMAGE_EXTENSIONS": "im_ray._data",
    "Predictor": "im_ray._data",
    "build_app": "im_ray._serve",
    "predict_dataset": "im_ray._data",
    "read_images": "im_ray._data",
    "serve_deployment": "im_ray._serve",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_ray._data import IMAGE_EXTENSIONS, Predictor, predict_dataset, read_images
    from im_ray._serve import build_app, serve_deployment
