"""The one wire parser: a realistic multi-package Roboflow document, our extensions, and what is skipped."""

from __future__ import annotations

import logging

import pytest

from im_core.errors import MalformedMetadataError
from im_providers import parse_model_metadata

MD5 = "0123456789abcdef0123456789abcdef"
SHA = "ab" * 32


def _document() -> dict:
    files = [{"fileHandle": "weights.onnx", "downloadUrl": "https://storage.example/w.onnx?X-Sig=s", "md5Hash": MD5}]
    return {
        "modelMetadata": {
            "type": "external-model-metadata-v1",
            "modelId": "coco/3",
            "modelArchitecture": "yolov8",
            "modelVariant": "yolov8n",
            "taskType": "object-detection",
            "modelDependencies": [{"type": "model-dependency-v1", "name": "embedder", "modelId": "clip/1"}],
            "recommendedParameters": {"confidence": 0.41, "perClassConfidence": {"car": 0.5}},
            "modelLatencyMs": 3.2,
            "nextPage": None,
            "modelPackages": [
                {
                    "type": "external-model-package-v1",
                    "packageId": "onnx1",
                    "trustedSource": True,
                    "modelFeatures": {"nms_fused": {"max_detections": 300}},
                    "packageFiles": files,
                    "packageManifest": {
                        "type": "onnx-model-package-v1",
                        "backendType": "onnx",
                        "dynamicBatchSize": False,
                        "staticBatchSize": 1,
                        "quantization": "fp32",
                        "opset": 17,
                        "incompatibleProviders": ["TensorrtExecutionProvider"],
                    },
                },
                {
                    "type": "external-model-package-v1",
                    "packageId": "trt1",
                    "packageFiles": [{"fileHandle": "engine.plan", "downloadUrl": "https://s/e", "md5Hash": MD5}],
                    "packageManifest": {
                        "type": "trt-model-package-v1",
                        "backendType": "trt",
                        "dynamicBatchSize": True,
                        "minBatchSize": 1,
                        "optBatchSize": 4,
                        "maxBatchSize": 16,
                        "quantization": "fp16",
                        "cudaDeviceType": "NVIDIA H100",
                        "cudaDeviceCC": "9.0",
                        "cudaVersion": "12.4",
                        "trtVersion": "10.3.0",
                        "sameCCCompatible": True,
                        "trtForwardCompatible": False,
                        "trtLeanRuntimeExcluded": True,
                        "machineType": "gpu-server",
                        "machineSpecs": {"type": "gpu-server-specs-v1", "driverVersion": "550.1", "osVersion": "x"},
                    },
                },
                {
                    "type": "external-model-package-v1",
                    "packageId": "ts1",
                    "packageFiles": [{"fileHandle": "weights.torchscript", "downloadUrl": "https://s/t"}],
                    "packageManifest": {
                        "type": "torch-script-model-package-v1",
                        "backendType": "torch-script",
                        "dynamicBatchSize": True,
                        "quantization": "bf16",
                        "supportedDeviceTypes": ["cpu", "cuda"],
                        "torchVersion": "2.4.0",
                    },
                },
                {  # an unknown type: skipped with a reason
                    "packageId": "alien",
                    "packageFiles": [],
                    "packageManifest": {"type": "quantum-model-package-v9", "backendType": "qpu"},
                },
                {  # a hostile file name: skipped, never fatal
                    "packageId": "evil",
                    "packageFiles": [{"fileHandle": "../../.bashrc", "downloadUrl": "https://s/x", "md5Hash": MD5}],
                    "packageManifest": {"type": "onnx-model-package-v1", "staticBatchSize": 1},
                },
                {  # neither static nor dynamic batch: skipped
                    "packageId": "nobatch",
                    "packageFiles": [],
                    "packageManifest": {"type": "onnx-model-package-v1", "staticBatchSize": 0},
                },
                {"packageId": "hf1", "packageManifest": {"type": "hf-model-package-v1"}},  # known, quietly skipped
            ],
        }
    }


def test_realistic_document_maps_every_field(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="im")
    md = parse_model_metadata(_document(), provider="roboflow")
    assert (md.model_id, md.architecture, md.variant, md.task) == ("coco/3", "yolov8", "yolov8n", "object-detection")
    assert md.recommended_parameters.confidence == 0.41
    assert md.recommended_parameters.per_class_confidence == {"car": 0.5}
    assert md.dependencies[0].name == "embedder" and md.dependencies[0].model_id == "clip/1"
    assert [p.package_id for p in md.packages] == ["onnx1", "trt1", "ts1"]
    onnx, trt, ts = md.packages
    assert onnx.backend == "onnx" and onnx.requirements["opset"] == 17 and onnx.batch.describe() == "1"
    assert onnx.requirements["incompatible_providers"] == ["TensorrtExecutionProvider"]
    assert onnx.trusted and onnx.features["nms_fused"]["max_detections"] == 300
    assert onnx.files[0].md5 == MD5 and onnx.files[0].url.endswith("?X-Sig=s")
    assert trt.backend == "trt" and trt.quantization == "fp16" and not trt.trusted
    assert (trt.batch.dynamic, trt.batch.min, trt.batch.opt, trt.batch.max) == (True, 1, 4, 16)
    assert trt.requirements["compute_capability"] == "9.0" and trt.requirements["trt_version"] == "10.3.0"
    assert trt.requirements["driver_version"] == "550.1" and trt.requirements["lean_runtime_excluded"]
    assert trt.requirements["same_cc_compatible"]
    assert ts.backend == "torch" and ts.requirements["format"] == "torchscript"
    assert ts.requirements["device_types"] == ["cpu", "cuda"]
    assert ts.batch.dynamic and ts.batch.max is None and ts.quantization == "bf16"
    text = caplog.text
    assert "alien" in text and "quantum-model-package-v9" in text
    assert "evil" in text and "nobatch" in text and "hf1" in text


