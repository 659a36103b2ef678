"""The covariate-adjusted sensitivity analysis: exact units, planted effects recovered, typed
errors for bad covariates, and the comparison with the primary analysis on the tiny export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpyro import handlers
from support import TEST_DATA, TINY_NUTS

from palette_core.analysis import covariates as cov
from palette_core.analysis.decisions import decision_outcomes
from palette_core.analysis.models import joint_model, model_data, model_priors, model_spec
from palette_core.errors import ModelDataError
from palette_core.exports import derive
from palette_core.exports.contract import read_export

SEVERITY = 0.8  # planted effect per standard deviation of the score
COUNTRIES = {"BE": -0.6, "CH": -0.3, "DE": 0.0, "ES": 0.3, "FR": 0.6}


def _simulated(design, n=1600, seed=11) -> pd.DataFrame:
    """Patients of the hyperinflammation trait (usual care and two arms, adults and children),
    28-day death from a logistic model with no arm effect, a severity effect and country
    effects planted: ``logit Pr(death) = logit(0.25) + SEVERITY z + u[country]``."""
    rng = np.random.default_rng(seed)
    arms = ["hinf_usual_care", "hinf_anakinra", "hinf_tocilizumab"]
    age = np.where(rng.random(n) < 0.2, "child", "adult")
    score = np.where(age == "adult", rng.integers(2, 16, n), rng.integers(2, 9, n)).astype(float)
    z = np.zeros(n)
    for ag in ("adult", "child"):
        m = age == ag
        z[m] = (score[m] - score[m].mean()) / score[m].std(ddof=1)
    country = rng.choice(list(COUNTRIES), n)
    u = np.array([COUNTRIES[c] for c in country])
    p = 1 / (1 + np.exp(-(np.log(0.25 / 0.75) + SEVERITY * z + u)))
    return pd.DataFrame(
        {
            "trait": "hyperinflammation",
            "age_group": age,
            "arm": rng.choice(arms, n),
            "era": 0,
            "country": country,
            "severity": pd.array(score, dtype="Float64"),
            "y": (rng.random(n) < p).astype(int),
        }
    )


@pytest.fixture(scope="module")
def planted_fit(design):
    run = {"num_warmup": 300, "num_samples": 300, "num_chains": 2}
    return cov.fit_adjusted(design, _simulated(design), "mortality28", 1, run=run, seed=3)


def test_the_adjusted_model_recovers_a_planted_severity_effect(planted_fit):
    med, lo, hi = planted_fit.effect("severity_effect")
    assert lo < SEVERITY < hi
    assert med == pytest.approx(SEVERITY, abs=0.2)
    assert not planted_fit.fit.results[0].diagnostics.get("n_divergent", 0) > 5


def test_the_adjusted_model_recovers_planted_country_effects(planted_fit):
    post = planted_fit.fit.results[0].idata.posterior["country_effect"]
    est = post.median(("chain", "draw")).to_series()
    truth = pd.Series(COUNTRIES)[est.index]
    # the country intercepts are identified up to the trait's intercept: compare centred
    est_c, truth_c = est - est.mean(), truth - truth.mean()
    assert np.corrcoef(est_c, truth_c)[0, 1] > 0.9
    assert np.abs(est_c - truth_c).max() < 0.3
    med, lo, hi = planted_fit.effect("country_sd")
    assert lo < float(np.std(list(COUNTRIES.values()), ddof=1)) < hi


def test_units_are_exact_sufficient_statistics(design):
    """With no severity effect and no country effect the adjusted model's likelihood of the
    units equals the primary model's likelihood of the cells, for the same parameters."""
    pts = _simulated(design, n=300, seed=5)
    spec = model_spec(design, "mortality28", 1)
    table = cov.covariate_data(design, pts, spec)
    assert table.data.counts.sum() == len(pts) and len(table.data.counts) < len(pts)
    cells = model_data(design, cov.cell_table(pts, spec), spec)
    priors = cov.adjusted_priors(design)
    seeded = handlers.seed(cov.adjusted_model, 0)
    tr = handlers.trace(seeded).get_trace(spec, table.data, priors, n_countries=5)
    values = {k: v["value"] for k, v in tr.items() if v["type"] == "sample" and k != "y"}
    values.update(severity_effect=0.0, country_sd=0.0)
    sub = handlers.substitute(cov.adjusted_model, values)
    adj = handlers.trace(sub).get_trace(spec, table.data, priors, n_countries=5)
    base = {
        k: v for k, v in values.items() if k not in ("severity_effect", "country_sd", "country_z")
    }
    prim = handlers.trace(handlers.substitute(joint_model, base)).get_trace(
        spec, cells, model_priors(design)
    )
    ll_adj = float(adj["y"]["fn"].log_prob(adj["y"]["value"]))
    ll_prim = float(prim["y"]["fn"].log_prob(prim["y"]["value"]))
    assert ll_adj == pytest.approx(ll_prim, rel=1e-5)


