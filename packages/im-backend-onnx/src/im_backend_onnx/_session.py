"""``OnnxSession``: an ``onnxruntime.InferenceSession`` behind :class:`im_core.Session`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from im_backend_onnx._ort import import_ort
from im_backend_onnx._providers import GPU_PROVIDERS, ProviderSpec
from im_core import BaseSession, BatchLimits, Device, TensorSpec
from im_core.errors import InvalidParameterError, ModelInputError, ModelLoadingError, ModelRuntimeError

__all__ = ["OnnxSession", "graph_optimization_level", "tensor_spec"]

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(bool)": "bool",
}
_OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",
    "all": "ORT_ENABLE_ALL",
}


def tensor_spec(node: Any) -> TensorSpec:
    """A ``TensorSpec`` from an ORT ``NodeArg``: symbolic or unknown dims become ``None``."""
    shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in (node.shape or ()))
    return TensorSpec(node.name, shape, _ORT_TYPES.get(node.type, node.type))


def graph_optimization_level(ort: Any, value: Any) -> Any:
    """``"disable" | "basic" | "extended" | "all"`` (or an ``ort.GraphOptimizationLevel``) → the ORT enum."""
    if isinstance(value, ort.GraphOptimizationLevel):
        return value
    key = _OPT_LEVELS.get(str(value).lower())
    if key is None or not hasattr(ort.GraphOptimizationLevel, key):
        raise InvalidParameterError(
            f"graph_optimization_level={value!r} is not one of {sorted(_OPT_LEVELS)} (or an ORT enum value)."
        )
    return getattr(ort.GraphOptimizationLevel, key)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


class OnnxSession(BaseSession):
    """One ONNX Runtime session.

    Thread safety: ``native``. ``InferenceSession.run`` is safe to call from several threads (ORT documents it), and
    IO binding objects are created per call, never shared. (Note: ORT's own TensorRT EP serialises ``Run`` on one
    TensorRT context internally; load several sessions for concurrent TensorRT EP throughput.)

    On CUDA devices with ``io_binding`` (the default there) inputs may be torch CUDA tensors (bound in place, no host
    copy) and outputs are torch CUDA tensors via DLPack when torch is installed, so data stays on the GPU.
    Elsewhere outputs are numpy arrays. Inputs are cast to the graph's dtype (e.g. float32 → float16 for fp16 graphs).
    """

    backend = "onnx"
    thread_safety = "native"

    def __init__(
        self,
        path: Path,
        *,
        device: Device,
        providers: Sequence[ProviderSpec],
        session_options: Any,
        batch_limits: BatchLimits | None = None,
        io_binding: bool | None = None,
    ) -> None:
        super().__init__()
        ort = import_ort()
        try:
            self._session = ort.InferenceSession(str(path), sess_options=session_options, providers=list(providers))
        except Exception as exc:  # ORT raises its own types for corrupt or unsupported files
            raise ModelLoadingError(f"ONNX Runtime could not load {Path(path).name}: {exc}") from exc
        self.device = device
        self.providers: tuple[str, ...] = tuple(self._session.get_providers())
        self.inputs = tuple(tensor_spec(i) for i in self._session.get_inputs())
        self.outputs = tuple(tensor_spec(o) for o in self._session.get_outputs())
        self.batch_limits = _limits(self.inputs, batch_limits)
        on_gpu = device.is_cuda and any(p in GPU_PROVIDERS for p in self.providers)
        self.io_binding = bool(on_gpu if io_binding is None else io_binding and on_gpu)
        self._device_id = device.index or 0
        self._dtypes = {s.name: np.dtype(s.dtype) if s.dtype in np.sctypeDict else None for s in self.inputs}
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)  # metadata_props

    # -- running -----------------------------------------------------------------------------------------------
    def _host(self, name: str, value: Any) -> np.ndarray:
        if _is_torch(value):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        want = self._dtypes.get(name)
        if want is not None and arr.dtype != want:
            arr = arr.astype(want)
        return arr

    def _run_chunk(self, feeds: Mapping[str, Any], output_names: Sequence[str]) -> dict[str, Any]:
        if self.io_binding:
            return self._run_bound(feeds, output_names)  # pragma: no cover - needs a GPU
        cast = {name: self._host(name, value) for name, value in feeds.items()}
        try:
            values = self._session.run(list(output_names), cast)
        except Exception as exc:
            raise ModelRuntimeError(f"ONNX Runtime failed on {self._describe(cast)}: {exc}") from exc
        return dict(zip(output_names, values))

    def _run_bound(self, feeds: Mapping[str, Any], output_names: Sequence[str]) -> dict[str, Any]:  # pragma: no cover
        """IO binding: torch CUDA inputs bound in place, outputs left on the GPU (torch via DLPack). GPU only."""
        binding = self._session.io_binding()
        keep = []  # keep converted tensors alive until the run is over
        for name, value in feeds.items():
            want = self._dtypes.get(name)
            if _is_torch(value) and value.is_cuda:
                tensor = value.contiguous()
                if want is not None and str(tensor.dtype).removeprefix("torch.") != want.name:
                    import torch

                    tensor = tensor.to(getattr(torch, want.name))
                keep.append(tensor)
                binding.bind_input(
                    name, "cuda", tensor.device.index or 0, want or np.float32, tuple(tensor.shape), tensor.data_ptr()
                )
            else:
                binding.bind_cpu_input(name, self._host(name, value))
        for name in output_names:
            binding.bind_output(name, "cuda", self._device_id)
        try:
            self._session.run_with_iobinding(binding)
        except Exception as exc:
            raise ModelRuntimeError(f"ONNX Runtime failed (IO binding on {self.device}): {exc}") from exc
        values = binding.get_outputs()
        try:
            import torch
        except ImportError:
            return {n: v.numpy() for n, v in zip(output_names, values)}
        return {n: torch.from_dlpack(v) for n, v in zip(output_names, values)}

    def _describe(self, feeds: Mapping[str, np.ndarray]) -> str:
        return ", ".join(f"{k}{list(v.shape)}:{v.dtype}" for k, v in feeds.items())

    def run(self, feeds: Mapping[str, Any], output_names: Sequence[str] | None = None) -> dict[str, Any]:
        if output_names is not None:
            known = {o.name for o in self.outputs}
            unknown = [n for n in output_names if n not in known]
            if unknown:
                raise ModelInputError(f"Unknown output(s) {unknown}; this model has {sorted(known)}.")
        return super().run(feeds, output_names)

    def close(self) -> None:
        self._session = None


def _limits(inputs: Sequence[TensorSpec], requested: BatchLimits | None) -> BatchLimits:
    """Batch limits from the graph (static first axis → fixed), narrowed by the package's declared range."""
    first = inputs[0].shape[0] if inputs and inputs[0].shape else None
    if isinstance(first, int):
        return BatchLimits.fixed(first)
    return requested if requested is not None and not requested.static else BatchLimits()
