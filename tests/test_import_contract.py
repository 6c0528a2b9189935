"""The import contract (docs/design.md): one namespace, arrows one way, no cycles, no torch below.

- Everything is ``softleak.<part>``: after importing every module, no module is loaded under a
  bare part name as well (``python -m pytest`` from the root puts the part folders on sys.path, so
  a stray ``import simulate`` would load a second copy of every module it reaches).
- Layering, read from every import statement of every module (function-level lazy imports
  included): theory <- simulate <- compare <- paper_figs <- the command line. ``compare`` may read
  result folders through ``softleak.simulate.store`` (torch-free) and nothing else of simulate.
- ``theory`` and ``compare`` never import torch; ``theory`` never imports matplotlib.
- No import cycles among module-level imports.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import softleak

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("theory", "simulate", "compare", "paper_figs")
LAYER = {"theory": 0, "simulate": 1, "compare": 2, "paper_figs": 3, "cli": 4}
# What compare may import from simulate: the torch-free readers of result folders.
COMPARE_MAY_READ = {"softleak.simulate", "softleak.simulate.store"}


def modules() -> dict[str, Path]:
    """Every module of the package: name -> file."""
    out = {"softleak": ROOT / "softleak" / "__init__.py"}
    for path in sorted((ROOT / "softleak").glob("*.py")):
        if path.stem != "__init__":
            out[f"softleak.{path.stem}"] = path
    for part in PARTS:
        for path in sorted((ROOT / part).rglob("*.py")):
            rel = path.relative_to(ROOT / part).with_suffix("")
            bits = [b for b in rel.parts if b != "__init__"]
            out[".".join(["softleak", part, *bits])] = path
    return out


def part_of(module: str) -> str | None:
    """The layer a module belongs to (None: the root package ``softleak`` itself)."""
    bits = module.split(".")
    if bits[0] != "softleak":
        return None
    if len(bits) == 1:
        return None
    return bits[1] if bits[1] in PARTS else "cli"


def imports(path: Path, *, top_level_only: bool = False) -> list[tuple[str, int]]:
    """(imported module, line) of every import in a file (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # imports for annotations only run nothing: leave them out
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node.lineno))
            # `from softleak import simulate` imports the part itself
            if node.module == "softleak":
                found += [
                    (f"softleak.{a.name}", node.lineno) for a in node.names if a.name in PARTS
                ]
    return found


def test_every_module_imports_under_one_name_only():
    for module in modules():
        if module.endswith("__main__"):
            continue
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:  # an optional dependency (transformers, dask)
            if err.name and err.name.split(".")[0] in ("transformers", "distributed", "dask"):
                continue
            raise
    bare = sorted(m for m in sys.modules if m.split(".")[0] in PARTS)
    assert bare == [], f"modules loaded under a bare part name too: {bare[:5]}"


def test_no_bare_part_names_in_any_import():
    offenders = []
    for folder in ("softleak", *PARTS, "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for module, line in imports(path):
                if module.split(".")[0] in PARTS:
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []


def test_arrows_run_one_way():
    upward = []
    for module, path in modules().items():
        mine = part_of(module)
        if mine is None:
            continue
        for target, line in imports(path):
            theirs = part_of(target)
            if theirs is None or theirs == mine:
                continue
            if LAYER[theirs] > LAYER[mine]:
                upward.append(f"{module}:{line} imports {target} ({mine} -> {theirs})")
            elif mine == "compare" and theirs == "simulate" and target not in COMPARE_MAY_READ:
                upward.append(f"{module}:{line} imports {target} (compare reads only the store)")
    assert upward == []


@pytest.mark.parametrize("part, banned", [("theory", "torch"), ("theory", "matplotlib"),
                                          ("compare", "torch")])  # fmt: skip
def test_no_heavy_imports_below_their_layer(part, banned):
    found = [
        f"{module}:{line}"
        for module, path in modules().items()
        if part_of(module) == part
        for target, line in imports(path)
        if target.split(".")[0] == banned
    ]
    assert found == []


def test_importing_theory_and_compare_loads_no_torch():
    names = [m for m in modules() if part_of(m) in ("theory", "compare")]
    code = (
        "import sys, importlib\n"
        f"for m in {names!r}:\n"
        "    importlib.import_module(m)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT.parent)


def test_no_import_cycles():
    graph = {
        module: {t for t, _ in imports(path, top_level_only=True) if t in modules() and t != module}
        for module, path in modules().items()
    }
    # a package's __init__ is imported with each of its modules: not a cycle by itself
    for module in graph:
        graph[module] -= {m for m in graph if module.startswith(m + ".")}
    cycles = _cycles(graph)
    assert cycles == [], cycles


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_version_comes_from_the_distribution():
    from importlib.metadata import version

    assert softleak.__version__ == version("softleak")
