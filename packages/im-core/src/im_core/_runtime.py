"""What this machine has: OS, Python, CPU, GPUs (via NVML through ctypes), and each installed backend's probe.

No subprocesses, no heavy imports for GPU facts: GPUs come from ``libnvidia-ml`` when the driver is installed,
or from ``/proc/driver/nvidia``. Backends report their own versions through their plugin's ``probe()``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ComputeEnvironment", "GpuInfo", "collect_compute_environment", "detect_gpus", "visible_gpus"]


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU. ``index`` as CUDA numbers it in this process; ``compute_capability`` as ``"9.0"``; memory in
    MiB; ``uuid`` as ``"GPU-8932f937-..."`` when known."""

    index: int
    name: str
    compute_capability: str | None = None
    memory_mib: int | None = None
    uuid: str | None = None


@dataclass(frozen=True)
class ComputeEnvironment:
    """Facts about this machine, as returned by ``describe_compute_environment()``."""

    os: str
    python: str
    cpu: str
    cpu_count: int
    memory_gib: float | None
    gpus: tuple[GpuInfo, ...] = ()
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    jetson: str | None = None
    backends: dict[str, dict[str, Any]] = field(default_factory=dict)
    broken_plugins: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _os_name() -> str:
    try:
        fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        pretty = fields.get("PRETTY_NAME", "").strip('"')
        if pretty:
            return f"{pretty} ({platform.system()} {platform.release()}, {platform.machine()})"
    except OSError:
        pass
    return f"{platform.platform()} ({platform.machine()})"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _jetson() -> str | None:
    try:
        model = Path("/proc/device-tree/model").read_text().strip("\x00 \n")
    except OSError:
        return None
    return model if "jetson" in model.lower() or "orin" in model.lower() else None


def _driver_from_proc(path: Path = Path("/proc/driver/nvidia/version")) -> str | None:
    """The driver version (``"550.54.15"``) from the kernel module's version file, or None."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for token in text.split():
        parts = token.split(".")
        if len(parts) >= 2 and all(p.isdigit() for p in parts):
            return token
    return None


class _NvmlMemory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


def _load_nvml() -> Any | None:
    for name in ("libnvidia-ml.so.1", "libnvidia-ml.so", "nvml.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def _nvml(lib: Any | None = None) -> tuple[list[GpuInfo], str | None, str | None] | None:
    """GPUs (all of them, ``index`` = NVML index, PCI order), driver version and CUDA driver version from NVML.

    ``None`` if NVML is absent, does not initialise, or lacks a function im calls (a very old driver).
    ``lib`` is the loaded ``libnvidia-ml`` (default: load it).
    """
    lib = lib if lib is not None else _load_nvml()
    if lib is None:
        return None
    try:
        if lib.nvmlInit_v2() != 0:
            return None
    except AttributeError:
        return None
    try:
        return _nvml_query(lib)
    except AttributeError:
        return None
    finally:
        lib.nvmlShutdown()


def _nvml_query(lib: Any) -> tuple[list[GpuInfo], str | None, str | None]:
    buf = ctypes.create_string_buffer(96)
    driver = buf.value.decode() if lib.nvmlSystemGetDriverVersion(buf, 96) == 0 else None
    cuda = ctypes.c_int()
    cuda_version = None
    if lib.nvmlSystemGetCudaDriverVersion_v2(ctypes.byref(cuda)) == 0:
        cuda_version = f"{cuda.value // 1000}.{cuda.value % 1000 // 10}"
    count = ctypes.c_uint()
    if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
        return [], driver, cuda_version
    gpus = []
    for i in range(count.value):
        handle = ctypes.c_void_p()
        if lib.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(handle)) != 0:
            continue
        name = buf.value.decode() if lib.nvmlDeviceGetName(handle, buf, 96) == 0 else "NVIDIA GPU"
        uuid = buf.value.decode() if lib.nvmlDeviceGetUUID(handle, buf, 96) == 0 else None
        major, minor = ctypes.c_int(), ctypes.c_int()
        cc = None
        if lib.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor)) == 0:
            cc = f"{major.value}.{minor.value}"
        mem = _NvmlMemory()
        mib = mem.total // 2**20 if lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(mem)) == 0 else None
        gpus.append(GpuInfo(i, name, cc, mib, uuid))
    return gpus, driver, cuda_version


def _gpus_from_proc(root: Path = Path("/proc/driver/nvidia/gpus")) -> list[GpuInfo]:
    """GPUs from the kernel module's ``<pci bus id>/information`` files, in PCI order (name and UUID only)."""
    out: list[GpuInfo] = []
    if root.is_dir():
        for i, d in enumerate(sorted(root.iterdir())):
            try:
                text = (d / "information").read_text()
            except OSError:
                continue
            info = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)}
            out.append(GpuInfo(i, info.get("Model") or "NVIDIA GPU", uuid=info.get("GPU UUID") or None))
    return out


