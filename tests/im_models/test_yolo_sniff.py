"""The Ultralytics metadata sniffer (bare-file recognition) on hand-written metadata of each task."""

from __future__ import annotations

import subprocess
import sys

from im_models.yolo._sniff import sniff_ultralytics

BASE = {"author": "Ultralytics", "stride": "32", "imgsz": "[480, 640]", "names": "{0: 'person', 1: 'bicycle'}"}


def test_tasks_sizes_names_and_flags():
    seg = sniff_ultralytics({**BASE, "task": "segment"})
    assert seg["task"] == "instance-segmentation" and seg["input_size"] == (480, 640)
    assert seg["class_names"] == ["person", "bicycle"] and seg["features"] == {"ultralytics": {"stride": 32}}
    pose = sniff_ultralytics({**BASE, "task": "pose", "kpt_shape": "[17, 3]", "names": "{0: 'person'}"})
    assert pose["task"] == "keypoint-detection" and pose["features"]["ultralytics"]["kpt_shape"] == [17, 3]
    cls = sniff_ultralytics({**BASE, "task": "classify", "imgsz": "224"})
    assert cls["task"] == "classification" and cls["input_size"] == (224, 224)
    e2e = sniff_ultralytics({**BASE, "task": "detect", "end2end": "True"})
    assert e2e["features"]["ultralytics"]["end2end"] is True and "nms_fused" in e2e["features"]


def test_not_ultralytics_or_malicious_values_are_ignored():
    assert sniff_ultralytics({}) is None
    assert sniff_ultralytics({"task": "detect", "author": "someone"}) is None
    out = sniff_ultralytics({**BASE, "task": "detect", "names": "__import__('os').system('true')", "imgsz": "oops"})
    assert out is not None and "class_names" not in out and "input_size" not in out


def test_importing_the_families_does_not_import_cv2_or_torch():
    code = (
        "import sys, im_models, im_models.common, im_models.yolo._detection, im_models.yolo._segmentation, "
        "im_models.detr._detection; print(sorted(m for m in ('cv2', 'torch', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_a_torchscript_export_is_recognised_from_its_config_txt(tmp_path):
    """An Ultralytics TorchScript export keeps its metadata as JSON in the archive's extra file ``config.txt``
    (``torch.jit.save(..., _extra_files={"config.txt": json.dumps(metadata)})``): read through the torch backend's
    ``inspect`` (no torch import, the zip is read), it gives the same facts as an ONNX export's metadata."""
    import json

    import pytest

    torch = pytest.importorskip("torch")
    from im_backend_torch import TorchBackend

    metadata = {
        "description": "Ultralytics YOLOv8n-pose model",
        "author": "Ultralytics",
        "version": "8.3.0",
        "stride": 32,
        "task": "pose",
        "batch": 1,
        "imgsz": [320, 256],
        "names": {"0": "person"},
        "kpt_shape": [17, 3],
        "args": {"batch": 1, "half": False, "nms": True},
    }
    path = tmp_path / "yolov8n-pose.torchscript"
    torch.jit.script(torch.nn.Identity()).save(str(path), _extra_files={"config.txt": json.dumps(metadata)})
    found = sniff_ultralytics(TorchBackend().inspect(path), path)
    assert found is not None
    assert (found["task"], found["class_names"], found["input_size"]) == ("keypoint-detection", ["person"], (320, 256))
    ultra = found["features"]["ultralytics"]
    assert ultra["kpt_shape"] == [17, 3] and ultra["stride"] == 32 and ultra["nms"] is True
    assert "nms_fused" in found["features"]  # NMS in the graph, said only by the export's args


def test_nms_in_the_export_args_of_an_onnx_export():
    meta = {"author": "Ultralytics", "task": "detect", "names": "{0: 'a'}", "args": "{'nms': True, 'batch': 1}"}
    found = sniff_ultralytics(meta)
    assert found is not None and found["features"]["ultralytics"]["nms"] is True and "nms_fused" in found["features"]
    assert sniff_ultralytics({"config.txt": "not json"}) is None


def test_an_obb_export_is_refused_not_decoded_as_detections(tmp_path):
    """An Ultralytics ``-obb`` export (output (1, 4 + C + 1, N): boxes, class scores, then an angle in radians):
    loaded bare it is an oriented-box detector; loaded with task='object-detection' anyway, the angle channel is
    read as a class score above 1 and the call is refused instead of returning boxes whose "scores" are angles
    (issue 15)."""
    import numpy as np
    import pytest

    from im_core import AutoModel
    from im_core.errors import ModelRuntimeError
    from testlib.onnx_graphs import constant_onnx

    n = 64
    out = np.zeros((1, 6, n), np.float32)
    out[0, :4] = np.array([100, 100, 20, 10], np.float32)[:, None]  # cx cy w h
    out[0, 4] = 0.05  # the one class's score: below the threshold
    out[0, 5] = np.linspace(0.5, 2.29, n)  # the angle channel
    meta = {"author": "Ultralytics", "task": "obb", "names": "{0: 'plane'}", "imgsz": "[64, 64]", "stride": "32"}
    path = constant_onnx(tmp_path / "yolo11n-obb.onnx", {"output0": out}, input_shape=(1, 3, 64, 64), metadata=meta)
    bare = AutoModel.from_pretrained(path)
    assert bare.metadata.task == "oriented-object-detection" and len(bare(np.zeros((64, 64, 3), np.uint8))) == 0
    model = AutoModel.from_pretrained(path, task="object-detection", class_names=["plane", "angle?"])
    with pytest.raises(ModelRuntimeError, match="not laid out as this task expects"):
        model(np.zeros((64, 64, 3), np.uint8))
