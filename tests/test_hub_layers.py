"""The hub's modules import one another one way: no cycle, and no import of another hub
module inside a function (the way a cycle is usually hidden).

Reads host_tools/hanota/hub/*.py with `ast` (the checks of imports import nothing). An import
at module level counts wherever it stands (under `if TYPE_CHECKING:` too: a type pointing
back up closes a cycle all the same). docs/architecture.md "The hub's layers" draws the
graph; a test checks the drawing against the code, another that core.Hub is a HubPort.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hanota.hub
from hanota.hub import Hub, HubConfig
from hanota.hub.serving import HubPort, ServiceConfig

HUB = Path(hanota.hub.__file__).parent
PACKAGE = "hanota.hub"
# The command-line module defers its imports to the command that runs (hanota/cli.py:
# "Heavy imports stay inside the functions"), so `hanota --help` does not load the hub.
# Nothing in the hub imports it, so it can close no cycle.
DEFERS_IMPORTS = {"cli"}
# Imports nothing of the hub: every layer may use it.
LEAVES = {"clock"}


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(HUB.glob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom, names: set[str]) -> set[str]:
    """Hub modules an import statement in a hub module loads ("__init__": the package)."""
    out: set[str] = set()
    if isinstance(node, ast.Import):
        for a in node.names:
            parts = a.name.split(".")
            if parts[:2] == ["hanota", "hub"]:
                out.add(parts[2] if len(parts) > 2 else "__init__")
        return out
    if node.level == 1:
        mod = node.module or ""
    elif node.level == 0 and (node.module or "").startswith(PACKAGE):
        mod = node.module[len(PACKAGE) + 1 :]
    elif node.level == 2 and (node.module or "").split(".")[0] == "hub":
        mod = node.module[len("hub.") :]  # from ..hub.x import y
    else:
        return out
    if mod:
        out.add(mod.split(".")[0])
    else:  # from . import a, b: each name that is a module of the hub; others: the package
        out |= {a.name for a in node.names if a.name in names} or {"__init__"}
    return out


def _imports(tree: ast.Module, names: set[str]) -> tuple[set[str], list[tuple[int, str]]]:
    """(hub modules imported at module level, [(line, module)] imported inside functions)."""
    top: set[str] = set()
    nested: list[tuple[int, str]] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for m in _targets(child, names):
                    if in_function:
                        nested.append((child.lineno, m))
                    else:
                        top.add(m)
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            walk(child, in_function or inner)

    walk(tree, False)
    return top, nested


def _graph() -> tuple[dict[str, set[str]], dict[str, list[tuple[int, str]]]]:
    trees = _modules()
    names = set(trees)
    graph, nested = {}, {}
    for name, tree in trees.items():
        top, inner = _imports(tree, names)
        graph[name] = top - {name}
        nested[name] = inner
    return graph, nested


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        path.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_cycle_finder() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_reads_the_hub() -> None:
    # the parse sees what is there (a reader that found nothing would pass the rest)
    graph, _ = _graph()
    assert {"core", "serving", "state", "alerts", "clock"} <= set(graph)
    assert "serving" in graph["core"] and "state" in graph["serving"]


def test_no_import_cycle() -> None:
    graph, _ = _graph()
    cycle = find_cycle(graph)
    assert cycle is None, "hub import cycle: " + " -> ".join(f"{m}.py" for m in cycle)


def test_no_hub_import_inside_a_function() -> None:
    _, nested = _graph()
    bad = [f"{name}.py:{line} imports {m}" for name, found in sorted(nested.items())
           if name not in DEFERS_IMPORTS for line, m in found]  # fmt: skip
    assert not bad, "import these at module level (a cycle is not dodged): " + "; ".join(bad)


def test_leaves_import_nothing_of_the_hub() -> None:
    graph, nested = _graph()
    for name in LEAVES:
        assert not graph[name] and not nested[name], f"{name}.py imports {graph[name]}"


def _drawn() -> list[tuple[str, set[str]]]:
    """docs/architecture.md's drawing of the hub's layers, top first: [(module, the hub
    modules it imports)]. A row starts with the module's name at column 0; its imports
    follow "->" (continued on indented lines, in the same column); "(...)" is a remark."""
    doc = (HUB.parents[2] / "docs" / "architecture.md").read_text()
    block = doc.split("## The hub's layers", 1)[1].split("```")[1]
    lines = [ln for ln in block.splitlines() if ln.strip()]
    col = lines[0].index("->")
    rows: list[tuple[str, set[str]]] = []
    for ln in lines:
        if not ln[0].isspace():
            rows.append((ln.split()[0], set()))
        deps = ln[col:].removeprefix("->").split("(")[0].split()
        rows[-1][1].update(deps)
    return rows


def test_architecture_draws_the_layers() -> None:
    top, nested = _graph()
    graph = {m: top[m] | {n for _, n in nested[m]} for m in top}  # cli.py's deferred too
    rows = _drawn()
    drawn = dict(rows)
    assert set(drawn) == set(graph), f"drawn {sorted(drawn)}, in the code {sorted(graph)}"
    for m, deps in drawn.items():
        assert deps == graph[m], f"{m}.py imports {sorted(graph[m])}, drawn {sorted(deps)}"
    below: set[str] = set()
    for m, deps in reversed(rows):  # each module imports only modules drawn under it
        assert deps <= below, f"{m}.py imports {sorted(deps - below)}, drawn above it"
        below.add(m)


def test_the_hub_is_what_the_ota_service_needs() -> None:
    # serving.HubPort is the whole of what OtaService may use of its hub; core.Hub has it
    hub = Hub(HubConfig())
    port = set(HubPort.__annotations__) | {
        k for k, v in vars(HubPort).items() if callable(v) and not k.startswith("_")
    }
    assert {"state", "config", "store", "links", "record", "alert", "publish"} <= port
    assert all(hasattr(hub, k) for k in port), sorted(k for k in port if not hasattr(hub, k))
    assert all(hasattr(hub.config, k) for k in ServiceConfig.__annotations__)
