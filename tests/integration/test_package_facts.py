"""Facts every family takes from core, end to end through ``AutoModel``: the network file the negotiated backend
runs (``PackageContext.network_file``) and the class names (``PackageContext.class_names``: ``class_names=`` >
``class_names.txt`` > model metadata > names embedded in the network file)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from im_core import AutoModel
from im_core.errors import AllPackagesFailedError, InvalidParameterError
from testlib.onnx_graphs import constant_onnx

# -- class names: one precedence in every family ---------------------------------------------------------------


def _zeros(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


#: family -> (architecture, task, outputs, input shape, number of classes, model_features, count known statically)
FAMILIES: dict[str, tuple[str, str, dict[str, np.ndarray], tuple, int, dict | None, bool]] = {
    "yolov8-detect": ("yolov8", "object-detection", {"output0": _zeros(1, 4 + 3, 8)}, (1, 3, 64, 64), 3, None, True),
    "yolov8-seg": (
        "yolov8",
        "instance-segmentation",
        {"output0": _zeros(1, 4 + 3 + 32, 8), "output1": _zeros(1, 32, 16, 16)},
        (1, 3, 64, 64),
        3,
        None,
        True,
    ),
    "yolov8-pose": (
        "yolov8",
        "keypoint-detection",
        {"output0": _zeros(1, 4 + 2 + 17 * 3, 8)},
        (1, 3, 64, 64),
        2,
        {"ultralytics": {"kpt_shape": [17, 3]}},
        True,
    ),
    "yolov8-cls": ("yolov8", "classification", {"output0": _zeros(1, 3)}, (1, 3, 64, 64), 3, None, True),
    "yolov5": ("yolov5", "object-detection", {"output0": _zeros(1, 8, 5 + 3)}, (1, 3, 64, 64), 3, None, True),
    "yolov10-end-to-end": (
        "yolov10",
        "object-detection",
        {"output0": _zeros(1, 10, 6)},
        (1, 3, 64, 64),
        3,
        None,
        False,
    ),
    "rfdetr": (
        "rfdetr",
        "object-detection",
        {"dets": _zeros(1, 5, 4), "labels": _zeros(1, 5, 3)},
        (1, 3, 64, 64),
        3,
        None,
        True,
    ),
    "image-classifier": ("image-classifier", "classification", {"scores": _zeros(1, 3)}, (1, 3, 32, 32), 3, None, True),
    "ocr-angle-classifier": ("pp-ocr-cls", "classification", {"scores": _zeros(1, 2)}, (1, 3, 48, 192), 2, None, True),
}


def _family_folder(root: Path, family: str, *, names_file: list[str] | None) -> Path:
    """A package folder whose network embeds names ``e0, e1...`` and whose class_names.txt lists ``names_file``."""
    architecture, task, outputs, input_shape, count, features, _ = FAMILIES[family]
    root.mkdir(parents=True)
    embedded = {"names": repr({i: f"e{i}" for i in range(count)})}  # as Ultralytics writes them
    constant_onnx(root / "weights.onnx", outputs, input_shape=input_shape, metadata=embedded)
    config: dict[str, Any] = {"model_architecture": architecture, "task_type": task, "backend_type": "onnx"}
    if features:
        config["model_features"] = features
    (root / "model_config.json").write_text(json.dumps(config))
    if names_file is not None:
        (root / "class_names.txt").write_text("\n".join(names_file) + "\n")
    return root


@pytest.mark.parametrize("family", list(FAMILIES))
def test_class_names_argument_wins_then_the_file_then_the_network_metadata(tmp_path, family):
    count = FAMILIES[family][4]
    mine, in_file = [f"user-{i}" for i in range(count)], [f"file-{i}" for i in range(count)]
    folder = _family_folder(tmp_path / family, family, names_file=in_file)
    assert AutoModel.from_pretrained(folder, class_names=mine).class_names == tuple(mine)  # was ignored by YOLO
    assert AutoModel.from_pretrained(folder).class_names == tuple(in_file)
    (folder / "class_names.txt").unlink()
    assert AutoModel.from_pretrained(folder).class_names == tuple(f"e{i}" for i in range(count))


@pytest.mark.parametrize("family", [f for f, spec in FAMILIES.items() if spec[6]])
def test_a_wrong_class_count_is_a_clear_error_naming_its_source(tmp_path, family):
    count = FAMILIES[family][4]
    folder = _family_folder(tmp_path / family, family, names_file=[f"file-{i}" for i in range(count + 1)])
    wrong = [f"user-{i}" for i in range(count + 1)]
    with pytest.raises(InvalidParameterError, match=rf"class_names= lists {count + 1} class names.*{count} classes"):
        AutoModel.from_pretrained(folder, class_names=wrong)
    with pytest.raises(AllPackagesFailedError, match=rf"class_names\.txt lists {count + 1} class names"):
        AutoModel.from_pretrained(folder)


@pytest.mark.weights
@pytest.mark.parametrize(
    ("architecture", "task", "weights", "default"),
    [
        ("blazeface", "object-detection", "face/blazeface_front_128.onnx", "face"),
        ("pp-ocr-det", "text-detection", "ocr/PP-OCRv6_det_tiny.onnx", "text"),
    ],
)
def test_single_class_families_take_a_one_name_override(asset, tmp_path, architecture, task, weights, default):
    """(CenterFace reads its names the same way; its published graph needs reshaping first, see test_centerface.)"""
    shutil.copy(asset(weights), tmp_path / "weights.onnx")
    config = {"model_architecture": architecture, "task_type": task, "backend_type": "onnx"}
    (tmp_path / "model_config.json").write_text(json.dumps(config))
    assert AutoModel.from_pretrained(tmp_path).class_names == (default,)
    assert AutoModel.from_pretrained(tmp_path, class_names=["mine"]).class_names == ("mine",)
    with pytest.raises(InvalidParameterError, match="class_names= lists 2 class names"):
        AutoModel.from_pretrained(tmp_path, class_names=["a", "b"])


# -- the network file the negotiated backend runs --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_classifier_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-class conv classifier (seeded weights) exported as ``weights.onnx`` and ``weights.pt2`` (dynamic batch),
    and as ``pt2-labelled``: the same program saved with its class names in the archive (``extra_files``)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.head = torch.nn.Linear(4, 3)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.head(torch.relu(self.conv(images)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    module = Net().eval()
    root = tmp_path_factory.mktemp("tiny-classifier")
    example = torch.rand(2, 3, 32, 32)
    paths = {"onnx": root / "weights.onnx", "pt2": root / "weights.pt2"}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy (dynamo=False) exporter says it is legacy
        torch.onnx.export(
            module,
            (example,),
            str(paths["onnx"]),
            dynamo=False,
            opset_version=17,
            input_names=["images"],
            output_names=["scores"],
            dynamic_axes={"images": {0: "batch"}, "scores": {0: "batch"}},
        )
    batch = torch.export.Dim("batch", min=1, max=16)
    program = torch.export.export(module, (example,), dynamic_shapes={"images": {0: batch}})
    torch.export.save(program, paths["pt2"])
    paths["pt2-labelled"] = root / "labelled" / "weights.pt2"
    paths["pt2-labelled"].parent.mkdir()
    torch.export.save(program, paths["pt2-labelled"], extra_files={"labels": "red\ngreen\nblue"})
    return paths


def _classifier_folder(folder: Path, weights: Path, **config: str) -> Path:
    folder.mkdir()
    shutil.copy(weights, folder / weights.name)
    (folder / "class_names.txt").write_text("red\ngreen\nblue\n")
    config = {"model_architecture": "image-classifier", "task_type": "classification", **config}
    (folder / "model_config.json").write_text(json.dumps(config))
    return folder


def test_a_pt2_classifier_folder_runs_on_torch_like_its_onnx_twin(tmp_path, tiny_classifier_exports):
    """The torch backend's weights.pt2 is the classifier's network file (it used to need one of the ONNX names)."""
    onnx = AutoModel.from_pretrained(
        _classifier_folder(tmp_path / "onnx", tiny_classifier_exports["onnx"], backend_type="onnx")
    )
    pt2 = AutoModel.from_pretrained(_classifier_folder(tmp_path / "pt2", tiny_classifier_exports["pt2"]))
    assert (onnx.metadata.backend, pt2.metadata.backend) == ("onnx", "torch")
    assert pt2.class_names == onnx.class_names == ("red", "green", "blue")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40 + 7 * i, 50, 3), dtype=np.uint8) for i in range(3)]
    for got, want in zip(pt2(images), onnx(images)):
        np.testing.assert_allclose(got.confidence, want.confidence, rtol=1e-4, atol=1e-5)
        assert got.class_name == want.class_name


def test_class_names_embedded_in_a_pt2_archive_reach_the_family_through_the_session(tmp_path, tiny_classifier_exports):
    folder = _classifier_folder(tmp_path / "pt2", tiny_classifier_exports["pt2-labelled"])
    (folder / "class_names.txt").unlink()
    model = AutoModel.from_pretrained(folder)
    assert model.session.metadata == {"labels": "red\ngreen\nblue"}
    assert model.class_names == ("red", "green", "blue")
