"""Which body weight a dose per kg is computed on: ``proposed/dosing_weight.yaml``.

The registry gives every weight-based dose per kg of "body weight" (or per m²) without saying
which weight or up to what maximum (RF-24). The file, all proposed, names per class of
substances and per age group the weight to use (actual, ideal or adjusted, with an optional
cap) with its published sources, and the plausible weights of each age group outside which no
dose is computed. :func:`check_dosing_weight` makes sure that every substance an arm doses by
weight has exactly one rule; :mod:`palette_core.screening.dosing` applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from palette_core.design.arms import Arm, Component, Substance
from palette_core.design.common import AgeGroupId, Frozen, Proposed, References
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignSchemaError,
    OutOfRangeError,
    UnknownReferenceError,
)

DOSING_WEIGHT_FILE = "proposed/dosing_weight.yaml"
#: How a dosing weight is obtained from the patient's actual weight (and height and sex):
#: ``actual`` the weight itself; ``ideal`` the ideal body weight where it is below the actual
#: weight; ``adjusted`` ideal + a fraction of the excess over it, where the actual weight is
#: above the ideal one.
DosingWeightKind = Literal["actual", "ideal", "adjusted"]


class WeightLimit(Frozen):
    """The plausible body weight of an age group for a dose computation."""

    age_group: AgeGroupId
    min_kg: float
    max_kg: float


class IdealBodyWeight(Frozen):
    """Ideal body weight: ``base`` kg at ``base_height_cm``, plus ``kg_per_cm`` per cm above."""

    male_kg: float
    female_kg: float
    base_height_cm: float
    kg_per_cm: float
    source: str


class AdjustedBodyWeight(Frozen):
    fraction_of_excess: float
    source: str


class DosingWeightRule(Frozen):
    """Which weight one class of substances is dosed on, per age group, with an optional cap."""

    id: str
    substances: tuple[str, ...] = Field(min_length=1)
    weight: dict[AgeGroupId, DosingWeightKind]
    max_kg: float | None = None
    rationale: str
    sources: tuple[str, ...] = Field(min_length=1)


class DosingWeightFile(Frozen):
    status: Proposed
    weight_limits: tuple[WeightLimit, ...] = Field(min_length=1)
    weight_limits_rationale: str
    ideal_body_weight: IdealBodyWeight
    adjusted_body_weight: AdjustedBodyWeight
    rules: tuple[DosingWeightRule, ...] = Field(min_length=1)

    def rule_for(self, substance: str) -> DosingWeightRule | None:
        """The rule that covers a substance (None for a substance not dosed by weight)."""
        return next((r for r in self.rules if substance in r.substances), None)

    def limit_for(self, age_group: str) -> WeightLimit | None:
        return next((x for x in self.weight_limits if x.age_group == age_group), None)


def _weight_based(component: Component) -> bool:
    rules = [*(component.adult or ())]
    if isinstance(component.child, tuple):
        rules += list(component.child)
    return any(r.basis in ("per_kg", "per_m2") or r.when is not None for r in rules)


def check_dosing_weight(
    dw: DosingWeightFile,
    arms: tuple[Arm, ...],
    substances: Mapping[str, Substance],
    refs: References,
) -> None:
    """``proposed/dosing_weight.yaml``: one limit per age group, sane numbers, and exactly one
    rule, naming a weight for every age group, for every substance an arm doses by weight."""
    f = DOSING_WEIGHT_FILE
    groups = refs.age_groups
    seen: set[str] = set()
    for i, lim in enumerate(dw.weight_limits):
        entry = f"weight_limits[{i}]"
        refs.check_age_group(lim.age_group, f, entry, "age_group")
        if lim.age_group in seen:
            raise ConflictingArgumentsError(f, entry, "age_group", "one limit per age group")
        seen.add(lim.age_group)
        if not 0 < lim.min_kg < lim.max_kg:
            raise OutOfRangeError(f, entry, "max_kg", "needs 0 < min_kg < max_kg")
    missing = [g for g in groups if g not in seen]
    if missing:
        raise DesignSchemaError(f, None, "weight_limits", f"no limit for age group(s) {missing}")
    ibw = dw.ideal_body_weight
    if min(ibw.male_kg, ibw.female_kg, ibw.base_height_cm, ibw.kg_per_cm) <= 0:
        raise OutOfRangeError(f, "ideal_body_weight", None, "every number must be > 0")
    if not 0 <= dw.adjusted_body_weight.fraction_of_excess <= 1:
        raise OutOfRangeError(f, "adjusted_body_weight", "fraction_of_excess", "must lie in [0, 1]")
    owner: dict[str, str] = {}
    for rule in dw.rules:
        for sub in rule.substances:
            if sub not in substances:
                raise UnknownReferenceError(
                    f, rule.id, "substances", f"{sub!r} is not in substances.yaml"
                )
            if sub in owner:
                raise ConflictingArgumentsError(
                    f, rule.id, "substances", f"{sub!r} is already covered by {owner[sub]!r}"
                )
            owner[sub] = rule.id
        for g in rule.weight:
            refs.check_age_group(g, f, rule.id, "weight")
        absent = [g for g in groups if g not in rule.weight]
        if absent:
            raise DesignSchemaError(f, rule.id, "weight", f"no weight for age group(s) {absent}")
        if rule.max_kg is not None and rule.max_kg <= 0:
            raise OutOfRangeError(f, rule.id, "max_kg", "must be > 0")
    for arm in arms:
        for c in arm.components:
            if _weight_based(c) and c.substance not in owner:
                raise DesignSchemaError(
                    f,
                    None,
                    "rules",
                    f"{arm.id} doses {c.substance!r} by weight but no rule says which weight",
                )


__all__ = [
    "DOSING_WEIGHT_FILE",
    "AdjustedBodyWeight",
    "DosingWeightFile",
    "DosingWeightKind",
    "DosingWeightRule",
    "IdealBodyWeight",
    "WeightLimit",
    "check_dosing_weight",
]
