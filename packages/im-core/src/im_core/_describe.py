"""Readable tables (rich) that also return their data: ``describe_compute_environment`` and friends."""

from __future__ import annotations

from typing import Any

from im_core._runtime import ComputeEnvironment, collect_compute_environment

__all__ = ["describe_compute_environment", "print_table"]


def print_table(title: str, rows: list[tuple[str, Any]], *, console: Any = None) -> None:
    """Print a two-column table with rich (imported here, lazily)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, "—" if value in (None, "", [], ()) else str(value))
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
