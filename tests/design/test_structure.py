"""The shape of the code: the design depends on nothing downstream, and no private name crosses
a module boundary. Read from the source (every import, at the top or inside a function)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import support

PACKAGE = support.ROOT / "palette_core"
#: what the design may import: itself and the boundary helpers
DESIGN_MAY_IMPORT = ("palette_core.design", "palette_core.errors", "palette_core.yamlio")


def _module(path: Path) -> str:
    parts = path.relative_to(support.ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every palette_core import."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("palette_core"):
            for alias in node.names:
                yield node.module, alias.name, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("palette_core"):
                    yield alias.name, None, node.lineno


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_private_name_is_imported_across_modules():
    offenders = [
        f"{_module(p)}:{line} imports {name} from {module}"
        for p in _sources()
        for module, name, line in _imports(p)
        if name is not None and name.startswith("_") and not name.startswith("__")
    ]
    assert offenders == []


def test_the_design_imports_nothing_downstream():
    """No cycle can pass through the design: it imports only itself and the boundary helpers."""
    offenders = [
        f"{_module(p)}:{line} imports {module}"
        for p in sorted((PACKAGE / "design").rglob("*.py"))
        for module, _, line in _imports(p)
        if not module.startswith(DESIGN_MAY_IMPORT)
    ]
    assert offenders == []


def test_the_design_modules_form_no_cycle():
    sources = sorted((PACKAGE / "design").rglob("*.py"))
    modules = {_module(p) for p in sources}
    graph: dict[str, set[str]] = {}
    for p in sources:
        deps = graph.setdefault(_module(p), set())
        for module, name, _ in _imports(p):
            target = f"{module}.{name}" if f"{module}.{name}" in modules else module
            if target in modules and target not in (_module(p), "palette_core.design"):
                deps.add(target)
    state: dict[str, str] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != "open", " -> ".join((*path, node, nxt))
            if nxt not in state:
                visit(nxt, (*path, node))
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, ())
    assert len(graph) >= 12  # every domain module was read


def test_no_design_module_is_over_500_lines():
    sizes = {
        p.name: len(p.read_text(encoding="utf-8").splitlines())
        for p in (PACKAGE / "design").glob("*.py")
    }
    assert max(sizes.values()) <= 500, sizes
