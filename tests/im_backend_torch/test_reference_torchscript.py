"""TorchScript packages that declare torchvision (issue 15 item 1), as the reference's matcher judges them
(roboflow/inference ``inference_models/tests/unit_tests/models/auto_loaders/test_auto_negotiation.py``)."""

from __future__ import annotations

import pytest

from im_backend_torch import TorchBackend
from im_core import BackendProbe, ModelPackage
from im_core.errors import MissingDependencyError
from im_providers import parse_model_metadata


def _probe(torchvision: str | None) -> BackendProbe:
    return BackendProbe("torch", True, "2.5.1", ("cpu",), {"torchvision": torchvision})


def _pkg(**req: object) -> ModelPackage:
    return ModelPackage(package_id="p", backend="torch", requirements={"format": "torchscript", **req})


def test_torchvision_required_but_not_found() -> None:
    """Mirrors test_torch_script_package_matches_runtime_environment_when_torchvision_version_required_but_not_found."""
    v = TorchBackend().check(_pkg(torchvision_version="0.20.0"), _probe(None), "cpu")
    assert not v.ok and "torchvision is not installed" in v.reason


def test_torchvision_too_low() -> None:
    """Mirrors ..._when_torchvision_version_required_and_found_too_low."""
    v = TorchBackend().check(_pkg(torchvision_version="0.20.0"), _probe("0.19.1"), "cpu")
    assert not v.ok and "torchvision >= 0.20.0" in v.reason


@pytest.mark.parametrize("installed", ["0.20.0", "0.21.0+cu124"])
def test_torchvision_equal_or_higher(installed: str) -> None:
    """Mirrors ..._when_torchvision_version_required_and_matches_exactly and ..._and_matches_higher."""
    assert TorchBackend().check(_pkg(torchvision_version="0.20.0"), _probe(installed), "cpu").ok


def test_wire_reads_torchvision_version() -> None:
    doc = {
        "modelId": "m/1",
        "modelArchitecture": "yolov8",
        "taskType": "object-detection",
        "modelPackages": [
            {
                "packageId": "ts",
                "packageFiles": [],
                "packageManifest": {
                    "type": "torch-script-model-package-v1",
                    "dynamicBatchSize": True,
                    "quantization": "fp32",
                    "supportedDeviceTypes": ["cpu"],
                    "torchVersion": "2.4.0",
                    "torchVisionVersion": "0.19.0",
                },
            }
        ],
    }
    assert parse_model_metadata(doc).packages[0].requirements["torchvision_version"] == "0.19.0"


def test_load_imports_torchvision_first_and_says_install_it(tmp_path, monkeypatch) -> None:
    """A graph calling torchvision::nms needs torchvision imported before torch.jit.load; without it: an im error
    naming what to install, not a TorchScript RuntimeError."""
    import sys

    monkeypatch.setitem(sys.modules, "torchvision", None)
    (tmp_path / "weights.torchscript").write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    with pytest.raises(MissingDependencyError, match="pip install torchvision"):
        TorchBackend().load(tmp_path / "weights.torchscript", device="cpu", package=_pkg(torchvision_version="0.1"))
