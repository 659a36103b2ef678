"""Tables and Altair figures for the book, built from a :class:`~palette_core.design.loader.Design`.

Chapters call these in one line each; nothing here reads files or holds numbers of its own.
Column labels are defined once, in :data:`LABELS`, so every table uses the same words.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
from IPython.display import HTML, Markdown

from palette_core.design.loader import Design, modified_design
from palette_core.errors import DesignError
from palette_core.registry.doses import dose_cell, unit_display
from palette_core.registry.fidelity import FidelityReport

LABELS = {
    "trait": "Trait",
    "age_groups": "Age groups",
    "control": "Control",
    "experimental": "Experimental arms",
    "n_experimental": "No. experimental arms",
    "arm": "Arm",
    "role": "Role",
    "route": "Route",
    "dose_adult": "Adults",
    "dose_child": "Children",
    "availability": "Availability",
    "shared": "Shared effect with",
    "rule": "Rule",
    "parameter": "Parameter",
    "value": "Value",
    "rationale": "Rationale",
    "source": "Source",
}

OP_DISPLAY = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
SEVERITY_ORDER = ["critical", "major", "minor", "info"]
SEVERITY_COLOURS = ["#b2182b", "#ef8a62", "#999999", "#d1e5f0"]
ROLE_COLOURS = {
    "Usual care": "#bdbdbd",
    "Experimental, open": "#2166ac",
    "Experimental, planned": "#92c5de",
    "Dose blocked by a finding": "#b2182b",
}


def setup_book() -> None:
    """Render charts as inline SVG (no JavaScript, no CDN) and show whole table cells."""
    alt.renderers.enable("svg")
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_rows", 200)


def table(df: pd.DataFrame) -> HTML:
    """A table as plain HTML without the index (deterministic output, no random ids)."""
    return HTML(df.to_html(index=False, border=0, classes="palette-table", na_rep="-"))


def findings_markdown(report: FidelityReport) -> Markdown:
    """Each registry finding as a short section: what the record says and what the design does."""
    parts = []
    for f in report.findings:
        quotes = "; ".join(f'line {e.line}: "{e.quote.replace(chr(92), "")}"' for e in f.evidence)
        status = "*proposed*" if f.reading_status == "proposed" else "as written"
        blocks = "; ".join(f"{b.arm} ({', '.join(b.age_groups)})" for b in f.blocks_dose)
        text = " ".join(f.description.split())
        reading = " ".join(f.adopted_reading.split())
        parts.append(
            f"**{f.id} — {f.title}** ({f.severity}, {f.category})\n\n"
            f"- Registry: {quotes}\n- Finding: {text}\n- Reading adopted ({status}): {reading}\n"
            + (f"- Dose calculation blocked: {blocks}\n" if blocks else "")
        )
    return Markdown("\n".join(parts))


def _age_label(design: Design, ids: tuple[str, ...]) -> str:
    labels = {g.id: g.label for g in design.strata.age_groups}
    return ", ".join(labels[i] for i in ids)


# ----------------------------------------------------------------------------- tables
def trial_at_a_glance(design: Design) -> pd.DataFrame:
    t, n = design.trial, design.summary()
    rows = [
        ("Registry", t.registry_id, "registry"),
        ("Title", t.title, "registry"),
        ("Sponsor", t.sponsor, "registry"),
        ("Phase", t.phase, "registry"),
        (
            "Status (registry)",
            f"{t.recruitment_status}, record updated {t.last_updated}",
            "registry",
        ),
        ("Planned enrolment", f"{t.enrollment} patients", "registry"),
        ("Study period", f"{t.study_start} to {t.study_completion}", "registry"),
        (
            "Design",
            f"{t.allocation.lower()}, {t.intervention_model.lower()} arms, masking: {t.masking.lower()}",
            "registry",
        ),
        ("Treatable traits", str(n["traits"]), "registry"),
        (
            "Arms",
            f"{n['arms']} ({n['control_arms']} usual care, {n['experimental_arms']} experimental)",
            "registry",
        ),
        (
            "Experimental arms per trait",
            f"{t.arms_per_trait.experimental_min} to {t.arms_per_trait.experimental_max}",
            "registry",
        ),
        ("Shared-effect groups", str(n["shared_effect_groups"]), "registry"),
        ("Registry findings", str(n["registry_findings"]), "this book"),
    ]
    return pd.DataFrame(rows, columns=["Item", "Value", LABELS["source"]])


def traits_arms_table(design: Design) -> pd.DataFrame:
    """Traits x arms: one row per trait with its control and experimental arms."""
    rows = []
    for t in design.traits:
        exp = design.experimental_arms(t.id)
        names = []
        for a in exp:
            name = a.name
            if a.availability.initial_state == "planned":
                name += " (planned)"
            names.append(name)
        rows.append(
            {
                LABELS["trait"]: t.name,
                LABELS["age_groups"]: _age_label(design, t.age_groups),
                LABELS["control"]: design.control_of(t.id).name,
                LABELS["experimental"]: "; ".join(names),
                LABELS["n_experimental"]: len(exp),
            }
        )
    return pd.DataFrame(rows)


def arm_table(design: Design, trait_id: str) -> pd.DataFrame:
    """The arms of one trait with route and the registry doses for adults and children."""
    rows = []
    for a in design.arms_of(trait_id):
        name = a.name
        if a.availability.initial_state == "planned":
            name += f" (planned: {a.availability.opens_when.rstrip('.')})"
        group = design.shared_group_of(a.id)
        shared = "-"
        if group is not None:
            shared = ", ".join(
                _trait_short(design, design.arm(x).trait) for x in group.arms if x != a.id
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


def _trait_short(design: Design, trait_id: str) -> str:
    t = design.trait(trait_id)
    return t.short_name or t.name


def _describe_condition(design: Design, cond) -> str:
    from palette_core.design.traits import AllOf, Comparison, HookRule

    if isinstance(cond, Comparison):
        b = design.biomarkers[cond.biomarker]
        thr = f"{cond.threshold:,g}".replace(",", " ")
        unit = unit_display(cond.unit)
        return f"{b.label} {OP_DISPLAY[cond.op]} {thr}{' ' + unit if unit else ''}"
    if isinstance(cond, HookRule):
        h = design.hooks[cond.hook]
        return f"{h.label}: {', '.join(cond.positive)}"
    if isinstance(cond, AllOf):
        return " AND ".join(f"({_describe_condition(design, c)})" for c in cond.all_of)
    return " OR ".join(f"({_describe_condition(design, c)})" for c in cond.any_of)


def trait_rules_table(design: Design) -> pd.DataFrame:
    """The adopted rule of every trait and age group, generated from traits.yaml."""
    rows = []
    for t in design.traits:
        for ag in t.age_groups:
            rows.append(
                {
                    LABELS["trait"]: t.name,
                    "Age group": _age_label(design, (ag,)),
                    LABELS["rule"]: _describe_condition(design, t.rules[ag]),
                    "Finding": t.finding or "-",
                }
            )
    return pd.DataFrame(rows)


def eligibility_table(design: Design) -> pd.DataFrame:
    e = design.eligibility
    rows = [
        (
            "inclusion",
            c.registry_text.replace("\\", ""),
            c.reading or "as written",
            c.finding or "-",
        )
        for c in e.inclusion
    ]
    rows += [
        (
            "exclusion",
            c.registry_text.replace("\\", ""),
            c.reading or "as written",
            c.finding or "-",
        )
        for c in e.exclusion
    ]
    return pd.DataFrame(rows, columns=["Kind", "Registry text", "Reading applied", "Finding"])


def proposed_parameters_table(design: Design) -> pd.DataFrame:
    """Every statistical design parameter the registry does not give, with its rationale."""
    dec, al, it, pr = design.decisions, design.allocation, design.interims, design.priors
    primary = next(o for o in design.outcomes.outcomes if o.role == "primary")
    rows = [
        ("Primary outcome", primary.label, primary.rationale),
        *[
            (f"{o.role.replace('_', ' ').capitalize()} outcome", o.label, o.rationale)
            for o in design.outcomes.outcomes
            if o.role != "primary"
        ],
        (
            "Arm effect prior",
            f"log OR ~ Normal({pr.arm_log_or.loc:g}, {pr.arm_log_or.scale:g}²)",
            pr.arm_log_or.rationale,
        ),
        (
            "Between-trait SD (borrowing)",
            f"HalfNormal({pr.between_trait_sd.scale:g})",
            pr.between_trait_sd.rationale,
        ),
        (
            "Children's deviation SD",
            f"HalfNormal({pr.child_deviation_sd.scale:g})",
            pr.child_deviation_sd.rationale,
        ),
        ("Calendar-era step SD", f"HalfNormal({pr.era_step_sd.scale:g})", pr.era_step_sd.rationale),
        (
            "Graduation",
            f"Pr(OR > {dec.graduation.or_reference:g}) > {dec.graduation.threshold:g}, from {dec.graduation.min_complete} complete outcomes",
            dec.graduation.rationale,
        ),
        (
            "Futility",
            f"Pr(OR > {dec.futility.or_reference:g}) < {dec.futility.threshold:g}, from {dec.futility.min_complete} complete outcomes",
            dec.futility.rationale,
        ),
        (
            "Harm",
            f"Pr(OR < {dec.harm.or_reference:g}) > {dec.harm.threshold:g} on {' or '.join(design.outcome(o).label.lower() for o in dec.harm.outcomes)}, from {dec.harm.min_complete} complete outcomes",
            dec.harm.rationale,
        ),
        (
            "Cap per experimental arm",
            f"{dec.cap_per_experimental_arm.value} patients",
            dec.cap_per_experimental_arm.rationale,
        ),
        (
            "Interim analyses",
            f"every {it.look_every_complete} complete day-28 outcomes, platform-wide",
            it.rationale,
        ),
        (
            "Allocation",
            f"equal until {al.burn_in_min_complete_per_arm} complete per arm; RAR (Pr(best)^{al.damping_power:g}, floor {al.floor_per_open_arm:g}) with >= {al.rar_min_open_experimental} open experimental arms",
            al.rationale,
        ),
        (
            "Several positive traits",
            "random among positive traits, equal weights (priority order as sensitivity)",
            design.multi_trait_policy.default.rationale,
        ),
    ]
    return pd.DataFrame(rows, columns=[LABELS["parameter"], LABELS["value"], LABELS["rationale"]])


def dose_status_table(design: Design) -> pd.DataFrame:
    """Long table: one row per experimental arm and age group with the dose status."""
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
    """Counts for the prose: blocked (arm, age group) cells, and arms blocked for every age they admit."""
    df = dose_status_table(design)
    admitted = df[df.status != "not open"]
    everywhere = admitted.groupby("arm_id").status.apply(lambda s: bool((s == "blocked").all()))
    return {
        "blocked_cells": int((df.status == "blocked").sum()),
        "arms_blocked_everywhere": int(everywhere.sum()),
    }


def finding_counts(report: FidelityReport) -> dict[str, int]:
    """Findings per severity, and how many needed a proposed reading."""
    out = {sev: sum(f.severity == sev for f in report.findings) for sev in SEVERITY_ORDER}
    out["proposed_readings"] = sum(f.reading_status == "proposed" for f in report.findings)
    return out


def fidelity_summary_table(report: FidelityReport) -> pd.DataFrame:
    """The findings as a compact table (the full text follows it in the book)."""
    cols = ["id", "severity", "category", "title", "registry lines", "reading", "blocks dose of"]
    return report.findings_table()[cols]


def shared_effects_table(design: Design) -> pd.DataFrame:
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


def demonstrate_design_error(design: Design, arm: str, field: str, value: object) -> Markdown:
    """Show the error a bad edit of one arm in ``arms.yaml`` would raise (the design is not touched)."""

    def edit(data: dict) -> None:
        entry = next(a for a in data["arms"] if a["id"] == arm)
        entry[field] = value

    try:
        with modified_design(design.root, "arms.yaml", edit, data_root=design.data_root):
            pass
    except DesignError as exc:
        return Markdown(
            f"Setting `{field}: {value}` for arm `{arm}` gives:\n\n```text\n{type(exc).__name__}: {exc}\n```"
        )
    return Markdown(f"Setting `{field}: {value}` for arm `{arm}` is a valid design.")


def manifest_table(manifest: dict, keys: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame([(k, str(manifest[k])) for k in keys], columns=["Item", "Value"])


def versions_table(versions: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(sorted(versions.items()), columns=["Package", "Version"])


def shared_effects_sentence(design: Design) -> str:
    """E.g. 'anakinra in MALS and hyperinflammation; ...' for the prose."""
    parts = []
    for g in design.shared_effect_groups:
        arms = [design.arm(a) for a in g.arms]
        traits = " and ".join(_trait_short(design, a.trait) for a in arms)
        parts.append(f"{arms[0].short_name or arms[0].name} in {traits}")
    return "; ".join(parts)


def versions_note(design: Design) -> Markdown:
    """Closing cell of every chapter: the design and the versions that produced the page."""
    from palette_core.provenance import package_versions

    v = package_versions(("palette-core", "jax", "numpyro", "pandas", "altair", "jupyter-book"))
    listed = ", ".join(f"{k} {val}" for k, val in v.items())
    return Markdown(
        f"*Computed from design `{design.design_hash[:12]}` (data/design) and registry record "
        f"{design.trial.registry_id} with {listed}; see the Reproducibility chapter.*"
    )


# ----------------------------------------------------------------------------- figures
def platform_chart(design: Design) -> alt.Chart:
    """The platform at a glance: one row per trait, one tile per arm, usual care first."""
    rows = []
    for t in design.traits:
        for pos, a in enumerate(design.arms_of(t.id)):
            if a.role == "control":
                kind = "Usual care"
            elif all(design.dose_blocks(a.id, g) for g in design.arm_age_groups(a)):
                kind = "Dose blocked by a finding"
            else:
                kind = f"Experimental, {a.availability.initial_state}"
            group = design.shared_group_of(a.id)
            rows.append(
                {
                    "trait": t.short_name or t.name,
                    "position": pos,
                    "arm": a.short_name or a.name,
                    "full_name": a.name,
                    "kind": kind,
                    "dark": kind not in ("Usual care", "Experimental, planned"),
                    "ages": _age_label(design, design.arm_age_groups(a)),
                    "shared": ("shared effect: " + group.name) if group else "",
                }
            )
    df = pd.DataFrame(rows)
    trait_order = [t.short_name or t.name for t in design.traits]
    base = alt.Chart(df).encode(
        x=alt.X("position:O", title=None, axis=alt.Axis(labels=False, ticks=False, domain=False)),
        y=alt.Y(
            "trait:N",
            sort=trait_order,
            title=None,
            axis=alt.Axis(labelLimit=200, labelFontSize=12, ticks=False, domain=False),
        ),
    )
    tiles = base.mark_rect(cornerRadius=4, stroke="white", strokeWidth=3).encode(
        color=alt.Color(
            "kind:N",
            title="Arm",
            scale=alt.Scale(domain=list(ROLE_COLOURS), range=list(ROLE_COLOURS.values())),
            legend=alt.Legend(orient="bottom", columns=2, labelFontSize=11),
        ),
        tooltip=["trait", "full_name", "kind", "ages", "shared"],
    )
    text = base.mark_text(fontSize=11, limit=112).encode(
        text="arm:N",
        color=alt.condition(alt.datum.dark, alt.value("white"), alt.value("black")),
    )
    marks = (
        base.transform_filter(alt.datum.shared != "")
        .mark_text(text="♦", fontSize=12, dy=-15, dx=50)
        .encode(color=alt.condition(alt.datum.dark, alt.value("white"), alt.value("black")))
    )
    return (tiles + text + marks).properties(
        width=alt.Step(118),
        height=alt.Step(44),
        title="Traits and arms (♦ = effect shared across traits)",
    )


def findings_chart(report: FidelityReport) -> alt.Chart:
    """Registry findings by category and severity."""
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
    """Which arm doses can be computed, for adults and children."""
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


# ----------------------------------------------------------------------------- population
def _positive_matrix(classified: pd.DataFrame, design: Design) -> pd.DataFrame:
    return pd.DataFrame(
        {t.id: (classified[f"trait_{t.id}"] == "positive").to_numpy() for t in design.traits},
        index=classified.index,
    )


def trait_status_table(classified: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Per trait: how many patients are positive, negative, indeterminate or not applicable."""
    statuses = ["positive", "negative", "indeterminate", "not applicable"]
    rows = []
    for t in design.traits:
        counts = classified[f"trait_{t.id}"].value_counts()
        row = {LABELS["trait"]: t.name}
        row.update({s_: int(counts.get(s_, 0)) for s_ in statuses})
        applicable = row["positive"] + row["negative"] + row["indeterminate"]
        row["% positive among applicable"] = (
            round(100 * row["positive"] / applicable, 1) if applicable else float("nan")
        )
        rows.append(row)
    return pd.DataFrame(rows)


