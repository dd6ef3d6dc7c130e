"""Near-miss names get a suggestion, and a bad value says where it came from (issue 12 item 7): architectures,
pipeline ids, weights providers and backends, given as arguments or through ``IM_*`` variables."""

from __future__ import annotations

import subprocess
import sys

import pytest

from im_core import AutoModel, registry
from im_core._config import reload_settings
from im_core.errors import (
    InvalidParameterError,
    MissingDependencyError,
    ModelImplementationNotFoundError,
    PluginError,
)


def test_unknown_architecture_argument_suggests_an_installed_one(asset):
    with pytest.raises(ModelImplementationNotFoundError) as info:
        AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), architecture="yolov88")
    message = info.value.message
    assert "'yolov88' (the architecture= argument)" in message and "(did you mean 'yolov8'?)" in message


def test_an_architecture_of_another_task_says_which_tasks_it_has(asset):
    with pytest.raises(ModelImplementationNotFoundError) as info:
        AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), architecture="centerface", task="embedding")
    assert "implement 'centerface' for object-detection only" in info.value.message


def test_a_metadata_architecture_no_family_implements_gets_a_suggestion():
    with pytest.raises(ModelImplementationNotFoundError) as info:
        registry().find_model("yolov8x", "object-detection")
    assert "did you mean 'yolov8'" in info.value.message and "Known: " in info.value.message


def test_unknown_pipeline_id_suggests_the_close_one():
    from im_pipelines import AutoModelPipeline

    with pytest.raises(PluginError, match=r"Unknown pipeline 'ocrr' \(did you mean 'ocr'\?\)"):
        AutoModelPipeline.from_pretrained("ocrr")


def test_unknown_provider_names_its_origin_argument_or_environment(monkeypatch):
    with pytest.raises(PluginError) as info:
        AutoModel.from_pretrained("some/model", weights_provider="locall")
    assert "'locall' (did you mean 'local'?) (from the weights_provider= argument)" in info.value.message
    monkeypatch.setenv("IM_DEFAULT_PROVIDER", "robflow")
    reload_settings()
    with pytest.raises(PluginError) as info:
        AutoModel.negotiate("some/model")
    assert "'robflow' (did you mean 'roboflow'?) (from the IM_DEFAULT_PROVIDER environment variable)" in str(info.value)


def test_unknown_backend_name_is_refused_with_a_suggestion(asset):
    with pytest.raises(InvalidParameterError) as info:
        AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"), backend=["onnxx"])
    assert "backend= names no installed backend: 'onnxx' (did you mean 'onnx'?)" in info.value.message
    assert "tensorrt = trt" in info.value.message  # aliases stay accepted
    AutoModel.negotiate(asset("yolo/nudenet_320n.onnx"), backend="onnxruntime")  # an alias is not refused


def test_environment_values_name_their_variable():
    from im_core import Settings

    with pytest.raises(InvalidParameterError, match="IM_DEFAULT_DEVICE environment variable: 'gpu'"):
        Settings.from_environ({"IM_DEFAULT_DEVICE": "gpu"})


_WITHOUT_ONNX = """
import warnings
warnings.simplefilter("ignore")
import im_core
im_core.registry().backends.pop("onnx")  # as if im-backend-onnx were not installed
from im_core import AutoModel
try:
    AutoModel.from_pretrained(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, exc.message)
"""


@pytest.mark.parametrize("layout", ["bare", "folder"])
def test_a_missing_onnx_backend_says_install_im_backend_onnx(asset, tmp_path, layout):
    model = asset("yolo/nudenet_320n.onnx")
    if layout == "folder":
        (tmp_path / "weights.onnx").write_bytes(model.read_bytes())
        model = tmp_path
    out = subprocess.run(
        [sys.executable, "-c", "import sys\n" + _WITHOUT_ONNX, str(model)], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith(MissingDependencyError.__name__), out.stdout + out.stderr
    assert "pip install 'im-backend-onnx'" in out.stdout and "metadata" not in out.stdout


def test_a_misspelled_architecture_in_a_package_says_it_came_from_the_metadata(asset, tmp_path):
    import json

    (tmp_path / "weights.onnx").write_bytes(asset("yolo/nudenet_320n.onnx").read_bytes())
    config = {"model_architecture": "yolov88", "task_type": "object-detection", "backend_type": "onnx"}
    (tmp_path / "model_config.json").write_text(json.dumps(config))
    report = AutoModel.negotiate(tmp_path)
    reason = report.verdicts[0].reason
    assert "'yolov88' (the model's metadata)" in reason and "did you mean 'yolov8'" in reason
