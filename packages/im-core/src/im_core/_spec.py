"""``ModelSpec``: the arguments of ``AutoModel.from_pretrained``, by value, so that worker processes load models
themselves (``concurrent.futures.ProcessPoolExecutor``, ``multiprocessing``, Ray actors) instead of receiving a
loaded model, which holds native sessions that cannot be pickled.

::

    spec = ModelSpec("yolo/nudenet_320n.onnx", device="cpu")
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(run, [spec] * len(paths), paths))   # run(spec, path): spec.load()(path)

``spec.load()`` loads once per process and spec: later calls (and equal specs) return the same model. A model loaded
before a ``fork`` is never reused by the child: the cache is keyed by process id.
"""

from __future__ import annotations

import copy
import os
import pickle
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from im_core._tasks import Model

__all__ = ["ModelSpec"]

#: (process id, spec key) → the model loaded in this process
_LOADED: dict[tuple[int, bytes], Model[Any]] = {}
#: how many models this process has loaded through specs (read by tests)
_LOAD_COUNT = 0
_LOCK = threading.Lock()
#: one lock per spec key, so that two threads loading the same spec load it once and different specs in parallel
_KEY_LOCKS: dict[bytes, threading.Lock] = {}


class ModelSpec:
    """What to load, by value: ``ModelSpec(model_id_or_path, **from_pretrained_kwargs)``.

    The arguments are those of :meth:`im_core.AutoModel.from_pretrained` and are checked when the spec is made (a
    wrong type or value, a missing local path: the same errors, before any process starts). A local path is stored
    resolved (absolute), so a worker with another working directory finds it. A torch ``device`` is stored as its
    string. Everything is deep-copied and must pickle: a loaded model inside ``dependency_models_params`` cannot
    travel to another process (give its ``from_pretrained`` arguments as a dict instead).

    Specs with equal arguments are equal and hash alike. ``repr`` never shows ``api_key``.
    """

    __slots__ = ("_key", "_kwargs", "_model_id")

    def __init__(self, model_id_or_path: str | os.PathLike[str], /, **from_pretrained_kwargs: Any) -> None:
        from im_core._auto import _request
        from im_core.errors import InvalidParameterError

        kwargs = dict(from_pretrained_kwargs)
        if "device" in kwargs and kwargs["device"] is not None and not isinstance(kwargs["device"], str):
            kwargs["device"] = str(kwargs["device"])  # a torch.device: its string loads the same device
        deps = kwargs.get("dependency_models_params")
        if isinstance(deps, Mapping):
            loaded = sorted(str(k) for k, v in deps.items() if not isinstance(v, Mapping))
            if loaded:
                raise InvalidParameterError(
                    f"A ModelSpec holds from_pretrained arguments by value; dependency_models_params {loaded} "
                    "hold(s) a loaded model, which cannot travel to another process. Give a dict of its "
                    "from_pretrained arguments instead, e.g. {'detector': {'device': 'cpu'}}."
                )
        try:
            kwargs = copy.deepcopy(kwargs)
            pickle.dumps(kwargs)
        except Exception as exc:  # any value that cannot be copied or pickled
            names = sorted(k for k, v in kwargs.items() if not _picklable(v))
            raise InvalidParameterError(
                f"A ModelSpec must pickle to reach another process, but {', '.join(names) or 'an argument'} "
                f"cannot be pickled ({type(exc).__name__}: {exc}). Pass plain values (strings, numbers, lists, "
                "dicts)."
            ) from None
        request = _request(0, model_id_or_path, **copy.deepcopy(kwargs))  # checks every argument, loads nothing
        source = request.source
        model_id = str(source.path) if source.path is not None else source.text
        self._model_id = model_id
        self._kwargs = kwargs
        self._key = pickle.dumps(_canonical((model_id, kwargs)), protocol=pickle.HIGHEST_PROTOCOL)

    @property
    def model_id_or_path(self) -> str:
        """The model id, or the absolute path of a local file or folder."""
        return self._model_id

    @property
    def kwargs(self) -> dict[str, Any]:
        """A copy of the keyword arguments of ``from_pretrained``."""
        return copy.deepcopy(self._kwargs)

    def replace(self, **changes: Any) -> ModelSpec:
        """A new spec with some arguments changed (checked again)."""
        return ModelSpec(self._model_id, **{**self._kwargs, **changes})

    def load(self) -> Model[Any]:
        """The model, loaded by ``AutoModel.from_pretrained`` the first time this process asks for this spec (or
        an equal one) and returned from a per-process cache afterwards. Thread-safe: concurrent first calls load
        once."""
        global _LOAD_COUNT
        pid = os.getpid()
        cache_key = (pid, self._key)
        model = _LOADED.get(cache_key)
        if model is not None:
            return model
        with _LOCK:
            for stale in [k for k in _LOADED if k[0] != pid]:  # inherited through fork: never reused
                del _LOADED[stale]
            key_lock = _KEY_LOCKS.setdefault(self._key, threading.Lock())
        with key_lock:
            model = _LOADED.get(cache_key)
            if model is None:
                from im_core._auto import AutoModel

                model = AutoModel.from_pretrained(self._model_id, **copy.deepcopy(self._kwargs))
                with _LOCK:
                    _LOADED[cache_key] = model
                    _LOAD_COUNT += 1
        return model

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSpec) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._model_id, self._kwargs))

    def __repr__(self) -> str:
        shown = {k: ("***" if k == "api_key" and v is not None else v) for k, v in self._kwargs.items()}
        args = "".join(f", {k}={v!r}" for k, v in sorted(shown.items()))
        return f"ModelSpec({self._model_id!r}{args})"


def _rebuild(model_id: str, kwargs: dict[str, Any]) -> ModelSpec:
    """Unpickle a spec (checked again in the receiving process: a local path must exist there too)."""
    return ModelSpec(model_id, **kwargs)


def _canonical(value: Any) -> Any:
    """``value`` with every mapping as a sorted tuple of pairs and every list as a tuple, so that equal arguments
    give equal keys whatever their insertion order."""
    if isinstance(value, Mapping):
        return ("__map__", tuple(sorted(((str(k), _canonical(v)) for k, v in value.items()), key=lambda kv: kv[0])))
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return value


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True
