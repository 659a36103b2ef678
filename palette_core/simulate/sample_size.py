"""The sample size each trait needs: a stated analytic approximation, checked against simulation.

Approximation (proposed; Whitehead 1993, *Statistics in Medicine* 12:2257-2271)
    For a proportional-odds comparison of an arm (``n_arm`` patients) with usual care
    (``n_control``), the variance of the estimated log odds ratio is about

    ``var = 3 / (1 - sum_k pbar_k^3) * (1 / n_arm + 1 / n_control)``

    where ``pbar`` is the outcome distribution averaged over the two groups (for a binary
    outcome this is the usual ``(1/n_arm + 1/n_control) / (p (1 - p))``). With a vague prior,
    the rule "Pr(OR > 1) > c" at a single analysis is then a one-sided test at level
    ``1 - c``, with power ``Phi(log(OR) / sqrt(var) - z_c)``, ``z_c = Phi^-1(c)``
    (:func:`analytic_power`), and the patients an arm needs for a power are
    :func:`patients_per_arm`. The approximation ignores the looks (more chances to graduate),
    the prior's shrinkage, the era effects, borrowing and the children, which is why it is
    checked against the simulator (:func:`sample_size_table`).

Everything here runs after the simulations, on NumPy and pandas tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import norm

from palette_core.analysis.models import category_log_probs
from palette_core.simulate.engine import ScenarioSet
from palette_core.simulate.platform import context


def usual_care_pmf(scenarios: ScenarioSet, scenario: str, trait: str, stratum: str = "adult"):
    """The outcome distribution (OSFD categories) of usual care in ``trait`` and ``stratum``
    under ``scenario`` (its cut-points and the trait's prognosis shift, first era)."""
    spec = context(scenarios.settings_json).spec
    params = scenarios.scenario(scenario).params
    s = spec.age_groups.index(stratum)
    eta = np.asarray(params["trait_shift"], dtype=np.float64)[spec.traits.index(trait)]
    cut = np.asarray(params["cut"], dtype=np.float64)[s]
    return np.exp(np.asarray(category_log_probs(np.asarray([eta]), cut[None, :]))[0])


def shifted_pmf(pmf: np.ndarray, log_or: float) -> np.ndarray:
    """``pmf`` under a proportional-odds shift of ``log_or`` towards higher categories."""
    cdf = np.clip(np.cumsum(pmf)[:-1], 1e-12, 1 - 1e-12)
    logit = np.log(cdf) - np.log1p(-cdf) - log_or
    new = 1.0 / (1.0 + np.exp(-logit))
    return np.diff(np.concatenate([[0.0], new, [1.0]]))


def variance_factor(pmf_control: np.ndarray, log_or: float) -> float:
    """``3 / (1 - sum pbar^3)``: the log-OR variance times the harmonic patient term."""
    pbar = 0.5 * (pmf_control + shifted_pmf(pmf_control, log_or))
    return 3.0 / (1.0 - float(np.sum(pbar**3)))


def analytic_power(
    n_arm: float, n_control: float, odds_ratio: float, pmf_control: np.ndarray, threshold: float
) -> float:
    """Power of "Pr(OR > 1) > threshold" at one analysis (see the module docstring)."""
    if n_arm <= 0 or n_control <= 0:
        return 0.0
    b = math.log(odds_ratio)
    se = math.sqrt(variance_factor(pmf_control, b) * (1.0 / n_arm + 1.0 / n_control))
    return float(norm.cdf(b / se - norm.ppf(threshold)))


def patients_per_arm(
    odds_ratio: float,
    pmf_control: np.ndarray,
    threshold: float,
    power: float,
    control_ratio: float = 1.0,
) -> float:
    """Patients an arm needs for ``power`` at ``odds_ratio`` (usual care ``control_ratio``
    times as many), by the approximation of the module docstring."""
    b = math.log(odds_ratio)
    z = norm.ppf(threshold) + norm.ppf(power)
    return variance_factor(pmf_control, b) * (1.0 + 1.0 / control_ratio) * z**2 / b**2


def sample_size_table(
    scenarios: ScenarioSet,
    arms: pd.DataFrame,
    traits: pd.DataFrame,
    trial_traits: pd.DataFrame,
    *,
    reference: str,
    effective: str,
    threshold: float,
    odds_ratio: float,
    power: float = 0.8,
) -> pd.DataFrame:
    """Per trait: what the registered size buys and what 80 % power would need.

    Parameters
    ----------
    scenarios
        The scenario file of the runs.
    arms, traits
        :func:`~palette_core.simulate.metrics.arm_characteristics` and
        :func:`~palette_core.simulate.metrics.trait_characteristics` of the runs.
    trial_traits
        One row per (scenario, trial, trait) with ``n_trait`` (patients randomised in the
        trait, usual care included) and ``n_randomised`` (in the platform).
    reference
        The null scenario that gives each trait's share of the platform's patients.
    effective
        A scenario with one effective arm per trait, at ``odds_ratio``, under fixed
        allocation (the analytic approximation's setting), whose simulated power checks it.
    threshold
        The graduation threshold in force.

    Returns
    -------
    One row per trait: ``arms_randomising`` (K, experimental arms ever open), ``share`` (of
    the platform's patients, with its Monte Carlo error), ``patients_per_year`` at the
    scenario's plateau accrual, ``n_per_arm_at_size`` (the trait's patients at the registered
    size split equally among K + 1 groups), ``analytic_power_at_size``, the effective arm's
    simulated power with its error and mean patients (``sim_*``), ``analytic_power_at_sim_n``
    (the approximation at the simulated patients: the check), and for ``power``:
    ``n_per_arm_needed``, ``trait_patients_needed`` (K + 1 groups), ``years_needed`` at the
    plateau accrual and ``platform_patients_needed`` (the trait's patients over its share).
    """
    ctx = context(scenarios.settings_json)
    spec = ctx.spec
    ref = scenarios.scenario(reference)
    per_week = float(ref.model.accrual.per_week)
    size = ctx.n_patients
    tt = trial_traits[trial_traits["scenario"] == reference]
    share_trial = tt["n_trait"] / tt["n_randomised"]
    shares = share_trial.groupby(tt["trait"]).agg(["mean", "std", "size"])
    ra = arms[arms["scenario"] == reference]
    eff_arms = arms[(arms["scenario"] == effective) & (arms["true_or"] > 1.0)]
    rows = []
    for trait in spec.traits:
        k = int((ra[ra["trait"] == trait]["pr_never_evaluated"] < 1.0).sum())
        pmf = usual_care_pmf(scenarios, reference, trait)
        share = float(shares.loc[trait, "mean"])
        per_year = share * per_week * 365.25 / 7.0
        n_arm_size = share * size / (k + 1) if k else 0.0
        e = eff_arms[eff_arms["trait"] == trait]
        sim_n = float(e["n_allocated_mean"].iloc[0]) if len(e) else np.nan
        tr = traits[(traits["scenario"] == effective) & (traits["trait"] == trait)]
        n_trials_eff = int(tr["n_trials"].iloc[0]) if len(tr) else 0
        # usual care's patients in the effective scenario: the trait's total minus its arms'
        te = trial_traits[
            (trial_traits["scenario"] == effective) & (trial_traits["trait"] == trait)
        ]
        sim_uc = float((te["n_trait"] - te["n_experimental"]).mean()) if len(te) else np.nan
        n_need = patients_per_arm(odds_ratio, pmf, threshold, power)
        trait_need = n_need * (k + 1)
        rows.append(
            {
                "trait": trait,
                "arms_randomising": k,
                "share": share,
                "mcse_share": float(shares.loc[trait, "std"] / np.sqrt(shares.loc[trait, "size"])),
                "patients_per_year": per_year,
                "trait_patients_at_size": share * size,
                "n_per_arm_at_size": n_arm_size,
                "analytic_power_at_size": analytic_power(
                    n_arm_size, n_arm_size, odds_ratio, pmf, threshold
                ),
                "sim_trials": n_trials_eff,
                "sim_n_arm_mean": sim_n,
                "sim_n_usual_care_mean": sim_uc,
                "sim_power": float(e["power"].iloc[0]) if len(e) else np.nan,
                "mcse_sim_power": float(e["mcse_power"].iloc[0]) if len(e) else np.nan,
                "sim_pr_evaluable": float(e["pr_evaluable"].iloc[0])
                if len(e) and "pr_evaluable" in e
                else np.nan,
                "analytic_power_at_sim_n": analytic_power(sim_n, sim_uc, odds_ratio, pmf, threshold)
                if len(e)
                else np.nan,
                "n_per_arm_needed": n_need,
                "trait_patients_needed": trait_need,
                "years_needed": trait_need / per_year if per_year > 0 else np.inf,
                "platform_patients_needed": trait_need / share if share > 0 else np.inf,
            }
        )
    return pd.DataFrame(rows)


def trial_traits(trials: pd.DataFrame, scenarios: ScenarioSet) -> pd.DataFrame:
    """One row per (scenario, trial, trait): patients randomised in the trait (``n_trait``,
    usual care included), in its experimental arms (``n_experimental``) and in the platform
    (``n_randomised``), from the per-trial table of the engine."""
    ctx = context(scenarios.settings_json)
    spec = ctx.spec
    parts = []
    for t, trait in enumerate(spec.traits):
        arms = [spec.arms[e] for e in ctx.trait_arms[t] if e >= 0]
        exp = trials[[f"n_allocated[{a}]" for a in arms]].sum(axis=1)
        uc = trials[[f"n_usual_care_stratum[{trait}/{g}]" for g in spec.age_groups]].sum(axis=1)
        parts.append(
            pd.DataFrame(
                {
                    "scenario": trials["scenario"].to_numpy(),
                    "trial": trials["trial"].to_numpy(),
                    "trait": trait,
                    "n_trait": (exp + uc).to_numpy(),
                    "n_experimental": exp.to_numpy(),
                    "n_randomised": trials["n_randomised"].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


__all__ = [
    "analytic_power",
    "patients_per_arm",
    "sample_size_table",
    "shifted_pmf",
    "trial_traits",
    "usual_care_pmf",
    "variance_factor",
]
