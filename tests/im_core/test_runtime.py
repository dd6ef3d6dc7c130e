"""GPU discovery without a GPU: CUDA_VISIBLE_DEVICES as CUDA reads it, the /proc fallback and NVML through a fake
library (the C library is the collaborator; the logic around it is what is tested)."""

from __future__ import annotations

from pathlib import Path

import pytest

from im_core import _runtime
from im_core._runtime import GpuInfo, visible_gpus

UUIDS = ["GPU-8932f937-d72c-4106-c12f-20bd9faed9f6", "GPU-8932aaaa-0000-0000-0000-000000000000", "GPU-12345678-abcd"]
GPUS = [GpuInfo(i, f"NVIDIA GPU {i}", "9.0", 1000 * (i + 1), UUIDS[i]) for i in range(3)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, [0, 1, 2]),  # unset: every GPU
        ("", []),  # set but empty: none
        ("-1", []),  # the usual way to hide every GPU
        ("1", [1]),
        ("2,0", [2, 0]),  # order as given, renumbered from 0
        (" 1 , 0 ", [1, 0]),
        ("0,5,1", [0]),  # the list ends at an out-of-range ordinal
        ("0,-1,1", [0]),  # ... or a negative one
        ("0,x,1", [0]),  # ... or garbage
        ("1gpu", [1]),  # leading digits, like strtoul
        ("+2", [2]),
        ("0,0", []),  # a repeated device hides them all
        ("3", []),
        ("GPU-12345678-abcd", [2]),  # UUIDs
        ("GPU-12345678,GPU-8932f937", [2, 0]),  # unique prefixes
        ("GPU-8932,GPU-12345678", []),  # an ambiguous prefix ends the list at once
        ("GPU-12345678,GPU-8932", [2]),
        ("GPU-12345678,1", [2]),  # an ordinal after UUIDs ends the list
        ("GPU-12345678,GPU-12345678-abcd", []),  # the same device twice
        ("GPU-ffffffff", []),
    ],
)
def test_visible_gpus_follows_cuda(value: str | None, expected: list[int]) -> None:
    got = visible_gpus(GPUS, value)
    assert [g.uuid for g in got] == [UUIDS[i] for i in expected]
    assert [g.index for g in got] == list(range(len(expected)))
    assert [g.memory_mib for g in got] == [GPUS[i].memory_mib for i in expected]


def test_unresolvable_lists_keep_every_gpu() -> None:
    no_uuid = [GpuInfo(0, "a"), GpuInfo(1, "b")]
    assert visible_gpus(no_uuid, "GPU-8932f937") == no_uuid  # UUIDs unknown (/proc without them)
    assert visible_gpus(GPUS, "MIG-4f2e0b7c-1111-2222-3333-444455556666") == GPUS  # MIG instances


def test_ordinals_are_nvml_indices_even_with_a_gap() -> None:
    """A GPU NVML could not open leaves a gap; ordinal 2 is still the third device, not 'out of range'."""
    gpus = [GpuInfo(0, "a"), GpuInfo(2, "c")]
    assert [g.name for g in visible_gpus(gpus, "2")] == ["c"]
    assert visible_gpus(gpus, "1,0") == []


@pytest.fixture
def no_nvml(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(_runtime, "_nvml", lambda lib=None: None)
    _runtime.detect_gpus.cache_clear()
    yield
    _runtime.detect_gpus.cache_clear()


def _proc_tree(root: Path) -> Path:
    gpus = root / "gpus"
    for bus, model, uuid in (("0000:3b:00.0", "NVIDIA H200", "GPU-aaaa"), ("0000:86:00.0", "NVIDIA H200", "GPU-bbbb")):
        (gpus / bus).mkdir(parents=True)
        (gpus / bus / "information").write_text(
            f"Model: \t\t {model}\nIRQ:   \t\t 123\nGPU UUID: \t {uuid}\nVideo BIOS: \t 96.00.74.00.01\n"
            f"Bus Type: \t PCIe\nBus Location: \t {bus}\nDevice Minor: \t 0\nGPU Excluded:\t No\n"
        )
    (gpus / "0000:99:00.0").mkdir()  # no information file: skipped, but keeps its ordinal
    (root / "version").write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  (dvs-builder@U16)  "
        "Tue Mar  5 22:15:33 UTC 2024\nGCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n"
    )
    return root


def test_proc_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_nvml) -> None:
    root = _proc_tree(tmp_path)
    gpus = _runtime._gpus_from_proc(root / "gpus")
    assert [(g.index, g.name, g.uuid) for g in gpus] == [(0, "NVIDIA H200", "GPU-aaaa"), (1, "NVIDIA H200", "GPU-bbbb")]
    assert _runtime._driver_from_proc(root / "version") == "550.54.15"
    assert _runtime._driver_from_proc(tmp_path / "missing") is None
    assert _runtime._gpus_from_proc(tmp_path / "missing") == []
    monkeypatch.setattr(_runtime, "_gpus_from_proc", lambda: gpus)
    monkeypatch.setattr(_runtime, "_driver_from_proc", lambda: "550.54.15")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb")
    found, driver, cuda = _runtime.detect_gpus()
    assert [(g.index, g.uuid) for g in found] == [(0, "GPU-bbbb")] and driver == "550.54.15" and cuda is None
    _runtime.detect_gpus.cache_clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert _runtime.detect_gpus()[0] == ()


