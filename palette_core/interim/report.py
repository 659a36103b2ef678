"""The open and the closed report of an interim look, from a stored analysis.

Every section is a function of a stored :class:`~palette_core.interim.analyse.InterimAnalysis` (or of
its folder) that returns a DataFrame (readable column names, rounded numbers) or an Altair
chart, so the book chapter and :func:`write_reports` show the same thing. Nothing here fits a
model or reads the export: :func:`load_analysis` reads the folder written by
:func:`palette_core.interim.analyse.analyse`.

Two reports, as DMC charters ask:

* the **open** report (for the trial steering committee and the open DMC session): accrual by
  site, trait and age group, completeness of the day-28 outcome, outcomes pooled across arms,
  data problems. It shows **no** arm-level outcome or comparison (no odds ratio, no arm);
* the **closed** report (DMC only): decisions, a forest plot of odds ratios per trait and arm
  with 95 % intervals, posterior probabilities, every rule with its value and threshold, the
  harm check in children, next-period allocation probabilities, safety by arm, the safety
  signals of the proposed safety rule (``data/protocol/safety_monitoring.yaml``: its threshold
  and consequence, and a banner when an arm signals), model diagnostics and the sensitivity
  analyses.

The split is enforced, not only listed: :func:`open_report_html` refuses a section of
:data:`CLOSED_ONLY_SECTIONS` and any table with an ``Arm`` column (by-arm data).

Both reports flag, in a banner and a section, patients allocated to an arm that was suspended
for their age group when they were randomised (a dose that cannot be computed cannot be
given, ``proposed/lifecycle.yaml`` ``suspension``): the open report lists the patients without
the arm, the closed report with the arm and the findings.

:func:`write_reports` writes both as self-contained HTML from one jinja2 template with
autoescape (``templates/report.html``, package data): tables as HTML (pandas escapes their
cells), charts as inline SVG rendered by vl-convert with no network access
(``allowed_base_urls=[]``), the stylesheet ``templates/report.css`` inlined in the page, no
script. The header names the trial, export, data cut, design hash, seed and git revision; the
bytes depend only on the stored analysis and the label table (no time stamp).

What a reader sees is words, not ids: every table (headers and cells), section text and chart
legend of both pages goes through the labeller of :func:`report_labels` (the design's names
and ``data/labels.yaml``, with each arm named "Trait: Arm" as the analysis's ``arms`` table
has it), as the book's tables go through
:func:`palette_core.chapters.common.table`. Two columns are shown as the export and the
validator wrote them, :data:`RAW_COLUMNS`: a bad value and the validator's message name the
cell of ``patients.csv`` to correct (the export column is named as in the export contract).
The CSV files of the analysis keep their ids.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import altair as alt
import jinja2
import pandas as pd
import vl_convert as vlc
from markupsafe import Markup

from palette_core import __version__
from palette_core.design.loader import Design, load_design
from palette_core.interim.analyse import (
    CHILD_HARM_ANALYSIS,
    PRIMARY,
    InterimAnalysis,
    load_analysis,
)
from palette_core.viz.forest import OR_TICKS, forest_plot
from palette_core.viz.labels import Labeller, load_labels

Source = InterimAnalysis | str | Path
OPEN_REPORT = "open_report.html"
CLOSED_REPORT = "closed_report.html"
#: Vega-Lite version for vl-convert: the one this Altair writes
VL_VERSION = ".".join(alt.SCHEMA_VERSION.split(".")[:2])
DECISION_COLOURS = {
    "continue": "#999999",
    "graduation": "#1a9850",
    "futility": "#fdae61",
    "harm": "#d73027",
    "cap_reached": "#4575b4",
    "unresolved": "#762a83",
}
DECISION_LABELS = {
    "continue": "Continue",
    "graduation": "Graduate",
    "futility": "Stop for futility",
    "harm": "Stop for harm",
    "cap_reached": "Cap reached (inconclusive)",
    "unresolved": "Unresolved: no decision (Monte Carlo error)",
}
STATUS_LABELS = {
    "rows": "Rows in export",
    "allocated": "Allocated",
    "complete": "Complete",
    "pending": "Pending",
    "missing": "Missing",
    "withdrawn_all_data": "Withdrawn (all data)",
    "invalid": "Invalid row",
}


#: Sections with data by arm: never in the open report (:func:`open_report_html` refuses them).
CLOSED_ONLY_SECTIONS = frozenset(
    {
        "decisions",
        "forest",
        "probabilities",
        "rules",
        "child-harm",
        "allocation",
        "safety",
        "safety-signals",
        "diagnostics",
        "sensitivity",
    }
)

#: Columns shown as the export and the validator wrote them (never relabelled): the value of a
#: bad cell and the validator's message, so a data manager finds the cell in patients.csv.
RAW_COLUMNS = ("Value", "Problem")


def _analysis(source: Source) -> InterimAnalysis:
    return source if isinstance(source, InterimAnalysis) else load_analysis(source)


@functools.cache
def _default_design_labels() -> Labeller:
    return load_labels(load_design())


def report_labels(source: Source, design: Design | None = None) -> Labeller:
    """The words of the reports: the labeller of ``design`` (by default the one
    :func:`~palette_core.design.loader.load_design` loads: its arms, traits, outcomes, age
    groups and the terms of ``data/labels.yaml``), with the analysis's own names on top: each
    arm as "Trait: Arm" (arms of different traits share names, "Usual care") and each outcome
    and trait as the stored analysis names them."""
    a = _analysis(source)
    base = _default_design_labels() if design is None else load_labels(design)
    names = dict(base.names)
    names.update(a.manifest.get("outcome_labels", {}))
    names.update(_trait_names(a))
    names.update(_labels(a))
    return Labeller(names)


def shown(df: pd.DataFrame, labels: Labeller) -> pd.DataFrame:
    """A section's table as the reports show it: column names and every text cell labelled,
    except the cells of :data:`RAW_COLUMNS`."""
    out = labels.frame(df.drop(columns=[c for c in RAW_COLUMNS if c in df.columns]))
    for c in RAW_COLUMNS:
        if c in df.columns:
            out.insert(list(df.columns).index(c), c, df[c].to_numpy())
    return out


def _num(x: Any, fmt: str) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(v) else format(v, fmt)


def _texts(values: Any) -> list[str]:
    """A column of text with empty cells as "" (a column read back with only empty cells is
    numeric NaN)."""
    return [v if isinstance(v, str) else "" for v in values]


def _interval(med: Any, lo: Any, hi: Any) -> str:
    return f"{_num(med, '.2f')} ({_num(lo, '.2f')}–{_num(hi, '.2f')})"


def _labels(a: InterimAnalysis) -> dict[str, str]:
    arms = a.table("arms")
    return {
        arm: f"{trait}: {name}"
        for arm, trait, name in zip(arms["arm"], arms["trait_name"], arms["name"], strict=True)
    }


def _trait_names(a: InterimAnalysis) -> dict[str, str]:
    arms = a.table("arms")
    return dict(zip(arms["trait"], arms["trait_name"], strict=True))


def _outcome_label(a: InterimAnalysis, oid: str) -> str:
    return a.manifest.get("outcome_labels", {}).get(oid, oid)


def _primary_outcome(a: InterimAnalysis) -> str:
    return a.manifest.get("primary_outcome", a.manifest["outcomes"][0])


# ----------------------------------------------------------------------------- header
def header(source: Source) -> pd.DataFrame:
    """Provenance of the analysis: trial, export, data cut, design hash, seed, git revision."""
    a = _analysis(source)
    m = a.manifest
    e = m.get("export", {})
    rows = [
        ("Trial", m.get("trial")),
        ("Export id", e.get("export_id")),
        ("Data cut", e.get("data_cut")),
        ("Export created by", e.get("created_by") or "–"),
        ("Design hash", m.get("design_hash")),
        ("Seed", m.get("seed")),
        ("Run size", m.get("size")),
        ("Git revision", m.get("git_revision")),
        ("palette-core", m.get("packages", {}).get("palette-core", __version__)),
        (
            "Export files (SHA-256)",
            "; ".join(f"{k} {v}" for k, v in e.get("files_sha256", {}).items()),
        ),
    ]
    return pd.DataFrame(rows, columns=["Item", "Value"])


def export_summary(source: Source) -> pd.DataFrame:
    """Rows of the export and what became of them (counts in = counts reported)."""
    c = _analysis(source).manifest["counts"]
    rows = [
        ("Rows in the export", c["rows"]),
        ("Valid rows", c["valid"]),
        ("Invalid rows (listed under data problems)", c["invalid"]),
        ("Withdrawn from all data use (excluded, counted)", c["withdrawn_all_data"]),
        ("Day-28 outcome complete (analysed)", c["complete"]),
        ("Day-28 outcome pending (day 28 after the data cut)", c["pending"]),
        ("Day-28 outcome missing", c["missing"]),
    ]
    return pd.DataFrame(rows, columns=["Rows of the export", "Patients"])


# ----------------------------------------------------------------------------- open report
def _status_table(df: pd.DataFrame, keys: dict[str, str]) -> pd.DataFrame:
    out = df.rename(columns={**keys, **STATUS_LABELS})
    total = {c: df[c].sum() for c in STATUS_LABELS if c in df.columns}
    first = list(keys.values())
    row = {first[0]: "Total", **{k: "" for k in first[1:]}}
    row.update({STATUS_LABELS[c]: int(v) for c, v in total.items()})
    return pd.concat([out, pd.DataFrame([row])], ignore_index=True)


def accrual_by_site(source: Source) -> pd.DataFrame:
    """Patients per site and outcome status (open report)."""
    a = _analysis(source)
    return _status_table(a.table("accrual_site"), {"country": "Country", "site_id": "Site"})


def accrual_by_trait(source: Source) -> pd.DataFrame:
    """Patients per assigned trait and outcome status (open report)."""
    a = _analysis(source)
    df = a.table("accrual_trait").copy()
    names = _trait_names(a)
    df["assigned_trait"] = df["assigned_trait"].map(lambda t: names.get(t, t))
    return _status_table(df, {"assigned_trait": "Trait"})


def accrual_by_age_group(source: Source) -> pd.DataFrame:
    """Patients per age group and outcome status (open report)."""
    return _status_table(_analysis(source).table("accrual_age_group"), {"age_group": "Age group"})


def accrual_chart(source: Source) -> alt.Chart:
    """Cumulative patients allocated per trait by month of randomisation (open report)."""
    a = _analysis(source)
    df = a.table("accrual_month").copy()
    names = _trait_names(a)
    df["Trait"] = df["trait"].map(lambda t: names.get(t, t))
    return (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", title="Month of randomisation"),
            y=alt.Y("cumulative:Q", title="Patients allocated (cumulative)"),
            color=alt.Color("Trait:N", sort=list(names.values())),
            tooltip=["Trait", "month", "allocated", "cumulative"],
        )
        .properties(width=520, height=260, title="Accrual by trait")
    )


def completeness(source: Source) -> pd.DataFrame:
    """Day-28 outcome completeness: patients by status (all statuses, zeros kept)."""
    df = _analysis(source).table("completeness")
    return pd.DataFrame(
        {"Status": [STATUS_LABELS.get(x, x) for x in df["status"]], "Patients": df["n"]}
    )


def incomplete_patients(source: Source) -> pd.DataFrame:
    """Patients without a complete day-28 outcome, with the reason (no arm shown)."""
    a = _analysis(source)
    df = a.table("incomplete").copy()
    names = _trait_names(a)
    df["assigned_trait"] = [names.get(t, t) for t in df["assigned_trait"]]
    df["status"] = [STATUS_LABELS.get(x, x) for x in df["status"]]
    return df.rename(
        columns={
            "line": "CSV line",
            "patient_id": "Patient",
            "site_id": "Site",
            "assigned_trait": "Trait",
            "age_group": "Age group",
            "status": "Status",
            "status_reason": "Reason",
        }
    )


def pooled_outcomes_table(source: Source) -> pd.DataFrame:
    """Outcomes of complete patients pooled across all arms (open report)."""
    a = _analysis(source)
    df = a.table("pooled_outcomes")
    names = _trait_names(a)
    out = pd.DataFrame(
        {
            "Group": df["group"],
            "Level": [names.get(v, v) for v in df["level"]],
            "Complete": df["n_complete"],
            "Deaths by day 28": [
                f"{int(k)} ({_num(100 * r, '.1f')} %)" if n else "–"
                for k, r, n in zip(df["deaths"], df["mortality"], df["n_complete"], strict=True)
            ],
            "OSFD median (IQR)": [
                f"{_num(m, '.0f')} ({_num(q1, '.0f')}–{_num(q3, '.0f')})" if n else "–"
                for m, q1, q3, n in zip(
                    df["osfd_median"], df["osfd_q1"], df["osfd_q3"], df["n_complete"], strict=True
                )
            ],
            "OSFD mean": [_num(v, ".1f") for v in df["osfd_mean"]],
            "ISTH major bleeding": df["isth_major_bleeding"],
            "Secondary infection": df["secondary_infection"],
        }
    )
    return out


def pooled_osfd_chart(source: Source) -> alt.Chart:
    """Distribution of organ-support-free days, all arms pooled (-1 = death; open report)."""
    df = _analysis(source).table("pooled_osfd")
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("osfd28:O", title="Organ-support-free days to day 28 (-1 = death)"),
            y=alt.Y("patients:Q", title="Patients"),
            color=alt.condition(alt.datum.osfd28 < 0, alt.value("#b2182b"), alt.value("#4d4d4d")),
            tooltip=["osfd28", "patients"],
        )
        .properties(width=560, height=200, title="OSFD to day 28, all arms pooled")
    )


def _suspended(a: InterimAnalysis) -> pd.DataFrame:
    """The stored table of suspended allocations (empty for an analysis written before it)."""
    if "suspended_allocations" not in a.tables:
        return pd.DataFrame(columns=["line", "patient_id", "site_id", "randomisation_date"])
    return a.table("suspended_allocations")


def suspended_allocations_open(source: Source) -> pd.DataFrame:
    """Patients allocated to an arm suspended for their age group, without the arm (open)."""
    df = _suspended(_analysis(source))
    cols = {
        "line": "CSV line",
        "patient_id": "Patient",
        "site_id": "Site",
        "randomisation_date": "Randomised",
        "age_group": "Age group",
    }
    return df[[c for c in cols if c in df.columns]].rename(columns=cols)


def suspended_allocations_closed(source: Source) -> pd.DataFrame:
    """Patients allocated to an arm suspended for their age group, with the arm and the
    findings that suspended it (closed)."""
    a = _analysis(source)
    df = _suspended(a)
    labels = _labels(a)
    out = df.rename(
        columns={
            "line": "CSV line",
            "patient_id": "Patient",
            "site_id": "Site",
            "randomisation_date": "Randomised",
            "assigned_trait": "Trait",
            "age_group": "Age group",
            "arm": "Arm",
            "findings": "Suspended by",
        }
    )
    if "Arm" in out.columns:
        out["Arm"] = out["Arm"].map(lambda x: labels.get(x, x))
    return out


def suspended_banner(source: Source) -> str:
    """The warning both reports show when patients were allocated to a suspended arm; ``""``
    when none was."""
    n = len(_suspended(_analysis(source)))
    if not n:
        return ""
    return (
        f"{n} patient(s) were allocated to an arm suspended for their age group at "
        "randomisation (a dose that cannot be computed cannot be given): see the section "
        "Allocations to suspended arms."
    )


def data_problems(source: Source) -> pd.DataFrame:
    """Every problem found in the export, with CSV line, patient and field."""
    df = _analysis(source).table("errors")
    return df.rename(
        columns={
            "line": "CSV line",
            "row": "Data row",
            "patient_id": "Patient",
            "field": "Export column",
            "value": "Value",
            "message": "Problem",
        }
    )


# ----------------------------------------------------------------------------- closed report
def decisions_table(source: Source) -> pd.DataFrame:
    """The decision for every arm, with the rule that decided and why (primary analysis)."""
    a = _analysis(source)
    d = a.table("decisions")
    labels = _labels(a)
    states = a.table("arm_states").set_index("arm")
    return pd.DataFrame(
        {
            "Arm": [labels.get(x, x) for x in d["arm"]],
            "Decision": [DECISION_LABELS.get(x, x) for x in d["decision"]],
            "Reason": _texts(d["reason"]),
            "Unresolved": _texts(d["unresolved"]),
            "Complete": d["n_complete"],
            "Allocated": d["n_allocated"],
            "Not evaluable": _texts(d["not_evaluable"]),
            "State next period": [states.loc[x, "state_next_period"] for x in d["arm"]],
        }
    )


def forest_data(
    source: Source, truth: pd.DataFrame | None = None, *, analysis: str = PRIMARY
) -> pd.DataFrame:
    """ORs (median, 95 % interval) per outcome and arm of ``analysis``, with ``true_or`` when
    ``truth`` (columns ``arm``, ``true_or``, optionally ``outcome``) is given."""
    a = _analysis(source)
    q = a.quantities
    q = q[(q["analysis"] == analysis) & (q["population"] == "all")].copy()
    labels = _labels(a)
    q["label"] = q["arm"].map(lambda x: labels.get(x, x))
    q["trait_name"] = q["trait"].map(lambda t: _trait_names(a).get(t, t))
    q["outcome_label"] = q["outcome"].map(lambda o: _outcome_label(a, o))
    q["true_or"] = math.nan
    if truth is not None:
        t = truth.copy()
        keys = ["arm", "outcome"] if "outcome" in t.columns else ["arm"]
        q = q.drop(columns="true_or").merge(t[[*keys, "true_or"]], on=keys, how="left")
    return q.reset_index(drop=True)


def forest_chart(
    source: Source, truth: pd.DataFrame | None = None, *, analysis: str = PRIMARY
) -> alt.FacetChart:
    """Forest plot: OR (> 1 = benefit) with its 95 % interval per trait and arm, one panel per
    outcome; true ORs as black diamonds when ``truth`` is given (closed report)."""
    df = forest_data(source, truth, analysis=analysis)
    return forest_plot(df, f"Odds ratios vs usual care ({analysis} analysis)")


def _with_mcse(values: Any, errors: Any) -> list[str]:
    return [f"{_num(v, '.3f')} ({_num(e, '.3f')})" for v, e in zip(values, errors, strict=True)]


def probabilities_table(source: Source, *, analysis: str = PRIMARY) -> pd.DataFrame:
    """Posterior probabilities (with their Monte Carlo standard error in brackets) and ORs per
    arm and outcome (closed report)."""
    df = forest_data(source, analysis=analysis)
    ref_b = df["ref_benefit"].iloc[0] if len(df) else 1.0
    ref_f = df["ref_futility"].iloc[0] if len(df) else 1.1
    ref_h = df["ref_harm"].iloc[0] if len(df) else 1.0
    return pd.DataFrame(
        {
            "Arm": df["label"],
            "Outcome": df["outcome_label"],
            f"Pr(OR > {ref_b:g}) (MCSE)": _with_mcse(df["pr_benefit"], df["mcse_pr_benefit"]),
            f"Pr(OR > {ref_f:g}) (MCSE)": _with_mcse(df["pr_or_gt_ref"], df["mcse_pr_or_gt_ref"]),
            f"Pr(OR < {ref_h:g}) (MCSE)": _with_mcse(df["pr_harm"], df["mcse_pr_harm"]),
            "Pr(best in trait)": [_num(v, ".3f") for v in df["pr_best"]],
            "OR median (95 % interval)": [
                _interval(m, lo, hi)
                for m, lo, hi in zip(df["or_median"], df["or_low"], df["or_high"], strict=True)
            ],
            "Draws": df["n_draws"],
        }
    )


def _rules_display(a: InterimAnalysis, df: pd.DataFrame) -> pd.DataFrame:
    labels = _labels(a)
    return pd.DataFrame(
        {
            "Arm": [labels.get(x, x) for x in df["arm"]],
            "Rule": df["rule"],
            "Outcome": [_outcome_label(a, o) if isinstance(o, str) else "–" for o in df["outcome"]],
            "Quantity": df["quantity"],
            "Value": [_num(v, ".4g") for v in df["value"]],
            "MCSE": [_num(v, ".2g") for v in df["mcse"]],
            "Threshold": [
                f"{c} {_num(t, 'g')}"
                for c, t in zip(df["comparison"], df["threshold"], strict=True)
            ],
            "Minimum complete": df["min_complete"],
            "Complete": df["n_complete"],
            "Status": df["status"],
        }
    )


def rules_table(source: Source) -> pd.DataFrame:
    """Every decision rule for every arm: value, threshold, minimum information, status."""
    a = _analysis(source)
    return _rules_display(a, a.table("rules"))


def child_harm_table(source: Source) -> pd.DataFrame:
    """The harm rule in children on the children-only effect without borrowing (closed)."""
    a = _analysis(source)
    df = a.table("child_harm")
    if df.empty:
        return pd.DataFrame(columns=["Arm", "Rule", "Outcome", "Value", "Status"])
    return _rules_display(a, df)


def children_decisions_table(source: Source) -> pd.DataFrame:
    """The children's decision of every arm the children's rule evaluated (closed report):
    close to children or continue in them, whether the rule binds, and why."""
    a = _analysis(source)
    if "children_decisions" not in a.tables:
        return pd.DataFrame(
            {"Note": ["this analysis was written before the children's rule was applied"]}
        )
    df = a.table("children_decisions")
    labels = _labels(a)
    return pd.DataFrame(
        {
            "Arm": [labels.get(x, x) for x in df["arm"]],
            "Children's decision": df["decision"],
            "Binding": df["binding"].map(
                lambda b: "not stated" if pd.isna(b) else ("yes" if b else "advisory")
            ),
            "Reason": df["reason"],
        }
    )


def allocation_table(source: Source) -> pd.DataFrame:
    """Allocation probabilities for the next period, per trait and arm (closed report)."""
    a = _analysis(source)
    df = a.table("allocation")
    labels = _labels(a)
    return pd.DataFrame(
        {
            "Arm": [labels.get(x, x) for x in df["arm"]],
            "State next period": df["state"],
            "Rule": df["phase"],
            "Complete": df["n_complete"],
            "Pr(best)": [_num(v, ".3f") for v in df["pr_best"]],
            "Allocation probability": [_num(v, ".3f") for v in df["probability"]],
        }
    )


def allocation_chart(source: Source) -> alt.Chart:
    """Next-period allocation probability per arm, grouped by trait (closed report)."""
    a = _analysis(source)
    df = a.table("allocation").copy()
    labels = _labels(a)
    names = _trait_names(a)
    df["label"] = df["arm"].map(lambda x: labels.get(x, x))
    df["trait_name"] = df["trait"].map(lambda t: names.get(t, t))
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X(
                "probability:Q", title="Allocation probability", scale=alt.Scale(domain=[0, 1])
            ),
            y=alt.Y("label:N", sort=list(df["label"]), title=None, axis=alt.Axis(labelLimit=260)),
            color=alt.Color("trait_name:N", title="Trait", legend=alt.Legend(orient="bottom")),
            tooltip=["label", "phase", "probability"],
        )
        .properties(width=360, height=alt.Step(14), title="Allocation for the next period")
    )


def safety_table(source: Source) -> pd.DataFrame:
    """Deaths, ISTH major bleeding and secondary infection by arm, complete patients (closed)."""
    a = _analysis(source)
    df = a.table("safety")
    labels = _labels(a)

    def cell(k: Any, r: Any, n: Any) -> str:
        return f"{int(k)} ({_num(100 * r, '.1f')} %)" if n else "–"

    return pd.DataFrame(
        {
            "Arm": [labels.get(x, x) for x in df["arm"]],
            "Allocated": df["n_allocated"],
            "Complete": df["n_complete"],
            "Deaths by day 28": [
                cell(k, r, n)
                for k, r, n in zip(df["deaths"], df["mortality"], df["n_complete"], strict=True)
            ],
            "ISTH major bleeding": [
                cell(k, r, n)
                for k, r, n in zip(
                    df["isth_major_bleeding"], df["bleeding_rate"], df["n_complete"], strict=True
                )
            ],
            "Secondary infection": [
                cell(k, r, n)
                for k, r, n in zip(
                    df["secondary_infection"], df["infection_rate"], df["n_complete"], strict=True
                )
            ],
        }
    )


def _safety_rule(a: InterimAnalysis) -> dict[str, Any] | None:
    """The safety rule the analysis applied (manifest ``safety_rule``), ``None`` for an analysis
    written before the rule was applied."""
    rule = a.manifest.get("safety_rule")
    return rule if "safety_signals" in a.tables and rule else None


def safety_signals_table(source: Source) -> pd.DataFrame:
    """The proposed safety rule for every monitored arm and safety outcome: events / patients in
    the arm and in usual care of its trait, Pr(risk higher in the arm), and whether it signals
    (closed report)."""
    a = _analysis(source)
    if _safety_rule(a) is None:
        return pd.DataFrame(
            {"Note": ["this analysis was written before the safety rule was applied"]}
        )
    df = a.table("safety_signals")
    labels = _labels(a)

    def verdict(signal: Any, evaluable: Any, minimum: Any) -> str:
        if not bool(evaluable):
            return f"not evaluable (fewer than {int(minimum)} patients)"
        return "SIGNAL" if bool(signal) else "no"

    return pd.DataFrame(
        {
            "Arm": [labels.get(x, x) for x in df["arm"]],
            "Outcome": [_outcome_label(a, o) for o in df["outcome"]],
            "Arm: events / patients": [
                f"{int(e)} / {int(n)}" for e, n in zip(df["events_arm"], df["n_arm"], strict=True)
            ],
            "Usual care: events / patients": [
                f"{int(e)} / {int(n)}"
                for e, n in zip(df["events_control"], df["n_control"], strict=True)
            ],
            "Pr(risk higher in the arm)": [_num(v, ".3f") for v in df["probability"]],
            "Threshold": [f"> {_num(t, 'g')}" for t in df["threshold"]],
            "Signal": [
                verdict(sig, ev, m)
                for sig, ev, m in zip(
                    df["signal"], df["evaluable"], df["min_patients_arm"], strict=True
                )
            ],
        }
    )


def safety_rule_text(source: Source) -> str:
    """The rule in words, with its numbers and its consequence as
    ``safety_monitoring.yaml`` states them (the manifest's copy)."""
    a = _analysis(source)
    r = _safety_rule(a)
    if r is None:
        return "This analysis was written before the safety rule was applied."
    return (
        f"The {r['status']} rule of data/{r['file']}, among patients with a complete day-28 "
        f"outcome: each monitored arm is compared with {r['comparison']} "
        f"(Beta({r['prior_events']}, {r['prior_non_events']}) priors); a safety signal when "
        f"Pr(risk higher in the arm) > {_num(r['threshold'], 'g')} with at least "
        f"{r['min_patients_arm']} patients in the arm. Consequence: {r['consequence']}"
    )


def safety_banner(source: Source) -> str:
    """The warning the closed report shows when an arm signals; ``""`` when none does."""
    a = _analysis(source)
    r = _safety_rule(a)
    if r is None:
        return ""
    df = a.table("safety_signals")
    fired = df[df["signal"].astype(bool)]
    if fired.empty:
        return ""
    labels = _labels(a)
    which = "; ".join(
        f"{labels.get(x, x)} ({_outcome_label(a, o)}, Pr {_num(p, '.3f')})"
        for x, o, p in zip(fired["arm"], fired["outcome"], fired["probability"], strict=True)
    )
    return (
        f"SAFETY SIGNAL: {len(fired)} signal(s) under the {r['status']} safety rule "
        f"(Pr(risk higher in the arm) > {_num(r['threshold'], 'g')}): {which}. See the section "
        "Safety signals."
    )


def diagnostics_table(source: Source) -> pd.DataFrame:
    """Convergence gates of every fit: R-hat, bulk and tail ESS, divergences, with the settings
    of each escalation attempt and the runs of chains pooled (closed report)."""
    a = _analysis(source)
    df = a.table("diagnostics")
    return pd.DataFrame(
        {
            "Analysis": df["analysis"],
            "Outcome": [_outcome_label(a, o) for o in df["outcome"]],
            "Fit": df["fit"],
            "Attempt": [
                f"{int(k)}{'' if bool(u) else ' (replaced)'}"
                for k, u in zip(df["attempt"], df["used"], strict=True)
            ],
            "Settings": [
                f"{int(c)} chains x ({int(w)} + {int(n)}), target {_num(t, 'g')}"
                for c, w, n, t in zip(
                    df["num_chains"],
                    df["num_warmup"],
                    df["num_samples"],
                    df["target_accept_prob"],
                    strict=True,
                )
            ],
            "Draws": df["n_draws"],
            "Gates passed": ["yes" if bool(g) else "NO" for g in df["gates_passed"]],
            "Divergences": [_num(v, ".0f") for v in df["divergences"]],
            "Max R-hat": [_num(v, ".3f") for v in df["max_rhat"]],
            "Min bulk ESS": [_num(v, ".0f") for v in df["min_ess_bulk"]],
            "Min tail ESS": [_num(v, ".0f") for v in df["min_ess_tail"]],
            "Failures": _texts(df["failures"]),
        }
    )


def sensitivity_table(source: Source, outcome: str | None = None) -> pd.DataFrame:
    """OR median (95 % interval) per arm under the primary and every sensitivity analysis."""
    a = _analysis(source)
    outcome = outcome or _primary_outcome(a)
    q = a.quantities
    q = q[(q["outcome"] == outcome) & (q["population"] == "all")]
    labels = _labels(a)
    cells = zip(q["or_median"], q["or_low"], q["or_high"], strict=True)
    q = q.assign(cell=[_interval(m, lo, hi) for m, lo, hi in cells])
    order = list(dict.fromkeys(q["analysis"]))
    wide = q.pivot(index="arm", columns="analysis", values="cell")
    arms = list(dict.fromkeys(q["arm"]))
    wide = wide.reindex(index=arms, columns=order).reset_index()
    wide.columns.name = None
    wide["arm"] = wide["arm"].map(lambda x: labels.get(x, x))
    wide.insert(1, "Outcome", _outcome_label(a, outcome))
    return wide.rename(columns={"arm": "Arm"})


def sensitivity_decisions(source: Source) -> pd.DataFrame:
    """The decision each analysis would give (decisions are taken on the primary only), in the
    words of the decisions table (:data:`DECISION_LABELS`)."""
    a = _analysis(source)
    df = a.table("sensitivity_decisions").copy()
    labels = _labels(a)
    df["arm"] = df["arm"].map(lambda x: labels.get(x, x))
    for c in df.columns.drop("arm"):
        df[c] = [DECISION_LABELS.get(x, x) if isinstance(x, str) else x for x in df[c]]
    return df.rename(columns={"arm": "Arm"})


def sensitivity_chart(
    source: Source, outcome: str | None = None, names: Callable[[str], str] | None = None
) -> alt.Chart:
    """ORs and 95 % intervals per arm under every analysis, for one outcome (closed report);
    ``names`` turns an analysis id into the words of the legend (e.g. a
    :class:`~palette_core.viz.labels.Labeller`), by default the id itself."""
    a = _analysis(source)
    outcome = outcome or _primary_outcome(a)
    q = a.quantities
    q = q[(q["outcome"] == outcome) & (q["population"] == "all")].copy()
    if names is not None:
        q["analysis"] = [str(names(x)) for x in q["analysis"]]
    labels = _labels(a)
    q["label"] = q["arm"].map(lambda x: labels.get(x, x))
    order = list(dict.fromkeys(q["label"]))
    analyses = list(dict.fromkeys(q["analysis"]))
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    x_scale = alt.Scale(type="log", zero=False)
    colour = alt.Color("analysis:N", sort=analyses, title="Analysis")
    base = alt.Chart(q).encode(y=y, yOffset=alt.YOffset("analysis:N", sort=analyses))
    return alt.layer(
        alt.Chart(q)
        .mark_rule(strokeDash=[4, 3], color="#555555")
        .encode(x=alt.X(datum=1, scale=x_scale, axis=alt.Axis(values=OR_TICKS, format="~g"))),
        base.mark_rule().encode(
            x=alt.X("or_low:Q", scale=x_scale, title="Odds ratio (> 1 = benefit)"),
            x2="or_high:Q",
            color=colour,
        ),
        base.mark_point(filled=True, size=20).encode(
            x=alt.X("or_median:Q", scale=x_scale), color=colour
        ),
    ).properties(
        width=420,
        height=alt.Step(6),  # per analysis within an arm (yOffset)
        title=f"Sensitivity analyses: {_outcome_label(a, outcome)}",
    )


def accrual_by_arm(source: Source) -> pd.DataFrame:
    """Patients per arm and outcome status (closed report: allocation by arm)."""
    a = _analysis(source)
    df = a.table("accrual_arm").copy()
    labels = _labels(a)
    df["arm"] = df["arm"].map(lambda x: labels.get(x, x))
    df = df.drop(columns="assigned_trait")
    return _status_table(df, {"arm": "Arm"})


# ----------------------------------------------------------------------------- HTML
#: The page template and its stylesheet (package data in ``palette_core/interim/templates``).
TEMPLATE = "report.html"
STYLESHEET = "report.css"
_TEMPLATES = resources.files("palette_core.interim") / "templates"
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("palette_core.interim", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """An Altair chart as an SVG string (vl-convert, no network access)."""
    return vlc.vegalite_to_svg(chart.to_dict(), vl_version=VL_VERSION, allowed_base_urls=[])


def _table_html(df: pd.DataFrame, cls: str = "palette-table") -> Markup:
    """A table as HTML (pandas escapes its cells); empty for a table without rows."""
    if df.empty:
        return Markup("")
    return Markup(df.to_html(index=False, border=0, classes=cls, na_rep="–", escape=True))


Section = tuple[str, str, str, list[Any]]  # id, title, text, parts (DataFrame or chart)


def _part(part: Any, labels: Labeller) -> dict[str, Any]:
    """One part of a section for the template: a table (labelled, :func:`shown`) or a figure,
    as HTML."""
    if isinstance(part, pd.DataFrame):
        return {"kind": "table", "html": _table_html(shown(part, labels))}
    return {"kind": "figure", "html": Markup(chart_svg(part))}


def no_decision_reason(source: Source) -> str | None:
    """Why the look took no decision (the primary fit failed the gates), or ``None``."""
    m = _analysis(source).manifest
    return None if m.get("decisions_taken", True) else str(m.get("no_decision_reason"))


def _gates_text(m: dict[str, Any]) -> str:
    g = m.get("gates") or {}
    if not g:
        return "the convergence gates"
    return (
        f"R-hat < {g['max_rhat']:g}, bulk and tail ESS > {g['min_ess_bulk']:g}, at most "
        f"{g['max_divergences']:g} divergent transitions"
    )


def _render(
    title: str,
    kind: str,
    a: InterimAnalysis,
    banner: str,
    sections: list[Section],
    labels: Labeller | None = None,
    safety_warning: str = "",
) -> str:
    """The page of :data:`TEMPLATE`: the same analysis gives the same text. Every table, section
    text and warning goes through ``labels`` (by default :func:`report_labels`)."""
    m = a.manifest
    e = m.get("export", {})
    labels = report_labels(a) if labels is None else labels
    no_decision = no_decision_reason(a)

    def words(text: str) -> str:
        return str(labels(text))

    return _ENV.get_template(TEMPLATE).render(
        title=title,
        kind=kind,
        banner=banner,
        trial=m.get("trial", ""),
        export_id=e.get("export_id", ""),
        data_cut=e.get("data_cut", ""),
        gates_passed=m.get("gates_passed", True),
        suspended_warning=words(suspended_banner(a)),
        safety_warning=words(safety_warning),
        gates=_gates_text(m),
        no_decision=None if no_decision is None else words(no_decision),
        provenance=_table_html(header(a), "meta"),
        stylesheet=Markup((_TEMPLATES / STYLESHEET).read_text(encoding="utf-8")),
        sections=[
            {"id": sid, "title": t, "text": words(text), "parts": [_part(p, labels) for p in parts]}
            for sid, t, text, parts in sections
        ],
    )


def open_report_sections(source: Source) -> list[Section]:
    """The sections of the open report (no arm-level outcome)."""
    a = _analysis(source)
    return [
        ("summary", "Export summary", "Every row of the export is accounted for.",
         [export_summary(a)]),
        ("accrual-site", "Accrual by site", "Patients by site and day-28 outcome status.",
         [accrual_by_site(a)]),
        ("accrual-trait", "Accrual by trait", "Patients by assigned trait, all arms together.",
         [accrual_by_trait(a), accrual_chart(a)]),
        ("accrual-age", "Accrual by age group", "", [accrual_by_age_group(a)]),
        ("completeness", "Completeness of the day-28 outcome",
         "Interim analyses use complete day-28 outcomes only; pending and missing outcomes are "
         "reported here.", [completeness(a), incomplete_patients(a)]),
        ("pooled", "Outcomes pooled across arms",
         "Complete patients of all arms together; no comparison between arms is shown in the "
         "open report.", [pooled_outcomes_table(a), pooled_osfd_chart(a)]),
        ("problems", "Data problems",
         "Rows that break the export contract: they are kept, counted and excluded from the "
         "analysis.", [data_problems(a)]),
        ("suspended", "Allocations to suspended arms",
         "Patients allocated to an arm that was suspended for their age group when they were "
         "randomised: its dose could not be computed, so it should not have been given. They "
         "stay in the analysis; the arm and the findings are in the closed report.",
         [suspended_allocations_open(a)]),
    ]  # fmt: skip


def _decision_section(a: InterimAnalysis) -> Section:
    reason = no_decision_reason(a)
    if reason is not None:
        return ("decisions", "Decisions (primary analysis)", f"No decision: {reason}", [])
    unresolved = a.manifest.get("monte_carlo", {}).get("unresolved") or []
    mc = a.manifest.get("monte_carlo", {})
    text = (
        "Decision rules of proposed/decisions.yaml applied to the primary analysis; every rule "
        "reads the adults' effect (the reference age stratum of the joint model; proposed, "
        "data/protocol/decision_estimands.yaml). A rule whose "
        f"probability lies within {_num(mc.get('mcse_margin'), 'g')} Monte Carlo standard errors "
        "of its threshold after the extra draws of proposed/interim_analysis.yaml is unresolved "
        "and decides nothing"
        + (f"; unresolved at this look: {'; '.join(unresolved)}." if unresolved else ".")
    )
    return ("decisions", "Decisions (primary analysis)", text, [decisions_table(a)])


def _allocation_section(a: InterimAnalysis) -> Section:
    reason = no_decision_reason(a)
    title = "Allocation for the next period"
    if reason is not None:
        return ("allocation", title, f"No allocation for the next period: {reason}", [])
    return (
        "allocation",
        title,
        "Response-adaptive allocation (proposed/allocation.yaml) on the primary outcome, with "
        "the arms closed by this look's decisions.",
        [allocation_table(a), allocation_chart(a)],
    )


def closed_report_sections(
    source: Source, truth: pd.DataFrame | None = None, labels: Labeller | None = None
) -> list[Section]:
    """The sections of the closed report (DMC only); ``labels`` (by default
    :func:`report_labels`) names the analyses in the legend of the sensitivity chart."""
    a = _analysis(source)
    primary = _primary_outcome(a)
    labels = report_labels(a) if labels is None else labels
    sections: list[Section] = [
        ("summary", "Export summary", "", [export_summary(a), accrual_by_arm(a)]),
        ("suspended", "Allocations to suspended arms",
         "Patients allocated to an arm suspended for their age group at randomisation, with the "
         "registry findings that block its dose (proposed/lifecycle.yaml suspension); they stay "
         "in the analysis.", [suspended_allocations_closed(a)]),
        _decision_section(a),
        ("forest", "Odds ratios by trait and arm",
         "Posterior median and 95 % equal-tailed interval of the odds ratio vs usual care of the "
         "same trait; OR > 1 means benefit for every outcome.", [forest_chart(a, truth)]),
        ("probabilities", "Posterior probabilities",
         "Each probability with its Monte Carlo standard error in brackets (from the effective "
         "sample size of its indicator draws).", [probabilities_table(a)]),
        ("rules", "Every rule for every arm", "", [rules_table(a)]),
        ("child-harm", "Children's rule: harm in children (no borrowing)",
         "The harm rule applied to the children-only effect of the fit without borrowing "
         f"({labels(CHILD_HARM_ANALYSIS)}) with children's complete outcomes. It does not change the arm's decision (which reads "
         "the adults' effect); where it fires, the children's rule of "
         "data/protocol/decision_estimands.yaml applies: the DMC closes the arm to children "
         "(proposed, binding) and the arm continues in adults.",
         [child_harm_table(a), children_decisions_table(a)]),
        _allocation_section(a),
        ("safety", "Safety by arm", "Among patients with a complete day-28 outcome.",
         [safety_table(a)]),
        ("safety-signals", "Safety signals", safety_rule_text(a), [safety_signals_table(a)]),
        ("diagnostics", "Model diagnostics",
         f"Gates: {_gates_text(a.manifest)}. A primary fit that fails them is run again with "
         "each escalation step of proposed/interim_analysis.yaml (attempt 1, 2, ...); a fit "
         "with more than one run of chains received extra draws for an unresolved rule.",
         [diagnostics_table(a)]),
        ("sensitivity", "Sensitivity analyses",
         "Odds ratio median (95 % interval) under each analysis, and the decision each would "
         "give; decisions are taken on the primary analysis only.",
         [sensitivity_table(a, primary), sensitivity_chart(a, primary, labels),
          *[sensitivity_table(a, o) for o in a.manifest["outcomes"] if o != primary],
          sensitivity_decisions(a)]),
    ]  # fmt: skip
    return sections


def check_open_sections(sections: list[Section]) -> None:
    """Refuse by-arm data in the open report: a section of :data:`CLOSED_ONLY_SECTIONS` or a
    table with an ``Arm`` column raises :class:`ValueError`."""
    for sid, title, _, parts in sections:
        if sid in CLOSED_ONLY_SECTIONS:
            raise ValueError(f"open report: section {title!r} is for the closed report only")
        for part in parts:
            if isinstance(part, pd.DataFrame) and "Arm" in part.columns:
                raise ValueError(f"open report: section {title!r} has a table by arm")


def open_report_html(source: Source, labels: Labeller | None = None) -> str:
    """The open report as HTML; ``labels`` by default :func:`report_labels`. Its sections pass
    :func:`check_open_sections` (no data by arm)."""
    a = _analysis(source)
    labels = report_labels(a) if labels is None else labels
    banner = "OPEN REPORT: accrual, completeness and pooled data; no results by arm."
    sections = open_report_sections(a)
    check_open_sections(sections)
    return _render("open report", "open", a, banner, sections, labels)


def closed_report_html(
    source: Source, truth: pd.DataFrame | None = None, labels: Labeller | None = None
) -> str:
    """The closed report as HTML; ``labels`` by default :func:`report_labels`."""
    a = _analysis(source)
    labels = report_labels(a) if labels is None else labels
    banner = "CLOSED REPORT: for the Data Monitoring Committee only; contains results by arm."
    sections = closed_report_sections(a, truth, labels)
    return _render("closed report", "closed", a, banner, sections, labels, safety_banner(a))


def write_reports(
    analysis_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    truth: pd.DataFrame | None = None,
    design: Design | None = None,
) -> tuple[Path, Path]:
    """Write ``open_report.html`` and ``closed_report.html`` for a stored analysis.

    ``out_dir`` defaults to ``analysis_dir``. ``truth`` (``arm``, ``true_or``) adds the true
    ORs of a synthetic export to the forest plot. ``design`` (by default the one
    :func:`~palette_core.design.loader.load_design` loads) gives the labels
    (:func:`report_labels`). Returns the two paths.
    """
    a = load_analysis(analysis_dir)
    labels = report_labels(a, design)
    out = Path(analysis_dir if out_dir is None else out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / OPEN_REPORT, out / CLOSED_REPORT)
    writers: tuple[Callable[[], str], ...] = (
        lambda: open_report_html(a, labels),
        lambda: closed_report_html(a, truth, labels),
    )
    for path, make in zip(paths, writers, strict=True):
        path.write_bytes(make().encode("utf-8"))
    return paths


__all__ = [
    "CLOSED_ONLY_SECTIONS",
    "CLOSED_REPORT",
    "OPEN_REPORT",
    "accrual_by_age_group",
    "accrual_by_arm",
    "accrual_by_site",
    "accrual_by_trait",
    "accrual_chart",
    "allocation_chart",
    "allocation_table",
    "chart_svg",
    "child_harm_table",
    "check_open_sections",
    "children_decisions_table",
    "closed_report_html",
    "closed_report_sections",
    "completeness",
    "data_problems",
    "decisions_table",
    "diagnostics_table",
    "export_summary",
    "forest_chart",
    "forest_data",
    "header",
    "incomplete_patients",
    "load_analysis",
    "no_decision_reason",
    "open_report_html",
    "open_report_sections",
    "pooled_osfd_chart",
    "pooled_outcomes_table",
    "probabilities_table",
    "report_labels",
    "rules_table",
    "safety_banner",
    "safety_rule_text",
    "safety_signals_table",
    "safety_table",
    "shown",
    "suspended_allocations_closed",
    "suspended_allocations_open",
    "suspended_banner",
    "sensitivity_chart",
    "sensitivity_decisions",
    "sensitivity_table",
    "write_reports",
]
