"""Chapter "Interventions and dosing": the arms of each trait with their registry doses, which
doses can be computed, the shared effects, and the registry findings with their signals."""

from __future__ import annotations

import altair as alt
import pandas as pd
from IPython.display import Markdown

from palette_core.design.loader import Design
from palette_core.registry.doses import dose_cell
from palette_core.registry.fidelity import DOSE_CONFLICT_RATIO, FidelityReport
from palette_core.viz.labels import LABELS, Labeller, trait_label

#: Severities of the registry findings, most severe first, and their colours.
SEVERITY_ORDER = ["critical", "major", "minor", "info"]
SEVERITY_COLOURS = ["#b2182b", "#ef8a62", "#999999", "#d1e5f0"]


def arm_table(design: Design, trait_id: str) -> pd.DataFrame:
    """The arms of one trait with route and the registry doses for adults and children.

    Parameters
    ----------
    design
        The loaded design.
    trait_id
        The trait whose arms are listed, usual care first.

    Returns
    -------
    pandas.DataFrame
        Arm (planned arms say when they open), route, the adults' and children's dose text, and
        the traits an arm shares its effect with.
    """
    rows = []
    for a in design.arms_of(trait_id):
        name = a.name
        if a.availability.initial_state == "planned":
            name += f" (planned: {a.availability.opens_when.rstrip('.')})"
        group = design.shared_group_of(a.id)
        shared = "-"
        if group is not None:
            shared = ", ".join(
                trait_label(design, design.arm(x).trait) for x in group.arms if x != a.id
            )
        control = a.role == "control"
        rows.append(
            {
                LABELS["arm"]: name,
                LABELS["route"]: "-"
                if control
                else ", ".join(sorted({c.route or "not stated" for c in a.components})),
                LABELS["dose_adult"]: "-" if control else dose_cell(design, a, "adult").text,
                LABELS["dose_child"]: "-" if control else dose_cell(design, a, "child").text,
                LABELS["shared"]: shared,
            }
        )
    return pd.DataFrame(rows)


def dose_status_table(design: Design) -> pd.DataFrame:
    """Long table: one row per experimental arm and age group with the dose status.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Columns ``trait``, ``arm``, ``arm_id``, ``label``, ``age_group``, ``status`` (stated,
        blocked, not stated, not open) and ``findings``.
    """
    rows = []
    for t in design.traits:
        for a in design.experimental_arms(t.id):
            for g in design.strata.age_groups:
                cell = dose_cell(design, a, g.id)
                rows.append(
                    {
                        "trait": t.name,
                        "arm": a.name,
                        "arm_id": a.id,
                        "label": f"{t.short_name or t.name}: {a.short_name or a.name}",
                        "age_group": g.label,
                        "status": cell.status,
                        "findings": ", ".join(cell.findings) or "-",
                    }
                )
    return pd.DataFrame(rows)


def dose_status_summary(design: Design) -> dict[str, int]:
    """Counts for the prose: blocked (arm, age group) cells, and arms blocked for every age they admit.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    dict
        ``blocked_cells`` and ``arms_blocked_everywhere``.
    """
    df = dose_status_table(design)
    admitted = df[df.status != "not open"]
    everywhere = admitted.groupby("arm_id").status.apply(lambda s: bool((s == "blocked").all()))
    return {
        "blocked_cells": int((df.status == "blocked").sum()),
        "arms_blocked_everywhere": int(everywhere.sum()),
    }


def finding_counts(report: FidelityReport) -> dict[str, int]:
    """Findings per severity, and how many needed a proposed reading.

    Parameters
    ----------
    report
        The registry cross-check (:func:`palette_core.registry.fidelity.check_fidelity`).

    Returns
    -------
    dict
        One count per severity of :data:`SEVERITY_ORDER`, and ``proposed_readings``.
    """
    out = {sev: sum(f.severity == sev for f in report.findings) for sev in SEVERITY_ORDER}
    out["proposed_readings"] = sum(f.reading_status == "proposed" for f in report.findings)
    return out


def interventions_numbers(design: Design, fidelity: FidelityReport) -> dict[str, object]:
    """Every number the interventions chapter quotes in its prose.

    Parameters
    ----------
    design
        The loaded design.
    fidelity
        Its registry cross-check.

    Returns
    -------
    dict
        Glue name -> value.
    """
    doses = dose_status_summary(design)
    findings = finding_counts(fidelity)
    return {
        "n_experimental": len(design.experimental_arms()),
        "n_traits": len(design.traits),
        "conflict_ratio": f"{DOSE_CONFLICT_RATIO:g}",
        "n_blocked_cells": doses["blocked_cells"],
        "n_blocked_arms_all": doses["arms_blocked_everywhere"],
        "n_signals": len(fidelity.signals),
        "n_findings": len(fidelity.findings),
        "n_critical": findings["critical"],
        "n_major": findings["major"],
        "n_proposed_readings": findings["proposed_readings"],
        "fidelity_status": "faithful" if fidelity.ok else "NOT faithful",
    }


