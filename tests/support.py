"""Paths and sizes shared by the test modules (imported as ``support``; tests/ is on the path)."""

from __future__ import annotations

from pathlib import Path

#: the repository root
ROOT = Path(__file__).resolve().parents[1]
#: fixtures that belong to the tests (synthetic exports, SENECA reference values)
TEST_DATA = ROOT / "tests" / "data"
#: the project's data folder
DATA = ROOT / "data"

#: the one NUTS size of the tests that run the sampler: small enough to be quick, large enough
#: for the directions and intervals the tests assert (a test that needs more says why)
TINY_NUTS = {"num_warmup": 150, "num_samples": 150, "num_chains": 2}
