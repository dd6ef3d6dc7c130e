"""What a TensorRT engine needs: the backend's reading of ``ModelPackage.requirements`` (light: pydantic only;
named in the manifest, imported by negotiation before TensorRT or cuda-python are)."""

from __future__ import annotations

from typing import Literal

from im_core import BackendRequirements

__all__ = ["TrtRequirements", "normalize_gpu_name"]


def normalize_gpu_name(name: str | None) -> str | None:
    """A GPU or Jetson name as the Roboflow API spells it: lower case, blanks as dashes (``"NVIDIA L4"`` →
    ``"nvidia-l4"``), so NVML's names and the wire's compare equal; ``None`` for an empty name."""
    if name is None:
        return None
    text = "-".join(str(name).strip().lower().split())
    return text or None


class TrtRequirements(BackendRequirements):
    """What a TensorRT engine needs: the TensorRT version and the GPU it was built for.

    Attributes:
        trt_version: the TensorRT version the plan was built with.
        compute_capability / device_name: the GPU it was built on (``"8.9"``, ``"nvidia-l4"`` or ``"NVIDIA L4"``;
            names are compared normalised, see :func:`normalize_gpu_name`).
        same_cc_compatible: the plan runs on any GPU of the same compute capability.
        forward_compatible: built VERSION_COMPATIBLE (runs on the same or a newer TensorRT; embeds a lean runtime
            that runs host code unless ``lean_runtime_excluded``).
        lean_runtime_excluded: a version-compatible plan built without its lean runtime (needs that TensorRT's own).
        cuda_version / driver_version / os_version: the build machine's (ranking only, as in the reference).
        machine_type: ``gpu-server`` or ``jetson``.
        l4t_version / jetson_device_name: a Jetson build's L4T release (major.minor must match) and product name.
    """

    trt_version: str | None = None
    compute_capability: str | None = None  # "8.6"
    device_name: str | None = None
    same_cc_compatible: bool = False
    forward_compatible: bool = False
    lean_runtime_excluded: bool = False
    cuda_version: str | None = None
    driver_version: str | None = None
    os_version: str | None = None
    machine_type: Literal["gpu-server", "jetson"] | None = None
    l4t_version: str | None = None
    jetson_device_name: str | None = None