@functools.lru_cache(maxsize=1)
def detect_gpus() -> tuple[tuple[GpuInfo, ...], str | None, str | None]:
    """NVIDIA GPUs visible to this process, the driver version and the CUDA version the driver supports."""
    result = _nvml()
    if result is not None:
        gpus, driver, cuda = result
        return tuple(_respect_visible_devices(gpus)), driver, cuda
    return tuple(_respect_visible_devices(_gpus_from_proc())), _driver_from_proc(), None


def _respect_visible_devices(gpus: list[GpuInfo]) -> list[GpuInfo]:
    return visible_gpus(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))


def visible_gpus(gpus: list[GpuInfo], visible: str | None) -> list[GpuInfo]:
    """The GPUs CUDA shows a process whose ``CUDA_VISIBLE_DEVICES`` is ``visible``, renumbered from 0.

    Follows CUDA's (and PyTorch's) reading of the variable: unset means every GPU; entries are ordinals
    (``"1,0"``, only the leading digits count: ``"1gpu"`` is 1) or UUIDs (``"GPU-8932f937"``, a unique prefix is
    enough); the list ends at the first entry that is invalid, negative or out of range (so ``""`` and ``"-1"``
    hide every GPU); a repeated device hides them all. ``MIG-`` lists, and UUIDs when the GPUs' UUIDs are unknown,
    cannot be resolved here: every GPU is kept and the runtime decides.
    """
    if visible is None:
        return list(gpus)
    entries = [e.strip() for e in visible.split(",")]
    if entries[0].startswith("MIG-"):
        return list(gpus)
    by_uuid = entries[0].startswith("GPU-")
    if by_uuid and any(g.uuid is None for g in gpus):
        return list(gpus)
    by_ordinal = {g.index: g for g in gpus}
    picked: list[GpuInfo] = []
    for entry in entries:
        if by_uuid:
            matches = [g for g in gpus if entry.startswith("GPU-") and str(g.uuid).startswith(entry)]
            gpu = matches[0] if len(matches) == 1 else None  # unknown or ambiguous: the list ends
        else:
            digits = re.match(r"\+?(\d+)", entry)  # like strtoul: "1gpu" is 1; "-1", "" and "x" end the list
            gpu = by_ordinal.get(int(digits.group(1))) if digits else None
        if gpu is None:
            break
        if gpu in picked:
            return []
        picked.append(gpu)
    return [dataclasses.replace(g, index=i) for i, g in enumerate(picked)]


def collect_compute_environment(*, probe_backends: bool = True) -> ComputeEnvironment:
    """Gather the facts; ``probe_backends`` asks each installed backend plugin for its ``probe()``."""
    gpus, driver, cuda = detect_gpus()
    backends: dict[str, dict[str, Any]] = {}
    broken: list[str] = []
    if probe_backends:
        from im_core._plugins import registry

        reg = registry()
        for name in sorted(reg.backends):
            try:
                probe = reg.backend(name).probe()
                backends[name] = {
                    "available": probe.available,
                    "version": probe.version,
                    "devices": list(probe.devices),
                    "details": dict(probe.details),
                    "reason": probe.reason,
                }
            except Exception as exc:  # report, never crash a diagnostic
                backends[name] = {
                    "available": False,
                    "version": None,
                    "devices": [],
                    "details": {},
                    "reason": f"{type(exc).__name__}: {exc}",
                }
        broken = [f"{b.name} ({b.distribution}): {b.error}" for b in reg.broken]
    return ComputeEnvironment(
        os=_os_name(),
        python=f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        cpu=_cpu_name(),
        cpu_count=os.cpu_count() or 1,
        memory_gib=_memory_gib(),
        gpus=gpus,
        driver_version=driver,
        cuda_driver_version=cuda,
        jetson=_jetson(),
        backends=backends,
        broken_plugins=tuple(broken),
    )
