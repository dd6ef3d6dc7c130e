"""Build a self-hosted registry: copy package files and write ``<model_id>/metadata.json`` (wire shape).

The result can be served as is from a folder (``local`` provider), any static HTTP server or a bucket (``http``
provider): file URLs are relative to ``metadata.json``, and every file carries ``sha256Hash``, ``md5Hash`` and
``size`` (bytes) so the cache verifies what it downloads.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from im_core.errors import (
    ImError,
    InvalidParameterError,
    MalformedMetadataError,
    ModelImplementationNotFoundError,
    NoCompatiblePackageError,
    UnsafePathError,
)
from im_core.sdk import ModelDependency, ModelMetadata, check_names, load_json, registry, validate_model_id
from im_providers._registry import METADATA_FILE
from im_providers._wire import GENERIC_PACKAGE_TYPE, check_field, json_type, parse_model_metadata

__all__ = ["add_to_registry"]

#: backend argument -> Roboflow package type (any other installed backend gets the generic type)
_MANIFEST_TYPES = {
    "onnx": "onnx-model-package-v1",
    "trt": "trt-model-package-v1",
    "torchscript": "torch-script-model-package-v1",
    "torch": "torch-script-model-package-v1",
    "state-dict": "torch-model-package-v1",
}
_PACKAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _manifest_type(backend: str) -> tuple[str, str]:
    """The package type and ``backendType`` written for ``backend``: Roboflow's type for the backends it has one for,
    the generic type for any other installed backend (by name or alias)."""
    from im_core import registry

    name = backend.strip().lower() if isinstance(backend, str) else ""
    if name in _MANIFEST_TYPES:
        return _MANIFEST_TYPES[name], name
    reg = registry()
    canonical = reg.canonical_backend(name) if name else name
    if canonical in _MANIFEST_TYPES:
        return _MANIFEST_TYPES[canonical], canonical
    if canonical in reg.backends:
        return GENERIC_PACKAGE_TYPE, canonical
    raise InvalidParameterError(
        f"backend={backend!r}: use one of {sorted(_MANIFEST_TYPES)} or an installed backend "
        f"({', '.join(sorted(reg.backends)) or 'none'})."
    )


def _digests(path: Path) -> tuple[str, str, int]:
    from im_core.sdk import hash_file

    sha, md5, size = hash_file(path, md5=True)
    assert md5 is not None
    return sha, md5, size


def _batch_fields(batch: int | tuple[int, int | None]) -> tuple[dict[str, Any], str]:
    if isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1:
        return {"dynamicBatchSize": False, "staticBatchSize": batch}, f"b{batch}"
    if isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[0], int) and batch[0] >= 1:
        lo, hi = batch
        fields: dict[str, Any] = {"dynamicBatchSize": True, "minBatchSize": lo}
        if hi is not None:
            fields["maxBatchSize"] = hi
        return fields, f"b{lo}-{hi if hi is not None else 'n'}"
    raise InvalidParameterError(f"batch={batch!r}: give a static size (int >= 1) or a dynamic range (min, max|None).")


def _dependency(dep: Any) -> dict[str, Any]:
    if isinstance(dep, ModelDependency):
        dep = dep.model_dump()
    if isinstance(dep, (tuple, list)) and len(dep) in (2, 3):
        dep = dict(zip(("name", "model_id", "package_id"), dep))
    if not isinstance(dep, Mapping) or "name" not in dep or "model_id" not in dep:
        raise InvalidParameterError(f"dependency {dep!r}: give (name, model_id[, package_id]) or a ModelDependency.")
    out = {"type": "model-dependency-v1", "name": dep["name"], "modelId": dep["model_id"]}
    if dep.get("package_id"):
        out["modelPackageId"] = dep["package_id"]
    return out


def _existing_document(meta_path: Path) -> dict[str, Any]:
    """The entry's current ``metadata.json`` as a dict (``{}`` when there is none).

    Raises:
        MalformedMetadataError: it is not JSON, not an object, or its ``modelPackages`` is not an array of objects;
            the message names the file.
    """
    fix = "Fix it, or delete it to start the entry afresh (then add every package again); nothing was written."
    try:
        document = load_json(meta_path.read_bytes(), what=f"{meta_path} exists but")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise MalformedMetadataError(f"{meta_path} is not readable ({type(exc).__name__}: {exc}). {fix}") from None
    except MalformedMetadataError as exc:
        raise MalformedMetadataError(f"{exc.message} {fix}") from None
    where = str(meta_path)
    if not isinstance(document, dict):
        raise MalformedMetadataError(f"{where} must hold a JSON object, not {json_type(document)}; nothing written.")
    packages = check_field(document, "modelPackages", list, where=where, items=dict) or []
    document["modelPackages"] = packages
    return document


def add_to_registry(
    registry_dir: str | Path,
    *,
    model_id: str,
    architecture: str | None = None,
    task: str | None = None,
    files: Sequence[str | Path],
    backend: str = "onnx",
    package_id: str | None = None,
    quantization: str = "fp32",
    batch: int | tuple[int, int | None] | None = 1,
    class_names: Sequence[str] | None = None,
    input_size: tuple[int, int] | None = None,
    dependencies: Sequence[Any] = (),
    variant: str | None = None,
    opset: int | None = None,
    trusted: bool = True,
    features: Mapping[str, Any] | None = None,
    manifest_extra: Mapping[str, Any] | None = None,
    conventional_names: bool = False,
    verify: bool = False,
) -> Path:
    """Add (or replace) one package of ``model_id`` in the registry folder; return the ``metadata.json`` path.

    The package behaves as the same network file loaded bare (``AutoModel.from_pretrained("model.onnx")``): what
    the file says about itself (the metadata embedded in it, read by the backend's ``inspect`` and the model
    families' sniffers, :func:`im_core.sdk.inspect_model_file` — e.g. an Ultralytics export's task, class names,
    image size and stride) fills every argument left out (``None``), and is recorded in the metadata (``classNames``,
    ``inputSize``, ``modelFeatures``).

    Checked before anything is written, with the errors loading would raise: the model id (no whitespace; see
    :func:`im_core.sdk.validate_model_id`), the task (one an installed family implements, with a suggestion for a near
    miss: ``InvalidParameterError``), the architecture for that task and backend
    (``ModelImplementationNotFoundError``), ``class_names`` against the names embedded in the file
    (``InvalidParameterError``); with ``verify``, the package is also loaded as its users would load it
    (:func:`im_core.sdk.load_package`), so class names that disagree with the network's output, or a file the
    backend refuses, fail here (``CorruptedModelPackageError``, ``ModelLoadingError``...). A package that cannot run
    on this machine (a TensorRT engine on a machine without a GPU) is not loaded; a warning says so.

    Args:
        architecture, task: default: what the network file says (an Ultralytics export); required otherwise.
        files: package files; each is stored under its base name (but see ``conventional_names``).
        backend: ``onnx``, ``trt``, ``torch``/``torchscript`` (TorchScript) or ``state-dict`` (torch module), written
            as Roboflow's package types; or the name of any other installed backend, written as the generic
            ``im-model-package-v1`` type (its requirement block goes in ``manifest_extra={"requirements": {...}}``).
        package_id: default ``<backend>-<quantization>-b<batch>``; an existing package with that id is replaced.
        batch: static batch size, or ``(min, max)`` for a dynamic batch (``max`` None = unbounded); ``None``: from
            the network file's first input, as loading it reports (a dynamic batch axis gives ``(1, None)``).
        class_names: default: the names embedded in the network file.
        input_size: ``(height, width)`` in pixels, when the package is fixed to it; default: the file's.
        dependencies: ``(name, model_id[, package_id])`` tuples or :class:`ModelDependency`.
        opset: ONNX opset (ONNX packages).
        features: ``modelFeatures``; default: the file's (e.g. ``{"ultralytics": {"stride": 32, ...}}``).
        manifest_extra: extra camelCase ``packageManifest`` fields, e.g. ``{"trtVersion": "10.3"}``.
        conventional_names: store the network file (the one file the backend loads, by suffix) under the backend's
            conventional name, the first of its manifest's ``weights_files`` (``weights.onnx``,
            ``weights.torchscript``, ``engine.plan``), as a family looks for it first.
        verify: load the package before publishing it.

    ``im registry add`` sets ``batch=None``, ``conventional_names=True`` and ``verify=True`` unless told otherwise
    (``--batch``, ``--keep-names``, ``--no-verify``): a file published from the command line behaves as it does
    loaded bare.
    """
    if not isinstance(model_id, str) or model_id != model_id.strip() or any(c.isspace() for c in model_id):
        raise UnsafePathError(
            f"Model id {model_id!r} contains whitespace; use letters, digits, '-', '_', '.' and '/' "
            "(e.g. 'acme/detector-2')."
        )
    validate_model_id(model_id)
    kind, backend = _manifest_type(backend)
    sources = [Path(f) for f in files]
    for src in sources:
        if not src.is_file():
            raise InvalidParameterError(f"{src} is not a file.")
    network = _network_source(sources, backend)
    sniffed = _inspect(network, backend, load=batch is None)
    architecture = architecture or sniffed.get("architecture")
    task = task or sniffed.get("task")
    _require_family_names(architecture, task, network)
    assert architecture is not None and task is not None
    class_names = _checked_class_names(class_names, sniffed, network)
    if input_size is None and sniffed.get("input_size"):
        height, width = sniffed["input_size"]
        input_size = (int(height), int(width))
    if features is None and sniffed.get("features"):
        features = dict(sniffed["features"])
    if batch is None:
        batch = _sniffed_batch(sniffed)
    stored = {src: src.name for src in sources}
    if network is not None and conventional_names:
        conventional = registry().backends[backend].weights_files if backend in registry().backends else ()
        if conventional and not any(src.name in conventional for src in sources):
            stored[network] = conventional[0]
    batch_fields, batch_label = _batch_fields(batch)
    package_id = package_id or f"{backend.lower()}-{quantization}-{batch_label}"
    if not _PACKAGE_ID.match(package_id):
        raise InvalidParameterError(f"package_id={package_id!r}: use letters, digits, '.', '_' or '-'.")
    names = list(stored.values())
    if not sources or len(set(names)) != len(names):
        raise InvalidParameterError(f"files={names}: give at least one file, with distinct base names.")

    entry_dir = Path(registry_dir) / model_id
    meta_path = entry_dir / METADATA_FILE
    created = [d for d in (entry_dir, *entry_dir.parents) if not d.exists()]
    # metadata.json is read, changed and replaced: concurrent adds (other processes) wait for each other, so that
    # none of their packages is lost
    with _registry_lock(Path(registry_dir)):
        document = _existing_document(meta_path)  # a corrupt one fails here, before anything is written
        staging = entry_dir / f".{package_id}.{uuid.uuid4().hex}.tmp"
        staging.mkdir(parents=True)
        meta_tmp = meta_path.with_name(f".{METADATA_FILE}.{uuid.uuid4().hex}.tmp")
        done = swapped = False
        pkg_dir = entry_dir / package_id
        old = entry_dir / f".{package_id}.{uuid.uuid4().hex}.old"
        try:
            package_files = []
            for src in sources:  # copy, then hash the copy: the digests describe exactly the bytes published
                name = stored[src]
                shutil.copyfile(src, staging / name)
                sha, md5, size = _digests(staging / name)
                package_files.append(
                    {
                        "fileHandle": name,
                        "downloadUrl": f"{quote(package_id)}/{quote(name)}",
                        "md5Hash": md5,
                        "sha256Hash": sha,
                        "size": size,
                    }
                )
            manifest: dict[str, Any] = {
                "type": kind,
                "backendType": backend,
                "quantization": quantization,
                **batch_fields,
            }
            if kind == "onnx-model-package-v1":
                manifest["opset"] = opset
            manifest.update(manifest_extra or {})
            package: dict[str, Any] = {
                "type": "external-model-package-v1",
                "packageId": package_id,
                "trustedSource": trusted,
                "packageManifest": manifest,
                "packageFiles": package_files,
                "modelFeatures": dict(features or {}),
            }
            if input_size is not None:
                package["inputSize"] = [int(input_size[0]), int(input_size[1])]
            document.update(
                {
                    "type": "external-model-metadata-v1",
                    "modelId": model_id,
                    "modelArchitecture": architecture,
                    "taskType": task,
                }
            )
            if variant is not None:
                document["modelVariant"] = variant
            if class_names is not None:
                document["classNames"] = list(class_names)
            if dependencies:
                document["modelDependencies"] = [_dependency(d) for d in dependencies]
            others = [p for p in document.get("modelPackages") or () if p.get("packageId") != package_id]
            document["modelPackages"] = [*others, package]
            document["nextPage"] = None

            # validate everything before any file appears under its final name
            try:
                parsed = parse_model_metadata(document, model_id=model_id, base_url=meta_path.resolve().as_uri())
            except MalformedMetadataError as exc:
                raise MalformedMetadataError(f"{meta_path} (after adding {package_id!r}): {exc.message}") from None
            if parsed.package(package_id) is None:
                raise InvalidParameterError(f"the package {package_id!r} would not be readable; check its arguments.")
            _check_family(architecture, task, backend)
            if verify:
                _verify(parsed, package_id, staging)
            meta_tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

            if pkg_dir.exists():
                os.replace(pkg_dir, old)
            os.replace(staging, pkg_dir)
            swapped = True
            os.replace(meta_tmp, meta_path)
            done = True
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            with contextlib.suppress(OSError):
                meta_tmp.unlink()
            if not done and swapped:  # the metadata could not be replaced: take the new files out again
                shutil.rmtree(pkg_dir, ignore_errors=True)
            if not done and old.exists():  # and put the previous package back
                os.replace(old, pkg_dir)
            if not done:
                for d in created:  # a new entry's folders, innermost first; only if still empty
                    with contextlib.suppress(OSError):
                        d.rmdir()
    return meta_path


def _network_source(sources: list[Path], backend: str) -> Path | None:
    """The one file of ``sources`` that ``backend`` loads (by its declared suffixes), or ``None`` (none, several)."""
    manifest = registry().backends.get(backend)
    if manifest is None:
        return None
    conventional = [s for s in sources if s.name in manifest.weights_files]
    if conventional:
        return conventional[0]
    suffixes = tuple(x.lower() for x in manifest.file_suffixes)
    matches = [s for s in sources if suffixes and s.name.lower().endswith(suffixes)]
    return matches[0] if len(matches) == 1 else None


def _inspect(network: Path | None, backend: str, *, load: bool) -> dict[str, Any]:
    """:func:`im_core.sdk.inspect_model_file` of the network file; ``{}`` when there is none or it is unreadable
    (a package whose file the backend refuses is reported by ``verify``, with loading's error)."""
    from im_core.sdk import inspect_model_file

    if network is None:
        return {}
    if load:
        try:
            return inspect_model_file(network, backend, load=True)
        except Exception:  # not loadable here (or not a model): what the file says without loading it
            pass
    return inspect_model_file(network, backend)


def _sniffed_batch(sniffed: Mapping[str, Any]) -> int | tuple[int, int | None]:
    """A dynamic batch ``(1, None)`` when the network's first input has a dynamic batch axis, its size when fixed,
    else 1."""
    inputs = sniffed.get("inputs") or ()
    shape = tuple(getattr(inputs[0], "shape", ()) or ()) if inputs else ()
    if not shape:
        return 1
    first = shape[0]
    if isinstance(first, int) and not isinstance(first, bool) and first >= 1:
        return first
    return (1, None)


def _require_family_names(architecture: str | None, task: str | None, network: Path | None) -> None:
    """Both are known (given, or sniffed from the network file)."""
    missing = [n for n, v in (("architecture", architecture), ("task", task)) if not v]
    if missing:
        what = network.name if network is not None else "the files"
        raise InvalidParameterError(
            f"Cannot tell the {' and '.join(missing)} of the model: {what} carries no metadata an installed model "
            f"family recognises. Pass {' and '.join(f'--{m}' for m in missing)} (add_to_registry: "
            f"{', '.join(f'{m}=' for m in missing)}), e.g. --architecture yolov8 --task object-detection."
        )
    for name, value in (("architecture", architecture), ("task", task)):
        if not isinstance(value, str):
            raise InvalidParameterError(f"{name}= must be a string, got {type(value).__name__} {value!r}.")


def _check_family(architecture: str, task: str, backend: str) -> None:
    """The task and architecture name a family installed here that loads ``backend`` packages (loading's errors)."""
    reg = registry()
    tasks = {entry.task for entry in reg.models}
    if tasks:
        check_names([task], tasks, "task= names a task that no installed model family implements:")
    try:
        reg.find_model(architecture, task, backend)
    except ModelImplementationNotFoundError as exc:
        import difflib

        known = sorted({a for e in reg.models if e.task == task for a in e.architectures})
        close = difflib.get_close_matches(architecture.lower(), known, n=3, cutoff=0.6)
        if close:
            exc.message = f"{exc.message} Did you mean {' or '.join(repr(c) for c in close)}?"
            exc.args = (exc.message,)
        raise


def _checked_class_names(
    given: Sequence[str] | None, sniffed: Mapping[str, Any], network: Path | None
) -> Sequence[str] | None:
    """``given`` (checked against the names embedded in the network file), else those names, else ``None``."""
    embedded = list(sniffed.get("class_names") or ())
    if given is None:
        return embedded or None
    if isinstance(given, str) or not all(isinstance(n, str) for n in given):
        raise InvalidParameterError(f"class_names={given!r} must be a list of strings, in class-id order.")
    given = list(given)
    if embedded and len(given) != len(embedded) and network is not None:
        raise InvalidParameterError(
            f"class_names= lists {len(given)} class names but {network.name} declares {len(embedded)} classes "
            f"({', '.join(embedded[:5])}{', ...' if len(embedded) > 5 else ''}). Fix: pass exactly "
            f"{len(embedded)} names, in class-id order, or leave them out to use the file's."
        )
    return given


def _verify(metadata: ModelMetadata, package_id: str, directory: Path) -> None:
    """Load the staged package as its users would (:func:`im_core.sdk.load_package`); loading's error if it fails.
    A package that cannot run on this machine is skipped with a warning."""
    import warnings

    from im_core.sdk import load_package

    try:
        load_package(metadata, directory, package_id=package_id)
    except NoCompatiblePackageError as exc:
        warnings.warn(
            f"Package {package_id!r} of {metadata.model_id!r} was not loaded to check it: it cannot run on this "
            f"machine ({exc.message.splitlines()[-1].strip() or 'see im negotiate'}).",
            UserWarning,
            stacklevel=3,
        )
    except ImError as exc:
        what = f"Package {package_id!r} of {metadata.model_id!r}"
        detail = exc.message.replace(str(directory), "the package")  # the staging folder is gone: not a place to look
        exc.message = f"{what} does not load; nothing was written: {detail}"
        exc.args = (exc.message,)
        raise


#: the lock file in a registry's root folder (left in place: removing a lock file others may hold is unsafe)
REGISTRY_LOCK = ".im-registry.lock"


def _registry_lock(root: Path) -> Any:
    """The registry's lock, a cross-process file lock in ``root`` (created if missing), to use in a ``with``.

    Raises:
        InvalidParameterError: ``root`` cannot be created or written.
    """
    from filelock import FileLock

    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(root / REGISTRY_LOCK))
        (root / REGISTRY_LOCK).touch()
    except OSError as exc:
        raise InvalidParameterError(f"Cannot write to the registry folder {root}: {exc}.") from exc
    return lock
