"""The model chapter: priors, sensitivity analyses, stored-result tables and figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from charts import assert_renders_to_svg_offline, assert_valid_inline_spec

from palette_core.analysis.quantities import summarise
from palette_core.analysis.sensitivity import sensitivity_analyses
from palette_core.chapters import model as ch


@pytest.fixture(scope="module")
def draws(design):
    arms = [a.id for a in design.experimental_arms()]
    return arms, np.random.default_rng(1).normal(size=(400, len(arms)))


def test_priors_table_has_every_prior_with_its_rationale(design):
    t = ch.priors_table(design)
    assert list(t["Parameter"]) == list(ch.PRIOR_LABELS.values())
    arm = t.set_index("Parameter").loc[ch.PRIOR_LABELS["arm_log_or"]]
    p = design.priors.arm_log_or
    assert arm["Prior"] == f"Normal({p.loc:g}, {p.scale:g}²)"
    assert t["Rationale"].str.len().min() > 20


def test_sensitivity_table_has_one_row_per_analysis(design):
    t = ch.sensitivity_table(design)
    assert list(t["Analysis"]) == list(sensitivity_analyses(design))
    assert t["What changes"].str.len().min() > 20


def test_children_harm_table_keeps_only_arms_open_to_children(design, draws):
    arms, x = draws
    q = summarise({"mortality28": x}, arms, design, population="child", analysis="no_borrowing")
    t = ch.children_harm_table(q, design)
    child = [a.id for a in design.experimental_arms() if "child" in design.arm_age_groups(a)]
    assert list(t["Arm"]) == child and 0 < len(child) < len(arms)
    assert t.filter(like="Pr(OR <").iloc[:, 0].between(0, 1).all()
    primary_only = summarise({"mortality28": x}, arms, design)
    assert ch.children_harm_table(primary_only, design).empty


def test_forest_chart_labels_arms_and_adds_the_truth(design, draws):
    arms, x = draws
    q = summarise({"osfd28": x}, arms, design)
    truth = pd.DataFrame({"arm": [arms[0]], "true_or": [2.0]})
    with_truth = ch.forest_chart(q, "Example", design, truth)
    spec = assert_valid_inline_spec(with_truth)
    (rows,) = spec["datasets"].values()
    first = design.arm(arms[0])
    label = f"{design.trait(first.trait).short_name or design.trait(first.trait).name}: "
    assert rows[0]["label"] == label + (first.short_name or first.name)
    assert [r["true_or"] for r in rows if r["arm"] == arms[0]] == [2.0]
    assert '"diamond"' in json.dumps(spec)
    assert '"diamond"' not in json.dumps(ch.forest_chart(q, "Example", design).to_dict())
    assert_renders_to_svg_offline(with_truth)


def test_prior_predictive_table_keeps_the_pooled_rows():
    df = pd.DataFrame(
        {
            "outcome": ["m", "m"],
            "age_group": ["adult", "adult"],
            "trait": ["all", "t1"],
            "quantity": ["rate", "rate"],
            "mean": [0.123456, 0.2],
            "q025": [0.01, 0.02],
            "q50": [0.1, 0.2],
            "q975": [0.3, 0.4],
        }
    )
    t = ch.prior_predictive_table(df)
    assert len(t) == 1 and "trait" not in t.columns
    assert t.loc[0, "mean"] == 0.123


def test_sbc_chart_bins_every_rank_in_the_bins_of_the_uniformity_table():
    ranks = pd.DataFrame(
        {"parameter": ["a"] * 5 + ["b"] * 5, "rank": list(range(0, 100, 20)) * 2, "n_ranks": 99}
    )
    uniformity = pd.DataFrame({"parameter": ["a", "b"], "n_bins": [5, 2]})
    chart = ch.sbc_chart(ranks, uniformity)
    spec = assert_valid_inline_spec(chart)
    (rows,) = spec["datasets"].values()
    assert sum(r["simulations"] for r in rows) == len(ranks)
    # bins numbered from 1, as many as the table's chi-square test used, per parameter
    assert {r["bin"] for r in rows if r["parameter"] == "a"} == set(range(1, 6))
    assert {r["bin"] for r in rows if r["parameter"] == "b"} == {1, 2}
    assert_renders_to_svg_offline(chart)
