"""Chapter "Analysis populations, missing data and safety monitoring": analysis sets, deviations,
adherence, covariates, the two models' baseline priors compared, the safety rule with its
false-alarm rates and its application to the worked interim, and adverse-event reporting."""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from palette_core.analysis.safety import (
    false_alarm_rates,
    monitor,
    monitored_arms,
    safety_counts,
    safety_params,
)
from palette_core.design.loader import Design
from palette_core.design.protocol import Protocol
from palette_core.viz.labels import LABELS, trait_label


def analysis_sets_table(protocol: Protocol) -> pd.DataFrame:
    """The analysis sets with their definition and use."""
    return pd.DataFrame(
        [
            {"Analysis set": s.label, "Definition": s.definition, "Used for": s.used_for}
            for s in protocol.populations.analysis_sets
        ]
    )


def deviations_table(protocol: Protocol) -> pd.DataFrame:
    """Protocol deviations, their class and their handling."""
    return pd.DataFrame(
        [
            {"Deviation": d.deviation, "Class": d.kind, "Handling": d.handling}
            for d in protocol.populations.deviations
        ]
    )


def _outcome_labels(design: Design) -> dict[str, str]:
    return {o.id: o.label for o in design.outcomes.outcomes}


def _interval(med: float, lo: float, hi: float, digits: int = 2) -> str:
    return f"{med:.{digits}f} ({lo:.{digits}f} to {hi:.{digits}f})"


def covariate_effects_table(design: Design, effects: pd.DataFrame) -> pd.DataFrame:
    """The two added terms of the covariate-adjusted model, per outcome: the odds ratio per
    standard deviation of the age group's severity score and the between-country standard
    deviation (posterior median and 95 % interval), with the patients analysed, those whose
    score was missing (set to their age group's mean) and the convergence gates.

    Parameters
    ----------
    design
        The loaded design (outcome labels).
    effects
        The ``effects`` table of the stored result ``covariate_sensitivity``.
    """
    labels = _outcome_labels(design)
    rows = []
    for r in effects.itertuples(index=False):
        odds = [float(np.exp(x)) for x in (r.severity_effect, r.severity_effect_low,
                                           r.severity_effect_high)]  # fmt: skip
        rows.append(
            {
                "Outcome": labels[r.outcome],
                "Odds ratio per SD of severity": _interval(*odds),
                "Between-country SD": _interval(r.country_sd, r.country_sd_low, r.country_sd_high),
                "Patients": int(r.n_patients),
                "Missing score": int(r.n_missing_severity),
                "Convergence gates": "passed" if r.adjusted_gates_passed else "not passed",
            }
        )
    return pd.DataFrame(rows)


def covariate_comparison_table(
    design: Design, probabilities: pd.DataFrame, decisions: pd.DataFrame
) -> pd.DataFrame:
    """Per arm, the primary and the covariate-adjusted analysis side by side: Pr(OR > 1) on
    the graduation outcome, Pr(OR < 1) on each harm outcome, and the decision of each.

    Parameters
    ----------
    design
        The loaded design (decision rules' outcomes and references, labels).
    probabilities, decisions
        The tables of the stored result ``covariate_sensitivity``.
    """
    labels = _outcome_labels(design)
    dec = design.decisions
    p = probabilities.set_index(["outcome", "arm"])
    out = decisions[["trait", "arm"]].rename(columns={"trait": "Trait", "arm": "Arm"}).copy()
    columns = [(dec.graduation.outcome, "pr_benefit", f"Pr(OR > {dec.graduation.or_reference:g})")]
    columns += [(o, "pr_harm", f"Pr(OR < {dec.harm.or_reference:g})") for o in dec.harm.outcomes]
    for outcome, quantity, text in columns:
        for which in ("primary", "adjusted"):
            values = [p.at[(outcome, a), f"{quantity}_{which}"] for a in decisions["arm"]]
            out[f"{text}, {labels[outcome]}: {which}"] = [f"{v:.3f}" for v in values]
    out["Decision: primary"] = decisions["primary"].to_numpy()
    out["Decision: adjusted"] = decisions["adjusted"].to_numpy()
    return out


