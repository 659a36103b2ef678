"""Model checking: prior predictive, recovery of known effects, simulation-based calibration."""

from __future__ import annotations

import numpy as np
import pytest
from support import TINY_NUTS

from palette_core.analysis import checking as c
from palette_core.analysis import models as m
from palette_core.analysis.fit import Fitter
from palette_core.analysis.quantities import summarise
from palette_core.errors import ModelDataError

TRUE_OR = {"hinf_baricitinib": 2.0, "hypo_gcsf": 1.5, "cort_hydrocortisone": 0.6}


@pytest.fixture(scope="module")
def spec(design):
    return m.model_spec(design, "mortality28", 1)


@pytest.fixture(scope="module")
def fitter(spec):
    return Fitter(spec, **TINY_NUTS)


def test_prior_predictive_mortality_is_plausible_by_age_group(design):
    pp = c.prior_predictive(design, "mortality28", 400, 1)
    assert list(pp.columns) == list(c.PRIOR_PREDICTIVE_COLUMNS)
    pooled = pp[pp["trait"] == "all"]
    assert set(pooled["age_group"]) == set(design.age_group_ids)
    assert (pooled["quantity"] == "pr_event").all()
    assert ((pooled["mean"] > 0.05) & (pooled["mean"] < 0.95)).all()
    assert ((pp["q025"] >= 0) & (pp["q975"] <= 1) & (pp["q025"] < pp["q975"])).all()


def test_prior_predictive_osfd_reports_death_and_mean(design):
    pp = c.prior_predictive(design, "osfd28", 300, 2)
    pooled = pp[pp["trait"] == "all"].set_index(["age_group", "quantity"])
    assert set(pooled.index.get_level_values("quantity")) == {"pr_death", "mean", "median"}
    assert ((pp.loc[pp.quantity == "mean", "mean"]).between(-1, 28)).all()
    assert (pp.loc[pp.quantity == "pr_death", "mean"].between(0.0, 1.0)).all()


def test_simulated_cells_are_valid_model_data_with_the_requested_sizes(design, spec):
    cells = c.simulate_cells(design, spec, {}, 100, 3, baseline={"adult": 0.3, "child": 0.1})
    data = m.model_data(design, cells, spec)
    assert data.counts.sum() == cells["patients"].sum()
    assert (cells.groupby(["trait", "arm"])["patients"].sum() == 100).all()
    o = m.model_spec(design, "osfd28", 1)
    p = np.full(o.n_categories, 1 / o.n_categories)
    cells_o = c.simulate_cells(design, o, {}, 60, 3, baseline={"adult": p, "child": p})
    assert m.model_data(design, cells_o, o).counts.sum() == cells_o["count"].sum()


def test_simulation_moves_events_in_the_benefit_direction(design, spec):
    base = {"adult": 0.4, "child": 0.4}
    cells = c.simulate_cells(design, spec, {"hypo_gcsf": np.log(3.0)}, 20000, 4, baseline=base)
    rate = cells.groupby("arm")[["events", "patients"]].sum()
    r = rate["events"] / rate["patients"]
    assert r["hypo_gcsf"] < r["hypo_usual_care"] - 0.1  # OR > 1 = fewer deaths


def test_simulation_rejects_unknown_arm_and_bad_baseline(design, spec):
    with pytest.raises(ModelDataError, match="not an experimental arm"):
        c.simulate_cells(design, spec, {"nope": 0.1}, 10, 0, baseline={"adult": 0.3, "child": 0.1})
    with pytest.raises(ModelDataError, match="child"):
        c.simulate_cells(design, spec, {}, 10, 0, baseline={"adult": 0.3})


def test_known_odds_ratios_are_recovered_within_their_intervals(design, spec, fitter):
    log_or = {a: float(np.log(v)) for a, v in TRUE_OR.items()}
    cells = c.simulate_cells(design, spec, log_or, 600, 11, baseline={"adult": 0.3, "child": 0.15})
    res = fitter.fit(m.model_data(design, cells, spec), m.model_priors(design), seed=5)
    draws = res.idata.posterior["log_or"].values.reshape(-1, len(spec.arms))
    q = summarise({"mortality28": draws}, list(spec.arms), design)
    truth = np.array([TRUE_OR.get(a, 1.0) for a in q["arm"]])
    covered = (q["or_low"].to_numpy() < truth) & (truth < q["or_high"].to_numpy())
    assert covered.mean() >= 0.8
    bari = q.set_index("arm").loc["hinf_baricitinib"]
    assert bari["pr_benefit"] > 0.95


