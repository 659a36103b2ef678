"""The dependencies declared in pyproject.toml match what palette_core imports.

Every third-party package a module imports (anywhere in the module, read from its syntax tree)
must be a runtime dependency (``[project] dependencies``). The chapter helpers
(``palette_core.chapters``) serve only the book and may also import the ``book`` group; no
other module may, and the layers contract (``lint-imports``) keeps every other module from
importing the chapter helpers. A runtime dependency that no module imports must say why it is
there (``NOT_IMPORTED``).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from support import ROOT, package_modules

PACKAGE = "palette_core"
BOOK_ONLY = ("palette_core.chapters",)

#: runtime dependencies that no module imports by name, and why they are declared
NOT_IMPORTED = {
    "jaxlib": "jax's compiled backend; bounded with jax because fit.py uses NumPyro internals",
    "pyarrow": "pandas reads and writes Parquet through it (palette classify, patient files)",
}


def canonical(name: str) -> str:
    """A distribution name in PEP 503 normal form."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """``"jax>=0.10,<0.11"`` -> ``"jax"``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"not a requirement: {requirement!r}"
    return canonical(match.group(1))


def top_level_imports(source: str) -> set[str]:
    """The first component of every absolute import in ``source``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party(names: set[str]) -> set[str]:
    """Imports that are neither the standard library nor palette_core."""
    return {n for n in names if n not in sys.stdlib_module_names and n != PACKAGE}


def distributions_of(import_name: str, mapping: dict[str, list[str]]) -> set[str]:
    """The installed distributions that provide an importable top-level name."""
    return {canonical(d) for d in mapping.get(import_name, [])}


def undeclared(
    imports: dict[str, set[str]], allowed: dict[str, set[str]], mapping: dict[str, list[str]]
) -> list[str]:
    """``"module: import (distribution)"`` for each import not covered by its allowed set."""
    problems = []
    for module, names in sorted(imports.items()):
        for name in sorted(names):
            provided = distributions_of(name, mapping)
            if not provided & allowed[module]:
                found = ", ".join(sorted(provided)) or "not installed"
                problems.append(f"{module}: {name} ({found})")
    return problems


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(pyproject) -> set[str]:
    return {requirement_name(r) for r in pyproject["project"]["dependencies"]}


@pytest.fixture(scope="module")
def book(pyproject) -> set[str]:
    return {requirement_name(r) for r in pyproject["dependency-groups"]["book"]}


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    return {
        name: third_party(top_level_imports(path.read_text(encoding="utf-8")))
        for name, path in package_modules().items()
    }


def _allowed(module: str, runtime: set[str], book: set[str]) -> set[str]:
    return runtime | book if module.startswith(BOOK_ONLY) else runtime


def test_every_imported_package_is_declared(imports, runtime, book) -> None:
    allowed = {m: _allowed(m, runtime, book) for m in imports}
    problems = undeclared(imports, allowed, packages_distributions())
    listing = "\n  ".join(problems)
    assert not problems, (
        "imported but not declared (runtime dependencies in [project] dependencies; "
        f"palette_core.chapters may also use the book group):\n  {listing}"
    )


def test_every_runtime_dependency_is_imported_or_explained(imports, runtime) -> None:
    mapping = packages_distributions()
    used = {d for names in imports.values() for n in names for d in distributions_of(n, mapping)}
    unexplained = sorted(runtime - used - set(NOT_IMPORTED))
    assert not unexplained, f"declared but never imported (remove, or say why): {unexplained}"
    stale = sorted(set(NOT_IMPORTED) & used)
    assert not stale, f"NOT_IMPORTED lists packages that are imported after all: {stale}"
    assert set(NOT_IMPORTED) <= runtime


def test_book_and_development_tools_are_not_runtime_dependencies(pyproject, runtime) -> None:
    groups = pyproject["dependency-groups"]
    for group in ("book", "dev"):
        names = {requirement_name(r) for r in groups[group]}
        assert not names & runtime, f"{group} group repeats runtime dependencies"
    assert {"jupyter-book", "myst-nb", "ipykernel"} <= {requirement_name(r) for r in groups["book"]}
    assert {"pytest", "nbval", "ruff", "import-linter"} <= {
        requirement_name(r) for r in groups["dev"]
    }


# ----------------------------------------------------------------------------- the checker
def test_imports_are_read_from_the_syntax_tree_wherever_they_are() -> None:
    source = (
        "import os, numpy.linalg\n"
        "from scipy import stats\n"
        "from . import sibling\n"
        "from palette_core.errors import X\n"
        "def f():\n"
        "    import IPython.display\n"
    )
    names = top_level_imports(source)
    assert names == {"os", "numpy", "scipy", "IPython", "palette_core"}
    assert third_party(names) == {"numpy", "scipy", "IPython"}


def test_an_import_outside_the_allowed_set_is_reported() -> None:
    mapping = {"scipy": ["scipy"], "IPython": ["ipython"], "yaml": ["PyYAML"]}
    imports = {"palette_core.a": {"scipy", "yaml"}, "palette_core.chapters.x": {"IPython"}}
    allowed = {"palette_core.a": {"pyyaml"}, "palette_core.chapters.x": {"ipython"}}
    assert undeclared(imports, allowed, mapping) == ["palette_core.a: scipy (scipy)"]
    imports["palette_core.a"] = {"nowhere"}
    assert undeclared(imports, allowed, mapping) == ["palette_core.a: nowhere (not installed)"]


@pytest.mark.parametrize(
    ("requirement", "name"),
    [("jax>=0.10.2,<0.11", "jax"), ("PyYAML", "pyyaml"), ("jupyter_book >=1", "jupyter-book")],
)
def test_requirement_names_are_normalised(requirement: str, name: str) -> None:
    assert requirement_name(requirement) == name


def test_the_chapter_helpers_are_the_only_book_modules() -> None:
    assert _allowed("palette_core.chapters.helpers", {"a"}, {"b"}) == {"a", "b"}
    assert _allowed("palette_core.interim.report", {"a"}, {"b"}) == {"a"}
    assert Path(ROOT / "palette_core" / "chapters").is_dir()
