"""The max-opset probe is stored under IM_HOME per onnxruntime build, and re-probed when that file is unusable."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime as ort
import pytest

from im_backend_onnx import _ort
from im_backend_onnx._ort import cached_max_opset, max_opset, probe_max_opset, runtime_fingerprint


def _no_probe(*_: object) -> bool:
    raise AssertionError("the opset was probed although a valid cached value exists")


def _stored(home: Path) -> list[Path]:
    return sorted((home / "probes").glob("*")) if (home / "probes").is_dir() else []


def test_first_call_probes_and_stores_then_later_calls_read_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = probe_max_opset(ort)
    assert real >= 17
    assert cached_max_opset(ort, tmp_path) == real
    files = _stored(tmp_path)
    assert len(files) == 1 and files[0].suffix == ".json"  # no temp files left behind
    data = json.loads(files[0].read_text())
    assert data["max_opset"] == real and data["runtime"]["version"] == ort.__version__
    monkeypatch.setattr(_ort, "_accepts", _no_probe)
    assert cached_max_opset(ort, tmp_path) == real


def test_max_opset_uses_the_file_in_im_home(monkeypatch: pytest.MonkeyPatch) -> None:
    # a value ORT would never report (it supports far more than 9) proves the answer came from the file
    from im_core._config import settings

    fingerprint = runtime_fingerprint(ort)
    path = _ort._cache_file(settings().home, fingerprint)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": _ort._CACHE_FORMAT, "runtime": fingerprint, "max_opset": 9}))
    monkeypatch.setattr(_ort, "_accepts", _no_probe)
    _ort._max_opset.cache_clear()
    try:
        assert max_opset() == 9
    finally:
        _ort._max_opset.cache_clear()


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        b"\xff\xfe\x00".decode("latin-1"),
        "[]",
        json.dumps({"format": 999, "max_opset": 9}),
        json.dumps({"format": 1, "runtime": {"version": "0.0.1"}, "max_opset": 9}),  # another build
        "RUNTIME:0",  # out of range
        "RUNTIME:true",  # a bool is not an opset
        'RUNTIME:"21"',
    ],
    ids=["truncated", "binary", "list", "format", "other-build", "zero", "bool", "string"],
)
def test_corrupt_or_foreign_files_are_re_probed_and_rewritten(tmp_path: Path, content: str) -> None:
    fingerprint = runtime_fingerprint(ort)
    path = _ort._cache_file(tmp_path, fingerprint)
    path.parent.mkdir(parents=True)
    if content.startswith("RUNTIME:"):
        value = json.loads(content.removeprefix("RUNTIME:"))
        content = json.dumps({"format": _ort._CACHE_FORMAT, "runtime": fingerprint, "max_opset": value})
    path.write_text(content, encoding="latin-1")
    real = probe_max_opset(ort)
    assert cached_max_opset(ort, tmp_path) == real
    assert json.loads(path.read_text())["max_opset"] == real


def test_another_onnxruntime_build_gets_its_own_file(tmp_path: Path) -> None:
    mine = runtime_fingerprint(ort)
    other = {**mine, "version": "0.0.1"}
    rebuilt = {**mine, "size": mine["size"] + 1}
    names = {_ort._cache_file(tmp_path, fp).name for fp in (mine, other, rebuilt)}
    assert len(names) == 3
    assert mine["library"] and mine["size"] > 0 and mine["build"] == ort.get_build_info()


def test_unwritable_im_home_still_answers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file where the cache folder should be")
    assert cached_max_opset(ort, home) == probe_max_opset(ort)


def test_a_failed_probe_is_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ort, "_accepts", lambda *_: False)
    assert cached_max_opset(ort, tmp_path) == 0
    assert _stored(tmp_path) == []
