"""The one parser of the Roboflow ``modelMetadata`` wire document, shared by every provider.

Wire shape (camelCase): ``modelId``, ``modelArchitecture``, ``taskType``, ``modelVariant``, ``modelDependencies``,
``recommendedParameters``, ``nextPage`` and ``modelPackages``; each package has ``packageId``, ``trustedSource``,
``modelFeatures``, ``packageFiles`` (``fileHandle``, ``downloadUrl``, ``md5Hash``) and a typed
``packageManifest``. Our registries add, optionally: ``classNames`` (model), ``inputSize`` ``[h, w]`` (package),
``sha256Hash`` and ``size`` (bytes, per file). Relative ``downloadUrl`` values are resolved against ``base_url``
(the location of the metadata document).

Each Roboflow package type becomes a backend name plus that backend's requirement block as plain data
(``ModelPackage.requirements``, snake_case keys: ``{"opset": 17}``); the backend reads the block with its own
model, so this module imports no backend. Packages of any other installed backend use our generic type
``im-model-package-v1``: ``backendType`` names the backend and ``requirements`` (an object) is its block as is.

Unknown package types and packages that fail to parse are skipped with a logged reason; only a document that is
not a model at all raises :class:`MalformedMetadataError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from pydantic import ValidationError

from im_core.errors import ImError, MalformedMetadataError
from im_core.sdk import (
    BatchSpec,
    FileSpec,
    ModelDependency,
    ModelMetadata,
    ModelPackage,
    RecommendedParameters,
    SkippedPackage,
)

#: ModelPackage.quantization values (the wire parser's own copy of the Literal; checked by pydantic)
Quantization = Literal["fp32", "fp16", "bf16", "int8", "unknown"]

__all__ = [
    "GENERIC_PACKAGE_TYPE",
    "KNOWN_SKIPPED_TYPES",
    "PACKAGE_PARSERS",
    "check_field",
    "json_type",
    "parse_model_metadata",
]

log = logging.getLogger("im.providers")

_QUANT: dict[str, Quantization] = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8": "int8"}
#: package types other runtimes use; skipped quietly (debug log) rather than with a warning.
KNOWN_SKIPPED_TYPES = frozenset(
    {
        "hf-model-package-v1",
        "ultralytics-model-package-v1",
        "coreml-model-package-v1",
        "oak-model-package-v1",
        "tfjs-model-package-v1",
        "mediapipe-model-package-v1",
    }
)


class _Skip(Exception):
    """This package cannot be used; the message says why."""


_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number"}


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, with an article ("an array", "null") for error messages."""
    if value is None:
        return "null"
    for kind, name in _JSON_NAMES.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, float) else type(value).__name__


def _is(value: Any, kind: type) -> bool:
    """``value`` is of JSON type ``kind`` (``dict`` means any mapping; a boolean is not a number)."""
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, Mapping if kind is dict else kind)


def check_field(document: Mapping[str, Any], key: str, kind: type, *, where: str, items: type | None = None) -> Any:
    """``document[key]`` if it is absent/null or of JSON type ``kind`` (each element of type ``items``, for arrays).

    Raises:
        MalformedMetadataError: naming ``where`` (e.g. "Metadata of model 'x'") and the field.
    """
    value = document.get(key)
    if value is None:
        return None
    if not _is(value, kind):
        raise MalformedMetadataError(
            f"{where}: {key!r} must be {_JSON_NAMES[kind]} or null, got {json_type(value)}; the provider sent a "
            "malformed document."
        )
    bad = [i for i, v in enumerate(value) if not _is(v, items)] if items is not None else []
    if bad:
        assert items is not None
        raise MalformedMetadataError(
            f"{where}: {key}[{bad[0]}] must be {_JSON_NAMES[items]}, got {json_type(value[bad[0]])}; the provider "
            "sent a malformed document."
        )
    return value


def _flag(m: Mapping[str, Any], key: str, default: bool) -> bool:
    """A boolean manifest field: true/false or absent (``default``); ``"false"`` is not silently true."""
    value = m.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _Skip(f"{key} must be true or false, got {json_type(value)}")
    return value


def _positive(m: Mapping[str, Any], key: str) -> int | None:
    value = m.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Skip(f"{key} must be a positive integer, got {value!r}")
    return value


