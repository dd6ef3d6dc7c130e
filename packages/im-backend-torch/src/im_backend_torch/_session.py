"""``TorchSession``: a TorchScript module, an exported program's module or an ``nn.Module`` as a Session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from im_backend_torch._torch import numpy_dtype_name
from im_core import BaseSession, BatchLimits, Device, TensorSpec
from im_core.errors import ImError, ModelInputError, ModelRuntimeError

__all__ = ["TorchSession", "flatten_outputs"]


def flatten_outputs(raw: Any, names: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """``(name, tensor)`` pairs from a forward's result: a tensor, a tuple/list of tensors, or a dict.

    Unnamed results are called ``output`` (one tensor) or ``output0``, ``output1``… (several).
    """
    if isinstance(raw, Mapping):
        return [(str(k), v) for k, v in raw.items()]
    items = list(raw) if isinstance(raw, (tuple, list)) else [raw]
    if names is not None and len(names) == len(items):
        return list(zip(names, items))
    if len(items) == 1:
        return [("output", items[0])]
    return [(f"output{i}", v) for i, v in enumerate(items)]


class TorchSession(BaseSession):
    """Runs a torch callable under ``torch.inference_mode``.

    Inputs are numpy arrays or torch tensors (moved to the session's device; floating inputs cast to ``dtype`` when
    one was given). Outputs are numpy on CPU devices (bfloat16 is returned as float32, numpy having no bfloat16), and
    torch tensors on CUDA/MPS devices, left where they are.

    Thread safety: ``lock``. One lock serialises ``run``: an ``nn.Module`` may keep state in Python attributes and
    torch already parallelises each operator across the CPU's threads, so concurrent calls would not be faster on a
    CPU. On CUDA each run is issued on the session's own non-default stream, ordered after the caller's current
    stream and before it again (``wait_stream`` both ways), so results are safe to use on the caller's stream.

    ``metadata``: the extra files of a TorchScript or ``.pt2`` archive (``_extra_files`` / ``extra_files=`` at
    save time) as text; ``{}`` for a state dict or an archive without any.
    """

    backend = "torch"
    thread_safety = "lock"

    def __init__(
        self,
        fn: Any,
        *,
        torch: Any,
        device: Device,
        inputs: tuple[TensorSpec, ...],
        outputs: tuple[TensorSpec, ...],
        batch_limits: BatchLimits,
        dtype: Any = None,
        output_keys: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self._fn = fn
        self.metadata = dict(metadata or {})
        self._torch = torch
        self._tdev = torch.device(device.torch_string)
        self.device = device
        self.inputs = inputs
        self.outputs = outputs
        self.batch_limits = batch_limits
        self.dtype = dtype
        self._keys = list(output_keys) if output_keys is not None else [o.name for o in outputs]
        #: False when output names/shapes could not be known at load (TorchScript without input shapes): the first
        #: ``run`` then finds them with one extra forward on its first item(s).
        self.outputs_known = True
        self._host = device.is_cpu
        self._stream = torch.cuda.Stream(device=self._tdev) if device.is_cuda else None

    def _tensor(self, spec: TensorSpec, value: Any) -> Any:
        torch = self._torch
        if isinstance(value, np.ndarray) or not isinstance(value, torch.Tensor):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if value.device != self._tdev:
            value = value.to(self._tdev, non_blocking=True)
        if value.is_floating_point():
            want = self.dtype
            if want is None and spec.dtype in ("float32", "float16", "float64"):
                want = getattr(torch, spec.dtype)
            if want is not None and value.dtype != want:
                value = value.to(want)
        return value

    def _forward(self, args: list[Any]) -> Any:
        torch = self._torch
        if self._stream is None:
            return self._fn(*args)
        current = torch.cuda.current_stream(self._tdev)  # pragma: no cover - GPU only
        self._stream.wait_stream(current)  # pragma: no cover
        with torch.cuda.stream(self._stream):  # pragma: no cover
            raw = self._fn(*args)
        current.wait_stream(self._stream)  # pragma: no cover
        return raw  # pragma: no cover

    def _result(self, value: Any) -> Any:
        if not self._host:
            return value
        if value.dtype == self._torch.bfloat16:
            value = value.float()
        return value.numpy()

    def _run_chunk(self, feeds: Mapping[str, Any], output_names: Sequence[str]) -> dict[str, Any]:
        with self._torch.inference_mode():
            args = [self._tensor(spec, feeds[spec.name]) for spec in self.inputs]
            try:
                raw = self._forward(args)
            except Exception as exc:  # torch raises RuntimeError/TypeError/… for bad shapes
                shapes = ", ".join(
                    f"{s.name}{list(a.shape)}:{numpy_dtype_name(a.dtype)}" for s, a in zip(self.inputs, args)
                )
                raise ModelRuntimeError(f"torch model failed on {shapes}: {type(exc).__name__}: {exc}") from exc
            pairs = dict(flatten_outputs(raw, self._keys))
            return {name: self._result(pairs[name]) for name in output_names}

    def _discover(self, feeds: Mapping[str, Any]) -> None:
        """Learn output names, ranks and dtypes from one forward on the first ``batch_limits.min`` items."""
        expected = {i.name for i in self.inputs}
        if set(feeds) != expected:
            raise ModelInputError(f"torch session expects inputs {sorted(expected)}, got {sorted(feeds)}.")
        with self._lock:
            if self.outputs_known:
                return
            n = max(1, self.batch_limits.min)
            args = []
            for spec in self.inputs:
                tensor = self._tensor(spec, feeds[spec.name])[:n]
                if tensor.shape[0] < n:  # a static batch above the rows given: zero-pad like BaseSession does
                    pad = self._torch.zeros(
                        (n - tensor.shape[0], *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device
                    )
                    tensor = self._torch.cat([tensor, pad])
                args.append(tensor)
            with self._torch.inference_mode():
                try:
                    pairs = flatten_outputs(self._forward(args))
                except ImError:
                    raise
                except Exception as exc:  # torch raises RuntimeError/TypeError/… (e.g. a missing torchvision op)
                    shapes = ", ".join(
                        f"{s.name}{list(a.shape)}:{numpy_dtype_name(a.dtype)}" for s, a in zip(self.inputs, args)
                    )
                    raise ModelRuntimeError(
                        f"torch model failed on {shapes} (its first run, which finds its outputs): "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
            specs = []
            for name, value in pairs:
                dtype = numpy_dtype_name(value.dtype)
                dtype = "float32" if dtype == "bfloat16" and self._host else dtype
                specs.append(TensorSpec(name, (None, *(int(d) for d in value.shape[1:])) if value.dim() else (), dtype))
            self.outputs, self._keys = tuple(specs), [name for name, _ in pairs]
            self.outputs_known = True

    def run(self, feeds: Mapping[str, Any], output_names: Sequence[str] | None = None) -> dict[str, Any]:
        if not self.outputs_known:
            self._discover(feeds)
        if output_names is not None:
            known = {o.name for o in self.outputs}
            unknown = [n for n in output_names if n not in known]
            if unknown:
                raise ModelInputError(f"Unknown output(s) {unknown}; this model has {sorted(known)}.")
        return super().run(feeds, output_names)

    def close(self) -> None:
        self._fn = None
