"""Calibration of the graduation threshold by simulation under the global null (proposed method).

The design's target (``proposed/decisions.yaml``, ``calibration.max_false_graduation_per_arm``)
is a false graduation rate per arm of at most 0.10 under the global null, in every trait. The
method uses two runs of the trial program :mod:`palette_core.simulate.platform`:

1. **Calibration run**: the global null with graduation disabled (threshold 1, which
   ``Pr(OR > 1) > 1`` never passes). Every arm then runs until futility, harm, its cap or the
   end of the trial, and the look records hold its Pr(OR > 1) at every look. An arm's path up
   to the first look at which it would graduate does not depend on the graduation threshold,
   so for any threshold ``c`` the arm graduates falsely exactly when its running maximum
   :func:`max_pr_benefit` (over the looks at which it is open and has the minimum number of
   complete outcomes, up to and including the look of its first other decision, where
   graduation takes precedence over futility and the cap but not over harm) exceeds ``c``.
   :func:`false_graduation_curve` gives that rate for a grid of thresholds, per arm and trait,
   with Monte Carlo errors; :func:`calibrate` picks, per trait, the smallest threshold of the
   grid whose rate meets the target, and the smallest common threshold that meets it in every
   trait.
2. **Confirmation run**: the global null under the common threshold chosen
   (:func:`with_graduation_threshold`, a new seed); the false graduation
   rate is read directly (:func:`palette_core.simulate.metrics.arm_characteristics`). It can
   differ from the calibration run's because a graduation changes the allocation of the arms
   that remain.

All functions work on the engine's tables (:class:`~palette_core.simulate.engine.
SimulationResult`), after the run: none of this runs inside the compiled program.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from palette_core.simulate.engine import Scenario, ScenarioSet
from palette_core.simulate.platform import context

#: thresholds examined by default: 0.800, 0.801, ..., 0.999
DEFAULT_GRID = np.round(np.arange(0.800, 0.9995, 0.001), 3)


def _arm_looks(looks: pd.DataFrame, arms: list[str]) -> dict[str, np.ndarray]:
    """``[L, A]`` arrays of one scenario's looks (one row per trial and look, in order)."""

    def block(field: str) -> np.ndarray:
        return np.stack([looks[f"{field}[{a}]"].to_numpy() for a in arms], axis=1)

    return {
        "pr_benefit": block("pr_benefit").astype(float),
        "n_complete": block("n_complete_arm").astype(int),
        "decision": block("decision").astype(str),
        "state": block("state").astype(str),
    }


def max_pr_benefit(looks: pd.DataFrame, scenarios: ScenarioSet, scenario: str) -> pd.DataFrame:
    """One row per (trial, arm) of ``scenario``: the arm's largest Pr(OR > 1) over the looks at
    which graduation could have stopped it (see the module docstring).

    Columns: ``trial``, ``arm``, ``trait``, ``randomising`` (the arm was open at some look),
    ``evaluable`` (it was open with the minimum information at some look), ``max_pr_benefit``
    (``-inf`` when never evaluable) and ``stop`` (its first decision other than continuing, or
    ``"continue"``).
    """
    spec = context(scenarios.settings_json).spec
    sc: Scenario = scenarios.scenario(scenario)
    minimum = int(np.asarray(sc.params["decision"]["graduation_min_complete"]))
    arms = list(spec.arms)
    part = looks[looks["scenario"] == scenario].sort_values(["trial", "look"])
    a = _arm_looks(part, arms)
    trial = part["trial"].to_numpy()
    look = part["look"].to_numpy()
    decided = a["decision"] != "continue"
    open_before = (a["state"] == "open") | decided
    # the look of the arm's first decision (a large number if none) within each trial
    big = np.iinfo(np.int32).max
    stop_look = np.where(decided, look[:, None], big)
    frame = pd.DataFrame(stop_look, columns=arms).assign(trial=trial)
    first_stop = frame.groupby("trial")[arms].transform("min").to_numpy()
    before_stop = (look[:, None] < first_stop) | (
        (look[:, None] == first_stop) & (a["decision"] != "harm")
    )
    eligible = open_before & (a["n_complete"] >= minimum) & before_stop
    pr = np.where(eligible, a["pr_benefit"], -np.inf)
    long = pd.DataFrame(
        {
            "trial": np.repeat(trial, len(arms)),
            "arm": np.tile(arms, len(trial)),
            "pr": pr.reshape(-1),
            "eligible": eligible.reshape(-1),
            "open": open_before.reshape(-1),
            "stop": np.where(decided, a["decision"], "").reshape(-1),
        }
    )
    g = long.groupby(["trial", "arm"], sort=False)
    out = g.agg(
        randomising=("open", "any"),
        evaluable=("eligible", "any"),
        max_pr_benefit=("pr", "max"),
    )
    stops = long[long["stop"] != ""].groupby(["trial", "arm"], sort=False)["stop"].first()
    out["stop"] = stops.reindex(out.index).fillna("continue")
    out = out.reset_index()
    trait_of = {arm: spec.traits[spec.arm_trait[e]] for e, arm in enumerate(arms)}
    out.insert(2, "trait", out["arm"].map(trait_of))
    return out


