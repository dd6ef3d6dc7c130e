"""PackageContext answers which network file the negotiated backend runs (``network_file``), for every family."""

from __future__ import annotations

from pathlib import Path

import pytest

from im_core._network_file import backend_file_names
from im_core.errors import CorruptedModelPackageError
from im_core.testing import local_context


def _folder(root: Path, *names: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_bytes(b"x")
    return root


def _ctx(path: Path, backend: str = "onnx", **kw):
    return local_context(path, architecture="image-classifier", task="classification", backend=backend, **kw)


# -- network_file ----------------------------------------------------------------------------------------------


def test_backend_file_names_is_the_one_table():
    assert backend_file_names("onnx") == (("weights.onnx", "model.onnx"), (".onnx",))
    names, suffixes = backend_file_names("torch")
    assert names == ("weights.torchscript", "weights.pt2", "weights.pt", "weights.pth")
    assert {".torchscript", ".pt2", ".pt", ".pth"} <= set(suffixes)
    names, suffixes = backend_file_names("trt")
    assert names == ("engine.plan",) and ".plan" in suffixes
    assert backend_file_names("no-such-backend") == ((), ())


@pytest.mark.parametrize(
    ("backend", "files", "expected"),
    [
        ("onnx", ("model.onnx", "weights.onnx", "weights.pt2"), "weights.onnx"),
        ("onnx", ("model.onnx", "weights.pt2"), "model.onnx"),
        ("torch", ("weights.onnx", "weights.pt2"), "weights.pt2"),  # the negotiated backend's file, not the first
        ("torch", ("weights.pt", "weights.pt2", "weights.torchscript"), "weights.torchscript"),
        ("torch", ("weights.pth",), "weights.pth"),
        ("trt", ("weights.onnx", "engine.plan"), "engine.plan"),
        ("onnx", ("yolov8n-custom.onnx", "class_names.txt"), "yolov8n-custom.onnx"),  # the only .onnx file
        ("torch", ("backbone.pt2", "weights.onnx"), "backbone.pt2"),
        ("trt", ("model.engine",), "model.engine"),
    ],
)
def test_network_file_is_the_backends_preferred_name_else_its_only_file(tmp_path, backend, files, expected):
    assert _ctx(_folder(tmp_path / "pkg", *files), backend).network_file() == expected


def test_a_bare_file_is_its_own_network_file(tmp_path):
    _folder(tmp_path, "weights.onnx", "other.pt2")
    assert _ctx(tmp_path / "other.pt2", "torch").network_file() == "other.pt2"


@pytest.mark.parametrize(
    ("backend", "files", "match"),
    [
        ("torch", ("weights.onnx", "class_names.txt"), r"weights\.torchscript, weights\.pt2.*found none of them"),
        ("onnx", ("a.onnx", "b.onnx"), r"found several \(a\.onnx, b\.onnx\)"),
        ("trt", ("weights.onnx",), r"engine\.plan.*\.plan"),
    ],
)
def test_no_or_several_network_files_say_what_was_looked_for_and_found(tmp_path, backend, files, match):
    with pytest.raises(CorruptedModelPackageError, match=match) as info:
        _ctx(_folder(tmp_path / "pkg", *files), backend).network_file()
    assert f"for the {backend} backend" in info.value.message
    assert all(f in info.value.message for f in files)  # the package's files are listed
