"""The tipping-point analysis of the synthetic export at the small size (one run, many checks)."""

from __future__ import annotations

import numpy as np
import pytest

from palette_core.exports.contract import read_export
from palette_core.exports.derive import derive_outcomes
from palette_core.exports.synthetic import EXPORT_FOLDER
from palette_core.results import tipping as rt

SEED = 11


@pytest.fixture(scope="module")
def result(design):
    return rt.tipping_result(design, "small", SEED)


def test_every_missing_outcome_of_the_export_is_imputed(result, design):
    tables, manifest = result
    derived = derive_outcomes(read_export(design.data_root / EXPORT_FOLDER, design), design)
    n_missing = int((derived["status"] == "missing").sum())
    assert n_missing > 0  # the worked example needs no added missing outcomes
    assert manifest["n_missing"] == n_missing == int(tables["missing"]["n"].sum())
    assert manifest["design_hash"] == design.design_hash and manifest["seed"] == SEED


def test_at_delta_zero_imputation_reproduces_the_complete_case_analysis(result):
    c = result[0]["curves"]
    at0 = c[np.isclose(c["delta"], 0.0)]
    gap = (at0["probability"] - at0["complete_case"]).abs()
    # MAR imputation from the model adds no information: averaged over the imputations the
    # posterior is the complete-case one, up to Monte Carlo error (4 imputations at this size,
    # whose SE is itself rough) and the approximate parameter draws
    assert (gap <= 5 * at0["mcse"] + 0.05).all(), at0.loc[gap.idxmax()]
    assert gap.mean() < 0.02  # the stored full-size run (40 imputations) is checked in the chapter


def test_a_worse_outcome_of_the_experimental_arms_lowers_their_graduation_probability(result):
    c = result[0]["curves"]
    t = result[0]["tipping"]
    with_missing = set(t.loc[t["n_missing"] > 0, "arm"])
    g = c[(c["rule"] == "graduation") & (c["scenario"] == "experimental")]
    # an arm without missing outcomes moves only through the shared trait and era terms (other
    # arms' imputations), possibly the other way; an arm with missing outcomes moves with them
    for arm, a in g[g["arm"].isin(with_missing)].groupby("arm"):
        p = a.sort_values("delta")["probability"].to_numpy()
        # common random numbers: monotone up to the noise of the shared terms, which move with
        # the other arms' imputations (a few 1e-3 at the small size); a shift the wrong way
        # moves an arm by several 1e-2 per step
        assert np.all(np.diff(p) >= -5e-3), arm
    lo, hi = (g[g["delta"] == g["delta"].min()], g[g["delta"] == g["delta"].max()])
    assert lo["probability"].sum() < hi["probability"].sum()


def test_the_reverse_scenario_moves_the_other_way(result):
    c = result[0]["curves"]
    g = c[(c["rule"] == "graduation") & (c["scenario"] == "usual_care")]
    lo, hi = (g[g["delta"] == g["delta"].min()], g[g["delta"] == g["delta"].max()])
    assert lo["probability"].sum() > hi["probability"].sum()


def test_the_tipping_table_has_every_arm_rule_and_scenario(result, design):
    t = result[0]["tipping"]
    arms = {a.id for a in design.experimental_arms()}
    n_rules = {"osfd28": 3, "mortality28": 1}
    for (o, _sc), g in t.groupby(["outcome", "scenario"]):
        assert set(g["arm"]) == arms and len(g) == len(arms) * n_rules[o]
    flipped = t[t["tipping_below"].notna() | t["tipping_above"].notna()]
    for r in flipped.itertuples():
        assert r.tipping_below < 0 if np.isfinite(r.tipping_below) else r.tipping_above > 0
