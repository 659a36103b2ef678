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
  and of false harm stops in the whole platform, patients randomised and duration.

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


def arm_table(trials: pd.DataFrame, scenarios: ScenarioSet) -> pd.DataFrame:
    """One row per (scenario, trial, arm): what happened to the arm, with its truth."""
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
    out["n_allocated_mean"] = g["n_allocated"].mean()
    out["n_allocated_q25"] = g["n_allocated"].quantile(0.25)
    out["n_allocated_median"] = g["n_allocated"].median()
    out["n_allocated_q75"] = g["n_allocated"].quantile(0.75)
    out["n_children_mean"] = g["n_children"].mean()
    decided = table[table["decision"] != "continue"]
    out["days_to_decision_median"] = decided.groupby(["scenario", "arm"])["decision_day"].median()
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
    per_trial = t.groupby(["scenario", "trait", "trial"], sort=False).agg(
        any_false=("false_graduation", "any"),
        n_false=("false_graduation", "sum"),
        n_false_harm=("false_harm", "sum"),
        n_null=("null_arm", "sum"),
    )
    g = per_trial.groupby(["scenario", "trait"], sort=False)
    out = g.agg(
        n_trials=("any_false", "size"),
        null_arms=("n_null", "first"),
        familywise_false_graduation=("any_false", "mean"),
        expected_false_graduations=("n_false", "mean"),
        sd_false_graduations=("n_false", "std"),
        expected_false_harm_stops=("n_false_harm", "mean"),
    )
    out["mcse_familywise"] = _mcse(out["familywise_false_graduation"], out["n_trials"])
    out["mcse_expected_false"] = out["sd_false_graduations"] / np.sqrt(out["n_trials"])
    return out.drop(columns="sd_false_graduations").reset_index()


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
