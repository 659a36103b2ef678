"""Decision rules on stored quantities: every threshold boundary, precedence, design changes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from palette_core.analysis.decisions import (
    CAP_REACHED,
    CHILDREN_CONTINUE,
    CLOSE_TO_CHILDREN,
    CONTINUE,
    DECISION_NAMES,
    FUTILITY,
    GRADUATION,
    HARM,
    DecisionParams,
    children_decisions,
    children_harm_arrays,
    decide,
    decide_arrays,
    decision_params,
    evaluate_rules,
)
from palette_core.analysis.quantities import QUANTITY_COLUMNS, summarise
from palette_core.design.loader import Design, modified_design
from palette_core.errors import DecisionInputError

ARM = "mals_anakinra"
NEUTRAL = {"benefit": 0.5, "futility": 0.5, "harm_osfd": 0.5, "harm_mort": 0.5}


def table(design: Design, probs: dict[str, dict[str, float]]) -> pd.DataFrame:
    """A hand-made stored quantities table: ``arm -> {benefit, futility, harm_osfd, harm_mort}``."""
    dec = design.decisions
    rows = []
    for arm, p in probs.items():
        p = {**NEUTRAL, **p}
        for outcome, harm in (("osfd28", p["harm_osfd"]), ("mortality28", p["harm_mort"])):
            rows.append(
                {
                    "analysis": "primary",
                    "population": "all",
                    "outcome": outcome,
                    "trait": design.arm(arm).trait,
                    "arm": arm,
                    "n_draws": 4000,
                    "pr_benefit": p["benefit"] if outcome == "osfd28" else 0.5,
                    "pr_or_gt_ref": p["futility"] if outcome == "osfd28" else 0.5,
                    "pr_harm": harm,
                    "pr_best": 0.5,
                    "or_median": 1.0,
                    "or_low": 0.5,
                    "or_high": 2.0,
                    "ref_benefit": dec.graduation.or_reference,
                    "ref_futility": dec.futility.or_reference,
                    "ref_harm": dec.harm.or_reference,
                }
            )
    return pd.DataFrame(rows, columns=list(QUANTITY_COLUMNS))


def one(design: Design, n_complete: int = 60, n_allocated: int = 80, **probs: float) -> pd.Series:
    """The decision row of one arm with these probabilities and this information."""
    info = {ARM: {"n_complete": n_complete, "n_allocated": n_allocated}}
    return decide(table(design, {ARM: probs}), info, design).iloc[0]


def test_the_rules_read_the_proposed_design_numbers(design: Design):
    # the hand-computed boundaries below assume these values of proposed/decisions.yaml
    # (the graduation threshold is the calibrated one, read from the design where it is used)
    g = design.decisions.graduation.threshold
    assert decision_params(design) == DecisionParams(g, 40, 0.10, 40, 0.95, 20, 150)


# ----------------------------------------------------------------------------- boundaries
def test_graduation_probability_exactly_at_the_threshold_does_not_graduate(design: Design):
    g = design.decisions.graduation.threshold
    assert one(design, benefit=g).decision == "continue"


def test_graduation_probability_just_above_the_threshold_graduates(design: Design):
    g = design.decisions.graduation.threshold
    above = round(g + 1e-7, 7)
    row = one(design, benefit=above)
    assert row.decision == "graduation"
    assert (row.rule, row.outcome, row.quantity) == ("graduation", "osfd28", "Pr(OR > 1)")
    assert (row.value, row.threshold) == (above, g)
    assert row.reason == f"graduate: Pr(OR > 1) on osfd28 = {above} > {g}"


def test_futility_probability_exactly_at_010_does_not_stop(design: Design):
    assert one(design, futility=0.10).decision == "continue"


def test_futility_probability_just_below_010_stops(design: Design):
    row = one(design, futility=0.0999999)
    assert row.decision == "futility"
    assert row.quantity == "Pr(OR > 1.1)"
    assert row.reason.startswith("stop for futility: Pr(OR > 1.1) on osfd28 = 0.0999999 < 0.1")


def test_harm_on_mortality_alone_stops_the_arm(design: Design):
    row = one(design, harm_mort=0.96, harm_osfd=0.2, benefit=0.8)
    assert (row.decision, row.outcome, row.value) == ("harm", "mortality28", 0.96)


def test_harm_on_the_primary_outcome_alone_stops_the_arm(design: Design):
    row = one(design, harm_osfd=0.97)
    assert (row.decision, row.outcome) == ("harm", "osfd28")


def test_harm_exactly_at_095_does_not_stop(design: Design):
    assert one(design, harm_mort=0.95, harm_osfd=0.95).decision == "continue"


def test_harm_on_both_outcomes_reports_the_larger_probability(design: Design):
    row = one(design, harm_mort=0.97, harm_osfd=0.99)
    assert (row.decision, row.outcome, row.value) == ("harm", "osfd28", 0.99)


@pytest.mark.parametrize(("n", "expected"), [(39, "continue"), (40, "graduation")])
def test_graduation_needs_40_complete_outcomes(design: Design, n, expected):
    row = one(design, n_complete=n, benefit=0.99)
    assert row.decision == expected


@pytest.mark.parametrize(("n", "expected"), [(39, "continue"), (40, "futility")])
def test_futility_needs_40_complete_outcomes(design: Design, n, expected):
    assert one(design, n_complete=n, futility=0.01).decision == expected


@pytest.mark.parametrize(("n", "expected"), [(19, "continue"), (20, "harm")])
def test_harm_needs_20_complete_outcomes(design: Design, n, expected):
    assert one(design, n_complete=n, harm_mort=0.99).decision == expected


def test_below_minimum_information_the_reason_says_which_rules_were_not_evaluable(
    design: Design,
):
    row = one(design, n_complete=19, harm_mort=0.99, benefit=0.99)
    assert row.decision == "continue"
    assert row.not_evaluable == (
        "harm on osfd28: 19 complete < 20; harm on mortality28: 19 complete < 20; "
        "graduation on osfd28: 19 complete < 40; futility on osfd28: 19 complete < 40"
    )
    assert "not evaluable: 19 complete < 40 needed" in row.reason


@pytest.mark.parametrize(
    ("allocated", "expected"), [(149, "continue"), (150, "cap_reached"), (151, "cap_reached")]
)
def test_the_cap_is_reached_at_exactly_150_allocated(design: Design, allocated, expected):
    row = one(design, n_allocated=allocated)
    assert row.decision == expected
    if expected == "cap_reached":
        assert row.reason == f"cap reached, inconclusive: {allocated} allocated >= cap 150"


# ----------------------------------------------------------------------------- precedence
@pytest.mark.parametrize(
    ("probs", "allocated", "expected"),
    [
        ({"harm_mort": 0.99, "benefit": 0.99}, 80, "harm"),  # safety before benefit
        ({"harm_mort": 0.99, "futility": 0.01}, 80, "harm"),
        ({"harm_mort": 0.99}, 150, "harm"),
        ({"benefit": 0.99}, 150, "graduation"),  # a conclusive result wins at the cap
        ({"futility": 0.01}, 150, "futility"),
    ],
)
def test_precedence_is_harm_then_graduation_then_futility_then_cap(
    design: Design, probs, allocated, expected
):
    assert one(design, n_allocated=allocated, **probs).decision == expected


def test_graduation_precedes_futility_in_the_core_when_a_design_lets_both_fire():
    # load_design forbids thresholds that let both fire; the core still has a defined order
    params = DecisionParams(0.5, 1, 0.9, 1, 0.95, 1, 150)
    code = decide_arrays(
        jnp.array([0.8]), jnp.array([0.8]), jnp.array([[0.0, 0.0]]), [10], [10], params
    )
    assert int(code[0]) == GRADUATION


# ----------------------------------------------------------------------------- design changes
def test_changing_a_threshold_in_the_design_changes_decisions_without_new_quantities(
    design: Design,
):
    quantities = table(design, {ARM: {"benefit": 0.93}, "mals_mtx100": {"futility": 0.15}})
    before = quantities.copy()
    info = {
        ARM: {"n_complete": 45, "n_allocated": 60},
        "mals_mtx100": {"n_complete": 45, "n_allocated": 60},
    }
    assert list(decide(quantities, info, design)["decision"]) == ["continue", "continue"]

    def lower_bars(d):
        d["graduation"]["threshold"] = 0.90
        d["futility"]["threshold"] = 0.20

    with modified_design(None, "proposed/decisions.yaml", lower_bars) as changed:
        assert list(decide(quantities, info, changed)["decision"]) == ["graduation", "futility"]
    with modified_design(
        None, "proposed/decisions.yaml", lambda d: d["graduation"].update(min_complete=50)
    ) as changed:
        with modified_design(
            changed.root, "proposed/decisions.yaml", lambda d: d["graduation"].update(threshold=0.9)
        ) as changed2:
            assert decide(quantities, info, changed2)["decision"].iloc[0] == "continue"
    pd.testing.assert_frame_equal(quantities, before)  # the stored table was not touched


def test_a_changed_or_reference_needs_a_new_summary(design: Design):
    quantities = table(design, {ARM: {}})
    info = {ARM: {"n_complete": 45, "n_allocated": 60}}
    with modified_design(
        None, "proposed/decisions.yaml", lambda d: d["futility"].update(or_reference=1.2)
    ) as changed:
        with pytest.raises(DecisionInputError, match=r"ref_futility.*summarise the draws again"):
            decide(quantities, info, changed)


# ----------------------------------------------------------------------------- array core
def random_case(design: Design, rng: np.random.Generator):
    """Probabilities and counts for every experimental arm, many of them on a boundary."""
    arms = [a.id for a in design.experimental_arms()]
    n = len(arms)

    def probs(boundary: float) -> np.ndarray:
        p = rng.uniform(0.0, 1.0, n)
        return np.where(rng.uniform(size=n) < 0.3, boundary, p)

    p = decision_params(design)
    benefit = np.where(rng.uniform(size=n) < 0.5, rng.uniform(0.9, 1.0, n), probs(0.95))
    futility = np.where(rng.uniform(size=n) < 0.5, rng.uniform(0.0, 0.2, n), probs(0.10))
    harm = np.stack([probs(0.95), probs(0.95)], axis=1)
    harm = np.where(rng.uniform(size=(n, 2)) < 0.4, rng.uniform(0.9, 1.0, (n, 2)), harm)
    n_complete = rng.choice([0, 19, 20, 39, 40, 41, 100], size=n)
    n_allocated = n_complete + rng.choice([0, 1, p.cap - 100, p.cap - 1, p.cap], size=n)
    return arms, benefit, futility, harm, n_complete, n_allocated


def test_the_array_core_agrees_with_the_table_version(design: Design):
    rng = np.random.default_rng(5)
    params = decision_params(design)
    seen = set()
    for _ in range(40):
        arms, benefit, futility, harm, n_complete, n_allocated = random_case(design, rng)
        quantities = table(
            design,
            {
                a: {
                    "benefit": benefit[i],
                    "futility": futility[i],
                    "harm_osfd": harm[i, 0],
                    "harm_mort": harm[i, 1],
                }
                for i, a in enumerate(arms)
            },
        )
        info = pd.DataFrame({"arm": arms, "n_complete": n_complete, "n_allocated": n_allocated})
        from_table = decide(quantities, info, design)
        codes = decide_arrays(benefit, futility, harm, n_complete, n_allocated, params)
        assert list(from_table["arm"]) == arms
        np.testing.assert_array_equal(from_table["code"], np.asarray(codes))
        assert list(from_table["decision"]) == [DECISION_NAMES[c] for c in np.asarray(codes)]
        seen.update(int(c) for c in np.asarray(codes))
    assert seen == {CONTINUE, HARM, GRADUATION, FUTILITY, CAP_REACHED}


def test_the_array_core_holds_the_boundaries_in_float32(design: Design):
    params = decision_params(design)
    pr = jnp.float32
    g = float(np.float32(params.graduation_threshold))
    above = float(np.nextafter(np.float32(g), np.float32(1)))  # the next float32 above it
    codes = decide_arrays(
        jnp.array([g, above, 0.5, 0.5], dtype=pr),
        jnp.array([0.5, 0.5, 0.10, 0.0999999], dtype=pr),
        jnp.full((4, 2), 0.5, dtype=pr),
        jnp.full(4, 40),
        jnp.full(4, 60),
        params,
    )
    assert [int(c) for c in codes] == [CONTINUE, GRADUATION, CONTINUE, FUTILITY]


def test_the_array_core_jits_and_vmaps_over_trials(design: Design):
    params = decision_params(design)
    rng = np.random.default_rng(3)
    benefit, futility = rng.uniform(size=(2, 50, 4))
    harm = rng.uniform(size=(50, 4, 2))
    n = rng.integers(0, 160, size=(50, 4))
    batched = jax.jit(jax.vmap(decide_arrays, in_axes=(0, 0, 0, 0, 0, None)))(
        benefit, futility, harm, n, n, params
    )
    looped = [
        decide_arrays(benefit[i], futility[i], harm[i], n[i], n[i], params) for i in range(50)
    ]
    np.testing.assert_array_equal(np.asarray(batched), np.stack([np.asarray(c) for c in looped]))


def test_a_nan_probability_never_fires_in_the_core(design: Design):
    nan = jnp.array([jnp.nan])
    code = decide_arrays(nan, nan, jnp.full((1, 2), jnp.nan), [100], [100], decision_params(design))
    assert int(code[0]) == CONTINUE


# ----------------------------------------------------------------------------- the boundary
def test_decisions_from_a_summarised_fit(design: Design):
    rng = np.random.default_rng(11)
    arms = [a.id for a in design.experimental_arms("mals")]
    good, bad = rng.normal(1.0, 0.3, 4000), rng.normal(-0.05, 0.3, 4000)
    osfd = np.stack([good, bad], axis=1)
    death_scale = np.stack([rng.normal(0.0, 0.3, 4000), rng.normal(1.2, 0.3, 4000)], axis=1)
    mortality = -death_scale  # orient(): fewer deaths is benefit
    quantities = summarise({"osfd28": osfd, "mortality28": mortality}, arms, design)
    info = {a: {"n_complete": 50, "n_allocated": 70} for a in arms}
    got = decide(quantities, info, design)
    assert list(got["decision"]) == ["graduation", "harm"]
    rules = evaluate_rules(quantities, info, design)
    assert len(rules) == len(arms) * 5  # harm x 2 outcomes, graduation, futility, cap
    assert set(rules["status"]) <= {"fires", "does not fire", "not evaluable"}


@pytest.mark.parametrize(
    ("info", "match"),
    [
        ({}, "no information given"),
        ({ARM: {"n_complete": -1, "n_allocated": 5}}, "whole number >= 0"),
        ({ARM: {"n_complete": 40.5, "n_allocated": 50}}, "whole number >= 0"),
        ({ARM: {"n_complete": 50, "n_allocated": 40}}, "only 40 patients allocated"),
    ],
)
def test_decide_refuses_bad_information(design: Design, info, match):
    with pytest.raises(DecisionInputError, match=match):
        decide(table(design, {ARM: {}}), info, design)


def test_decide_refuses_a_table_without_a_row_the_rules_need(design: Design):
    quantities = table(design, {ARM: {}})
    quantities = quantities[quantities["outcome"] != "mortality28"]
    info = {ARM: {"n_complete": 50, "n_allocated": 60}}
    with pytest.raises(DecisionInputError, match="outcome 'mortality28'.*no row"):
        decide(quantities, info, design)


def test_decide_refuses_a_value_that_is_not_a_probability(design: Design):
    quantities = table(design, {ARM: {"benefit": 1.2}})
    info = {ARM: {"n_complete": 50, "n_allocated": 60}}
    with pytest.raises(DecisionInputError, match="not a probability"):
        decide(quantities, info, design)


def test_decide_picks_the_population_and_analysis_asked_for(design: Design):
    primary = table(design, {ARM: {"benefit": 0.99}})
    children = primary.assign(population="child", pr_benefit=0.5)
    info = {ARM: {"n_complete": 50, "n_allocated": 60}}
    both = pd.concat([primary, children], ignore_index=True)
    assert decide(both, info, design)["decision"].iloc[0] == "graduation"
    assert decide(both, info, design, population="child")["decision"].iloc[0] == "continue"
    with pytest.raises(DecisionInputError, match="no rows for analysis 'no_borrowing'"):
        decide(both, info, design, analysis="no_borrowing")


# ----------------------------------------------------------------------------- Monte Carlo error
def _with_mcse(design: Design, probs: dict[str, float], mcse: float) -> pd.DataFrame:
    t = table(design, {ARM: probs})
    for col in ("mcse_pr_benefit", "mcse_pr_or_gt_ref", "mcse_pr_harm"):
        t[col] = mcse
    return t


INFO = {ARM: {"n_complete": 60, "n_allocated": 80}}


@pytest.mark.parametrize("value", [0.102, 0.109, 0.091, 0.0999999])
def test_futility_within_3_mcse_of_its_threshold_is_unresolved(design: Design, value):
    """Issue 13: futility of an arm hung on the seed (Pr(OR > 1.1) from 0.102 to 0.109 across
    seeds against 0.10); within 3 MCSE of the threshold it is now unresolved, no decision."""
    assert design.interim_analysis.monte_carlo.mcse_margin == 3.0
    t = _with_mcse(design, {"futility": value}, 0.004)
    rules = evaluate_rules(t, INFO, design)
    fut = rules[rules["rule"] == "futility"].iloc[0]
    assert fut.status == "unresolved" and fut.mcse == 0.004
    assert "lies within 3 MCSE of 0.1" in fut.reason
    row = decide(t, INFO, design).iloc[0]
    assert (row.decision, row.code, row.unresolved) == ("unresolved", -1, "futility on osfd28")
    assert row.reason.startswith("unresolved, no decision: unresolved: Pr(OR > 1.1) on osfd28")


@pytest.mark.parametrize(("value", "decision"), [(0.113, "continue"), (0.087, "futility")])
def test_futility_beyond_3_mcse_is_decided(design: Design, value, decision):
    t = _with_mcse(design, {"futility": value}, 0.004)
    assert decide(t, INFO, design).iloc[0].decision == decision


def test_an_unresolved_rule_that_cannot_change_the_decision_does_not_block_it(design: Design):
    # harm fires clearly; futility is unresolved, but harm comes first either way
    t = _with_mcse(design, {"harm_mort": 0.999, "futility": 0.1}, 0.004)
    row = decide(t, INFO, design).iloc[0]
    assert (row.decision, row.unresolved) == ("harm", "futility on osfd28")


def test_an_unresolved_harm_rule_blocks_a_graduation(design: Design):
    t = _with_mcse(design, {"harm_mort": 0.95, "benefit": 0.999}, 0.004)
    assert decide(t, INFO, design).iloc[0].decision == "unresolved"


def test_an_unknown_mcse_leaves_the_rule_to_its_value(design: Design):
    t = _with_mcse(design, {"futility": 0.0999}, float("nan"))
    assert decide(t, INFO, design).iloc[0].decision == "futility"


def test_a_negative_mcse_is_a_typed_error(design: Design):
    with pytest.raises(DecisionInputError, match="column .mcse_pr_harm.: not a standard error"):
        decide(_with_mcse(design, {}, -0.1), INFO, design)


def test_the_margin_is_design_data(design: Design):
    def wider(data):
        data["monte_carlo"]["mcse_margin"] = 10.0

    with modified_design(None, "proposed/interim_analysis.yaml", wider) as d:
        t = _with_mcse(d, {"futility": 0.07}, 0.004)
        assert decide(t, INFO, d).iloc[0].decision == "unresolved"
    assert decide(_with_mcse(design, {"futility": 0.07}, 0.004), INFO, design).iloc[0].decision == (
        "futility"
    )


# ----------------------------------------------------------------------------- children's rule
def test_the_childrens_rule_fires_on_harm_in_children_with_enough_children(design: Design):
    p = decision_params(design)
    pr = jnp.array([[0.97, 0.10], [0.97, 0.10], [0.10, p.harm_threshold], [np.nan, 0.2]])
    n = jnp.array([p.harm_min_complete, p.harm_min_complete - 1, 50, 50])
    assert children_harm_arrays(pr, n, p).tolist() == [True, False, False, False]


def test_the_childrens_rule_vmaps_over_trials(design: Design):
    p = decision_params(design)
    pr = jnp.array([[[0.99, 0.0]], [[0.5, 0.5]]])
    n = jnp.array([[30], [30]])
    out = jax.jit(jax.vmap(lambda a, b: children_harm_arrays(a, b, p)))(pr, n)
    assert out.tolist() == [[True], [False]]


def test_childrens_decisions_close_an_arm_to_children_when_binding():
    rules = pd.DataFrame(
        {
            "arm": ["a", "a", "b", "b"],
            "outcome": ["osfd28", "mortality28"] * 2,
            "status": ["does not fire", "fires", "not evaluable", "not evaluable"],
            "reason": ["r1", "r2", "r3", "r4"],
        }
    )
    binding = children_decisions(rules, binding=True).set_index("arm")
    assert binding.loc["a", "decision"] == CLOSE_TO_CHILDREN
    assert binding.loc["b", "decision"] == CHILDREN_CONTINUE
    advice = children_decisions(rules, binding=False).set_index("arm")
    assert advice.loc["a", "reason"].startswith("advisory")
    unstated = children_decisions(rules, binding=None).set_index("arm")
    assert unstated.loc["a", "decision"] == CLOSE_TO_CHILDREN
    assert unstated.loc["a", "reason"].startswith("consequence not stated")


def test_childrens_decisions_refuse_a_table_without_status():
    with pytest.raises(DecisionInputError, match="child_rules"):
        children_decisions(pd.DataFrame({"arm": ["a"]}), binding=True)