def false_graduation_curve(
    maxima: pd.DataFrame, grid: np.ndarray = DEFAULT_GRID
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """False graduation rates per threshold of ``grid``: ``(per_arm, per_trait)``.

    Only arms that randomised in some trial count (a suspended arm, or a planned arm that
    never opens, cannot graduate). ``per_arm``: ``arm``, ``trait``, ``threshold``, ``rate``
    and its Monte Carlo error ``sqrt(p (1 - p) / n)``. ``per_trait``: the mean rate over the
    trait's arms (``rate``; its error from the per-trial means, so that the correlation of
    the arms within a trial counts), the largest arm's rate (``max_arm_rate``) and the
    family-wise rate (at least one of the trait's arms graduates falsely); ``pr_evaluable`` is
    the share of the trait's (trial, arm) pairs in which the arm ever had the minimum
    information while open.
    """
    arms_in_use = maxima.groupby("arm")["randomising"].any()
    m = maxima[maxima["arm"].map(arms_in_use)]
    n_trials = m["trial"].nunique()
    hits = m["max_pr_benefit"].to_numpy()[:, None] > np.asarray(grid)[None, :]  # [rows, G]
    cols = [f"{c:.3f}" for c in grid]
    wide = pd.concat([m[["trial", "arm", "trait"]].reset_index(drop=True),
                      pd.DataFrame(hits, columns=cols)], axis=1)  # fmt: skip
    arm_rate = wide.groupby(["trait", "arm"], sort=False)[cols].mean()
    per_arm = arm_rate.stack().rename("rate").reset_index()
    per_arm.columns = ["trait", "arm", "threshold", "rate"]
    per_arm["threshold"] = per_arm["threshold"].astype(float)
    per_arm["mcse"] = np.sqrt(per_arm["rate"] * (1 - per_arm["rate"]) / n_trials)
    per_trial_mean = wide.groupby(["trait", "trial"], sort=False)[cols].mean()
    per_trial_any = wide.groupby(["trait", "trial"], sort=False)[cols].max()
    evaluable = m.groupby("trait", sort=False)["evaluable"].mean()
    rows = []
    for trait, block in per_trial_mean.groupby(level="trait", sort=False):
        anyf = per_trial_any.loc[trait]
        arm_max = arm_rate.loc[trait].max()
        for c in cols:
            rows.append(
                {
                    "trait": trait,
                    "threshold": float(c),
                    "n_arms": int(arm_rate.loc[trait].shape[0]),
                    "n_trials": int(block.shape[0]),
                    "pr_evaluable": float(evaluable[trait]),
                    "rate": float(block[c].mean()),
                    "mcse": float(block[c].std(ddof=1) / np.sqrt(block.shape[0])),
                    "max_arm_rate": float(arm_max[c]),
                    "familywise": float(anyf[c].mean()),
                }
            )
    return per_arm, pd.DataFrame(rows)


def calibrate(per_trait: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per trait, the smallest threshold of the grid whose mean false graduation rate per arm
    is at most ``target`` (``per_trait_threshold``; NaN when none is), and the common
    threshold: the smallest that meets the target in every trait (the largest per-trait one),
    with each trait's rate and error at both. ``at_grid_minimum`` flags a trait that meets the
    target at every threshold examined (its arms rarely become evaluable).
    """
    rows = []
    for trait, block in per_trait.groupby("trait", sort=False):
        block = block.sort_values("threshold")
        ok = block[block["rate"] <= target]
        lowest = float(ok["threshold"].min()) if len(ok) else np.nan
        rows.append(
            {
                "trait": trait,
                "pr_evaluable": float(block["pr_evaluable"].iloc[0]),
                "per_trait_threshold": lowest,
                # the target is met at every threshold examined: the grid sets the value
                "at_grid_minimum": bool(lowest == float(block["threshold"].min())),
            }
        )
    out = pd.DataFrame(rows)
    common = float(out["per_trait_threshold"].max())
    out["common_threshold"] = common

    def at(trait: str, c: float, field: str) -> float:
        row = per_trait[(per_trait["trait"] == trait) & np.isclose(per_trait["threshold"], c)]
        return float(row[field].iloc[0]) if len(row) else np.nan

    for name, col in (("per_trait", "per_trait_threshold"), ("common", "common_threshold")):
        for field in ("rate", "mcse", "familywise"):
            out[f"{field}_at_{name}"] = [
                at(t, c, field) for t, c in zip(out["trait"], out[col], strict=True)
            ]
    return out


def with_graduation_threshold(scenarios: ScenarioSet, name: str, threshold: float) -> ScenarioSet:
    """``scenarios`` with scenario ``name``'s graduation threshold set to ``threshold`` (its
    model and parameters, through the program's own validation)."""
    out = []
    for s in scenarios.scenarios:
        if s.name == name:
            th = s.model.thresholds.model_copy(update={"graduation": float(threshold)})
            model = s.model.model_copy(update={"thresholds": th})
            params = scenarios.definition.parameters(
                scenarios.settings, model, (str(scenarios.path), s.name)
            )
            s = Scenario(s.name, model, params)
        out.append(s)
    return replace(scenarios, scenarios=tuple(out))


def observed_false_graduation(table: pd.DataFrame) -> pd.DataFrame:
    """Per trait, from a run's :func:`~palette_core.simulate.metrics.arm_table` (one
    scenario): the observed false graduation rate per arm (``confirmed_rate``: the mean over
    the trait's arms without benefit that randomised in some trial, its error from the
    per-trial means), the largest arm's rate and the family-wise rate."""
    null = table[table["true_or"] <= 1.0]
    used = null.groupby("arm")["n_allocated"].max() > 0
    null = null[null["arm"].map(used)].assign(fg=lambda x: x["decision"] == "graduation")
    per_trial = null.groupby(["trait", "trial"], sort=False)["fg"].agg(["mean", "max"])
    per_arm = null.groupby(["trait", "arm"], sort=False)["fg"].mean()
    g = per_trial.groupby(level="trait", sort=False)
    out = pd.DataFrame(
        {
            "confirmed_n_trials": g.size(),
            "confirmed_rate": g["mean"].mean(),
            "confirmed_mcse": g["mean"].std(ddof=1) / np.sqrt(g.size()),
            "confirmed_max_arm_rate": per_arm.groupby(level="trait", sort=False).max(),
            "confirmed_familywise": g["max"].mean(),
        }
    )
    out["confirmed_mcse_familywise"] = np.sqrt(
        out["confirmed_familywise"] * (1 - out["confirmed_familywise"]) / out["confirmed_n_trials"]
    )
    return out.rename_axis("trait").reset_index()


__all__ = [
    "DEFAULT_GRID",
    "calibrate",
    "false_graduation_curve",
    "max_pr_benefit",
    "observed_false_graduation",
    "with_graduation_threshold",
]
