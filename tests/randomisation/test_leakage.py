"""What the allocation ratios reveal: the inversion of the allocation rule, and an observer who
counts allocations."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from palette_core.design.loader import Design
from palette_core.randomisation.allocation import allocation_params, allocation_probabilities
from palette_core.randomisation.leakage import implied_pr_best, observer_estimates

PAST_BURN_IN = jnp.full(5, 10**6)


@pytest.mark.parametrize("pr", [[0.5, 0.3, 0.2, 0.0], [0.4, 0.35, 0.25, 0.0], [0.3, 0.3, 0.2, 0.2]])
def test_the_allocation_ratios_reveal_pr_best_exactly_above_the_floor(design: Design, pr):
    params = allocation_params(design)
    mask = jnp.array([True, True, True, pr[3] > 0])
    probs = allocation_probabilities(jnp.array(pr), mask, PAST_BURN_IN, params)
    assert (probs[1:][mask] > params.floor_per_open_arm).all()
    implied, at_floor = implied_pr_best(probs, mask, params)
    assert not bool(at_floor.any())
    assert np.allclose(np.asarray(implied), pr, atol=1e-5)


def test_an_arm_at_the_floor_is_flagged_and_bounded(design: Design):
    params = allocation_params(design)
    pr = jnp.array([0.9, 0.09, 0.01, 0.0])
    mask = jnp.array([True, True, True, False])
    probs = allocation_probabilities(pr, mask, PAST_BURN_IN, params)
    implied, at_floor = implied_pr_best(probs, mask, params)
    assert bool(at_floor[2]) and not bool(at_floor[0])
    assert float(implied[2]) >= 0.01  # an upper bound, not the value
    assert float(jnp.sum(implied)) == pytest.approx(1.0, abs=1e-5)


def test_more_observed_allocations_narrow_the_observer_estimate(design: Design):
    params = allocation_params(design)
    pr = jnp.array([0.6, 0.3, 0.1, 0.0])
    mask = jnp.array([True, True, True, False])
    few = observer_estimates(pr, mask, params, n_seen=20, n_periods=2000, seed=1)
    many = observer_estimates(pr, mask, params, n_seen=2000, n_periods=2000, seed=1)
    width = lambda t: (t["estimate_q95"] - t["estimate_q05"]).to_numpy()  # noqa: E731
    assert (width(many) < width(few)).all()
    assert many["pr_identifies_leader"].iloc[0] > few["pr_identifies_leader"].iloc[0]
    assert np.allclose(many["estimate_median"], [0.6, 0.3, 0.1], atol=0.05)
