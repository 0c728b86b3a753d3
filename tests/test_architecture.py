"""The code between results and documents flows one way: no module of mnist_core imports,
directly or through others, a module that imports it back (function-level imports count)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mnist_core"
MODULES = {p.stem for p in PACKAGE.glob("*.py")}


def imports(path: Path) -> set[str]:
    """The mnist_core modules a file imports anywhere in it, top level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .x import y
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import x, y: modules, or names of __init__
                found.update(a.name if a.name in MODULES else "__init__" for a in node.names)
            elif (node.module or "").startswith("mnist_core."):
                found.add(node.module.split(".")[1])
            elif node.module == "mnist_core":
                found.update(a.name if a.name in MODULES else "__init__" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("mnist_core."))
    found.discard(path.stem)
    return found & MODULES


def graph() -> dict[str, set[str]]:
    return {p.stem: imports(p) for p in PACKAGE.glob("*.py")}


def reach(edges: dict[str, set[str]], node: str) -> set[str]:
    """The modules ``node`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [node]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_import_parser_sees_function_level_imports(tmp_path):
    module = PACKAGE / "build.py"
    assert {"experiments", "render", "quarto"} <= imports(module)
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    from .render import x\n    from . import quarto\n")
    assert imports(lazy) == {"render", "quarto"}


def test_no_import_cycle_in_mnist_core():
    found = cycle(graph())
    assert found is None, "import cycle: " + " -> ".join(found)


def test_documents_come_after_results():
    """results -> view -> documents: what trains never imports what renders."""
    edges = graph()
    for lower in ("experiments", "train", "evaluate", "results", "data", "models"):
        assert not reach(edges, lower) & {"render", "markup", "quarto", "build", "cli"}, lower


def test_preprocessing_comes_before_recognition():
    """preprocess -> predict, one way: like web/preprocess.js, the preprocessing knows no model."""
    edges = graph()
    assert "preprocess" in edges["predict"]
    assert not reach(edges, "preprocess") & {"predict", "calibration", "results", "models"}


def test_no_module_shadows_the_standard_library():
    assert not MODULES & set(sys.stdlib_module_names)