def trait_overlap_table(classified: pd.DataFrame, design: Design, top: int = 12) -> pd.DataFrame:
    """The most frequent combinations of positive traits (an UpSet-style intersection table)."""
    pos = _positive_matrix(classified, design)
    names = {t.id: t.short_name or t.name for t in design.traits}
    keys = pos.apply(lambda r: tuple(tid for tid in pos.columns if r[tid]), axis=1)
    counts = keys.value_counts()
    counts = counts[[len(k) > 0 for k in counts.index]].head(top)
    return pd.DataFrame(
        {
            "combination": [" + ".join(names[t] for t in k) for k in counts.index],
            "traits": list(counts.index),
            "n_traits": [len(k) for k in counts.index],
            "patients": counts.to_numpy(),
            "% of cohort": (100 * counts.to_numpy() / len(classified)).round(1),
        }
    )


def upset_chart(classified: pd.DataFrame, design: Design, top: int = 12) -> alt.VConcatChart:
    """UpSet-style figure: patients per combination of positive traits (bars) and its members (dots)."""
    table = trait_overlap_table(classified, design, top)
    order = list(table["combination"])
    bars = (
        alt.Chart(table)
        .mark_bar(color="#2166ac")
        .encode(
            x=alt.X("combination:N", sort=order, axis=None),
            y=alt.Y("patients:Q", title="Patients"),
            tooltip=["combination", "patients", "% of cohort"],
        )
        .properties(width=alt.Step(40), height=180)
    )
    labels = bars.mark_text(dy=-6, fontSize=10).encode(text="patients:Q")
    names = [t.short_name or t.name for t in design.traits]
    dots = pd.DataFrame(
        [
            {
                "combination": row.combination,
                "trait": t.short_name or t.name,
                "member": t.id in row.traits,
            }
            for row in table.itertuples()
            for t in design.traits
        ]
    )
    matrix = (
        alt.Chart(dots)
        .mark_circle(size=110)
        .encode(
            x=alt.X("combination:N", sort=order, axis=None),
            y=alt.Y("trait:N", sort=names, title=None, axis=alt.Axis(labelLimit=200)),
            color=alt.condition(alt.datum.member, alt.value("#222222"), alt.value("#e0e0e0")),
        )
        .properties(width=alt.Step(40))
    )
    return alt.vconcat(bars + labels, matrix, spacing=4).properties(
        title=f"Combinations of positive traits ({len(classified):,} synthetic patients; {top} most frequent)"
    )


