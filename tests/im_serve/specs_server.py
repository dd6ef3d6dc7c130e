"""A real im-serve server on 127.0.0.1 (any free port) for models that need ``from_pretrained`` arguments:
``python specs_server.py MODELS_JSON [OPTIONS_JSON]`` with ``MODELS_JSON`` = ``{"name": [path, {kwargs}], ...}`` and
``OPTIONS_JSON`` the keyword arguments of ``create_app`` (``{"max_loaded_models": 1}``)."""

from __future__ import annotations

import json
import sys


def main() -> int:
    from im_core import ModelSpec
    from im_serve import create_app, serve

    models = {name: ModelSpec(path, **kwargs) for name, (path, kwargs) in json.loads(sys.argv[1]).items()}
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    app = create_app(models, **options)
    return serve(app, host="127.0.0.1", port=0, graceful_timeout=5, log_level="info")


if __name__ == "__main__":
    raise SystemExit(main())
