"""The workloads: one registered function each (see :func:`benchmarks.harness.workload`).

To add one, write a function ``(design, quick) -> call`` that does the set-up and returns the
call to time, and decorate it; ``quick`` selects a small size for the smoke test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import workload
from palette_core.design import Design
from palette_core.exports.contract import read_export
from palette_core.randomisation.allocation import example_trial
from palette_core.screening.cohort import generate_cohort

ROOT = Path(__file__).resolve().parents[1]


@workload("cohort", "synthetic cohort, 10,000 patients")
def cohort(design: Design, quick: bool) -> Callable[[], object]:
    n = 200 if quick else 10_000
    return lambda: generate_cohort(design, n, seed=1)


@workload("export_validation", "read and validate the synthetic interim export")
def export_validation(design: Design, quick: bool) -> Callable[[], object]:
    if quick:
        folder = ROOT / "tests" / "data" / "exports" / "tiny_interim"
    else:
        folder = ROOT / "data" / "exports" / "synthetic_interim"
    return lambda: read_export(folder, design)


@workload("allocation_example", "allocation example trial, hyperinflammation, 400 patients")
def allocation_example(design: Design, quick: bool) -> Callable[[], object]:
    rates = {
        "hinf_usual_care": 0.45,
        "hinf_tocilizumab": 0.45,
        "hinf_baricitinib": 0.50,
        "hinf_anakinra": 0.70,
        "hinf_mtx100": 0.45,
    }
    n, draws = (40, 200) if quick else (400, 2000)
    return lambda: example_trial(design, "hyperinflammation", 2026, rates, n, 20, n_draws=draws)
