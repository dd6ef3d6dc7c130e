"""Functions a worker process runs on a :class:`im_core.ModelSpec` (importable by spawned processes)."""

from __future__ import annotations

import os
from typing import Any

from im_core import ModelSpec


def detect(spec: ModelSpec, image: Any, barrier: Any = None) -> tuple[int, int, bool, Any]:
    """Load the model from ``spec`` (cached per process) and run it on ``image``.

    Returns ``(pid, models loaded in this process through specs, whether an equal spec gave the same model,
    result)``. ``barrier`` (a manager's ``Barrier``), when given, keeps this task until another worker has one too,
    so that two processes are used.
    """
    import im_core._spec

    if barrier is not None:
        barrier.wait(timeout=120)
    model = spec.load()
    same = ModelSpec(spec.model_id_or_path, **spec.kwargs).load() is model
    return os.getpid(), im_core._spec._LOAD_COUNT, same, model(image)
