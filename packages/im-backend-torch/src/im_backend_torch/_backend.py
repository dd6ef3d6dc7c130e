"""The ``torch`` backend plugin: probe, package checks, loading TorchScript / .pt2 / state dicts, inspection."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from im_backend_torch._formats import (
    check_exported_program_archive,
    detect_format,
    extra_files,
    load_state_dict_module,
    weights_only_unpickling,
)
from im_backend_torch._requirements import TorchRequirements
from im_backend_torch._session import TorchSession, flatten_outputs
from im_backend_torch._torch import apply_thread_policy, import_torch, numpy_dtype_name, parse_dtype
from im_core import BackendBase, BackendProbe, BatchLimits, Device, ModelPackage, TensorSpec, Verdict
from im_core.errors import CorruptedModelPackageError, InvalidParameterError, MissingDependencyError, ModelLoadingError

__all__ = ["LOAD_OPTIONS", "TorchBackend"]

#: options ``load`` understands (anything else raises ``InvalidParameterError``)
LOAD_OPTIONS = frozenset(
    {
        "module",  # state dicts: an nn.Module instance or a zero-argument factory (from the model family)
        "format",  # "torchscript" | "exported-program" | "state-dict" (default: from the package or the file)
        "inputs",  # input TensorSpecs (or (name, shape, dtype) tuples); default: from the program / forward signature
        "outputs",  # output TensorSpecs or names; default: from the program, or found by one dry run
        "dtype",  # "fp16" | "bf16" | "fp32": cast the module and floating inputs
        "num_threads",  # torch intra-op threads (process-wide); see apply_thread_policy
    }
)
_MIN_EXPORT = (2, 3)  # torch.export.load / .pt2 archives
#: what torch's loaders raise on a damaged or foreign file (torch.export.load falls back to a zipfile reader, which
#: raises BadZipFile; archive members that are missing surface as KeyError; a broken pickle as UnpicklingError)
_UNREADABLE = (RuntimeError, OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, pickle.UnpicklingError)


def _version_tuple(version: str) -> tuple[int, ...]:
    from packaging.version import Version

    return Version(version.split("+")[0]).release


class TorchBackend(BackendBase):
    """The ``torch`` backend plugin (zero-argument; probe cached per instance)."""

    name = "torch"
    display_name = "torch"
    load_options = LOAD_OPTIONS

    # -- probe -----------------------------------------------------------------------------------------------------
    @staticmethod
    def _do_probe() -> BackendProbe:
        """torch version, CUDA/MPS devices (asked from torch, only here), CUDA build version and threads."""
        try:
            torch = import_torch()
        except MissingDependencyError as exc:
            return BackendProbe("torch", False, reason=exc.message)
        devices = ["cpu"]
        if torch.cuda.is_available():
            devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            devices.append("mps")
        details = {
            "torchvision": _torchvision_version(),
            "cuda_build": torch.version.cuda,
            "num_threads": torch.get_num_threads(),
            "formats": ["torchscript", "exported-program", "state-dict"],
        }
        return BackendProbe("torch", True, torch.__version__, tuple(devices), details)

    # -- check -----------------------------------------------------------------------------------------------------
    def check(self, package: ModelPackage, probe: BackendProbe, device: Device | str) -> Verdict:
        """Format, device and minimum-version checks, with reasons in words."""
        if not probe.available:
            return Verdict.reject(f"PyTorch is not usable: {probe.reason}")
        try:
            device = Device.parse(device)
        except InvalidParameterError as exc:
            return Verdict.reject(f"not a device the torch backend can use: {exc.message}")
        req = TorchRequirements.of(package)
        kind = device.kind
        installed = _version_tuple(probe.version or "0")
        if req.device_types and kind not in req.device_types:
            return Verdict.reject(f"package runs on {'/'.join(req.device_types)} only; device {device} requested")
        if req.torch_version and installed < _version_tuple(req.torch_version):
            return Verdict.reject(f"needs torch >= {req.torch_version}; torch {probe.version} is installed")
        if req.torchvision_version:
            vision = probe.details.get("torchvision")
            if not vision:
                return Verdict.reject(
                    f"the graph calls torchvision ops and needs torchvision >= {req.torchvision_version}; torchvision "
                    "is not installed (pip install torchvision, matching your torch)"
                )
            if _version_tuple(vision) < _version_tuple(req.torchvision_version):
                return Verdict.reject(
                    f"needs torchvision >= {req.torchvision_version}; torchvision {vision} is installed"
                )
        if req.format == "exported-program" and installed < _MIN_EXPORT:
            return Verdict.reject(f"torch.export (.pt2) programs need torch >= 2.3; torch {probe.version} is installed")
        if not device.is_cpu:
            present = [d for d in probe.device_values() if d.kind == kind]
            if not present:
                why = "a CPU-only build or no GPU" if device.is_cuda else "no Apple GPU"
                return Verdict.reject(
                    f"device {device} requested but torch {probe.version} has no {kind.upper()} ({why})"
                )
            if device not in present:
                return Verdict.reject(f"device {device} requested but torch sees only {[str(d) for d in present]}")
        fmt_rank = {"exported-program": 2.0, "torchscript": 1.0, "state-dict": 0.0}[req.format or "torchscript"]
        return Verdict.accept(fmt_rank)

    # -- load ------------------------------------------------------------------------------------------------------
    def load(
        self, path: Path, *, device: Device | str, package: ModelPackage | None = None, **options: Any
    ) -> TorchSession:
        """Load ``path`` on ``device`` (a :class:`im_core.Device`, or what ``Device.parse`` reads); see
        :data:`LOAD_OPTIONS`.

        Raises:
            InvalidParameterError: unknown option, bad value or not a device.
            ModelLoadingError: a state dict without ``module=``, or a pickle that needs arbitrary code.
            CorruptedModelPackageError: unreadable file, or weights that do not fit the module.
            MissingDependencyError: torch is not installed.
        """
        self.check_options(options)
        device = Device.parse(device)
        torch = import_torch()
        path = Path(path)
        apply_thread_policy(torch, options.get("num_threads"))
        dtype = parse_dtype(torch, options.get("dtype"))
        try:
            tdev = torch.device(device.torch_string)
        except RuntimeError as exc:
            raise InvalidParameterError(f"device {device} is not a torch device: {exc}") from exc
        requested = options.get("format") or (TorchRequirements.of(package).format if package is not None else None)
        fmt = detect_format(path, requested=requested, has_module=options.get("module") is not None)
        if fmt != "state-dict" and not zipfile.is_zipfile(path):
            raise CorruptedModelPackageError(
                f"{path.name} should be a {fmt} file, which is a zip archive, but it is not a zip: it is truncated, "
                "corrupt, or of another format. Fix: re-export or re-download it."
            )
        program_specs: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...], BatchLimits | None] | None = None
        if package is not None and TorchRequirements.of(package).torchvision_version:
            _import_torchvision(path.name)  # registers torchvision::nms & co. before the graph refers to them
        try:
            if fmt == "torchscript":
                fn = torch.jit.load(str(path), map_location=tdev)
                names = [a.name for a in fn.forward.schema.arguments[1:]]
            elif fmt == "exported-program":
                check_exported_program_archive(path)  # before torch sees it: no pickles, no native code
                with weights_only_unpickling():
                    program = torch.export.load(str(path))
                program_specs = _program_specs(program)
                fn = program.module().to(tdev)
                names = [s.name for s in program_specs[0]]
            else:
                if options.get("module") is None:
                    raise ModelLoadingError(f"{path.name} is a state dict: pass module=<nn.Module or factory>.")
                fn = load_state_dict_module(torch, path, options["module"]).to(tdev)
                import inspect

                names = [p for p in inspect.signature(fn.forward).parameters if p not in ("self",)]
        except (ModelLoadingError, InvalidParameterError, CorruptedModelPackageError):
            raise
        except _UNREADABLE as exc:
            raise CorruptedModelPackageError(
                f"torch could not load {path.name} as {fmt} ({type(exc).__name__}: {exc}). Fix: re-export or "
                "re-download the file."
            ) from exc
        if fmt != "exported-program" and hasattr(fn, "eval"):  # exported modules refuse eval()
            fn.eval()
        if dtype is not None and hasattr(fn, "to"):
            fn = fn.to(dtype)
        inputs = _input_specs(options.get("inputs"), program_specs, names)
        limits = _batch_limits(package, inputs, program_specs)
        session = TorchSession(
            fn,
            torch=torch,
            device=device,
            inputs=inputs,
            outputs=(),
            batch_limits=limits,
            dtype=dtype,
            metadata=extra_files(path) if fmt != "state-dict" else None,
        )
        session.outputs, keys = _output_specs(session, options.get("outputs"), program_specs, dtype)
        session._keys = keys
        return session

    # -- inspect -----------------------------------------------------------------------------------------------------
    def inspect(self, path: Path) -> dict[str, str]:
        """TorchScript / ``.pt2`` extra files (read from the zip; torch is not imported). ``{}`` when there are none."""
        return extra_files(Path(path))


def _torchvision_version() -> str | None:
    """The installed torchvision's version, from its distribution metadata (torchvision is not imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torchvision")
    except PackageNotFoundError:
        return None