def test_missing_severity_is_set_to_the_stratum_mean_and_counted(design):
    pts = _simulated(design, n=200, seed=2)
    pts.loc[[0, 1, 2], "severity"] = pd.NA
    spec = model_spec(design, "mortality28", 1)
    table = cov.covariate_data(design, pts, spec)
    assert int(table.missing["n_missing"].sum()) == 3
    assert int(table.standardisation["n_missing"].sum()) == 3
    assert table.missing["n_patients"].sum() == len(pts)
    # the standardisation uses the scored patients only
    adult = table.standardisation.set_index("age_group").loc["adult"]
    scored = pts[(pts["age_group"] == "adult")]["severity"].dropna().astype(float)
    assert adult["mean"] == pytest.approx(scored.mean())
    assert adult["sd"] == pytest.approx(scored.std(ddof=1))


BAD = [
    ("severity", 7.5, "severity", "not a whole number"),
    ("severity", 25.0, "severity", "[0, 24]"),
    ("severity", -1.0, "severity", "not a whole number"),
    ("country", "", "country", "non-empty"),
    ("arm", "hinf_placebo", "arm", "unknown arm"),
    ("arm", "mals_anakinra", "arm", "belongs to trait"),
    ("age_group", "elderly", "age_group", "unknown age group"),
    ("era", 3, "era", "0..0"),
    ("y", 2, "y", "outcome value"),
]


@pytest.mark.parametrize(("column", "value", "field", "message"), BAD, ids=[b[3] for b in BAD])
def test_bad_covariates_raise_a_typed_error_naming_column_and_row(
    design, column, value, field, message
):
    pts = _simulated(design, n=50, seed=1).astype({"severity": object, "era": object, "y": object})
    pts.at[7, column] = value
    spec = model_spec(design, "mortality28", 1)
    with pytest.raises(ModelDataError, match="row 7") as err:
        cov.covariate_data(design, pts, spec)
    assert err.value.column == field and message in str(err.value)


def test_a_stratum_without_enough_scores_cannot_be_standardised(design):
    pts = _simulated(design, n=80, seed=4)
    pts.loc[pts["age_group"] == "child", "severity"] = pd.NA
    spec = model_spec(design, "mortality28", 1)
    with pytest.raises(ModelDataError, match="age group 'child'.*at least 2"):
        cov.covariate_data(design, pts, spec)
    pts = _simulated(design, n=80, seed=4)
    pts.loc[pts["age_group"] == "child", "severity"] = 3.0
    with pytest.raises(ModelDataError, match="spread is 0"):
        cov.covariate_data(design, pts, spec)


def test_missing_and_extra_columns_are_refused(design):
    pts = _simulated(design, n=20)
    spec = model_spec(design, "mortality28", 1)
    with pytest.raises(ModelDataError, match="missing column"):
        cov.covariate_data(design, pts.drop(columns="country"), spec)
    with pytest.raises(ModelDataError, match="unexpected column"):
        cov.covariate_data(design, pts.assign(site_id="S01"), spec)


@pytest.fixture(scope="module")
def tiny(design):
    derived = derive.derive_outcomes(
        read_export(TEST_DATA / "exports/tiny_interim", design), design
    )
    n_eras = derive.n_eras_of(derived)
    patients = {
        o: derive.covariate_table(derived, o, design, n_eras) for o in decision_outcomes(design)
    }
    return derived, n_eras, patients


def test_the_covariate_table_has_the_patients_of_the_cell_counts(design, tiny):
    derived, n_eras, patients = tiny
    for o, pts in patients.items():
        assert list(pts.columns) == list(cov.PATIENT_COLUMNS)
        spec = model_spec(design, o, n_eras)
        expected = derive.cell_counts(derived, o, design, n_eras)
        pd.testing.assert_frame_equal(cov.cell_table(pts, spec), expected)
    # a child's severity is its Phoenix score, an adult's its SOFA score
    complete = derived[derived["status"] == "complete"]
    pts = patients["mortality28"]
    child = (complete["age_group"] == "child").to_numpy()
    assert pts["severity"][child].equals(
        complete["phoenix_score"][child].reset_index(drop=True)
    ) or (
        pts["severity"][child]
        .reset_index(drop=True)
        .equals(complete["phoenix_score"][child].reset_index(drop=True))
    )


def test_the_comparison_table_has_one_row_per_arm_and_outcome(design, tiny):
    derived, n_eras, patients = tiny
    info = derive.information(derived, design)
    c = cov.compare_with_primary(design, patients, info, n_eras, seed=1, run=TINY_NUTS)
    arms = [a.id for a in design.experimental_arms()]
    assert len(c.probabilities) == len(arms) * len(patients)
    assert list(c.probabilities.columns) == ["outcome", "trait", "arm"] + [
        f"{q}_{w}" for q in cov.COMPARED for w in ("primary", "adjusted")
    ]
    for q in ("pr_benefit", "pr_or_gt_ref", "pr_harm"):
        for w in ("primary", "adjusted"):
            assert c.probabilities[f"{q}_{w}"].between(0, 1).all()
    assert list(c.decisions.columns) == ["trait", "arm", "primary", "adjusted", "changed"]
    assert list(c.decisions["arm"]) == arms
    assert c.decisions["changed"].equals(c.decisions["primary"] != c.decisions["adjusted"])
    assert c.any_change == bool(c.decisions["changed"].any())
    assert list(c.effects["outcome"]) == list(patients)
    n_missing = int(patients["mortality28"]["severity"].isna().sum())
    assert (c.effects["n_missing_severity"] == n_missing).all() and n_missing > 0
    assert set(c.quantities["analysis"]) == {"primary", cov.ADJUSTED}
