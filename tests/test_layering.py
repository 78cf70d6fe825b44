"""The library's modules import one another one way only (CONTRIBUTING.md, "The shape of the project").

Every ``tdlib`` import counts, deferred ones inside functions too: a cycle hidden in a function is
still a module that cannot be read, tested or changed alone.
"""
import ast
from pathlib import Path

import pytest

TDLIB = Path(__file__).resolve().parents[1] / "tdlib"


def imports() -> dict[str, set[str]]:
    """Each module (``data.files`` for ``tdlib/data/files.py``, ``data`` for its ``__init__``) -> the tdlib modules it imports."""
    paths = {".".join(p.relative_to(TDLIB).with_suffix("").parts).removesuffix(".__init__"): p
             for p in TDLIB.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tdlib":
                module = node.module.removeprefix("tdlib").lstrip(".")
                named = {f"{module}.{a.name}".lstrip(".") for a in node.names} & set(paths)
                deps |= named or ({module} if module else set())
            elif isinstance(node, ast.Import):
                deps |= {a.name.removeprefix("tdlib.") for a in node.names if a.name.startswith("tdlib.")}
        graph[name] = deps - {name}
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
    ("ann", {"config", "errors"}),  # faiss indexes know vectors, not students or files of documents
    ("launcher", set()),  # reads the launcher's environment; knows no stage
    ("encoding", {"artifacts", "config", "data", "errors", "launcher", "logs", "student"}),  # parts, not indexes
    # the data package from the bottom up; its modules import each other, never the package's __init__
    ("data.records", {"errors"}),
    ("data.files", {"artifacts", "data.records", "errors"}),
    ("data.lazy", {"artifacts", "data.files", "data.records", "errors"}),
    ("data.tables", {"artifacts", "data.files", "data.records", "errors"}),  # beside data.lazy: the Arrow-backed lookups
    ("data.corpora", {"artifacts", "config", "data.files", "data.lazy", "data.records", "data.tables", "errors"}),
    ("data", {"data.corpora", "data.files", "data.lazy", "data.records"}),
    ("stages", {"artifacts", "config", "data", "errors", "examples", "retrieve", "evaluate", "teacher", "train",
                "translate", "degrade", "student", "rerank"}),  # the runners: nothing above them but cli and the chapters
    ("examples", {"config", "data", "data.corpora", "errors"}),
])
def test_the_low_layers_import_only_what_is_below_them(module, allowed):
    assert imports()[module] <= allowed, imports()[module] - allowed
