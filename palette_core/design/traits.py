"""Treatable traits (``traits.yaml``): biomarkers, algorithm hooks and declarative rules.

A trait's rule, per age group, is a condition: a comparison of a biomarker with a threshold in
a unit (INR >= 1.40), a hook (a named algorithm or a site-recorded class, positive for listed
classes), or ``all``/``any`` of conditions. Hooks are declared here as data (name, classes,
kind, input field); their implementations live with the classification
(:mod:`palette_core.screening.traits`), which checks that each declared hook has one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from palette_core.design.common import AgeGroupId, Frozen, Op, References
from palette_core.errors import (
    ConflictingArgumentsError,
    OutOfRangeError,
    UnknownReferenceError,
    UnknownUnitError,
)

FILE = "traits.yaml"


# ----------------------------------------------------------------------------- conditions
class Comparison(Frozen):
    """``biomarker op threshold`` in ``unit``, e.g. INR >= 1.40."""

    biomarker: str
    op: Op
    threshold: float
    unit: str


class HookRule(Frozen):
    """Positive when the named hook (an algorithm or a site-recorded class) gives a listed class."""

    hook: str
    positive: tuple[str, ...] = Field(min_length=1)


class AllOf(Frozen):
    all_of: tuple[Condition, ...] = Field(alias="all", min_length=2)


class AnyOf(Frozen):
    any_of: tuple[Condition, ...] = Field(alias="any", min_length=2)


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, tag in (
            ("biomarker", "comparison"),
            ("hook", "hook"),
            ("all", "all"),
            ("any", "any"),
        ):
            if key in value:
                return tag
        return None
    if isinstance(value, Comparison | HookRule | AllOf | AnyOf):
        return {Comparison: "comparison", HookRule: "hook", AllOf: "all", AnyOf: "any"}[type(value)]
    return None


Condition = Annotated[
    Annotated[Comparison, Tag("comparison")]
    | Annotated[HookRule, Tag("hook")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")],
    Discriminator(
        _condition_tag,
        custom_error_type="condition",
        custom_error_message="a condition needs one of the keys biomarker, hook, all or any",
    ),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()


# ----------------------------------------------------------------------------- the file
class Biomarker(Frozen):
    label: str
    unit: str
    plausible: tuple[float, float]


class Hook(Frozen):
    label: str
    classes: tuple[str, ...] = Field(min_length=2)
    kind: Literal["algorithm_or_input", "input", "algorithm"]
    input_field: str | None = None
    note: str


class AlternativeReading(Frozen):
    id: str
    description: str
    rules: dict[AgeGroupId, Condition]


class Trait(Frozen):
    id: str
    name: str
    short_name: str | None = None
    registry_names: tuple[str, ...] = Field(min_length=1)
    age_groups: tuple[AgeGroupId, ...] = Field(min_length=1)
    registry_text: str
    rules: dict[AgeGroupId, Condition]
    alternative_readings: tuple[AlternativeReading, ...] = ()
    finding: str | None = None


class TraitsFile(Frozen):
    biomarkers: dict[str, Biomarker]
    hooks: dict[str, Hook]
    traits: tuple[Trait, ...] = Field(min_length=1)


# ----------------------------------------------------------------------------- checks
def leaves(cond: Any, path: str = "") -> Iterator[tuple[Comparison | HookRule, str]]:
    """The comparisons and hook rules of a condition, each with its path (``.all[1].any[0]``)."""
    if isinstance(cond, AllOf | AnyOf):
        key, children = ("all", cond.all_of) if isinstance(cond, AllOf) else ("any", cond.any_of)
        for i, child in enumerate(children):
            yield from leaves(child, f"{path}.{key}[{i}]")
    else:
        yield cond, path


def _check_condition(
    cond: Any,
    trait: str,
    fld: str,
    biomarkers: Mapping[str, Biomarker],
    hooks: Mapping[str, Hook],
    refs: References,
) -> None:
    for leaf, path in leaves(cond):
        where = f"{fld}{path}"
        if isinstance(leaf, Comparison):
            b = biomarkers.get(leaf.biomarker)
            if b is None:
                raise UnknownReferenceError(
                    FILE,
                    trait,
                    f"{where}.biomarker",
                    f"biomarker {leaf.biomarker!r} is not declared under biomarkers",
                )
            uid = refs.check_unit(leaf.unit, FILE, trait, f"{where}.unit")
            if refs.units[uid].dimension != refs.dimension(b.unit):
                raise UnknownUnitError(
                    FILE,
                    trait,
                    f"{where}.unit",
                    f"{leaf.unit!r} cannot express {leaf.biomarker} (declared in {b.unit})",
                )
            value = refs.to_unit(leaf.threshold, leaf.unit, b.unit)
            lo, hi = b.plausible
            if not lo <= value <= hi:
                raise OutOfRangeError(
                    FILE,
                    trait,
                    f"{where}.threshold",
                    f"{leaf.threshold} {leaf.unit} is outside the plausible range of {leaf.biomarker} [{lo}, {hi}] {b.unit}",
                )
        else:
            hook = hooks.get(leaf.hook)
            if hook is None:
                raise UnknownReferenceError(
                    FILE,
                    trait,
                    f"{where}.hook",
                    f"hook {leaf.hook!r} is not declared under hooks",
                )
            bad = [c for c in leaf.positive if c not in hook.classes]
            if bad:
                raise UnknownReferenceError(
                    FILE,
                    trait,
                    f"{where}.positive",
                    f"{bad} are not classes of hook {leaf.hook!r} ({', '.join(hook.classes)})",
                )


def check_traits(
    biomarkers: Mapping[str, Biomarker],
    hooks: Mapping[str, Hook],
    traits: tuple[Trait, ...],
    refs: References,
) -> None:
    """traits.yaml: biomarker units and ranges, then every trait's age groups, rules and finding.

    Every unit, age group and finding must be declared (``refs``); a threshold must be
    expressible in its biomarker's unit and plausible; a rule's hook and classes must be
    declared; a trait has a rule for each of its age groups and for no other.
    """
    for bid, b in biomarkers.items():
        refs.check_unit(b.unit, FILE, bid, "unit")
        lo, hi = b.plausible
        if not lo < hi:
            raise OutOfRangeError(
                FILE,
                bid,
                "plausible",
                f"lower bound {lo} must be below upper bound {hi}",
            )
    for t in traits:
        for ag in t.age_groups:
            refs.check_age_group(ag, FILE, t.id, "age_groups")
        for readings, prefix in [(t.rules, "rules")] + [
            (a.rules, f"alternative_readings.{a.id}.rules") for a in t.alternative_readings
        ]:
            for ag, cond in readings.items():
                refs.check_age_group(ag, FILE, t.id, f"{prefix}.{ag}")
                if ag not in t.age_groups:
                    raise ConflictingArgumentsError(
                        FILE,
                        t.id,
                        f"{prefix}.{ag}",
                        f"rule given for age group {ag!r} but the trait's age_groups are {list(t.age_groups)}",
                    )
                _check_condition(cond, t.id, f"{prefix}.{ag}", biomarkers, hooks, refs)
            missing = [ag for ag in t.age_groups if ag not in readings]
            if missing:
                raise ConflictingArgumentsError(
                    FILE,
                    t.id,
                    prefix,
                    f"no rule for age group(s) {missing} although the trait admits them",
                )
        refs.check_finding(t.finding, FILE, t.id, "finding")


__all__ = [
    "AllOf",
    "AlternativeReading",
    "AnyOf",
    "Biomarker",
    "Comparison",
    "Condition",
    "Hook",
    "HookRule",
    "Trait",
    "TraitsFile",
    "check_traits",
    "leaves",
]
