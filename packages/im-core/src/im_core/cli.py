"""The ``im`` command line. Subcommands import what they need when they run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]

#: subcommand name -> (help, "module:function" that adds its arguments and returns the handler)
_COMMANDS: dict[str, tuple[str, str]] = {
    "describe-env": ("Describe this machine: OS, CPU, GPUs and installed backends.", "im_core.cli:_describe_env"),
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


def main(argv: Sequence[str] | None = None) -> int:
    from im_core._plugins import load_target
    from im_core.errors import ImError

    parser = argparse.ArgumentParser(prog="im", description="Load and run computer-vision models.")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, Any] = {}
    for name, (help_text, target) in _COMMANDS.items():
        handlers[name] = load_target(target)(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    try:
        return int(handlers[args.command](args) or 0)
    except ImError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
