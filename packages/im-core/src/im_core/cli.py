"""The ``im`` command line. Subcommands import what they need when they run.

im-core's own commands are listed here; other distributions add theirs through the ``im.cli`` entry-point group
(a :class:`~im_core.CommandManifest` naming ``module:configure``), so im-core names no other wheel's modules.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
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
    "predict": (
        "Run a model on images, folders, globs or videos: print, --json, --save annotated images.",
        "im_core._predict_cli:predict_command",
    ),
    "pipeline": (
        "Run a pipeline (ocr, face-gaze, ...) on images, folders, globs or videos.",
        "im_core._predict_cli:pipeline_command",
    ),
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


def versions() -> list[tuple[str, str]]:
    """``(distribution, version)`` of im-core and every other installed ``im-*`` distribution, im-core first."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("im-") and name not in found:
            found[name] = dist.version
    return sorted(found.items(), key=lambda kv: (kv[0] != "im-core", kv[0]))


class _VersionAction(argparse.Action):
    """``im --version``: the versions of the installed im wheels and of Python (computed only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        import platform

        lines = [f"{name} {version}" for name, version in versions()] or ["im-core (version unknown: not installed)"]
        lines.append(f"python {platform.python_version()}")
        print("\n".join(lines))
        parser.exit()


@contextlib.contextmanager
def log_handler(level: str) -> Iterator[None]:
    """While a command runs, the ``im`` loggers' records at ``level`` (``IM_LOG_LEVEL``) and above go to stderr."""
    import logging

    logger = logging.getLogger("im")
    logger.setLevel(level)
    handler = logging.StreamHandler(sys.stderr)  # the stream of this run (secrets scrubbed)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


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
    parser.add_argument("--version", action=_VersionAction, help="show the versions of the installed im wheels")
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
            level = settings().log_level  # reads ROBOFLOW_API_KEY too: a known key from the start
            with log_handler(level):
                return int(handlers[args.command](args) or 0)
        except ImError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
