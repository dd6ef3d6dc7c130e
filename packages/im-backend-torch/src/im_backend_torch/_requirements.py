"""What a torch package needs: the backend's reading of ``ModelPackage.requirements`` (light: pydantic only; named
in the manifest, imported by negotiation before torch is)."""

from __future__ import annotations

from typing import Literal

from im_core import BackendRequirements

__all__ = ["TorchRequirements"]


class TorchRequirements(BackendRequirements):
    """What a torch package needs: its format, a minimum torch version and device types (``cpu``, ``cuda``, ``mps``).

    Attributes:
        format: ``torchscript``, ``exported-program`` (``.pt2``) or ``state-dict``; ``None``: the backend tells from
            the file it loads.
        torch_version: the minimum torch version.
        device_types: the device kinds it runs on (empty: any).
        torchvision_version: the minimum torchvision version, for graphs that call its ops (``torchvision::nms``);
            torchvision is then imported before the graph is loaded, so its ops are registered.
    """

    format: Literal["torchscript", "exported-program", "state-dict"] | None = None
    torch_version: str | None = None
    device_types: tuple[str, ...] = ()
    torchvision_version: str | None = None
