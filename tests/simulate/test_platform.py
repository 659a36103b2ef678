"""The PALETTE trial program: a tiny simulation of the real design, checked for the trial's rules.

One small run (a few trials of two scenarios, 400 patients, two looks) serves every test of the
module; it runs the same code as the full-size operating characteristics.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

from palette_core.errors import ModelDataError, ScenarioError
from palette_core.randomisation import lifecycle as lc
from palette_core.randomisation.randomise import default_allocation_state, open_traits_now
from palette_core.simulate import engine, metrics
from palette_core.simulate import platform as pf

SETTINGS = {"n_patients": 400, "pool_size": 3000, "n_draws": 200, "laplace_rule": [2, 2, 2]}
USUAL_CARE = {
    "adult": {"mortality28": 0.25, "no_support": 0.10, "support_days_mean": 7.0,
              "support_days_dispersion": 1.5},
    "child": {"mortality28": 0.10, "no_support": 0.15, "support_days_mean": 5.0,
              "support_days_dispersion": 1.5},
}  # fmt: skip


def _scenario(name: str, **extra) -> dict:
    return {
        "name": name,
        "description": name,
        "rationale": "test",
        "accrual": {"per_week": 20, "ramp_up_weeks": 8},
        "usual_care": USUAL_CARE,
        **extra,
    }


def _write(tmp: Path, scenarios: list[dict], settings: dict | None = None) -> Path:
    path = tmp / "platform.yaml"
    doc = {"design": pf.PROGRAM, "settings": settings or SETTINGS, "scenarios": scenarios}
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = _write(
        tmp_path_factory.mktemp("platform"),
        [
            _scenario("null"),
            _scenario(
                "harm", odds_ratios={"hypo_gcsf": 0.3, "cort_hydrocortisone": 0.3},
                opens_at_week={"hfib_octaplas": 10},
            ),
        ],
    )  # fmt: skip
    scenarios = engine.load_scenarios(path)
    result = engine.run_scenarios(
        scenarios, 4, 7, chunk_size=4, scheduler=engine.IN_PROCESS, keep_looks=True,
        progress=False,
    )  # fmt: skip
    return scenarios, result


def _cols(frame, prefix):
    return [c for c in frame.columns if c.startswith(prefix + "[")]


def test_every_trial_enrols_the_trials_size_in_two_looks(run):
    scenarios, result = run
    t = result.trials
    assert len(t) == 8
    assert (t["n_randomised"] <= SETTINGS["n_patients"]).all()
    looks = result.looks
    assert looks.groupby(["scenario", "trial"])["look"].max().max() == 1
    first = looks[looks["look"] == 0]
    # the first look comes when 200 patients have a complete outcome
    assert (first["n_complete"] == 200).all()
    assert (
        looks.groupby(["scenario", "trial"])["day"].apply(lambda d: d.is_monotonic_increasing)
    ).all()


def test_suspended_and_adult_only_arms_get_no_patient_they_cannot_receive(run, design):
    _, result = run
    t = result.trials
    # whole arms blocked by a registry finding (RF-01, RF-02) are suspended: nobody
    for arm in ("hinf_tocilizumab", "cort_hc_fc"):
        assert (t[f"n_allocated[{arm}]"] == 0).all()
    # an arm blocked for children, or not open to them, never receives a child
    for arm in design.experimental_arms():
        child_ok = "child" in design.arm_age_groups(arm) and not design.dose_blocks(arm.id, "child")
        column = f"n_allocated_stratum[{arm.id}/child]"
        if not child_ok:
            assert (t[column] == 0).all(), arm.id
    # children are randomised in the traits open to them (usual care at least)
    assert t[_cols(t, "n_usual_care_stratum")].to_numpy().sum() > 0


def test_allocation_probabilities_sum_to_one_in_live_traits(run, design):
    _, result = run
    looks = result.looks
    for trait in design.trait_ids:
        cols = [c for c in looks.columns if c.startswith(f"allocation[{trait}/")]
        total = looks[cols].sum(axis=1).to_numpy()
        assert np.all(np.isclose(total, 1.0, atol=1e-5) | np.isclose(total, 0.0))


def test_decisions_respect_minimum_information_and_only_open_arms_decide(run, design):
    _, result = run
    looks = result.looks
    dp = design.decisions
    for arm in design.experimental_arms():
        decided = looks[f"decision[{arm.id}]"].astype(str)
        n = looks[f"n_complete_arm[{arm.id}]"]
        harm = decided == "harm"
        assert (n[harm] >= dp.harm.min_complete).all()
        assert (n[decided.isin(["graduation", "futility"])] >= dp.graduation.min_complete).all()
    assert "suspended" in set(result.trials["final_state[hinf_tocilizumab]"].astype(str))


def test_looks_near_a_threshold_are_flagged_and_counted(run, design):
    _, result = run
    looks = result.looks  # conducted looks only
    dp, band = design.decisions, pf.PlatformSettings().near_threshold_band
    any_near = np.zeros(len(looks), bool)
    for arm in design.experimental_arms():
        n = looks[f"n_complete_arm[{arm.id}]"].to_numpy()
        near = (
            (np.abs(looks[f"pr_benefit[{arm.id}]"] - dp.graduation.threshold) < band)
            & (n >= dp.graduation.min_complete)
        ) | (
            (np.abs(looks[f"pr_futility[{arm.id}]"] - dp.futility.threshold) < band)
            & (n >= dp.futility.min_complete)
        )
        flagged = looks[f"near_threshold[{arm.id}]"].to_numpy().astype(bool)
        # every flag is explained by a probability near a threshold (harm included) ...
        harm = np.abs(
            looks[[f"pr_harm_osfd[{arm.id}]", f"pr_harm_mortality[{arm.id}]"]] - dp.harm.threshold
        )
        near_any = (
            near.to_numpy() | ((harm.min(axis=1) < band) & (n >= dp.harm.min_complete)).to_numpy()
        )
        assert not np.any(flagged & ~near_any)
        any_near |= flagged
    per_trial = looks.assign(near=any_near).groupby(["scenario", "trial"])["near"].sum()
    trials = result.trials.set_index(["scenario", "trial"])
    np.testing.assert_array_equal(
        trials.loc[per_trial.index, "n_near_threshold_looks"], per_trial.to_numpy()
    )
    counted = looks.groupby(["scenario", "trial"]).size()
    np.testing.assert_array_equal(trials.loc[counted.index, "n_looks"], counted.to_numpy())


def test_a_planned_arm_opens_on_its_week(run):
    _, result = run
    t = result.trials
    harm = t[t["scenario"] == "harm"]
    null = t[t["scenario"] == "null"]
    assert (null["n_allocated[hfib_octaplas]"] == 0).all()  # planned, never opened
    assert set(null["final_state[hfib_octaplas]"].astype(str)) == {"planned"}
    assert (harm["final_state[hfib_octaplas]"].astype(str) != "planned").all()


def test_a_harmful_arm_does_worse_and_is_stopped_more_often(run):
    _, result = run
    t = result.trials
    looks = result.looks
    harm = looks[looks["scenario"] == "harm"]
    null = looks[looks["scenario"] == "null"]
    arm = "hypo_gcsf"
    assert harm[f"pr_harm_osfd[{arm}]"].mean() > null[f"pr_harm_osfd[{arm}]"].mean()
    est = t.groupby("scenario")[f"estimate_mean[{arm}]"].mean()
    assert est["harm"] < est["null"]


def test_arrivals_follow_the_ramp_and_the_plateau():
    per_day, ramp = 2.0, 50.0
    days = np.asarray(pf._arrivals(jax.random.key(3), 20000, per_day, ramp))
    assert np.all(np.diff(days) >= 0)
    in_ramp = np.sum(days < ramp)
    assert abs(in_ramp - per_day * ramp / 2) < 4 * np.sqrt(per_day * ramp / 2)
    plateau = (np.sum(days < ramp + 1000) - in_ramp) / 1000
    assert abs(plateau - per_day) < 0.1


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"odds_ratios": {"nope": 1.2}}, "odds_ratios.nope"),
        ({"odds_ratios": {"hypo_gcsf": -1.0}}, "odds_ratios.hypo_gcsf"),
        ({"opens_at_week": {"hypo_gcsf": 3}}, "opens_at_week.hypo_gcsf"),
        ({"trait_log_odds": {"sepsis": 0.1}}, "trait_log_odds.sepsis"),
        ({"usual_care": {"adult": USUAL_CARE["adult"]}}, "usual_care"),
        ({"allocation": "thompson"}, "allocation"),
        ({"joins_at_week": {"hfib_octaplas": 10}}, "joins_at_week.hfib_octaplas"),
        ({"joins_at_week": {"hypo_gcsf": -1.0}}, "joins_at_week.hypo_gcsf"),
        ({"joins_at_week": {"nope": 3}}, "joins_at_week.nope"),
        ({"thresholds": {"graduation": 1.5}}, "thresholds.graduation"),
    ],
)
def test_a_bad_scenario_names_file_entry_and_field(tmp_path, extra, field):
    path = _write(tmp_path, [{**_scenario("bad"), **extra}])
    with pytest.raises(ScenarioError) as err:
        engine.load_scenarios(path)
    assert err.value.field == field
    assert err.value.entry == "bad"
    assert str(path) in str(err.value)


def test_a_bad_quadrature_rule_is_a_typed_error(tmp_path):
    path = _write(tmp_path, [_scenario("ok")], {**SETTINGS, "laplace_rule": [0, 3, 3]})
    with pytest.raises(ScenarioError) as err:
        engine.load_scenarios(path)
    assert "laplace_rule" in str(err.value) and str(path) in str(err.value)


def test_the_shipped_scenario_file_is_valid(design):
    scenarios = engine.load_scenarios(design.data_root / "scenarios" / "platform.yaml")
    assert [s.name for s in scenarios.scenarios][0] == "global_null"
    codes = lc.state_codes(design)
    state = scenarios.scenarios[0].params["initial_state"]
    arms = list(pf.context(scenarios.settings.model_dump_json()).spec.arms)
    assert state[arms.index("hinf_tocilizumab")] == codes.suspended


def test_operating_characteristics_add_up_with_monte_carlo_errors(run):
    scenarios, result = run
    table = metrics.arm_table(result.trials, scenarios)
    assert len(table) == len(result.trials) * 18
    arms = metrics.arm_characteristics(table)
    decided = arms[[f"pr_{d}" for d in metrics.DECISIONS]].sum(axis=1)
    total = decided + arms["pr_no_decision"] + arms["pr_never_evaluated"]
    np.testing.assert_allclose(total, 1.0)
    p, n = arms["pr_harm"], arms["n_trials"]
    np.testing.assert_allclose(arms["mcse_harm"], np.sqrt(p * (1 - p) / n))
    toc = arms[arms["arm"] == "hinf_tocilizumab"]
    assert (toc["pr_never_evaluated"] == 1.0).all()  # suspended: never evaluated
    traits = metrics.trait_characteristics(table)
    assert set(traits["trait"]) == set(table["trait"])
    assert (traits["familywise_false_graduation"].between(0, 1)).all()
    platform = metrics.platform_characteristics(table, result.trials, scenarios)
    assert list(platform["scenario"]) == ["null", "harm"]
    assert (platform["n_randomised_mean"] <= SETTINGS["n_patients"]).all()


def test_the_multi_trait_draw_is_among_traits_with_an_arm_open_to_the_age_group(design):
    """The simulator's rule is the randomiser's (open_traits_now): a trait can randomise a
    patient when an experimental arm of it is open and may be given to their age group."""
    settings = pf.PlatformSettings()
    ctx = pf.context(settings.model_dump_json())
    doc = yaml.safe_load(pf.platform_scenarios().read_text(encoding="utf-8"))
    sc = pf.PlatformScenario.model_validate(doc["scenarios"][0])
    params = pf.scenario_parameters(settings, sc, ("platform.yaml", sc.name))
    codes = lc.state_codes(design)
    trait_arms = np.asarray(ctx.trait_arms)
    groups, traits = list(ctx.spec.age_groups), list(ctx.spec.traits)

    def open_now(states):
        return np.asarray(
            pf.open_traits(
                states, params["available"], trait_arms, trait_arms >= 0,
                np.arange(len(groups)), codes,
            )
        )  # fmt: skip

    got = open_now(params["initial_state"])
    expected = open_traits_now(design, default_allocation_state(design), design.trial.study_start)
    for si, g in enumerate(groups):
        assert {traits[i] for i in np.flatnonzero(got[si])} == set(expected[g]), g
    assert not got[groups.index("child"), traits.index("mals")]
    # closing every arm of a trait closes it for everyone
    hypo = traits.index("hypoinflammation")
    states = np.array(params["initial_state"])
    states[trait_arms[hypo][trait_arms[hypo] >= 0]] = codes.code("futility")
    assert got[:, hypo].any() and not open_now(states)[:, hypo].any()


def test_an_arm_joins_on_its_week_and_graduation_can_be_disabled(tmp_path, design):
    path = _write(
        tmp_path,
        [_scenario("joins", joins_at_week={"hypo_ifng": 30}, thresholds={"graduation": 1.0})],
    )
    scenarios = engine.load_scenarios(path)
    params = scenarios.scenarios[0].params
    arms = list(pf.context(scenarios.settings.model_dump_json()).spec.arms)
    e = arms.index("hypo_ifng")
    assert params["initial_state"][e] == lc.state_codes(design).planned
    assert params["open_day"][e] == pytest.approx(30 * pf.DAYS_PER_WEEK)
    assert float(params["decision"]["graduation_threshold"]) == 1.0  # Pr > 1 never holds


def test_the_operating_characteristics_scenarios_set_what_they_say(design):
    path = design.data_root / "scenarios" / "operating_characteristics.yaml"
    scenarios = engine.load_scenarios(path, SETTINGS)
    ctx = pf.context(scenarios.settings.model_dump_json())
    arms, codes = list(ctx.spec.arms), lc.state_codes(design)
    p = {s.name: s.params for s in scenarios.scenarios}
    null = p["global_null"]
    assert np.all(null["log_or"] == 0) and np.all(null["era_effect"] == 0)
    assert np.all(p["usual_care_drift"]["era_effect"][1:] > 0)
    fixed = p["fixed_allocation_null"]["allocation"]["rar_min_open_experimental"]
    assert fixed > len(arms) >= null["allocation"]["rar_min_open_experimental"]
    toc = arms.index("hinf_tocilizumab")
    assert null["initial_state"][toc] == codes.suspended
    assert p["blocked_doses_open"]["initial_state"][toc] == codes.open
    assert not np.array_equal(p["priority_policy"]["policy_random"], null["policy_random"])
    assert p["accrual_slow"]["accrual_per_day"] < null["accrual_per_day"]
    assert p["accrual_fast"]["accrual_per_day"] > null["accrual_per_day"]
    child = p["children_differ"]
    effective = child["log_or"] > 0
    assert effective.sum() == 6 and np.all(child["log_or_child"][effective] == 0)
    assert p["new_arm_joins"]["initial_state"][arms.index("hinf_mtx100")] == codes.planned
    octa = arms.index("hfib_octaplas")
    assert np.isinf(null["open_day"][octa]) and np.isfinite(
        p["octaplas_opens_late"]["open_day"][octa]
    )


def test_a_patient_without_a_cell_of_the_grid_is_a_design_error(design):
    """Outcomes are drawn per cell of the grid: a positive patient whose trait, age group and
    arm have no cell is refused at the boundary, not given another cell's outcome."""
    ctx = pf.context(pf.PlatformSettings().model_dump_json())
    args = (ctx.trait_arms, ctx.pool_positive, ctx.pool_stratum)
    pf._check_grid(design, ctx.spec, ctx.cell_of, *args)  # the shipped design is whole
    cell_of = ctx.cell_of.copy()
    cell_of[0, 1, 0, 3] = -1  # adults of the first trait lose usual care in era 3
    with pytest.raises(ModelDataError, match="no cell for adult patients of hyperinflammation"):
        pf._check_grid(design, ctx.spec, cell_of, *args)
