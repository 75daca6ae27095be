"""The shape of the code, checked: the core depends on nothing above it, no feature reaches
into another feature's routes, and the packages under app/ import each other without a cycle.

Imports are read from the source (every ``import`` and ``from … import``, at module level or
inside functions; only ``if TYPE_CHECKING:`` blocks are left out), so a lazy import does not
hide a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
# What the core may use besides itself: the settings module.
CORE_MAY_IMPORT = {"app.settings"}
# Top-level modules that wire things together: they may import anything.
COMPOSITION = {"app.asgi", "app.cli", "app.serve", "app.kinds", "app.models"}
ROUTE_MODULES = ("routes", "editor_routes")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """module → the app modules it imports."""
    found: dict[str, set[str]] = {}
    for path in APP.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), str(path))
        skip: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                skip.update(id(n) for n in ast.walk(node))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "app" or node.module.startswith("app."):
                    for alias in node.names:
                        sub = f"{node.module}.{alias.name}"
                        # `from app.x import y` names module app.x.y when there is one
                        targets.add(sub if _is_module(sub) else node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("app."))
        found[_module_name(path)] = targets
    return found


def _is_module(name: str) -> bool:
    base = APP.parent.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _package(module: str) -> str:
    """The first-level package (``app.grabs``) or top-level module (``app.asgi``)."""
    return ".".join(module.split(".")[:2])


IMPORTS = _imports()


def test_the_reader_finds_the_code() -> None:
    assert len(IMPORTS) > 50
    assert "app.core.state" in IMPORTS["app.web.deps"]
    assert "app.grabs.routes" in IMPORTS["app.grabs.kind"]


def test_the_core_depends_on_nothing_above_it() -> None:
    leaks = {
        module: sorted(t for t in targets if _package(t) != "app.core" and t not in CORE_MAY_IMPORT)
        for module, targets in IMPORTS.items()
        if _package(module) == "app.core"
    }
    assert {m: t for m, t in leaks.items() if t} == {}


def test_no_feature_imports_another_features_routes() -> None:
    reaching = []
    for module, targets in IMPORTS.items():
        if module in COMPOSITION:
            continue
        for target in targets:
            if target.rsplit(".", 1)[-1] in ROUTE_MODULES and _package(target) != _package(module):
                reaching.append(f"{module} imports {target}")
    assert reaching == []


def test_no_import_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in IMPORTS.items():
        source = _package(module)
        if source in COMPOSITION:
            continue
        for target in targets:
            if _package(target) != source:
                graph[source].add(_package(target))
    # Tarjan's strongly connected components: any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in list(graph):
        if node not in index:
            visit(node)
    assert cycles == []


def test_modules_stay_one_idea() -> None:
    """A module past ~450 lines is asking to be split (STYLE: each module one idea)."""
    long = {
        _module_name(path): lines
        for path in APP.rglob("*.py")
        if "migrations" not in path.parts and (lines := len(path.read_text().splitlines())) > 450
    }
    assert long == {}
