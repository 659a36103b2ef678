"""Outcomes and estimands: ``proposed/outcomes.yaml`` and ``proposed/estimands.yaml``.

Each outcome declares its role (one primary), type (ordinal or binary), benefit direction and,
for the ordinal primary, its support range, the value of death and the organ supports it
counts. The estimands (ICH E9(R1)) name, per outcome, the summary measure and the strategy for
each intercurrent event; the population and treatment attributes are templates.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from palette_core.design.arms import Substance
from palette_core.design.common import Frozen, Proposed, unique_ids
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignSchemaError,
    DuplicateIdError,
    OutOfRangeError,
    UnknownReferenceError,
)


# ----------------------------------------------------------------------------- outcomes
class Outcome(Frozen):
    id: str
    label: str
    role: Literal["primary", "key_secondary", "safety"]
    type: Literal["ordinal", "binary"]
    support_range: tuple[int, int] | None = None
    death_value: int | None = None
    benefit_direction: Literal["higher", "lower"]
    organ_support: tuple[str, ...] = ()
    applies_to_substances: tuple[str, ...] = ()
    rationale: str


class OrOrientation(Frozen):
    benefit_is: Literal["greater_than_one"]
    rationale: str


class OutcomesFile(Frozen):
    status: Proposed
    outcomes: tuple[Outcome, ...] = Field(min_length=1)
    odds_ratio_orientation: OrOrientation


def check_outcomes(outcomes: OutcomesFile, substances: Mapping[str, Substance]) -> None:
    """proposed/outcomes.yaml: one primary; coherent support ranges; known substances."""
    f = "proposed/outcomes.yaml"
    roles = Counter(o.role for o in outcomes.outcomes)
    if roles["primary"] != 1:
        raise ConflictingArgumentsError(
            f,
            None,
            "outcomes",
            f"exactly one primary outcome is needed, found {roles['primary']}",
        )
    for o in outcomes.outcomes:
        if o.type == "ordinal" and o.support_range is None:
            raise DesignSchemaError(
                f, o.id, "support_range", "an ordinal outcome needs its support range"
            )
        if o.support_range is not None and not o.support_range[0] < o.support_range[1]:
            raise OutOfRangeError(f, o.id, "support_range", "lower end must be below upper end")
        if (
            o.death_value is not None
            and o.support_range is not None
            and not o.support_range[0] <= o.death_value <= o.support_range[1]
        ):
            raise OutOfRangeError(f, o.id, "death_value", "must lie in the support range")
        for sub in o.applies_to_substances:
            if sub not in substances:
                raise UnknownReferenceError(
                    f,
                    o.id,
                    "applies_to_substances",
                    f"substance {sub!r} is not in substances.yaml",
                )


# ----------------------------------------------------------------------------- estimands
class EstimandTemplate(Frozen):
    template: str
    rationale: str


class Strategy(Frozen):
    label: str
    description: str


class StrategyChoice(Frozen):
    strategy: str
    handling: str


class IntercurrentEvent(Frozen):
    id: str
    label: str
    strategy: str
    handling: str
    rationale: str


class Estimand(Frozen):
    outcome: str
    summary_measure: Literal["proportional_odds_ratio", "odds_ratio"]
    strategies: dict[str, StrategyChoice] = Field(default_factory=dict)
    rationale: str


class EstimandsFile(Frozen):
    status: Proposed
    population: EstimandTemplate
    treatment: EstimandTemplate
    strategies: dict[str, Strategy] = Field(min_length=1)
    intercurrent_events: tuple[IntercurrentEvent, ...] = Field(min_length=1)
    estimands: tuple[Estimand, ...] = Field(min_length=1)


def check_estimands(est: EstimandsFile, outcomes: OutcomesFile) -> None:
    """proposed/estimands.yaml: every outcome has one estimand; every reference exists."""
    f = "proposed/estimands.yaml"
    fields = {"population": {"trait", "age_groups"}, "treatment": {"arm", "control"}}
    for name, allowed in fields.items():
        try:
            used = {p for _, p, _, _ in string.Formatter().parse(getattr(est, name).template)}
        except ValueError as exc:
            raise DesignSchemaError(f, name, "template", str(exc)) from None
        unknown = sorted(str(p) for p in used - allowed - {None})
        if unknown:
            raise UnknownReferenceError(
                f, name, "template", f"placeholder(s) {unknown}; allowed: {sorted(allowed)}"
            )
    unique_ids(est.intercurrent_events, f, "intercurrent event")
    events = {e.id for e in est.intercurrent_events}

    def strategy(sid: str, entry: str, fld: str) -> None:
        if sid not in est.strategies:
            raise UnknownReferenceError(
                f, entry, fld, f"strategy {sid!r} is not declared under strategies"
            )

    for e in est.intercurrent_events:
        strategy(e.strategy, e.id, "strategy")
    outcome_types = {o.id: o.type for o in outcomes.outcomes}
    measure = {"ordinal": "proportional_odds_ratio", "binary": "odds_ratio"}
    seen: set[str] = set()
    for e in est.estimands:
        if e.outcome not in outcome_types:
            raise UnknownReferenceError(
                f,
                e.outcome,
                "outcome",
                f"outcome {e.outcome!r} is not in proposed/outcomes.yaml",
            )
        if e.outcome in seen:
            raise DuplicateIdError(f, e.outcome, "outcome", "one estimand block per outcome")
        seen.add(e.outcome)
        if e.summary_measure != measure[outcome_types[e.outcome]]:
            raise ConflictingArgumentsError(
                f,
                e.outcome,
                "summary_measure",
                f"a {outcome_types[e.outcome]} outcome is summarised by "
                f"{measure[outcome_types[e.outcome]]}, not {e.summary_measure}",
            )
        for ev, choice in e.strategies.items():
            if ev not in events:
                raise UnknownReferenceError(
                    f,
                    e.outcome,
                    f"strategies.{ev}",
                    f"intercurrent event {ev!r} is not declared under intercurrent_events",
                )
            strategy(choice.strategy, e.outcome, f"strategies.{ev}.strategy")
    missing = [o for o in outcome_types if o not in seen]
    if missing:
        raise ConflictingArgumentsError(
            f, None, "estimands", f"no estimand for outcome(s) {missing}"
        )


__all__ = [
    "Estimand",
    "EstimandTemplate",
    "EstimandsFile",
    "IntercurrentEvent",
    "OrOrientation",
    "Outcome",
    "OutcomesFile",
    "Strategy",
    "StrategyChoice",
    "check_estimands",
    "check_outcomes",
]
