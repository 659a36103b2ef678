"""Chapter "Simulation plan and operating characteristics": the scenarios, the calibration of the
graduation threshold, the operating characteristics and the sample size, from the stored results
``calibration`` and ``operating_characteristics`` (``palette results rebuild``).

Every probability is shown with its Monte Carlo standard error (``p ± se``: one standard error).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from palette_core.design.loader import Design, data_file
from palette_core.results.store import (
    CALIBRATION_RUN,
    OC_EFFECTIVE_FIXED,
    OC_REFERENCE,
    OC_SCENARIO_FILE,
    StoredResult,
)
from palette_core.viz.labels import LABELS, trait_label
from palette_core.yamlio import read_yaml

#: The scenarios whose arms draw the operating-characteristic curves (response-adaptive
#: allocation, default policy, blocked doses suspended, planned accrual).
CURVE_SCENARIOS = ("global_null", "one_effective_per_trait", "all_effective", "harmful_arm")
#: Decisions in the charts and tables, with their words.
DECISION_WORDS = {
    "graduation": "Graduation",
    "futility": "Futility",
    "harm": "Harm stop",
    "cap_reached": "Cap reached, inconclusive",
    "no_decision": "No decision by the end",
    "never_evaluated": "Never randomised",
}


def pm(p: float, se: float, digits: int = 3) -> str:
    """``p ± se`` (one Monte Carlo standard error), ``-`` when ``p`` is missing."""
    if p is None or not np.isfinite(p):
        return "-"
    return f"{p:.{digits}f} ± {se:.{digits}f}"


def arm_label(design: Design, arm_id: str) -> str:
    """The short name of an arm where it has one, else its name."""
    a = design.arm(arm_id)
    return a.short_name or a.name


def scenario_file(design: Design) -> dict[str, Any]:
    """The scenario file of the operating characteristics, as read (YAML)."""
    return read_yaml(data_file(design, OC_SCENARIO_FILE), OC_SCENARIO_FILE)


def scenarios_table(design: Design) -> pd.DataFrame:
    """The scenarios of ``data/scenarios/operating_characteristics.yaml``: name, what is
    true and why it is simulated (all *proposed*)."""
    rows = [
        {
            "Scenario": s["name"],
            "What is true": " ".join(s["description"].split()),
            LABELS["rationale"]: " ".join(s["rationale"].split()),
        }
        for s in scenario_file(design)["scenarios"]
    ]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- calibration
def calibration_chart(cal: StoredResult, design: Design, target: float) -> alt.LayerChart:
    """False graduation rate per arm against the graduation threshold, one line per trait
    (the calibration run), with the target and the common threshold chosen."""
    curve = cal.tables["curve_traits"].copy()
    curve["Trait"] = [trait_label(design, t) for t in curve["trait"]]
    curve["low"] = (curve["rate"] - 2 * curve["mcse"]).clip(lower=0)
    curve["high"] = curve["rate"] + 2 * curve["mcse"]
    common = float(cal.tables["thresholds"]["common_threshold"].iloc[0])
    x = alt.X(
        "threshold:Q", title="Graduation threshold c: Pr(OR > 1) > c", scale=alt.Scale(zero=False)
    )
    base = alt.Chart(curve)
    band = base.mark_area(opacity=0.15).encode(
        x=x, y="low:Q", y2="high:Q", color=alt.Color("Trait:N", title=LABELS["trait"])
    )
    line = base.mark_line().encode(
        x=x,
        y=alt.Y("rate:Q", title="False graduation per arm (global null)"),
        color="Trait:N",
    )
    rule = alt.Chart(pd.DataFrame({"y": [target]})).mark_rule(strokeDash=[4, 4]).encode(y="y:Q")
    chosen = alt.Chart(pd.DataFrame({"x": [common]})).mark_rule(color="#444").encode(x="x:Q")
    n = int(cal.manifest["n_trials_per_run"])
    return (band + line + rule + chosen).properties(
        width=460,
        height=260,
        title=f"False graduation against the threshold ({n} trials, graduation disabled)",
        description=(
            "Line chart: for each trait, the share of trials in which an arm without effect "
            "would graduate, falling as the graduation threshold rises from 0.80 to 0.999; "
            f"a dashed line marks the target {target:g} and a vertical line the common "
            f"threshold {common:.3f}."
        ),
    )


def thresholds_table(cal: StoredResult, design: Design) -> pd.DataFrame:
    """Per trait: how often an arm becomes evaluable, the per-trait and common thresholds with
    their false graduation rates (calibration run) and the confirmation run's rates."""
    t = cal.tables["thresholds"]
    common = float(t["common_threshold"].iloc[0])
    rows = []
    for r in t.itertuples(index=False):
        per_trait = f"{r.per_trait_threshold:.3f}" + (
            " (grid minimum)" if r.at_grid_minimum else ""
        )
        rows.append(
            {
                LABELS["trait"]: trait_label(design, r.trait),
                "Arm ever evaluable": f"{r.pr_evaluable:.2f}",
                "Per-trait threshold": per_trait,
                "False graduation at it": pm(r.rate_at_per_trait, r.mcse_at_per_trait),
                f"False graduation at {common:.3f}": pm(r.rate_at_common, r.mcse_at_common),
                f"Confirmed at {common:.3f}": pm(r.confirmed_rate, r.confirmed_mcse),
                "Family-wise, confirmed": pm(r.confirmed_familywise, r.confirmed_mcse_familywise),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- decisions
def _pooled(arms: pd.DataFrame, column: str) -> tuple[float, float]:
    """Mean probability over arms (each with its trials) and its binomial standard error."""
    n = float(arms["n_trials"].sum())
    p = float((arms[column] * arms["n_trials"]).sum() / n) if n else np.nan
    return p, float(np.sqrt(p * (1 - p) / n)) if n else np.nan


def oc_curve_table(oc: StoredResult, scenarios: Sequence[str] = CURVE_SCENARIOS) -> pd.DataFrame:
    """Per trait, true odds ratio and decision: the probability of the decision over the
    randomising arms with that truth in ``scenarios``, with its error."""
    arms = oc.tables["arms"]
    arms = arms[arms["scenario"].isin(scenarios) & (arms["pr_never_evaluated"] < 1.0)]
    arms = arms.assign(true_or=arms["true_or"].round(6))  # stored from float32
    rows = []
    for (trait, true_or), block in arms.groupby(["trait", "true_or"], sort=True):
        for d in ("graduation", "futility", "harm", "cap_reached", "no_decision"):
            p, se = _pooled(block, f"pr_{d}")
            rows.append({"trait": trait, "true_or": true_or, "decision": d, "p": p, "mcse": se})
    return pd.DataFrame(rows)


def oc_curve_chart(oc: StoredResult, design: Design) -> alt.FacetChart:
    """Probability of each decision against the true odds ratio, one panel per trait."""
    t = oc_curve_table(oc)
    t["Trait"] = [trait_label(design, x) for x in t["trait"]]
    t["Decision"] = t["decision"].map(DECISION_WORDS)
    t["low"] = (t["p"] - 2 * t["mcse"]).clip(lower=0)
    t["high"] = (t["p"] + 2 * t["mcse"]).clip(upper=1)
    x = alt.X("true_or:Q", title="True odds ratio (adults)", scale=alt.Scale(type="log"))
    color = alt.Color("Decision:N", sort=list(DECISION_WORDS.values()))
    base = alt.Chart().encode(x=x, color=color)
    lines = base.mark_line(point=True).encode(y=alt.Y("p:Q", title="Probability"))
    bars = base.mark_rule().encode(y="low:Q", y2="high:Q")
    order = [trait_label(design, tr.id) for tr in design.traits]
    n = int(oc.manifest["n_trials_per_scenario"])
    return (
        alt.layer(lines, bars, data=t)
        .properties(width=170, height=150)
        .facet(facet=alt.Facet("Trait:N", sort=order, title=None), columns=3)
        .properties(
            title=f"Decisions against the true odds ratio ({n} trials per scenario)",
            description=(
                "Six small line charts, one per trait: the probability of graduation, "
                "futility, a harm stop, reaching the cap and no decision for arms whose true "
                "odds ratio is 0.6, 1 or 1.5, with bars of two Monte Carlo standard errors."
            ),
        )
    )


def arms_table(oc: StoredResult, design: Design, scenario: str) -> pd.DataFrame:
    """Per arm of ``scenario``: truth, decision probabilities, evaluability, patients and the
    days to a decision."""
    a = oc.tables["arms"]
    a = a[a["scenario"] == scenario]
    rows = []
    for r in a.itertuples(index=False):
        if r.pr_never_evaluated >= 1.0:
            continue
        rows.append(
            {
                LABELS["trait"]: trait_label(design, r.trait),
                LABELS["arm"]: arm_label(design, r.arm),
                "True OR": f"{r.true_or:g}",
                "Graduation": pm(r.pr_graduation, r.mcse_graduation, 2),
                "Futility": pm(r.pr_futility, r.mcse_futility, 2),
                "Harm stop": pm(r.pr_harm, r.mcse_harm, 2),
                "Cap reached": pm(r.pr_cap_reached, r.mcse_cap_reached, 2),
                "No decision": pm(r.pr_no_decision, r.mcse_no_decision, 2),
                "Ever evaluable": pm(r.pr_evaluable, r.mcse_evaluable, 2),
                "Patients, mean (IQR)": f"{r.n_allocated_mean:.0f} "
                f"({r.n_allocated_q25:.0f}-{r.n_allocated_q75:.0f})",
                "Days to decision, median": "-"
                if not np.isfinite(r.days_to_decision_median)
                else f"{r.days_to_decision_median:.0f}",
            }
        )
    return pd.DataFrame(rows)


def scenario_summary_table(oc: StoredResult) -> pd.DataFrame:
    """Per scenario: expected false and true graduations, false harm stops, patients,
    whether the registered size was reached and the duration."""
    p = oc.tables["platform"]
    return pd.DataFrame(
        {
            "Scenario": p["scenario"],
            "False graduations": [
                pm(a, b, 2)
                for a, b in zip(
                    p["expected_false_graduations"], p["mcse_false_graduations"], strict=True
                )
            ],
            "True graduations": p["expected_true_graduations"].map(lambda v: f"{v:.2f}"),
            "False harm stops": [
                pm(a, b, 2)
                for a, b in zip(
                    p["expected_false_harm_stops"], p["mcse_false_harm_stops"], strict=True
                )
            ],
            "Patients randomised, mean": p["n_randomised_mean"].map(lambda v: f"{v:,.0f}"),
            "Reached the registered size": p["pr_reached_size"].map(lambda v: f"{v:.2f}"),
            "Duration, median (years)": p["duration_years_median"].map(lambda v: f"{v:.1f}"),
        }
    )


def trait_power_table(oc: StoredResult, design: Design, scenarios: Sequence[str]) -> pd.DataFrame:
    """Per trait (rows) and scenario (columns): the probability that the trait's effective
    arm graduates (power), with its error."""
    t = oc.tables["traits"]
    t = t[t["scenario"].isin(scenarios)]
    out = pd.DataFrame({LABELS["trait"]: [trait_label(design, x.id) for x in design.traits]})
    for s in scenarios:
        block = t[t["scenario"] == s].set_index("trait")
        out[s] = [
            pm(
                block.loc[x.id, "pr_any_effective_graduates"],
                block.loc[x.id, "mcse_any_effective"],
                2,
            )
            if x.id in block.index
            else "-"
            for x in design.traits
        ]
    return out


def trait_error_table(oc: StoredResult, design: Design, scenarios: Sequence[str]) -> pd.DataFrame:
    """Per scenario and trait: family-wise false graduation and expected false graduations."""
    t = oc.tables["traits"]
    t = t[t["scenario"].isin(scenarios)]
    return pd.DataFrame(
        {
            "Scenario": t["scenario"],
            LABELS["trait"]: [trait_label(design, x) for x in t["trait"]],
            "Arms without effect": t["null_arms"],
            "Family-wise false graduation": [
                pm(a, b, 2)
                for a, b in zip(t["familywise_false_graduation"], t["mcse_familywise"], strict=True)
            ],
            "Expected false graduations": [
                pm(a, b, 2)
                for a, b in zip(
                    t["expected_false_graduations"], t["mcse_expected_false"], strict=True
                )
            ],
        }
    )


def focus_table(oc: StoredResult, design: Design, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Chosen (scenario, arm) pairs side by side: truth, decisions, evaluability, patients and
    the accuracy of the reported odds ratio."""
    a = oc.tables["arms"].set_index(["scenario", "arm"])
    rows = []
    for s, arm in pairs:
        r = a.loc[(s, arm)]
        rows.append(
            {
                "Scenario": s,
                LABELS["arm"]: f"{arm_label(design, arm)} ({trait_label(design, r['trait'])})",
                "True OR": f"{r['true_or']:g}",
                "Graduation": pm(r["pr_graduation"], r["mcse_graduation"], 2),
                "Harm stop": pm(r["pr_harm"], r["mcse_harm"], 2),
                "Ever evaluable": pm(r["pr_evaluable"], r["mcse_evaluable"], 2),
                "Patients, mean": f"{r['n_allocated_mean']:.0f}",
                "Bias of log OR": "-"
                if not np.isfinite(r["bias_log_or"])
                else f"{r['bias_log_or']:+.2f}",
            }
        )
    return pd.DataFrame(rows)


def estimation_table(oc: StoredResult, design: Design, scenario: str) -> pd.DataFrame:
    """Per randomising arm of ``scenario``: bias and RMSE of the reported log odds ratio and
    the coverage of its 95 % interval, with its error."""
    a = oc.tables["arms"]
    a = a[(a["scenario"] == scenario) & (a["n_estimates"].fillna(0) > 0)]
    return pd.DataFrame(
        {
            LABELS["trait"]: [trait_label(design, x) for x in a["trait"]],
            LABELS["arm"]: [arm_label(design, x) for x in a["arm"]],
            "True OR": a["true_or"].map(lambda v: f"{v:g}"),
            "Estimates": a["n_estimates"].astype(int),
            "Bias (log OR)": a["bias_log_or"].map(lambda v: f"{v:+.3f}"),
            "RMSE (log OR)": a["rmse_log_or"].map(lambda v: f"{v:.3f}"),
            "Coverage of 95 % interval": [
                pm(c, s, 2) for c, s in zip(a["coverage_95"], a["mcse_coverage"], strict=True)
            ],
        }
    )


def patients_chart(oc: StoredResult, design: Design, scenarios: Sequence[str]) -> alt.Chart:
    """Distribution of the patients each randomising arm receives (box plots: minimum,
    quartiles, median and maximum over the simulated trials), per scenario."""
    t = oc.tables["arm_trials"]
    used = t.groupby("arm")["n_allocated"].max()
    t = t[t["scenario"].isin(scenarios) & t["arm"].map(used > 0)].copy()
    t["Arm"] = [
        f"{trait_label(design, tr)}: {arm_label(design, a)}"
        for tr, a in zip(t["trait"], t["arm"], strict=True)
    ]
    order = list(dict.fromkeys(t["Arm"]))
    cap = int(design.decisions.cap_per_experimental_arm.value)
    minimum = int(design.decisions.graduation.min_complete)
    # the five numbers of each box, computed here: one row per arm and scenario, whatever the
    # number of simulated trials (a page does not carry every trial)
    q = t.groupby(["Arm", "scenario"], sort=False)["n_allocated"]
    stats = pd.DataFrame(
        {
            name: q.quantile(p)
            for name, p in (("lo", 0), ("q1", 0.25), ("med", 0.5), ("q3", 0.75), ("hi", 1))
        }
    ).reset_index()
    base = alt.Chart(stats).encode(
        y=alt.Y("Arm:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        color=alt.Color("scenario:N", title="Scenario"),
        yOffset="scenario:N",
    )
    box = (
        base.mark_rule().encode(x=alt.X("lo:Q", title="Patients allocated to the arm"), x2="hi:Q")
        + base.mark_bar(size=4).encode(x="q1:Q", x2="q3:Q")
        + base.mark_tick(color="black", size=4, thickness=1).encode(x="med:Q")
    )
    rules = (
        alt.Chart(pd.DataFrame({"x": [minimum, cap]})).mark_rule(strokeDash=[3, 3]).encode(x="x:Q")
    )
    return (box + rules).properties(
        width=420,
        height=alt.Step(9),
        title="Patients per arm",
        description=(
            "Box plots of the patients each experimental arm receives per simulated trial, "
            f"per scenario, with dashed lines at the minimum information ({minimum}) and the "
            f"cap ({cap})."
        ),
    )


def allocation_chart(
    oc: StoredResult, design: Design, trait: str, scenarios: Sequence[str]
) -> alt.Chart:
    """Mean allocation probability of each arm of ``trait`` over the looks, per scenario."""
    a = oc.tables["allocation"]
    a = a[(a["trait"] == trait) & a["scenario"].isin(scenarios)].copy()
    a["Arm"] = ["Usual care" if x == "usual_care" else arm_label(design, x) for x in a["arm"]]
    return (
        alt.Chart(a)
        .mark_line(point=True)
        .encode(
            x=alt.X("look:O", title="Look"),
            y=alt.Y("share:Q", title="Mean allocation probability"),
            color=alt.Color("Arm:N"),
            strokeDash=alt.StrokeDash("scenario:N", title="Scenario"),
        )
        .properties(
            width=420,
            height=220,
            title=f"Allocation over the looks: {trait_label(design, trait)}",
            description=(
                f"Line chart of the mean allocation probability of usual care and each arm of "
                f"{trait_label(design, trait)} after each look, one dash style per scenario."
            ),
        )
    )


# ----------------------------------------------------------------------------- sample size
def sample_size_table(oc: StoredResult, design: Design) -> pd.DataFrame:
    """Per trait: what the registered size buys and what 80 % power needs (the stored
    ``sample_size`` table, in words)."""
    s = oc.tables["sample_size"]
    size = oc.manifest["settings"].get("n_patients") or int(design.trial.enrollment)
    return pd.DataFrame(
        {
            LABELS["trait"]: [trait_label(design, x) for x in s["trait"]],
            "Arms randomising": s["arms_randomising"],
            "Share of patients": [
                pm(a, b, 3) for a, b in zip(s["share"], s["mcse_share"], strict=True)
            ],
            "Patients a year": s["patients_per_year"].map(lambda v: f"{v:.0f}"),
            f"Per group at {size:,}": s["n_per_arm_at_size"].map(lambda v: f"{v:.0f}"),
            f"Power at {size:,} (approx.)": s["analytic_power_at_size"].map(lambda v: f"{v:.2f}"),
            "Simulated power (fixed)": [
                pm(a, b, 2) for a, b in zip(s["sim_power"], s["mcse_sim_power"], strict=True)
            ],
            "Approx. at simulated n": s["analytic_power_at_sim_n"].map(lambda v: f"{v:.2f}"),
            "Per arm for 80 %": s["n_per_arm_needed"].map(lambda v: f"{v:.0f}"),
            "Trait patients for 80 %": s["trait_patients_needed"].map(lambda v: f"{v:,.0f}"),
            "Years for 80 %": s["years_needed"].map(lambda v: f"{v:.1f}"),
        }
    )


def key_numbers(cal: StoredResult, oc: StoredResult, design: Design) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted (for ``glue``)."""
    t = cal.tables["thresholds"]
    s = oc.tables["sample_size"]
    p = oc.tables["platform"].set_index("scenario")
    null = p.loc[OC_REFERENCE]
    common = float(t["common_threshold"].iloc[0])
    worst = t.loc[t["confirmed_rate"].idxmax()]
    cap = int(design.decisions.cap_per_experimental_arm.value)
    out = {
        "oc_trials": f"{int(oc.manifest['n_trials_per_scenario']):,}",
        "oc_scenarios": str(int(oc.tables["platform"].shape[0])),
        "cal_trials": f"{int(cal.manifest['n_trials_per_run']):,}",
        "cal_run": CALIBRATION_RUN,
        "cal_target": f"{float(cal.manifest['target_false_graduation_per_arm']):g}",
        "common_threshold": f"{common:.3f}",
        "design_threshold": f"{float(design.decisions.graduation.threshold):.3f}",
        "worst_trait": trait_label(design, worst["trait"]),
        "worst_rate": pm(worst["confirmed_rate"], worst["confirmed_mcse"]),
        "null_false_grad": pm(
            null["expected_false_graduations"], null["mcse_false_graduations"], 2
        ),
        "null_false_harm": pm(null["expected_false_harm_stops"], null["mcse_false_harm_stops"], 2),
        "null_reached_size": f"{null['pr_reached_size']:.2f}",
        "null_years": f"{null['duration_years_median']:.1f}",
        "ss_or": f"{float(oc.manifest['sample_size_odds_ratio']):g}",
        "ss_effective": OC_EFFECTIVE_FIXED,
        "ss_min_per_arm": f"{s['n_per_arm_needed'].min():.0f}",
        "ss_max_per_arm": f"{s['n_per_arm_needed'].max():.0f}",
        "ss_cap": str(cap),
        "ss_platform_min": f"{s['platform_patients_needed'].min():,.0f}",
        "ss_platform_max": f"{s['platform_patients_needed'].max():,.0f}",
        "ss_years_max": f"{s['years_needed'].max():.0f}",
        "ss_years_min": f"{s['years_needed'].min():.1f}",
        "cal_runtime_min": f"{float(cal.manifest['runtime_s']) / 60:.0f}",
        "oc_runtime_min": f"{float(oc.manifest['runtime_s']) / 60:.0f}",
    }
    # the trait that sets the common threshold, and its rate at the pre-calibration value
    binding = t.loc[t["per_trait_threshold"].idxmax()]
    curve = cal.tables["curve_traits"]
    before = 0.95
    at = curve[(curve["trait"] == binding["trait"]) & np.isclose(curve["threshold"], before)]
    out["binding_trait"] = trait_label(design, binding["trait"])
    out["binding_before"] = f"{before:g}"
    out["binding_rate_before"] = pm(float(at["rate"].iloc[0]), float(at["mcse"].iloc[0]))
    edge = t[t["at_grid_minimum"].astype(bool)]
    out["grid_minimum"] = f"{float(curve['threshold'].min()):.2f}"
    out["edge_traits"] = _words([trait_label(design, x) for x in edge["trait"]])
    out["edge_evaluable_max"] = f"{float(edge['pr_evaluable'].max()):.2f}" if len(edge) else "-"
    # arms of the global null that rarely become evaluable
    a = oc.tables["arms"]
    a = a[(a["scenario"] == OC_REFERENCE) & (a["pr_never_evaluated"] < 1.0)]
    ev = a.groupby("trait", sort=False)["pr_evaluable"].mean()
    rare = [trait_label(design, x) for x, v in ev.items() if v < 0.5]
    out["rarely_evaluable_traits"] = _words(rare)
    out["n_rarely_evaluable"] = str(len(rare))
    # the approximation against the simulation, in traits whose arms become evaluable
    big = s[s["sim_pr_evaluable"] > 0.5]
    gap = big["sim_power"] - big["analytic_power_at_sim_n"]
    out["ss_check_traits"] = _words([trait_label(design, x) for x in big["trait"]])
    out["ss_gap_low"] = f"{gap.min():+.2f}" if len(gap) else "-"
    out["ss_gap_high"] = f"{gap.max():+.2f}" if len(gap) else "-"
    n_need = float(s["n_per_arm_needed"].min())
    out["ss_vs_cap"] = "more than" if n_need > cap else "no more than"
    return out


def _words(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` (``none`` for no item)."""
    items = list(items)
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


__all__ = [
    "CURVE_SCENARIOS",
    "allocation_chart",
    "arms_table",
    "calibration_chart",
    "estimation_table",
    "focus_table",
    "key_numbers",
    "oc_curve_chart",
    "oc_curve_table",
    "patients_chart",
    "pm",
    "sample_size_table",
    "scenario_summary_table",
    "scenarios_table",
    "thresholds_table",
    "trait_error_table",
    "trait_power_table",
]
