"""A ``.pt2`` file can run code when ``torch.export.load`` opens it; im refuses such archives before torch sees them.

Each hostile archive below carries a payload that creates a marker file when it is unpickled. A control proves the
payload is live (plain ``torch.export.load`` creates the marker, or the archive layout is the one torch unpickles);
then im must refuse the file with a clear error and the marker must not exist.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel
from im_core.errors import ImError, ModelLoadingError

torch = pytest.importorskip("torch")


class _Payload:
    """Unpickling this creates ``marker`` (``os.mkdir(marker)``): a stand-in for any code a file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return os.mkdir, (str(self.marker),)


def _rewrite(src: Path, dst: Path, edit: Callable[[str, dict[str, bytes]], None]) -> Path:
    """Copy the archive ``src`` to ``dst`` with ``edit(root, members)`` applied to its ``{name: bytes}``."""
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    root = next(n for n in members if n.endswith("/archive_format")).split("/")[0]
    edit(root, members)
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return dst


@pytest.fixture(scope="module")
def clean_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x) + torch.tensor([1.0, 2.0])  # a lifted tensor constant, stored as raw bytes

    path = tmp_path_factory.mktemp("pt2") / "clean.pt2"
    torch.export.save(torch.export.export(Net().eval(), (torch.zeros(1, 4),)), path)
    return path


def _opaque_constant(marker: Path) -> Callable[[str, dict[str, bytes]], None]:
    def edit(root: str, members: dict[str, bytes]) -> None:
        key = f"{root}/data/constants/model_constants_config.json"
        config = json.loads(members[key])
        entry = next(iter(config["config"].values()))
        entry["path_name"] = "opaque_obj_0"
        members[key] = json.dumps(config).encode()
        payload = pickle.dumps(_Payload(marker))  # padded to whole float32 elements: torch maps the record first
        members[f"{root}/data/constants/opaque_obj_0"] = payload + b"\0" * (-len(payload) % 8)

    return edit


def _pickled_weight(marker: Path) -> Callable[[str, dict[str, bytes]], None]:
    def edit(root: str, members: dict[str, bytes]) -> None:
        key = f"{root}/data/weights/model_weights_config.json"
        config = json.loads(members[key])
        entry = next(iter(config["config"].values()))
        entry["use_pickle"] = True
        members[key] = json.dumps(config).encode()
        members[f"{root}/data/weights/{entry['path_name']}"] = pickle.dumps(_Payload(marker))

    return edit


def _sample_inputs(marker: Path) -> Callable[[str, dict[str, bytes]], None]:
    def edit(root: str, members: dict[str, bytes]) -> None:
        name = next(n for n in members if n.startswith(f"{root}/data/sample_inputs/"))
        members[name] = pickle.dumps(_Payload(marker))  # torch retries it with weights_only=False

    return edit


def _native_code(marker: Path) -> Callable[[str, dict[str, bytes]], None]:
    def edit(root: str, members: dict[str, bytes]) -> None:
        members[f"{root}/data/aotinductor/model/model.so"] = b"\x7fELF"

    return edit


def _legacy_format(marker: Path) -> Callable[[str, dict[str, bytes]], None]:
    def edit(root: str, members: dict[str, bytes]) -> None:
        for name in [n for n in members if n.endswith(("/archive_format", "/archive_version"))]:
            del members[name]

    return edit


HOSTILE = {
    "opaque-constant": (_opaque_constant, True),
    "pickled-weight": (_pickled_weight, True),
    "sample-inputs-fallback": (_sample_inputs, True),
    "native-code": (_native_code, False),
    "legacy-format": (_legacy_format, False),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_pt2_is_refused_before_any_code_runs(case: str, clean_pt2: Path, tmp_path: Path) -> None:
    from im_backend_torch import TorchBackend

    make, payload_runs_in_torch = HOSTILE[case]
    marker = tmp_path / f"{case}.marker"
    hostile = _rewrite(clean_pt2, tmp_path / f"{case}.pt2", make(marker))
    if payload_runs_in_torch:  # control: the payload is live when torch alone opens the file
        with warnings.catch_warnings(), contextlib.suppress(Exception):  # only whether the payload ran matters
            warnings.simplefilter("ignore")  # torch warns that it fell back to weights_only=False
            torch.export.load(str(hostile))
        assert marker.exists(), "the control payload did not run: the test would prove nothing"
        marker.rmdir()

    with pytest.raises(ImError) as caught:
        TorchBackend().load(hostile, device="cpu")
    assert not marker.exists()
    if case != "sample-inputs-fallback":  # refused by the archive check, with the reason
        assert isinstance(caught.value, ModelLoadingError)
        assert "Refusing to load" in caught.value.message
        assert "run code" in caught.value.message


def test_hostile_pt2_through_automodel_runs_nothing(clean_pt2: Path, tmp_path: Path) -> None:
    marker = tmp_path / "automodel.marker"
    hostile = _rewrite(clean_pt2, tmp_path / "model.pt2", _opaque_constant(marker))
    with pytest.raises(ImError, match=r"Refusing to load model\.pt2"):
        AutoModel.from_pretrained(hostile, architecture="image-embedder", task="embedding")
    assert not marker.exists()


def test_clean_pt2_still_loads_and_runs(clean_pt2: Path) -> None:
    from im_backend_torch import TorchBackend

    session = TorchBackend().load(clean_pt2, device="cpu")
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    out = next(iter(session.run({session.inputs[0].name: x}).values()))
    assert np.asarray(out).shape == (2, 2)
