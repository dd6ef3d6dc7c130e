"""RF-DETR in every task, through ``AutoModel`` on Roboflow package folders (``model_config.json`` with RF-DETR's
model features, ``inference_config.json``, ``class_names.txt``, ``weights.onnx``): small torch modules emit the
published output layouts (``dets`` (B, Q, 4) normalised cxcywh, ``labels`` (B, Q, C) logits, plus ``masks``
(B, Q, H/4, W/4) mask logits or keypoints (B, Q, C·K, 8)), exported to ONNX; results are checked against values
computed by hand from the reference's decoding (inference-models 0.39.6 models/rfdetr/common.py:
``post_process_object_detection_results``, ``post_process_instance_segmentation_results``,
``post_process_keypoint_detection_results``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from im_core import AutoModel, RLEMask
from im_core.errors import AllPackagesFailedError, NoCompatiblePackageError
from testlib.onnx_graphs import torch_layout_onnx

#: RF-DETR's architecture features, as the Roboflow API sends them with RF-DETR packages
FEATURES = {
    "resolution": 32,
    "patch_size": 16,
    "num_windows": 2,
    "dec_layers": 3,
    "num_queries": 3,
    "num_select": 3,
}


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _package(
    folder: Path,
    task: str,
    outputs: dict[str, np.ndarray],
    names: list[str],
    *,
    features: dict[str, Any] | None = None,
    extra_config: dict[str, Any] | None = None,
) -> Path:
    folder.mkdir()
    torch_layout_onnx(folder / "weights.onnx", outputs, input_shape=(1, 3, 32, 32))
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    config = {
        "network_input": {
            "training_input_size": {"height": 32, "width": 32},
            "resize_mode": "stretch",
            "normalization": [[0.485, 0.456, 0.406], [0.229, 0.224, 0.225]],
        },
        "post_processing": {"type": "sigmoid", "fused": False},
        **(extra_config or {}),
    }
    (folder / "inference_config.json").write_text(json.dumps(config))
    model_config = {
        "model_architecture": "rfdetr",
        "task_type": task,
        "backend_type": "onnx",
        "model_features": FEATURES if features is None else features,
    }
    (folder / "model_config.json").write_text(json.dumps(model_config))
    return folder


def _image() -> np.ndarray:
    return np.full((32, 64, 3), 90, np.uint8)  # stretched to 32×32: original x = 2 × network x


def _det_outputs() -> dict[str, np.ndarray]:
    boxes = np.zeros((1, 3, 4), np.float32)
    boxes[0, 0] = (0.25, 0.5, 0.5, 1.0)  # network (0, 0, 16, 32) → original (0, 0, 32, 32)
    boxes[0, 1] = (0.5, 0.25, 1.0, 0.5)  # network (0, 0, 32, 16) → original (0, 0, 64, 16)
    boxes[0, 2] = (0.5, 0.5, 0.2, 0.2)
    logits = np.full((1, 3, 2), -6.0, np.float32)
    logits[0, 0, 1] = 2.0
    logits[0, 1, 0] = 1.0
    return {"dets": boxes, "labels": logits}


def test_rfdetr_features_are_accepted_and_other_features_still_refused(tmp_path):
    """Item 1: a package carrying RF-DETR's architecture features loads (it was refused as "unsupported
    features"); the features are the family's own declaration in the manifest, and a feature no family declares
    is still refused."""
    model = AutoModel.from_pretrained(_package(tmp_path / "ok", "object-detection", _det_outputs(), ["a", "b"]))
    d = model(_image())
    np.testing.assert_allclose(d.confidence, [sig(2.0), sig(1.0)], rtol=1e-6)
    assert d.names == ["b", "a"]
    np.testing.assert_allclose(d.xyxy, [[0, 0, 32, 32], [0, 0, 64, 16]], atol=1e-4)
    bad = _package(tmp_path / "bad", "object-detection", _det_outputs(), ["a", "b"], features={"mystery": 1})
    with pytest.raises((NoCompatiblePackageError, AllPackagesFailedError), match="mystery"):
        AutoModel.from_pretrained(bad)


def test_rfdetr_instance_segmentation_masks_from_quarter_resolution_logits(tmp_path):
    """Query 0 (class b, 0.881): mask logits positive on the left half of the 8×8 map → the left half of the
    64-wide image, not cropped to the box; query 1 (class a, 0.731): top half; query 2 is below 0.5."""
    out = _det_outputs()
    masks = np.full((1, 3, 8, 8), -5.0, np.float32)
    masks[0, 0, :, :4] = 5.0
    masks[0, 1, :4, :] = 5.0
    masks[0, 2] = 5.0
    out["masks"] = masks
    model = AutoModel.from_pretrained(_package(tmp_path / "seg", "instance-segmentation", out, ["a", "b"]))
    assert model.task == "instance-segmentation"
    d = model(_image())
    assert d.names == ["b", "a"] and d.masks.shape == (2, 32, 64)
    np.testing.assert_allclose(d.confidence, [sig(2.0), sig(1.0)], rtol=1e-6)
    assert d.masks[0][:, :30].all() and not d.masks[0][:, 34:].any()
    assert d.masks[1][:14].all() and not d.masks[1][18:].any()
    rle = model(_image(), mask_format="rle")
    assert all(isinstance(m, RLEMask) for m in rle.masks)
    assert rle == d
    assert len(model(_image(), confidence=0.9)) == 0


def _reference_fused(score: float, kps: np.ndarray) -> float:
    """The reference's fused keypoint score written directly (not in log space): u = s · (Σ w·tr Σ / Σ w)^-0.2,
    then u / (1 + u), with tr Σ = 1/l11² + 1/l22² + l21²/(l11·l22)² and w = sigmoid(findable logit)."""
    l11, l21, l22 = np.exp(kps[:, 4]), kps[:, 5], np.exp(kps[:, 6])
    trace = 1 / l11**2 + 1 / l22**2 + l21**2 / (l11 * l22) ** 2
    w = 1 / (1 + np.exp(-kps[:, 2]))
    u = score * float((w * trace).sum() / w.sum()) ** -0.2
    return u / (1 + u)


def test_rfdetr_keypoints_per_class_slots_fused_score_and_background_removed(tmp_path):
    """Logits (1, 2, 2): class 0 = background (removed by class_names_operations), class 1 = person; keypoints
    (1, 2, 2 classes × 2 slots, 8). Query 0 is a person (logit 2) whose keypoints sit in slots 2-3: kp 0 at
    (0.25, 0.5) findable (logit 3), kp 1 not findable (logit -3 → below key_points_threshold 0.3 → (0, 0), 0)."""
    boxes = np.zeros((1, 2, 4), np.float32)
    boxes[0, 0] = (0.5, 0.5, 0.5, 0.5)  # network (8, 8, 24, 24) → original (16, 8, 48, 24)
    boxes[0, 1] = (0.5, 0.5, 0.1, 0.1)
    logits = np.full((1, 2, 2), -5.0, np.float32)
    logits[0, 0, 1] = 2.0
    logits[0, 1, 1] = -4.0
    kps = np.zeros((1, 2, 4, 8), np.float32)
    kps[0, 0, 0, :2] = (0.9, 0.9)  # the background class's slots: never read
    kps[0, 0, 2] = (0.25, 0.5, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    kps[0, 0, 3] = (0.75, 0.25, -3.0, 0.0, math.log(2.0), 0.5, 0.0, 0.0)
    outputs = {"dets": boxes, "labels": logits, "keypoints": kps}
    folder = _package(
        tmp_path / "kp",
        "keypoint-detection",
        outputs,
        ["background", "person"],
        extra_config={"class_names_operations": [{"type": "class_name_removal", "class_name": "background"}]},
    )
    (folder / "keypoints_metadata.json").write_text(
        json.dumps(
            [
                {"object_class_id": 0, "keypoints": {}, "edges": []},
                {"object_class_id": 1, "keypoints": {"0": "nose", "1": "eye"}, "edges": [{"from": 0, "to": 1}]},
            ]
        )
    )
    model = AutoModel.from_pretrained(folder)
    assert model.task == "keypoint-detection" and model.class_names == ("person",)
    d = model(_image())
    want = _reference_fused(sig(2.0), kps[0, 0, 2:4])
    assert len(d) == 1 and d.names == ["person"]
    np.testing.assert_allclose(d.confidence, [want], rtol=1e-5)
    np.testing.assert_allclose(d.xyxy, [[16, 8, 48, 24]], atol=1e-4)
    np.testing.assert_allclose(d.keypoints[0], [[16, 16], [0, 0]], atol=1e-4)
    np.testing.assert_allclose(d.keypoint_confidence[0], [sig(3.0), 0.0], rtol=1e-6)
    assert d.keypoint_names == ("nose", "eye") and tuple(d.skeleton) == ((0, 1),)
    low = model(_image(), key_points_threshold=0.01)
    np.testing.assert_allclose(low.keypoints[0, 1], [48, 8], atol=1e-4)  # (0.75·32, 0.25·32) stretched
    assert len(model(_image(), confidence=want + 0.01)) == 0


class _TorchOutputs:
    """The real session with its outputs handed back as torch tensors on the CPU, as a session that keeps outputs
    on its device (TensorRT, torch) returns them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def run(self, feeds: Any, output_names: Any = None) -> dict[str, Any]:
        import torch

        return {k: torch.from_numpy(np.array(v)) for k, v in self.inner.run(feeds, output_names).items()}


