"""The packages' public surfaces: sibling wheels use each other only through public modules, every package's
``__all__`` is pinned, and the lazy-export tables agree with the ``TYPE_CHECKING`` imports type checkers read.

Changing a public ``__all__`` on purpose: update ``public_api.json`` next to this file (and say so in the changelog
of the package, since plugins outside this repository rely on those names).
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = REPO / "packages"
PINNED = Path(__file__).with_name("public_api.json")

#: every public module whose ``__all__`` other wheels and third-party plugins rely on
PUBLIC_MODULES = (
    "im_core",
    "im_core.sdk",
    "im_core.errors",
    "im_core.testing",
    "im_providers",
    "im_backend_onnx",
    "im_backend_torch",
    "im_backend_trt",
    "im_models",
    "im_models.common",
    "im_pipelines",
    "im_serve",
    "im_backend_transformers",
    "im_models.hf",
    "im_ray",
    "im_vision",
)


def _sources() -> list[tuple[str, Path]]:
    """``(import name of the package the file belongs to, file)`` for every source file under ``packages/``."""
    out = []
    for src in sorted(PACKAGES.glob("*/src/*")):
        if src.is_dir():
            out += [(src.name, f) for f in sorted(src.rglob("*.py"))]
    return out


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _is_private_of_other(module: str, own: str) -> bool:
    """``module`` is a private module (a ``_name`` part) of a package other than ``own``."""
    parts = module.split(".")
    return parts[0] != own and parts[0].startswith("im_") and any(p.startswith("_") for p in parts[1:])


def test_no_wheel_imports_another_wheels_private_modules() -> None:
    offenders = []
    for own, file in _sources():
        for line, module in _imported_modules(ast.parse(file.read_text(encoding="utf-8"))):
            if _is_private_of_other(module, own):
                offenders.append(f"{file.relative_to(REPO)}:{line}: {module}")
    assert not offenders, (
        "Sibling wheels may import only public modules of each other (im_core, im_core.sdk, im_core.errors, "
        "im_core.testing, im_models.common, ...). Move the name behind a public module:\n" + "\n".join(offenders)
    )


def test_families_use_the_public_common_module() -> None:
    common = PACKAGES / "im-models" / "src" / "im_models" / "common"
    offenders = []
    for own, file in _sources():
        if own != "im_models" or common in file.parents:
            continue
        for line, module in _imported_modules(ast.parse(file.read_text(encoding="utf-8"))):
            if module.startswith("im_models.common._"):
                offenders.append(f"{file.relative_to(REPO)}:{line}: {module}")
    assert not offenders, "Import the building blocks from im_models.common:\n" + "\n".join(offenders)


def test_the_check_sees_a_private_import() -> None:
    """The scan above is not vacuous: it flags the forms of import it is meant to catch."""
    tree = ast.parse("from im_core._cache import x\nimport im_core._lazy\nfrom im_core.sdk import y\nimport numpy\n")
    flagged = [m for _, m in _imported_modules(tree) if _is_private_of_other(m, "im_models")]
    assert flagged == ["im_core._cache", "im_core._lazy"]
    assert not _is_private_of_other("im_core._cache", "im_core")


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_all_is_pinned(module_name: str) -> None:
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == pinned[module_name], (
        f"{module_name}.__all__ changed; if on purpose, update {PINNED.name}"
    )
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ lists names it does not have: {missing}"


def _lazy_modules() -> list[Path]:
    return [f for _, f in _sources() if "lazy_exports(" in f.read_text(encoding="utf-8") and f.name != "_lazy.py"]


def _type_checking_imports(tree: ast.Module) -> dict[str, str]:
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in ast.walk(node):
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    names.update({alias.asname or alias.name: stmt.module for alias in stmt.names})
    return names


def _module_name(file: Path) -> str:
    parts = list(file.relative_to(PACKAGES).with_suffix("").parts[2:])  # drop "<distribution>/src"
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_lazy_module_is_found() -> None:
    names = {_module_name(f) for f in _lazy_modules()}
    expected = {"im_core", "im_core._cache", "im_core.sdk", "im_providers", "im_models", "im_pipelines"}
    assert expected | {"im_backend_onnx", "im_backend_torch", "im_backend_trt"} <= names


@pytest.mark.parametrize("file", _lazy_modules(), ids=_module_name)
def test_lazy_exports_match_type_checking_block(file: Path) -> None:
    module = importlib.import_module(_module_name(file))
    table = getattr(module, "_EXPORTS", None) or module._FAMILIES
    typed = _type_checking_imports(ast.parse(file.read_text(encoding="utf-8")))
    assert typed == dict(table), (
        f"{module.__name__}: the lazy-export table and the TYPE_CHECKING imports disagree: only in the table "
        f"{sorted(set(table.items()) - set(typed.items()))}, only in TYPE_CHECKING "
        f"{sorted(set(typed.items()) - set(table.items()))}"
    )
    extra = set(module.__all__) - set(table)
    assert extra <= {"__version__", "SDK_VERSION"}, f"{module.__name__}.__all__ has names with no module: {extra}"
    for name, where in table.items():
        assert getattr(importlib.import_module(where), name) is getattr(module, name)
