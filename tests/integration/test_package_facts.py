"""Facts every family takes from core, end to end through ``AutoModel``: the network file the negotiated backend
runs (``PackageContext.network_file``)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel

# -- the network file the negotiated backend runs --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_classifier_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-class conv classifier (seeded weights) exported as ``weights.onnx`` and ``weights.pt2`` (dynamic batch)."""
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
    torch.export.save(torch.export.export(module, (example,), dynamic_shapes={"images": {0: batch}}), paths["pt2"])
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
