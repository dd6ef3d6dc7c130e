"""What an ONNX package needs from ONNX Runtime: the backend's reading of ``ModelPackage.requirements`` (light:
pydantic only; named in the manifest, imported by negotiation before onnxruntime is)."""

from __future__ import annotations

from im_core import BackendRequirements

__all__ = ["OnnxRequirements"]


class OnnxRequirements(BackendRequirements):
    """What an ONNX package needs from ONNX Runtime.

    Attributes:
        opset: the default-domain opset the graph was exported with (refused when onnxruntime supports less).
        incompatible_providers: execution providers that must not run it (e.g. ``TensorrtExecutionProvider``).
    """

    opset: int | None = None
    incompatible_providers: tuple[str, ...] = ()
