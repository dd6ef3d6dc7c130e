"""A fake TensorRT runtime and fake cuda-python runtime bindings, for CPU-only tests of the TensorRT backend.

NO REAL ENGINE RUNS HERE. The fakes reproduce the API the backend uses — named I/O tensors, ``-1`` dynamic dims,
optimisation-profile min/opt/max, ``set_input_shape`` refusing shapes outside the profile, ``set_tensor_address``,
``execute_async_v3`` on a stream handle (refusing the legacy default stream 0), ``cudaMalloc``/``cudaMemcpyAsync``/
stream capture/graph launch — with "device memory" that is host memory: a pointer is the address of a numpy buffer
and the engine computes the conformance reference network with numpy. So the backend's code paths (shapes, profiles,
per-thread contexts, streams, copies, CUDA graphs) run for real; TensorRT's kernels do not.

A fake plan is ``b"FAKEPLAN" + json`` (see :func:`write_fake_plan`); anything else fails to deserialise.
"""

from __future__ import annotations

import ctypes
import enum
import json
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from im_core._runtime import GpuInfo
from im_core.testing import reference_forward

MAGIC = b"FAKEPLAN"


def write_fake_plan(
    path: Path, *, batch: int | None = None, profile: tuple[int, int, int] = (1, 4, 16), host_code: bool = False
) -> Path:
    """A fake engine of the reference network: static ``batch``, or dynamic within ``profile`` (min, opt, max)."""
    path.write_bytes(MAGIC + json.dumps({"batch": batch, "profile": profile, "host_code": host_code}).encode())
    return path


