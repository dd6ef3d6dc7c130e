"""A backend written outside im, registered at run time, is a first-class backend: negotiation ranks it by the
priority its manifest declares, its file suffix loads as a bare file, built-in model families run on it, and
``im negotiate`` shows it selected. Nothing in im-core or im-models names it.

The backend ("fakert") is defined here only: a real ``BackendPlugin`` that runs its ``.fakert`` files (ONNX bytes
under another name) with onnxruntime, reads its own requirement block with its own model, and declares a CPU
priority above ONNX's. Payloads are tiny ONNX colour classifiers built with the ``onnx`` package.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import im_core
from im_core import (
    AutoModel,
    BackendBase,
    BackendManifest,
    BackendProbe,
    BackendRequirements,
    BaseSession,
    BatchLimits,
    ModelPackage,
    TensorSpec,
    Verdict,
)

NAME = "fakert"
CLASSES = ["red", "green", "blue"]


class FakeRtRequirements(BackendRequirements):
    """What a fakert package needs: the highest opset of its graph (this backend runs up to 30)."""

    max_opset: int | None = None


class FakeRtSession(BaseSession):
    backend = NAME
    thread_safety = "lock"

    def __init__(self, path: Path, device: str) -> None:
        super().__init__()
        import onnxruntime as ort

        self._session = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
        self.device = device
        self.inputs = tuple(TensorSpec(i.name, tuple(i.shape), "float32") for i in self._session.get_inputs())
        self.outputs = tuple(TensorSpec(o.name, tuple(o.shape), "float32") for o in self._session.get_outputs())
        self.batch_limits = BatchLimits()
        self.model_metadata = dict(self._session.get_modelmeta().custom_metadata_map)

    def _run_chunk(self, feeds: Mapping[str, Any], output_names: Sequence[str]) -> dict[str, Any]:
        arrays = {k: np.ascontiguousarray(v, np.float32) for k, v in feeds.items()}
        return dict(zip(output_names, self._session.run(list(output_names), arrays)))


class FakeRtBackend(BackendBase):
    name = NAME
    display_name = "FakeRT"
    load_options = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    @staticmethod
    def _do_probe() -> BackendProbe:
        import onnxruntime as ort

        return BackendProbe(NAME, True, f"fake-{ort.__version__}", ("cpu",), {"max_opset": 30})

    def check(self, package: ModelPackage, probe: BackendProbe, device: str) -> Verdict:
        if device != "cpu":
            return Verdict.reject(f"fakert runs on the CPU only; device {device} requested")
        req = FakeRtRequirements.of(package)
        if req.max_opset is not None and req.max_opset > probe.details["max_opset"]:
            return Verdict.reject(f"needs opset {req.max_opset}; fakert runs up to {probe.details['max_opset']}")
        return Verdict.accept()

    def load(self, path: Path, *, device: str, package: ModelPackage | None = None, **options: Any) -> FakeRtSession:
        self.check_options(options)
        self.loaded.append(Path(path).name)
        return FakeRtSession(Path(path), device)

    def inspect(self, path: Path) -> dict[str, str]:
        import onnx

        return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


MANIFEST = BackendManifest(
    name=NAME,
    target=f"{__name__}:FakeRtBackend",
    distribution="fakert-for-im",
    priority={"cpu": 5},  # above ONNX's 2 on the CPU; declares nothing for GPUs
    file_suffixes={".fakert": None},
    weights_files=("weights.fakert",),
    aliases=("fake-rt",),
    requirements=f"{__name__}:FakeRtRequirements",
)


@pytest.fixture
def fakert() -> Iterator[FakeRtBackend]:
    """Register the backend with ``im_core.register``; the process registry is put back afterwards."""
    from im_core import _plugins

    saved, saved_user = _plugins._registry, list(_plugins._user_manifests)
    _plugins._registry = None  # a fresh scan of the installed plugins, to which the test adds its own
    try:
        im_core.register(MANIFEST)
        yield im_core.registry().backend(NAME)
    finally:
        _plugins._registry = saved
        _plugins._user_manifests[:] = saved_user


def colour_net(path: Path, *, metadata: dict[str, str] | None = None) -> Path:
    """A (N,3,H,W) → (N,3) ONNX graph: softmax of ``20 * (mean of channel i - 0.5)``, i = R, G, B of an RGB input."""
    from onnx import TensorProto, helper, numpy_helper, save

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[2, 3], keepdims=0),
        helper.make_node("Sub", ["mean", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "scale"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "colour",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(np.float32(0.5), "half"), numpy_helper.from_array(np.float32(20.0), "scale")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    save(model, str(path))
    return path


def solid(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb[::-1], np.uint8), (40, 56, 3)).copy()  # BGR


IMAGES = [solid((230, 20, 30)), solid((10, 240, 40)), solid((20, 30, 250))]


@pytest.fixture
def registry_dir(tmp_path: Path, fakert: FakeRtBackend) -> Path:
    """A local registry with the same colour classifier as an ONNX package and as a fakert package."""
    from im_providers import add_to_registry

    onnx_file = colour_net(tmp_path / "weights.onnx")
    fakert_file = tmp_path / "weights.fakert"
    shutil.copyfile(onnx_file, fakert_file)
    root = tmp_path / "registry"
    common = {"model_id": "test/colour", "architecture": "image-classifier", "task": "classification"}
    add_to_registry(root, **common, files=[onnx_file], package_id="onnx-fp32", class_names=CLASSES, opset=17)
    add_to_registry(
        root,
        **common,
        files=[fakert_file],
        backend=NAME,
        package_id="fakert-fp32",
        class_names=CLASSES,
        manifest_extra={"requirements": {"max_opset": 17}},
    )
    return root


def test_negotiation_ranks_the_registered_backend_by_its_declared_priority(registry_dir: Path, fakert) -> None:
    opts: dict[str, Any] = {"weights_provider": "local", "provider_options": {"root": str(registry_dir)}}
    report = AutoModel.negotiate("test/colour", device="cpu", **opts)
    assert [(v.package_id, v.backend, v.rank) for v in report.ranked] == [
        ("fakert-fp32", NAME, 1),
        ("onnx-fp32", "onnx", 2),
    ]
    assert report.selected.device == "cpu"
    # the package's requirement block travelled through the registry untouched, and the backend reads it
    fakert_package = AutoModel.describe_model("test/colour", print_output=False, **opts).package("fakert-fp32")
    assert fakert_package.requirements == {"max_opset": 17}
    assert FakeRtRequirements.of(fakert_package).max_opset == 17
    # an alias the manifest declares selects it too; a GPU is not its device
    assert AutoModel.negotiate("test/colour", device="cpu", backend="fake-rt", **opts).selected.backend == NAME

    model = AutoModel.from_pretrained("test/colour", device="cpu", **opts)
    assert (model.metadata.backend, model.metadata.package_id) == (NAME, "fakert-fp32")
    assert fakert.loaded == ["weights.fakert"]
    onnx_model = AutoModel.from_pretrained("test/colour", device="cpu", backend="onnx", **opts)
    assert onnx_model.metadata.backend == "onnx"
    got, want = model(IMAGES), onnx_model(IMAGES)
    assert [c.class_name for c in got] == CLASSES
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.confidence, b.confidence, rtol=1e-6, atol=1e-7)


def test_a_package_whose_block_the_backend_cannot_read_is_rejected_with_the_reason(fakert) -> None:
    from im_core import ModelMetadata

    metadata = ModelMetadata(
        model_id="m/1",
        architecture="image-classifier",
        task="classification",
        packages=(
            ModelPackage(package_id="too-new", backend=NAME, requirements={"max_opset": 31}),
            ModelPackage(package_id="unreadable", backend=NAME, requirements={"max_opset": "many"}),
            ModelPackage(package_id="fine", backend=NAME),
        ),
    )
    from im_core._negotiation import negotiate_packages

    report = negotiate_packages(metadata, device="cpu")
    reasons = {v.package_id: v.reason for v in report.verdicts}
    assert reasons["fine"] is None
    assert reasons["too-new"] == "needs opset 31; fakert runs up to 30"
    assert "fakert requirements" in reasons["unreadable"] and "max_opset" in reasons["unreadable"]


def test_without_registration_the_backend_is_unknown_and_the_hint_is_generic(registry_dir: Path) -> None:
    from im_core import _plugins

    report = AutoModel.negotiate(
        "test/colour", device="cpu", weights_provider="local", provider_options={"root": str(registry_dir)}
    )
    assert report.selected.backend == NAME  # the fixture registered it
    _plugins._registry = _plugins.PluginRegistry()
    _plugins._registry.scan()  # the installed plugins only
    report = AutoModel.negotiate(
        "test/colour", device="cpu", weights_provider="local", provider_options={"root": str(registry_dir)}
    )
    assert report.selected.backend == "onnx"
    reason = {v.package_id: v.reason for v in report.verdicts}["fakert-fp32"]
    assert "Unknown backend 'fakert'" in reason and "im_core.register()" in reason


def test_a_bare_file_with_its_suffix_loads_through_a_builtin_family(tmp_path: Path, fakert) -> None:
    path = tmp_path / "colour.fakert"
    shutil.copyfile(colour_net(tmp_path / "colour.onnx"), path)
    model = AutoModel.from_pretrained(path, architecture="image-classifier", task="classification", class_names=CLASSES)
    assert (model.metadata.backend, model.metadata.package_id, model.metadata.device) == (NAME, "local", "cpu")
    reference = AutoModel.from_pretrained(
        tmp_path / "colour.onnx", architecture="image-classifier", task="classification", class_names=CLASSES
    )
    assert reference.metadata.backend == "onnx"
    got, want = model(IMAGES), reference(IMAGES)
    assert [c.class_name for c in got] == CLASSES
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.confidence, b.confidence, rtol=1e-6, atol=1e-7)
    assert fakert.loaded == ["colour.fakert"]


def test_a_bare_file_is_recognised_by_sniffing_the_metadata_the_backend_reads(tmp_path: Path, fakert) -> None:
    """An Ultralytics-style classification export renamed ``.fakert``: the backend's ``inspect`` hands its metadata
    to the YOLO family's sniffer, so no architecture or task is given."""
    names = {0: "red", 1: "green", 2: "blue"}
    metadata = {"author": "Ultralytics", "task": "classify", "names": repr(names), "imgsz": "[32, 32]", "stride": "32"}
    path = colour_net(tmp_path / "yolo-cls.fakert", metadata=metadata)
    model = AutoModel.from_pretrained(path)
    assert (model.metadata.architecture, model.metadata.task, model.metadata.backend) == (
        "yolov8",
        "classification",
        NAME,
    )
    assert [c.class_name for c in model(IMAGES)] == CLASSES