def policy_accrual_table(by_policy: dict[str, pd.DataFrame], design: Design) -> pd.DataFrame:
    """Patients randomised in each trait under each multi-trait policy (long format)."""
    rows = []
    for policy, result in by_policy.items():
        for t in design.traits:
            rows.append(
                {
                    "policy": policy,
                    "trait": t.short_name or t.name,
                    "positive": int((result[f"trait_{t.id}"] == "positive").sum()),
                    "randomised in trait": int((result["assigned_trait"] == t.id).sum()),
                }
            )
    return pd.DataFrame(rows)


def policy_accrual_chart(table: pd.DataFrame, design: Design) -> alt.Chart:
    order = [t.short_name or t.name for t in design.traits]
    return (
        alt.Chart(table)
        .mark_bar()
        .encode(
            y=alt.Y("trait:N", sort=order, title=None, axis=alt.Axis(labelLimit=200)),
            yOffset=alt.YOffset("policy:N"),
            x=alt.X("randomised in trait:Q", title="Patients randomised in the trait"),
            color=alt.Color(
                "policy:N",
                title="Multi-trait policy",
                scale=alt.Scale(range=["#2166ac", "#ef8a62"]),
            ),
            tooltip=["policy", "trait", "positive", "randomised in trait"],
        )
        .properties(
            width=460, height=alt.Step(14), title="Accrual per trait under each multi-trait policy"
        )
    )