def _batch(m: Mapping[str, Any]) -> BatchSpec:
    """Exactly one of a dynamic batch (``minBatchSize`` <= ``optBatchSize`` <= ``maxBatchSize`` where given) or a
    positive static batch size; a manifest declaring both, or bounds that contradict each other, is refused."""
    static = m.get("staticBatchSize")
    if _flag(m, "dynamicBatchSize", False):
        if static is not None:
            raise _Skip(
                f"its manifest declares a dynamic batch and a static batch size ({static!r}) at once; it must be one"
            )
        lo = _positive(m, "minBatchSize") or 1
        hi, opt = _positive(m, "maxBatchSize"), _positive(m, "optBatchSize")
        if hi is not None and lo > hi:
            raise _Skip(f"its dynamic batch bounds contradict each other: minBatchSize {lo} > maxBatchSize {hi}")
        if opt is not None and not (lo <= opt <= (hi if hi is not None else opt)):
            raise _Skip(f"its optBatchSize {opt} lies outside the dynamic batch bounds {lo}..{hi}")
        return BatchSpec(dynamic=True, min=lo, max=hi, opt=opt)
    if isinstance(static, int) and not isinstance(static, bool) and static > 0:
        return BatchSpec.static(static)
    raise _Skip("its manifest declares neither a dynamic batch nor a positive static batch size")


def _block(backend: str, **requirements: Any) -> dict[str, Any]:
    """The ModelPackage fields of one backend: its name and its requirement block (absent values left out)."""
    return {"backend": backend, "requirements": {k: v for k, v in requirements.items() if v is not None}}


def _names(m: Mapping[str, Any], key: str) -> list[Any] | None:
    value = m.get(key)
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise _Skip(f"{key} must be an array, got {json_type(value)}")
    return list(value)


def _onnx(m: Mapping[str, Any]) -> dict[str, Any]:
    return _block("onnx", opset=m.get("opset"), incompatible_providers=_names(m, "incompatibleProviders"))


_MACHINE_SPECS = {"gpu-server": "gpu-server-specs-v1", "jetson": "jetson-machine-specs-v1"}


def _text(m: Mapping[str, Any], key: str) -> str | None:
    value = m.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise _Skip(f"{key} must be a string, got {json_type(value)}")
    return str(value)


def _trt(m: Mapping[str, Any]) -> dict[str, Any]:
    """A TensorRT manifest, complete as the reference requires: the TensorRT version and the GPU (name and
    compute capability) it was built for, dynamic batch bounds, and machine specs that fit the machine type."""
    trt_version, cc, gpu = _text(m, "trtVersion"), _text(m, "cudaDeviceCC"), _text(m, "cudaDeviceType")
    if trt_version is None:
        raise _Skip("its TensorRT manifest declares no trtVersion (a plan runs only on the TensorRT it was built for)")
    if cc is None or gpu is None:
        missing = " and ".join(k for k, v in (("cudaDeviceType", gpu), ("cudaDeviceCC", cc)) if v is None)
        raise _Skip(
            f"its TensorRT manifest declares no GPU ({missing} missing); a plan is tied to the GPU it was built for"
        )
    if _flag(m, "dynamicBatchSize", False) and (m.get("minBatchSize") is None or m.get("maxBatchSize") is None):
        raise _Skip("its TensorRT manifest declares a dynamic batch without minBatchSize and maxBatchSize bounds")
    machine = m.get("machineType")
    if machine is not None and machine not in _MACHINE_SPECS:
        raise _Skip(f"machineType must be 'gpu-server' or 'jetson', got {machine!r}")
    specs = m.get("machineSpecs")
    if specs is not None and not _is(specs, dict):
        raise _Skip(f"machineSpecs must be an object, got {json_type(specs)}")
    specs = specs or {}
    kind = specs.get("type")
    if machine is not None and kind is not None and kind != _MACHINE_SPECS[machine]:
        raise _Skip(f"its machineSpecs are {kind!r}, which contradicts machineType {machine!r}")
    if machine is None and kind is not None:
        machine = {v: k for k, v in _MACHINE_SPECS.items()}.get(kind)
    l4t = _text(specs, "l4tVersion")
    if machine == "jetson" and l4t is None:
        raise _Skip("its Jetson TensorRT manifest declares no machineSpecs.l4tVersion")
    return _block(
        "trt",
        trt_version=trt_version,
        compute_capability=cc,
        device_name=gpu,
        same_cc_compatible=_flag(m, "sameCCCompatible", False),
        forward_compatible=_flag(m, "trtForwardCompatible", False),
        lean_runtime_excluded=_flag(m, "trtLeanRuntimeExcluded", False),
        cuda_version=_text(m, "cudaVersion"),
        driver_version=_text(specs, "driverVersion"),
        os_version=_text(specs, "osVersion"),
        machine_type=machine,
        l4t_version=l4t,
        jetson_device_name=_text(specs, "deviceName") if machine == "jetson" else None,
    )