def test_torch_tensor_outputs_give_the_numpy_results(tmp_path):
    """The decoders take torch tensors as well as numpy arrays (what a TensorRT or torch session returns)."""
    pytest.importorskip("torch")
    out = _det_outputs()
    out["masks"] = np.where(np.arange(64).reshape(1, 1, 8, 8) % 3 == 0, 5.0, -5.0).repeat(3, axis=1).astype(np.float32)
    model = AutoModel.from_pretrained(_package(tmp_path / "seg", "instance-segmentation", out, ["a", "b"]))
    want = model(_image())
    model.package.session = _TorchOutputs(model.package.session)
    got = model(_image())
    assert got == want and len(got) == 2


def test_torchscript_package_gives_the_onnx_results(tmp_path):
    """The same published layout as a TorchScript package (``backend_type: torch-script``, the reference's name)."""
    pytest.importorskip("torch")
    from testlib.onnx_graphs import torch_layout_torchscript

    out = _det_outputs()
    masks = np.full((1, 3, 8, 8), -5.0, np.float32)
    masks[0, 0, :, :4] = 5.0
    masks[0, 1, 2:6, 2:6] = 5.0
    out["masks"] = masks
    onnx = AutoModel.from_pretrained(_package(tmp_path / "onnx", "instance-segmentation", out, ["a", "b"]))
    folder = _package(tmp_path / "ts", "instance-segmentation", out, ["a", "b"])
    (folder / "weights.onnx").unlink()
    torch_layout_torchscript(folder / "weights.torchscript", out, input_shape=(1, 3, 32, 32))
    config = json.loads((folder / "model_config.json").read_text())
    (folder / "model_config.json").write_text(json.dumps({**config, "backend_type": "torch-script"}))
    ts = AutoModel.from_pretrained(folder)
    assert ts.metadata.backend == "torch"
    got = ts(_image())
    assert len(got) == 2 and got == onnx(_image())


def test_fit_longer_edge_is_run_as_stretch_with_a_warning(tmp_path):
    """As the reference's implicit resize-mode substitution for RF-DETR (``FIT_LONGER_EDGE → STRETCH_TO``)."""
    stretch = AutoModel.from_pretrained(_package(tmp_path / "s", "object-detection", _det_outputs(), ["a", "b"]))
    folder = _package(tmp_path / "f", "object-detection", _det_outputs(), ["a", "b"])
    config = json.loads((folder / "inference_config.json").read_text())
    config["network_input"]["resize_mode"] = "fit-longer-edge"
    (folder / "inference_config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="fit-longer-edge.*stretch"):
        model = AutoModel.from_pretrained(folder)
    assert model.package.config.network_input.resize_mode == "stretch"
    assert model(_image()) == stretch(_image())