def _trait_names(value: object, names: dict[str, str]) -> str:
    if not isinstance(value, str) or value == "":
        return "-"
    return ", ".join(names.get(x, x) for x in value.split(";") if x)


def worked_examples_tables(
    result: pd.DataFrame, design: Design
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tables for the book: eligibility with its reasons, and traits with the assigned trait."""
    names = {t.id: t.short_name or t.name for t in design.traits}
    eligibility = pd.DataFrame(
        {
            "Patient": result["patient_id"],
            "Age group": result["age_group"],
            "Eligibility": result["eligible"],
            "Reasons": result["eligibility_reasons"],
        }
    )
    traits = pd.DataFrame(
        {
            "Patient": result["patient_id"],
            "Positive traits": result["positive_traits"].map(lambda v: _trait_names(v, names)),
            "Indeterminate traits": result["indeterminate_traits"].map(
                lambda v: _trait_names(v, names)
            ),
            "Randomised in": result["assigned_trait"].map(
                lambda x: names.get(x, "-") if isinstance(x, str) else "-"
            ),
            "How": result["assignment_rule"],
        }
    )
    return eligibility, traits


def eligibility_flow_chart(flow: pd.DataFrame) -> alt.Chart:
    """Screening step by step (from :func:`palette_core.screening.eligibility.eligibility_flow`): patients
    who pass each step, fail it, or cannot be assessed at it (indeterminate)."""
    long = flow.melt(
        id_vars=["label", "order"],
        value_vars=["n", "n_failed", "n_indeterminate"],
        var_name="outcome",
        value_name="patients",
    )
    long["outcome"] = long["outcome"].map(
        {"n": "passes", "n_failed": "fails", "n_indeterminate": "indeterminate"}
    )
    order = list(flow.sort_values("order")["label"])
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=280)),
            x=alt.X("patients:Q", title="Patients reaching the step", stack="zero"),
            color=alt.Color(
                "outcome:N",
                title="At this step",
                scale=alt.Scale(
                    domain=["passes", "fails", "indeterminate"],
                    range=["#2166ac", "#b2182b", "#f4a582"],
                ),
            ),
            order=alt.Order("outcome_rank:Q"),
            tooltip=["label", "outcome", "patients"],
        )
        .transform_calculate(
            outcome_rank="indexof(['passes', 'fails', 'indeterminate'], datum.outcome)"
        )
        .properties(width=420, height=alt.Step(28), title="Eligibility assessment, step by step")
    )


def eligibility_parameters(design: Design) -> dict[str, object]:
    """The numbers the eligibility prose quotes, read from the design and the SOFA reference."""
    from palette_core.screening.eligibility import load_sofa_reference

    groups = {g.id: g for g in design.strata.age_groups}
    definitions = load_sofa_reference(design).sepsis_definitions
    return {
        "adult_min_age": f"{groups['adult'].min_age_years.value:g}",
        "min_cga": f"{groups['child'].min_corrected_gestational_age_weeks.value:g}",
        "sofa_rise": definitions.sepsis3.min_sofa_increase,
        "sofa_baseline": definitions.sepsis3.baseline_sofa_when_missing,
        "phoenix_min": definitions.phoenix.min_score,
    }


# ----------------------------------------------------------------------------- randomisation
def lifecycle_chart(transitions: pd.DataFrame) -> alt.LayerChart:
    """State diagram of an arm's lifecycle from a table with columns ``from`` and ``to``.

    States without an incoming transition are drawn on the left, terminal states on the
    right, the others in between; an arrow (a line ending in a triangle) marks each transition.
    """
    states = list(dict.fromkeys(list(transitions["from"]) + list(transitions["to"])))
    incoming = set(transitions["to"])
    outgoing = set(transitions["from"])
    stage = {st_: 0 if st_ not in incoming else (2 if st_ not in outgoing else 1) for st_ in states}
    nodes = []
    for level in (0, 1, 2):
        members = [st_ for st_ in states if stage[st_] == level]
        for i, st_ in enumerate(members):
            nodes.append(
                {
                    "state": st_.replace("_", " "),
                    "key": st_,
                    "x": level,
                    "y": (len(members) - 1) / 2 - i,
                }
            )
    pos = {n["key"]: (n["x"], n["y"]) for n in nodes}
    edges = pd.DataFrame(
        [
            {
                "x": pos[a][0] + 0.18,
                "y": pos[a][1],
                "x2": pos[b][0] - 0.18,
                "y2": pos[b][1],
                "transition": f"{a} → {b}",
            }
            for a, b in zip(transitions["from"], transitions["to"], strict=True)
        ]
    )
    scale_x = alt.Scale(domain=[-0.4, 2.4])
    scale_y = alt.Scale(domain=[-3, 3])
    lines = (
        alt.Chart(edges)
        .mark_rule(color="#888888", strokeWidth=1.5)
        .encode(
            x=alt.X("x:Q", scale=scale_x, axis=None),
            y=alt.Y("y:Q", scale=scale_y, axis=None),
            x2="x2:Q",
            y2="y2:Q",
            tooltip=["transition"],
        )
    )
    heads = (
        alt.Chart(edges)
        .mark_point(shape="triangle-right", filled=True, size=60, color="#888888", opacity=1)
        .encode(x=alt.X("x2:Q", scale=scale_x), y=alt.Y("y2:Q", scale=scale_y))
    )
    node_df = pd.DataFrame(nodes)
    boxes = (
        alt.Chart(node_df)
        .mark_point(shape="square", size=4400, filled=True, color="#d1e5f0", opacity=1)
        .encode(x=alt.X("x:Q", scale=scale_x), y=alt.Y("y:Q", scale=scale_y))
    )
    labels = (
        alt.Chart(node_df)
        .mark_text(fontSize=12)
        .encode(x=alt.X("x:Q", scale=scale_x), y=alt.Y("y:Q", scale=scale_y), text="state:N")
    )
    return (lines + heads + boxes + labels).properties(
        width=520, height=300, title="Arm lifecycle: states and transitions"
    )


def allocation_chart(evolution: pd.DataFrame) -> alt.Chart:
    """Allocation probabilities by arm at each look of an example trial."""
    return (
        alt.Chart(evolution)
        .mark_line(point=True)
        .encode(
            x=alt.X("n_patients:Q", title="Patients randomised in the trait"),
            y=alt.Y(
                "probability:Q", title="Allocation probability", scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("arm:N", title="Arm"),
            tooltip=list(evolution.columns),
        )
        .properties(width=520, height=260, title="Allocation probabilities in an example trial")
    )


def load_randomisation_examples(design: Design) -> dict:
    """The illustrative inputs of the randomisation chapter (data/scenarios/randomisation_examples.yaml)."""
    from palette_core.yamlio import read_yaml

    path = design.data_root / "scenarios" / "randomisation_examples.yaml"
    data = read_yaml(path, "scenarios/randomisation_examples.yaml")
    data["_dir"] = path.parent
    return data


def lifecycle_example(design: Design, examples: dict):
    """Apply the example lifecycle events to the initial state; return the final state."""
    import datetime as dt

    from palette_core.randomisation.lifecycle import initial_state, transition

    state = initial_state(design)
    for event in examples["lifecycle_example"]["events"]:
        on = (
            event["date"]
            if isinstance(event["date"], dt.date)
            else dt.date.fromisoformat(event["date"])
        )
        state = transition(state, event["arm"], event["to"], on, event["reason"], design)
    return state


def randomisation_demo(design: Design, examples: dict) -> dict[str, object]:
    """Randomise the worked-example patients with a public demonstration secret into a temporary
    log, then verify it, tamper with a copy, and replay it with the right and a wrong secret.

    Returns the tables and reports the chapter shows; everything runs in a temporary directory.
    """
    import datetime as dt
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from palette_core.randomisation.allocation_log import load_entries, verify_log
    from palette_core.randomisation.randomise import (
        default_allocation_state,
        parse_secret,
        randomise_patients,
        replay_log,
    )
    from palette_core.screening.patients import read_patients

    spec = examples["concealment_example"]
    secret = parse_secret(spec["demo_secret"], "demonstration secret")
    now = dt.datetime.fromisoformat(spec["time"])
    patients = read_patients((examples["_dir"] / spec["patients"]).resolve(), design)
    state = default_allocation_state(design)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "allocation.jsonl"
        result = randomise_patients(patients, design, state, secret, log, now=now)
        site_view = pd.DataFrame(
            [
                {"sequence": a.sequence, "patient": a.patient_id, "trait": a.trait, "arm": a.arm}
                for a in result.allocations
            ]
        )
        refused = pd.DataFrame(
            [{"row": r.row, "patient": r.patient_id, "reason": r.reason} for r in result.refused]
        )
        entries = load_entries(log)
        open_log = pd.DataFrame(
            [
                {
                    "line": i + 1,
                    "sequence": e["sequence"],
                    "patient": e["patient_id"],
                    "arm": e["arm"],
                    "commitment": e["commitment"][:16] + "…",
                    "prev_hash": e["prev_hash"][:16] + "…",
                    "hash": e["hash"][:16] + "…",
                }
                for i, e in enumerate(entries)
            ]
        )
        intact = verify_log(log)
        # tamper with a copy: change the arm of one entry to another arm of its trait
        tampered = Path(tmp) / "tampered.jsonl"
        shutil.copy(log, tampered)
        for suffix in (".head", ".restricted.jsonl", ".restricted.jsonl.head"):
            src = Path(str(log) + suffix) if not suffix.startswith(".restricted") else None
            if src is not None and src.exists():
                shutil.copy(src, Path(str(tampered) + suffix))
        lines = tampered.read_text(encoding="utf-8").splitlines()
        k = spec["tamper"]["line"] - 1
        entry = json.loads(lines[k])
        others = [a.id for a in design.arms_of(entry["trait"]) if a.id != entry["arm"]]
        entry[spec["tamper"]["field"]] = others[0]
        lines[k] = json.dumps(entry, ensure_ascii=False)
        tampered.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tamper_report = verify_log(tampered, restricted=False)
        right = replay_log(log, secret, design)
        wrong = replay_log(
            log, parse_secret("a different secret of sixteen+ bytes", "wrong secret"), design
        )

        def problems(report) -> pd.DataFrame:
            return pd.DataFrame(
                [{"kind": p.kind, "line": p.line, "problem": p.message} for p in report.problems],
                columns=["kind", "line", "problem"],
            )

        return {
            "site_view": site_view,
            "refused": refused,
            "open_log": open_log,
            "intact_ok": intact.ok,
            "entries": intact.entries,
            "tampered_line": spec["tamper"]["line"],
            "tamper_problems": problems(tamper_report),
            "replay_ok": right.ok,
            "replay_matches": sum(e.ok for e in right.entries),
            "wrong_secret_matches": wrong.secret_matches,
            "wrong_secret_ok": wrong.ok,
        }


def allocation_parameters_table(design: Design) -> pd.DataFrame:
    """The proposed allocation rule's parameters, from data/design/proposed/allocation.yaml."""
    al = design.allocation
    rows = [
        (
            "Burn-in: equal allocation until every arm has",
            f"{al.burn_in_min_complete_per_arm} complete outcomes",
        ),
        (
            "Response-adaptive allocation needs at least",
            f"{al.rar_min_open_experimental} open experimental arms",
        ),
        ("Adaptive weight of an arm", f"Pr(best)^{al.damping_power:g}"),
        ("Floor for every open arm", f"{al.floor_per_open_arm:g}"),
        ("Usual-care share", "max(1/(K+1), largest experimental share)"),
    ]
    return pd.DataFrame(rows, columns=[LABELS["parameter"], LABELS["value"]])


def synopsis_numbers(design: Design) -> dict[str, object]:
    """Every number and name the synopsis quotes in its prose."""
    counts = design.summary()
    return {
        "registry_id": design.trial.registry_id,
        "sponsor": design.trial.sponsor,
        "n_traits": counts["traits"],
        "n_arms": counts["arms"],
        "n_controls": counts["control_arms"],
        "n_experimental": counts["experimental_arms"],
        "n_findings": counts["registry_findings"],
        "exp_min": design.trial.arms_per_trait.experimental_min,
        "exp_max": design.trial.arms_per_trait.experimental_max,
        "n_shared": counts["shared_effect_groups"],
        "shared_names": shared_effects_sentence(design),
        "enrollment": f"{design.trial.enrollment:,}",
        "per_arm": f"{design.trial.enrollment / counts['arms']:.0f}",
    }


def interventions_numbers(design: Design, fidelity: FidelityReport) -> dict[str, object]:
    """Every number the interventions chapter quotes in its prose."""
    from palette_core.registry.fidelity import DOSE_CONFLICT_RATIO

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


# ----------------------------------------------------------------------------- models and decisions
def priors_table(design: Design) -> pd.DataFrame:
    """Every prior of the joint model, from data/design/proposed/priors.yaml (all proposed)."""
    pr = design.priors
    rows = []
    labels = {
        "arm_log_or": "Arm log odds ratio (no shared effect)",
        "shared_effect_mean": "Mean log OR of a shared-effect group",
        "between_trait_sd": "Between-trait SD of a shared effect (tau)",
        "child_deviation_sd": "SD of the children's deviation (sigma_ped)",
        "era_step_sd": "Step SD of the calendar-era random walk",
        "trait_shift": "Trait location shift",
        "cutpoints": "Cut-points of each age stratum",
    }
    for name, label in labels.items():
        p = getattr(pr, name)
        if p.distribution == "normal":
            dist = f"Normal({p.loc:g}, {p.scale:g}²)"
        elif p.distribution == "half_normal":
            dist = f"HalfNormal({p.scale:g})"
        else:
            dist = f"induced Dirichlet({p.concentration:g})"
        sens = ", ".join(f"{x:g}" for x in getattr(p, "sensitivity_scales", ())) or "-"
        if getattr(p, "sensitivity_no_borrowing", False):
            sens += "; no borrowing"
        rows.append(
            {
                "Parameter": label,
                "Prior": dist,
                "Sensitivity": sens,
                LABELS["rationale"]: " ".join(p.rationale.split()),
            }
        )
    return pd.DataFrame(rows)


def decision_rules_table(design: Design) -> pd.DataFrame:
    """The decision rules applied at each look (data/design/proposed/decisions.yaml)."""
    dec = design.decisions
    label = {o.id: o.label for o in design.outcomes.outcomes}
    rows = [
        (
            "harm",
            f"Pr(OR < {dec.harm.or_reference:g}) > {dec.harm.threshold:g} on {' or '.join(label[o] for o in dec.harm.outcomes)}",
            f">= {dec.harm.min_complete} complete",
            dec.harm.rationale,
        ),
        (
            "graduation",
            f"Pr(OR > {dec.graduation.or_reference:g}) > {dec.graduation.threshold:g} on {label[dec.graduation.outcome]}",
            f">= {dec.graduation.min_complete} complete",
            dec.graduation.rationale,
        ),
        (
            "futility",
            f"Pr(OR > {dec.futility.or_reference:g}) < {dec.futility.threshold:g} on {label[dec.futility.outcome]}",
            f">= {dec.futility.min_complete} complete",
            dec.futility.rationale,
        ),
        (
            "cap reached",
            f"{dec.cap_per_experimental_arm.value} patients allocated to the arm",
            "-",
            dec.cap_per_experimental_arm.rationale,
        ),
    ]
    return pd.DataFrame(
        [(a, b, c, " ".join(d.split())) for a, b, c, d in rows],
        columns=[
            "Decision (in order of precedence)",
            "Rule",
            "Minimum information",
            LABELS["rationale"],
        ],
    )


#: Tick values of the log odds-ratio axes.
OR_TICKS = [0.01, 0.03, 0.1, 0.25, 0.5, 1, 2, 4, 10, 30, 100]


def forest_plot(df: pd.DataFrame, title: str) -> alt.FacetChart:
    """Forest plot of odds ratios (log axis, > 1 = benefit), one panel per outcome.

    ``df`` has one row per outcome and arm, in display order, with columns ``label`` (the
    arm as shown), ``trait_name`` (colour), ``outcome_label`` (panel), ``or_median``,
    ``or_low``, ``or_high``, ``pr_benefit``, ``pr_harm`` and ``true_or`` (NaN where unknown;
    known values are drawn as black diamonds). Used by the book and the interim reports.
    """
    order = list(dict.fromkeys(df["label"]))
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    x_scale = alt.Scale(type="log", zero=False)
    ticks = alt.Axis(values=OR_TICKS, format="~g")
    base = alt.Chart()
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X(
            "or_low:Q", scale=x_scale, axis=ticks, title="Odds ratio (> 1 = benefit), 95 % interval"
        ),
        x2="or_high:Q",
        y=y,
        color=alt.Color("trait_name:N", title="Trait", legend=alt.Legend(orient="bottom")),
    )
    points = base.mark_point(filled=True, size=50).encode(
        x=alt.X("or_median:Q", scale=x_scale),
        y=y,
        color=alt.Color("trait_name:N"),
        tooltip=["label", "or_median", "or_low", "or_high", "pr_benefit", "pr_harm"],
    )
    one = base.mark_rule(strokeDash=[4, 3], color="#555555").encode(
        x=alt.X(datum=1, scale=x_scale, axis=ticks)
    )
    layers = [one, bars, points]
    if df["true_or"].notna().any():
        layers.append(
            base.transform_filter("isValid(datum.true_or)")
            .mark_point(shape="diamond", color="#000000", size=80, filled=False, strokeWidth=2)
            .encode(x=alt.X("true_or:Q", scale=x_scale), y=y)
        )
    return (
        alt.layer(*layers, data=df)
        .properties(width=300, height=alt.Step(16))
        .facet(
            column=alt.Column(
                "outcome_label:N", title=None, sort=list(dict.fromkeys(df["outcome_label"]))
            )
        )
        .properties(title=title)
    )


