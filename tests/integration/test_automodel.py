"""AutoModel end to end: bare files, package folders, registries over loopback HTTP, fallback, dependencies."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel, Detections, ModelEntry, ModelsManifest, register
from im_core._config import reload_settings
from im_core.errors import (
    AllPackagesFailedError,
    CorruptedModelPackageError,
    DependencyModelError,
    InvalidParameterError,
    ModelLoadingError,
    ModelNotFoundError,
    NoCompatiblePackageError,
    OfflineModeError,
    PluginError,
)

pytestmark = pytest.mark.weights


def _image(asset):
    import cv2

    return cv2.imread(str(asset("images/astronaut.png")))


def _faces(dets: Detections) -> Detections:
    return dets[np.array([n.startswith("FACE") for n in dets.names], dtype=bool)]


def _yolo_folder(asset, folder: Path) -> Path:
    """A Roboflow-layout package folder built from the pinned Ultralytics export."""
    folder.mkdir(parents=True)
    shutil.copy(asset("yolo/nudenet_320n.onnx"), folder / "weights.onnx")
    names = AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx")).class_names
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    (folder / "model_config.json").write_text(
        json.dumps({"model_architecture": "yolov8", "task_type": "object-detection", "backend_type": "onnx"})
    )
    (folder / "inference_config.json").write_text(
        json.dumps(
            {
                "network_input": {
                    "training_input_size": {"height": 320, "width": 320},
                    "dynamic_spatial_size_supported": False,
                    "color_mode": "rgb",
                    "resize_mode": "letterbox",
                    "padding_value": 114,
                    "input_channels": 3,
                    "scaling_factor": 255,
                },
                "forward_pass": {"max_dynamic_batch_size": 8},
                "post_processing": {"type": "nms", "fused": False},
            }
        )
    )
    return folder


def test_bare_ultralytics_onnx_loads_with_no_arguments_and_finds_the_face(asset):
    model = AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))
    meta = model.metadata
    assert (meta.architecture, meta.task, meta.backend, meta.device) == ("yolov8", "object-detection", "onnx", "cpu")
    assert len(meta.class_names) == 18 and "FACE_FEMALE" in meta.class_names
    faces = _faces(model(_image(asset)))
    assert len(faces) >= 1
    x1, y1, x2, y2 = faces.xyxy[0]
    # Eileen Collins' face in the 512x512 photograph lies around x 170-250, y 60-160.
    assert 140 < (x1 + x2) / 2 < 280 and 40 < (y1 + y2) / 2 < 180
    assert "yolov8" in repr(model) and "onnx" in repr(model)


def test_roboflow_layout_folder_and_registry_package_give_identical_results(asset, tmp_path, serve_folder):
    from im_providers import add_to_registry

    folder = _yolo_folder(asset, tmp_path / "pkg")
    from_folder = AutoModel.from_pretrained(folder)
    assert from_folder.metadata.package_id == "local"
    registry = tmp_path / "registry"
    add_to_registry(
        registry,
        model_id="demo/yolo-faces",
        architecture="yolov8",
        task="object-detection",
        files=sorted(p for p in folder.iterdir() if p.name != "model_config.json"),
        backend="onnx",
        package_id="onnx-fp32",
    )
    url, seen = serve_folder(registry)
    from_registry = AutoModel.from_pretrained(
        "demo/yolo-faces", weights_provider="http", provider_options={"root": url}
    )
    assert from_registry.metadata.package_id == "onnx-fp32"
    image = _image(asset)
    a, b = from_folder(image), from_registry(image)
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-4)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-6)
    assert a.names == b.names and len(_faces(a)) >= 1
    assert any(p.endswith("weights.onnx") for p in seen)


def test_fallback_when_the_top_ranked_package_is_corrupt(asset, tmp_path, serve_folder, caplog):
    from im_providers import add_to_registry

    folder = _yolo_folder(asset, tmp_path / "pkg")
    files = sorted(p for p in folder.iterdir() if p.name != "model_config.json")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in files:
        shutil.copy(f, broken / f.name)
    (broken / "weights.onnx").write_bytes(b"\x08\x07 this is not an onnx graph" * 100)
    registry = tmp_path / "registry"
    # "a-broken" ranks first (same backend/quantization, ties broken by id); its hash is right, its content is not.
    add_to_registry(
        registry,
        model_id="demo/fallback",
        architecture="yolov8",
        task="object-detection",
        files=sorted(broken.iterdir()),
        package_id="a-broken",
    )
    add_to_registry(
        registry,
        model_id="demo/fallback",
        architecture="yolov8",
        task="object-detection",
        files=files,
        package_id="b-good",
    )
    url, _ = serve_folder(registry)
    report = AutoModel.negotiate("demo/fallback", weights_provider="http", provider_options={"root": url})
    assert [v.package_id for v in report.ranked] == ["a-broken", "b-good"]
    with caplog.at_level(logging.WARNING, logger="im"):
        model = AutoModel.from_pretrained("demo/fallback", weights_provider="http", provider_options={"root": url})
    assert model.metadata.package_id == "b-good"
    assert any("a-broken" in r.getMessage() and "trying the next" in r.getMessage() for r in caplog.records)


def test_all_candidates_failing_lists_every_attempt(asset, tmp_path):
    folder = _yolo_folder(asset, tmp_path / "pkg")
    (folder / "weights.onnx").write_bytes(b"garbage")
    with pytest.raises(AllPackagesFailedError, match=r"local \[onnx on cpu\]"):
        AutoModel.from_pretrained(folder)


def test_a_bare_file_without_metadata_says_which_arguments_to_pass(asset):
    with pytest.raises(InvalidParameterError, match=r"architecture=.*task="):
        AutoModel.from_pretrained(asset("face/centerface.onnx"))


def test_no_compatible_package_error_contains_the_report(asset):
    with pytest.raises(NoCompatiblePackageError) as info:
        AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), backend="trt")
    assert "rejected - backend 'onnx' is not among the requested ['trt']" in str(info.value)


_COMPOSITE = '''
from im_core import ObjectDetectionModel


class Composite(ObjectDetectionModel):
    """Test family: delegates to its 'detector' dependency (shows dependencies are injected by name)."""

    @classmethod
    def from_package(cls, ctx):
        self = cls()
        self.detector = ctx.dependencies["detector"]
        self.metadata = ctx.info(self.detector.class_names, marker=ctx.read_json("composite.json")["marker"])
        return self

    def pre_process(self, images, **params):
        return images

    def forward(self, prepared):
        return prepared

    def post_process(self, raw, prepared, **params):
        return self.detector.run_images(raw, **params)
'''


@pytest.fixture
def composite_family(tmp_path, monkeypatch):
    module_dir = tmp_path / "plugins"
    module_dir.mkdir()
    (module_dir / "composite_family_for_tests.py").write_text(textwrap.dedent(_COMPOSITE))
    monkeypatch.syspath_prepend(str(module_dir))
    register(
        ModelsManifest(
            (ModelEntry(("composite-test",), "object-detection", "composite_family_for_tests:Composite"),), "tests"
        ),
        replace=True,
    )
    yield
    sys.modules.pop("composite_family_for_tests", None)


def test_dependent_model_loads_end_to_end_from_a_loopback_registry_then_offline(
    asset, tmp_path, serve_folder, composite_family, monkeypatch
):
    from im_providers import add_to_registry

    registry = tmp_path / "registry"
    folder = _yolo_folder(asset, tmp_path / "pkg")
    files = sorted(p for p in folder.iterdir() if p.name != "model_config.json")
    for pid in ("dyn", "other"):
        add_to_registry(
            registry,
            model_id="demo/detector",
            architecture="yolov8",
            task="object-detection",
            files=files,
            package_id=pid,
        )
    spec = tmp_path / "composite.json"
    spec.write_text(json.dumps({"marker": 42}))
    add_to_registry(
        registry,
        model_id="demo/composite",
        architecture="composite-test",
        task="object-detection",
        files=[spec],
        package_id="main",
        dependencies=[{"name": "detector", "model_id": "demo/detector"}],
    )
    url, _ = serve_folder(registry)
    kwargs = {"weights_provider": "http", "provider_options": {"root": url}}
    model = AutoModel.from_pretrained(
        "demo/composite", dependency_models_params={"detector": {"model_package_id": "other"}}, **kwargs
    )
    assert model.metadata.extra == {"marker": 42}
    assert model.detector.metadata.package_id == "other"  # the per-dependency parameter was honoured
    online = model(_image(asset))
    assert len(_faces(online)) >= 1

    with pytest.raises(Exception, match="declares"):
        AutoModel.from_pretrained("demo/composite", dependency_models_params={"nope": {}}, **kwargs)

    # Offline, with every socket connection refused: the cached model and its dependency reload.
    monkeypatch.setenv("IM_OFFLINE", "1")
    reload_settings()

    def no_network(*args, **kwargs):
        raise AssertionError("offline mode opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    again = AutoModel.from_pretrained(
        "demo/composite", dependency_models_params={"detector": {"model_package_id": "other"}}, **kwargs
    )
    np.testing.assert_allclose(again(_image(asset)).xyxy, online.xyxy)
    with pytest.raises(OfflineModeError):
        AutoModel.from_pretrained("demo/never-cached", **kwargs)


def test_preloaded_dependency_instances_are_used_as_given(asset, tmp_path, serve_folder, composite_family):
    from im_providers import add_to_registry

    registry = tmp_path / "registry"
    spec = tmp_path / "composite.json"
    spec.write_text(json.dumps({"marker": 1}))
    add_to_registry(
        registry,
        model_id="demo/composite",
        architecture="composite-test",
        task="object-detection",
        files=[spec],
        package_id="main",
        dependencies=[{"name": "detector", "model_id": "demo/absent"}],
    )
    url, _ = serve_folder(registry)
    detector = AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))
    model = AutoModel.from_pretrained(
        "demo/composite",
        weights_provider="http",
        provider_options={"root": url},
        dependency_models_params={"detector": detector},
    )
    assert model.detector is detector


def test_session_options_reach_the_backend(asset):
    model = AutoModel.from_pretrained(
        asset("yolo/nudenet_320n.onnx"), session_options={"intra_op_num_threads": 1, "allow_spinning": False}
    )
    assert len(_faces(model(_image(asset)))) >= 1
    with pytest.raises(InvalidParameterError, match="nonsense"):
        AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), session_options={"nonsense": 1})


def test_two_registries_with_the_same_model_id_keep_separate_offline_snapshots(
    asset, tmp_path, serve_folder, monkeypatch
):
    from im_providers import add_to_registry

    urls = []
    for name, weights in (("a", "face/blazeface_front_128.onnx"), ("b", "face/blazeface_back_256.onnx")):
        root = tmp_path / name
        add_to_registry(
            root,
            model_id="faces/detector",
            architecture="mediapipe-face-detector",
            task="object-detection",
            files=[asset(weights)],
            package_id="onnx",
            class_names=["face"],
        )
        urls.append(serve_folder(root)[0])
    online = [
        AutoModel.from_pretrained("faces/detector", weights_provider="http", provider_options={"root": u}) for u in urls
    ]
    monkeypatch.setenv("IM_OFFLINE", "1")
    reload_settings()
    for url, model in zip(urls, online):
        again = AutoModel.from_pretrained("faces/detector", weights_provider="http", provider_options={"root": url})
        assert again.metadata.package_id == model.metadata.package_id
        np.testing.assert_allclose(again(_image(asset)).xyxy, model(_image(asset)).xyxy)
    assert not np.allclose(online[0](_image(asset)).xyxy, online[1](_image(asset)).xyxy)


# -- torch files and folders -------------------------------------------------------------------------------------

_EMBEDDER = {"architecture": "mobilenetv2-backbone", "task": "embedding"}


def _embed(model, asset) -> np.ndarray:
    out = model(_image(asset))
    vectors = np.asarray(out.vectors)
    assert vectors.shape == (1, 1280) and np.isfinite(vectors).all()
    return vectors


def test_bare_torchscript_and_pt2_files_load_with_architecture_and_task(asset, mobilenet_exports):
    ts = AutoModel.from_pretrained(mobilenet_exports["torchscript"], **_EMBEDDER)
    pt2 = AutoModel.from_pretrained(mobilenet_exports["pt2"], **_EMBEDDER)
    onnx = AutoModel.from_pretrained(mobilenet_exports["onnx"], **_EMBEDDER)
    assert (ts.metadata.backend, pt2.metadata.backend, onnx.metadata.backend) == ("torch", "torch", "onnx")
    reference = _embed(onnx, asset)
    np.testing.assert_allclose(_embed(ts, asset), reference, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_embed(pt2, asset), reference, rtol=1e-4, atol=1e-5)


def test_a_pt_file_is_a_state_dict_or_torchscript_by_its_contents(asset, tmp_path, mobilenet_exports):
    """The embedding family passes its module for ``.pt`` files; the backend tells a state dict from TorchScript."""
    scripted = tmp_path / "scripted.pt"
    shutil.copy(mobilenet_exports["torchscript"], scripted)
    from_script = AutoModel.from_pretrained(scripted, **_EMBEDDER)
    from_state = AutoModel.from_pretrained(mobilenet_exports["state-dict"], **_EMBEDDER)
    np.testing.assert_allclose(_embed(from_script, asset), _embed(from_state, asset), rtol=1e-4, atol=1e-5)


def _torch_folder(folder: Path, weights: Path, name: str, **config) -> Path:
    folder.mkdir()
    shutil.copy(weights, folder / name)
    config = {"model_architecture": "mobilenetv2-backbone", "task_type": "embedding", "backend_type": "torch", **config}
    (folder / "model_config.json").write_text(json.dumps(config))
    return folder


def test_a_pt2_package_folder_loads_as_an_exported_program(asset, tmp_path, mobilenet_exports):
    folder = _torch_folder(tmp_path / "pt2", mobilenet_exports["pt2"], "weights.pt2", quantization="fp32")
    report = AutoModel.negotiate(folder)
    assert report.selected is not None and report.selected.backend == "torch"
    model = AutoModel.from_pretrained(folder)
    assert (model.metadata.backend, model.metadata.package_id, model.metadata.quantization) == (
        "torch",
        "local",
        "fp32",
    )
    ts_folder = _torch_folder(tmp_path / "ts", mobilenet_exports["torchscript"], "weights.torchscript")
    np.testing.assert_allclose(
        _embed(model, asset), _embed(AutoModel.from_pretrained(ts_folder), asset), rtol=1e-4, atol=1e-5
    )


def test_a_folder_torch_format_comes_from_the_weights_file_like_for_bare_files(tmp_path, mobilenet_exports):
    from im_core._local import local_metadata

    def fmt(name: str) -> str | None:
        folder = tmp_path / name.replace(".", "_")
        _torch_folder(folder, mobilenet_exports["pt2"], name)
        (package,) = local_metadata(folder, {})[0].packages
        return package.requirements.get("format")

    assert fmt("weights.pt2") == "exported-program"
    assert fmt("weights.torchscript") == "torchscript"
    assert fmt("weights.pt") is None  # TorchScript zip or state dict: the backend tells them apart


def _flipped(data: bytes) -> bytes:
    """``data`` with every byte but the first and last 200 xor-ed: still ends like a zip, its members are garbage."""
    middle = (np.frombuffer(data[200:-200], np.uint8) ^ 0x5A).tobytes()
    return data[:200] + middle + data[-200:]


def test_a_corrupt_pt2_is_a_listed_corrupted_package_not_a_raw_zip_error(tmp_path, mobilenet_exports):
    broken = tmp_path / "weights.pt2"
    broken.write_bytes(_flipped(mobilenet_exports["pt2"].read_bytes()))
    with pytest.raises(AllPackagesFailedError) as info:
        AutoModel.from_pretrained(broken, **_EMBEDDER)
    assert info.value.context["attempts"] == [("local", "CorruptedModelPackageError")]
    assert "weights.pt2" in info.value.message and "BadZipFile" in info.value.message


# -- the fallback loop and unexpected exceptions -----------------------------------------------------------------

_FRAGILE = '''
import json

from im_core import ObjectDetectionModel


class Fragile(ObjectDetectionModel):
    """Test family that reads its spec.json with bare json.loads: a broken file raises a plain JSONDecodeError."""

    @classmethod
    def from_package(cls, ctx):
        spec = json.loads((ctx.directory / "spec.json").read_text())
        self = cls()
        self.metadata = ctx.info(["thing"], marker=spec["marker"])
        return self

    def pre_process(self, images, **params):
        return images

    def forward(self, prepared):
        return prepared

    def post_process(self, raw, prepared, **params):
        return []
'''


@pytest.fixture
def fragile_family(tmp_path, monkeypatch):
    module_dir = tmp_path / "fragile_plugins"
    module_dir.mkdir()
    (module_dir / "fragile_family_for_tests.py").write_text(textwrap.dedent(_FRAGILE))
    monkeypatch.syspath_prepend(str(module_dir))
    register(
        ModelsManifest((ModelEntry(("fragile-test",), "object-detection", "fragile_family_for_tests:Fragile"),), "t"),
        replace=True,
    )
    yield
    sys.modules.pop("fragile_family_for_tests", None)


def _fragile_registry(tmp_path: Path, specs: dict[str, str]) -> Path:
    from im_providers import add_to_registry

    registry = tmp_path / "registry"
    for package_id, text in specs.items():
        spec = tmp_path / package_id / "spec.json"
        spec.parent.mkdir()
        spec.write_text(text)
        add_to_registry(
            registry,
            model_id="demo/fragile",
            architecture="fragile-test",
            task="object-detection",
            files=[spec],
            package_id=package_id,
        )
    return registry


def test_an_unexpected_exception_in_a_family_is_wrapped_logged_and_the_next_package_tried(
    tmp_path, fragile_family, caplog
):
    registry = _fragile_registry(tmp_path, {"a-broken": "{", "b-good": '{"marker": 7}'})
    with caplog.at_level(logging.WARNING, logger="im"):
        model = AutoModel.from_pretrained("demo/fragile", weights_provider="local", provider_options={"root": registry})
    assert model.metadata.package_id == "b-good" and model.metadata.extra == {"marker": 7}
    warning = next(r.getMessage() for r in caplog.records if "a-broken" in r.getMessage())
    assert "trying the next one" in warning and "JSONDecodeError" in warning and "onnx backend" in warning


def test_when_every_package_fails_unexpectedly_the_error_lists_each_with_the_original_type(tmp_path, fragile_family):
    registry = _fragile_registry(tmp_path, {"a": "{", "b": "[]"})
    with pytest.raises(AllPackagesFailedError) as info:
        AutoModel.from_pretrained("demo/fragile", weights_provider="local", provider_options={"root": registry})
    message = info.value.message
    assert "a [onnx on cpu]: ModelLoadingError" in message and "JSONDecodeError" in message
    assert "b [onnx on cpu]: ModelLoadingError" in message and "TypeError" in message
    assert info.value.context["attempts"] == [("a", "ModelLoadingError"), ("b", "ModelLoadingError")]
    first = info.value.__cause__
    assert isinstance(first, ModelLoadingError) and type(first.__cause__).__name__ == "JSONDecodeError"
    assert first.context == {"package_id": "a", "backend": "onnx", "error_type": "JSONDecodeError"}


# -- folders in the Roboflow layout without model_config.json ----------------------------------------------------


def test_a_roboflow_folder_without_model_config_loads_when_the_onnx_names_its_task(asset, tmp_path):
    folder = _yolo_folder(asset, tmp_path / "pkg")
    (folder / "model_config.json").unlink()
    (folder / "class_names.txt").write_text("\n".join(f"renamed-{i}" for i in range(18)) + "\n")
    model = AutoModel.from_pretrained(folder)
    meta = model.metadata
    assert (meta.architecture, meta.task, meta.backend) == ("yolov8", "object-detection", "onnx")
    assert meta.class_names[0] == "renamed-0"  # class_names.txt wins over the names in the ONNX metadata
    reference = AutoModel.from_pretrained(_yolo_folder(asset, tmp_path / "with-config"))(_image(asset))
    got = model(_image(asset))
    np.testing.assert_allclose(got.xyxy, reference.xyxy, atol=1e-4)


def test_a_roboflow_folder_without_model_config_says_what_it_found_and_how_to_fix_it(asset, tmp_path):
    folder = tmp_path / "pkg"
    folder.mkdir()
    shutil.copy(asset("face/centerface.onnx"), folder / "weights.onnx")  # no metadata any family recognises
    (folder / "class_names.txt").write_text("face\n")
    (folder / "inference_config.json").write_text("{}")
    with pytest.raises(InvalidParameterError) as info:
        AutoModel.from_pretrained(folder)
    message = info.value.message
    assert "model_config.json" in message and "has no model_config.json" in message
    assert "Found: class_names.txt, inference_config.json, weights.onnx" in message
    assert "carries no metadata" in message
    assert "architecture=... and task=..." in message
    assert '"model_architecture"' in message and '"task_type"' in message and '"backend_type": "onnx"' in message
    # the first fix works
    with pytest.raises(InvalidParameterError, match=r"Found: class_names\.txt"):
        AutoModel.from_pretrained(folder, architecture="yolov8")  # still no task
    (folder / "model_config.json").write_text(json.dumps({"model_architecture": "yolov8"}))
    with pytest.raises(InvalidParameterError, match=r"add task_type to .*model_config\.json"):
        AutoModel.from_pretrained(folder)


# -- arguments and files that used to leak bare Python errors ----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dependency_models_params": ["x"]}, DependencyModelError, "must be a dict keyed by dependency name"),
        ({"session_options": "x"}, InvalidParameterError, "session_options must be a dict"),
        ({"provider_options": ["root"]}, InvalidParameterError, "provider_options must be a dict"),
        ({"class_names": 5}, InvalidParameterError, "class_names must be a list of strings"),
        ({"class_names": "ab"}, InvalidParameterError, "class_names must be a list of strings"),
        ({"quantization": 5}, InvalidParameterError, "quantization must be a string"),
        ({"quantization": "int4"}, InvalidParameterError, "int4 is not a known value.*fp32"),
        ({"onnx_execution_providers": "CPUExecutionProvider"}, InvalidParameterError, "must be a list"),
        ({"model_package_id": 3}, InvalidParameterError, "model_package_id must be a string"),
        ({"architecture": 5}, InvalidParameterError, "architecture= must be a string"),
        ({"task": ["object-detection"]}, InvalidParameterError, "task= must be a string"),
    ],
)
def test_wrong_argument_types_are_clear_im_errors(asset, kwargs, error, match):
    with pytest.raises(error, match=match):
        AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), **kwargs)


def test_a_model_id_that_is_not_a_string_or_path_is_an_invalid_parameter():
    with pytest.raises(InvalidParameterError, match="model_id_or_path must be"):
        AutoModel.from_pretrained(5)
    with pytest.raises(InvalidParameterError, match="model_id_or_path must be"):
        AutoModel.describe_model(None)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"model_architecture": 5}, "model_architecture must be a string such as 'yolov8', got 5"),
        ({"task_type": ["object-detection"]}, "task_type must be a string"),
        ({"backend_type": ["onnx"]}, "backend_type must be a string such as 'onnx'"),
        ({"quantization": None}, "quantization=None: Input should be 'fp32'"),
    ],
)
def test_wrongly_typed_model_config_values_are_a_corrupted_package(asset, tmp_path, values, match):
    folder = _yolo_folder(asset, tmp_path / "pkg")
    config = json.loads((folder / "model_config.json").read_text())
    (folder / "model_config.json").write_text(json.dumps({**config, **values}))
    with pytest.raises(CorruptedModelPackageError, match=match):
        AutoModel.from_pretrained(folder)


def test_an_unknown_quantization_in_model_config_names_the_key_and_the_allowed_values(asset, tmp_path):
    folder = _yolo_folder(asset, tmp_path / "pkg")
    config = json.loads((folder / "model_config.json").read_text())
    (folder / "model_config.json").write_text(json.dumps({**config, "quantization": "int4"}))
    with pytest.raises(CorruptedModelPackageError) as info:
        AutoModel.from_pretrained(folder)
    assert "model_config.json" in info.value.message and "quantization='int4'" in info.value.message
    assert all(q in info.value.message for q in ("'fp32'", "'fp16'", "'bf16'", "'int8'"))


def test_an_undecodable_class_names_file_is_a_corrupted_package(asset, tmp_path):
    folder = _yolo_folder(asset, tmp_path / "pkg")
    (folder / "class_names.txt").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(CorruptedModelPackageError, match=r"class_names.txt is not UTF-8.*class_names=\["):
        AutoModel.from_pretrained(folder)


def test_quantization_from_model_config_reaches_model_metadata(asset, tmp_path):
    folder = _yolo_folder(asset, tmp_path / "pkg")
    config = json.loads((folder / "model_config.json").read_text())
    (folder / "model_config.json").write_text(json.dumps({**config, "quantization": "FP32"}))
    assert AutoModel.from_pretrained(folder).metadata.quantization == "fp32"
    assert AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx")).metadata.quantization == "unknown"


# -- verbose, default provider, nested dependencies --------------------------------------------------------------


def test_verbose_prints_the_negotiation_table(asset, capsys):
    AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))
    assert capsys.readouterr().out == ""
    AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), verbose=True)
    out = capsys.readouterr().out
    assert "Negotiation for" in out
    header = next(line for line in out.splitlines() if "package" in line)
    assert all(col in header for col in ("backend", "quantization", "batch", "verdict"))
    row = next(line for line in out.splitlines() if "local" in line)
    assert "onnx" in row and "selected on cpu" in row


def test_im_default_provider_is_used_when_no_provider_is_named(asset, tmp_path, monkeypatch):
    from im_providers import add_to_registry

    registry = tmp_path / "registry"
    add_to_registry(
        registry,
        model_id="demo/faces",
        architecture="mediapipe-face-detector",
        task="object-detection",
        files=[asset("face/blazeface_front_128.onnx")],
        package_id="onnx",
        quantization="fp32",
        class_names=["face"],
    )
    monkeypatch.setenv("IM_REGISTRY", str(registry))
    monkeypatch.setenv("IM_DEFAULT_PROVIDER", "local")
    reload_settings()
    model = AutoModel.from_pretrained("demo/faces")
    assert (model.metadata.package_id, model.metadata.provider, model.metadata.quantization) == (
        "onnx",
        "local",
        "fp32",
    )
    monkeypatch.setenv("IM_DEFAULT_PROVIDER", "no-such-provider")
    reload_settings()
    with pytest.raises(PluginError, match="no-such-provider"):
        AutoModel.from_pretrained("demo/faces")


def test_a_dependency_with_dependencies_of_its_own_is_a_clear_error(asset, tmp_path, composite_family):
    from im_providers import add_to_registry

    registry = tmp_path / "registry"
    add_to_registry(
        registry,
        model_id="demo/detector",
        architecture="yolov8",
        task="object-detection",
        files=sorted(p for p in _yolo_folder(asset, tmp_path / "pkg").iterdir() if p.name != "model_config.json"),
        package_id="onnx",
    )
    spec = tmp_path / "composite.json"
    spec.write_text(json.dumps({"marker": 1}))
    for model_id, dependency in (("demo/top", "demo/middle"), ("demo/middle", "demo/detector")):
        add_to_registry(
            registry,
            model_id=model_id,
            architecture="composite-test",
            task="object-detection",
            files=[spec],
            package_id="main",
            dependencies=[{"name": "detector", "model_id": dependency}],
        )
    kwargs = {"weights_provider": "local", "provider_options": {"root": registry}}
    with pytest.raises(DependencyModelError) as info:
        AutoModel.from_pretrained("demo/top", **kwargs)
    message = info.value.message
    assert "'demo/middle' is itself a dependency" in message and "only one level" in message
    # the fix the message gives works: load the middle model yourself and pass it in
    middle = AutoModel.from_pretrained("demo/middle", **kwargs)
    top = AutoModel.from_pretrained("demo/top", dependency_models_params={"detector": middle}, **kwargs)
    assert top.detector is middle


@pytest.mark.parametrize("given", ["missing/yolov8n.onnx", "./missing-folder", "/no/such/dir/model", "~/none.pt2"])
def test_a_missing_local_path_is_a_clear_error_without_asking_a_provider(given, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("a missing local path must not reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(ModelNotFoundError, match="No such file or folder"):
        AutoModel.from_pretrained(given)


def test_unknown_load_options_are_refused_and_known_ones_reach_the_family(asset):
    with pytest.raises(InvalidParameterError, match=r"YOLODetection takes no load option\(s\) 'confidnce'"):
        AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), confidnce=0.5)
    with pytest.raises(InvalidParameterError, match=r"'pooling_mode'.*accepts: normalize, pooling"):
        AutoModel.from_pretrained(asset("embed/mobilenetv2_backbone.pt"), pooling_mode="max", **_EMBEDDER)
    model = AutoModel.from_pretrained(asset("embed/mobilenetv2_backbone.pt"), pooling="max", **_EMBEDDER)
    assert model.pooling == "max"


def test_near_misses_get_a_suggestion_with_the_accepted_names(asset):
    # a misspelt argument of from_pretrained itself ends up among the load options: the suggestion names it
    with pytest.raises(InvalidParameterError, match=r"'devcie' \(did you mean 'device'\?\); it accepts: none\."):
        AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), devcie="cpu")
    with pytest.raises(InvalidParameterError, match=r"'pooling_mode' \(did you mean 'pooling'\?\)"):
        AutoModel.from_pretrained(asset("embed/mobilenetv2_backbone.pt"), pooling_mode="max", **_EMBEDDER)
    # a task override must be one an installed family implements
    with pytest.raises(InvalidParameterError, match=r"task= .*'detection' \(did you mean .*'object-detection'"):
        AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), architecture="yolov8", task="detection")
    with pytest.raises(InvalidParameterError, match=r"'objectdetection' \(did you mean 'object-detection'\?\)"):
        AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), task="objectdetection")
    # call parameters: checked once, before any work, with the family's names
    model = AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))
    with pytest.raises(InvalidParameterError, match=r"'conf' \(did you mean 'confidence'\?\).*it accepts: class_agn"):
        model(_image(asset), conf=0.5)
    with pytest.raises(InvalidParameterError, match=r"'colour_format' \(did you mean 'color_format'\?\)"):
        model(_image(asset), colour_format="rgb")


def test_local_descriptions_for_a_remote_model_id_are_refused(monkeypatch):
    import socket

    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("no network call expected"))
    with pytest.raises(InvalidParameterError, match=r"architecture=, task=.*not a local path"):
        AutoModel.from_pretrained("coco/3", architecture="yolov8", task="object-detection")


def test_every_built_in_family_declares_its_load_options_and_undeclared_ones_pass_through():
    from im_core import registry
    from im_core._auto import _check_load_options
    from im_core._plugins import load_target

    families = {load_target(e.target) for e in registry().models if e.target.startswith("im_models.")}
    assert len(families) >= 10
    undeclared = sorted(f.__name__ for f in families if not isinstance(f.LOAD_OPTIONS, frozenset))
    assert not undeclared, f"families without LOAD_OPTIONS: {undeclared}"

    class ThirdPartyFamily:  # a plugin written before LOAD_OPTIONS existed reads ctx.options itself
        pass

    _check_load_options(ThirdPartyFamily, {"score_bias": 0.1})  # passes through, unchecked


def _built_in_families() -> set[type]:
    from im_core import registry
    from im_core._plugins import load_target

    families = {load_target(e.target) for e in registry().models if e.target.startswith("im_models.")}
    assert len(families) >= 10
    return families


def test_no_load_option_shares_a_name_with_an_argument_of_from_pretrained():
    """A load option named like an argument of from_pretrained (``batch_size``) never reaches the family: the
    argument takes it (the OCR families' crop batch sizes are ``recognition_batch_size`` /
    ``classification_batch_size`` for that reason)."""
    from im_core._auto import from_pretrained_arguments

    names = from_pretrained_arguments()
    assert {"batch_size", "device", "backend", "task", "architecture", "class_names", "session_options"} <= names
    clashes = {f.__name__: sorted(f.LOAD_OPTIONS & names) for f in _built_in_families() if f.LOAD_OPTIONS & names}
    assert not clashes, f"load options shadowed by from_pretrained's own arguments: {clashes}"


def test_every_built_in_family_declares_its_call_parameters_with_their_stage():
    undeclared = sorted(f.__name__ for f in _built_in_families() if f.CALL_PARAMS is None)
    assert not undeclared, f"families without CALL_PARAMS: {undeclared}"
    for family in _built_in_families():
        assert set(family.CALL_PARAMS.values()) <= {"pre", "post"}, family


@pytest.mark.parametrize("how", ["absolute", "relative-to-cwd"])
def test_a_dependency_id_from_metadata_is_never_resolved_as_a_local_path(
    asset, tmp_path, composite_family, monkeypatch, how
):
    """A registry names a dependency by ``modelId``: that is a provider id, never a path. A hostile registry must not
    make im load a folder of this machine (e.g. one it placed in the cache through an earlier dependency, whose
    ``.pt2`` would then run). The same folder passed by the caller in dependency_models_params does load."""
    from im_core.errors import ModelNotFoundError, UnsafePathError
    from im_providers import add_to_registry

    local = _yolo_folder(asset, tmp_path / "work" / "local-detector")  # a loadable package folder on this machine
    monkeypatch.chdir(tmp_path / "work")
    named = str(local) if how == "absolute" else "local-detector"
    registry = tmp_path / "registry"
    spec = tmp_path / "composite.json"
    spec.write_text(json.dumps({"marker": 7}))
    add_to_registry(
        registry,
        model_id="demo/hostile",
        architecture="composite-test",
        task="object-detection",
        files=[spec],
        package_id="main",
        dependencies=[{"name": "detector", "model_id": named}],
    )
    kwargs = {"weights_provider": "local", "provider_options": {"root": registry}}
    expected = UnsafePathError if how == "absolute" else ModelNotFoundError
    with pytest.raises(expected):
        AutoModel.from_pretrained("demo/hostile", **kwargs)
    # the caller may point a dependency at a local folder explicitly
    model = AutoModel.from_pretrained(
        "demo/hostile", dependency_models_params={"detector": {"model_id_or_path": str(local)}}, **kwargs
    )
    assert model.detector.metadata.provider == "local-path"
