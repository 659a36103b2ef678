"""The chapter "Analysis populations, missing data and safety monitoring"."""

from __future__ import annotations

import pandas as pd
import pytest
import support
from charts import assert_renders_to_svg_offline, assert_valid_inline_spec

from palette_core.chapters import populations

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
    counts = populations.safety_counts(design, worked_interim.tables["safety"])
    monitored = populations.monitored_arms_table(design)
    assert len(counts) == len(monitored)
    safety = worked_interim.tables["safety"].set_index("arm")
    for r in counts.itertuples():
        control = next(a.id for a in design.arms if a.trait == design.arm(r.arm).trait
                       and a.role == "control")  # fmt: skip
        assert r.n_control == safety.loc[control, "n_complete"]


def test_cumulative_odds_ratios_equal_one_when_arm_and_control_match(design):
    arms = design.experimental_arms()
    a = arms[0]
    control = next(x.id for x in design.arms if x.trait == a.trait and x.role == "control")
    counts = [(c, 5) for c in range(-1, 29, 3)]
    cells = pd.DataFrame(
        [{"trait": a.trait, "arm": arm, "category": c, "count": n}
         for arm in (a.id, control) for c, n in counts]
    )  # fmt: skip
    q = pd.DataFrame([{"analysis": "primary", "population": "all",
                       "outcome": design.outcomes.outcomes[0].id, "arm": a.id, "or_median": 1.0}])  # fmt: skip
    table = populations.cumulative_odds_ratios(design, cells, q)
    assert len(table) == len(populations.PO_CUTPOINTS)
    assert table["odds_ratio"].to_numpy() == pytest.approx(1.0)


def test_po_chart_is_valid_and_renders_offline(design, worked_interim):
    table = populations.cumulative_odds_ratios(
        design, worked_interim.tables["cells_osfd28"], worked_interim.tables["quantities"]
    )
    chart = populations.po_chart(design, table)
    assert_valid_inline_spec(chart)
    assert_renders_to_svg_offline(chart)
