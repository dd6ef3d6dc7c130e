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
from im_core.errors import AllPackagesFailedError, InvalidParameterError, NoCompatiblePackageError, OfflineModeError

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