def forest_chart(
    summary: pd.DataFrame, title: str, design: Design, truth: pd.DataFrame | None = None
) -> alt.FacetChart:
    """:func:`forest_plot` of a stored quantities table (``quantities.summarise``), with the
    true odds ratios (columns ``arm``, ``true_or``) if known."""
    df = summary.copy()
    traits = {t.id: t.short_name or t.name for t in design.traits}
    arms = {a.id: a.short_name or a.name for a in design.arms}
    outcomes = {o.id: o.label for o in design.outcomes.outcomes}
    df["trait_name"] = df["trait"].map(traits)
    df["label"] = df["trait_name"] + ": " + df["arm"].map(arms)
    df["outcome_label"] = df["outcome"].map(outcomes)
    if truth is None:
        df["true_or"] = float("nan")
    else:
        df = df.merge(truth[["arm", "true_or"]], on="arm", how="left")
    return forest_plot(df, title)


def export_contract_table(design: Design) -> pd.DataFrame:
    """The export contract (export_contract.yaml): one row per column of ``patients.csv``."""
    rows = []
    for name, f in design.export_contract.fields.items():
        kind = {
            "trait_list": "list of trait ids",
            "substance_list": "list of substance ids",
            "interval_list": "list of date intervals",
        }.get(f.kind, f.kind)
        if f.categories_from:
            kind += f" ({f.categories_from[:-1].replace('_', ' ')} id)"
        elif f.categories:
            kind += f" ({', '.join(f.categories)})"
        if f.unit:
            kind += f", {f.unit}"
        if f.range:
            kind += f", {f.range[0]:g} to {f.range[1]:g}"
        rows.append(
            {
                "Column": name,
                "Content": kind,
                "Required": "yes" if f.required else "",
                "Description": " ".join(f.description.split()),
            }
        )
    return pd.DataFrame(rows)


