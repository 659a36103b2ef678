"""The accuracy panel: simulated looks, the comparison rows, the summary and the stored result."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from palette_core.analysis import models as m
from palette_core.errors import ModelDataError
from palette_core.simulate import accuracy as acc


def test_simulated_looks_lie_on_the_model_grid(design):
    primary, binary = m.model_spec(design, "osfd28", 3), m.model_spec(design, "mortality28", 3)
    looks = acc.simulate_looks(design, primary, binary, 2, 3, seed=1, look_every=50)
    assert [lk.n_patients for lk in looks] == [50, 100, 150] * 2
    template = acc._template(design, primary)
    death = primary.categories.index(design.outcome("osfd28").death_value)
    for lk in looks:
        o, b = lk.counts["osfd28"], lk.counts["mortality28"]
        assert o.shape == template.counts.shape and o.sum() == lk.n_patients
        np.testing.assert_array_equal(b[:, 1], o[:, death])  # mortality = the death category
        np.testing.assert_array_equal(b.sum(1), o.sum(1))
        assert lk.n_arm.sum() <= lk.n_patients
    # counts only grow look after look within a trial
    assert np.all(looks[1].counts["osfd28"] >= looks[0].counts["osfd28"])
    # the tidy table of the last look goes through models.model_data unchanged
    grid = m.cell_grid(design, 3)
    k = len(primary.categories)
    tidy = grid.loc[grid.index.repeat(k), ["trait", "age_group", "arm", "era"]].reset_index(
        drop=True
    )
    tidy["category"] = np.tile(primary.categories, len(grid))
    tidy["count"] = looks[-1].counts["osfd28"].reshape(-1).astype(int)
    np.testing.assert_array_equal(
        m.model_data(design, tidy, primary).counts, looks[-1].counts["osfd28"]
    )
    with pytest.raises(ModelDataError):
        acc.simulate_looks(design, binary, binary, 1, 1, seed=1)


def test_summary_counts_decisions_that_differ(design):
    rows = pd.DataFrame(
        {
            "rule": "3-3-3",
            "trial": 0,
            "look": 0,
            "n_patients": 200,
            "quantity": ["graduation"] * 3 + ["futility"] * 2,
            "outcome": "osfd28",
            "population": "adult",
            "arm": list("abcde"),
            "n_arm": [50, 50, 10, 50, 50],
            "threshold": [0.95] * 3 + [0.10] * 2,
            "nuts": [0.96, 0.90, 0.99, 0.05, 0.30],
            "nuts_mcse": 0.01,
            "laplace": [0.94, 0.91, 0.10, 0.06, 0.29],
        }
    )
    table = acc.summarise_panel(rows, design).set_index("quantity")
    assert set(table["rule"]) == {"3-3-3"}
    grad = table.loc["graduation"]
    assert grad["n"] == 2  # arm c is below the 40 complete outcomes the rule needs
    assert grad["max_abs_diff"] == pytest.approx(0.02)
    assert grad["decision_differs"] == pytest.approx(0.5)
    assert grad["share_in_band"] == pytest.approx(0.5)  # 0.96 is within 0.02 of 0.95
    assert table.loc["futility", "decision_differs"] == 0.0


def test_small_rebuild_writes_the_panel_and_its_manifest(design, tmp_path):
    # one look per NUTS call and no time for a second mortality call: the budget stops NUTS
    # after the first look of the mortality model, and the panel says so
    acc.rebuild_accuracy(design, tmp_path, "small", 3, batch=1, nuts_budget_s={"mortality28": 0})
    panel = pd.read_csv(tmp_path / "panel.csv")
    comparisons = pd.read_csv(tmp_path / "comparisons.csv")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert list(panel.columns) == list(acc.PANEL_COLUMNS)
    assert list(comparisons.columns) == list(acc.COMPARISON_COLUMNS)
    assert set(comparisons["quantity"]) >= {"graduation", "futility", "harm", "pr_best"}
    assert set(panel["rule"]) == set(comparisons["rule"]) == set(acc.SIZES["small"]["rules"])
    # every rule is compared with the same NUTS fits
    per_rule = comparisons.groupby("rule")["nuts"].apply(lambda x: tuple(x.round(9)))
    assert per_rule.nunique() == 1
    assert comparisons[["nuts", "laplace"]].stack().between(0, 1).all()
    assert manifest["design_hash"] == design.design_hash and manifest["size"] == "small"
    assert manifest["timings"]["laplace_ms_warm[osfd28,3-3-3]"] > 0
    assert manifest["timings"]["nuts_looks[mortality28]"] == 1
    assert manifest["timings"]["nuts_looks[osfd28]"] == acc.SIZES["small"]["n_nuts_looks"]["osfd28"]
    assert comparisons.groupby("outcome")["look"].nunique().to_dict() == {
        "mortality28": 1,
        "osfd28": 1,
    }
    assert manifest["config"]["batch"] == 1 and manifest["devices"]
    # the approximation's column recomputed here (for NUTS run elsewhere) is the same, and
    # stored rows that the manifest's looks do not give are refused
    again = acc.recompute_approximation(design, tmp_path)
    np.testing.assert_allclose(again["laplace"], comparisons["laplace"], rtol=1e-6, atol=1e-7)
    assert json.loads((tmp_path / "manifest.json").read_text())["approximation"]["devices"]
    comparisons.assign(n_arm=comparisons["n_arm"] + 1).to_csv(
        tmp_path / "comparisons.csv", index=False
    )
    with pytest.raises(ModelDataError, match="other data"):
        acc.recompute_approximation(design, tmp_path)
    with pytest.raises(ModelDataError):
        acc.rebuild_accuracy(design, tmp_path, "huge", seed=3)