def covariate_numbers(design: Design, result: Any) -> dict[str, object]:
    """The numbers quoted in the prose of the section "Covariate adjustment".

    Parameters
    ----------
    design
        The loaded design.
    result
        The stored result ``covariate_sensitivity`` (:func:`palette_core.results.store.load_result`).
    """
    m = result.manifest
    effects = result.tables["effects"]
    decisions = result.tables["decisions"]
    probs = result.tables["probabilities"]
    std = result.tables["standardisation"].set_index("age_group")
    run = m["run"]
    changed = decisions[decisions["changed"]]
    diffs = [
        (probs[f"{q}_adjusted"] - probs[f"{q}_primary"]).abs().max()
        for q in ("pr_benefit", "pr_or_gt_ref", "pr_harm")
    ]
    return {
        "cov_warmup": f"{run['num_warmup']:,}",
        "cov_samples": f"{run['num_samples']:,}",
        "cov_chains": run["num_chains"],
        "cov_patients": f"{int(effects['n_patients'].iloc[0]):,}",
        "cov_missing": f"{int(effects['n_missing_severity'].iloc[0]):,}",
        "cov_countries": int(effects["n_countries"].iloc[0]),
        "cov_adult_mean": f"{std.at['adult', 'mean']:.1f}",
        "cov_adult_sd": f"{std.at['adult', 'sd']:.1f}",
        "cov_child_mean": f"{std.at['child', 'mean']:.1f}",
        "cov_child_sd": f"{std.at['child', 'sd']:.1f}",
        "cov_n_changed": len(changed),
        "cov_n_arms": len(decisions),
        "cov_max_diff": f"{max(diffs):.3f}",
        "cov_gates": "passed" if m["gates_passed"] else "not passed",
        "cov_prior_scale": f"{m['adjusted_model']['severity_effect']['scale']:g}",
        "cov_country_scale": f"{m['adjusted_model']['country_sd']['scale']:g}",
    }


def prior_conflict_table(design: Design, prior_predictive: pd.DataFrame) -> pd.DataFrame:
    """Usual-care 28-day mortality implied by each model's prior, by age group.

    Parameters
    ----------
    design
        The loaded design (outcome and age-group labels).
    prior_predictive
        The stored ``prior_predictive`` table (rows ``trait == "all"``; quantity ``pr_death`` of
        the ordinal model, ``pr_event`` of the binary one).

    Returns
    -------
    pandas.DataFrame
        Model, age group, prior mean, 95 % interval, and the prior's weight in patients: the
        size ``m (1 - m) / v - 1`` of a beta distribution with the same mean ``m`` and variance
        ``v`` (a moment-matching summary, not a parameter of the model).
    """
    pp = prior_predictive[
        (prior_predictive["trait"] == "all")
        & prior_predictive["quantity"].isin(["pr_death", "pr_event"])
    ].drop_duplicates(["outcome", "age_group", "quantity"])
    labels = _outcome_labels(design)
    ages = {g.id: g.label for g in design.strata.age_groups}
    rows = []
    for r in pp.itertuples():
        m, v = float(r.mean), float(r.sd) ** 2
        rows.append(
            {
                "Model": labels[r.outcome],
                "Age group": ages[r.age_group],
                "Prior mean mortality (%)": round(100 * m, 1),
                "95 % interval (%)": f"{100 * r.q025:.1f} to {100 * r.q975:.1f}",
                "Prior weight (patients)": round(m * (1 - m) / v - 1, 1),
            }
        )
    return pd.DataFrame(rows)