# -- fake cuda.bindings.runtime ------------------------------------------------------------------------------
class _Err(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorInsufficientDriver = 35
    cudaErrorStreamCaptureUnsupported = 900


class _Stream:
    _next = 1000

    def __init__(self) -> None:
        _Stream._next += 1
        self.handle = _Stream._next
        self.capture: list[Callable[[], None]] | None = None

    def __int__(self) -> int:
        return self.handle

    def enqueue(self, op: Callable[[], None]) -> None:
        if self.capture is not None:
            self.capture.append(op)
        else:
            op()  # the fake "GPU" runs each op at once, in stream order


class FakeCudart:
    """Stand-in for ``cuda.bindings.runtime``: same call names, ``(err, *values)`` returns."""

    cudaError_t = _Err
    cudaMemcpyKind = enum.IntEnum("cudaMemcpyKind", {"cudaMemcpyHostToDevice": 1, "cudaMemcpyDeviceToHost": 2})
    cudaStreamCaptureMode = enum.IntEnum("cudaStreamCaptureMode", {"cudaStreamCaptureModeThreadLocal": 1})
    cudaStreamNonBlocking = 1

    def __init__(self, devices: int = 1) -> None:
        self.devices = devices
        self.memory: dict[int, np.ndarray] = {}
        self.streams: dict[int, _Stream] = {}
        self.launches = 0
        self.current_device: dict[int, int] = {}
        self._lock = threading.Lock()

    def cudaGetDeviceCount(self) -> tuple[Any, Any]:
        return (_Err.cudaSuccess, self.devices) if self.devices else (_Err.cudaErrorInsufficientDriver, None)

    def cudaGetErrorName(self, err: Any) -> tuple[Any, bytes]:
        return _Err.cudaSuccess, _Err(int(err)).name.encode()

    def cudaSetDevice(self, index: int) -> tuple[Any]:
        if index >= self.devices:
            return (_Err.cudaErrorInvalidValue,)
        self.current_device[threading.get_ident()] = index
        return (_Err.cudaSuccess,)

    def cudaStreamCreateWithFlags(self, flags: int) -> tuple[Any, _Stream]:
        assert flags == self.cudaStreamNonBlocking
        stream = _Stream()
        with self._lock:
            self.streams[stream.handle] = stream
        return _Err.cudaSuccess, stream

    def cudaStreamDestroy(self, stream: _Stream) -> tuple[Any]:
        with self._lock:
            self.streams.pop(int(stream))
        return (_Err.cudaSuccess,)

    def cudaMalloc(self, nbytes: int) -> tuple[Any, int]:
        buf = np.zeros(nbytes, np.uint8)
        with self._lock:
            self.memory[buf.ctypes.data] = buf
        return _Err.cudaSuccess, buf.ctypes.data

    def cudaFree(self, ptr: int) -> tuple[Any]:
        with self._lock:
            self.memory.pop(int(ptr))
        return (_Err.cudaSuccess,)

    def cudaMemcpyAsync(self, dst: int, src: int, nbytes: int, kind: Any, stream: _Stream) -> tuple[Any]:
        device_side = dst if kind == 1 else src
        assert any(p <= device_side < p + b.nbytes for p, b in self.memory.items()), "not a device pointer"
        stream.enqueue(lambda: ctypes.memmove(dst, src, nbytes))
        return (_Err.cudaSuccess,)

    def cudaStreamSynchronize(self, stream: _Stream) -> tuple[Any]:
        return (_Err.cudaSuccess,)

    def cudaStreamBeginCapture(self, stream: _Stream, mode: Any) -> tuple[Any]:
        stream.capture = []
        return (_Err.cudaSuccess,)

    def cudaStreamEndCapture(self, stream: _Stream) -> tuple[Any, list]:
        ops, stream.capture = stream.capture, None
        return _Err.cudaSuccess, ops

    def cudaGraphInstantiate(self, graph: list, flags: int) -> tuple[Any, list]:
        return _Err.cudaSuccess, list(graph)

    def cudaGraphLaunch(self, graph_exec: list, stream: _Stream) -> tuple[Any]:
        self.launches += 1
        for op in graph_exec:
            stream.enqueue(op)
        return (_Err.cudaSuccess,)


# -- fake tensorrt -------------------------------------------------------------------------------------------
class _DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT32 = 3


class _Mode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class _Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class _ILogger:
    Severity = _Severity

    def __init__(self) -> None:
        pass


class _Context:
    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.threads: set[int] = set()
        self.executions = 0

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.threads.add(threading.get_ident())
        low, _, high = self.engine.get_tensor_profile_shape(name, 0)
        if len(shape) != 4 or any(not lo <= d <= hi for d, lo, hi in zip(shape, low, high)):
            self.engine.runtime.logger.log(_Severity.ERROR, f"setInputShape: {shape} outside profile")
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        n = self.shapes["images"][0]
        return {"images": self.shapes["images"], "logits": (n, 4), "pooled": (n, 3)}[name]

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        cudart = self.engine.runtime.cudart
        assert stream_handle != 0, "execute_async_v3 on the legacy default stream"
        stream = cudart.streams[stream_handle]
        assert set(self.addresses) == {"images", "logits", "pooled"}, "every I/O tensor needs an address"
        shape, addresses = self.shapes["images"], dict(self.addresses)
        self.executions += 1

        def kernel() -> None:
            count = int(np.prod(shape))
            x = np.ctypeslib.as_array((ctypes.c_float * count).from_address(addresses["images"])).reshape(shape)
            for name, value in reference_forward(x.copy()).items():
                out = np.ctypeslib.as_array((ctypes.c_float * value.size).from_address(addresses[name]))
                out[:] = value.ravel()

        stream.enqueue(kernel)
        return True


class _Engine:
    def __init__(self, runtime: _Runtime, batch: int | None, profile: tuple[int, int, int]) -> None:
        self.runtime = runtime
        self.batch, self.profile = batch, profile
        self.contexts: list[_Context] = []
        self.num_io_tensors = 3
        self.num_optimization_profiles = 1

    def get_tensor_name(self, i: int) -> str:
        return ("images", "logits", "pooled")[i]

    def get_tensor_mode(self, name: str) -> _Mode:
        return _Mode.INPUT if name == "images" else _Mode.OUTPUT

    def get_tensor_dtype(self, name: str) -> _DataType:
        return _DataType.FLOAT

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        b = -1 if self.batch is None else self.batch
        return {"images": (b, 3, 8, 8), "logits": (b, 4), "pooled": (b, 3)}[name]

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
        assert name == "images" and profile == 0
        if self.batch is not None:
            return [(self.batch, 3, 8, 8)] * 3
        return [(b, 3, 8, 8) for b in self.profile]

    def create_execution_context(self) -> _Context:
        context = _Context(self)
        self.contexts.append(context)
        return context


class _Runtime:
    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.engine_host_code_allowed = False
        type(self).created.append(self)
        assert self.cudart.devices > 0, "a TensorRT Runtime was created without a GPU (would crash for real)"

    cudart: FakeCudart
    created: list[_Runtime] = []

    def deserialize_cuda_engine(self, data: bytes) -> _Engine | None:
        if not data.startswith(MAGIC):
            self.logger.log(_Severity.ERROR, "Serialization assertion magicTagRead == kMAGIC_TAG failed")
            return None
        spec = json.loads(data[len(MAGIC) :])
        if spec["host_code"] and not self.engine_host_code_allowed:
            self.logger.log(_Severity.ERROR, "engine contains host code; engine_host_code_allowed is false")
            return None
        return _Engine(self, spec["batch"], tuple(spec["profile"]))


def make_fake_trt(cudart: FakeCudart) -> types.SimpleNamespace:
    """A module-like namespace with the TensorRT names the backend uses (bound to ``cudart``)."""
    runtime = type("Runtime", (_Runtime,), {"cudart": cudart, "created": []})
    return types.SimpleNamespace(
        __version__="11.4.0.106", Runtime=runtime, ILogger=_ILogger, DataType=_DataType, TensorIOMode=_Mode
    )


@pytest.fixture
def fake_cuda() -> FakeCudart:
    return FakeCudart(devices=1)


@pytest.fixture
def fake_trt(fake_cuda: FakeCudart) -> types.SimpleNamespace:
    return make_fake_trt(fake_cuda)


@pytest.fixture
def fake_backend(fake_trt: types.SimpleNamespace, fake_cuda: FakeCudart) -> Any:
    """A ``TrtBackend`` wired to the fakes: lean runtime flavour, one 'NVIDIA H100' (9.0)."""
    from im_backend_trt import TrtBackend

    return TrtBackend(
        trt_module=fake_trt,
        flavour="lean",
        cudart=fake_cuda,
        gpus=lambda: [GpuInfo(0, "NVIDIA H100 80GB HBM3", "9.0", 81559)],
    )


# -- fake builder (the full TensorRT's Builder/OnnxParser; the lean runtime has none) ------------------------
class _Tensor(types.SimpleNamespace):
    pass


class _Network:
    def __init__(self) -> None:
        self.inputs: list[_Tensor] = []

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i: int) -> _Tensor:
        return self.inputs[i]