def interim_numbers(analysis: Any, design: Design, scenario: dict) -> dict[str, object]:
    """The numbers quoted in the prose of the chapter "Worked interim analysis".

    ``analysis`` is a stored :class:`palette_core.interim.analyse.InterimAnalysis` of the synthetic
    export and ``scenario`` the raw ``data/scenarios/interim_example.yaml``.
    """
    from palette_core.exports.synthetic import true_odds_ratios
    from palette_core.interim.report import forest_data

    derived = analysis.table("derived")
    truth = true_odds_ratios(design, scenario)
    f = forest_data(analysis, truth).query("outcome == @design.decisions.graduation.outcome")
    with_data = f[f["arm"].isin(derived.loc[derived["status"] == "complete", "arm"])]
    inside = (with_data["or_low"] < with_data["true_or"]) & (
        with_data["true_or"] < with_data["or_high"]
    )
    harmful = truth.loc[truth["true_or"] < 1, "true_or"]
    return {
        "window_days": design.interim_analysis.follow_up.window_days,
        "n_screened": int(scenario["n_screened"]),
        "n_sites": int(derived["site_id"].nunique()),
        "n_countries": int(derived["country"].nunique()),
        "data_cut": str(analysis.manifest["export"]["data_cut"]),
        "n_rows": int(analysis.manifest["counts"]["rows"]),
        "n_injected": len(scenario["bad_rows"]["kinds"]),
        "n_covered": int(inside.sum()),
        "n_arms_with_data": len(with_data),
        "harm_true_or": f"{harmful.min():g}" if len(harmful) else "none",
    }


