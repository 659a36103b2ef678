"""Allocation rules: burn-in, response-adaptive allocation with floor and usual-care rule, fixed
equal allocation; Pr(best); synthetic posterior draws; the allocation record; the example trial.

The RAR properties are checked against an independent float64 reference (bisection on the
scalar ``t``), not only against the closed form the module uses.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.scipy.special import digamma

from palette_core.design.loader import modified_design
from palette_core.errors import AllocationError
from palette_core.randomisation.allocation import (
    PHASE_BURN_IN,
    PHASE_CLOSED,
    PHASE_FIXED,
    PHASE_RAR,
    AllocationParams,
    allocation_params,
    allocation_phase,
    allocation_probabilities,
    allocation_state,
    arm_mask,
    example_trial,
    initial_states,
    pr_best,
    probabilities_dict,
    synthetic_posterior_draws,
    trait_allocation,
    validate_allocation_state,
)
from palette_core.randomisation.randomise import allocation_state_from_dict

TOL = 1e-6  # float32 rounding
PARAMS = AllocationParams(
    burn_in_min_complete_per_arm=20,
    rar_min_open_experimental=3,
    damping_power=0.5,
    floor_per_open_arm=0.10,
)
alloc = jax.jit(allocation_probabilities)
phase_of = jax.jit(allocation_phase)
best_of = jax.jit(pr_best)
draws_of = jax.jit(synthetic_posterior_draws, static_argnames="n_draws")

HINF = "hyperinflammation"
HINF_ARMS = ("hinf_tocilizumab", "hinf_baricitinib", "hinf_anakinra", "hinf_mtx100")
HINF_RATES = {
    "hinf_usual_care": 0.45,
    "hinf_tocilizumab": 0.45,
    "hinf_baricitinib": 0.50,
    "hinf_anakinra": 0.70,
    "hinf_mtx100": 0.45,
}


def _alloc(pb, open_mask, n_complete, params=PARAMS) -> np.ndarray:
    out = alloc(
        jnp.asarray(pb, jnp.float32), jnp.asarray(open_mask, bool), jnp.asarray(n_complete), params
    )
    return np.asarray(out, dtype=np.float64)


def _reference_rar(pb: np.ndarray, open_mask: np.ndarray, power: float, floor: float):
    """Independent float64 reference: bisection for t in c + sum e = 1 with
    e_k = max(f, t d_k), c = max(f, t max d)."""
    d = np.where(open_mask, np.clip(pb, 0, 1) ** power, 0.0)
    if d.sum() == 0:
        d = open_mask.astype(float)
    u = np.concatenate([[d.max()], d])
    mask = np.concatenate([[True], open_mask])

    def g(t: float) -> float:
        return float(np.where(mask, np.maximum(floor, t * u), 0.0).sum())

    lo, hi = 0.0, 1.0
    while g(hi) < 1:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if g(mid) < 1 else (lo, mid)
    return np.where(mask, np.maximum(floor, hi * u), 0.0)


# ----------------------------------------------------------------------------- strategies
@st.composite
def trait_inputs(draw, min_open: int = 0, burn_in_done: bool | None = None):
    """(pr_best, open_mask, n_complete, params) for a trait of 1 to 6 experimental arms."""
    n_arms = draw(st.integers(max(1, min_open), 6))
    open_mask = np.array(draw(st.lists(st.booleans(), min_size=n_arms, max_size=n_arms)))
    if open_mask.sum() < min_open:
        idx = draw(st.permutations(range(n_arms)))[:min_open]
        open_mask[list(idx)] = True
    raw = np.array(
        draw(
            st.lists(
                st.one_of(st.just(0.0), st.floats(1e-6, 1.0)), min_size=n_arms, max_size=n_arms
            )
        )
    )
    raw = np.where(open_mask, raw, draw(st.floats(0.0, 1.0)))  # closed values must not matter
    total = raw[open_mask].sum()
    pb = np.where(open_mask, raw / total if total > 0 else open_mask / max(open_mask.sum(), 1), raw)
    burn_in = draw(st.integers(0, 30))
    if burn_in_done is None:
        counts = draw(st.lists(st.integers(0, 60), min_size=n_arms + 1, max_size=n_arms + 1))
    elif burn_in_done:
        counts = draw(st.lists(st.integers(burn_in, 200), min_size=n_arms + 1, max_size=n_arms + 1))
    else:
        burn_in = max(burn_in, 1)
        counts = draw(st.lists(st.integers(burn_in, 200), min_size=n_arms + 1, max_size=n_arms + 1))
        in_play = [0] + [i + 1 for i in range(n_arms) if open_mask[i]]
        counts[draw(st.sampled_from(in_play))] = draw(st.integers(0, burn_in - 1))
    params = AllocationParams(
        burn_in_min_complete_per_arm=burn_in,
        rar_min_open_experimental=draw(st.integers(2, 4)),
        damping_power=draw(st.floats(0.05, 1.0)),
        floor_per_open_arm=draw(st.floats(0.0, 1.0 / (n_arms + 1))),
    )
    return pb, open_mask, np.array(counts), params


def _rar_params(params: AllocationParams, k: int) -> AllocationParams:
    return params._replace(rar_min_open_experimental=min(params.rar_min_open_experimental, k))


# ----------------------------------------------------------------------------- parameters
def test_parameters_are_read_from_allocation_yaml(design):
    al = design.allocation
    assert allocation_params(design) == AllocationParams(
        al.burn_in_min_complete_per_arm,
        al.rar_min_open_experimental,
        al.damping_power,
        al.floor_per_open_arm,
    )
    assert allocation_params(design) == PARAMS  # what the hand-computed cases below assume


def test_parameters_follow_a_changed_design(design):
    def edit(d):
        d.update(floor_per_open_arm=0.05, damping_power=1.0, burn_in_min_complete_per_arm=7)

    with modified_design(None, "proposed/allocation.yaml", edit) as changed:
        params = allocation_params(changed)
    assert params == AllocationParams(7, 3, 1.0, 0.05)
    pb, mask, n = [0.97, 0.01, 0.01, 0.01], [True] * 4, [10] * 5
    # burn-in of 7 is over with 10 each; with the real design (20) it is not
    np.testing.assert_allclose(
        _alloc(pb, mask, n, params), [0.425, 0.425, 0.05, 0.05, 0.05], atol=TOL
    )
    np.testing.assert_allclose(_alloc(pb, mask, n, allocation_params(design)), 0.2, atol=TOL)


def test_a_floor_change_changes_the_allocation(design):
    """Floor 0.05: the three weak arms (d = 0.1 each, proportional share 0.043) sit at 0.05 and
    usual care and the leader share the remaining 0.85 equally: (0.425, 0.425, 0.05 x 3)."""
    with modified_design(
        None, "proposed/allocation.yaml", lambda d: d.update(floor_per_open_arm=0.05)
    ) as changed:
        params = allocation_params(changed)
    got = _alloc([0.97, 0.01, 0.01, 0.01], [True] * 4, [50] * 5, params)
    np.testing.assert_allclose(got, [0.425, 0.425, 0.05, 0.05, 0.05], atol=TOL)


# ----------------------------------------------------------------------------- hand-computed
def test_hand_computed_case_without_binding_floor():
    """pr_best (0.7, 0.2, 0.1), sqrt damping, floor 0.1, K = 3.

    d = sqrt(p) = (0.836660, 0.447214, 0.316228); usual care is weighted like the leader
    (0.836660). Shares proportional to (0.836660, 0.836660, 0.447214, 0.316228), total
    2.436762: (0.343349, 0.343349, 0.183528, 0.129774). All >= 0.1, so the floor does not bind;
    usual care = 0.343349 = max(1/4, 0.343349).
    """
    got = _alloc([0.7, 0.2, 0.1], [True] * 3, [50] * 4)
    np.testing.assert_allclose(got, [0.343349, 0.343349, 0.183528, 0.129774], atol=2e-6)


def test_hand_computed_case_with_one_floored_arm():
    """pr_best (0.90, 0.09, 0.01), sqrt damping, floor 0.1, K = 3.

    d = (0.948683, 0.3, 0.1). Without the floor: d / (2 x 0.948683 + 0.4) gives 0.043527 for
    the last arm, below 0.1, so it gets 0.1 and the remaining 0.9 is shared in proportion to
    (0.948683, 0.948683, 0.3), total 2.197367: usual care = arm 1 = 0.9 x 0.948683 / 2.197367 =
    0.388563, arm 2 = 0.27 / 2.197367 = 0.122874 (above the floor, so consistent).
    """
    got = _alloc([0.90, 0.09, 0.01], [True] * 3, [50] * 4)
    np.testing.assert_allclose(got, [0.388563, 0.388563, 0.122874, 0.1], atol=2e-6)


def test_hand_computed_case_with_three_floored_arms():
    """pr_best (0.97, 0.01, 0.01, 0.01), K = 4: d = (0.984886, 0.1, 0.1, 0.1). Three arms
    at the floor (0.3 in all); usual care and the leader share 0.7: (0.35, 0.35, 0.1, 0.1, 0.1).
    """
    got = _alloc([0.97, 0.01, 0.01, 0.01], [True] * 4, [50] * 5)
    np.testing.assert_allclose(got, [0.35, 0.35, 0.1, 0.1, 0.1], atol=TOL)


def test_equal_pr_best_gives_equal_allocation():
    np.testing.assert_allclose(_alloc([0.25] * 4, [True] * 4, [50] * 5), 0.2, atol=TOL)


def test_closed_arm_is_skipped_and_rest_is_as_if_it_did_not_exist():
    """A closed arm between open ones: the result is the 3-arm hand case with a 0 inserted."""
    got = _alloc([0.7, 0.6, 0.2, 0.1], [True, False, True, True], [50, 50, 0, 50, 50])
    np.testing.assert_allclose(got, [0.343349, 0.343349, 0.0, 0.183528, 0.129774], atol=2e-6)
    assert got[2] == 0.0


# ----------------------------------------------------------------------------- properties
@settings(max_examples=300, deadline=None)
@given(trait_inputs())
def test_probabilities_sum_to_one_and_closed_arms_get_exactly_zero(case):
    pb, open_mask, n, params = case
    got = _alloc(pb, open_mask, n, params)
    assert np.all(got[1:][~open_mask] == 0.0)
    assert np.all(got >= 0)
    if open_mask.any():
        assert got.sum() == pytest.approx(1.0, abs=TOL)
        assert got[0] > 0
    else:
        assert np.all(got == 0.0)
        assert int(phase_of(open_mask, n, params)) == PHASE_CLOSED


@settings(max_examples=300, deadline=None)
@given(trait_inputs(min_open=2, burn_in_done=True))
def test_after_burn_in_rar_floors_and_the_usual_care_rule_hold(case):
    pb, open_mask, n, params = case
    k = int(open_mask.sum())
    params = _rar_params(params, k)
    assert int(phase_of(open_mask, n, params)) == PHASE_RAR
    got = _alloc(pb, open_mask, n, params)
    c, e = got[0], got[1:][open_mask]
    f = params.floor_per_open_arm
    assert got.sum() == pytest.approx(1.0, abs=TOL)
    assert np.all(e >= f - TOL)
    assert c == e.max()  # usual care matches the largest experimental share ...
    assert c == pytest.approx(max(1 / (k + 1), e.max()), abs=TOL)  # ... which implies the rule
    assert c >= 1 / (k + 1) - TOL


@settings(max_examples=300, deadline=None)
@given(trait_inputs(min_open=2, burn_in_done=True))
def test_rar_is_proportional_to_damped_pr_best_above_the_floor(case):
    """Arms above the floor are proportional to pr_best ** power; floored arms would have had
    less than the floor; and the whole vector equals an independent float64 bisection."""
    pb, open_mask, n, params = case
    params = _rar_params(params, int(open_mask.sum()))
    got = _alloc(pb, open_mask, n, params)
    f, power = params.floor_per_open_arm, params.damping_power
    d = np.where(open_mask, np.float32(pb).astype(np.float64) ** power, 0.0)
    if d.sum() > 0:
        c, dmax = got[0], d.max()
        for k in np.flatnonzero(open_mask):
            if got[k + 1] > f + 1e-5 and c > f + 1e-5:
                assert got[k + 1] * dmax == pytest.approx(c * d[k], abs=1e-5)
            elif c > f + 1e-5:
                assert c * d[k] / dmax <= f + 1e-5
    ref = _reference_rar(np.float32(pb).astype(np.float64), open_mask, power, f)
    np.testing.assert_allclose(got, ref, atol=1e-5)


@settings(max_examples=200, deadline=None)
@given(trait_inputs(min_open=1, burn_in_done=False))
def test_burn_in_gives_equal_allocation_among_usual_care_and_open_arms(case):
    pb, open_mask, n, params = case
    assert int(phase_of(open_mask, n, params)) == PHASE_BURN_IN
    got = _alloc(pb, open_mask, n, params)
    k = int(open_mask.sum())
    expected = np.concatenate([[1.0], open_mask]) / (k + 1)
    np.testing.assert_allclose(got, expected, atol=TOL)


@settings(max_examples=200, deadline=None)
@given(trait_inputs(min_open=1, burn_in_done=True))
def test_fewer_open_arms_than_the_rar_threshold_gives_fixed_equal_allocation(case):
    pb, open_mask, n, params = case
    k = int(open_mask.sum())
    params = params._replace(rar_min_open_experimental=k + 1)
    assert int(phase_of(open_mask, n, params)) == PHASE_FIXED
    got = _alloc(pb, open_mask, n, params)
    np.testing.assert_allclose(got, np.concatenate([[1.0], open_mask]) / (k + 1), atol=TOL)


def test_real_design_uses_fixed_equal_allocation_with_two_open_arms():
    got = _alloc([0.99, 0.01], [True, True], [500, 500, 500])
    np.testing.assert_allclose(got, [1 / 3] * 3, atol=TOL)
    assert int(phase_of(jnp.array([True, True]), jnp.array([500] * 3), PARAMS)) == PHASE_FIXED


def test_a_closed_arm_with_few_outcomes_does_not_hold_the_trait_in_burn_in():
    mask, n = [True, True, True, False], [20, 20, 20, 20, 3]
    assert int(phase_of(jnp.array(mask), jnp.array(n), PARAMS)) == PHASE_RAR
    mask[3] = True  # the same arm, open (e.g. opened late): burn-in again until it has 20
    assert int(phase_of(jnp.array(mask), jnp.array(n), PARAMS)) == PHASE_BURN_IN


def test_usual_care_below_the_minimum_holds_the_trait_in_burn_in():
    n = [19, 50, 50, 50, 50]
    got = _alloc([0.97, 0.01, 0.01, 0.01], [True] * 4, n)
    np.testing.assert_allclose(got, 0.2, atol=TOL)


def test_a_trait_without_open_experimental_arm_gets_all_zeros():
    got = _alloc([0.5, 0.5], [False, False], [50, 50, 50])
    assert np.all(got == 0.0)


# ----------------------------------------------------------------------------- Pr(best)
def test_pr_best_is_close_to_one_for_a_clearly_best_arm():
    rng = np.random.default_rng(1)
    draws = rng.normal([0.0, 0.1, 1.5, -0.2], 0.3, size=(4000, 4))
    pb = np.asarray(best_of(jnp.asarray(draws), jnp.ones(4, bool)))
    assert pb[2] > 0.99
    assert pb.sum() == pytest.approx(1.0, abs=TOL)


def test_pr_best_ignores_a_closed_arm_even_if_it_would_be_best():
    rng = np.random.default_rng(2)
    draws = rng.normal([0.0, 0.5, 3.0], 0.3, size=(2000, 3))
    pb = np.asarray(best_of(jnp.asarray(draws), jnp.array([True, True, False])))
    assert pb[2] == 0.0
    assert pb[1] > 0.8
    assert pb.sum() == pytest.approx(1.0, abs=TOL)


def test_pr_best_resolves_equal_values_in_favour_of_the_first_open_arm():
    draws = jnp.zeros((10, 4))
    assert np.asarray(best_of(draws, jnp.array([False, True, True, True]))).tolist() == [
        0.0,
        1.0,
        0.0,
        0.0,
    ]


def test_pr_best_with_no_open_arm_is_all_zeros():
    assert np.all(np.asarray(best_of(jnp.ones((5, 3)), jnp.zeros(3, bool))) == 0.0)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda n: st.tuples(
            st.lists(st.booleans(), min_size=n, max_size=n), st.integers(0, 2**31 - 1)
        )
    )
)
def test_pr_best_sums_to_one_over_open_arms_and_is_zero_for_closed(case):
    mask, seed = np.array(case[0]), case[1]
    draws = np.random.default_rng(seed).normal(size=(50, len(mask)))
    pb = np.asarray(best_of(jnp.asarray(draws, jnp.float32), jnp.asarray(mask)))
    assert np.all(pb[~mask] == 0.0)
    assert pb.sum() == pytest.approx(1.0 if mask.any() else 0.0, abs=TOL)
    np.testing.assert_allclose(pb * 50, np.round(pb * 50), atol=1e-4)  # shares of 50 draws


# ----------------------------------------------------------------------------- draws
def test_synthetic_draws_have_the_shape_and_the_beta_posterior_mean():
    s, n = jnp.array([10, 10, 30, 0]), jnp.array([40, 40, 40, 5])
    draws = np.asarray(draws_of(jax.random.key(3), s, n, n_draws=40_000), dtype=np.float64)
    assert draws.shape == (40_000, 3)
    a, b = 1.0 + s, 1.0 + n - s  # E[logit] of Beta(a, b) is digamma(a) - digamma(b)
    logit = np.asarray(digamma(a.astype(float)) - digamma(b.astype(float)), dtype=np.float64)
    expected = logit[1:] - logit[0]
    se = draws.std(axis=0) / math.sqrt(draws.shape[0])
    assert np.all(np.abs(draws.mean(axis=0) - expected) < 5 * se)
    assert draws[:, 1].mean() > 1.0  # more good outcomes than usual care: benefit, log OR > 0
    assert draws[:, 2].mean() < -1.0


def test_synthetic_draws_are_reproducible_from_the_key():
    s, n = jnp.array([5, 6, 7]), jnp.array([10, 10, 10])
    one = draws_of(jax.random.key(9), s, n, n_draws=100)
    assert np.array_equal(one, draws_of(jax.random.key(9), s, n, n_draws=100))
    assert not np.array_equal(one, draws_of(jax.random.key(10), s, n, n_draws=100))


# ----------------------------------------------------------------------------- vmap and jit
def _batch(seed: int, size: int = 32, n_arms: int = 4):
    rng = np.random.default_rng(seed)
    open_mask = rng.random((size, n_arms)) < 0.8
    pb = rng.dirichlet(np.ones(n_arms), size=size) * open_mask
    pb = pb / np.maximum(pb.sum(axis=1, keepdims=True), 1e-12)
    n = rng.integers(0, 60, size=(size, n_arms + 1))
    return jnp.asarray(pb, jnp.float32), jnp.asarray(open_mask), jnp.asarray(n)


def test_vmap_over_trials_equals_a_python_loop():
    pb, mask, n = _batch(4)
    batched = jax.vmap(allocation_probabilities, in_axes=(0, 0, 0, None))(pb, mask, n, PARAMS)
    pb_np, mask_np, n_np = np.asarray(pb), np.asarray(mask), np.asarray(n)
    looped = np.stack([alloc(pb_np[i], mask_np[i], n_np[i], PARAMS) for i in range(len(pb_np))])
    np.testing.assert_allclose(np.asarray(batched), looped, atol=1e-7)
    phases = set(np.asarray(jax.vmap(allocation_phase, in_axes=(0, 0, None))(mask, n, PARAMS)))
    assert {PHASE_BURN_IN, PHASE_RAR} <= phases  # the batch exercises both branches


def test_vmap_of_the_whole_look_equals_a_python_loop():
    def look(key, s, n, mask):
        draws = synthetic_posterior_draws(key, s, n, 500)
        pb = pr_best(draws, mask)
        return pb, allocation_probabilities(pb, mask, n, PARAMS)

    keys = jax.random.split(jax.random.key(5), 8)
    n = jnp.full((8, 5), 40)
    s = jax.random.binomial(jax.random.key(6), 40, 0.5, shape=(8, 5)).astype(jnp.int32)
    mask = jnp.ones((8, 4), bool).at[3, 1].set(False)
    pb_b, pr_b = jax.jit(jax.vmap(look))(keys, s, n, mask)
    single = jax.jit(look)
    for i in range(8):
        pb_i, pr_i = single(keys[i], s[i], n[i], mask[i])
        np.testing.assert_allclose(pb_b[i], pb_i, atol=1e-6)
        np.testing.assert_allclose(pr_b[i], pr_i, atol=1e-6)
    assert float(pr_b[3, 2]) == 0.0


def test_jit_compiles_once_for_new_batches_and_parameters_of_the_same_shape():
    traces = []

    def batched(pb, mask, n, params):
        traces.append(1)  # runs only while tracing
        return jax.vmap(allocation_probabilities, in_axes=(0, 0, 0, None))(pb, mask, n, params)

    fn = jax.jit(batched)
    first = fn(*_batch(1), PARAMS)
    second = fn(*_batch(2), PARAMS._replace(floor_per_open_arm=0.05, damping_power=0.7))
    third = fn(*_batch(3), PARAMS._replace(burn_in_min_complete_per_arm=0))
    assert len(traces) == 1
    assert not np.allclose(first, second)
    assert np.allclose(np.asarray(third).sum(axis=1), 1.0, atol=TOL)


# ----------------------------------------------------------------------------- boundary
def test_arm_mask_lists_experimental_arms_in_design_order_with_their_states(design):
    arms = arm_mask(design, HINF, initial_states(design))
    assert arms.control == "hinf_usual_care"
    assert arms.experimental == HINF_ARMS
    assert arms.arm_ids == ("hinf_usual_care", *HINF_ARMS)
    assert arms.open_mask.tolist() == [True] * 4
    hfib = arm_mask(design, "hypofibrinolysis", initial_states(design))
    assert hfib.experimental == ("hfib_sivelestat", "hfib_octaplas", "hfib_plasminogen")
    assert hfib.open_mask.tolist() == [True, False, True]  # Octaplas LG is planned


def test_arm_mask_treats_every_state_but_open_as_not_open(design):
    states = dict.fromkeys(HINF_ARMS, "open") | {"hinf_anakinra": "closed_futility"}
    assert arm_mask(design, HINF, states).open_mask.tolist() == [True, True, False, True]


@pytest.mark.parametrize(
    ("trait", "states", "match"),
    [
        ("hyperinflamation", {}, "trait 'hyperinflamation': not in traits.yaml"),
        (HINF, dict.fromkeys(HINF_ARMS[:3], "open"), "no state given for arm\\(s\\) hinf_mtx100"),
        (HINF, dict.fromkeys(HINF_ARMS, "open") | {"hinf_x": "open"}, "arm 'hinf_x'"),
        (HINF, dict.fromkeys(HINF_ARMS, "open") | {"hinf_mtx100": ""}, "non-empty string"),
        (
            HINF,
            dict.fromkeys(HINF_ARMS, "open") | {"hinf_usual_care": "closed"},
            "usual care is 'closed' while experimental arms are open",
        ),
        (HINF, [("hinf_anakinra", "open")], "expected a mapping"),
    ],
)
def test_arm_mask_rejects_bad_states(design, trait, states, match):
    with pytest.raises(AllocationError, match=match):
        arm_mask(design, trait, states)


def _hinf_draws(n_draws: int = 4000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal([0.0, 0.1, 0.8, -0.1], 0.3, size=(n_draws, 4))


def test_trait_allocation_after_burn_in_is_response_adaptive_and_sums_exactly(design):
    res = trait_allocation(design, HINF, initial_states(design), _hinf_draws(), [40] * 5)
    assert res.phase == "response_adaptive"
    assert list(res.probabilities) == ["hinf_usual_care", *HINF_ARMS]
    assert abs(math.fsum(res.probabilities.values()) - 1.0) < 1e-12
    assert res.probabilities["hinf_anakinra"] == res.probabilities["hinf_usual_care"]
    assert min(res.probabilities.values()) >= 0.1 - TOL
    assert res.pr_best["hinf_anakinra"] > 0.9
    allocation_state(design, {HINF: res.probabilities}, "2026-06-01", "test")  # accepted as is


def test_trait_allocation_phases_for_the_real_traits(design):
    states = initial_states(design)
    burn = trait_allocation(
        design, HINF, states, _hinf_draws(), {a: 5 for a in states if a.startswith("hinf")}
    )
    assert burn.phase == "burn_in"
    assert set(burn.probabilities.values()) == {0.2}
    draws = np.random.default_rng(1).normal(size=(100, 3))
    draws[:, 1] = np.nan  # Octaplas LG is planned: its column is ignored
    hfib = trait_allocation(design, "hypofibrinolysis", states, draws, [50, 50, 0, 50])
    assert hfib.phase == "fixed_equal"
    assert hfib.probabilities["hfib_octaplas"] == 0.0
    assert hfib.probabilities["hfib_sivelestat"] == pytest.approx(1 / 3, abs=1e-12)
    closed = dict(states) | {"mals_mtx100": "closed_harm", "mals_anakinra": "withdrawn"}
    mals = trait_allocation(design, "mals", closed, np.zeros((10, 2)), [50, 50, 50])
    assert mals.phase == "closed"
    assert set(mals.probabilities.values()) == {0.0}


@pytest.mark.parametrize(
    ("draws", "counts", "match"),
    [
        (np.zeros((10, 3)), [40] * 5, "argument 'draws': expected shape \\[n_draws >= 1, 4\\]"),
        (np.zeros((0, 4)), [40] * 5, "expected shape"),
        (np.full((10, 4), np.nan), [40] * 5, "non-finite draws for an open arm"),
        (np.array([["a"] * 4]), [40] * 5, "expected numbers"),
        (np.zeros((10, 4)), [40] * 4, "expected 5 counts"),
        (
            np.zeros((10, 4)),
            [40, 40, -1, 40, 40],
            "arm 'hinf_baricitinib': must be an integer >= 0",
        ),
        (np.zeros((10, 4)), [40, 40, True, 40, 40], "must be an integer"),
        (np.zeros((10, 4)), [40, 40, 2.5, 40, 40], "must be an integer"),
        (np.zeros((10, 4)), {"hinf_usual_care": 40}, "no count for arm\\(s\\) hinf_tocilizumab"),
        (
            np.zeros((10, 4)),
            dict.fromkeys(("hinf_usual_care", *HINF_ARMS), 40) | {"mals_anakinra": 3},
            "arm 'mals_anakinra': not an arm of trait 'hyperinflammation'",
        ),
    ],
)
def test_trait_allocation_rejects_bad_inputs(design, draws, counts, match):
    with pytest.raises(AllocationError, match=match):
        trait_allocation(design, HINF, initial_states(design), draws, counts)


def test_trait_allocation_rejects_an_infeasible_floor(design):
    params = PARAMS._replace(floor_per_open_arm=0.25)
    with pytest.raises(AllocationError, match="floor 0.25 x 5 arms exceeds 1"):
        trait_allocation(design, HINF, initial_states(design), _hinf_draws(), [40] * 5, params)


def test_probabilities_dict_renormalises_float32_rounding_only(design):
    probs = _alloc([0.7, 0.2, 0.05, 0.05], [True] * 4, [50] * 5)
    out = probabilities_dict(design, HINF, np.float32(probs))
    assert abs(math.fsum(out.values()) - 1.0) < 1e-12
    with pytest.raises(AllocationError, match="sum to 0.8999"):
        probabilities_dict(design, HINF, [0.5, 0.1, 0.1, 0.1, 0.1])
    with pytest.raises(AllocationError, match="expected 5 probabilities"):
        probabilities_dict(design, HINF, [0.5, 0.5])
    with pytest.raises(AllocationError, match="finite and >= 0"):
        probabilities_dict(design, HINF, [1.2, -0.2, 0, 0, 0])


# ----------------------------------------------------------------------------- the record
VALID = {
    HINF: {
        "hinf_usual_care": 0.35,
        "hinf_tocilizumab": 0.1,
        "hinf_baricitinib": 0.1,
        "hinf_anakinra": 0.35,
        "hinf_mtx100": 0.1,
    },
    "hypofibrinolysis": {
        "hfib_usual_care": 1 / 3,
        "hfib_sivelestat": 1 / 3,
        "hfib_octaplas": 0.0,
        "hfib_plasminogen": 1 / 3,
    },
}


def test_allocation_state_is_json_and_survives_a_round_trip(design):
    state = allocation_state(design, VALID, "2026-06-01", "interim look 1")
    assert state["version"] == 1
    assert state["effective_from"] == "2026-06-01"
    assert list(state["traits"]) == [HINF, "hypofibrinolysis"]
    assert validate_allocation_state(design, json.loads(json.dumps(state))) == state


def test_allocation_state_accepts_dates_and_lists_traits_in_design_order(design):
    state = allocation_state(design, dict(reversed(VALID.items())), date(2026, 6, 1), "x")
    assert state["effective_from"] == "2026-06-01"
    assert list(state["traits"]) == [HINF, "hypofibrinolysis"]


def test_allocation_state_is_readable_by_the_randomiser(design):
    """The record is what ``palette_core.randomisation.randomise`` reads."""
    state = allocation_state(design, VALID, "2026-06-01", "interim look 1")
    read = allocation_state_from_dict(json.loads(json.dumps(state)), design)
    assert {t: dict(p) for t, p in read.traits.items()} == state["traits"]


def _with(trait: str, arm: str, value) -> dict:
    return {t: dict(p) | ({arm: value} if t == trait else {}) for t, p in VALID.items()}


@pytest.mark.parametrize(
    ("traits", "effective", "source", "match"),
    [
        (_with(HINF, "hinf_mtx100", 0.1 + 1e-8), "2026-06-01", "s", "sum to 1.00000001"),
        (_with(HINF, "mals_anakinra", 0.0), "2026-06-01", "s", "an arm of trait 'mals'"),
        (_with(HINF, "hinf_nope", 0.0), "2026-06-01", "s", "not in arms.yaml"),
        (_with(HINF, "hinf_mtx100", -0.1), "2026-06-01", "s", "number in \\[0, 1\\]"),
        (_with(HINF, "hinf_mtx100", "0.1"), "2026-06-01", "s", "number in \\[0, 1\\]"),
        (_with(HINF, "hinf_mtx100", math.nan), "2026-06-01", "s", "number in \\[0, 1\\]"),
        ({"sepsis": {"x": 1.0}}, "2026-06-01", "s", "trait 'sepsis': not in traits.yaml"),
        ({"mals": {"mals_anakinra": 1.0}}, "2026-06-01", "s", "usual care must have a positive"),
        (
            {"mals": {"mals_usual_care": 0.0, "mals_anakinra": 1.0}},
            "2026-06-01",
            "s",
            "arm 'mals_usual_care': usual care must have a positive probability",
        ),
        ({}, "2026-06-01", "s", "field 'traits': expected a non-empty mapping"),
        (VALID, "1 June 2026", "s", "field 'effective_from'"),
        (VALID, "2026-06-01T00:00:00", "s", "ISO 8601 date \\(YYYY-MM-DD\\)"),
        (VALID, datetime(2026, 6, 1, 12, 0), "s", "field 'effective_from'"),
        (VALID, "2026-06-01", " ", "field 'source'"),
    ],
)
def test_allocation_state_rejects_bad_records(design, traits, effective, source, match):
    with pytest.raises(AllocationError, match=match):
        allocation_state(design, traits, effective, source)


def test_validate_allocation_state_rejects_a_wrong_version_or_extra_field(design):
    state = allocation_state(design, VALID, "2026-06-01", "s")
    with pytest.raises(AllocationError, match="field 'version': expected 1"):
        validate_allocation_state(design, state | {"version": 2})
    with pytest.raises(AllocationError, match="unknown key\\(s\\) \\['seed'\\]"):
        validate_allocation_state(design, state | {"seed": 1})


# ----------------------------------------------------------------------------- example trial
@pytest.fixture(scope="module")
def example(design):
    return example_trial(design, HINF, 2026, HINF_RATES, 400, 20)


def test_example_trial_is_shaped_for_plotting(example):
    frame = example
    assert list(frame.columns) == [
        "look",
        "n_patients",
        "arm",
        "role",
        "probability",
        "pr_best",
        "n_allocated",
        "phase",
    ]
    assert frame["look"].nunique() == 21 and len(frame) == 21 * 5
    assert frame.groupby("look")["probability"].sum().between(1 - TOL, 1 + TOL).all()
    assert (
        frame.groupby("look")["n_allocated"].sum() == frame.groupby("look")["n_patients"].first()
    ).all()
    assert frame.loc[frame["role"] == "control", "pr_best"].isna().all()


def test_example_trial_starts_in_burn_in_and_adapts_towards_the_best_arm(example):
    frame = example
    first = frame[frame["look"] == 0]
    assert (first["phase"] == "burn_in").all()
    assert np.allclose(first["probability"], 0.2)
    last = frame[frame["look"] == frame["look"].max()].set_index("arm")
    assert (last["phase"] == "response_adaptive").all()
    experimental = last.loc[list(HINF_ARMS), "probability"]
    assert experimental.idxmax() == "hinf_anakinra"
    assert last.loc["hinf_usual_care", "probability"] == experimental.max()
    assert (experimental >= 0.1 - TOL).all()


def test_example_trial_is_reproducible_from_its_seed(design, example):
    frame = example
    again = example_trial(design, HINF, 2026, HINF_RATES, 400, 20)
    assert again.equals(frame)
    other = example_trial(design, HINF, 2027, HINF_RATES, 400, 20)
    assert not other["n_allocated"].equals(frame["n_allocated"])


def test_example_trial_never_allocates_a_planned_arm(design):
    rates = {"hfib_usual_care": 0.4, "hfib_sivelestat": 0.5, "hfib_plasminogen": 0.5}
    frame = example_trial(design, "hypofibrinolysis", 1, rates, 95, 20, n_draws=200)
    octaplas = frame[frame["arm"] == "hfib_octaplas"]
    assert (octaplas["probability"] == 0).all() and (octaplas["n_allocated"] == 0).all()
    assert frame["n_patients"].max() == 95  # a last, shorter block
    assert set(frame["phase"]) <= {"burn_in", "fixed_equal"}  # two open arms: never adaptive


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"true_rates": {"hinf_usual_care": 0.5}}, "no rate for arm\\(s\\) hinf_tocilizumab"),
        ({"true_rates": HINF_RATES | {"hinf_mtx100": 1.5}}, "must be a probability"),
        ({"true_rates": HINF_RATES | {"mals_mtx100": 0.5}}, "not an arm of trait"),
        ({"n_patients": 0}, "argument 'n_patients': must be an integer >= 1"),
        ({"look_every": 2.5}, "argument 'look_every'"),
        (
            {"states": dict.fromkeys(HINF_ARMS, "planned")},
            "no open experimental arm",
        ),
    ],
)
def test_example_trial_rejects_bad_arguments(design, kwargs, match):
    args = {"true_rates": HINF_RATES, "n_patients": 40, "look_every": 20} | kwargs
    with pytest.raises(AllocationError, match=match):
        example_trial(design, HINF, 0, **args)


def test_arms_added_by_amendment_are_allocated_from_the_platform_state():
    import datetime as dt

    from palette_core.design.loader import load_design
    from palette_core.randomisation.allocation import arm_mask_from_state
    from palette_core.randomisation.lifecycle import add_arm, initial_state, open_arm

    design = load_design()
    state = initial_state(design)
    new = design.arm("hinf_baricitinib").model_dump(by_alias=True)
    new.update(id="hypo_pandemic_x", trait="hypoinflammation", name="Pandemic drug X")
    new["availability"] = {"initial_state": "planned", "opens_when": "amendment 3 approved"}
    state = add_arm(state, new, dt.date(2027, 1, 5), "amendment 3")
    state = open_arm(state, "hypo_pandemic_x", dt.date(2027, 2, 1), "supply in place")
    arms = arm_mask_from_state(state, "hypoinflammation")
    assert arms.experimental[-1] == "hypo_pandemic_x"
    assert arms.open_mask.tolist() == [True, True, True]
    assert arms.control == "hypo_usual_care"
