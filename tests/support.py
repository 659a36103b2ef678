"""Paths and sizes shared by the test modules (imported as ``support``; tests/ is on the path)."""

from __future__ import annotations

from pathlib import Path

#: the repository root
ROOT = Path(__file__).resolve().parents[1]
#: fixtures that belong to the tests (synthetic exports, SENECA reference values)
TEST_DATA = ROOT / "tests" / "data"
#: the project's data folder
DATA = ROOT / "data"


def package_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of ``root/palette_core`` by dotted name (a package's ``__init__``: the package)."""
    modules = {}
    for path in sorted((root / "palette_core").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


#: the one NUTS size of the tests that run the sampler: enough to see an effect and to cover
#: known effects, too short for the convergence gates (a test that needs another says why)
TINY_NUTS = {"num_warmup": 150, "num_samples": 150, "num_chains": 2}
