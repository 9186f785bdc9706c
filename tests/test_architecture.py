"""The architecture holds: imports point one way, nothing imports in a cycle, the README's path of
one prediction is real and short.

Layers (README, "Layout"): the library is ``ontology``, ``kg``, ``knowledge``, ``encoder``,
``datasets`` and ``alignment``; the application is ``training``, the service ``api``, the command
line ``anatomy_vlm.cli*``. The graph database layer ``kg`` holds no torch model.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"anatomy_vlm": "anatomy_vlm", "ontology": "ontology", "kg": "kg", "knowledge": "knowledge",
            "encoder": "encoder", "datasets": "datasets", "alignment": "alignment", "training": "training", "api": "api"}
LIBRARY = ("ontology", "kg", "knowledge", "encoder", "datasets", "alignment")


def _modules() -> dict[str, Path]:
    """``anatomy_vlm.<...>`` module name -> file, for every module of the project's packages."""
    found = {}
    for name, folder in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            prefix = ["anatomy_vlm"] if name == "anatomy_vlm" else ["anatomy_vlm", name]
            found[".".join(prefix + parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """Absolute names imported by a file (relative imports are not used in this project)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    if module_level_only:  # also imports inside module-level if/try blocks
        nodes = [n for top in tree.body for n in ast.walk(top) if not isinstance(top, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
        nodes += [n for top in tree.body if isinstance(top, ast.ClassDef) for n in top.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "anatomy_vlm":
        return ""
    if len(parts) == 1 or parts[1] in ("config", "exceptions", "atomic"):
        return "shared"
    return "cli" if parts[1].startswith("cli") or parts[1] == "__main__" else parts[1]


def _violations(importer_layers: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for module, path in MODULES.items():
        if _layer(module) not in importer_layers:
            continue
        for name in _imports(path, module_level_only=False):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(REPO)} imports {name}")
    return sorted(bad)


def test_the_library_never_imports_the_application_the_service_or_the_cli():
    assert _violations(LIBRARY, ("anatomy_vlm.training", "anatomy_vlm.api", "anatomy_vlm.cli",
                                 "anatomy_vlm.cli_common", "anatomy_vlm.cli_model", "anatomy_vlm.cli_service")) == []


def test_the_graph_layer_holds_no_model():
    assert _violations(("kg",), ("anatomy_vlm.knowledge", "anatomy_vlm.encoder", "anatomy_vlm.alignment",
                                 "anatomy_vlm.datasets", "torch.nn", "torch_geometric.nn", "transformers",
                                 "monai")) == []


def test_knowledge_embedding_stands_below_the_model():
    assert _violations(("knowledge",), ("anatomy_vlm.encoder", "anatomy_vlm.alignment", "anatomy_vlm.datasets")) == []


def test_the_service_reaches_the_model_only_through_the_library():
    assert _violations(("api",), ("anatomy_vlm.training", "anatomy_vlm.cli", "anatomy_vlm.cli_model",
                                  "anatomy_vlm.cli_common")) == []


def test_no_module_level_import_cycle():
    """Strongly connected components of the module-level import graph: a cycle there is what makes
    ``import X`` fail with 'partially initialized module' when X happens to be imported first."""
    graph = {}
    for module, path in MODULES.items():
        targets = set()
        for name in _imports(path, module_level_only=True):
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    # a package's __init__ importing its own submodules is not a cycle in practice only when the
    # submodule does not import the package back; Tarjan's algorithm finds every cycle either way
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in graph:
        if module not in index:
            visit(module)
    # A package __init__ that re-exports its submodules forms a harmless cycle with a submodule that
    # imports a sibling through the package; only cycles spanning two packages can break import order.
    cross = [c for c in cycles if len({".".join(m.split(".")[:2]) for m in c}) > 1]
    assert cross == []


_FRESH_IMPORTS = r"""
import os, sys, traceback
# third-party libraries are imported once here; the project's modules never are, so each forked
# child imports its module as the first project module of its interpreter
import numpy, torch, torch_geometric, monai, neo4j, pydantic, fastapi, typer, rich, PIL, pydicom, yaml, networkx
failures = 0
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(name)
        except BaseException:
            print(f"{name}: {traceback.format_exc().strip().splitlines()[-1]}", flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    failures += status != 0
sys.exit(1 if failures else 0)
"""


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter():
    """Each project module imported before any other project module (how the old CLI cycle showed:
    ``import anatomy_vlm.cli_model`` failed with 'partially initialized module')."""
    names = sorted(m for m in MODULES if not m.endswith("__main__"))
    result = subprocess.run([sys.executable, "-c", _FRESH_IMPORTS, *names], capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]


def test_life_of_one_prediction_is_real_and_short():
    """The README's hops exist (file and function) and visit at most 12 files."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Life of one prediction", 1)[1].split("\n## ", 1)[0]
    hops = re.findall(r"`([\w/]+\.py):([\w.]+)`", section)
    assert len(hops) >= 8, "the section names each hop as `file.py:function`"
    files = {path for path, _ in hops}
    assert len(files) <= 12, sorted(files)
    for path, function in hops:
        source = (REPO / path).read_text()
        name = function.split(".")[-1]
        assert re.search(rf"^\s*(async def|def|class) {re.escape(name)}\b|^{re.escape(name)} = ", source, re.MULTILINE), f"{path}:{function}"
