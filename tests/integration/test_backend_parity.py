"""Cross-backend parity on real weights: the pinned MobileNetV2 backbone (torchvision ``features.*`` state dict).

The test loads the state dict into the model family's module (``im_models.embeddings._mobilenetv2``), exports it
itself to ONNX (opset 17, dynamic batch), TorchScript and ``.pt2``, and checks that every backend gives the eager
module's (N, 1280) pooled features for a real photograph (scikit-image's astronaut, resized to 224) within 1e-4
relative error. TensorRT is not part of it on CPU: no engine can be built or run without a GPU and the full builder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.weights

REL_TOL = 1e-4
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
_STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]


def _relative_error(got: Any, want: np.ndarray) -> float:
    from im_core.testing import to_numpy

    got = to_numpy(got).astype(np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


@pytest.fixture(scope="module")
def images(asset: Callable[[str], Path]) -> np.ndarray:
    """(2, 3, 224, 224) float32: the astronaut photo and its mirror image, ImageNet-normalised RGB."""
    from PIL import Image

    rgb = np.asarray(Image.open(asset("images/astronaut.png")).convert("RGB").resize((224, 224), Image.BILINEAR))
    chw = (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)
    x = (chw - _MEAN) / _STD
    return np.ascontiguousarray(np.stack([x, x[:, :, ::-1]]), dtype=np.float32)


@pytest.fixture(scope="module")
def exported(mobilenet_exports: dict[str, Any]) -> dict[str, Any]:
    """The eager module and its exports (built once per session in ``conftest.py``)."""
    return mobilenet_exports


@pytest.fixture(scope="module")
def reference(exported: dict[str, Any], images: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        out = exported["module"](torch.from_numpy(images)).double().numpy()
    assert out.shape == (2, 1280) and np.isfinite(out).all() and out.std() > 0
    return out


def _sessions(exported: dict[str, Any], device: str) -> dict[str, Any]:
    from im_backend_onnx import OnnxBackend
    from im_backend_torch import TorchBackend
    from im_models.embeddings._mobilenetv2 import build_mobilenet_v2_backbone

    spec = [("images", (None, 3, 224, 224), "float32")]
    out = [("features", (None, 1280), "float32")]  # given in full: no dry run at load
    onnx_opts: dict[str, Any] = {}
    if device.startswith("cuda"):
        onnx_opts["onnx_execution_providers"] = ["CUDAExecutionProvider"]
    torch_backend = TorchBackend()
    return {
        "onnx": OnnxBackend().load(exported["onnx"], device=device, **onnx_opts),
        "torchscript": torch_backend.load(exported["torchscript"], device=device, inputs=spec, outputs=out),
        "pt2": torch_backend.load(exported["pt2"], device=device, outputs=["features"]),
        "state-dict": torch_backend.load(
            exported["state-dict"],
            device=device,
            module=build_mobilenet_v2_backbone,
            inputs=spec,
            outputs=out,
        ),
    }


def _check(sessions: dict[str, Any], images: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    errors = {}
    for name, session in sessions.items():
        (inp,) = session.inputs
        out = session.run({inp.name: images})
        (features,) = out.values()
        errors[name] = _relative_error(features, reference)
        single = session.run({inp.name: images[1:]})
        errors[f"{name}/single"] = _relative_error(next(iter(single.values())), reference[1:])
    bad = {k: v for k, v in errors.items() if not v <= REL_TOL}
    assert not bad, f"relative errors above {REL_TOL}: {bad} (all: {errors})"
    return errors


def test_all_cpu_backends_agree_on_real_weights(
    exported: dict[str, Any], images: np.ndarray, reference: np.ndarray
) -> None:
    errors = _check(_sessions(exported, "cpu"), images, reference)
    print("relative errors vs eager torch:", {k: f"{v:.2e}" for k, v in errors.items()})  # shown with -s
    assert set(errors) >= {"onnx", "torchscript", "pt2", "state-dict"}


@pytest.mark.gpu
def test_all_cuda_backends_agree_on_real_weights(
    exported: dict[str, Any], images: np.ndarray, reference: np.ndarray
) -> None:
    """On a GPU (ONNX CUDA EP with IO binding, torch CUDA): same features within 1e-4 relative error."""
    _check(_sessions(exported, "cuda:0"), images, reference)