class _Parser:
    def __init__(self, network: _Network, logger: Any) -> None:
        self.network, self.errors = network, []

    def parse_from_file(self, path: str) -> bool:
        if Path(path).read_bytes().startswith(b"bad"):
            self.errors = ["In node 0 (parseGraph): INVALID_GRAPH"]
            return False
        self.network.inputs = [_Tensor(name="images", shape=(-1, 3, 8, 8))]
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> str:
        return self.errors[i]


class _Config:
    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.profiles: list[dict[str, tuple]] = []
        self.hardware_compatibility_level = None
        self.cache = b""

    def set_memory_pool_limit(self, pool: Any, size: int) -> None:
        self.workspace = size

    def add_optimization_profile(self, profile: dict[str, tuple]) -> None:
        self.profiles.append(profile)

    def create_timing_cache(self, data: bytes) -> bytes:
        return data + b"+timings"

    def set_timing_cache(self, cache: bytes, ignore_mismatch: bool) -> None:
        self.cache = cache

    def get_timing_cache(self) -> Any:
        return types.SimpleNamespace(serialize=lambda: self.cache)

    def set_flag(self, flag: str) -> None:
        self.flags.add(flag)


class _Profile(dict):
    def set_shape(self, name: str, low: tuple, opt: tuple, high: tuple) -> None:
        self[name] = (low, opt, high)


class _Builder:
    def __init__(self, logger: Any) -> None:
        self.logger = logger

    def create_network(self, flags: int) -> _Network:
        return _Network()

    def create_builder_config(self) -> _Config:
        return _Config()

    def create_optimization_profile(self) -> _Profile:
        return _Profile()

    def build_serialized_network(self, network: _Network, config: _Config) -> bytes:
        low, opt, high = config.profiles[0]["images"]
        spec = {"batch": None, "profile": [low[0], opt[0], high[0]], "host_code": False}
        return MAGIC + json.dumps(spec).encode()


def add_fake_builder(trt: types.SimpleNamespace) -> types.SimpleNamespace:
    """Turn a fake runtime into a fake *full* TensorRT (adds Builder, OnnxParser and the builder enums)."""
    trt.Builder, trt.OnnxParser = _Builder, _Parser
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.BuilderFlag = types.SimpleNamespace(VERSION_COMPATIBLE="VERSION_COMPATIBLE")
    trt.HardwareCompatibilityLevel = types.SimpleNamespace(SAME_COMPUTE_CAPABILITY="SAME_COMPUTE_CAPABILITY")
    return trt