def _torchscript(m: Mapping[str, Any]) -> dict[str, Any]:
    return _block(
        "torch",
        format="torchscript",
        torch_version=m.get("torchVersion"),
        device_types=_names(m, "supportedDeviceTypes"),
        torchvision_version=_text(m, "torchVisionVersion"),
    )


def _torch(m: Mapping[str, Any]) -> dict[str, Any]:
    return _block(
        "torch",
        format="state-dict",
        torch_version=m.get("torchVersion"),
        device_types=_names(m, "supportedDeviceTypes"),
    )


#: our generic package type, for a backend the Roboflow types do not cover
GENERIC_PACKAGE_TYPE = "im-model-package-v1"


def _generic(m: Mapping[str, Any]) -> dict[str, Any]:
    backend = m.get("backendType")
    if not isinstance(backend, str) or not backend.strip():
        raise _Skip(f"a {GENERIC_PACKAGE_TYPE} manifest needs a backendType string, got {json_type(backend)}")
    requirements = m.get("requirements")
    if requirements is not None and not _is(requirements, dict):
        raise _Skip(f"requirements must be an object, got {json_type(requirements)}")
    return {"backend": backend, "requirements": dict(requirements or {})}


#: manifest ``type`` -> function returning the backend name and requirement block of a ModelPackage.
PACKAGE_PARSERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "onnx-model-package-v1": _onnx,
    "trt-model-package-v1": _trt,
    "torch-script-model-package-v1": _torchscript,
    "torch-model-package-v1": _torch,
    GENERIC_PACKAGE_TYPE: _generic,
}


def _recommended(raw: Any) -> RecommendedParameters | None:
    if not isinstance(raw, Mapping):
        return None
    return RecommendedParameters(
        confidence=raw.get("confidence"),
        per_class_confidence=raw.get("perClassConfidence") or {},
        iou_threshold=raw.get("iouThreshold"),
        max_detections=raw.get("maxDetections"),
    )


def _file(raw: Any, base_url: str | None) -> FileSpec:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("fileHandle"), str):
        raise _Skip("a packageFiles entry has no fileHandle")
    url = raw.get("downloadUrl")
    if isinstance(url, str) and base_url is not None:
        url = urljoin(base_url, url)
    if isinstance(url, str):
        _check_scheme(url, raw["fileHandle"], base_url)
    return FileSpec(
        name=raw["fileHandle"], url=url, size=raw.get("size"), sha256=raw.get("sha256Hash"), md5=raw.get("md5Hash")
    )


def _check_scheme(url: str, name: str, base_url: str | None) -> None:
    """Files are fetched over http(s); ``file://`` only when the document itself is a local file (a registry folder):
    a remote registry must never make im copy files of this machine into its cache."""
    scheme = urlsplit(url).scheme.lower()
    local_document = base_url is not None and urlsplit(base_url).scheme.lower() == "file"
    if scheme == "file" and not local_document:
        raise _Skip(
            f"its file {name!r} names a local file (file://), which only a registry folder may do; a document served "
            "over the network may only name http(s) URLs"
        )
    if scheme not in ("", "http", "https", "file"):
        raise _Skip(f"its file {name!r} has a {scheme}:// URL; im downloads only over http(s)")


def _package(raw: Any, base_url: str | None, default_trusted: bool) -> ModelPackage:
    if not isinstance(raw, Mapping):
        raise _Skip("it is not an object")
    manifest = raw.get("packageManifest")
    if not isinstance(manifest, Mapping):
        raise _Skip("it has no packageManifest")
    kind = manifest.get("type")
    parser = PACKAGE_PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise _Skip(f"its package type {kind!r} is not one im can run")
    fields = parser(manifest)
    size = raw.get("inputSize")
    files = raw.get("packageFiles") or []
    if not isinstance(files, (list, tuple)):
        raise _Skip(f"packageFiles must be an array, got {json_type(files)}")
    return ModelPackage(
        package_id=raw.get("packageId"),  # type: ignore[arg-type]  # pydantic refuses a missing id (skipped)
        quantization=_QUANT.get(str(manifest.get("quantization", "")).lower(), "unknown"),
        batch=_batch(manifest),
        input_size=tuple(size) if isinstance(size, (list, tuple)) else None,
        files=tuple(_file(f, base_url) for f in files),
        trusted=_flag(raw, "trustedSource", default_trusted),
        features=dict(raw.get("modelFeatures") or {}),
        recommended_parameters=_recommended(raw.get("recommendedParameters")),
        **fields,
    )


