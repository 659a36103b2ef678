"""The Laplace approximation of the joint model: the density, its closed-form derivatives,
agreement with NUTS, vmap and compile-once, the mixture summaries and the boundary."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import initialize_model
from scipy import stats

from palette_core.analysis import checking
from palette_core.analysis import models as m
from palette_core.analysis.fit import Fitter
from palette_core.errors import ModelDataError
from palette_core.randomisation.allocation import pr_best
from palette_core.simulate import posterior as lp

BASELINE = {
    "mortality28": {"adult": 0.25, "child": 0.1},
    "osfd28": {"adult": np.full(30, 1 / 30), "child": np.full(30, 1 / 30)},
}


def _data(design, outcome, n_eras, effects, n, seed):
    spec = m.model_spec(design, outcome, n_eras)
    cells = checking.simulate_cells(design, spec, effects, n, seed, baseline=BASELINE[outcome])
    return spec, m.model_data(design, cells, spec)


def _random_point(lay, rng):
    xc = rng.normal(size=(lay.n_strata, lay.n_cut)) * 0.5
    z = rng.normal(size=lay.n_z)
    h = np.abs(rng.normal(size=3)) * 0.3 + 0.05
    return xc, z, h


@pytest.mark.parametrize("outcome", ["mortality28", "osfd28"])
def test_log_joint_is_minus_numpyro_potential(design, outcome):
    spec, data = _data(design, outcome, 3, {"hinf_anakinra": 0.5}, 20, 1)
    lay, prior = lp.layout(spec), m.model_priors(design)
    arrays = m.CellData(*(jnp.asarray(v) for v in data))
    info = initialize_model(
        jax.random.PRNGKey(0),
        partial(m.joint_model, spec),
        model_args=(arrays, m.model_priors(design)),
        dynamic_args=True,
    )
    potential = info.potential_fn(arrays, m.model_priors(design))
    rng = np.random.default_rng(0)
    for _ in range(3):
        xc, z, h = _random_point(lay, rng)
        params = {
            "cutpoints": xc,
            "trait_z": z[: lay.n_traits],
            "era_z": z[lay.z_era : lay.z_arm],
            "arm_z": z[lay.z_arm : lay.z_group],
            "group_mean_z": z[lay.z_group : lay.z_child],
            "child_z": z[lay.z_child :],
            "era_step_sd": np.log(h[0]),
            "between_trait_sd": np.log(h[1]),
            "child_deviation_sd": np.log(h[2]),
        }
        params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
        x = jnp.asarray(np.concatenate([xc.ravel(), z]), jnp.float32)
        hh = jnp.asarray(h, jnp.float32)
        ours = lp.log_joint(lay, prior, hh, x, arrays) + lp.hyper_log_prior(prior, hh)
        theirs = -potential(params)
        assert float(ours) == pytest.approx(float(theirs), rel=2e-6, abs=1e-3)


@pytest.mark.parametrize("outcome", ["mortality28", "osfd28"])
def test_closed_form_derivatives_equal_autodiff(design, outcome):
    spec, data = _data(design, outcome, 2, {"hypo_gcsf": 0.4}, 20, 2)
    lay, prior = lp.layout(spec), m.model_priors(design)
    st = lp.structure(lay, data)
    arrays = m.CellData(*(jnp.asarray(v) for v in data))
    rng = np.random.default_rng(1)

    # compiled (op-by-op autodiff of the Hessian took ~40 s per outcome), the same comparison
    def f(x, hh):
        return lp.log_joint(lay, prior, hh, x, arrays)

    closed = jax.jit(lambda hh, x: lp.derivatives(lay, st, prior, hh, x, arrays.counts))
    auto = jax.jit(lambda x, hh: (f(x, hh), jax.grad(f)(x, hh), jax.hessian(f)(x, hh)))
    for _ in range(2):
        xc, z, h = _random_point(lay, rng)
        x = jnp.asarray(np.concatenate([xc.ravel(), z]), jnp.float32)
        hh = jnp.asarray(h, jnp.float32)
        der = closed(hh, x)
        value, g, hess = auto(x, hh)
        assert float(der.value) == pytest.approx(float(value), rel=1e-6)
        np.testing.assert_allclose(der.grad, g, rtol=1e-4, atol=1e-4 * float(jnp.abs(g).max()))
        np.testing.assert_allclose(der.hess, hess, atol=1e-5 * float(jnp.abs(hess).max()))


@pytest.mark.parametrize("outcome", ["mortality28", "osfd28"])
def test_schur_nodes_equal_the_dense_precision(design, outcome):
    """The Schur complement of the cut-points (the default) changes nothing but rounding."""
    spec, data = _data(design, outcome, 2, {"hypo_gcsf": 0.4, "hinf_anakinra": -0.3}, 30, 9)
    lay, prior = lp.layout(spec), m.model_priors(design)
    st = lp.structure(lay, data)
    run = jax.jit(
        lambda c, schur: lp.laplace_arrays(lay, st, prior, c, schur=schur), static_argnums=1
    )
    counts = jnp.asarray(data.counts)  # a cold start: the pilot stages, then the final one
    dense, fast = run(counts, False), run(counts, True)
    np.testing.assert_allclose(fast.log_ml, dense.log_ml, rtol=1e-5)
    np.testing.assert_allclose(fast.weights, dense.weights, atol=1e-4)
    np.testing.assert_allclose(fast.mean, dense.mean, atol=1e-4)
    np.testing.assert_allclose(fast.cov, dense.cov, atol=1e-4 * float(jnp.abs(dense.cov).max()))
    np.testing.assert_allclose(fast.state.pilot_mode, dense.state.pilot_mode, atol=1e-4)
    for c in (0.0, 0.3):
        np.testing.assert_allclose(lp.pr_greater(fast, c), lp.pr_greater(dense, c), atol=1e-4)
    assert bool(fast.positive_definite) and bool(fast.converged)


def test_third_derivative_of_a_cell(design):
    rng = np.random.default_rng(3)
    for k in (2, 5, 30):
        cut = jnp.asarray(np.sort(rng.normal(size=k - 1) * 2), jnp.float32)
        n = jnp.asarray(rng.integers(0, 5, size=k), jnp.float32)

        def ll(eta, cut=cut, n=n):
            return lp.cell_terms(cut - eta, n).ll

        eta = jnp.float32(0.3)
        third = lp.cell_terms(cut - eta, n, third=True).third
        assert float(third) == pytest.approx(float(jax.grad(jax.grad(jax.grad(ll)))(eta)), 1e-3)


def test_chi_rule_is_exact_for_low_moments():
    for k in (1.0, 3.0, 20.0):
        y, w = lp.chi_rule(3, jnp.float32(k))
        for p in (2, 4, 6, 8, 10):
            assert float(jnp.sum(w * y**p)) == pytest.approx(stats.chi(k).moment(p), rel=1e-4)


@pytest.fixture(scope="module")
def strong(design):
    """Mortality, one era, 150 patients per arm, effects from clearly harmful to clearly good."""
    effects = {"hinf_tocilizumab": 1.0, "hypo_gcsf": -1.5, "cort_hydrocortisone": 0.7}
    return _data(design, "mortality28", 1, effects, 150, 4)


@pytest.fixture(scope="module")
def strong_result(design, strong):
    """The approximation of ``strong`` (compiled once for the tests that read it)."""
    spec, data = strong
    return lp.LaplacePosterior(spec, data, m.model_priors(design)).analyse(data.counts)


def test_decision_probabilities_agree_with_nuts(design, strong, strong_result):
    spec, data = strong
    res = strong_result
    assert bool(res.converged) and bool(res.positive_definite)
    fit = Fitter(spec, num_warmup=300, num_samples=500, num_chains=2).fit(
        data, m.model_priors(design), seed=5
    )
    a = len(spec.arms)
    draws = np.concatenate(
        [fit.idata.posterior["log_or"].values, fit.idata.posterior["log_or_child"].values], -1
    )  # [chains, draws, 2A]
    for c in (0.0, float(np.log(1.1))):
        ind = (draws > c).astype(float)
        p_nuts = ind.mean(axis=(0, 1))
        # Monte Carlo SE from batch means of 10 batches per chain
        means = ind.reshape(2, 10, 50, 2 * a).mean(axis=2).reshape(20, 2 * a)
        mcse = means.std(axis=0, ddof=1) / np.sqrt(20)
        p_lap = np.asarray(lp.pr_greater(res, c))
        assert np.all(np.abs(p_lap - p_nuts) <= 0.02 + 4 * mcse)
    p = np.asarray(lp.pr_greater(res, 0.0))
    assert p[spec.arms.index("hinf_tocilizumab")] > 0.99 and p[spec.arms.index("hypo_gcsf")] < 0.01


def test_vmap_equals_single_calls_and_compiles_once(design):
    spec, data = _data(design, "mortality28", 2, {}, 10, 6)
    rng = np.random.default_rng(7)
    looks = [data.counts * (i + 1) + rng.integers(0, 3, data.counts.shape) for i in range(3)]
    post = lp.LaplacePosterior(spec, data, m.model_priors(design))
    single = [post.analyse(c) for c in looks]
    assert post.n_traces == 1  # three datasets, one compilation
    batch = post.analyse_batch(np.stack(looks))
    for i, r in enumerate(single):  # equal up to float32 rounding (another order of operations)
        np.testing.assert_allclose(batch.weights[i], r.weights, atol=1e-4)
        np.testing.assert_allclose(batch.mean[i], r.mean, atol=1e-4)
        np.testing.assert_allclose(lp.pr_greater(batch, 0.0)[i], lp.pr_greater(r, 0.0), atol=1e-4)
    warm = [post.analyse(c, single[0].state) for c in looks[1:]]
    assert post.n_traces == 3  # + the batched cold path + the warm path, once each
    for w, s in zip(warm, single[1:], strict=True):
        np.testing.assert_allclose(lp.pr_greater(w, 0.0), lp.pr_greater(s, 0.0), atol=0.01)


def test_unused_eras_and_arms_are_harmless(design):
    spec1, data1 = _data(design, "mortality28", 1, {"hypo_gcsf": 0.5}, 40, 8)
    spec2 = m.model_spec(design, "mortality28", 2)
    data2 = lp_data_with_empty_era(design, spec2, data1)
    r1 = lp.LaplacePosterior(spec1, data1, m.model_priors(design)).analyse(data1.counts)
    r2 = lp.LaplacePosterior(spec2, data2, m.model_priors(design)).analyse(data2.counts)
    np.testing.assert_allclose(lp.pr_greater(r2, 0.0), lp.pr_greater(r1, 0.0), atol=2e-3)
    # an arm without patients keeps its prior (arm_log_or) in adults
    arm = spec1.arms.index("hypo_ifng")
    assert spec1.arm_group[arm] < 0
    counts = np.asarray(data1.counts).copy()
    counts[np.asarray(data1.arm) == 1 + arm] = 0.0
    s = lp.mixture_summary(
        lp.LaplacePosterior(spec1, data1, m.model_priors(design)).analyse(counts)
    )
    assert float(s.mean[arm]) == pytest.approx(float(m.model_priors(design).arm_loc), abs=1e-3)
    assert float(s.sd[arm]) == pytest.approx(float(m.model_priors(design).arm_scale), rel=1e-3)


def lp_data_with_empty_era(design, spec2, data1):
    """``data1`` (one era) laid on a two-era grid with the second era empty."""
    tmpl = checking.empty_data(design, spec2)
    counts = np.zeros(tmpl.counts.shape, np.float32)
    counts[np.asarray(tmpl.era) == 0] = data1.counts
    return tmpl._replace(counts=counts)


def test_mixture_summaries_and_draws_are_consistent(strong, strong_result):
    spec, _ = strong
    res = strong_result
    s = lp.mixture_summary(res)
    a = len(spec.arms)
    for full, lead in zip(s, lp.mixture_summary(lp.leading(res, a)), strict=True):
        np.testing.assert_allclose(lead, full[:a], atol=1e-6)  # the adults alone: the same
    np.testing.assert_allclose(lp.pr_greater(res, s.q_low), 0.975, atol=1e-3)
    np.testing.assert_allclose(lp.pr_less(res, s.q_high), 0.975, atol=1e-3)
    np.testing.assert_allclose(lp.pr_greater(res, 0.3) + lp.pr_less(res, 0.3), 1.0, atol=1e-5)
    draws = np.asarray(lp.joint_draws(res, jax.random.PRNGKey(0), 40000))
    assert draws.shape == (40000, 2 * len(spec.arms))
    adults = np.asarray(lp.joint_draws(res, jax.random.PRNGKey(0), 40000, len(spec.arms)))
    np.testing.assert_allclose(adults, draws[:, : len(spec.arms)], atol=1e-5)
    np.testing.assert_allclose(draws.mean(0), s.mean, atol=0.02)
    np.testing.assert_allclose(draws.std(0), s.sd, rtol=0.03)
    np.testing.assert_allclose((draws > 0).mean(0), lp.pr_greater(res, 0.0), atol=0.01)
    trait = np.asarray(spec.arm_trait) == 0
    best = pr_best(draws[:, : len(spec.arms)], trait)
    assert float(best.sum()) == pytest.approx(1.0) and np.all(np.asarray(best)[~trait] == 0)


def test_float32_agrees_with_float64(design, strong):
    spec, data = strong
    lay, prior = lp.layout(spec), m.model_priors(design)
    st = lp.structure(lay, data)
    run = jax.jit(lambda st, prior, counts: lp.laplace_arrays(lay, st, prior, counts))
    p32 = lp.pr_greater(run(st, prior, jnp.asarray(data.counts)), 0.0)
    with jax.enable_x64(True):
        prior64 = m.Priors(*(np.float64(v) for v in prior))
        st64 = lp.Structure(*(np.asarray(a, np.float64) for a in st))
        res = run(st64, prior64, jnp.asarray(data.counts, jnp.float64))
        p64 = np.asarray(lp.pr_greater(res, 0.0))
    assert np.abs(np.asarray(p32) - p64).max() < 1e-3


def test_boundary_errors_name_the_column(design, strong):
    spec, data = strong
    with pytest.raises(ModelDataError, match="borrowing"):
        lp.layout(m.model_spec(design, "mortality28", 1, borrowing="none"))
    spec2, data2 = _data(design, "mortality28", 2, {}, 10, 6)
    shuffled = data2._replace(trait=np.roll(np.asarray(data2.trait), 1))
    with pytest.raises(ModelDataError) as err:
        lp.structure(lp.layout(spec2), shuffled)
    assert err.value.column == "trait"
    swapped = data2._replace(era=np.asarray(data2.era)[::-1].copy())
    with pytest.raises(ModelDataError) as err:
        lp.structure(lp.layout(spec2), swapped)
    assert err.value.column == "era" and err.value.row == 0
    post = lp.LaplacePosterior(spec, data, m.model_priors(design))
    bad = np.asarray(data.counts).copy()
    bad[3, 0] = -1
    with pytest.raises(ModelDataError) as err:
        post.analyse(bad)
    assert err.value.column == "counts" and err.value.row == 3
    with pytest.raises(ModelDataError, match="shape"):
        post.analyse(bad[:-1])