def sensitivity_table(design: Design) -> pd.DataFrame:
    """The sensitivity analyses a look runs (interim_analysis.yaml), with what each changes."""
    from palette_core.analysis.sensitivity import analysis_options, sensitivity_analyses

    ia = design.interim_analysis.sensitivity
    what = {
        "no_borrowing": (
            "Every arm has its own Normal prior (arm_log_or) in every age stratum: no borrowing "
            "between traits and none from adults to children; gives the children-only effect."
        ),
        "per_trait_eras": "One calendar-era random walk per trait instead of one shared walk.",
        "exnex": " ".join(design.priors.exnex.rationale.split()),
        "concurrent_controls": " ".join(ia.concurrent_controls.rationale.split()),
    }
    rows = []
    for name in sensitivity_analyses(design):
        opts = analysis_options(design, name)
        if "prior_scales" in opts:
            ((prior, value),) = opts["prior_scales"].items()
            base = getattr(design.priors, prior).scale
            text = f"Prior scale of {prior} set to {value:g} (primary: {base:g})."
        else:
            text = what[name]
        rows.append({"Analysis": name, "What changes": text})
    return pd.DataFrame(rows)


def children_harm_table(quantities: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Children-only effects without borrowing: Pr(harm) and the OR per arm and outcome.

    Rows of ``quantities`` with ``analysis == "no_borrowing"`` and ``population == "child"``;
    arms not open to children are left out (their children-only effect is the prior).
    """
    q = quantities[
        (quantities["analysis"] == "no_borrowing") & (quantities["population"] == "child")
    ]
    child_arms = {a.id for a in design.experimental_arms() if "child" in design.arm_age_groups(a)}
    q = q[q["arm"].isin(child_arms)]
    label = {o.id: o.label for o in design.outcomes.outcomes}
    ref = design.decisions.harm.or_reference
    out = pd.DataFrame(
        {
            "Outcome": q["outcome"].map(label),
            "Trait": q["trait"],
            "Arm": q["arm"],
            f"Pr(OR < {ref:g})": q["pr_harm"].round(3),
            "OR (95 % interval)": [
                f"{m:.2f} ({lo:.2f} to {hi:.2f})"
                for m, lo, hi in zip(q["or_median"], q["or_low"], q["or_high"], strict=True)
            ],
        }
    )
    return out.reset_index(drop=True)


def prior_predictive_table(df: pd.DataFrame) -> pd.DataFrame:
    """Prior predictive summary pooled over traits, one row per outcome, age group and quantity."""
    pooled = df[df["trait"] == "all"]
    cols = ["outcome", "age_group", "quantity", "mean", "q025", "q50", "q975"]
    return pooled[cols].round(3).reset_index(drop=True)


def sbc_chart(ranks: pd.DataFrame, bins: int = 10) -> alt.Chart:
    """Histogram of simulation-based calibration ranks, one panel per parameter."""
    n_ranks = int(ranks["n_ranks"].iloc[0])
    df = ranks.assign(bin=(ranks["rank"] * bins // (n_ranks + 1)).astype(int))
    counts = df.groupby(["parameter", "bin"]).size().reset_index(name="simulations")
    return (
        alt.Chart(counts)
        .mark_bar(color="#2166ac")
        .encode(
            x=alt.X("bin:O", title="Rank of the true value (binned)"),
            y=alt.Y("simulations:Q", title="Simulations"),
            tooltip=["parameter", "bin", "simulations"],
        )
        .properties(width=180, height=140)
        .facet(facet=alt.Facet("parameter:N", title=None), columns=3)
        .properties(title="Simulation-based calibration ranks")
    )
