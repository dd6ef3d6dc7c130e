"""Readable tables (rich) that also return their data: ``describe_compute_environment`` and friends."""

from __future__ import annotations

from typing import Any

from im_core._runtime import ComputeEnvironment, collect_compute_environment

__all__ = ["describe_compute_environment", "print_table"]


def print_table(title: str, rows: list[tuple[str, Any]], *, console: Any = None) -> None:
    """Print a two-column table with rich (imported here, lazily)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:  # escaped: rich would read "[a, b]" in a value as markup and drop it
        table.add_row(escape(str(key)), "—" if value in (None, "", [], ()) else escape(str(value)))
    (console or Console()).print(table)


def describe_compute_environment(*, print_output: bool = True, console: Any = None) -> ComputeEnvironment:
    """Print what this machine offers to im (OS, CPU, GPUs, backends) and return it as data."""
    env = collect_compute_environment()
    if print_output:
        rows: list[tuple[str, Any]] = [
            ("OS", env.os),
            ("Python", env.python),
            ("CPU", f"{env.cpu} ({env.cpu_count} logical cores)"),
            ("Memory", f"{env.memory_gib} GiB" if env.memory_gib else None),
            ("NVIDIA driver", env.driver_version),
            ("CUDA (driver)", env.cuda_driver_version),
            ("Jetson", env.jetson),
        ]
        if env.gpus:
            for g in env.gpus:
                rows.append(
                    (
                        f"GPU {g.index}",
                        f"{g.name}, sm_{(g.compute_capability or '?').replace('.', '')}, {g.memory_mib or '?'} MiB",
                    )
                )
        else:
            rows.append(("GPUs", "none found"))
        for name, b in env.backends.items():
            if b["available"]:
                details = ", ".join(f"{k}={_short(v)}" for k, v in b["details"].items())
                rows.append((f"backend {name}", f"{b['version']} on {', '.join(b['devices'])}; {details}"))
            else:
                rows.append((f"backend {name}", f"unavailable: {b['reason']}"))
        if not env.backends:
            rows.append(("backends", "none installed: pip install im-backend-onnx (or im-backend-torch)"))
        for broken in env.broken_plugins:
            rows.append(("broken plugin", broken))
        print_table("Compute environment", rows, console=console)
    return env


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _size(package: Any) -> str:
    sizes = [f.size for f in package.files]
    if not sizes:
        return "—"
    total = sum(s or 0 for s in sizes)
    text = f"{total / 2**20:.1f} MiB"
    return text if all(s is not None for s in sizes) else f"≥ {text} (some sizes unknown)"


def print_model(metadata: Any, *, console: Any = None) -> None:
    """Print a model's overview and a table of its packages."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    print_table(
        "Model",
        [
            ("Model id", metadata.model_id),
            ("Architecture", metadata.architecture),
            ("Variant", metadata.variant),
            ("Task", metadata.task),
            ("Provider", metadata.provider),
            (
                "Classes",
                f"{len(metadata.class_names)}: {', '.join(metadata.class_names[:8])}"
                + (" …" if len(metadata.class_names) > 8 else "")
                if metadata.class_names
                else None,
            ),
            ("Dependencies", ", ".join(f"{d.name} → {d.model_id}" for d in metadata.dependencies)),
            ("Packages", len(metadata.packages)),
        ],
        console=console,
    )
    table = Table(title="Packages", title_justify="left")
    for col in ("package", "backend", "quantization", "batch", "files", "size", "trusted"):
        table.add_column(col)
    for p in sorted(metadata.packages, key=lambda p: p.package_id):
        cells = (p.package_id, p.backend, p.quantization, p.batch.describe(), len(p.files), _size(p), p.trusted)
        table.add_row(*(("yes" if c else "no") if isinstance(c, bool) else escape(str(c)) for c in cells))
    console.print(table)
    console.print(
        "Details of one package: im describe-package <model> <package>; what would load here: im negotiate <model>"
    )


def print_package(metadata: Any, package: Any, *, console: Any = None) -> None:
    """Print one package's details: backend, batch, files and backend requirements."""
    rows: list[tuple[str, Any]] = [
        ("Model", metadata.model_id),
        ("Package", package.package_id),
        ("Backend", package.backend),
        ("Quantization", package.quantization),
        ("Batch", package.batch.describe() + (" (dynamic)" if package.batch.dynamic else " (static)")),
        ("Input size", "x".join(map(str, package.input_size)) if package.input_size else None),
        ("Trusted", "yes" if package.trusted else "no"),
        ("Size", _size(package)),
        ("Features", ", ".join(sorted(package.features))),
    ]
    if package.requirements:
        values = {k: v for k, v in _requirements(package).items() if v not in (None, (), [], {}, False)}
        rows.append(
            (f"{package.backend} requirements", ", ".join(f"{k}={_short(v)}" for k, v in values.items()) or "none")
        )
    for f in package.files:
        digest = f"sha256 {f.sha256[:12]}…" if f.sha256 else (f"md5 {f.md5[:12]}…" if f.md5 else "no hash")
        rows.append((f"file {f.name}", f"{f.size if f.size is not None else '?'} bytes, {digest}"))
    print_table("Model package", rows, console=console)


def _requirements(package: Any) -> dict[str, Any]:
    """The package's requirement block as its backend reads it (with the backend's defaults), or as written when the
    backend is not installed or cannot read it."""
    from im_core._plugins import registry
    from im_core.errors import ImError

    try:
        read = registry().requirements(package)
    except ImError:
        return dict(package.requirements)
    dump = getattr(read, "model_dump", None)
    if dump is not None:
        return dict(dump())
    return dict(read) if isinstance(read, dict) else dict(package.requirements)
