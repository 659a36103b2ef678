"""The forest plot shared by the model chapter and the interim reports."""

from __future__ import annotations

import json
import math

import pandas as pd
from charts import assert_renders_to_svg_offline, assert_valid_inline_spec

from palette_core.viz.forest import OR_TICKS, forest_plot


def _rows(true_or: list[float]) -> pd.DataFrame:
    n = len(true_or)
    return pd.DataFrame(
        {
            "label": [f"T{i % 2}: arm {i}" for i in range(n)],
            "trait_name": [f"T{i % 2}" for i in range(n)],
            "outcome_label": ["Primary"] * (n - 1) + ["Mortality"],
            "or_median": [1.2 + 0.1 * i for i in range(n)],
            "or_low": [0.6] * n,
            "or_high": [2.5] * n,
            "pr_benefit": [0.7] * n,
            "pr_harm": [0.1] * n,
            "true_or": true_or,
        }
    )


def test_forest_plot_is_valid_inline_and_renders_offline():
    chart = forest_plot(_rows([2.0, math.nan, 1.0]), "Example")
    spec = assert_valid_inline_spec(chart)
    assert spec["title"] == "Example"
    assert_renders_to_svg_offline(chart)


def test_forest_plot_has_one_panel_per_outcome_in_order():
    spec = forest_plot(_rows([math.nan] * 4), "t").to_dict()
    assert spec["facet"]["column"]["field"] == "outcome_label"
    assert spec["facet"]["column"]["sort"] == ["Primary", "Mortality"]


def test_true_odds_ratios_are_drawn_only_when_known():
    with_truth = json.dumps(forest_plot(_rows([2.0, math.nan, math.nan]), "t").to_dict())
    without = json.dumps(forest_plot(_rows([math.nan] * 3), "t").to_dict())
    assert '"diamond"' in with_truth and "isValid(datum.true_or)" in with_truth
    assert '"diamond"' not in without


def test_arms_keep_the_order_of_the_rows():
    df = _rows([math.nan] * 3).iloc[::-1].reset_index(drop=True)
    spec = forest_plot(df, "t").to_dict()
    sorts = [layer["encoding"]["y"]["sort"] for layer in spec["spec"]["layer"][1:]]
    assert sorts and all(s == list(df["label"]) for s in sorts)


def test_the_odds_ratio_axis_is_logarithmic_with_the_shared_ticks():
    spec = forest_plot(_rows([math.nan] * 3), "t").to_dict()
    x = spec["spec"]["layer"][1]["encoding"]["x"]
    assert x["scale"]["type"] == "log"
    assert x["axis"]["values"] == OR_TICKS
    assert 1 in OR_TICKS and OR_TICKS == sorted(OR_TICKS)
