"""How many of the reference's registry keys im resolves.

The reference (Roboflow ``inference-models``) registers model classes under ``(architecture, task, backend)`` keys in
``inference_models/models/auto_loaders/models_registry.py`` (``REGISTERED_MODELS``), some with the model features
their packages may carry (``RegistryEntry.supported_model_features``). A key counts as resolved by im when an
entry of im's manifest (``im_models._manifest.ENTRIES``, or the manifest at a git revision) serves the architecture
and task, the backend is one im has (``onnx``, ``trt``, ``torch-script`` → im's ``torch`` TorchScript backend; the
reference's ``torch`` (Python model code + state dict), ``hugging-face``, ``coreml``, ``ultralytics``, ``custom``
and ``vllm`` have no im backend) and the entry accepts every feature the reference lets such packages carry —
the checks ``find_model`` and the negotiation's feature check make for a package with that key.

Usage::

    python scripts/reference_registry_coverage.py path/to/models_registry.py [--rev GIT_REV] [--list]
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import types
from pathlib import Path

#: the reference's BackendType members → im's backend names (None: im has no such backend)
BACKENDS = {
    "ONNX": "onnx",
    "TRT": "trt",
    "TORCH_SCRIPT": "torch",
    "TORCH": None,
    "HF": None,
    "COREML": None,
    "ULTRALYTICS": None,
    "CUSTOM": None,
    "VLLM": None,
}


def reference_keys(path: Path) -> list[tuple[str, str, str, frozenset[str]]]:
    """``(architecture, task, BackendType member, supported features)`` of every ``REGISTERED_MODELS`` key."""
    tree = ast.parse(path.read_text())
    consts: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    consts[target.id] = node.value.value
    registry = None
    for node in tree.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if isinstance(target, ast.Name) and target.id == "REGISTERED_MODELS":
            registry = node.value
    if not isinstance(registry, ast.Dict):
        raise SystemExit(f"{path}: no REGISTERED_MODELS dict literal found")
    out = []
    for key, value in zip(registry.keys, registry.values):
        assert isinstance(key, ast.Tuple)
        arch_node, task_node, backend_node = key.elts
        arch = arch_node.value if isinstance(arch_node, ast.Constant) else consts[arch_node.id]  # type: ignore[attr-defined]
        task = task_node.value if isinstance(task_node, ast.Constant) else consts[task_node.id]  # type: ignore[attr-defined]
        backend = backend_node.attr  # type: ignore[attr-defined]
        features: frozenset[str] = frozenset()
        if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "RegistryEntry":
            for kw in value.keywords:
                if kw.arg == "supported_model_features" and isinstance(kw.value, ast.Set):
                    features = frozenset(e.value for e in kw.value.elts if isinstance(e, ast.Constant))
        out.append((arch, task, backend, features))
    return out


def manifest_entries(rev: str | None) -> tuple:
    """``ENTRIES`` of im's manifest, as installed or at a git revision."""
    if rev is None:
        from im_models._manifest import ENTRIES

        return ENTRIES
    source = subprocess.run(
        ["git", "show", f"{rev}:packages/im-models/src/im_models/_manifest.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("manifest_at_rev")
    exec(compile(source, f"{rev}:_manifest.py", "exec"), module.__dict__)
    return module.ENTRIES


def resolves(entries: tuple, arch: str, task: str, backend: str, features: frozenset[str]) -> bool:
    im_backend = BACKENDS.get(backend)
    if im_backend is None:
        return False
    for e in entries:
        if arch.lower() in e.architectures and e.task == task:
            if e.backends is not None and im_backend not in e.backends:
                continue
            if features - set(e.features) - {"ultralytics"}:
                continue
            return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("registry", type=Path, help="the reference's models_registry.py")
    parser.add_argument("--rev", help="count with im's manifest at this git revision")
    parser.add_argument("--list", action="store_true", help="list the keys and whether each resolves")
    args = parser.parse_args()
    keys = reference_keys(args.registry)
    entries = manifest_entries(args.rev)
    hits = [k for k in keys if resolves(entries, *k)]
    if args.list:
        for k in keys:
            print(
                ("yes " if k in hits else "no  ") + f"{k[0]} / {k[1]} / {k[2]}" + (f" {sorted(k[3])}" if k[3] else "")
            )
    print(f"im resolves {len(hits)} of the reference's {len(keys)} registry keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