def test_a_folder_with_its_weights_file_loads_with_it(tmp_path: Path, fakert) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    shutil.copyfile(colour_net(tmp_path / "c.onnx"), folder / "weights.fakert")
    (folder / "class_names.txt").write_text("\n".join(CLASSES))
    (folder / "model_config.json").write_text(
        json.dumps({"model_architecture": "image-classifier", "task_type": "classification"})
    )
    from im_core._local import local_metadata

    (package,) = local_metadata(folder, {})[0].packages
    assert package.backend == NAME and package.requirements == {}
    # backend_type may use an alias the backend declares
    (folder / "model_config.json").write_text(
        json.dumps({"model_architecture": "image-classifier", "task_type": "classification", "backend_type": "fake-rt"})
    )
    assert local_metadata(folder, {})[0].packages[0].backend == NAME


def test_im_negotiate_explains_the_choice(
    registry_dir: Path, fakert, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from im_core.cli import main

    monkeypatch.setenv("COLUMNS", "200")  # rich tables: no folding of the verdict column

    common = ["test/colour", "--provider", "local", "--registry", str(registry_dir), "--device", "cpu"]
    assert main(["negotiate", *common, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(p["package_id"], p["backend"], p["rank"]) for p in report["packages"]] == [
        ("fakert-fp32", NAME, 1),
        ("onnx-fp32", "onnx", 2),
    ]
    assert main(["negotiate", *common]) == 0
    out = capsys.readouterr().out
    assert "fakert-fp32" in out and "selected on cpu" in out and "#2 on cpu" in out
    assert main(["describe-package", "test/colour", "fakert-fp32", *common[1:5]]) == 0
    assert "fakert requirements" in capsys.readouterr().out