def _import_torchvision(name: str) -> None:
    import importlib

    try:
        importlib.import_module("torchvision")
    except ImportError as exc:
        raise MissingDependencyError(
            f"{name} calls torchvision ops (its package declares torchvision), and torchvision cannot be imported "
            f"({exc}). Fix: pip install torchvision (the build matching your torch).",
            distribution="torchvision",
        ) from exc


def _spec(value: Any) -> TensorSpec:
    if isinstance(value, TensorSpec):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 3:
        name, shape, dtype = value
        return TensorSpec(
            str(name), tuple(None if d is None or (isinstance(d, int) and d < 0) else d for d in shape), str(dtype)
        )
    raise InvalidParameterError(f"A tensor spec must be a TensorSpec or (name, shape, dtype), got {value!r}.")


def _program_specs(program: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...], BatchLimits | None]:
    """Input/output specs and the batch range of a ``torch.export`` program (symbolic dims → ``None``)."""
    nodes = {n.name: n for n in program.graph.nodes}

    def spec(name: str, val: Any) -> TensorSpec:
        shape = tuple(int(d) if isinstance(d, int) else None for d in val.shape)
        return TensorSpec(name, shape, numpy_dtype_name(val.dtype))

    inputs = tuple(spec(n, nodes[n].meta["val"]) for n in program.graph_signature.user_inputs)
    out_node = next(n for n in program.graph.nodes if n.op == "output")
    vals = [a.meta.get("val") for a in out_node.args[0]]
    outputs = tuple(spec(n, v) for n, v in zip(program.graph_signature.user_outputs, vals) if v is not None)
    limits = None
    first = nodes[program.graph_signature.user_inputs[0]].meta["val"].shape[0] if inputs else None
    if first is not None and not isinstance(first, int):
        symbol = getattr(getattr(first, "node", None), "expr", None)
        vr = program.range_constraints.get(symbol) if symbol is not None else None
        if vr is not None:
            upper = vr.upper
            limits = BatchLimits(min=max(1, int(vr.lower)), max=int(upper) if upper.is_finite else None)
    return inputs, outputs, limits


