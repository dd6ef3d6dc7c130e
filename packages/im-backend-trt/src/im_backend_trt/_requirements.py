"""What a TensorRT engine needs: the backend's reading of ``ModelPackage.requirements`` (light: pydantic only;
named in the manifest, imported by negotiation before TensorRT or cuda-python are)."""

from __future__ import annotations

from typing import Literal

from im_core import BackendRequirements

__all__ = ["TrtRequirements"]


class TrtRequirements(BackendRequirements):
    """What a TensorRT engine needs: the TensorRT version and the GPU it was built for."""

    trt_version: str | None = None
    compute_capability: str | None = None  # "8.6"
    device_name: str | None = None
    same_cc_compatible: bool = False
    forward_compatible: bool = False
    lean_runtime_excluded: bool = False
    cuda_version: str | None = None
    driver_version: str | None = None
    machine_type: Literal["gpu-server", "jetson"] | None = None
    l4t_version: str | None = None
