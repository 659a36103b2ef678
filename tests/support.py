"""Paths and sizes shared by the test modules (imported as ``support``; tests/ is on the path)."""

from __future__ import annotations

from pathlib import Path

#: the repository root
ROOT = Path(__file__).resolve().parents[1]
#: fixtures that belong to the tests (synthetic exports, SENECA reference values)
TEST_DATA = ROOT / "tests" / "data"
#: the project's data folder
DATA = ROOT / "data"

#: the one NUTS size of the tests that run the sampler: enough to see an effect and to cover
#: known effects, too short for the convergence gates (a test that needs another says why)
TINY_NUTS = {"num_warmup": 150, "num_samples": 150, "num_chains": 2}
