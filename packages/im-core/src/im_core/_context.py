"""What a model family receives when it is built from a package folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from im_core._device import Device
from im_core._metadata import ModelMetadata, ModelPackage, validate_relative_path
from im_core._protocols import Session
from im_core._tasks import LoadedModelInfo
from im_core.errors import CorruptedModelPackageError

__all__ = ["PackageContext"]


@dataclass
class PackageContext:
    """A package on disk, the backend and device chosen for it, and the models it depends on.

    Attributes:
        model_id: the id the user asked for (or the folder/file path for local loads).
        directory: folder holding the package's files.
        package: the package description (backend, batch, quantization, features, files).
        metadata: the model's metadata (architecture, task, class names, recommended parameters).
        backend: backend chosen by negotiation (``onnx``, ``torch``, ``trt``).
        device: device to run on, a :class:`im_core.Device` (a string such as ``"cuda:1"`` is parsed on creation).
        dependencies: already-loaded models this model depends on, by dependency name.
        options: extra keyword arguments from ``from_pretrained(**model_kwargs)`` (only names in the family's
            ``LOAD_OPTIONS``, when it declares them).
        session_options: backend options (``onnx_execution_providers``, threads...), passed to ``load``.
        weights_file: for a bare model file, its name inside ``directory``.
        class_names_override: the user's ``class_names=`` (``None`` when not given); it wins over every other
            source in :meth:`class_names`.
    """

    model_id: str
    directory: Path
    package: ModelPackage
    metadata: ModelMetadata
    backend: str
    device: Device = field(default_factory=lambda: Device("cpu"))
    dependencies: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    session_options: dict[str, Any] = field(default_factory=dict)
    weights_file: str | None = None
    class_names_override: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.device = Device.parse(self.device, source="PackageContext device")

    def path(self, name: str) -> Path:
        """Absolute path of a package file; raises ``CorruptedModelPackageError`` if it is missing."""
        p = self.directory / validate_relative_path(name)
        if not p.is_file():
            raise CorruptedModelPackageError(
                f"Package {self.package.package_id!r} of {self.model_id!r} has no file {name!r} in {self.directory}."
            )
        return p

    def has(self, name: str) -> bool:
        return (self.directory / validate_relative_path(name)).is_file()

    def read_json(self, name: str) -> Any:
        try:
            return json.loads(self.path(name).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptedModelPackageError(
                f"{name} of package {self.package.package_id!r} is not JSON: {exc}"
            ) from exc

    def read_lines(self, name: str) -> list[str]:
        """Non-blank, stripped lines of a text file (class names: use :meth:`class_names`)."""
        text = self.path(name).read_text(encoding="utf-8")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def first_existing(self, *names: str) -> str | None:
        return next((n for n in names if self.has(n)), None)

    def network_file(self) -> str:
        """The name (inside ``directory``) of the network file the negotiated backend runs.

        A bare model file is its own network file. In a package folder: the first of the backend's conventional
        names that exists (``weights.onnx``, ``model.onnx`` for ``onnx``; ``weights.torchscript``, ``weights.pt2``,
        ``weights.pt``, ``weights.pth`` for ``torch``; ``engine.plan`` for ``trt``), else the only package file
        with one of the backend's suffixes. Families with one network file load it with
        ``ctx.load_session(ctx.network_file())``.

        Raises:
            CorruptedModelPackageError: no such file, or several files with the backend's suffixes.
        """
        from im_core._network_file import backend_file_names

        if self.weights_file is not None:
            return self.weights_file
        names, suffixes = backend_file_names(self.backend)
        found = self.first_existing(*names)
        if found is not None:
            return found
        matches = sorted(
            f.name for f in self.package.files if suffixes and f.name.lower().endswith(suffixes) and self.has(f.name)
        )
        if len(matches) == 1:
            return matches[0]
        looked = ", ".join(names) or "no conventional name"
        kinds = ", ".join(suffixes) or "none known"
        found_text = f"several ({', '.join(matches)})" if matches else "none of them"
        present = sorted(f.name for f in self.package.files)
        listing = ", ".join(present[:12]) + (f" and {len(present) - 12} more" if len(present) > 12 else "")
        raise CorruptedModelPackageError(
            f"Package {self.package.package_id!r} of {self.model_id!r} needs one network file for the "
            f"{self.backend} backend: looked for {looked}, then for one file ending in {kinds}; found {found_text} "
            f"in {self.directory} (package files: {listing or 'none'})."
        )

    def class_names(self, session: Session | None = None, *, count: int | None = None) -> tuple[str, ...]:
        """The model's class names (index = class id), resolved with one precedence for every family:

        1. the user's ``class_names=`` (:attr:`class_names_override`);
        2. ``class_names.txt`` in the package folder (not next to a bare model file);
        3. the model metadata (``metadata.class_names``);
        4. names embedded in the network file: ``session.metadata`` keys ``class_names``, ``names``, ``labels``,
           ``classes``, ``character`` (a Python/JSON list or ``{id: name}`` dict, or one name per line).

        Args:
            session: the loaded network, for source 4 (omitted: sources 1-3 only).
            count: the number of classes the network's output has, when the family knows it: names from
                sources 1-3 must have that many; embedded names of another length are skipped.

        Returns:
            the names, or ``()`` when no source has any (the family then numbers the classes or uses its own).

        Raises:
            InvalidParameterError: ``class_names=`` does not have ``count`` names.
            CorruptedModelPackageError: ``class_names.txt`` is not UTF-8, or it or the metadata does not have
                ``count`` names.
        """
        from im_core._class_names import resolve_class_names

        return resolve_class_names(
            override=self.class_names_override,
            folder=self.directory if self.weights_file is None else None,
            declared=self.metadata.class_names,
            embedded=session.metadata if session is not None else None,
            count=count,
            model_id=self.model_id,
        )

    def load_session(self, name: str, **options: Any) -> Session:
        """Load one model file with the negotiated backend on the chosen device.

        ``options`` are merged over ``session_options`` (e.g. ``module=`` for torch state-dict packages).
        """
        from im_core._plugins import registry

        backend = registry().backend(self.backend)
        merged = {**self.session_options, **options}
        return backend.load(self.path(name), device=self.device, package=self.package, **merged)

    def load_part(self, part: str, *, names: tuple[str, ...] = (), **options: Any) -> Session:
        """Load one network of a model that has several (CLIP's ``"vision"`` and ``"text"``, SAM's
        ``"image_encoder"`` and ``"prompt_decoder"``), written once for every backend.

        Looked for in this order: ``names`` (a family's own older file names, e.g. ``"image_encoder.onnx"``); then
        ``<part><suffix>`` for each file suffix the negotiated backend loads (``vision.onnx``, ``vision.torchscript``:
        what ``im export`` writes); then the backend's weights file holding every part (a Hugging Face folder's
        ``model.safetensors`` for the ``transformers`` backend), loaded with ``part=part``.

        Raises:
            CorruptedModelPackageError: none of these files is in the package.
        """
        from im_core._network_file import backend_file_names

        weights, suffixes = backend_file_names(self.backend)
        found = self.first_existing(*names, *(f"{part}{suffix}" for suffix in suffixes))
        if found is not None:
            return self.load_session(found, **options)
        whole = self.first_existing(*weights)
        if whole is not None:
            return self.load_session(whole, part=part, **options)
        looked = (
            ", ".join([*names, *(f"{part}{s}" for s in suffixes), *weights]) or "nothing: the backend declares no files"
        )
        raise CorruptedModelPackageError(
            f"Package {self.package.package_id!r} of {self.model_id!r} has no file for its {part!r} network on the "
            f"{self.backend} backend: looked for {looked} in {self.directory}. Fix: re-export the model "
            "(`im export`) or re-download the package."
        )

    def info(self, class_names: tuple[str, ...] | list[str] | None = None, **extra: Any) -> LoadedModelInfo:
        """The ``model.metadata`` for the model being built."""
        names = tuple(class_names if class_names is not None else self.metadata.class_names)
        return LoadedModelInfo(
            model_id=self.model_id,
            architecture=self.metadata.architecture,
            task=self.metadata.task,
            class_names=names,
            package_id=self.package.package_id,
            backend=self.backend,
            device=str(self.device),
            quantization=self.package.quantization,
            provider=self.metadata.provider,
            source=str(self.directory),
            extra=extra,
        )
