"""The library's modules import one another one way only (CONTRIBUTING.md, "The shape of the project").

Every ``tdlib`` import counts, deferred ones inside functions too: a cycle hidden in a function is
still a module that cannot be read, tested or changed alone.
"""
import ast
from pathlib import Path

import pytest

TDLIB = Path(__file__).resolve().parents[1] / "tdlib"


def imports() -> dict[str, set[str]]:
    modules = {p.stem for p in TDLIB.glob("*.py")}
    graph = {}
    for path in TDLIB.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tdlib":
                parts = node.module.split(".")
                deps |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("tdlib.")}
        graph[path.stem] = deps - {path.stem}
    return graph


def test_no_module_imports_itself_through_others():
    graph = imports()
    done, active = set(), []

    def visit(name):
        if name in active:
            cycle = active[active.index(name):] + [name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        active.append(name)
        for dep in sorted(graph.get(name, ())):
            visit(dep)
        active.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


@pytest.mark.parametrize("module,allowed", [
    ("errors", set()), ("batching", set()), ("notes", set()), ("logs", set()), ("losses", set()),
    ("checkpoints", {"errors"}),  # the PLAID-X layout knows files, not the student
    ("smoke", {"checkpoints", "data", "errors"}),  # a leaf: tiny folders, written through the layout module
    ("hub", {"errors", "smoke"}),
])
def test_the_low_layers_import_only_what_is_below_them(module, allowed):
    assert imports()[module] <= allowed, imports()[module] - allowed
