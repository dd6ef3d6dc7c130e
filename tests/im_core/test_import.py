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