def _input_specs(given: Any, program: Any, names: Sequence[str]) -> tuple[TensorSpec, ...]:
    if given is not None:
        return tuple(_spec(v) for v in given)
    if program is not None:
        return program[0]
    return tuple(TensorSpec(n, (None,), "float32") for n in names)  # rank unknown: (None,) = "any shape"


def _batch_limits(package: ModelPackage | None, inputs: tuple[TensorSpec, ...], program: Any) -> BatchLimits:
    if package is not None and not package.batch.dynamic:
        return BatchLimits.fixed(package.batch.min)
    first = inputs[0].shape[0] if inputs and inputs[0].shape else None
    if isinstance(first, int) and len(inputs[0].shape) > 1:
        return BatchLimits.fixed(first)
    if program is not None and program[2] is not None:
        return program[2]
    if package is not None:
        return BatchLimits(min=package.batch.min, max=package.batch.max)
    return BatchLimits()


def _output_specs(
    session: TorchSession, given: Any, program: Any, dtype: Any
) -> tuple[tuple[TensorSpec, ...], list[str]]:
    """Output specs: given, from the program, or from one dry run on zeros when input shapes are known."""
    names = None
    if given is not None:
        specs = [v for v in given]
        if all(isinstance(v, (TensorSpec, tuple, list)) for v in specs):
            out = tuple(_spec(v) for v in specs)
            return out, [o.name for o in out]
        names = [str(v) for v in specs]
    if program is not None and program[1]:
        outs = program[1]
        if names is not None and len(names) == len(outs):
            outs = tuple(TensorSpec(n, o.shape, o.dtype) for n, o in zip(names, outs))
        if dtype is not None and session._host and str(dtype) == "torch.bfloat16":
            outs = tuple(TensorSpec(o.name, o.shape, "float32") if o.dtype == "bfloat16" else o for o in outs)
        return tuple(outs), [o.name for o in outs]
    shapes_known = session.inputs and all(
        len(s.shape) > 1 and all(isinstance(d, int) for d in s.shape[1:]) for s in session.inputs
    )
    if not shapes_known:
        if names is not None:
            out = tuple(TensorSpec(n, (None,), "float32") for n in names)
            return out, [o.name for o in out]
        session.outputs_known = False  # found on the first run (see TorchSession._discover)
        return (TensorSpec("output", (None,), "float32"),), ["output"]
    return _dry_run(session, names)


def _dry_run(session: TorchSession, names: list[str] | None) -> tuple[tuple[TensorSpec, ...], list[str]]:
    import numpy as np

    torch = session._torch
    batch = session.batch_limits.min or 1
    feeds = [
        session._tensor(s, np.zeros((batch, *s.shape[1:]), dtype=s.dtype if s.dtype != "bfloat16" else "float32"))
        for s in session.inputs
    ]
    with torch.inference_mode():
        try:
            raw = session._forward(feeds)
        except Exception as exc:
            raise ModelLoadingError(f"A dry run on zeros of the declared input shapes failed: {exc}") from exc
    pairs = flatten_outputs(raw, names)
    if names is not None and [n for n, _ in pairs] != names:
        raise InvalidParameterError(f"outputs={names} but the model returns {len(pairs)} outputs.")
    specs = []
    for name, value in pairs:
        dt = numpy_dtype_name(value.dtype)
        if dt == "bfloat16" and session._host:
            dt = "float32"
        shape = (None, *(int(d) for d in value.shape[1:])) if value.dim() else ()
        specs.append(TensorSpec(name, shape, dt))
    return tuple(specs), [n for n, _ in pairs]
