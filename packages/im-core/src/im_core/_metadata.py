"""Model metadata, packages and file specs (pydantic; DESIGN.md §3).

These are im's own shapes (snake_case). The Roboflow ``modelMetadata`` wire document is parsed into them by one
parser in ``im_providers``; a self-hosted registry serves that same wire document. What a package needs from its
backend (ONNX opset, TensorRT version, ...) is the backend's business: core keeps it as a plain block
(``ModelPackage.requirements``) that the backend reads with its own model (a :class:`BackendRequirements`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "Backend",
    "BackendRequirements",
    "BatchSpec",
    "FileSpec",
    "ModelDependency",
    "ModelMetadata",
    "ModelPackage",
    "Quantization",
    "RecommendedParameters",
    "SkippedPackage",
    "validate_relative_path",
]

#: A backend's name (``onnx``, ``torch``, ``trt`` or any installed plugin's).
Backend = str
Quantization = Literal["fp32", "fp16", "bf16", "int8", "unknown"]


#: longest name of one file or folder, in UTF-8 bytes (every common filesystem's limit)
MAX_NAME_BYTES = 255
#: longest relative file path inside a package, in UTF-8 bytes (the cache's own prefix must fit in PATH_MAX too)
MAX_FILE_PATH_BYTES = 1024


def validate_relative_path(name: str) -> str:
    """Return ``name`` if it is a safe relative POSIX path inside a folder, else raise ``UnsafePathError``."""
    from im_core.errors import UnsafePathError

    if not name or "\\" in name or "\x00" in name:
        raise UnsafePathError(f"File name {name!r} is empty or contains a backslash or NUL.")
    path = PurePosixPath(name)
    if not path.parts or str(path) == ".":
        raise UnsafePathError(f"File name {name!r} names the package folder itself, not a file in it.")
    if path.is_absolute() or any(part in ("..", "") for part in path.parts) or name.startswith("~"):
        raise UnsafePathError(f"File name {name!r} is absolute or leaves its package folder; refusing it.")
    sizes = [len(part.encode("utf-8", "surrogatepass")) for part in path.parts]
    if max(sizes) > MAX_NAME_BYTES or sum(sizes) + len(sizes) > MAX_FILE_PATH_BYTES:
        shown = name if len(name) <= 80 else f"{name[:80]}… ({len(name)} characters)"
        raise UnsafePathError(
            f"File name {shown!r} is too long: at most {MAX_NAME_BYTES} bytes per folder or file name and "
            f"{MAX_FILE_PATH_BYTES} bytes in all are allowed."
        )
    return str(path)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class FileSpec(_Model):
    """One file of a package.

    Attributes:
        name: relative path inside the package folder (``weights.onnx``, ``sub/vocab.txt``).
        url: where to fetch it (absolute URL, or a path relative to the metadata document); ``None`` for local files.
        size: bytes, when known.
        sha256 / md5: lower-case hex digests; at least one is needed to download (unless explicitly allowed).
    """

    name: str
    url: str | None = None
    size: int | None = Field(default=None, ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    md5: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @field_validator("name")
    @classmethod
    def _safe(cls, value: str) -> str:
        return validate_relative_path(value)

    @field_validator("sha256", "md5", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class BatchSpec(_Model):
    """Batch sizes a package accepts: static ``N`` (``min == max``, ``dynamic=False``) or a dynamic range."""

    dynamic: bool = False
    min: int = Field(default=1, ge=1)
    max: int | None = Field(default=1, ge=1)
    opt: int | None = None

    @model_validator(mode="after")
    def _check(self) -> BatchSpec:
        if not self.dynamic and self.max != self.min:
            raise ValueError(f"a static batch needs min == max, got {self.min}..{self.max}")
        if self.max is not None and self.max < self.min:
            raise ValueError(f"batch max {self.max} < min {self.min}")
        return self

    @classmethod
    def static(cls, n: int) -> BatchSpec:
        return cls(dynamic=False, min=n, max=n)

    def describe(self) -> str:
        if not self.dynamic:
            return str(self.min)
        return f"{self.min}..{self.max if self.max is not None else '∞'}"


_R = TypeVar("_R", bound="BackendRequirements")


class BackendRequirements(_Model):
    """Base of a backend's requirement model: its reading of the plain block ``ModelPackage.requirements``.

    A backend wheel subclasses it with its own fields (snake_case, all optional) and names the subclass in its
    manifest (``BackendManifest.requirements``); unknown keys are ignored, so a newer block still reads.
    """

    @classmethod
    def of(cls: type[_R], package: ModelPackage) -> _R:
        """The requirements ``package`` declares, read with this model.

        Raises:
            MalformedMetadataError: the block does not fit this model (names the package and the field).
        """
        try:
            return cls.model_validate(package.requirements)
        except ValidationError as exc:
            from im_core.errors import MalformedMetadataError

            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ())) or "value"
            raise MalformedMetadataError(
                f"Package {package.package_id!r} declares {package.backend} requirements that cannot be read "
                f"({where}: {err.get('msg')}): {package.requirements!r}. Fix: correct the package's metadata."
            ) from None


class RecommendedParameters(_Model):
    """Thresholds the model's author recommends."""

    confidence: float | None = Field(default=None, ge=0, le=1)
    per_class_confidence: dict[str, float] = Field(default_factory=dict)
    iou_threshold: float | None = Field(default=None, ge=0, le=1)
    max_detections: int | None = Field(default=None, ge=1)


