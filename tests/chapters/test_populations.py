"""The chapter "Analysis populations, missing data and safety monitoring"."""

from __future__ import annotations

import pandas as pd
import pytest
import support
from charts import assert_renders_to_svg_offline, assert_valid_inline_spec

from palette_core.analysis.safety import safety_counts
from palette_core.chapters import populations
from palette_core.results.store import load_result

BOOK = support.ROOT / "book"


def test_prior_conflict_weights_are_beta_moment_matches(design):
    pp = pd.DataFrame(
        [{"outcome": "mortality28", "age_group": "adult", "trait": "all", "quantity": "pr_event",
          "mean": 0.5, "sd": 0.5 / 3 ** 0.5, "q025": 0.025, "q975": 0.975}]
    )  # fmt: skip
    table = populations.prior_conflict_table(design, pp)
    # a uniform prior, Beta(1, 1) (mean 1/2, variance 1/12), weighs as a + b = 2 patients
    assert table["Prior weight (patients)"].iloc[0] == pytest.approx(2.0)


def test_safety_counts_pair_each_monitored_arm_with_its_usual_care(design, worked_interim):
    counts = safety_counts(design, worked_interim.tables["safety"])
    monitored = populations.monitored_arms_table(design)
    assert len(counts) == len(monitored)
    safety = worked_interim.tables["safety"].set_index("arm")
    for r in counts.itertuples():
        control = next(a.id for a in design.arms if a.trait == design.arm(r.arm).trait
                       and a.role == "control")  # fmt: skip
        assert r.n_control == safety.loc[control, "n_complete"]


def test_ppc_chart_is_valid_and_renders_offline(design):
    po = load_result("po_check", design=design).tables["po_check"]
    chart = populations.ppc_chart(design, po)
    assert_valid_inline_spec(chart)
    assert_renders_to_svg_offline(chart)


def test_ppc_table_keeps_the_arms_with_enough_patients(design):
    po = load_result("po_check", design=design).tables["po_check"]
    table = populations.ppc_table(design, po)
    assert (table["Patients"] >= design.decisions.graduation.min_complete).all()
    assert table["Posterior-predictive p"].between(0, 1).all()
