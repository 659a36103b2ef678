"""The pure sampler: one compilation for every look, prior and dataset; vmap = single fits."""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
import pandas as pd
import pytest
from numpyro.infer.util import initialize_model
from support import TINY_NUTS

from palette_core.analysis import models as m
from palette_core.analysis.checking import (
    cell_probabilities,
    empty_data,
    prior_draws,
    simulated_counts,
)
from palette_core.analysis.fit import Fitter
from palette_core.analysis.sampler import NutsSettings, nuts_sampler, stack_data
from palette_core.errors import ModelDataError

CAPACITY = 4  # era capacity of the spec: looks with 1..4 eras share one compilation


def _look(design, spec, eras_in_use: int, seed: int) -> m.CellData:
    """Binary counts of a look whose patients fall in the first ``eras_in_use`` eras."""
    rng = np.random.default_rng(seed)
    g = m.cell_grid(design, eras_in_use)[["trait", "age_group", "arm", "era"]].copy()
    g["patients"] = rng.integers(2, 10, len(g))
    g["events"] = rng.binomial(g["patients"], 0.3)
    return m.model_data(design, g, spec, eras_in_use=eras_in_use)


@pytest.fixture(scope="module")
def spec(design):
    return m.model_spec(design, "mortality28", CAPACITY)


@pytest.fixture(scope="module")
def fitter(spec):
    return Fitter(spec, **TINY_NUTS)


def test_one_compilation_across_looks_with_more_eras_and_across_prior_scales(design, spec, fitter):
    priors = m.model_priors(design)
    fits = [fitter.fit(_look(design, spec, k, k), priors, seed=k) for k in (1, 2, 3, 4)]
    for name, scale in (("between_trait_sd", 0.5), ("arm_log_or", 1.0), ("era_step_sd", 0.1)):
        fits.append(fitter.fit(_look(design, spec, 2, 9), m.model_priors(design, {name: scale}), 5))
    assert fitter.n_traces == 1
    # the ArviZ view shows the eras in use only; padded eras are not reported
    assert [f.idata.posterior.sizes["era"] for f in fits[:4]] == [1, 2, 3, 4]


def test_prior_scale_changes_the_posterior_without_recompiling(design, spec, fitter):
    data = _look(design, spec, 2, 11)
    narrow = fitter.sample(data, m.model_priors(design, {"arm_log_or": 0.05}), 3)
    wide = fitter.sample(data, m.model_priors(design, {"arm_log_or": 2.0}), 3)
    free = [i for i, g in enumerate(spec.arm_group) if g < 0]
    sd_narrow = np.asarray(narrow.draws["log_or"])[..., free].std()
    sd_wide = np.asarray(wide.draws["log_or"])[..., free].std()
    assert sd_narrow < 0.2 < sd_wide


def test_padded_eras_are_flat_and_carry_no_data(design, spec, fitter):
    samples = fitter.sample(_look(design, spec, 2, 12), m.model_priors(design), 4)
    era = np.asarray(samples.draws["era_effect"])  # [chain, draw, capacity]
    np.testing.assert_array_equal(era[..., 2], era[..., 1])
    np.testing.assert_array_equal(era[..., 3], era[..., 1])
    assert np.std(era[..., 1]) > 0


def test_a_look_with_an_era_beyond_those_in_use_is_refused(design, spec):
    g = m.cell_grid(design, 3)[["trait", "age_group", "arm", "era"]].assign(events=0, patients=1)
    with pytest.raises(ModelDataError, match="era 2 >= n_eras = 2") as err:
        m.model_data(design, g, spec, eras_in_use=2)
    assert err.value.column == "era"
    with pytest.raises(ModelDataError, match="eras_in_use"):
        m.model_data(design, g, spec, eras_in_use=CAPACITY + 1)


