"""PackageContext answers two facts for every family: which network file the negotiated backend runs
(``network_file``) and the model's class names (``class_names``, one precedence for every family)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from im_core._network_file import backend_file_names
from im_core.errors import CorruptedModelPackageError, InvalidParameterError
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


# -- class_names -----------------------------------------------------------------------------------------------


class _Session:
    """Just what ``class_names`` reads of a session: its embedded metadata."""

    def __init__(self, metadata: dict[str, str]) -> None:
        self.metadata = metadata


EMBEDDED = _Session({"names": "{0: 'e0', 1: 'e1', 2: 'e2'}"})


def test_class_names_precedence_override_file_metadata_embedded(tmp_path):
    folder = _folder(tmp_path / "pkg", "weights.onnx")
    assert _ctx(folder).class_names() == ()
    assert _ctx(folder).class_names(EMBEDDED) == ("e0", "e1", "e2")
    ctx = _ctx(folder, class_names=["m0", "m1", "m2"])
    assert ctx.class_names(EMBEDDED) == ("m0", "m1", "m2")
    (folder / "class_names.txt").write_text("f0\n\n f1 \nf2\n")
    assert ctx.class_names(EMBEDDED) == ("f0", "f1", "f2")
    assert replace(ctx, class_names_override=("u0", "u1", "u2")).class_names(EMBEDDED, count=3) == ("u0", "u1", "u2")


def test_embedded_names_formats_and_count(tmp_path):
    ctx = _ctx(_folder(tmp_path / "pkg", "weights.onnx"))
    assert ctx.class_names(_Session({"labels": '["a", "b"]'})) == ("a", "b")
    assert ctx.class_names(_Session({"classes": "a\nb\n"})) == ("a", "b")
    assert ctx.class_names(_Session({"names": "{1: 'b', 0: 'a', 10: 'k'}"})) == ("a", "b", "k")
    assert ctx.class_names(_Session({"names": "not [parsable"})) == ("not [parsable",)
    assert ctx.class_names(_Session({"names": "{broken"})) == ()
    # with a count, embedded lists of another length are skipped (the next key may fit)
    both = _Session({"names": "['a', 'b', 'c']", "character": "x\ny"})
    assert ctx.class_names(both, count=2) == ("x", "y")
    assert ctx.class_names(both, count=5) == ()
    assert ctx.class_names(both, count=0) == ("a", "b", "c")  # a non-positive count is unknown: the family reports it


def test_a_wrong_count_names_its_source(tmp_path):
    folder = _folder(tmp_path / "pkg", "weights.onnx")
    ctx = _ctx(folder, class_names=["m0", "m1"])
    with pytest.raises(CorruptedModelPackageError, match=r"the model metadata lists 2 class names.*has 3 classes"):
        ctx.class_names(count=3)
    (folder / "class_names.txt").write_text("f0\nf1\n")
    with pytest.raises(CorruptedModelPackageError, match=r"class_names\.txt lists 2 class names.*has 3 classes"):
        ctx.class_names(count=3)
    with pytest.raises(InvalidParameterError, match=r"class_names= lists 1 class names.*has 3 classes"):
        replace(ctx, class_names_override=("u0",)).class_names(count=3)


def test_a_bare_file_ignores_a_class_names_txt_beside_it(tmp_path):
    _folder(tmp_path, "model.onnx")
    (tmp_path / "class_names.txt").write_text("unrelated\n")
    assert _ctx(tmp_path / "model.onnx").class_names(EMBEDDED) == ("e0", "e1", "e2")


def test_an_undecodable_class_names_txt_is_a_corrupted_package(tmp_path):
    folder = _folder(tmp_path / "pkg", "weights.onnx")
    (folder / "class_names.txt").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(CorruptedModelPackageError, match=r"not UTF-8.*class_names=\["):
        _ctx(folder).class_names()
