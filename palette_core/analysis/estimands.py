"""Outcomes and estimands (ICH E9(R1)) as data, built from a :class:`~palette_core.design.loader.Design`.

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


__all__ = [
    "estimands_table",
    "intercurrent_events_table",
    "outcome_applies",
    "estimand_block",
    "strategies_for",
]
