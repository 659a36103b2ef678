"""The joint model: sufficient statistics, priors from the design, orientation, validation."""

from __future__ import annotations

import jax
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
from numpyro import handlers
from numpyro.infer.util import log_density

from palette_core.analysis import models as m
from palette_core.design.loader import Design, load_design, modified_design
from palette_core.errors import ModelDataError

N_ERAS = 2
PRIORS = m.model_priors(load_design())


def _binary_cells(design: Design, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = m.cell_grid(design, N_ERAS)[["trait", "age_group", "arm", "era"]].copy()
    g["patients"] = rng.integers(0, 8, len(g))
    g["events"] = rng.binomial(g["patients"], 0.3)
    return g


def _ordinal_cells(design: Design, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = m.cell_grid(design, N_ERAS)[["trait", "age_group", "arm", "era"]]
    g = g.sample(60, random_state=seed).reset_index(drop=True)
    g["category"] = rng.integers(-1, 29, len(g))
    g["count"] = rng.integers(0, 5, len(g))
    return g


def _prior_params(spec: m.ModelSpec, data: m.CellData, seed: int, priors=None) -> dict:
    priors = PRIORS if priors is None else priors
    tr = handlers.trace(handlers.seed(m.joint_model, seed)).get_trace(spec, data, priors)
    return {k: v["value"] for k, v in tr.items() if v["type"] == "sample" and not v["is_observed"]}


@pytest.mark.parametrize("outcome", ["mortality28", "osfd28"])
@pytest.mark.parametrize(
    ("seed", "borrowing"), [(0, "hierarchical"), (1, "hierarchical"), (2, "exnex")]
)
def test_cell_likelihood_equals_per_patient_likelihood(design, outcome, seed, borrowing):
    spec = m.model_spec(design, outcome, N_ERAS, borrowing=borrowing)
    cells = (
        _binary_cells(design, seed) if outcome == "mortality28" else _ordinal_cells(design, seed)
    )
    data = m.model_data(design, cells, spec)
    params = _prior_params(spec, data, seed)
    cell, y = m.expand_patients(data)
    assert len(cell) == int(np.asarray(data.counts).sum()) > 50
    with jax.enable_x64(True):
        suff, _ = log_density(m.joint_model, (spec, data, PRIORS), {}, params)
        per_patient, _ = log_density(m.per_patient_model, (spec, data, PRIORS, cell, y), {}, params)
    assert abs(float(suff) - float(per_patient)) < 1e-6


def test_binary_per_patient_model_is_bernoulli(design):
    """The binary reference is an independent Bernoulli, not the ordered-logistic code path."""
    spec = m.model_spec(design, "mortality28", N_ERAS)
    data = m.model_data(design, _binary_cells(design, 3), spec)
    cell, y = m.expand_patients(data)
    tr = handlers.trace(handlers.seed(m.per_patient_model, 0)).get_trace(
        spec, data, PRIORS, cell, y
    )
    assert isinstance(tr["y"]["fn"], dist.BernoulliLogits)


def test_priors_are_read_from_the_design(design):
    spec = m.model_spec(design, "mortality28", N_ERAS)
    priors = m.model_priors(design)
    assert float(priors.arm_scale) == design.priors.arm_log_or.scale
    assert float(priors.between_trait_scale) == design.priors.between_trait_sd.scale

    def edit(d):
        d["between_trait_sd"]["scale"] = 0.77
        d["arm_log_or"]["scale"] = 2.0

    with modified_design(None, "proposed/priors.yaml", edit) as changed:
        spec2 = m.model_spec(changed, "mortality28", N_ERAS)
        priors2 = m.model_priors(changed)
    assert spec2 == spec  # priors are not part of the (static) spec
    data = m.model_data(design, _binary_cells(design, 0), spec)
    tr1 = handlers.trace(handlers.seed(m.joint_model, 5)).get_trace(spec, data, priors)
    tr2 = handlers.trace(handlers.seed(m.joint_model, 5)).get_trace(spec, data, priors2)
    assert float(tr2["between_trait_sd"]["fn"].scale) == pytest.approx(0.77)
    ungrouped = np.array([g < 0 for g in spec.arm_group])
    ratio = (
        np.asarray(tr2["log_or"]["value"])[ungrouped]
        / np.asarray(tr1["log_or"]["value"])[ungrouped]
    )
    np.testing.assert_allclose(ratio, 2.0 / design.priors.arm_log_or.scale, rtol=1e-5)


def test_prior_scale_overrides_and_unknown_names(design):
    priors = m.model_priors(design, {"between_trait_sd": 0.1})
    assert float(priors.between_trait_scale) == pytest.approx(0.1)
    with pytest.raises(ModelDataError, match="prior_scales"):
        m.model_priors(design, {"tau": 0.1})
    with pytest.raises(ModelDataError, match="positive"):
        m.model_priors(design, {"arm_log_or": True})


def _one_arm_cells(design, arm_id, outcome, good_for_arm: bool) -> pd.DataFrame:
    """Usual care and one arm of its trait, adults, era 0; the arm's patients do well/badly."""
    arm = design.arm(arm_id)
    control = design.control_of(arm.trait).id
    rows = []
    for a, good in ((control, not good_for_arm), (arm_id, good_for_arm)):
        if outcome == "mortality28":
            rows.append((arm.trait, "adult", a, 0, 2 if good else 18, 20))
        else:
            rows.append((arm.trait, "adult", a, 0, 25 if good else -1, 20))
    cols = list(m.BINARY_COLUMNS if outcome == "mortality28" else m.ORDINAL_COLUMNS)
    return pd.DataFrame(rows, columns=cols)


@pytest.mark.parametrize("outcome", ["mortality28", "osfd28"])
def test_positive_log_or_means_benefit(design, outcome):
    """Data where the arm does better than usual care favour log_or > 0 (OR > 1 = benefit)."""
    spec = m.model_spec(design, outcome, N_ERAS)
    arm_id = "hypo_gcsf"
    e = spec.arms.index(arm_id)
    params = _prior_params(
        spec, m.model_data(design, _one_arm_cells(design, arm_id, outcome, True), spec), 0
    )

    def logp(good: bool, theta: float) -> float:
        data = m.model_data(design, _one_arm_cells(design, arm_id, outcome, good), spec)
        z = np.zeros(len(spec.arms), dtype=np.float32)
        z[e] = (theta - float(PRIORS.arm_loc)) / float(PRIORS.arm_scale)
        return float(
            log_density(m.joint_model, (spec, data, PRIORS), {}, {**params, "arm_z": z})[0]
        )

    assert logp(True, 1.0) > logp(True, -1.0)
    assert logp(False, 1.0) < logp(False, -1.0)


def test_sign_follows_benefit_direction(design):
    assert m.model_spec(design, "mortality28", 1).sign == -1  # lower mortality = benefit
    assert m.model_spec(design, "osfd28", 1).sign == 1  # higher OSFD = benefit


def test_grid_shapes_do_not_depend_on_which_cells_have_data(design):
    spec = m.model_spec(design, "mortality28", N_ERAS)
    full = m.model_data(design, _binary_cells(design, 0), spec)
    sparse = m.model_data(design, _binary_cells(design, 0).iloc[:5], spec)
    assert all(a.shape == b.shape for a, b in zip(full, sparse, strict=True))
    assert float(np.asarray(sparse.counts).sum()) < float(np.asarray(full.counts).sum())


@pytest.mark.parametrize(
    ("change", "column", "row"),
    [
        (lambda df: df.assign(trait=["nope"] + list(df.trait[1:])), "trait", 0),
        (lambda df: df.assign(events=df.patients + 1), "events", 0),
        (lambda df: pd.concat([df, df.iloc[[3]]], ignore_index=True), "trait", None),
        (lambda df: df.assign(arm=["mals_anakinra"] + list(df.arm[1:])), "arm", 0),
        (lambda df: df.assign(era=df.era + N_ERAS), "era", 0),
        (lambda df: df.assign(patients=df.patients - 100), "patients", 0),
        (lambda df: df.assign(patients=df.patients + 0.5), "patients", 0),
        (lambda df: df.drop(columns="events"), "events", None),
    ],
)
def test_invalid_cells_raise_typed_errors_naming_column_and_row(design, change, column, row):
    spec = m.model_spec(design, "mortality28", N_ERAS)
    cells = _binary_cells(design, 0)
    cells = cells[cells.trait == "hyperinflammation"].reset_index(drop=True)
    with pytest.raises(ModelDataError) as err:
        m.model_data(design, change(cells), spec)
    assert err.value.column == column
    if row is not None:
        assert err.value.row == row


def test_ordinal_category_outside_support_is_an_error(design):
    spec = m.model_spec(design, "osfd28", N_ERAS)
    cells = _ordinal_cells(design, 0).assign(category=29)
    with pytest.raises(ModelDataError, match="category") as err:
        m.model_data(design, cells, spec)
    assert err.value.row == 0


def test_child_arm_for_adult_only_trait_is_an_error(design):
    spec = m.model_spec(design, "mortality28", N_ERAS)
    cells = pd.DataFrame(
        [("hypercoagulation", "child", "hcoag_lmwh", 0, 1, 3)], columns=list(m.BINARY_COLUMNS)
    )
    with pytest.raises(ModelDataError, match="does not admit") as err:
        m.model_data(design, cells, spec)
    assert (err.value.column, err.value.row) == ("age_group", 0)


def test_induced_dirichlet_with_two_categories_is_the_logistic_density():
    c = np.linspace(-4, 4, 9, dtype=np.float32)[:, None]
    got = np.asarray(m.InducedDirichlet(1.0, 2).log_prob(c))
    expected = -c[:, 0] - 2 * np.log1p(np.exp(-c[:, 0]))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_induced_dirichlet_draws_give_dirichlet_category_probabilities():
    cut = m.InducedDirichlet(1.0, 4).sample(jax.random.PRNGKey(0), (4000,))
    assert bool(np.all(np.diff(np.asarray(cut), axis=-1) > 0))
    f = 1 / (1 + np.exp(-np.asarray(cut, dtype=np.float64)))
    p = np.diff(np.concatenate([np.zeros((4000, 1)), f, np.ones((4000, 1))], axis=1), axis=1)
    np.testing.assert_allclose(p.mean(axis=0), 0.25, atol=0.02)


def test_per_trait_eras_give_one_walk_per_trait(design):
    spec = m.model_spec(design, "mortality28", 3, eras="per_trait")
    data = m.model_data(
        design,
        m.cell_grid(design, 3).iloc[:0].assign(events=0, patients=0)[list(m.BINARY_COLUMNS)],
        spec,
    )
    tr = handlers.trace(handlers.seed(m.joint_model, 0)).get_trace(spec, data, PRIORS)
    assert tr["era_effect"]["value"].shape == (len(spec.traits), 3)
    np.testing.assert_array_equal(np.asarray(tr["era_effect"]["value"])[:, 0], 0.0)


def test_no_borrowing_has_no_hierarchical_sites(design):
    spec = m.model_spec(design, "mortality28", N_ERAS, borrowing="none")
    data = m.model_data(design, _binary_cells(design, 0), spec)
    tr = handlers.trace(handlers.seed(m.joint_model, 0)).get_trace(spec, data, PRIORS)
    assert "between_trait_sd" not in tr and "group_mean" not in tr


def test_category_log_probs_are_stable_for_far_apart_cutpoints():
    cut = np.array([[-60.0, -30.0, 0.0, 0.001, 40.0, 80.0]], dtype=np.float32)
    eta = np.array([0.5], dtype=np.float32)
    log_p = np.asarray(m.category_log_probs(eta, cut))
    assert np.all(np.isfinite(log_p))
    np.testing.assert_allclose(np.logaddexp.reduce(log_p, axis=-1), 0.0, atol=1e-5)
    with jax.enable_x64(True):
        ref = dist.OrderedLogistic(eta[:, None], cut[:, None, :]).log_prob(np.arange(7))
        ok = np.isfinite(np.asarray(ref))
        np.testing.assert_allclose(log_p[ok], np.asarray(ref)[ok], rtol=1e-4, atol=1e-4)
