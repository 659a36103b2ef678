"""Operating characteristics of simulated PALETTE trials, with their Monte Carlo errors.

From the per-trial table of :func:`palette_core.simulate.engine.run_scenarios` (program
``palette_platform``) and the scenarios' truth, :func:`arm_table` makes one row per (scenario,
trial, arm); the summaries are plain pandas:

* :func:`arm_characteristics` - per scenario and arm: the probability of each decision
  (graduation, futility, harm, cap reached, none by the end) with its Monte Carlo standard
  error ``sqrt(p (1 - p) / n)``, the patients the arm received (mean and quartiles, and
  children), the days to its decision, and the bias, RMSE and 95 % interval coverage of the
  reported odds ratio (the adults' OSFD log OR at the arm's decision, or at the last look it
  was open) against the truth;
* :func:`trait_characteristics` - per scenario and trait: the family-wise false graduation
  rate (at least one arm without benefit graduates) and the expected number of false
  graduations, with their errors;
* :func:`platform_characteristics` - per scenario: the expected number of false graduations
  and of false harm stops in the whole platform, patients randomised and duration;
* :func:`allocation_over_time` - per scenario, trait, arm and look: the mean allocation
  probability in force after the look, over the trials in which the trait still randomised;
* :func:`evaluable_arms` - per trial and arm, from the look records: whether the arm was ever
  open with the minimum information for graduation and futility, and from which day.

With the look records, :func:`arm_table` adds ``evaluable`` and :func:`arm_characteristics`
the probability that an arm ever becomes evaluable. Power is the probability of graduation of
an arm with a true adults' odds ratio > 1; false graduation and false harm stops have their
own columns, each with its Monte Carlo error.

An arm "without benefit" has a true adults' odds ratio <= 1; its graduation is a false
graduation and its power is not defined. An arm with a true odds ratio >= 1 stopped for harm is
a false harm stop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from palette_core.simulate.engine import ScenarioSet
from palette_core.simulate.platform import context

DECISIONS = ("graduation", "futility", "harm", "cap_reached")
ARM_FIELDS = (
    "decision",
    "decision_look",
    "decision_day",
    "final_state",
    "n_allocated",
    "estimate_mean",
    "estimate_low",
    "estimate_high",
    "estimate_look",
)


def _mcse(p: pd.Series, n: pd.Series) -> pd.Series:
    return np.sqrt(p * (1.0 - p) / n)


def evaluable_arms(looks: pd.DataFrame, scenarios: ScenarioSet) -> pd.DataFrame:
    """One row per (scenario, trial, arm) with a conducted look: ``evaluable`` (the arm was
    open at a look with at least the scenario's ``graduation_min_complete`` complete outcomes)
    and ``evaluable_day`` (the day of the first such look, NaN if none)."""
    spec = context(scenarios.settings_json).spec
    arms = list(spec.arms)
    parts = []
    for s in scenarios.scenarios:
        part = looks[looks["scenario"] == s.name]
        if part.empty:
            continue
        minimum = int(np.asarray(s.params["decision"]["graduation_min_complete"]))
        n_complete = np.stack([part[f"n_complete_arm[{a}]"].to_numpy() for a in arms], axis=1)
        state = np.stack([part[f"state[{a}]"].astype(str).to_numpy() for a in arms], axis=1)
        made = np.stack([part[f"decision[{a}]"].astype(str).to_numpy() for a in arms], axis=1)
        ok = ((state == "open") | (made != "continue")) & (n_complete >= minimum)
        day = np.where(ok, part["day"].to_numpy()[:, None], np.inf)
        frame = pd.DataFrame(day, columns=arms).assign(trial=part["trial"].to_numpy())
        first = frame.groupby("trial").min().stack().rename("evaluable_day").reset_index()
        first.columns = ["trial", "arm", "evaluable_day"]
        first["evaluable"] = np.isfinite(first["evaluable_day"])
        first["evaluable_day"] = first["evaluable_day"].where(first["evaluable"])
        parts.append(first.assign(scenario=s.name))
    return pd.concat(parts, ignore_index=True)


def arm_table(
    trials: pd.DataFrame, scenarios: ScenarioSet, looks: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per (scenario, trial, arm): what happened to the arm, with its truth; with the
    look records (``looks``), also whether and when it became evaluable
    (:func:`evaluable_arms`)."""
    spec = context(scenarios.settings_json).spec
    arms, traits, strata = spec.arms, spec.traits, spec.age_groups
    rows = []
    for s in scenarios.scenarios:
        part = trials[trials["scenario"] == s.name]
        if part.empty:
            continue
        truth = np.exp(np.asarray(s.params["log_or"], dtype=float))
        truth_child = np.exp(np.asarray(s.params["log_or_child"], dtype=float))
        for e, arm in enumerate(arms):
            block = pd.DataFrame(
                {
                    "scenario": s.name,
                    "trial": part["trial"].to_numpy(),
                    "arm": arm,
                    "trait": traits[spec.arm_trait[e]],
                    "true_or": truth[e],
                    "true_or_child": truth_child[e],
                    **{f: part[f"{f}[{arm}]"].to_numpy() for f in ARM_FIELDS},
                    "n_children": part[f"n_allocated_stratum[{arm}/child]"].to_numpy()
                    if "child" in strata
                    else 0,
                }
            )
            rows.append(block)
    out = pd.concat(rows, ignore_index=True)
    for col in ("decision", "final_state"):
        out[col] = out[col].astype(str)
    if looks is not None:
        ev = evaluable_arms(looks, scenarios)
        out = out.merge(ev, on=["scenario", "trial", "arm"], how="left", validate="one_to_one")
        out["evaluable"] = out["evaluable"].astype("boolean").fillna(False).astype(bool)
    return out


def arm_characteristics(table: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and arm: decision probabilities with MC errors, sample size, timing and
    the accuracy of the reported odds ratio (see the module docstring)."""
    g = table.groupby(["scenario", "arm"], sort=False)
    out = g.agg(trait=("trait", "first"), true_or=("true_or", "first"), n_trials=("trial", "size"))
    for d in DECISIONS:
        p = g["decision"].apply(lambda x, d=d: float(np.mean(x == d)))
        out[f"pr_{d}"] = p
        out[f"mcse_{d}"] = _mcse(p, out["n_trials"])
    opened = table["estimate_look"] >= 0
    p_none = g.apply(
        lambda x: float(np.mean((x["decision"] == "continue") & (x["estimate_look"] >= 0)))
    )
    out["pr_no_decision"] = p_none
    out["mcse_no_decision"] = _mcse(p_none, out["n_trials"])
    out["pr_never_evaluated"] = g.apply(lambda x: float(np.mean(x["estimate_look"] < 0)))
    null = table["true_or"] <= 1.0
    flags = table.assign(
        false_graduation=(table["decision"] == "graduation") & null,
        false_harm=(table["decision"] == "harm") & ~(table["true_or"] < 1.0),
    ).groupby(["scenario", "arm"], sort=False)
    for name in ("false_graduation", "false_harm"):
        out[f"pr_{name}"] = flags[name].mean()
        out[f"mcse_{name}"] = _mcse(out[f"pr_{name}"], out["n_trials"])
    eff = g["true_or"].first() > 1.0
    out["power"] = out["pr_graduation"].where(eff)
    out["mcse_power"] = out["mcse_graduation"].where(eff)
    if "evaluable" in table:
        out["pr_evaluable"] = g["evaluable"].mean()
        out["mcse_evaluable"] = _mcse(out["pr_evaluable"], out["n_trials"])
    out["n_allocated_mean"] = g["n_allocated"].mean()
    out["mcse_n_allocated"] = g["n_allocated"].std() / np.sqrt(out["n_trials"])
    out["n_allocated_q25"] = g["n_allocated"].quantile(0.25)
    out["n_allocated_median"] = g["n_allocated"].median()
    out["n_allocated_q75"] = g["n_allocated"].quantile(0.75)
    out["n_children_mean"] = g["n_children"].mean()
    decided = table[table["decision"] != "continue"]
    dg = decided.groupby(["scenario", "arm"])["decision_day"]
    out["n_decided"] = dg.size()
    out["n_decided"] = out["n_decided"].fillna(0).astype(int)
    out["days_to_decision_q25"] = dg.quantile(0.25)
    out["days_to_decision_median"] = dg.median()
    out["days_to_decision_q75"] = dg.quantile(0.75)
    est = table[opened].copy()
    est["error"] = est["estimate_mean"] - np.log(est["true_or"])
    est["covered"] = (est["estimate_low"] <= np.log(est["true_or"])) & (
        np.log(est["true_or"]) <= est["estimate_high"]
    )
    ge = est.groupby(["scenario", "arm"])
    out["n_estimates"] = ge.size()
    out["bias_log_or"] = ge["error"].mean()
    out["rmse_log_or"] = np.sqrt(ge["error"].apply(lambda x: float(np.mean(x**2))))
    out["coverage_95"] = ge["covered"].mean()
    out["mcse_coverage"] = _mcse(out["coverage_95"], out["n_estimates"])
    return out.reset_index()


def trait_characteristics(table: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and trait: family-wise false graduation and expected false graduations."""
    t = table.assign(
        false_graduation=(table["decision"] == "graduation") & (table["true_or"] <= 1.0),
        false_harm=(table["decision"] == "harm") & (table["true_or"] >= 1.0),
        null_arm=table["true_or"] <= 1.0,
    )
    t["effective_arm"] = t["true_or"] > 1.0
    t["true_graduation"] = (t["decision"] == "graduation") & t["effective_arm"]
    per_trial = t.groupby(["scenario", "trait", "trial"], sort=False).agg(
        any_false=("false_graduation", "any"),
        n_false=("false_graduation", "sum"),
        n_false_harm=("false_harm", "sum"),
        n_null=("null_arm", "sum"),
        n_effective=("effective_arm", "sum"),
        any_true=("true_graduation", "any"),
        n_patients=("n_allocated", "sum"),
    )
    g = per_trial.groupby(["scenario", "trait"], sort=False)
    out = g.agg(
        n_trials=("any_false", "size"),
        null_arms=("n_null", "first"),
        effective_arms=("n_effective", "first"),
        familywise_false_graduation=("any_false", "mean"),
        expected_false_graduations=("n_false", "mean"),
        sd_false_graduations=("n_false", "std"),
        expected_false_harm_stops=("n_false_harm", "mean"),
        sd_false_harm=("n_false_harm", "std"),
        pr_any_effective_graduates=("any_true", "mean"),
        n_experimental_mean=("n_patients", "mean"),
    )
    out["mcse_familywise"] = _mcse(out["familywise_false_graduation"], out["n_trials"])
    out["mcse_expected_false"] = out["sd_false_graduations"] / np.sqrt(out["n_trials"])
    out["mcse_false_harm_stops"] = out["sd_false_harm"] / np.sqrt(out["n_trials"])
    # trait-level power: at least one truly effective arm graduates (where the trait has one)
    has = out["effective_arms"] > 0
    out["pr_any_effective_graduates"] = out["pr_any_effective_graduates"].where(has)
    out["mcse_any_effective"] = _mcse(out["pr_any_effective_graduates"], out["n_trials"])
    return out.drop(columns=["sd_false_graduations", "sd_false_harm"]).reset_index()


def platform_characteristics(
    table: pd.DataFrame, trials: pd.DataFrame, scenarios: ScenarioSet
) -> pd.DataFrame:
    """Per scenario: expected false graduations and false harm stops in the platform, patients
    randomised, duration of the registered phase (with Monte Carlo errors) and the share of
    looks with a decision probability near its threshold (``near_threshold_band``)."""
    t = table.assign(
        false_graduation=(table["decision"] == "graduation") & (table["true_or"] <= 1.0),
        false_harm=(table["decision"] == "harm") & (table["true_or"] >= 1.0),
        true_graduation=(table["decision"] == "graduation") & (table["true_or"] > 1.0),
    )
    per_trial = t.groupby(["scenario", "trial"], sort=False)[
        ["false_graduation", "false_harm", "true_graduation"]
    ].sum()
    g = per_trial.groupby("scenario", sort=False)
    out = pd.DataFrame(
        {
            "n_trials": g.size(),
            "expected_false_graduations": g["false_graduation"].mean(),
            "mcse_false_graduations": g["false_graduation"].std() / np.sqrt(g.size()),
            "expected_false_harm_stops": g["false_harm"].mean(),
            "mcse_false_harm_stops": g["false_harm"].std() / np.sqrt(g.size()),
            "expected_true_graduations": g["true_graduation"].mean(),
        }
    )
    tg = trials.groupby("scenario", sort=False)
    out["n_randomised_mean"] = tg["n_randomised"].mean()
    size = context(scenarios.settings_json).n_patients
    out["pr_reached_size"] = tg["n_randomised"].apply(lambda x: float(np.mean(x >= size)))
    out["duration_years_median"] = tg["duration_days"].median() / 365.25
    if "n_near_threshold_looks" in trials:
        # share of looks with a decision probability within the band of its threshold
        out["share_looks_near_threshold"] = tg["n_near_threshold_looks"].sum() / tg["n_looks"].sum()
    return out.reset_index()


def allocation_over_time(looks: pd.DataFrame, scenarios: ScenarioSet) -> pd.DataFrame:
    """Per scenario, trait, arm (usual care included) and look: the mean allocation probability
    in force after the look and its Monte Carlo error, over the trials in which the trait
    still randomised after that look (an experimental arm open); ``n_trials`` counts them and
    ``day_median`` is the look's median day."""
    ctx = context(scenarios.settings_json)
    spec = ctx.spec
    rows = []
    for t, trait in enumerate(spec.traits):
        arms = [spec.arms[e] for e in ctx.trait_arms[t] if e >= 0]
        slots = ["usual_care"] + [f"arm{j + 1}" for j in range(len(arms))]
        cols = [f"allocation[{trait}/{s}]" for s in slots]
        states = np.stack([looks[f"state[{a}]"].astype(str).to_numpy() for a in arms], axis=1)
        live = (states == "open").any(axis=1)
        frame = looks.loc[live, ["scenario", "look", "day", *cols]]
        frame.columns = ["scenario", "look", "day", "usual_care", *arms]
        long = frame.melt(id_vars=["scenario", "look", "day"], var_name="arm", value_name="p")
        g = long.groupby(["scenario", "arm", "look"], sort=False)
        part = g.agg(
            share=("p", "mean"),
            sd=("p", "std"),
            n_trials=("p", "size"),
            day_median=("day", "median"),
        ).reset_index()
        part["mcse"] = part["sd"].fillna(0.0) / np.sqrt(part["n_trials"])
        rows.append(part.drop(columns="sd").assign(trait=trait))
    out = pd.concat(rows, ignore_index=True)
    return out[["scenario", "trait", "arm", "look", "day_median", "n_trials", "share", "mcse"]]
