"""Chapter "Outcomes and estimands": the outcomes, the intercurrent events and their strategies
as the chapter shows them, the estimands per trait, and the numbers its prose quotes. The
estimands themselves are defined by :mod:`palette_core.analysis.estimands`."""

from __future__ import annotations

import altair as alt
import pandas as pd

from palette_core.analysis.estimands import ROLE_LABELS, estimands_table, intercurrent_events_table
from palette_core.design.loader import Design
from palette_core.viz.labels import trait_label


def outcomes_table(design: Design) -> pd.DataFrame:
    """The outcomes of ``proposed/outcomes.yaml`` with role, type, direction and rationale.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        One row per outcome.
    """
    rows = []
    for o in design.outcomes.outcomes:
        subs = ", ".join(design.substances[x].name for x in o.applies_to_substances)
        rows.append(
            {
                "Outcome": o.label,
                "Role": ROLE_LABELS[o.role],
                "Type": o.type,
                "Benefit": f"{o.benefit_direction} is better",
                "Applies to": subs or "all experimental arms",
                "Status": design.outcomes.status,
                "Rationale": o.rationale,
            }
        )
    return pd.DataFrame(rows)


def strategy_matrix(design: Design) -> pd.DataFrame:
    """Intercurrent events (rows) x outcomes (columns), each cell the strategy's label.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Column Intercurrent event, then one column per outcome label.
    """
    long = intercurrent_events_table(design)
    labels = {o.id: o.label for o in design.outcomes.outcomes}
    wide = long.pivot(index="event_label", columns="outcome", values="strategy_label")
    wide = wide.loc[[e.label for e in design.estimands.intercurrent_events], list(labels)]
    return (
        wide.rename(columns=labels)
        .rename_axis(columns=None)
        .reset_index(names="Intercurrent event")
    )


def event_definitions_table(design: Design) -> pd.DataFrame:
    """The intercurrent events with their default strategy, handling and rationale.

    Parameters
    ----------
    design
        The loaded design (``proposed/estimands.yaml``).

    Returns
    -------
    pandas.DataFrame
        One row per intercurrent event.
    """
    est = design.estimands
    return pd.DataFrame(
        [
            {
                "Intercurrent event": e.label,
                "Default strategy": est.strategies[e.strategy].label,
                "Handling": e.handling,
                "Rationale": e.rationale,
            }
            for e in est.intercurrent_events
        ]
    )


def estimands_chart(table: pd.DataFrame, design: Design) -> alt.Chart:
    """Number of estimands per trait, stacked by outcome.

    Parameters
    ----------
    table
        The estimands (:func:`palette_core.analysis.estimands.estimands_table`).
    design
        The loaded design (trait and outcome labels).

    Returns
    -------
    altair.Chart
        One stacked bar per trait.
    """
    names = {t.id: trait_label(design, t.id) for t in design.traits}
    labels = {o.id: o.label for o in design.outcomes.outcomes}
    counts = (
        table.assign(trait=table["trait"].map(names), outcome=table["outcome"].map(labels))
        .groupby(["trait", "outcome"], as_index=False)
        .size()
        .rename(columns={"size": "estimands"})
    )
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            y=alt.Y("trait:N", sort=list(names.values()), title=None),
            x=alt.X("estimands:Q", title="Number of estimands"),
            color=alt.Color(
                "outcome:N",
                sort=list(labels.values()),
                scale=alt.Scale(domain=list(labels.values()), scheme="tableau10"),
                title="Outcome",
                legend=alt.Legend(orient="bottom", columns=2),
            ),
            tooltip=["trait", "outcome", "estimands"],
        )
        .properties(width=420, height=alt.Step(26), title="Estimands per trait and outcome")
    )


def estimands_numbers(design: Design, table: pd.DataFrame | None = None) -> dict[str, object]:
    """Every number the chapter "Outcomes and estimands" quotes in its prose.

    Parameters
    ----------
    design
        The loaded design.
    table
        The estimands, if already computed (else computed here).

    Returns
    -------
    dict
        Glue name -> value: outcome, estimand, arm, trait, safety and event counts, and the OSFD
        scale.
    """
    table = estimands_table(design) if table is None else table
    osfd = next(o for o in design.outcomes.outcomes if o.role == "primary")
    return {
        "n_outcomes": len(design.outcomes.outcomes),
        "osfd_death": osfd.death_value,
        "osfd_max": osfd.support_range[1],
        "osfd_supports": ", ".join(x.replace("_", " ") for x in osfd.organ_support),
        "n_estimands": len(table),
        "n_arms": table["arm"].nunique(),
        "n_traits": table["trait"].nunique(),
        "n_safety": int((table["role"] == "Safety").sum()),
        "n_events": len(design.estimands.intercurrent_events),
    }


def estimands_matrix(table: pd.DataFrame, design: Design, trait: str) -> pd.DataFrame:
    """The estimands of one trait, condensed: one row per experimental arm, one column per
    outcome, each cell the estimand's summary measure (``-`` where the arm has none).

    What every estimand of the trait shares (population, intercurrent events) is not repeated
    per row: :func:`estimand_population` gives the population, :func:`strategy_matrix` the
    intercurrent events.

    Parameters
    ----------
    table
        :func:`palette_core.analysis.estimands.estimands_table`.
    design
        The loaded design (arm and outcome names, their order).
    trait
        A trait id.

    Returns
    -------
    pandas.DataFrame
        Column "Arm (versus usual care)", then one column per outcome that the trait's
        estimands use, in the order of ``outcomes.yaml``.
    """
    rows = table[table["trait"] == trait]
    outcomes = [o for o in design.outcomes.outcomes if o.id in set(rows["outcome"])]
    measure = {
        (a, o): m.split(" vs ")[0]
        for a, o, m in zip(rows["arm"], rows["outcome"], rows["summary_measure"], strict=True)
    }
    out = []
    for arm in design.experimental_arms(trait):
        row = {"Arm (versus usual care)": arm.name}
        for o in outcomes:
            row[f"{o.label} ({ROLE_LABELS[o.role].lower()})"] = measure.get((arm.id, o.id), "-")
        out.append(row)
    return pd.DataFrame(out)


def estimand_population(table: pd.DataFrame, trait: str) -> str:
    """The population shared by the estimands of a trait, age groups aside.

    Parameters
    ----------
    table
        :func:`palette_core.analysis.estimands.estimands_table`.
    trait
        A trait id.

    Returns
    -------
    str
        The population of the trait's first estimand (they differ only in the age groups of
        the arm, shown by the dose tables).
    """
    return str(table.loc[table["trait"] == trait, "population"].iloc[0])