def test_vmapped_fits_of_eight_datasets_equal_eight_single_fits(design, spec):
    """The batched program is the same computation as the single one.

    XLA vectorises the batched program across datasets, so a few multiply-adds round in the
    last bit differently (measured: gradients equal to 1e-6, potentials exactly); NUTS's
    trajectories amplify such differences over hundreds of iterations, so long runs agree in
    distribution, not bit for bit. A short run shows the equality at float32 precision.
    """
    # shorter than TINY_NUTS on purpose: equality at float32 holds only over a few iterations
    fitter = Fitter(spec, num_warmup=3, num_samples=10, num_chains=2)
    looks = [_look(design, spec, 1 + i % CAPACITY, 20 + i) for i in range(8)]
    priors = m.model_priors(design)
    keys = [jax.random.key(100 + i) for i in range(8)]
    many = fitter.sample_many(stack_data(looks), priors, keys)
    for i, (data, key) in enumerate(zip(looks, keys, strict=True)):
        one = fitter.sample(data, priors, key)
        for site in ("log_or", "log_or_child", "era_effect", "cutpoints", "trait_shift"):
            np.testing.assert_allclose(
                np.asarray(many.draws[site][i]),
                np.asarray(one.draws[site]),
                rtol=1e-5,
                atol=1e-5,
                err_msg=f"dataset {i}, {site}",
            )
        np.testing.assert_array_equal(many.diverging[i], one.diverging)
    assert fitter.n_traces == 2  # one single and one batched compilation, whatever the data


def test_batched_potential_and_gradient_equal_single_ones(design, spec):
    model = partial(m.joint_model, spec)
    priors = m.model_priors(design)
    looks = [_look(design, spec, 1 + i % CAPACITY, 40 + i) for i in range(8)]
    info = initialize_model(
        jax.random.key(0), model, model_args=(looks[0], priors), dynamic_args=True
    )
    z = info.param_info.z

    def potential(data, z):
        return info.potential_fn(data, priors)(z)

    single = jax.jit(jax.value_and_grad(potential, argnums=1))
    batched = jax.jit(jax.vmap(jax.value_and_grad(potential, argnums=1), in_axes=(0, None)))
    values, grads = batched(stack_data(looks), z)
    for i, data in enumerate(looks):
        v, g = single(data, z)
        assert float(v) == pytest.approx(float(values[i]), rel=1e-6)
        for site in g:
            np.testing.assert_allclose(g[site], grads[site][i], rtol=1e-5, atol=1e-5)


def test_the_pure_sampler_jits_and_vmaps_without_the_fitter(design, spec):
    # shorter than TINY_NUTS: only the shapes of jit(vmap(sampler)) are asserted
    settings = NutsSettings(num_warmup=20, num_samples=10, num_chains=2)
    pure = nuts_sampler(spec, settings)
    looks = stack_data([_look(design, spec, 1, 1), _look(design, spec, 3, 2)])
    keys = jax.random.split(jax.random.key(0), 4).reshape(2, 2)
    out = jax.jit(jax.vmap(pure, in_axes=(0, 0, None)))(keys, looks, m.model_priors(design))
    assert out.draws["log_or"].shape == (2, 2, 10, len(spec.arms))
    assert out.diverging.shape == out.accept_prob.shape == out.num_steps.shape == (2, 2, 10)


def test_prior_predictive_counts_come_from_the_model(design, spec):
    """Predictive on the model itself: the sampled counts have the requested totals."""
    priors = m.model_priors(design)
    data = empty_data(design, spec)
    draws = prior_draws(design, spec, 50, 1, priors)
    totals = np.arange(len(np.asarray(data.arm))) % 7
    counts = simulated_counts(spec, data, priors, draws, totals, jax.random.key(2))
    assert counts.shape == (50, len(totals), 2)
    np.testing.assert_array_equal(counts.sum(axis=-1), np.broadcast_to(totals, (50, len(totals))))
    # deaths follow the drawn probabilities: the pooled rate matches on average
    p = cell_probabilities(spec, draws, data)[..., 1]
    expected = (p * totals).sum()
    assert abs(counts[..., 1].sum() - expected) < 4 * np.sqrt(expected)


def test_cell_data_pytree_is_what_the_sampler_traces(design, spec):
    data = _look(design, spec, 2, 3)
    leaves = jax.tree_util.tree_leaves(data)
    assert len(leaves) == len(m.CellData._fields)
    assert int(np.asarray(data.n_eras)) == 2
    assert isinstance(data.counts, np.ndarray) and not isinstance(data, pd.DataFrame)
