"""mkdocs hooks: the pages generated from the installed code (``mkdocs.yml`` → ``hooks``).

- ``models.md``: every installed model family (from the ``im.models`` manifests): its architectures, task,
  backends and features, and the pipelines (``im.pipelines``);
- ``tasks/<task>.md``: one page per task: each family's call parameters (``Model.CALL_PARAMS``: the name, the stage
  that reads it) and defaults read from the family's source (the literal defaults it passes or reads), its load
  options (``Model.LOAD_OPTIONS``) and its docstring;
- ``cli.md``: the ``--help`` of ``im`` and of every subcommand, from the argparse parser itself.

Run by ``uv run mkdocs build --strict`` (CI: ``.ci/run``); needs no network. ``python scripts/docs_hooks.py OUT``
writes the same pages into OUT for a look without mkdocs.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import os
import re
import sys
import textwrap
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

#: what a stage of ``CALL_PARAMS`` means, in words
_STAGES = {"pre": "pre-processing", "post": "post-processing"}


# -- models and tasks -------------------------------------------------------------------------------------------
def _families() -> list[tuple[Any, type | None]]:
    """``(ModelEntry, family class or None when it cannot be imported)`` for every installed family."""
    from im_core import registry
    from im_core.sdk import load_target

    out = []
    for entry in registry().models:
        try:
            cls = load_target(entry.target)
        except Exception:  # a family whose runtime is missing is still listed, without its parameters
            cls = None
        out.append((entry, cls))
    return out


_UNKNOWN = object()


def _literal(node: ast.AST, module: Any) -> Any:
    """The value of a literal, or of a module-level constant named by ``node``; ``_UNKNOWN`` otherwise."""
    if isinstance(node, ast.Name) and hasattr(module, node.id):
        value = getattr(module, node.id)
        return value if isinstance(value, (int, float, str, bool, type(None))) else _UNKNOWN
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _UNKNOWN


def _source_defaults(cls: type) -> dict[str, Any]:
    """Call-parameter defaults as the family's module spells them: the keywords it passes to
    ``resolve_detection_params`` (over that function's own defaults) and ``params.get("name", default)`` reads."""
    from im_models.common import resolve_detection_params

    out: dict[str, Any] = {
        name: p.default
        for name, p in inspect.signature(resolve_detection_params).parameters.items()
        if p.default is not inspect.Parameter.empty and name != "recommended"
    }
    out.update(class_agnostic=False, class_filter=None)
    module = sys.modules.get(cls.__module__)
    try:
        tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return out
    found: dict[str, Any] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "resolve_detection_params":
            found.update({k.arg: _literal(k.value, module) for k in node.keywords if k.arg and k.arg != "recommended"})
        elif name == "get" and len(node.args) == 2 and isinstance(node.args[0], ast.Constant):
            key = node.args[0].value
            if isinstance(key, str):
                found.setdefault(key, _literal(node.args[1], module))
    if not any(isinstance(n, ast.Call) and "resolve_detection_params" in ast.unparse(n.func) for n in ast.walk(tree)):
        out = {}  # the shared detection defaults apply only to a family that resolves its parameters with them
    out.update({k: v for k, v in found.items() if v is not _UNKNOWN})
    unknown = {k for k, v in found.items() if v is _UNKNOWN}
    return {k: v for k, v in out.items() if k not in unknown}


def _dataclass_defaults(cls: type) -> dict[str, Any]:
    """Defaults of a parameters dataclass the family keeps (``self._params``: the DB text detector's)."""
    import dataclasses

    module = sys.modules.get(cls.__module__)
    out: dict[str, Any] = {}
    for value in vars(module).values() if module else ():
        if dataclasses.is_dataclass(value) and isinstance(value, type) and value.__name__.endswith("Params"):
            for f in dataclasses.fields(value):
                if f.default is not dataclasses.MISSING:
                    out.setdefault(f.name, f.default)
    return out


def _default_text(name: str, defaults: dict[str, Any]) -> str:
    if name == "image_size":
        return "the package's input size"
    if name not in defaults:
        return "see the family"
    value = defaults[name]
    if name == "class_filter" and value is None:
        return "`None` (every class)"
    return f"`{value!r}`"


def _docstring(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    doc = re.sub(r":(?:class|func|meth|data|attr):`~?([^`]+)`", r"`\1`", doc)
    return doc.replace("``", "`")


def models_page(families: list[tuple[Any, type | None]]) -> str:
    from im_core import registry

    lines = [
        "# Models",
        "",
        "Generated from the installed manifests (`im.models` and `im.pipelines` entry points) when this site was",
        "built, so it lists exactly what `pip install im-vision` brings. An architecture name is what a package's",
        "metadata (`model_architecture`) or `from_pretrained(..., architecture=...)` says; aliases of one family",
        "share a row. Backends: `any` means any backend that can load the package's file (a family talks to its",
        "backend only through the `Session` protocol).",
        "",
        "| architectures | task | family | backends | features | call parameters |",
        "|---|---|---|---|---|---|",
    ]
    for entry, cls in sorted(families, key=lambda f: (f[0].task, f[0].architectures)):
        params = getattr(cls, "CALL_PARAMS", None) if cls is not None else None
        shown = ", ".join(f"`{p}`" for p in sorted(params)) if params else "none"
        task_link = f"[{entry.task}](tasks/{entry.task}.md)"
        lines.append(
            f"| {', '.join(f'`{a}`' for a in entry.architectures)} | {task_link} | "
            f"`{entry.target.split(':')[-1]}` | {', '.join(entry.backends) if entry.backends else 'any'} | "
            f"{', '.join(sorted(entry.features)) or '—'} | {shown} |"
        )
    lines += [
        "",
        "## Pipelines",
        "",
        "`AutoModelPipeline.from_pretrained(<name>, models_parameters=[...])` (im-pipelines).",
        "",
        "| pipeline | default models | what it does |",
        "|---|---|---|",
    ]
    for name, entry in sorted(registry().pipelines.items()):
        models = ", ".join(f"`{m}`" for m in entry.default_models) or "—"
        lines.append(f"| `{name}` | {models} | {entry.description or '—'} |")
    lines += [
        "",
        "## Backends",
        "",
        "| backend | aliases | file suffixes | distribution | priority per device |",
        "|---|---|---|---|---|",
    ]
    for name, m in sorted(registry().backends.items()):
        suffixes = ", ".join(f"`{s}`" for s in sorted(m.file_suffixes)) or "—"
        priority = ", ".join(f"{k}: {v}" for k, v in sorted(m.priority.items()))
        lines.append(f"| `{name}` | {', '.join(m.aliases) or '—'} | {suffixes} | `{m.distribution}` | {priority} |")
    return "\n".join(lines) + "\n"


def task_pages(families: list[tuple[Any, type | None]]) -> dict[str, str]:
    by_task: dict[str, list[tuple[Any, type | None]]] = defaultdict(list)
    for entry, cls in families:
        by_task[entry.task].append((entry, cls))
    pages = {}
    for task, members in sorted(by_task.items()):
        lines = [
            f"# {task}",
            "",
            "Generated from the installed families: each family's call parameters (`Model.CALL_PARAMS`), the",
            "stage that reads each one, and the defaults its source passes. A package's recommended parameters",
            "(its metadata) replace a family default; what you pass to the call replaces both:",
            "",
            "```python",
            "from im_vision import AutoModel",
            "",
            'model = AutoModel.from_pretrained("<model id, folder or file>")',
            f"result = model(image{_example_params(members)})",
            "```",
            "",
            "An unknown parameter is refused with the accepted list and a suggestion (`'conf' (did you mean",
            "'confidence'?)`).",
            "",
        ]
        seen: set[str] = set()
        for entry, cls in sorted(members, key=lambda m: m[0].target):
            name = entry.target.split(":")[-1]
            if name in seen:
                continue
            seen.add(name)
            archs = ", ".join(
                f"`{a}`" for a in sorted(a for e, _ in members if e.target == entry.target for a in e.architectures)
            )
            lines += [f"## {name}", "", f"Architectures: {archs}.", ""]
            if cls is None:
                lines += ["(not importable here: its runtime is not installed)", ""]
                continue
            params = getattr(cls, "CALL_PARAMS", None)
            if params:
                defaults = {**_dataclass_defaults(cls), **_source_defaults(cls)}
                lines += ["| call parameter | read by | default |", "|---|---|---|"]
                for p, stage in sorted(params.items()):
                    lines.append(f"| `{p}` | {_STAGES.get(stage, stage)} | {_default_text(p, defaults)} |")
                lines.append("")
            elif params is not None:
                lines += ["Takes no call parameters.", ""]
            options = getattr(cls, "LOAD_OPTIONS", None)
            if options:
                shown = ", ".join(f"`{o}`" for o in sorted(options))
                lines += [f"Load options (`from_pretrained(..., option=value)`): {shown}.", ""]
            doc = _docstring(cls)
            if doc:
                lines += ["```text", textwrap.dedent(doc), "```", ""]
        pages[f"tasks/{task}.md"] = "\n".join(lines)
    return pages


def _example_params(members: list[tuple[Any, type | None]]) -> str:
    for _, cls in members:
        params = getattr(cls, "CALL_PARAMS", None) or {}
        if "confidence" in params:
            return ", confidence=0.5"
        if "threshold" in params:
            return ", threshold=0.5"
    return ""


# -- command line -----------------------------------------------------------------------------------------------
def _help(argv: list[str]) -> str:
    from im_core.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        main([*argv, "--help"])
    return out.getvalue()


def _subcommands(text: str) -> list[str]:
    """The subcommands a usage line offers: its ``{a,b}`` group that is not an option's choices
    (``--backend {onnx,torch}``)."""
    usage = text.split("\n\n", 1)[0]
    usage = re.sub(r"-[\w-]+ \{[^}]*\}", "", usage)  # an option's choices (--backend {onnx,torch}) are no subcommands
    found = re.search(r"\{([\w,-]+)\}", usage)
    return found.group(1).split(",") if found else []


def cli_page() -> str:
    os.environ["COLUMNS"] = "110"  # the same line width on every machine
    lines = [
        "# Command line",
        "",
        "Generated from the `im` parser when this site was built (the `--help` of every command). Other",
        "distributions add subcommands through the `im.cli` entry-point group (`registry` comes from",
        "im-providers, `trt` from im-backend-trt, `serve` from im-serve, `ray-serve` from im-ray, `export` from",
        "im-backend-transformers). Errors print one line with a help link and exit 2.",
        "",
    ]

    def walk(argv: list[str], depth: int) -> None:
        text = _help(argv)
        title = " ".join(["im", *argv])
        lines.extend([f"{'#' * min(depth, 4)} `{title}`", "", "```text", text.rstrip(), "```", ""])
        for sub in _subcommands(text) if depth < 5 else ():  # a choices={a,b} option is not a subcommand level
            walk([*argv, sub], depth + 1)

    walk([], 2)
    return "\n".join(lines)


# -- mkdocs -------------------------------------------------------------------------------------------------------
def generate() -> dict[str, str]:
    """Every generated page: path under ``docs/`` → Markdown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a broken third-party plugin warns; the page lists what loads
        families = _families()
    return {"models.md": models_page(families), **task_pages(families), "cli.md": cli_page()}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, content in generate().items():
        files.append(File.generated(config, path, content=content))
    return files


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "site-generated")
    for rel, text in generate().items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text(text, encoding="utf-8")
        print(target / rel)