def _dependencies(raw: Any, where: str) -> tuple[ModelDependency, ...]:
    out = []
    for i, d in enumerate(raw):
        if not isinstance(d, Mapping):
            raise MalformedMetadataError(f"{where}: modelDependencies[{i}] must be an object, got {json_type(d)}.")
        at = f"{where}: modelDependencies[{i}]"
        name, model_id = check_field(d, "name", str, where=at), check_field(d, "modelId", str, where=at)
        if name is None or model_id is None:
            raise MalformedMetadataError(f"{at} needs a string 'name' and 'modelId'.")
        try:
            dep = ModelDependency(
                name=name, model_id=model_id, package_id=check_field(d, "modelPackageId", str, where=at)
            )
        except ValidationError as exc:
            raise MalformedMetadataError(f"{at} is invalid: {_reason(exc)}") from None
        out.append(dep)
    return tuple(out)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ImError):
        return exc.message
    if isinstance(exc, ValidationError) and exc.errors():
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def parse_model_metadata(
    document: Mapping[str, Any],
    *,
    model_id: str | None = None,
    base_url: str | None = None,
    provider: str | None = None,
    default_trusted: bool = False,
) -> ModelMetadata:
    """Turn a ``modelMetadata`` document (or ``{"modelMetadata": ...}``) into a :class:`ModelMetadata`.

    Args:
        model_id: the id that was asked for (used when the document has no ``modelId``).
        base_url: where the document came from; relative ``downloadUrl`` values are resolved against it.
        provider: name recorded in ``ModelMetadata.provider``.
        default_trusted: ``trusted`` of packages without ``trustedSource``.

    Raises:
        MalformedMetadataError: not an object, or no ``modelArchitecture``/``taskType``, or invalid model fields.
    """
    if isinstance(document, Mapping) and isinstance(document.get("modelMetadata"), Mapping):
        document = document["modelMetadata"]
    if not isinstance(document, Mapping):
        raise MalformedMetadataError(f"Model metadata must be a JSON object, got {json_type(document)}.")
    where = f"Metadata of model {document.get('modelId') or model_id!r}"
    mid = check_field(document, "modelId", str, where=where) or model_id
    missing = [k for k in ("modelArchitecture", "taskType") if document.get(k) is None]
    if not isinstance(mid, str) or missing:
        raise MalformedMetadataError(
            f"{where} lacks {', '.join(missing) or 'modelId'}; the provider sent something that is not a model "
            "description."
        )
    for key in ("modelArchitecture", "taskType", "modelVariant"):
        check_field(document, key, str, where=where)
    check_field(document, "classNames", list, where=where, items=str)
    check_field(document, "recommendedParameters", dict, where=where)
    raw_packages = check_field(document, "modelPackages", list, where=where) or ()
    dependencies = _dependencies(check_field(document, "modelDependencies", list, where=where) or (), where)
    packages: list[ModelPackage] = []
    skipped: list[SkippedPackage] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_packages):
        pid = raw.get("packageId") if isinstance(raw, Mapping) else None
        try:
            package = _package(raw, base_url, default_trusted)
        except (_Skip, ValidationError, ImError, TypeError, ValueError) as exc:
            reason = _reason(exc)
            manifest = raw.get("packageManifest") if isinstance(raw, Mapping) else None
            kind = manifest.get("type") if isinstance(manifest, Mapping) else None
            level = logging.DEBUG if kind in KNOWN_SKIPPED_TYPES else logging.WARNING
            log.log(level, "model %r: skipping package %r (#%d): %s", mid, pid, index, reason)
            if kind not in KNOWN_SKIPPED_TYPES:  # packages for other runtimes are not worth a line in a report
                shown = pid if isinstance(pid, str) and pid else f"#{index}"
                skipped.append(SkippedPackage(package_id=shown[:128], reason=f"skipped by im: {reason}"))
            continue
        if package.package_id in seen:
            log.warning("model %r: skipping package %r: its id appears twice", mid, package.package_id)
            skipped.append(SkippedPackage(package_id=package.package_id, reason="skipped by im: its id appears twice"))
            continue
        seen.add(package.package_id)
        packages.append(package)
    try:
        return ModelMetadata(
            model_id=mid,
            architecture=document["modelArchitecture"],
            task=document["taskType"],
            variant=document.get("modelVariant"),
            class_names=tuple(document.get("classNames") or ()),
            packages=tuple(packages),
            dependencies=dependencies,
            recommended_parameters=_recommended(document.get("recommendedParameters")),
            provider=provider,
            skipped_packages=tuple(skipped),
        )
    except (ValidationError, KeyError, TypeError) as exc:
        raise MalformedMetadataError(f"Metadata of model {mid!r} is invalid: {_reason(exc)}") from None
