"""The package's import graph: every bnlib import at the top of its file, and no circle (checked from the sources
with `ast`, the graph pydeps draws)."""

import ast
from graphlib import CycleError, TopologicalSorter

from bnlib.paths import REPO_ROOT

BNLIB = REPO_ROOT / "bnlib"


def _imports(tree: ast.Module, module: str) -> list[tuple[str, ast.AST]]:
    """(the bnlib module imported, the node) of every relative import in `tree`, at any depth."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.append((node.module, node))
            else:  # `from . import a, b`: each name is a module
                out += [(alias.name, node) for alias in node.names]
    return out


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(BNLIB.glob("*.py")):
        tree = ast.parse(path.read_text())
        graph[path.stem] = {m for m, _ in _imports(tree, path.stem)}
    return graph


def test_every_bnlib_import_is_at_the_top_of_its_file():
    inside = []
    for path in sorted(BNLIB.glob("*.py")):
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        inside += [f"{path.name}:{node.lineno} imports .{m}" for m, node in _imports(tree, path.stem)
                   if id(node) not in top]
    assert not inside, inside


def test_the_bnlib_import_graph_has_no_circle():
    try:
        order = list(TopologicalSorter(_graph()).static_order())
    except CycleError as exc:
        raise AssertionError(f"import circle: {' -> '.join(exc.args[1])}") from None
    assert "tables" in order


def test_the_tables_registry_imports_no_torch():
    graph, seen, todo = _graph(), set(), ["tables"]
    while todo:  # every bnlib module tables.py reaches
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += graph[module]
    for module in seen:
        tree = ast.parse((BNLIB / f"{module}.py").read_text())
        names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                 for alias in node.names} | {node.module.split(".")[0] for node in ast.walk(tree)
                                            if isinstance(node, ast.ImportFrom) and node.module and not node.level}
        assert "torch" not in names, f"bnlib.{module} imports torch, and bnlib.tables reaches it"