def observed_control_mortality(design: Design, cells: pd.DataFrame) -> pd.DataFrame:
    """Usual-care deaths and patients by age group in a mortality cell table (worked interim)."""
    control = {a.id for a in design.arms if a.role == "control"}
    uc = cells[cells["arm"].isin(control)]
    ages = {g.id: g.label for g in design.strata.age_groups}
    g = uc.groupby("age_group", sort=False)[["events", "patients"]].sum()
    return pd.DataFrame(
        {
            "Age group": [ages[a] for a in g.index],
            "Usual-care patients": g["patients"].astype(int).to_numpy(),
            "Deaths": g["events"].astype(int).to_numpy(),
            "Mortality (%)": (100 * g["events"] / g["patients"]).round(1).to_numpy(),
        }
    )


def monitored_arms_table(design: Design) -> pd.DataFrame:
    """For each safety outcome, the experimental arms monitored (those whose substances the
    outcome applies to, ``outcomes.yaml``; :func:`palette_core.analysis.safety.monitored_arms`)."""
    labels = _outcome_labels(design)
    return pd.DataFrame(
        [
            {
                "Outcome": labels[o],
                LABELS["trait"]: trait_label(design, design.arm(a).trait),
                LABELS["arm"]: design.arm(a).name,
            }
            for o, a in monitored_arms(design)
        ]
    )


def safety_monitor_table(design: Design, protocol: Protocol, safety: pd.DataFrame) -> pd.DataFrame:
    """The safety rule applied to the worked interim, one row per monitored arm and outcome."""
    out = monitor(safety_counts(design, safety), protocol)
    labels = _outcome_labels(design)
    names = {a.id: a.name for a in design.arms}
    trait = {a.id: trait_label(design, a.trait) for a in design.arms}
    return pd.DataFrame(
        {
            "Outcome": out["outcome"].map(labels),
            LABELS["trait"]: out["arm"].map(trait),
            LABELS["arm"]: out["arm"].map(names),
            "Arm: events / patients": [
                f"{e} / {n}" for e, n in zip(out["events_arm"], out["n_arm"], strict=True)
            ],
            "Usual care: events / patients": [
                f"{e} / {n}" for e, n in zip(out["events_control"], out["n_control"], strict=True)
            ],
            "Pr(risk higher in the arm)": out["probability"].round(3),
            "Signal": [
                "yes" if s else ("no" if e else "not evaluable")
                for s, e in zip(out["signal"], out["evaluable"], strict=True)
            ],
        }
    )


def false_alarm_table(design: Design, rates: pd.DataFrame) -> pd.DataFrame:
    """The simulated rates of :func:`palette_core.analysis.safety.false_alarm_rates`, wide."""
    labels = _outcome_labels(design)
    wide = rates.pivot_table(
        index=["outcome", "control_risk", "assumption"],
        columns="scenario",
        values=["pr_any_signal", "mcse"],
        sort=False,
    )
    rows = []
    for (oid, risk, assumption), r in wide.iterrows():
        rows.append(
            {
                "Outcome": labels[oid],
                "Usual-care risk (%)": round(100 * risk, 1),
                "Assumption": assumption,
                "False alarm (%)": f"{100 * r[('pr_any_signal', 'null')]:.1f} "
                f"(MCSE {100 * r[('mcse', 'null')]:.1f})",
                "Detection (%)": f"{100 * r[('pr_any_signal', 'alternative')]:.1f} "
                f"(MCSE {100 * r[('mcse', 'alternative')]:.1f})",
            }
        )
    return pd.DataFrame(rows)


def false_alarm_chart(design: Design, rates: pd.DataFrame) -> alt.Chart:
    """Probability of at least one signal by usual-care risk, null and alternative scenarios."""
    labels = _outcome_labels(design)
    data = rates.assign(
        outcome=rates["outcome"].map(labels),
        risk=100 * rates["control_risk"],
        rate=100 * rates["pr_any_signal"],
        scenario=rates["scenario"].map(
            {"null": "Same risk as usual care", "alternative": "Higher risk in the arm"}
        ),
    )
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("risk:Q", title="Usual-care risk (%)"),
            y=alt.Y(
                "rate:Q",
                title="Arms with at least one signal (%)",
                scale=alt.Scale(domain=[0, 100]),
            ),
            color=alt.Color("scenario:N", title=None, legend=alt.Legend(orient="bottom")),
            column=alt.Column("outcome:N", title=None),
            tooltip=["outcome", "risk", "scenario", "rate"],
        )
        .properties(width=220, height=180)
    )


