"""Import hygiene of palette_core that the layers contract (``lint-imports``) cannot see.

- No private name (``_x``) of one palette_core module is imported, or reached through an
  imported module (``mod._x``), by another: what is shared is public and documented.
- No palette_core module imports another inside a function: such an import hides a cycle from
  the layers contract. The only exceptions are the lazy imports listed in ``LAZY_IMPORTS``,
  each made for start-up time and each with its reason.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import package_modules

PACKAGE = "palette_core"

#: (importing module, imported module) -> why the import waits until a function runs.
LAZY_IMPORTS: dict[tuple[str, str], str] = {
    ("palette_core.cli", "palette_core.interim.analyse"): (
        "JAX, NumPyro and ArviZ take seconds to import; only `palette analyse` needs them"
    ),
    ("palette_core.cli", "palette_core.interim.report"): (
        "imports the interim analysis (JAX) and Altair; only `palette analyse` needs it"
    ),
    ("palette_core.cli", "palette_core.results.store"): (
        "JAX, NumPyro and ArviZ take seconds to import; only `palette results` needs them"
    ),
    ("palette_core.cli", "palette_core.simulate.engine"): (
        "JAX and Dask take seconds to import; only `palette simulate` needs them"
    ),
}


@dataclass(frozen=True)
class Finding:
    """One offending import: where it is and what it imports."""

    module: str
    line: int
    imported: str

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}): {self.imported}"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module of ``from ... import``, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    drop = node.level - 1 if is_package else node.level
    base = base[: len(base) - drop]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: set[str]
) -> list[tuple[str, str, str | None]]:
    """``(imported module, imported name or '', bound alias)`` for each palette_core target.

    For ``from pkg import name`` the imported module is ``pkg.name`` when that is a module,
    else ``pkg``. The alias is the local name bound to a module (None if it binds no module).
    """
    found = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                found.append((alias.name, "", alias.asname))
        return found
    source = _absolute(node, module, is_package)
    if source != PACKAGE and not source.startswith(PACKAGE + "."):
        return found
    for alias in node.names:
        full = f"{source}.{alias.name}"
        if full in modules:
            found.append((full, "", alias.asname or alias.name))
        else:
            found.append((source, alias.name, None))
    return found


def private_imports(source: str, module: str, modules: set[str], is_package: bool = False):
    """Private names of other palette_core modules that ``source`` imports or reaches."""
    tree = ast.parse(source)
    findings: list[Finding] = []
    module_aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for imported, name, alias in _targets(node, module, is_package, modules):
            if imported == module:
                continue
            dotted = f"{imported}.{name}" if name else imported
            if any(_is_private(part) for part in dotted.split(".")):
                findings.append(Finding(module, node.lineno, dotted))
            if alias is not None:
                module_aliases[alias] = imported
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and _is_private(node.attr)
        ):
            findings.append(
                Finding(module, node.lineno, f"{module_aliases[node.value.id]}.{node.attr}")
            )
    return findings


def function_imports(source: str, module: str, modules: set[str], is_package: bool = False):
    """palette_core modules that ``source`` imports inside a function body."""
    tree = ast.parse(source)
    findings: list[Finding] = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for imported, _, _ in _targets(node, module, is_package, modules):
                    findings.append(Finding(module, node.lineno, imported))
    return sorted(set(findings), key=lambda f: (f.line, f.imported))


def _scan(check) -> list[Finding]:
    modules = package_modules()
    names = set(modules)
    return [
        finding
        for name, path in modules.items()
        for finding in check(
            path.read_text(encoding="utf-8"), name, names, path.name == "__init__.py"
        )
    ]


# ----------------------------------------------------------------------------- the package
def test_no_private_name_is_imported_from_another_module() -> None:
    findings = _scan(private_imports)
    listing = "\n  ".join(map(str, findings))
    assert not findings, f"private names used across modules (make them public):\n  {listing}"


def test_no_module_imports_another_inside_a_function() -> None:
    findings = [f for f in _scan(function_imports) if (f.module, f.imported) not in LAZY_IMPORTS]
    listing = "\n  ".join(map(str, findings))
    assert not findings, (
        "palette_core modules imported inside a function (import at the top; if that makes a "
        f"cycle, the layering is wrong):\n  {listing}"
    )


def test_every_allowed_lazy_import_still_exists() -> None:
    made = {(f.module, f.imported) for f in _scan(function_imports)}
    stale = sorted(set(LAZY_IMPORTS) - made)
    assert not stale, f"LAZY_IMPORTS lists imports the code no longer makes: {stale}"


# ----------------------------------------------------------------------------- the checker
MODULES = {"palette_core", "palette_core.a", "palette_core.a.b", "palette_core.c"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from palette_core.a.b import _parse\n", ["palette_core.a.b._parse"]),
        ("from palette_core.a import b as _b\n_b._hidden()\n", ["palette_core.a.b._hidden"]),
        ("import palette_core.a.b as ab\nab._x\n", ["palette_core.a.b._x"]),
        ("from .b import _y\n", ["palette_core.a.b._y"]),
        ("from palette_core.a._secret import f\n", ["palette_core.a._secret.f"]),
        ("def f():\n    from palette_core.c import _z\n", ["palette_core.c._z"]),
    ],
)
def test_private_imports_are_found(source: str, expected: list[str]) -> None:
    found = private_imports(source, "palette_core.a.d", MODULES)
    assert [f.imported for f in found] == expected


@pytest.mark.parametrize(
    "source",
    [
        "from palette_core.a.b import parse, __version__\n",
        "from palette_core.a import b as _b\n_b.public()\n",
        "import numpy as np\nnp._private\n",
        "from collections import _x\n",
        "from palette_core.a import b\nself._x\n",
    ],
)
def test_public_imports_pass(source: str) -> None:
    assert private_imports(source, "palette_core.a.d", MODULES) == []


def test_function_imports_are_found_with_their_target_module() -> None:
    source = (
        "import json\n"
        "from palette_core.a import b\n"
        "def f():\n"
        "    import datetime\n"
        "    from palette_core.a import b\n"
        "    from palette_core.c import thing\n"
        "class K:\n"
        "    def m(self):\n"
        "        import palette_core.a.b\n"
    )
    found = function_imports(source, "palette_core.d", MODULES)
    assert [(f.line, f.imported) for f in found] == [
        (5, "palette_core.a.b"),
        (6, "palette_core.c"),
        (9, "palette_core.a.b"),
    ]


def test_module_names_follow_the_package_layout(tmp_path: Path) -> None:
    (tmp_path / "palette_core" / "sub").mkdir(parents=True)
    for rel in ("__init__.py", "cli.py", "sub/__init__.py", "sub/mod.py"):
        (tmp_path / "palette_core" / rel).write_text("")
    assert sorted(package_modules(tmp_path)) == [
        "palette_core",
        "palette_core.cli",
        "palette_core.sub",
        "palette_core.sub.mod",
    ]
