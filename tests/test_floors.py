"""DESIGN.md §1, floors: each module imports only from its own floor or the floors below it.

Every module of the package is parsed (imports inside functions included, since most heavy imports
are lazy) and each project import is checked against the floor plan below. Adding a module means
giving it a floor here; the README's Development section shows the same plan.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# installed package name -> folder in the repository (pyproject's package-dir)
FOLDERS = {"patchcoder": "patchcoder", "patchcoder.mining": "mining", "patchcoder.tokenizer": "tokenizer",
           "patchcoder.kernels": "kernels", "patchcoder.training": "training"}

# (module name or package prefix, floor); the longest matching entry wins.
FLOORS: list[tuple[str, int]] = [
    ("patchcoder.ground", 1),  # errors, languages, console, argtypes, sstub, atomic writes, manifest, storage
    ("patchcoder.mining", 2),
    ("patchcoder.tokenizer", 3),  # with the rewrite engine (tokenizer/rewrites)
    ("patchcoder.kernels", 4),
    ("patchcoder.model", 4),
    ("patchcoder.checkpoint", 4),
    ("patchcoder.decoding", 5),
    ("patchcoder.windows", 5),
    ("patchcoder.layout", 5),
    ("patchcoder.ranking", 5),
    ("patchcoder.scratch", 5),
    ("patchcoder.localize", 5),
    ("patchcoder.search", 5),
    ("patchcoder.repair", 6),
    ("patchcoder.fix", 6),
    ("patchcoder.fix_cli", 6),
    ("patchcoder.suggest", 6),
    ("patchcoder.suggest_cli", 6),
    ("patchcoder.hook", 6),
    ("patchcoder.cli", 6),
    ("patchcoder.__main__", 6),
    ("patchcoder", 6),  # the package itself: its version and the lazily re-exported Repairer, Patch
    ("patchcoder.training", 7),
]
# The top floor of the product, which no part below may import: the CLI and the user-facing commands.
PRODUCT_TOP = ("patchcoder.cli", "patchcoder.repair", "patchcoder.suggest", "patchcoder.suggest_cli",
               "patchcoder.hook", "patchcoder.fix", "patchcoder.fix_cli", "patchcoder.__main__")
# Training's evaluation decodes the way the product does, and reads clean code the way suggest reads files (its
# limits, a file's repository); its entry point for `accelerate launch -m` is the CLI.
ALLOWED_TOP = {"patchcoder.training.evaluate": ("patchcoder.repair", "patchcoder.windows", "patchcoder.suggest"),
               "patchcoder.training.eval_cli": ("patchcoder.repair",),
               "patchcoder.training.__main__": ("patchcoder.cli",)}


def floor_of(module: str) -> int:
    matches = [(len(name), floor) for name, floor in FLOORS if module == name or module.startswith(name + ".")]
    if not matches:
        raise AssertionError(f"{module} has no floor in tests/test_floors.py: give it one")
    return max(matches)[1]


def modules() -> dict[str, Path]:
    """Installed module name -> source file, for every module of the package."""
    out = {}
    for package, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            out[name] = path
    return out


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules that `source` imports, anywhere in the file (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "patchcoder")
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports are banned by ruff, but resolve them anyway
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "patchcoder":
                continue
            for alias in node.names:  # `from patchcoder import repair` imports the module patchcoder.repair
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return found


def violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if floor_of(target) > floor_of(module):
                out.append(f"{module} (floor {floor_of(module)}) imports {target} (floor {floor_of(target)})")
            top = next((t for t in PRODUCT_TOP if target == t or target.startswith(t + ".")), None)
            part = module.count(".") >= 1 and module.split(".")[1] in {"mining", "tokenizer", "kernels", "training"}
            if top and part and target not in ALLOWED_TOP.get(module, ()):
                out.append(f"{module} is a part and imports the product's {target}")
    return out


def project_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(path.read_text(), name, path.name == "__init__.py", known) - {name}
            for name, path in mods.items()}


def test_every_import_goes_down_the_floors():
    assert violations(project_graph()) == []


def test_the_checker_sees_imports_inside_functions_and_upward_edges():
    known = {"patchcoder.repair", "patchcoder.tokenizer.edits"}
    source = "def f():\n    from patchcoder import repair\n    import patchcoder.tokenizer.edits\n"
    found = imports_of(source, "patchcoder.mining.walk", False, known)
    assert found == {"patchcoder.repair", "patchcoder.tokenizer.edits"}
    assert len(violations({"patchcoder.mining.walk": found})) == 3  # two upward edges, one into the product
    assert violations({"patchcoder.training.evaluate": {"patchcoder.repair"}}) == []
    assert violations({"patchcoder.training.loop": {"patchcoder.repair"}}) != []


def test_mining_never_imports_the_tokenizer_or_torch_and_only_raypool_imports_ray():
    graph = project_graph()
    for module, targets in graph.items():
        if module.startswith("patchcoder.mining"):
            assert not {t for t in targets if t.startswith("patchcoder.tokenizer")}, module
    for path in (ROOT / "mining").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {n for n in names if n.split(".")[0] == "torch"}, path
        if path.name != "raypool.py":  # Ray, an optional extra, is imported in one place, when asked for
            assert not {n for n in names if n.split(".")[0] == "ray"}, path


def test_importing_the_miner_loads_no_tokenizer_module_no_torch_and_no_ray():
    code = ("import sys, patchcoder.mining, patchcoder.mining.run; "
            "bad = sorted(m for m in sys.modules if m.startswith('patchcoder.tokenizer') or m.split('.')[0] in ('torch', 'ray')); "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted({p.name for p in (ROOT / "tests").rglob("test_*.py")}))
def test_no_two_test_files_share_a_name(name):
    assert len(list((ROOT / "tests").rglob(name))) == 1, name
