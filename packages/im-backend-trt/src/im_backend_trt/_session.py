"""``TrtSession``: a deserialised TensorRT engine behind :class:`im_core.Session`.

Named-tensor I/O (TensorRT 10/11): ``set_input_shape`` → ``get_tensor_shape`` for outputs → ``set_tensor_address``
→ ``execute_async_v3(stream)`` on a non-default stream. Two memory strategies:

- ``cuda-python``: device buffers from ``cudaMalloc`` (grown, never shrunk, per thread), host arrays copied in and
  out with ``cudaMemcpyAsync``; outputs are numpy arrays. Optional CUDA-graph replay per input shape.
- ``torch``: inputs and outputs are torch CUDA tensors (no host round trip; the caching allocator owns memory);
  execution on a per-thread torch stream ordered with the caller's stream. Outputs stay on the GPU.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from im_backend_trt._cuda import CudaRuntime
from im_core import BaseSession, BatchLimits, Device, TensorSpec
from im_core.errors import InvalidParameterError, ModelInputError, ModelRuntimeError

__all__ = ["TrtSession", "engine_specs"]

_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "UINT8": "uint8",
}


def _dtype_name(dt: Any) -> str:
    name = getattr(dt, "name", str(dt).rsplit(".", 1)[-1])
    if name not in _DTYPES:
        raise ModelRuntimeError(f"TensorRT tensor type {name} is not supported by im (supported: {sorted(_DTYPES)}).")
    return _DTYPES[name]


def engine_specs(trt: Any, engine: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...], BatchLimits]:
    """Input/output specs (``-1`` dims → ``None``) and batch limits (static, or profile 0's min/max of axis 0)."""
    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = tuple(None if int(d) < 0 else int(d) for d in engine.get_tensor_shape(name))
        spec = TensorSpec(name, shape, _dtype_name(engine.get_tensor_dtype(name)))
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(spec)
    if not inputs:
        return (), tuple(outputs), BatchLimits()
    first = inputs[0]
    if first.shape and first.shape[0] is not None:
        return tuple(inputs), tuple(outputs), BatchLimits.fixed(int(first.shape[0]))
    low, _opt, high = engine.get_tensor_profile_shape(first.name, 0)
    return tuple(inputs), tuple(outputs), BatchLimits(min=int(low[0]), max=int(high[0]))


@dataclass
class _Graph:
    """One captured CUDA graph: its own context and fixed buffers (addresses are baked into the graph)."""

    context: Any
    inputs: dict[str, int]
    outputs: dict[str, tuple[int, tuple[int, ...]]]
    graph_exec: Any


@dataclass
class _ThreadState:
    """Per-thread execution state: TensorRT contexts are not thread-safe, so each thread owns one."""

    context: Any
    stream: Any
    buffers: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (ptr, capacity bytes)
    graphs: dict[tuple[Any, ...], _Graph] = field(default_factory=dict)
    torch_stream: Any = None


class TrtSession(BaseSession):
    """A TensorRT engine on one GPU.

    Thread safety: ``per-thread``. The engine is shared; each calling thread gets its own execution context, CUDA
    stream and buffers (``threading.local``), as TensorRT requires (one ``IExecutionContext`` per concurrent thread).

    ``metadata`` is ``{}``: a serialized engine carries no string metadata (a package's ``trt_config.json`` is a
    separate file, read by ``TrtBackend.inspect``).
    """

    backend = "trt"
    thread_safety = "per-thread"

    def __init__(
        self,
        *,
        trt: Any,
        runtime: Any,
        engine: Any,
        cuda: CudaRuntime,
        device: Device,
        memory: str = "cuda-python",
        cuda_graph: bool = False,
    ) -> None:
        super().__init__()
        if memory not in ("cuda-python", "torch"):
            raise InvalidParameterError(f"memory={memory!r} must be 'auto', 'torch' or 'cuda-python'.")
        self._trt, self._runtime, self._engine, self._cuda = trt, runtime, engine, cuda
        self.device = device
        self.memory = memory
        self.cuda_graph = bool(cuda_graph)
        if self.cuda_graph and memory != "cuda-python":
            raise InvalidParameterError("cuda_graph=True needs memory='cuda-python'.")
        self.inputs, self.outputs, self.batch_limits = engine_specs(trt, engine)
        self._np = {s.name: np.dtype(s.dtype) for s in (*self.inputs, *self.outputs) if s.dtype != "bfloat16"}
        self._local = threading.local()
        self._states: list[_ThreadState] = []
        self._states_lock = threading.Lock()
        self._closed = False

    # -- per-thread state -----------------------------------------------------------------------------------------
    def _state(self) -> _ThreadState:
        if self._closed:
            raise ModelRuntimeError("This TensorRT session is closed.")
        state = getattr(self._local, "state", None)
        if state is None:
            self._cuda.set_device()
            context = self._engine.create_execution_context()
            if context is None:
                raise ModelRuntimeError("TensorRT could not create an execution context (out of GPU memory?).")
            state = _ThreadState(context, self._cuda.create_stream())
            self._local.state = state
            with self._states_lock:
                self._states.append(state)
        return state

    def _buffer(self, state: _ThreadState, name: str, nbytes: int) -> int:
        ptr, capacity = state.buffers.get(name, (0, 0))
        if capacity < nbytes:
            if ptr:
                self._cuda.free(ptr)
            ptr = self._cuda.malloc(nbytes)
            state.buffers[name] = (ptr, nbytes)
        return ptr

    # -- running ---------------------------------------------------------------------------------------------------
    def _host_inputs(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        out = {}
        for spec in self.inputs:
            value = feeds[spec.name]
            if type(value).__module__.startswith("torch"):
                value = value.detach().cpu().numpy()
            dtype = self._np.get(spec.name)
            if dtype is None:
                raise ModelInputError(f"Input {spec.name} is bfloat16: use memory='torch' to feed it.")
            out[spec.name] = np.ascontiguousarray(value, dtype=dtype)
        return out

    def _set_shape(self, context: Any, name: str, shape: tuple[int, ...]) -> None:
        if context.set_input_shape(name, tuple(int(d) for d in shape)) is False:
            spec = next(s for s in self.inputs if s.name == name)
            raise ModelInputError(
                f"Input {name} of shape {list(shape)} is outside the engine's shape {list(spec.shape)} or its "
                "optimisation profile (TensorRT refused set_input_shape)."
            )

    def _execute(self, context: Any, stream_handle: int) -> None:
        if not context.execute_async_v3(stream_handle):
            raise ModelRuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log above).")

    def _run_chunk(self, feeds: Mapping[str, Any], output_names: Sequence[str]) -> dict[str, Any]:
        state = self._state()
        self._cuda.set_device()
        if self.memory == "torch":
            return self._run_torch(state, feeds, output_names)  # pragma: no cover - needs a GPU
        arrays = self._host_inputs(feeds)
        if self.cuda_graph:
            return self._run_graph(state, arrays, output_names)
        context, stream = state.context, state.stream
        for name, arr in arrays.items():
            self._set_shape(context, name, arr.shape)
            ptr = self._buffer(state, name, arr.nbytes)
            self._cuda.h2d(ptr, arr.ctypes.data, arr.nbytes, stream)
            context.set_tensor_address(name, ptr)
        results: dict[str, np.ndarray] = {}
        for spec in self.outputs:  # every output must have an address, requested or not
            host = np.empty(tuple(int(d) for d in context.get_tensor_shape(spec.name)), dtype=self._np[spec.name])
            ptr = self._buffer(state, spec.name, host.nbytes)
            context.set_tensor_address(spec.name, ptr)
            results[spec.name] = host
        self._execute(context, int(stream))
        for name in output_names:
            host = results[name]
            self._cuda.d2h(host.ctypes.data, state.buffers[name][0], host.nbytes, stream)
        self._cuda.synchronize(stream)  # also keeps `arrays` alive until the copies are done
        return {n: results[n] for n in output_names}

    def _run_graph(self, state: _ThreadState, arrays: dict[str, np.ndarray], names: Sequence[str]) -> dict[str, Any]:
        """CUDA-graph replay: one captured graph (own context and buffers) per thread and input shapes."""
        key = tuple((n, a.shape) for n, a in arrays.items())
        graph = state.graphs.get(key)
        stream = state.stream
        if graph is None:
            context = self._engine.create_execution_context()
            ins = {}
            for name, arr in arrays.items():
                self._set_shape(context, name, arr.shape)
                ins[name] = self._cuda.malloc(arr.nbytes)
                context.set_tensor_address(name, ins[name])
            outs = {}
            for spec in self.outputs:
                shape = tuple(int(d) for d in context.get_tensor_shape(spec.name))
                ptr = self._cuda.malloc(int(np.prod(shape)) * self._np[spec.name].itemsize)
                context.set_tensor_address(spec.name, ptr)
                outs[spec.name] = (ptr, shape)
            self._execute(context, int(stream))  # TensorRT needs one enqueue before capture
            self._cuda.synchronize(stream)
            self._cuda.begin_capture(stream)
            try:
                self._execute(context, int(stream))
            finally:
                captured = self._cuda.end_capture(stream)
            graph = _Graph(context, ins, outs, self._cuda.instantiate(captured))
            state.graphs[key] = graph
        for name, arr in arrays.items():
            self._cuda.h2d(graph.inputs[name], arr.ctypes.data, arr.nbytes, stream)
        self._cuda.launch(graph.graph_exec, stream)
        results = {}
        for name in names:
            ptr, shape = graph.outputs[name]
            host = np.empty(shape, dtype=self._np[name])
            self._cuda.d2h(host.ctypes.data, ptr, host.nbytes, stream)
            results[name] = host
        self._cuda.synchronize(stream)
        return results

    def _run_torch(
        self, state: _ThreadState, feeds: Mapping[str, Any], names: Sequence[str]
    ) -> dict[str, Any]:  # pragma: no cover
        """torch buffers: zero-copy for CUDA tensor inputs; outputs are CUDA tensors. GPU only."""
        import torch

        device = torch.device(self.device.torch_string)
        if state.torch_stream is None:
            state.torch_stream = torch.cuda.Stream(device=device)
        context, side = state.context, state.torch_stream
        keep = []
        for spec in self.inputs:
            tensor = torch.as_tensor(feeds[spec.name], device=device).to(getattr(torch, spec.dtype)).contiguous()
            keep.append(tensor)
            self._set_shape(context, spec.name, tuple(tensor.shape))
            context.set_tensor_address(spec.name, tensor.data_ptr())
        outs = {}
        for spec in self.outputs:
            shape = tuple(int(d) for d in context.get_tensor_shape(spec.name))
            outs[spec.name] = torch.empty(shape, dtype=getattr(torch, spec.dtype), device=device)
            context.set_tensor_address(spec.name, outs[spec.name].data_ptr())
        current = torch.cuda.current_stream(device)
        side.wait_stream(current)
        self._execute(context, side.cuda_stream)
        current.wait_stream(side)
        for t in (*keep, *outs.values()):
            t.record_stream(side)
        return {n: outs[n] for n in names}

    def close(self) -> None:
        """Free device buffers and streams of every thread (contexts are released with the engine)."""
        with self._states_lock:
            self._closed = True
            states, self._states = self._states, []
        for state in states:
            for ptr, _ in state.buffers.values():
                self._cuda.free(ptr)
            for graph in state.graphs.values():
                for ptr in (*graph.inputs.values(), *(p for p, _ in graph.outputs.values())):
                    self._cuda.free(ptr)
            self._cuda.destroy_stream(state.stream)
