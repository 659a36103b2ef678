"""Chapter "Synopsis": the trial at a glance, traits and arms, eligibility and the statistical
parameters the registry does not give, all built from the design (no numbers of their own)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from palette_core.design.loader import Design
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