def shared_effects_table(design: Design) -> pd.DataFrame:
    """The shared-effect groups with their arms and the registry evidence for each.

    Parameters
    ----------
    design
        The loaded design (``shared_effect_groups.yaml``).

    Returns
    -------
    pandas.DataFrame
        Columns Group, Arms, Registry evidence.
    """
    rows = []
    for g in design.shared_effect_groups:
        rows.append(
            {
                "Group": g.name,
                "Arms": ", ".join(
                    f"{design.arm(a).name} in {design.trait(design.arm(a).trait).name}"
                    for a in g.arms
                ),
                "Registry evidence": " ".join(g.registry_evidence.split()),
            }
        )
    return pd.DataFrame(rows)


def fidelity_summary_table(report: FidelityReport) -> pd.DataFrame:
    """The findings as a compact table (the full text follows it in the book).

    Parameters
    ----------
    report
        The registry cross-check.

    Returns
    -------
    pandas.DataFrame
        Id, severity, category, title, registry lines, reading and the doses it blocks.
    """
    cols = ["id", "severity", "category", "title", "registry lines", "reading", "blocks dose of"]
    return report.findings_table()[cols]


def findings_markdown(report: FidelityReport, labels: Labeller | None = None) -> Markdown:
    """Each registry finding as a short section: what the record says and what the design does.

    Parameters
    ----------
    report
        The registry cross-check.
    labels
        Names the arms and age groups whose dose is blocked, and the ids quoted in the
        finding's text (the registry's own words are quoted as they are); ids are kept when
        None.

    Returns
    -------
    IPython.display.Markdown
        One paragraph and list per finding.
    """
    name = labels if labels is not None else (lambda x: x)
    parts = []
    for f in report.findings:
        quotes = "; ".join(f'line {e.line}: "{e.quote.replace(chr(92), "")}"' for e in f.evidence)
        status = "*proposed*" if f.reading_status == "proposed" else "as written"
        blocks = "; ".join(
            f"{name(b.arm)} ({', '.join(str(name(g)) for g in b.age_groups)})"
            for b in f.blocks_dose
        )
        text = str(name(" ".join(f.description.split())))
        reading = str(name(" ".join(f.adopted_reading.split())))
        parts.append(
            f"**{f.id} — {f.title}** ({f.severity}, {f.category})\n\n"
            f"- Registry: {quotes}\n- Finding: {text}\n- Reading adopted ({status}): {reading}\n"
            + (f"- Dose calculation blocked: {blocks}\n" if blocks else "")
        )
    return Markdown("\n".join(parts))


def findings_chart(report: FidelityReport) -> alt.Chart:
    """Registry findings by category and severity.

    Parameters
    ----------
    report
        The registry cross-check.

    Returns
    -------
    altair.Chart
        Horizontal stacked bars, one per category.
    """
    df = report.findings_table()
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("category:N", title="Category", sort="-x"),
            x=alt.X("count():Q", title="Number of findings", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "severity:N",
                title="Severity",
                scale=alt.Scale(domain=SEVERITY_ORDER, range=SEVERITY_COLOURS),
            ),
            order=alt.Order("severity_rank:Q"),
            tooltip=["id", "title", "severity"],
        )
        .transform_calculate(severity_rank=f"indexof({SEVERITY_ORDER}, datum.severity)")
        .properties(
            width=520, height=alt.Step(28), title="Registry findings by category and severity"
        )
    )


def dose_status_chart(design: Design) -> alt.Chart:
    """Which arm doses can be computed, for adults and children.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    altair.Chart
        One tile per experimental arm (rows) and age group (columns), coloured by dose status.
    """
    df = dose_status_table(design)
    order = ["stated", "blocked", "not stated", "not open"]
    colours = ["#2166ac", "#b2182b", "#f4a582", "#f0f0f0"]
    return (
        alt.Chart(df)
        .mark_rect(stroke="white", strokeWidth=2)
        .encode(
            x=alt.X("age_group:N", title=None, axis=alt.Axis(orient="top", labelAngle=0)),
            y=alt.Y(
                "label:N",
                title=None,
                sort=list(df["label"].drop_duplicates()),
                axis=alt.Axis(labelLimit=260),
            ),
            color=alt.Color("status:N", title="Dose", scale=alt.Scale(domain=order, range=colours)),
            tooltip=["trait", "arm", "age_group", "status", "findings"],
        )
        .properties(
            width=240, height=alt.Step(18), title="Registry dose status by arm and age group"
        )
    )
