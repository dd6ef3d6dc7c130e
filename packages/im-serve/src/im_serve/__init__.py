"""im_serve: serve im models over HTTP.

``im serve NAME=ID ...`` (the ``serve`` command of ``im``), or :func:`create_app` for an ASGI server of your own and
:func:`serve` to run an app under uvicorn with im-serve's drain on SIGTERM. Names are imported on first use
(PEP 562): reading the ``im.cli`` manifest (:mod:`im_serve._plugin`) imports neither FastAPI nor uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core.sdk import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ModelRunner": "im_serve._app",
    "create_app": "im_serve._app",
    "parse_model_arg": "im_serve._cli",
    "serve": "im_serve._server",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_serve._app import ModelRunner, create_app
    from im_serve._cli import parse_model_arg
    from im_serve._server import serve
