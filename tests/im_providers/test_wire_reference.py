"""Manifests the wire parser refuses as the reference's schema does (issue 15 item 3), with the reason carried into
the negotiation report (``ModelMetadata.skipped_packages``). Docstrings name the reference code or test mirrored
(roboflow/inference ``inference_models``: weights_providers/trt_manifest.py, validate_batch_settings in
weights_providers/roboflow.py, tests/unit_tests/weights_providers/test_roboflow.py)."""

from __future__ import annotations

from typing import Any

import pytest

from im_providers import parse_model_metadata

TRT: dict[str, Any] = {
    "type": "trt-model-package-v1",
    "backendType": "trt",
    "dynamicBatchSize": True,
    "minBatchSize": 1,
    "optBatchSize": 4,
    "maxBatchSize": 16,
    "quantization": "fp16",
    "cudaDeviceType": "nvidia-l4",
    "cudaDeviceCC": "8.9",
    "cudaVersion": "12.6",
    "trtVersion": "10.4.0",
    "machineType": "gpu-server",
    "machineSpecs": {"type": "gpu-server-specs-v1", "driverVersion": "550.1", "osVersion": "ubuntu-22.04"},
}
ONNX: dict[str, Any] = {"type": "onnx-model-package-v1", "staticBatchSize": 1, "quantization": "fp32", "opset": 17}


def _parse(manifest: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    doc = {
        "modelId": "m/1",
        "modelArchitecture": "yolov8",
        "taskType": "object-detection",
        "modelPackages": [{"packageId": "p", "packageFiles": [], "packageManifest": manifest}],
    }
    md = parse_model_metadata(doc)
    return [p.package_id for p in md.packages], {s.package_id: s.reason for s in md.skipped_packages}


def _without(manifest: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in keys}


def test_a_complete_trt_manifest_is_read_with_its_machine() -> None:
    doc = {"modelArchitecture": "yolov8", "taskType": "object-detection"}
    jetson = {
        **TRT,
        "machineType": "jetson",
        "machineSpecs": {
            "type": "jetson-machine-specs-v1",
            "l4tVersion": "36.4.3",
            "deviceName": "nvidia-jetson-orin-nano",
            "driverVersion": "540.4",
        },
    }
    packages = [{"packageId": k, "packageFiles": [], "packageManifest": m} for k, m in (("srv", TRT), ("jet", jetson))]
    md = parse_model_metadata({**doc, "modelPackages": packages}, model_id="m/1")
    srv, jet = md.packages
    assert srv.requirements["os_version"] == "ubuntu-22.04" and srv.requirements["device_name"] == "nvidia-l4"
    assert jet.requirements["l4t_version"] == "36.4.3" and jet.requirements["machine_type"] == "jetson"
    assert jet.requirements["jetson_device_name"] == "nvidia-jetson-orin-nano"


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        # trt_manifest.py: trtVersion, cudaDeviceType and cudaDeviceCC are required fields
        (_without(TRT, "trtVersion"), "declares no trtVersion"),
        (_without(TRT, "cudaDeviceType"), "declares no GPU"),
        (_without(TRT, "cudaDeviceCC"), "declares no GPU"),
        # dynamic TensorRT without bounds (the engine's optimisation profile)
        (_without(TRT, "minBatchSize", "maxBatchSize"), "without minBatchSize and maxBatchSize"),
        # machineSpecs discriminated by type: they must fit machineType
        ({**TRT, "machineType": "jetson"}, "contradicts machineType"),
        ({**TRT, "machineType": "mainframe"}, "machineType must be"),
        (
            {**TRT, "machineType": "jetson", "machineSpecs": {"type": "jetson-machine-specs-v1", "deviceName": "x"}},
            "l4tVersion",
        ),
        # validate_batch_settings: exactly one of a dynamic or a positive static batch
        ({**TRT, "staticBatchSize": 4}, "dynamic batch and a static batch size"),
        ({**ONNX, "dynamicBatchSize": True}, "dynamic batch and a static batch size"),
        ({**TRT, "minBatchSize": 8, "maxBatchSize": 4, "optBatchSize": None}, "minBatchSize 8 > maxBatchSize 4"),
        ({**TRT, "optBatchSize": 32}, "optBatchSize 32 lies outside"),
        ({**ONNX, "staticBatchSize": 0}, "neither a dynamic batch nor a positive static"),
    ],
)
def test_contradictory_or_incomplete_manifests_are_skipped_with_the_reason(
    manifest: dict[str, Any], reason: str
) -> None:
    """Mirrors the reference's schema refusals named per case (trt_manifest.py's required fields and discriminated
    machine specs; validate_batch_settings); the reason reaches the negotiation report."""
    kept, skipped = _parse({k: v for k, v in manifest.items() if v is not None})
    assert kept == [] and reason in skipped["p"]


def test_skipped_reason_is_shown_in_the_negotiation_report() -> None:
    from im_core._negotiation import negotiate_packages

    doc = {
        "modelId": "m/1",
        "modelArchitecture": "yolov8",
        "taskType": "object-detection",
        "modelPackages": [{"packageId": "t", "packageFiles": [], "packageManifest": _without(TRT, "trtVersion")}],
    }
    report = negotiate_packages(parse_model_metadata(doc))
    assert "declares no trtVersion" in str(report)


def test_automodel_negotiate_takes_nms_fusion_preferences(tmp_path) -> None:
    """The reference's ``nms_fusion_preferences`` through ``AutoModel.negotiate`` (the same arguments as
    ``from_pretrained``), from a registry document: by default the package whose NMS im runs comes first."""
    import json

    from im_core import AutoModel

    fused = {"max_detections": 300, "confidence_threshold": 0.25, "iou_threshold": 0.7, "class_agnostic": False}
    files = [{"fileHandle": "weights.onnx", "downloadUrl": "https://example.com/w.onnx"}]
    entry = {
        "modelId": "odd/model",
        "modelArchitecture": "yolov8",
        "taskType": "object-detection",
        "modelPackages": [
            {
                "packageId": "a-fused",
                "modelFeatures": {"nms_fused": fused},
                "packageFiles": files,
                "packageManifest": ONNX,
            },
            {"packageId": "b-plain", "packageFiles": files, "packageManifest": ONNX},
        ],
    }
    folder = tmp_path / "registry" / "odd" / "model"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps(entry))
    kw = {"weights_provider": "local", "provider_options": {"root": tmp_path / "registry"}, "device": "cpu"}
    assert [v.package_id for v in AutoModel.negotiate("odd/model", **kw).ranked] == ["b-plain", "a-fused"]
    refused = AutoModel.negotiate("odd/model", nms_fusion_preferences=False, **kw)
    assert [v.package_id for v in refused.ranked] == ["b-plain"]
    assert "nms_fusion_preferences=False" in str(refused)
    preferred = AutoModel.negotiate("odd/model", nms_fusion_preferences={"iou_threshold": 0.7}, **kw)
    assert [v.package_id for v in preferred.ranked] == ["a-fused", "b-plain"]
