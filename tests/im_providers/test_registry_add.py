"""``im registry add`` publishes what bare loading would see (issue 12 item 5): the metadata embedded in the file,
the network under its conventional name, and the checks loading makes, made before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel
from im_core.cli import main as im_main
from im_core.errors import CorruptedModelPackageError, InvalidParameterError, ModelImplementationNotFoundError
from im_providers import add_to_registry

NUDENET = "yolo/nudenet_320n.onnx"


def _im(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``im`` command line, in a child process (IM_HOME inherited from the hermetic fixture)."""
    return subprocess.run(
        [sys.executable, "-m", "im_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=dict(os.environ),
    )


def test_a_file_published_by_registry_add_loads_as_it_does_bare(asset, tmp_path: Path) -> None:
    weights, photo = asset(NUDENET), asset("images/astronaut.png")
    root = tmp_path / "registry"
    done = _im("registry", "add", str(root), str(weights), "--model-id", "nudenet/320n")
    assert done.returncode == 0, done.stderr
    document = json.loads((root / "nudenet/320n/metadata.json").read_text())
    package = document["modelPackages"][0]
    # what the Ultralytics export says about itself is in the metadata; the network has the name a family expects
    assert (document["modelArchitecture"], document["taskType"]) == ("yolov8", "object-detection")
    assert package["inputSize"] == [320, 320] and package["modelFeatures"]["ultralytics"]["stride"] == 32
    assert package["packageManifest"]["dynamicBatchSize"] is True  # the graph's batch axis is dynamic
    assert [f["fileHandle"] for f in package["packageFiles"]] == ["weights.onnx"]
    assert len(document["classNames"]) == 18 and document["classNames"][1] == "FACE_FEMALE"

    bare = AutoModel.from_pretrained(str(weights))
    published = AutoModel.from_pretrained("nudenet/320n", provider_options={"root": str(root)})
    assert published.metadata.provider == "local"  # chosen by the registry root alone
    assert bare.package.config.network_input.size == published.package.config.network_input.size == (320, 320)
    assert bare.class_names == published.class_names
    assert bare.class_names[1] == "FACE_FEMALE"
    a, b = bare(str(photo), confidence=0.2), published(str(photo), confidence=0.2)
    assert len(a.xyxy) > 0, "the pinned photograph should give detections"
    np.testing.assert_array_equal(a.xyxy, b.xyxy)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    np.testing.assert_array_equal(a.class_id, b.class_id)
    assert list(a.class_names) == list(b.class_names)


def test_a_missing_class_names_file_is_a_message_not_a_traceback(asset, tmp_path: Path) -> None:
    args = ["registry", "add", str(tmp_path / "r"), str(asset(NUDENET)), "--model-id", "a/b"]
    done = _im(*args, "--class-names", "@missing.txt")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--class-names @missing.txt: no such file 'missing.txt'" in done.stderr
    assert not (tmp_path / "r" / "a").exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--task", "objectdetection"], "'objectdetection' (did you mean 'object-detection'?)"),
        (["--architecture", "yolo8"], "Did you mean 'yolov8'"),  # (yolov9 is an architecture since issue 15)
        (["--class-names", "a,b,c"], "lists 3 class names but nudenet_320n.onnx declares 18 classes"),
        (["--class-names", " , "], "names no class"),
        (["--model-id", "my model/1"], "contains whitespace"),
        (["--model-id", "../escape"], "would leave the registry folder"),
    ],
)
def test_registry_add_refuses_what_loading_would_refuse(
    asset, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
) -> None:
    args = ["registry", "add", str(tmp_path / "r"), str(asset(NUDENET))]
    if "--model-id" not in extra:
        args += ["--model-id", "a/b"]
    assert im_main([*args, *extra]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").glob("*/*/metadata.json"))


def test_unknown_architecture_raises_the_loading_error_class(asset, tmp_path: Path) -> None:
    with pytest.raises(ModelImplementationNotFoundError, match="Did you mean 'yolov8'"):
        add_to_registry(tmp_path / "r", model_id="a/b", architecture="yolo8", files=[asset(NUDENET)])
    with pytest.raises(InvalidParameterError, match="Cannot tell the architecture and task"):
        add_to_registry(tmp_path / "r", model_id="a/b", files=[asset("face/blazeface_front_128.onnx")])


def test_verify_checks_class_names_against_the_network_output(asset, tmp_path: Path) -> None:
    """The angle classifier has 2 classes: 3 names fail at add time with loading's error, and nothing is written."""
    cls = asset("ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx")
    common = {"model_id": "ppocr/cls", "architecture": "pp-ocr-cls", "task": "classification", "files": [cls]}
    with pytest.raises(CorruptedModelPackageError, match=r"lists 3 class names but the network .* has 2 classes"):
        add_to_registry(tmp_path / "r", **common, class_names=["0", "90", "180"], verify=True)
    assert not (tmp_path / "r" / "ppocr").exists()
    path = add_to_registry(tmp_path / "r", **common, class_names=["0", "180"], verify=True)
    assert path.is_file()


def test_a_registry_root_alone_selects_its_provider(
    asset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--registry DIR`` / ``IM_REGISTRY`` / ``provider_options={'root': ...}`` without a provider: a folder is read
    by ``local``, an http(s) URL by ``http`` (never the Roboflow API)."""
    from im_core._config import reload_settings
    from testlib import servers

    root = tmp_path / "registry"
    add_to_registry(
        root,
        model_id="mediapipe/face-detector",
        architecture="mediapipe-face-detector",
        task="object-detection",
        files=[asset("face/blazeface_front_128.onnx")],
        class_names=["face"],
        input_size=(128, 128),
    )
    assert im_main(["describe-model", "mediapipe/face-detector", "--registry", str(root)]) == 0
    assert "mediapipe-face-detector" in capsys.readouterr().out
    with servers.LoopbackServer(root=root) as srv:
        md = AutoModel.describe_model("mediapipe/face-detector", print_output=False, provider_options={"root": srv.url})
        assert md.provider == "http"
        monkeypatch.setenv("IM_REGISTRY", srv.url)
        reload_settings()
        assert AutoModel.describe_model("mediapipe/face-detector", print_output=False).provider == "http"
    monkeypatch.setenv("IM_REGISTRY", str(root))
    reload_settings()
    model = AutoModel.from_pretrained("mediapipe/face-detector")
    assert model.metadata.provider == "local" and len(model(str(asset("images/astronaut.png"))).xyxy) == 1


def test_a_file_of_the_wrong_format_is_refused_at_add_time(
    asset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A picture given as the network, or under an .onnx name, fails with loading's own error; nothing is written."""
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(asset("images/page.png").read_bytes())
    common = ["--model-id", "a/b", "--architecture", "yolov8", "--task", "object-detection"]
    for file, expected in (
        (asset("images/page.png"), "needs one network file for the onnx backend"),
        (fake, "ONNX Runtime could not load weights.onnx"),
    ):
        assert im_main(["registry", "add", str(tmp_path / "r"), str(file), *common]) == 2
        err = capsys.readouterr().err
        assert "does not load; nothing was written" in err and expected in err
        assert not (tmp_path / "r" / "a").exists()


def test_a_package_that_cannot_run_here_is_published_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package for a backend this machine cannot run (here: every backend disabled) is not loaded to check it;
    the command says so on stderr and publishes it."""
    from im_core._config import reload_settings

    monkeypatch.setenv("IM_DISABLED_BACKENDS", "onnx")
    reload_settings()
    weights = tmp_path / "weights.onnx"
    weights.write_bytes(b"not checked")
    args = ["registry", "add", str(tmp_path / "r"), str(weights), "--model-id", "a/b"]
    assert im_main([*args, "--architecture", "yolov8", "--task", "object-detection"]) == 0
    out, err = capsys.readouterr()
    assert "warning: Package 'onnx-fp32-b1' of 'a/b' was not loaded to check it: it cannot run on this machine" in err
    assert "wrote" in out and (tmp_path / "r" / "a/b/onnx-fp32-b1/weights.onnx").is_file()
