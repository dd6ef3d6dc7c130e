"""A thin, typed wrapper over the cuda-python runtime calls the TensorRT session needs (or a fake of them)."""

from __future__ import annotations

from typing import Any

from im_backend_trt._trt import check_cuda

__all__ = ["CudaRuntime"]


class CudaRuntime:
    """CUDA runtime calls bound to one device. Every call checks its error code (``ModelRuntimeError``).

    Pointers are ints (device addresses); streams and graphs are the cuda-python handle objects.
    """

    def __init__(self, cudart: Any, device_index: int) -> None:
        self.cudart = cudart
        self.index = device_index

    def _call(self, name: str, *args: Any) -> Any:
        return check_cuda(self.cudart, getattr(self.cudart, name)(*args), name)

    def set_device(self) -> None:
        """Make this device current in the calling thread (the primary context, shared with torch/TRT)."""
        self._call("cudaSetDevice", self.index)

    def create_stream(self) -> Any:
        """A non-blocking (never the legacy default) stream."""
        return self._call("cudaStreamCreateWithFlags", self.cudart.cudaStreamNonBlocking)

    def destroy_stream(self, stream: Any) -> None:
        self._call("cudaStreamDestroy", stream)

    def malloc(self, nbytes: int) -> int:
        return int(self._call("cudaMalloc", max(int(nbytes), 1)))

    def free(self, ptr: int) -> None:
        self._call("cudaFree", ptr)

    def h2d(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call("cudaMemcpyAsync", dst, src, nbytes, kind, stream)

    def d2h(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call("cudaMemcpyAsync", dst, src, nbytes, kind, stream)

    def synchronize(self, stream: Any) -> None:
        self._call("cudaStreamSynchronize", stream)

    def begin_capture(self, stream: Any) -> None:
        mode = self.cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._call("cudaStreamBeginCapture", stream, mode)

    def end_capture(self, stream: Any) -> Any:
        return self._call("cudaStreamEndCapture", stream)

    def instantiate(self, graph: Any) -> Any:
        return self._call("cudaGraphInstantiate", graph, 0)

    def launch(self, graph_exec: Any, stream: Any) -> None:
        self._call("cudaGraphLaunch", graph_exec, stream)