def test_sbc_small_run_returns_ranks_in_range(design, spec, fitter):
    res = c.sbc(design, spec, 3, fitter, 7, patients_per_cell=20)
    r = res.ranks
    assert list(r.columns) == list(c.SBC_RANK_COLUMNS)
    assert len(r) == 3 * len(c.default_sbc_parameters(spec))
    assert ((r["rank"] >= 0) & (r["rank"] < r["n_ranks"])).all()
    assert set(res.uniformity["parameter"]) == set(r["parameter"])
    assert fitter.n_traces == 1  # one compiled fitter serves every simulation


def test_sbc_in_batches_gives_the_ranks_of_one_fit_at_a_time(design, spec, fitter):
    one = c.sbc(design, spec, 3, fitter, 7, patients_per_cell=20).ranks
    two = c.sbc(design, spec, 3, fitter, 7, patients_per_cell=20, batch=2).ranks
    assert one[["sim", "parameter", "true"]].equals(two[["sim", "parameter", "true"]])
    assert (one["rank"] == two["rank"]).mean() >= 0.9
    np.testing.assert_allclose(one["posterior_mean"], two["posterior_mean"], atol=0.05)
    with pytest.raises(ModelDataError, match="batch"):
        c.sbc(design, spec, 3, fitter, 7, batch=0)


def test_sbc_uniformity_detects_piled_up_ranks():
    import pandas as pd

    flat = pd.DataFrame({"parameter": "x", "rank": np.arange(100) % 100, "n_ranks": 100})
    piled = pd.DataFrame({"parameter": "x", "rank": np.zeros(100, int), "n_ranks": 100})
    assert c.sbc_uniformity(flat)["p_value"].iloc[0] > 0.5
    assert c.sbc_uniformity(piled)["p_value"].iloc[0] < 1e-6


def test_sbc_refuses_a_fitter_of_another_spec(design, fitter):
    other = m.model_spec(design, "mortality28", 1, borrowing="none")
    with pytest.raises(ModelDataError, match="another model spec"):
        c.sbc(design, other, 1, fitter, 0)


# ----------------------------------------------------------------------------- proportional odds
def _ordinal(design):
    spec = m.model_spec(design, "osfd28", 1)
    flat = np.full(len(spec.categories), 1.0 / len(spec.categories))
    baseline = {g.id: flat for g in design.strata.age_groups}
    cells = c.simulate_cells(design, spec, {}, 60, seed=3, baseline=baseline)
    return spec, m.model_data(design, cells, spec)


def test_cumulative_log_odds_ratios_are_zero_when_arm_and_control_match(design):
    spec, data = _ordinal(design)
    counts = np.asarray(data.counts).copy()
    arm, trait = np.asarray(data.arm), np.asarray(data.trait)
    e = 0  # give arm 0 exactly its usual care's counts
    own = np.flatnonzero(arm == 1)
    ctl = np.flatnonzero((arm == 0) & (trait == spec.arm_trait[e]))
    counts[own] = 0
    counts[own[: len(ctl)]] = counts[ctl[: len(own)]]
    counts[ctl[len(own) :]] = 0
    out = c.cumulative_log_odds_ratios(spec, data, counts)
    assert out.shape == (len(spec.arms), len(c.PO_CUTPOINTS))
    assert np.allclose(out[e], 0.0)


def test_posterior_predictive_po_returns_a_p_value_per_arm(design):
    spec, data = _ordinal(design)
    draws = c.prior_draws(design, spec, 40, seed=2)
    draws = {k: v[None] for k, v in draws.items()}  # a single "chain"
    table = c.posterior_predictive_po(spec, data, m.model_priors(design), draws, 5, 20)
    assert len(table) == len(spec.arms) * len(c.PO_CUTPOINTS)
    assert table["ppp"].between(0, 1).all()
    assert (table["replicate_q05"] <= table["replicate_q95"]).all()


def test_posterior_predictive_po_needs_the_ordinal_model(design):
    spec = m.model_spec(design, "mortality28", 1)
    data = c.empty_data(design, spec)
    with pytest.raises(ModelDataError, match="ordinal"):
        c.posterior_predictive_po(spec, data, m.model_priors(design), {}, 1, 5)
