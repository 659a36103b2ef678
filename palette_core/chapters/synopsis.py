"""Chapter "Synopsis": the trial at a glance, traits and arms, eligibility and the statistical
parameters the registry does not give, all built from the design (no numbers of their own)."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd

from palette_core.design.loader import Design
from palette_core.errors import RegistryFormatError
from palette_core.registry.record import parse_registry
from palette_core.viz.labels import LABELS, age_label, trait_label

#: Colour of each kind of arm tile in :func:`platform_chart`.
ROLE_COLOURS = {
    "Usual care": "#bdbdbd",
    "Experimental, open": "#2166ac",
    "Experimental, planned": "#92c5de",
    "Dose blocked by a finding": "#b2182b",
}


def trial_at_a_glance(design: Design) -> pd.DataFrame:
    """The registry facts of ``trial.yaml`` and the design's counts, one row per item.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Columns Item, Value and Source ("registry" or "this book").
    """
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
    """Traits x arms: one row per trait with its control and experimental arms.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Trait, age groups, control, the experimental arms (planned ones marked) and their number.
    """
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
                LABELS["age_groups"]: age_label(design, t.age_groups),
                LABELS["control"]: design.control_of(t.id).name,
                LABELS["experimental"]: "; ".join(names),
                LABELS["n_experimental"]: len(exp),
            }
        )
    return pd.DataFrame(rows)


def eligibility_table(design: Design) -> pd.DataFrame:
    """Inclusion and exclusion criteria with the registry text, the reading applied and the finding.

    Parameters
    ----------
    design
        The loaded design (``eligibility.yaml``).

    Returns
    -------
    pandas.DataFrame
        Columns Kind, Registry text, Reading applied, Finding.
    """
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
    """Every statistical design parameter the registry does not give, with its rationale.

    Parameters
    ----------
    design
        The loaded design (the files of ``data/design/proposed``).

    Returns
    -------
    pandas.DataFrame
        Columns Parameter, Value, Rationale.
    """
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


def shared_effects_sentence(design: Design) -> str:
    """The shared-effect groups for the prose, e.g. ``'Anakinra in MALS and Hyperinflammation; ...'``.

    Parameters
    ----------
    design
        The loaded design (``shared_effect_groups.yaml``).

    Returns
    -------
    str
        One clause per group, separated by semicolons.
    """
    parts = []
    for g in design.shared_effect_groups:
        arms = [design.arm(a) for a in g.arms]
        traits = " and ".join(trait_label(design, a.trait) for a in arms)
        parts.append(f"{arms[0].short_name or arms[0].name} in {traits}")
    return "; ".join(parts)


def synopsis_numbers(design: Design) -> dict[str, object]:
    """Every number and name the synopsis quotes in its prose.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    dict
        Glue name -> value (counts, names, enrolment and patients per arm if accrual were even).
    """
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


def platform_chart(design: Design) -> alt.Chart:
    """The platform at a glance: one row per trait, one tile per arm, usual care first.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    altair.Chart
        Tiles coloured by kind (:data:`ROLE_COLOURS`); a diamond marks a shared effect.
    """
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
                    "ages": age_label(design, design.arm_age_groups(a)),
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


def registry_aim(design: Design) -> str:
    """The first sentence of the registry's Brief Summary: the sponsor's own aim of PALETTE.

    Parameters
    ----------
    design
        The loaded design (its registry record).

    Returns
    -------
    str
        The sentence, as the registry writes it (see :func:`registry_aim_from`).
    """
    return registry_aim_from(design.registry_path)


def registry_aim_from(path: Path) -> str:
    """The first sentence of the Brief Summary of a registry record saved as text.

    Parameters
    ----------
    path
        The record.

    Returns
    -------
    str
        The first sentence of the paragraph that follows the section's heading and the
        registry's one-line description of the section.

    Raises
    ------
    RegistryFormatError
        When the record has no Brief Summary section with a paragraph (names file and line).
    """
    record = parse_registry(path)
    lines = [line.strip() for line in record.lines]
    try:
        start = lines.index("Brief Summary")
    except ValueError as exc:
        raise RegistryFormatError(str(path), 1, "no 'Brief Summary' section") from exc
    body = [text for text in lines[start + 1 :] if text]
    if len(body) < 2:
        raise RegistryFormatError(str(path), start + 1, "the Brief Summary is empty")
    return body[1].split(". ")[0].rstrip(".") + "."


def _lower_first(label: str) -> str:
    """A label inside a sentence: its first letter lower case unless it starts an acronym."""
    if len(label) > 1 and label[1].isupper():
        return label
    return label[:1].lower() + label[1:]


def objectives(design: Design) -> list[str]:
    """The trial's objectives in words, built from the proposed outcomes and decision rules.

    Parameters
    ----------
    design
        The loaded design (``proposed/outcomes.yaml``, ``proposed/decisions.yaml``).

    Returns
    -------
    list of str
        Primary objective, then the secondary and safety objectives (Markdown).
    """
    outcomes = design.outcomes.outcomes
    primary = next(o for o in outcomes if o.role == "primary")
    secondary = [_lower_first(o.label) for o in outcomes if o.role not in ("primary", "safety")]
    safety = [_lower_first(o.label) for o in outcomes if o.role == "safety"]
    g = design.decisions.graduation
    return [
        f"**Primary**: within each treatable trait, to find the experimental treatments that "
        f"improve {_lower_first(primary.label)} compared with usual care in that trait (an arm "
        f"*graduates* when Pr(OR > {g.or_reference:g}) > {g.threshold:g}).",
        f"**Secondary**: to estimate each treatment's effect on {' and '.join(secondary)}, in "
        "adults and in children.",
        f"**Safety**: to monitor {' and '.join(safety)} in the arms that carry these risks, and "
        "to stop an arm for harm.",
        "**Platform**: to stay open, so that new arms and new traits (for example one defined by "
        "a pandemic pathogen) join by amendment.",
    ]


def patient_journey(design: Design) -> list[str]:
    """What a patient goes through, step by step, in words built from the design.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    list of str
        One Markdown sentence per step, in order.
    """
    primary = next(o for o in design.outcomes.outcomes if o.role == "primary")
    n_incl, n_excl = len(design.eligibility.inclusion), len(design.eligibility.exclusion)
    return [
        f"**Screening.** A patient with sepsis is checked against {n_incl} inclusion and "
        f"{n_excl} exclusion criteria (chapter {{ref}}`population`).",
        f"**Traits.** {len(design.biomarkers)} biomarkers measured at inclusion decide which of "
        f"the {len(design.traits)} treatable traits the patient has; a patient "
        "with several is randomised in one of them, drawn at random and logged.",
        "**Randomisation.** Within that trait, the patient is randomised between usual care and "
        "the experimental arms open in the trait, by a concealed draw recorded in a hash-chained "
        "log (chapter {ref}`randomisation`).",
        "**Treatment.** The patient receives usual care, plus the experimental treatment if "
        "allocated to one, at the registry's dose (chapter {ref}`interventions`); the trial is "
        "open-label.",
        f"**Day 28.** The patient is followed to day 28: {_lower_first(primary.label)}, survival and "
        "the safety outcomes (chapter {ref}`outcomes`).",
    ]


def key_choices_table(design: Design) -> pd.DataFrame:
    """The key statistical choices in one compact table (the value only, no rationale).

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Columns Choice and Value, one row per parameter of :func:`proposed_parameters_table`.
    """
    full = proposed_parameters_table(design)
    return full[[LABELS["parameter"], LABELS["value"]]].rename(
        columns={LABELS["parameter"]: "Choice"}
    )


#: Width of the platform schema in pixels: with its padding it fits a phone's content column.
SCHEMA_WIDTH = 340

#: Colours of the platform schema: screening and traits, randomisation, follow-up, analysis.
SCHEMA_COLOURS = {
    "Patient": "#d1e5f0",
    "Analysis": "#fddbc7",
}


def platform_schema(design: Design) -> alt.Chart:
    """The platform as a flow: screening, traits, randomisation within a trait, day 28, interim
    looks and decisions, one box per step with its numbers from the design.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    altair.LayerChart
        A vertical flow, :data:`SCHEMA_WIDTH` px wide (it fits a phone's 390 px).
    """
    t, dec, al, it = design.trial, design.decisions, design.allocation, design.interims
    primary = next(o for o in design.outcomes.outcomes if o.role == "primary")
    trait_names = [tr.short_name or tr.name for tr in design.traits]
    steps = [
        (
            "Patient",
            "1. Screening",
            [
                "Sepsis, children and adults",
                f"{len(design.eligibility.inclusion)} inclusion, "
                f"{len(design.eligibility.exclusion)} exclusion criteria",
            ],
        ),
        (
            "Patient",
            f"2. Treatable traits ({len(design.traits)})",
            [", ".join(trait_names[:3]) + ",", ", ".join(trait_names[3:])],
        ),
        (
            "Patient",
            "3. Randomisation within the trait",
            [
                f"Usual care vs {t.arms_per_trait.experimental_min} to "
                f"{t.arms_per_trait.experimental_max} experimental arms",
                f"Equal until {al.burn_in_min_complete_per_arm} complete per arm, then adaptive",
            ],
        ),
        ("Patient", "4. Day 28", [primary.label, "mortality and safety outcomes"]),
        (
            "Analysis",
            "5. Interim looks",
            [
                f"Every {it.look_every_complete} complete day-28 outcomes",
                "Bayesian model, all traits at once",
            ],
        ),
        (
            "Analysis",
            "6. Decisions per arm",
            [
                f"Graduate: Pr(OR > {dec.graduation.or_reference:g}) > "
                f"{dec.graduation.threshold:g}; futility: Pr(OR > "
                f"{dec.futility.or_reference:g}) < {dec.futility.threshold:g}",
                f"Harm: Pr(OR < {dec.harm.or_reference:g}) > {dec.harm.threshold:g}; "
                f"cap {dec.cap_per_experimental_arm.value} patients",
            ],
        ),
    ]
    rows = [
        {"step": i, "kind": kind, "title": title, "detail": "\n".join(detail)}
        for i, (kind, title, detail) in enumerate(steps)
    ]
    df = pd.DataFrame(rows)
    scale = alt.Scale(domain=[len(steps) - 0.45, -0.55])
    y = alt.Y("step:Q", axis=None, scale=scale)
    box = (
        alt.Chart(df)
        .transform_calculate(top="datum.step - 0.38", bottom="datum.step + 0.38")
        .mark_rect(cornerRadius=6, stroke="#4d4d4d", strokeWidth=1)
        .encode(
            x=alt.value(0),
            x2=alt.value(SCHEMA_WIDTH),
            y=alt.Y("top:Q", axis=None, scale=scale),
            y2="bottom:Q",
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=list(SCHEMA_COLOURS), range=list(SCHEMA_COLOURS.values())),
                legend=alt.Legend(orient="top", labelFontSize=11),
            ),
        )
    )
    title = (
        alt.Chart(df)
        .mark_text(align="left", dx=8, dy=-16, fontSize=12.5, fontWeight="bold", color="black")
        .encode(x=alt.value(0), y=y, text="title:N")
    )
    detail = (
        alt.Chart(df)
        .mark_text(align="left", baseline="top", dx=8, dy=-4, fontSize=10.5, lineBreak="\n")
        .encode(x=alt.value(0), y=y, text="detail:N", color=alt.value("#1a1a1a"))
    )
    arrows = (
        alt.Chart(df[df["step"] < len(steps) - 1])
        .transform_calculate(at="datum.step + 0.5")
        .mark_point(shape="triangle-down", size=90, filled=True, color="#4d4d4d", opacity=1)
        .encode(x=alt.value(SCHEMA_WIDTH / 2), y=alt.Y("at:Q", axis=None, scale=scale))
    )
    return (
        (box + title + detail + arrows)
        .properties(
            width=SCHEMA_WIDTH,
            height=len(steps) * 78,
            title="The platform, from screening to decisions",
        )
        .configure_view(stroke=None)
    )
