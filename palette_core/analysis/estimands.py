"""Outcomes and estimands (ICH E9(R1)) as tables, built from a :class:`~palette_core.design.loader.Design`.

``data/design/proposed/estimands.yaml`` declares the population and treatment templates, the
intercurrent events with their default strategies, and one block per outcome (summary measure
and any strategy that differs). This module expands them into one estimand per
trait x experimental arm x outcome: the primary and key secondary outcomes for every
experimental arm, a safety outcome only for the arms one of whose substances it applies to
(``applies_to_substances`` in ``proposed/outcomes.yaml``).

Examples
--------
>>> from palette_core import load_design
>>> from palette_core.analysis.estimands import estimands_table
>>> table = estimands_table(load_design())
>>> table.query("arm == 'hinf_anakinra'")["outcome"].tolist()
['osfd28', 'mortality28', 'secondary_infection']
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from palette_core.design.arms import Arm
from palette_core.design.loader import Design
from palette_core.design.outcomes import Estimand, Outcome
from palette_core.design.traits import Trait

SUMMARY_MEASURES = {
    "proportional_odds_ratio": "Proportional odds ratio vs usual care (OR > 1 = benefit)",
    "odds_ratio": "Odds ratio vs usual care (OR > 1 = benefit)",
}
ROLE_LABELS = {"primary": "Primary", "key_secondary": "Key secondary", "safety": "Safety"}


def _name(obj: Trait | Arm) -> str:
    return obj.short_name or obj.name


def _age_groups(design: Design, ids: tuple[str, ...]) -> str:
    labels = {g.id: g.label.lower() for g in design.strata.age_groups}
    return " and ".join(labels[i] for i in ids)


def outcome_applies(design: Design, outcome: Outcome, arm: Arm) -> bool:
    """Is ``outcome`` an estimand's variable for ``arm``? Safety outcomes only for their substances."""
    if arm.role != "experimental":
        return False
    if outcome.role != "safety":
        return True
    return any(c.substance in outcome.applies_to_substances for c in arm.components)


def estimand_block(design: Design, outcome_id: str) -> Estimand:
    """The block of ``proposed/estimands.yaml`` for an outcome (``KeyError`` if none)."""
    for e in design.estimands.estimands:
        if e.outcome == outcome_id:
            return e
    raise KeyError(f"no estimand for outcome {outcome_id!r}")


def strategies_for(design: Design, outcome_id: str) -> list[dict[str, str]]:
    """Each intercurrent event with the strategy and handling that apply to ``outcome_id``."""
    block, est = estimand_block(design, outcome_id), design.estimands
    rows = []
    for ev in est.intercurrent_events:
        choice = block.strategies.get(ev.id)
        sid = choice.strategy if choice is not None else ev.strategy
        rows.append(
            {
                "outcome": outcome_id,
                "event": ev.id,
                "event_label": ev.label,
                "strategy": sid,
                "strategy_label": est.strategies[sid].label,
                "handling": choice.handling if choice is not None else ev.handling,
                "overridden": choice is not None,
            }
        )
    return rows


def estimands_table(design: Design) -> pd.DataFrame:
    """One row per trait x experimental arm x applicable outcome, in design order.

    Columns: ``trait``, ``arm``, ``outcome`` (ids), ``role``, ``population``, ``treatment``,
    ``endpoint``, ``intercurrent_events`` (``event: strategy`` pairs), ``summary_measure``.
    """
    est = design.estimands
    short = {
        o.id: "; ".join(
            f"{r['event_label']}: {r['strategy_label'].lower()}"
            for r in strategies_for(design, o.id)
        )
        for o in design.outcomes.outcomes
    }
    rows = []
    for t in design.traits:
        control = design.control_of(t.id)
        for arm in design.experimental_arms(t.id):
            population = est.population.template.format(
                trait=_name(t), age_groups=_age_groups(design, design.arm_age_groups(arm))
            )
            treatment = est.treatment.template.format(arm=_name(arm), control=_name(control))
            for o in design.outcomes.outcomes:
                if not outcome_applies(design, o, arm):
                    continue
                rows.append(
                    {
                        "trait": t.id,
                        "arm": arm.id,
                        "outcome": o.id,
                        "role": ROLE_LABELS[o.role],
                        "population": population,
                        "treatment": treatment,
                        "endpoint": o.label,
                        "intercurrent_events": short[o.id],
                        "summary_measure": SUMMARY_MEASURES[
                            estimand_block(design, o.id).summary_measure
                        ],
                    }
                )
    return pd.DataFrame(rows)


def intercurrent_events_table(design: Design) -> pd.DataFrame:
    """One row per intercurrent event x outcome: the strategy and how the event is handled."""
    return pd.DataFrame([r for o in design.outcomes.outcomes for r in strategies_for(design, o.id)])


def strategy_matrix(design: Design) -> pd.DataFrame:
    """Intercurrent events (rows) x outcomes (columns), each cell the strategy's label."""
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
    """The intercurrent events with their default strategy, handling and rationale."""
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


def outcomes_table(design: Design) -> pd.DataFrame:
    """The outcomes of ``proposed/outcomes.yaml`` with role, type, direction and rationale."""
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


def estimands_chart(table: pd.DataFrame, design: Design) -> alt.Chart:
    """Number of estimands per trait, stacked by outcome (from :func:`estimands_table`)."""
    names = {t.id: _name(t) for t in design.traits}
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


__all__ = [
    "estimands_table",
    "intercurrent_events_table",
    "strategy_matrix",
    "event_definitions_table",
    "outcomes_table",
    "outcome_applies",
    "estimand_block",
    "strategies_for",
    "estimands_chart",
]


def estimands_numbers(design: Design, table: pd.DataFrame | None = None) -> dict[str, object]:
    """Every number the chapter "Outcomes and estimands" quotes in its prose."""
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
