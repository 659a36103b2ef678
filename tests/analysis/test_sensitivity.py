"""Sensitivity analyses: named switches, EXNEX, children without borrowing, concurrent controls,
and an ordinal fit that recovers the direction of a known effect."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest
from support import TINY_NUTS

from palette_core.analysis import checking, sensitivity
from palette_core.analysis.models import exnex_draws, model_priors, model_spec
from palette_core.errors import ModelDataError


def test_exnex_fit_converges_and_mixes_the_components(design):
    spec = model_spec(design, "mortality28", 1)
    base = {"adult": 0.25, "child": 0.10}
    cells = checking.simulate_cells(design, spec, {"hinf_anakinra": 0.8}, 60, seed=3, baseline=base)
    fit = sensitivity.fit_outcome(
        design, cells, "mortality28", 1, analysis="exnex", run=TINY_NUTS, seed=4
    )
    post = fit.results[0].idata.posterior
    assert "exnex_pr_ex" in post and "exnex_pr_ex" not in fit.results[0].diagnostics
    pr = post["exnex_pr_ex"].values
    assert 0 < pr.mean() < 1
    assert np.isfinite(fit.draws).all() and np.isfinite(fit.child_draws).all()
    j = spec.arms.index("hinf_anakinra")
    assert np.median(fit.draws[:, j]) > 0  # the known benefit shows through the mixture


def test_analysis_options_name_each_switch(design):
    assert sensitivity.analysis_options(design, "primary") == {}
    assert sensitivity.analysis_options(design, "no_borrowing") == {"borrowing": "none"}
    assert sensitivity.analysis_options(design, "exnex") == {"borrowing": "exnex"}
    assert sensitivity.analysis_options(design, "per_trait_eras") == {"eras": "per_trait"}
    assert sensitivity.analysis_options(design, "concurrent_controls") == {"concurrent": True}
    assert sensitivity.analysis_options(design, "prior_between_trait_sd_0.5") == {
        "prior_scales": {"between_trait_sd": 0.5}
    }


def test_unknown_analysis_and_unlisted_prior_scale_are_refused(design):
    with pytest.raises(ModelDataError, match="unknown analysis"):
        sensitivity.analysis_options(design, "half_borrowing")
    with pytest.raises(ModelDataError, match="sensitivity_scales"):
        sensitivity.analysis_options(design, "prior_between_trait_sd_0.3")


def test_sensitivity_analyses_expand_prior_scales_from_the_design(design):
    names = sensitivity.sensitivity_analyses(design)
    listed = design.interim_analysis.sensitivity.analyses
    scales = [
        f"prior_between_trait_sd_{v:g}" for v in design.priors.between_trait_sd.sensitivity_scales
    ]
    assert all(s in names for s in scales)
    assert "prior_scale" not in names
    assert [n for n in names if not n.startswith("prior_")] == [
        n for n in listed if n != "prior_scale"
    ]
    for n in names:  # every expanded name is accepted back
        sensitivity.analysis_options(design, n)


def _prior(design, borrowing, n=3000):
    spec = model_spec(design, "mortality28", 1, borrowing=borrowing)
    draws = checking.prior_draws(design, spec, n, seed=5)
    draws["log_or"], draws["log_or_child"] = exnex_draws(draws, spec, jax.random.key(6))
    return spec, draws


def test_no_borrowing_makes_the_childrens_effect_independent_of_the_adults(design):
    spec, hier = _prior(design, "hierarchical")
    _, none = _prior(design, "none")
    j = spec.arms.index("hinf_anakinra")
    r_hier = np.corrcoef(hier["log_or"][:, j], hier["log_or_child"][:, j])[0, 1]
    r_none = np.corrcoef(none["log_or"][:, j], none["log_or_child"][:, j])[0, 1]
    assert r_hier > 0.8  # children's effect = adults' + a small deviation
    assert abs(r_none) < 0.1
    # and the children-only prior is the arm prior itself
    assert np.std(none["log_or_child"][:, j]) == pytest.approx(design.priors.arm_log_or.scale, 0.1)


def test_exnex_prior_is_a_mixture_between_borrowing_and_none(design):
    spec, hier = _prior(design, "hierarchical", 6000)
    _, exnex = _prior(design, "exnex", 6000)
    _, none = _prior(design, "none", 6000)
    a, b = spec.arms.index("hinf_anakinra"), spec.arms.index("mals_anakinra")

    def corr(d):  # prior correlation of the two arms of one group: how much they borrow
        return np.corrcoef(d["log_or"][:, a], d["log_or"][:, b])[0, 1]

    # both exchangeable with prior probability 0.5^2: borrowing between none and full
    assert abs(corr(none)) < 0.05 < 0.15 < corr(exnex) < 0.6 < 0.8 < corr(hier)
    assert "log_or_nex" in exnex and "log_or_nex" not in hier
    assert np.allclose(exnex["exnex_pr_ex"], design.priors.exnex.exchangeability)  # no data
    # arms outside shared-effect groups keep the plain arm prior
    k = spec.arms.index("hinf_baricitinib")
    assert np.std(exnex["log_or"][:, k]) == pytest.approx(design.priors.arm_log_or.scale, 0.1)


def test_exnex_weight_outside_zero_one_is_refused(design):
    with pytest.raises(ModelDataError, match="EXNEX"):
        model_priors(design, {"exnex": 1.5})


def _cells(design):
    """Binary cells over two eras: hinf_tocilizumab only in era 1, every other arm in both."""
    rows = []
    for t in design.trait_ids:
        for arm in design.arms_of(t):
            for ag in design.arm_age_groups(arm):
                for era in (0, 1):
                    n = 0 if (arm.id == "hinf_tocilizumab" and era == 0) else 10
                    rows.append((t, ag, arm.id, era, n // 3, n))
    return pd.DataFrame(rows, columns=["trait", "age_group", "arm", "era", "events", "patients"])


def test_concurrent_plan_restricts_only_the_late_arms_trait(design):
    cells = _cells(design)
    plan = sensitivity.concurrent_plan(design, cells)
    assert len(plan) == 2
    targets = [set(t) for t, _ in plan]
    assert "hinf_tocilizumab" in targets[1] and "hinf_tocilizumab" not in targets[0]
    every = {a.id for a in design.experimental_arms()}
    assert targets[0] | targets[1] == every and not targets[0] & targets[1]
    late = plan[1][1]
    hinf = late[late["trait"] == "hyperinflammation"]
    assert set(hinf["arm"]) == {"hinf_usual_care", "hinf_tocilizumab"}
    assert set(hinf["era"]) == {1}  # era-0 usual care is non-concurrent for tocilizumab
    others = late[late["trait"] != "hyperinflammation"]
    assert len(others) == (cells["trait"] != "hyperinflammation").sum()  # kept whole
    first = plan[0][1]
    h0 = first[first["trait"] == "hyperinflammation"]
    assert "hinf_tocilizumab" not in set(h0["arm"]) and set(h0["era"]) == {0, 1}


def test_concurrent_plan_accepts_explicit_open_eras(design):
    cells = _cells(design)
    plan = sensitivity.concurrent_plan(design, cells, open_eras={"hinf_tocilizumab": [0, 1]})
    assert len(plan) == 1  # every arm now shares the eras {0, 1}


@pytest.fixture(scope="module")
def ordinal_fit(design):
    spec = model_spec(design, "osfd28", 1)
    base = {
        ag: np.full(len(spec.categories), 1 / len(spec.categories)) for ag in ("adult", "child")
    }
    cells = checking.simulate_cells(
        design, spec, {"hinf_baricitinib": np.log(4.0)}, 60, seed=11, baseline=base
    )
    return spec, sensitivity.fit_outcome(design, cells, "osfd28", 1, run=TINY_NUTS, seed=2)


def test_ordinal_fit_recovers_the_direction_of_a_known_effect(ordinal_fit):
    spec, fit = ordinal_fit
    j = spec.arms.index("hinf_baricitinib")
    assert fit.draws.shape == (TINY_NUTS["num_chains"] * TINY_NUTS["num_samples"], len(spec.arms))
    assert np.mean(fit.draws[:, j] > 0) > 0.9  # OR 4 on 60 patients per arm: clear benefit
    assert np.median(fit.draws[:, j]) > np.median(np.delete(fit.draws, j, axis=1))


def test_concurrent_fit_reuses_one_compiled_sampler(design):
    cells = _cells(design)
    fit = sensitivity.fit_outcome(
        design, cells, "mortality28", 2, analysis="concurrent_controls", run=TINY_NUTS, seed=1
    )
    spec = model_spec(design, "mortality28", 2)
    assert len(fit.results) == 2
    assert sensitivity.fitter_for(spec, TINY_NUTS).n_traces == 1
    assert fit.draws.shape[1] == len(spec.arms) and np.isfinite(fit.draws).all()