class FakeNvml:
    """Python stand-ins for the libnvidia-ml functions im calls (ctypes ``byref`` arguments are honoured)."""

    def __init__(self, devices: list[dict], *, init: int = 0, missing: tuple[str, ...] = ()) -> None:
        self.devices, self.init, self.shutdowns = devices, init, 0
        for name in missing:
            setattr(self, name, None)

    def __getattribute__(self, name: str):
        value = object.__getattribute__(self, name)
        if value is None and name.startswith("nvml"):
            raise AttributeError(name)  # what ctypes raises for a symbol the library lacks
        return value

    def nvmlInit_v2(self) -> int:
        return self.init

    def nvmlShutdown(self) -> int:
        self.shutdowns += 1
        return 0

    def nvmlSystemGetDriverVersion(self, buf, size) -> int:
        buf.value = b"550.54.15"
        return 0

    def nvmlSystemGetCudaDriverVersion_v2(self, ref) -> int:
        ref._obj.value = 12040
        return 0

    def nvmlDeviceGetCount_v2(self, ref) -> int:
        ref._obj.value = len(self.devices)
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, i, ref) -> int:
        if self.devices[i] is None:
            return 15  # NVML_ERROR_GPU_IS_LOST
        ref._obj.value = 1000 + i
        return 0

    def _dev(self, handle) -> dict:
        return self.devices[handle.value - 1000]

    def nvmlDeviceGetName(self, handle, buf, size) -> int:
        buf.value = self._dev(handle)["name"].encode()
        return 0

    def nvmlDeviceGetUUID(self, handle, buf, size) -> int:
        buf.value = self._dev(handle)["uuid"].encode()
        return 0

    def nvmlDeviceGetCudaComputeCapability(self, handle, major, minor) -> int:
        major._obj.value, minor._obj.value = self._dev(handle)["cc"]
        return 0

    def nvmlDeviceGetMemoryInfo(self, handle, ref) -> int:
        ref._obj.total = self._dev(handle)["mib"] << 20
        return 0


H200 = {"name": "NVIDIA H200", "uuid": "GPU-aaaa", "cc": (9, 0), "mib": 143771}


def test_nvml_reads_every_device_and_shuts_down() -> None:
    lib = FakeNvml([H200, None, {**H200, "uuid": "GPU-cccc", "name": "NVIDIA L4", "cc": (8, 9), "mib": 23034}])
    gpus, driver, cuda = _runtime._nvml(lib)
    assert (driver, cuda) == ("550.54.15", "12.4")
    assert gpus == [
        GpuInfo(0, "NVIDIA H200", "9.0", 143771, "GPU-aaaa"),
        GpuInfo(2, "NVIDIA L4", "8.9", 23034, "GPU-cccc"),  # device 1 is lost: skipped, ordinals kept
    ]
    assert lib.shutdowns == 1
    assert [g.name for g in visible_gpus(gpus, "2")] == ["NVIDIA L4"]


def test_nvml_failures_fall_back_cleanly() -> None:
    assert _runtime._nvml(FakeNvml([H200], init=1)) is None  # NVML_ERROR_UNINITIALIZED: no shutdown owed
    old = FakeNvml([H200], missing=("nvmlSystemGetCudaDriverVersion_v2",))  # a driver too old for a symbol
    assert _runtime._nvml(old) is None and old.shutdowns == 1
    assert _runtime._nvml(FakeNvml([H200], missing=("nvmlInit_v2",))) is None


@pytest.mark.gpu
def test_visible_devices_agree_with_the_cuda_runtime() -> None:
    """On a GPU machine: im's count of visible GPUs equals what the CUDA runtime (through torch) reports."""
    import json
    import os
    import subprocess
    import sys

    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    first = _runtime.detect_gpus()[0][0]
    code = (
        "import json, torch\n"
        "from im_core._runtime import detect_gpus\n"
        "print(json.dumps([len(detect_gpus()[0]), torch.cuda.device_count()]))\n"
    )
    values = [None, "", "-1", "0", "0,-1", "x", "99"] + ([first.uuid, first.uuid[:12]] if first.uuid else [])
    for value in values:
        env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
        if value is not None:
            env["CUDA_VISIBLE_DEVICES"] = value
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        ours, cuda = json.loads(out.stdout.strip().splitlines()[-1])
        assert ours == cuda, f"CUDA_VISIBLE_DEVICES={value!r}: im sees {ours}, CUDA {cuda}"
