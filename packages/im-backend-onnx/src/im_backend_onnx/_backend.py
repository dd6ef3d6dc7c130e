"""ONNX Runtime backend: probe, package checks and sessions."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from im_core import BackendProbe, BaseSession, BatchLimits, ModelPackage, TensorSpec, Verdict
from im_core.errors import MissingDependencyError, ModelLoadingError, ModelRuntimeError

__all__ = ["OnnxBackend", "OnnxSession"]

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(bool)": "bool",
}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(
            "The ONNX backend needs onnxruntime: pip install im-backend-onnx (or onnxruntime-gpu for CUDA)."
        ) from exc
    return onnxruntime


class OnnxSession(BaseSession):
    """An ``onnxruntime.InferenceSession`` behind the :class:`im_core.Session` protocol.

    Thread safety: ``native`` — ONNX Runtime's ``run`` is safe to call from several threads.
    """

    backend = "onnx"
    thread_safety = "native"

    def __init__(
        self,
        path: Path,
        *,
        device: str = "cpu",
        providers: Sequence[Any] | None = None,
        batch_limits: BatchLimits | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        ort = _ort()
        so = ort.SessionOptions()
        so.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=so, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as exc:  # ORT raises its own exception types for corrupt files
            raise ModelLoadingError(f"ONNX Runtime could not load {path.name}: {exc}") from exc
        self.device = device
        self.inputs = tuple(
            TensorSpec(
                i.name, tuple(d if isinstance(d, int) else None for d in i.shape), _ORT_TYPES.get(i.type, i.type)
            )
            for i in self._session.get_inputs()
        )
        self.outputs = tuple(
            TensorSpec(
                o.name, tuple(d if isinstance(d, int) else None for d in o.shape), _ORT_TYPES.get(o.type, o.type)
            )
            for o in self._session.get_outputs()
        )
        first = self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else None
        self.batch_limits = batch_limits or (BatchLimits.fixed(first) if isinstance(first, int) else BatchLimits())
        self.model_metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)

    def _run_chunk(self, feeds: Mapping[str, Any], output_names: Sequence[str]) -> dict[str, Any]:
        cast = {}
        for spec in self.inputs:
            value = np.asarray(feeds[spec.name])
            cast[spec.name] = value if str(value.dtype) == spec.dtype else value.astype(spec.dtype)
        try:
            values = self._session.run(list(output_names), cast)
        except Exception as exc:
            raise ModelRuntimeError(f"ONNX Runtime failed: {exc}") from exc
        return dict(zip(output_names, values))


class OnnxBackend:
    """The ``onnx`` backend plugin."""

    name = "onnx"

    @functools.lru_cache(maxsize=1)  # noqa: B019 - one instance per process
    def probe(self) -> BackendProbe:
        try:
            ort = _ort()
        except MissingDependencyError as exc:
            return BackendProbe("onnx", False, reason=exc.message)
        providers = tuple(ort.get_available_providers())
        devices = ["cpu"]
        if "CUDAExecutionProvider" in providers or "TensorrtExecutionProvider" in providers:
            from im_core._runtime import detect_gpus

            devices += [f"cuda:{g.index}" for g in detect_gpus()[0]]
        return BackendProbe("onnx", True, ort.__version__, tuple(devices), {"providers": list(providers)})

    def check(self, package: ModelPackage, probe: BackendProbe, device: str) -> Verdict:
        if not probe.available:
            return Verdict.reject(f"ONNX Runtime is not usable: {probe.reason}")
        return Verdict.accept()

    def load(self, path: Path, *, device: str, package: ModelPackage | None = None, **options: Any) -> OnnxSession:
        return OnnxSession(path, device=device, **options)
