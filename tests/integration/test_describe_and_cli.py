"""describe_* print readable tables and return data; the CLI commands show the same."""

from __future__ import annotations

import json

import pytest

from im_core import AutoModel
from im_core.cli import main
from im_core.errors import InvalidParameterError

pytestmark = pytest.mark.weights


@pytest.fixture
def registry(asset, tmp_path):
    from im_providers import add_to_registry

    root = tmp_path / "registry"
    add_to_registry(
        root,
        model_id="mediapipe/face-detector",
        architecture="mediapipe-face-detector",
        task="object-detection",
        files=[asset("face/blazeface_front_128.onnx")],
        package_id="onnx-front",
        class_names=["face"],
        input_size=(128, 128),
    )
    return root


def test_describe_model_and_package_print_and_return_data(registry, capsys):
    opts = {"weights_provider": "local", "provider_options": {"root": str(registry)}}
    meta = AutoModel.describe_model("mediapipe/face-detector", **opts)
    assert meta.architecture == "mediapipe-face-detector" and [p.package_id for p in meta.packages] == ["onnx-front"]
    out = capsys.readouterr().out
    assert "onnx-front" in out and "mediapipe-face-detector" in out
    package = AutoModel.describe_model_package("mediapipe/face-detector", "onnx-front", **opts)
    assert package.backend == "onnx" and package.files[0].sha256
    assert "sha256" in capsys.readouterr().out
    with pytest.raises(InvalidParameterError, match="has no package 'nope'; its packages: onnx-front"):
        AutoModel.describe_model_package("mediapipe/face-detector", "nope", **opts)


def test_describe_compute_environment_returns_data(capsys):
    env = AutoModel.describe_compute_environment()
    assert env.backends["onnx"]["available"] is True and env.backends["onnx"]["version"]
    assert "Compute environment" in capsys.readouterr().out


def test_cli_negotiate_describe_and_predict(registry, asset, capsys):
    common = ["--provider", "local", "--registry", str(registry)]
    assert main(["negotiate", "mediapipe/face-detector", *common, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packages"][0]["rank"] == 1
    assert main(["negotiate", "mediapipe/face-detector", *common, "--backend", "trt"]) == 1
    assert "not among the requested" in capsys.readouterr().out
    assert main(["describe-model", "mediapipe/face-detector", *common]) == 0
    assert main(["predict", "mediapipe/face-detector", str(asset("images/astronaut.png")), *common]) == 0
    out = capsys.readouterr().out
    assert "face" in out and "box=(" in out
    assert main(["predict", "mediapipe/never-there", "x.png", *common]) == 2
    assert "help:" in capsys.readouterr().err