class ModelPackage(_Model):
    """One way to run a model: backend × quantization × batch × input size, with its files.

    Attributes:
        package_id: unique within the model; safe as a folder name.
        backend: ``onnx``, ``torch`` or ``trt`` (or a plugin's name).
        quantization: numeric precision of the weights.
        batch: accepted batch sizes.
        input_size: ``(height, width)`` the package was exported for, when fixed.
        files: the package's files.
        trusted: whether the source vouches for the files (untrusted ones load only when allowed).
        features: model features such as ``{"nms_fused": {...}}``.
        requirements: what the package needs from its backend (``{"opset": 17}`` for ONNX, the TensorRT version
            and GPU for an engine...), as plain data; the backend reads it with its own model (declared in its
            manifest as ``requirements``), core never interprets it. Older documents that put this block under the
            backend's name (``"onnx": {...}``) are read the same way.
    """

    package_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    backend: Backend
    quantization: Quantization = "unknown"
    batch: BatchSpec = Field(default_factory=BatchSpec)
    input_size: tuple[int, int] | None = None
    files: tuple[FileSpec, ...] = ()
    trusted: bool = True
    features: dict[str, Any] = Field(default_factory=dict)
    recommended_parameters: RecommendedParameters | None = None
    requirements: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _legacy_requirements(cls, data: Any) -> Any:
        """A block under the backend's own name (``{"backend": "onnx", "onnx": {...}}``: cache snapshots and
        code from before ``requirements``) becomes ``requirements``."""
        if not isinstance(data, Mapping) or data.get("requirements") is not None:
            return data
        backend = data.get("backend")
        if not isinstance(backend, str):
            return data
        from im_core._plugins import registry

        legacy = data.get(registry().canonical_backend(backend))
        if isinstance(legacy, BaseModel):
            legacy = legacy.model_dump()
        if isinstance(legacy, Mapping):
            return {**data, "requirements": dict(legacy)}
        return data

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: Any) -> Any:
        """Lower-cased; an alias an installed backend declares (``tensorrt``) becomes that backend's name."""
        if isinstance(value, str):
            from im_core._plugins import registry

            return registry().canonical_backend(value)
        return value

    @model_validator(mode="after")
    def _unique_files(self) -> ModelPackage:
        names = [f.name for f in self.files]
        if len(names) != len(set(names)):
            raise ValueError(f"package {self.package_id!r} lists a file twice: {sorted(names)}")
        return self

    def file(self, name: str) -> FileSpec | None:
        return next((f for f in self.files if f.name == name), None)


class ModelDependency(_Model):
    """Another model this model needs, loaded first and handed to its constructor under ``name``."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    model_id: str
    package_id: str | None = None


class SkippedPackage(_Model):
    """A package the provider listed that im could not read (unknown type, unsafe file name, malformed fields).

    Attributes:
        package_id: its id, when it had a readable one (else ``#<index>`` in the provider's list).
        reason: why it was skipped, in words (shown in the negotiation report and errors).
    """

    package_id: str
    reason: str


class ModelMetadata(_Model):
    """Everything a provider knows about a model.

    ``skipped_packages`` lists the packages the provider sent that could not be read, with the reason, so that a
    model whose every package was skipped says why instead of "no packages at all".
    """

    model_id: str
    architecture: str
    task: str
    variant: str | None = None
    class_names: tuple[str, ...] = ()
    packages: tuple[ModelPackage, ...] = ()
    dependencies: tuple[ModelDependency, ...] = ()
    recommended_parameters: RecommendedParameters | None = None
    provider: str | None = None
    skipped_packages: tuple[SkippedPackage, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> ModelMetadata:
        ids = [p.package_id for p in self.packages]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"model {self.model_id!r} has duplicate package ids: {dupes}")
        deps = [d.name for d in self.dependencies]
        if len(deps) != len(set(deps)):
            raise ValueError(f"model {self.model_id!r} declares a dependency name twice")
        return self

    def package(self, package_id: str) -> ModelPackage | None:
        return next((p for p in self.packages if p.package_id == package_id), None)