def test_our_extensions_and_relative_urls() -> None:
    doc = {
        "modelId": "mediapipe/face-detector",
        "modelArchitecture": "blazeface",
        "taskType": "object-detection",
        "classNames": ["face"],
        "modelPackages": [
            {
                "packageId": "onnx-fp32-b1",
                "inputSize": [128, 128],
                "packageFiles": [
                    {
                        "fileHandle": "model.onnx",
                        "downloadUrl": "onnx-fp32-b1/model.onnx",
                        "sha256Hash": SHA.upper(),
                        "md5Hash": MD5,
                        "size": 10,
                    }
                ],
                "packageManifest": {"type": "onnx-model-package-v1", "staticBatchSize": 1, "quantization": "weird"},
            }
        ],
    }
    md = parse_model_metadata(doc, base_url="http://h:1/reg/mediapipe/face-detector/metadata.json")
    pkg = md.packages[0]
    assert md.class_names == ("face",) and pkg.input_size == (128, 128) and pkg.quantization == "unknown"
    f = pkg.files[0]
    assert f.url == "http://h:1/reg/mediapipe/face-detector/onnx-fp32-b1/model.onnx"
    assert (f.sha256, f.md5, f.size) == (SHA, MD5, 10)


def test_pagination_fields_are_ignored_by_the_parser() -> None:
    doc = _document()
    doc["modelMetadata"]["nextPage"] = "cursor-2"
    assert len(parse_model_metadata(doc).packages) == 3


@pytest.mark.parametrize(
    "doc",
    [
        [],
        "x",
        {"modelMetadata": {"modelId": "a"}},
        {"modelArchitecture": "y", "taskType": 3},
        {"modelArchitecture": "y", "taskType": "t", "modelDependencies": [{"name": "1bad"}]},
    ],
)
def test_malformed_documents_raise(doc: object) -> None:
    with pytest.raises(MalformedMetadataError):
        parse_model_metadata(doc, model_id="m")  # type: ignore[arg-type]


def _minimal(**fields: object) -> dict:
    return {"modelId": "x", "modelArchitecture": "yolov8", "taskType": "object-detection", **fields}


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (_minimal(modelPackages=5), "modelPackages"),
        (_minimal(modelPackages="onnx"), "modelPackages"),
        (_minimal(modelPackages={"packageId": "p"}), "modelPackages"),
        (_minimal(classNames="car"), "classNames"),
        (_minimal(classNames=[1, 2]), r"classNames\[0\]"),
        (_minimal(classNames=["a", None]), r"classNames\[1\]"),
        (_minimal(modelDependencies=5), "modelDependencies"),
        (_minimal(modelDependencies=[3]), r"modelDependencies\[0\]"),
        (_minimal(modelDependencies=[{"name": "e", "modelId": 7}]), "modelId"),
        (_minimal(modelDependencies=[{"name": None, "modelId": "clip/1"}]), r"modelDependencies\[0\]"),
        (_minimal(modelVariant=["n"]), "modelVariant"),
        (_minimal(modelId=12), "modelId"),
        (_minimal(taskType=None), "taskType"),
        (_minimal(modelArchitecture=["yolov8"]), "modelArchitecture"),
        (_minimal(recommendedParameters=[0.5]), "recommendedParameters"),
    ],
)
def test_wrong_json_types_name_the_field(doc: dict, field: str) -> None:
    with pytest.raises(MalformedMetadataError, match=field):
        parse_model_metadata(doc, model_id="x")


def _onnx_package(**fields: object) -> dict:
    manifest = {"type": "onnx-model-package-v1", "staticBatchSize": 1, **fields.pop("manifest", {})}
    return {"packageId": "p", "packageManifest": manifest, "packageFiles": [], **fields}


@pytest.mark.parametrize(
    ("package", "reason"),
    [
        ({"packageId": "p", "packageManifest": 5}, "no packageManifest"),
        (_onnx_package(trustedSource="false"), "trustedSource must be true or false"),
        (_onnx_package(manifest={"dynamicBatchSize": "false"}), "dynamicBatchSize must be true or false"),
        (_onnx_package(packageFiles=5), "packageFiles must be an array, got a number"),
        (_onnx_package(packageFiles=[{"fileHandle": 3}]), "fileHandle"),
    ],
)
def test_malformed_packages_are_skipped_with_a_reason(package: dict, reason: str, caplog) -> None:
    """A package of the wrong shape is skipped (logged), never a raw error and never silently trusted."""
    caplog.set_level(logging.WARNING, logger="im.providers")
    md = parse_model_metadata(_minimal(modelPackages=[package]), model_id="x")
    assert md.packages == ()
    assert reason in caplog.text


def test_boolean_flags_are_taken_as_booleans() -> None:
    md = parse_model_metadata(_minimal(modelPackages=[_onnx_package(trustedSource=False)]), default_trusted=True)
    assert md.packages[0].trusted is False
    md = parse_model_metadata(_minimal(modelPackages=[_onnx_package()]), default_trusted=True)
    assert md.packages[0].trusted is True
