"""The ``im`` command line. Subcommands import what they need when they run.

im-core's own commands are listed here; other distributions add theirs through the ``im.cli`` entry-point group
(a :class:`~im_core.CommandManifest` naming ``module:configure``), so im-core names no other wheel's modules.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]

#: im-core's subcommands: name -> (help, "module:function" that adds its arguments and returns the handler)
_COMMANDS: dict[str, tuple[str, str]] = {
    "describe-env": ("Describe this machine: OS, CPU, GPUs and installed backends.", "im_core.cli:_describe_env"),
    "describe-model": ("Describe a model and its packages.", "im_core._auto_cli:describe_model_command"),
    "describe-package": ("Describe one package of a model.", "im_core._auto_cli:describe_package_command"),
    "negotiate": (
        "Show which package would be loaded here, and why each other one was not.",
        "im_core._auto_cli:negotiate_command",
    ),
    "predict": ("Run a model on images and print the results.", "im_core._auto_cli:predict_command"),
    "cache": ("Inspect and maintain the model cache (list, verify, prune).", "im_core._cache._cli:configure"),
}


def _describe_env(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def run(args: argparse.Namespace) -> int:
        from im_core._describe import describe_compute_environment

        env = describe_compute_environment(print_output=not args.json)
        if args.json:
            print(json.dumps(env.to_dict(), indent=2, default=str))
        return 0

    return run


def add_command(name: str, help_text: str, target: str) -> None:
    """Register a subcommand (used by other modules of im-core)."""
    _COMMANDS[name] = (help_text, target)


def _unavailable(name: str, exc: Exception) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        print(f"error: `im {name}` is not available here: {exc}", file=sys.stderr)
        return 2

    return run


def _commands() -> dict[str, tuple[str, str, str | None]]:
    """im-core's commands, then those of the ``im.cli`` plugins (a plugin cannot replace a core command)."""
    from im_core._plugins import registry

    out: dict[str, tuple[str, str, str | None]] = {name: (h, t, None) for name, (h, t) in _COMMANDS.items()}
    for name, manifest in sorted(registry().commands.items()):
        if name in out:
            print(
                f"warning: ignoring `im {name}` of {manifest.distribution}: im-core has that command", file=sys.stderr
            )
            continue
        out[name] = (manifest.help or f"(from {manifest.distribution})", manifest.target, manifest.distribution)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from im_core._plugins import load_target
    from im_core.errors import ImError

    parser = argparse.ArgumentParser(prog="im", description="Load and run computer-vision models.")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, Any] = {}
    for name, (help_text, target, distribution) in _commands().items():
        try:
            configure = load_target(target, distribution=distribution)
        except ImError as exc:  # the package providing this command is not installed
            handlers[name] = _unavailable(name, exc)
            sub.add_parser(name, help=f"(unavailable) {help_text}", add_help=False)
            continue
        handlers[name] = configure(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    from im_core._config import settings
    from im_core._secrets import scrubbing_streams

    with scrubbing_streams():  # a key echoed by a provider (in metadata, in an error) is never printed
        try:
            settings()  # reads ROBOFLOW_API_KEY: a known key from the start
            return int(handlers[args.command](args) or 0)
        except ImError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