def ppc_arms(design: Design, po: pd.DataFrame) -> pd.DataFrame:
    """The rows of the stored ``po_check`` table for the arms with at least the graduation
    rule's minimum of complete outcomes (fewer patients make the check uninformative)."""
    return po[po["n_patients"] >= design.decisions.graduation.min_complete]


def ppc_table(design: Design, po: pd.DataFrame) -> pd.DataFrame:
    """One row per arm: patients, observed spread of its cumulative log odds ratios, p-value."""
    rows = ppc_arms(design, po).groupby("arm", sort=False).first().reset_index()
    names = {a.id: a.name for a in design.arms}
    trait = {a.id: trait_label(design, a.trait) for a in design.arms}
    return pd.DataFrame(
        {
            LABELS["trait"]: rows["arm"].map(trait),
            LABELS["arm"]: rows["arm"].map(names),
            "Patients": rows["n_patients"],
            "Observed spread (log OR)": rows["observed_spread"].round(2),
            "Posterior-predictive p": rows["ppp"].round(3),
        }
    )


def ppc_chart(design: Design, po: pd.DataFrame) -> alt.Chart:
    """Observed cumulative log odds ratio by cut-point (points) and the 90 % range of the
    posterior replicates (bars), one panel per arm."""
    names = {a.id: a.name for a in design.arms}
    data = ppc_arms(design, po).assign(arm=lambda d: d["arm"].map(names))
    base = alt.Chart(data).encode(x=alt.X("cutpoint:O", title="Cut-point k of OSFD > k"))
    band = base.mark_rule(strokeWidth=6, opacity=0.35).encode(
        y=alt.Y("replicate_q05:Q", title="Log odds ratio vs usual care"), y2="replicate_q95:Q"
    )
    points = base.mark_point(filled=True, color="black").encode(
        y="observed:Q", tooltip=["arm", "cutpoint", "observed", "replicate_median", "ppp"]
    )
    return (
        (band + points)
        .properties(width=130, height=110)
        .facet(facet=alt.Facet("arm:N", title=None), columns=4)
    )


def populations_numbers(
    design: Design, protocol: Protocol, rates: pd.DataFrame, conflict: pd.DataFrame
) -> dict[str, Any]:
    """Every number the chapter quotes in its prose."""
    sp = safety_params(protocol)
    sim = protocol.safety.simulation
    null = rates[(rates["scenario"] == "null")]
    osfd = conflict[conflict["Model"] == _outcome_labels(design)[design.outcomes.outcomes[0].id]]
    mort = conflict[conflict["Model"] != osfd["Model"].iloc[0]]
    return {
        "safety_threshold": f"{sp.threshold:g}",
        "safety_min": sp.min_patients_arm,
        "safety_prior": f"Beta({sp.prior_events}, {sp.prior_non_events})",
        "sim_trials": f"{sim.n_trials:,}",
        "sim_every": sim.look_every_patients,
        "sim_cap": sim.patients_per_arm,
        "sim_rr": f"{sim.relative_risk_alternative:g}",
        "max_false_alarm": f"{100 * null['pr_any_signal'].max():.1f}",
        "osfd_prior_death": f"{osfd['Prior mean mortality (%)'].max():.1f}",
        "mort_prior_death": f"{mort['Prior mean mortality (%)'].max():.1f}",
        "osfd_prior_weight": f"{osfd['Prior weight (patients)'].max():.1f}",
        "mort_prior_weight": f"{mort['Prior weight (patients)'].max():.1f}",
    }


__all__ = [
    "analysis_sets_table",
    "deviations_table",
    "false_alarm_chart",
    "false_alarm_rates",
    "false_alarm_table",
    "monitored_arms_table",
    "observed_control_mortality",
    "ppc_arms",
    "ppc_chart",
    "ppc_table",
    "populations_numbers",
    "prior_conflict_table",
    "safety_monitor_table",
]
