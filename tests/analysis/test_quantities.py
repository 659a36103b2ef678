"""Posterior quantities on draws: probabilities, OR summaries, orientation, the stored table."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from palette_core.analysis.quantities import (
    QUANTITY_COLUMNS,
    or_summary,
    orient,
    pr_best,
    pr_or_greater,
    pr_or_less,
    summarise,
)
from palette_core.design.loader import Design
from palette_core.errors import DecisionInputError
from palette_core.randomisation import allocation


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def mc_tolerance(p: float, n: int) -> float:
    """Five Monte Carlo standard errors (plus float32 rounding)."""
    return 5.0 * math.sqrt(p * (1.0 - p) / n) + 1e-6


@pytest.fixture(scope="module")
def normal_draws() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """200,000 draws of three arms, log OR ~ Normal(mu, sd) independently."""
    mu = np.array([0.0, 0.3, -0.5])
    sd = np.array([0.2, 0.25, 0.4])
    rng = np.random.default_rng(20261105)
    return rng.normal(mu, sd, size=(200_000, 3)), mu, sd


def mals_arms(design: Design) -> list[str]:
    return [a.id for a in design.experimental_arms("mals")]


@pytest.mark.parametrize("reference", [1.0, 1.1, 0.8])
def test_pr_or_greater_matches_the_normal_cdf_within_monte_carlo_error(normal_draws, reference):
    draws, mu, sd = normal_draws
    got = np.asarray(pr_or_greater(draws, reference))
    for j in range(3):
        expected = 1.0 - normal_cdf((math.log(reference) - mu[j]) / sd[j])
        assert abs(got[j] - expected) < mc_tolerance(expected, draws.shape[0])


def test_pr_or_less_matches_the_normal_cdf_and_complements_pr_or_greater(normal_draws):
    draws, mu, sd = normal_draws
    less = np.asarray(pr_or_less(draws, 1.0))
    for j in range(3):
        expected = normal_cdf(-mu[j] / sd[j])
        assert abs(less[j] - expected) < mc_tolerance(expected, draws.shape[0])
    np.testing.assert_allclose(less + np.asarray(pr_or_greater(draws, 1.0)), 1.0, atol=1e-6)


def test_a_draw_exactly_at_the_reference_counts_as_neither_greater_nor_less():
    draws = np.array([[0.0], [0.0], [1.0], [-1.0]])  # log OR 0 is OR exactly 1
    assert float(pr_or_greater(draws, 1.0)[0]) == 0.25
    assert float(pr_or_less(draws, 1.0)[0]) == 0.25


def test_or_summary_of_a_lognormal_or_recovers_its_median_and_95_interval(normal_draws):
    draws, mu, sd = normal_draws
    summ = or_summary(draws)
    np.testing.assert_allclose(np.asarray(summ.median), np.exp(mu), rtol=0.01)
    np.testing.assert_allclose(np.asarray(summ.low), np.exp(mu - 1.959964 * sd), rtol=0.02)
    np.testing.assert_allclose(np.asarray(summ.high), np.exp(mu + 1.959964 * sd), rtol=0.02)


def test_or_summary_is_exact_on_a_hand_computed_sample():
    # 41 draws of the OR 1.0, 1.1, ..., 5.0: median is the 21st, the 2.5 % quantile sits at
    # position 0.025 * 40 = 1 (the 2nd draw), the 97.5 % one at 39 (the 40th).
    ors = np.round(np.arange(10, 51) / 10, 1)
    summ = or_summary(np.log(ors)[:, None])
    assert float(summ.median[0]) == pytest.approx(3.0, rel=1e-6)
    assert float(summ.low[0]) == pytest.approx(1.1, rel=1e-6)
    assert float(summ.high[0]) == pytest.approx(4.9, rel=1e-6)


def test_orient_flips_mortality_and_keeps_organ_support_free_days(design: Design):
    draws = np.array([[0.4, -0.2]])
    np.testing.assert_array_equal(orient(draws, design.outcome("mortality28")), -draws)
    np.testing.assert_array_equal(orient(draws, design.outcome("osfd28")), draws)


def test_fewer_deaths_on_the_death_scale_becomes_benefit_after_orientation(design: Design):
    # log OR of death ~ N(-1, 0.2): death is clearly reduced (OR of death about 0.37)
    rng = np.random.default_rng(7)
    death_scale = rng.normal(-1.0, 0.2, size=(4000, 2))
    arms = mals_arms(design)
    table = summarise(
        {"mortality28": orient(death_scale, design.outcome("mortality28"))}, arms, design
    )
    assert (table["pr_benefit"] > 0.999).all()
    assert (table["pr_harm"] < 0.001).all()
    assert (table["or_median"] > 2.0).all()  # OR of benefit = 1 / OR of death


def test_orient_refuses_an_outcome_id_instead_of_the_design_entry():
    with pytest.raises(DecisionInputError, match="argument 'outcome'"):
        orient(np.zeros((2, 2)), "mortality28")  # type: ignore[arg-type]


def test_pr_best_is_the_allocation_function():
    assert pr_best is allocation.pr_best


def test_pure_functions_vmap_over_trials(normal_draws):
    draws = normal_draws[0][:1000].reshape(10, 100, 3)
    batched = jax.vmap(pr_or_greater, in_axes=(0, None))(draws, 1.1)
    looped = np.stack([np.asarray(pr_or_greater(d, 1.1)) for d in draws])
    np.testing.assert_allclose(np.asarray(batched), looped)
    summ = jax.jit(jax.vmap(or_summary))(draws)
    np.testing.assert_allclose(np.asarray(summ.median[3]), np.asarray(or_summary(draws[3]).median))


def test_summarise_gives_one_row_per_outcome_and_arm_with_the_design_references(
    design: Design, normal_draws
):
    arms = mals_arms(design)
    draws = normal_draws[0][:5000, : len(arms)]
    table = summarise({"mortality28": draws, "osfd28": draws[:3000]}, arms, design)
    assert tuple(table.columns) == QUANTITY_COLUMNS
    assert list(table["outcome"]) == ["osfd28"] * len(arms) + ["mortality28"] * len(arms)
    assert list(table["arm"]) == arms * 2
    assert list(table["n_draws"]) == [3000] * len(arms) + [5000] * len(arms)
    assert (table["ref_benefit"] == design.decisions.graduation.or_reference).all()
    assert (table["ref_futility"] == design.decisions.futility.or_reference).all()
    assert (table["ref_harm"] == design.decisions.harm.or_reference).all()
    assert (table["trait"] == "mals").all()


def test_summarise_agrees_with_the_pure_jax_functions(design: Design, normal_draws):
    arms = mals_arms(design)
    draws = normal_draws[0][:5000, : len(arms)]
    table = summarise({"osfd28": draws}, arms, design)
    dec = design.decisions
    np.testing.assert_allclose(
        table["pr_benefit"], pr_or_greater(draws, dec.graduation.or_reference), atol=1e-6
    )
    np.testing.assert_allclose(
        table["pr_or_gt_ref"], pr_or_greater(draws, dec.futility.or_reference), atol=1e-6
    )
    np.testing.assert_allclose(
        table["pr_harm"], pr_or_less(draws, dec.harm.or_reference), atol=1e-6
    )
    summ = or_summary(draws)
    np.testing.assert_allclose(table["or_median"], summ.median, rtol=1e-5)
    np.testing.assert_allclose(table["or_low"], summ.low, rtol=1e-5)
    np.testing.assert_allclose(table["or_high"], summ.high, rtol=1e-5)
    np.testing.assert_allclose(table["pr_best"], pr_best(draws, np.ones(len(arms), bool)))


def test_summarise_stores_an_exact_fraction_so_a_boundary_compares_equal(design: Design):
    arms = mals_arms(design)
    draws = np.ones((20, len(arms)))
    draws[0] = -1.0  # 19 of 20 draws above OR 1: exactly 0.95
    table = summarise({"osfd28": draws}, arms, design)
    assert (table["pr_benefit"] == 0.95).all()


def test_pr_best_is_computed_within_each_trait_among_open_arms(design: Design, normal_draws):
    mals = mals_arms(design)
    hinf = [a.id for a in design.experimental_arms("hyperinflammation")]
    arms = mals + hinf
    draws = normal_draws[0][:4000, [j % 3 for j in range(len(arms))]]
    closed = hinf[-1]
    table = summarise({"osfd28": draws}, arms, design, open_arms=set(arms) - {closed})
    for trait, group in table.groupby("trait"):
        open_rows = group[group["arm"] != closed]
        assert open_rows["pr_best"].sum() == pytest.approx(1.0, abs=1e-6), trait
    assert math.isnan(table.loc[table["arm"] == closed, "pr_best"].iloc[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"draws_by_outcome": {"lactate": np.zeros((5, 2))}}, "lactate"),
        ({"draws_by_outcome": {"osfd28": np.zeros((5, 3))}}, r"shape \[n_draws, 2\]"),
        ({"draws_by_outcome": {"osfd28": np.full((5, 2), np.nan)}}, "finite"),
        ({"arm_ids": ["mals_usual_care", "mals_anakinra"]}, "usual care"),
        ({"arm_ids": ["mals_anakinra", "mals_anakinra"]}, "more than once"),
        ({"population": "elderly"}, "population"),
        ({"open_arms": ["hinf_anakinra"]}, "not among arm_ids"),
    ],
)
def test_summarise_refuses_bad_input_naming_what_is_wrong(design: Design, kwargs, match):
    args = {
        "draws_by_outcome": {"osfd28": np.zeros((5, 2))},
        "arm_ids": mals_arms(design),
        "design": design,
    }
    args.update(kwargs)
    with pytest.raises(DecisionInputError, match=match):
        summarise(**args)


# ----------------------------------------------------------------------------- Monte Carlo error
def test_every_decision_probability_carries_its_mcse(design):
    """Issue 13: decision probabilities had no Monte Carlo error."""
    import arviz as az

    rng = np.random.default_rng(3)
    arms = [a.id for a in design.experimental_arms("mals")]
    draws = rng.normal(0.1, 0.3, size=(4 * 500, len(arms)))
    q = summarise({"osfd28": draws}, arms, design, chains=4)
    assert (q["n_chains"] == 4).all()
    by_chain = draws.reshape(4, 500, len(arms))
    for col, ind in (
        ("mcse_pr_benefit", by_chain > 0.0),
        ("mcse_pr_or_gt_ref", by_chain > np.log(1.1)),
        ("mcse_pr_harm", by_chain < 0.0),
    ):
        expected = az.mcse(az.convert_to_dataset({"x": ind.astype(float)}), method="mean")["x"]
        np.testing.assert_allclose(q[col], expected.values, rtol=1e-12)
        p = q[col.removeprefix("mcse_")]
        # independent draws: close to the binomial standard error
        np.testing.assert_allclose(q[col], np.sqrt(p * (1 - p) / 2000), rtol=0.25)


def test_a_constant_indicator_has_mcse_zero_and_too_few_draws_nan(design):
    arms = [a.id for a in design.experimental_arms("mals")]
    q = summarise({"osfd28": np.full((8, len(arms)), 2.0)}, arms, design, chains=2)
    assert (q["pr_benefit"] == 1.0).all() and (q["mcse_pr_benefit"] == 0.0).all()
    q = summarise({"osfd28": np.full((6, len(arms)), 2.0)}, arms, design, chains=2)
    assert q["mcse_pr_benefit"].isna().all()


def test_draws_that_do_not_split_into_the_chains_are_refused(design):
    arms = [a.id for a in design.experimental_arms("mals")]
    with pytest.raises(DecisionInputError, match="cannot be 3 chains"):
        summarise({"osfd28": np.zeros((10, len(arms)))}, arms, design, chains=3)
