"""No import cycles in the package, counting imports inside functions too (a cycle hidden by
a function-level import is still a cycle; `if TYPE_CHECKING:` blocks are not imports)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "assessiq"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, in functions too, but not under TYPE_CHECKING."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _imports(child)


def _graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = (name if path.name == "__init__.py" else name.rsplit(".", 1)[0]).split(".")
        deps: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
                continue
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for a in node.names:
                deps.add(f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return out


def test_the_package_has_no_import_cycle() -> None:
    mods = _modules()
    graph = _graph(mods)
    assert "assessiq.ui.state" in graph["assessiq.ui.host_pages"]  # (the walk sees imports)
    assert _cycles(graph) == []


def test_the_check_finds_a_cycle_hidden_in_a_function() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_room_holds_no_views() -> None:
    """`assessiq.room` (controllers, problems, report, replay) imports neither NiceGUI nor
    `assessiq.ui`, in functions too: the views depend on it, never the other way round."""
    mods = _modules()
    graph = _graph(mods)
    room = [m for m in mods if m.startswith("assessiq.room")]
    assert "assessiq.room.host" in room
    for name in room:
        assert not any(d.startswith("assessiq.ui") for d in graph[name]), name
        tree = ast.parse(mods[name].read_text(encoding="utf-8"))
        imported = {a.name for n in _imports(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in _imports(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(i.split(".")[0] == "nicegui" for i in imported), name
