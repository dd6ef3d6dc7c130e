"""``import im_core`` stays light: checked in fresh interpreters, as users see it."""

import json
import subprocess
import sys

HEAVY = ("torch", "onnxruntime", "tensorrt", "tensorrt_lean", "cv2", "rich", "requests")


def _modules_after(code: str) -> list[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_im_core_loads_no_heavy_module():
    loaded = set(_modules_after("import im_core"))
    assert not loaded & set(HEAVY)


def test_public_names_and_plugin_registry_load_no_heavy_runtime():
    code = (
        "import im_core\nfrom im_core import AutoModel, Detections, ModelMetadata, PackageContext\nim_core.registry()\n"
    )
    loaded = set(_modules_after(code))
    assert not loaded & {"torch", "onnxruntime", "tensorrt", "tensorrt_lean", "cv2"}


def test_all_names_resolve():
    import im_core

    for name in im_core.__all__:
        assert getattr(im_core, name) is not None, name


NETWORK = ("ssl", "http.client", "urllib.request", "requests", "urllib3")


def test_loading_a_cached_model_imports_no_network_module(asset, tmp_path):
    """A model already in the cache (local registry) and a bare ONNX file load in a fresh interpreter without
    importing the HTTP/TLS stack: nothing there needs the network."""
    from im_core import AutoModel
    from im_providers import add_to_registry

    weights = tmp_path / "weights.onnx"
    weights.write_bytes(asset("yolo/nudenet_320n.onnx").read_bytes())
    registry = tmp_path / "registry"
    add_to_registry(
        registry,
        model_id="t/yolo",
        architecture="yolov8",
        task="object-detection",
        files=[weights],
        package_id="onnx",
        class_names=[str(i) for i in range(18)],
        input_size=(320, 320),
    )
    options = {"root": str(registry)}
    AutoModel.from_pretrained("t/yolo", weights_provider="local", provider_options=options)  # fills IM_HOME
    code = (
        "from im_core import AutoModel\n"
        f"AutoModel.from_pretrained('t/yolo', weights_provider='local', provider_options={options!r})\n"
        f"AutoModel.from_pretrained({str(weights)!r})\n"
    )
    loaded = set(_modules_after(code))  # IM_HOME (the conftest's, now holding the package) is inherited
    assert {"im_core._cache._store", "im_backend_onnx._session", "onnxruntime"} <= loaded  # it did load
    assert not loaded & set(NETWORK)
