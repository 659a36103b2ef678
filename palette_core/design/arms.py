"""Arms and what they give: ``arms.yaml``, ``substances.yaml``, ``shared_effect_groups.yaml``.

An arm belongs to one trait: its usual-care control, or an experimental arm whose components
give substances (drugs, devices, blood products) by structured dose rules, a transcription of
the registry text (not a prescription). A shared-effect group declares the same intervention
tested in several traits, so that the model can borrow between them; it is never inferred from
names. Which body weight a dose per kg is computed on is
:mod:`~palette_core.design.dosing_weight`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from palette_core.design.common import AgeGroupId, Frozen, Op, References, Route
from palette_core.design.traits import Trait
from palette_core.design.trial import ArmsPerTrait
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignSchemaError,
    MissingControlError,
    OutOfRangeError,
    UnknownReferenceError,
    UnknownUnitError,
)

FILE = "arms.yaml"
#: The dimensions a dose (or its cap or equivalent) may be expressed in.
DOSE_DIMENSIONS = frozenset({"mass", "activity", "volume"})


# ----------------------------------------------------------------------------- doses
class Quantity(Frozen):
    amount: float
    unit: str


class Cap(Quantity):
    finding: str


class BsaRule(Frozen):
    variable: Literal["bsa_m2"]
    op: Op
    threshold: float


Frequency = Literal[
    "every_n_hours", "once_daily", "every_other_day", "continuous_infusion", "daily"
]


class Dose(Frozen):
    """One dose rule, a structured transcription of registry text (not a prescription)."""

    amount: float
    amount_max: float | None = None
    unit: str
    basis: Literal["fixed", "per_kg", "per_m2"]
    per: Literal["administration", "day", "hour"]
    frequency: Frequency
    every_hours: int | None = None
    duration_days: float | None = None
    stop_on: tuple[Literal["icu_discharge", "hospital_discharge"], ...] = ()
    condition: str | None = None
    when: BsaRule | None = None
    max_amount: Cap | None = None
    equivalent: Quantity | None = None


def _dose_list(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


DoseRules = Annotated[tuple[Dose, ...], BeforeValidator(_dose_list)]


# ----------------------------------------------------------------------------- arms
class Procedure(Frozen):
    max_hours_per_day: float
    max_consecutive_days: int


class Component(Frozen):
    substance: str
    route: Route | None
    adult: DoseRules | None = None
    child: Literal["same_as_adult"] | DoseRules | None = None
    procedure: Procedure | None = None


class ArmRegistry(Frozen):
    label: str
    intervention: str
    text: str


class Availability(Frozen):
    initial_state: Literal["open", "planned"]
    opens_when: str | None = None


class Arm(Frozen):
    id: str
    trait: str
    role: Literal["control", "experimental"]
    name: str
    short_name: str | None = None
    registry: ArmRegistry
    availability: Availability
    components: tuple[Component, ...] = ()
    age_groups: tuple[AgeGroupId, ...] | None = None


class ArmsFile(Frozen):
    arms: tuple[Arm, ...] = Field(min_length=1)


# ----------------------------------------------------------------------------- substances, groups
class Substance(Frozen):
    name: str
    kind: Literal["drug", "device", "blood_product"]
    drug_class: str
    licensed_routes: tuple[Route, ...] = Field(min_length=1)
    paediatric_dosing: Literal["weight_based", "fixed", "not_applicable"]
    typical_daily_dose: dict[str, float | str] | None = None
    reference: str


class SubstancesFile(Frozen):
    substances: dict[str, Substance]


class SharedEffectGroup(Frozen):
    id: str
    name: str
    arms: tuple[str, ...]
    registry_evidence: str


class SharedEffectGroupsFile(Frozen):
    shared_effect_groups: tuple[SharedEffectGroup, ...] = ()


# ----------------------------------------------------------------------------- checks
def check_dose(dose: Dose, arm: str, fld: str, refs: References, file: str = FILE) -> None:
    """One dose rule: units of a dose dimension, positive amounts, a coherent schedule."""
    refs.check_unit(dose.unit, file, arm, f"{fld}.unit", DOSE_DIMENSIONS)
    if dose.amount <= 0:
        raise OutOfRangeError(file, arm, f"{fld}.amount", f"must be > 0, got {dose.amount}")
    if dose.amount_max is not None and dose.amount_max < dose.amount:
        raise OutOfRangeError(
            file,
            arm,
            f"{fld}.amount_max",
            f"{dose.amount_max} is below amount {dose.amount}",
        )
    if (dose.frequency == "every_n_hours") != (dose.every_hours is not None):
        raise ConflictingArgumentsError(
            file,
            arm,
            f"{fld}.every_hours",
            "every_hours is required with frequency every_n_hours and only then",
        )
    if dose.every_hours is not None and not 1 <= dose.every_hours <= 24:
        raise OutOfRangeError(
            file, arm, f"{fld}.every_hours", f"must be in 1..24, got {dose.every_hours}"
        )
    if dose.duration_days is not None and dose.duration_days <= 0:
        raise OutOfRangeError(
            file, arm, f"{fld}.duration_days", f"must be > 0, got {dose.duration_days}"
        )
    if dose.when is not None and dose.when.threshold <= 0:
        raise OutOfRangeError(file, arm, f"{fld}.when.threshold", "must be > 0")
    for extra, name in ((dose.max_amount, "max_amount"), (dose.equivalent, "equivalent")):
        if extra is None:
            continue
        uid = refs.check_unit(extra.unit, file, arm, f"{fld}.{name}.unit", DOSE_DIMENSIONS)
        if name == "max_amount" and refs.units[uid].dimension != refs.dimension(dose.unit):
            raise UnknownUnitError(
                file,
                arm,
                f"{fld}.{name}.unit",
                f"cap in {extra.unit} cannot limit a dose in {dose.unit}",
            )
        if extra.amount <= 0:
            raise OutOfRangeError(file, arm, f"{fld}.{name}.amount", "must be > 0")
    if dose.max_amount is not None:
        refs.check_finding(dose.max_amount.finding, file, arm, f"{fld}.max_amount.finding")


def check_arm_age_groups(arm: Arm, trait: Trait, refs: References, file: str = FILE) -> None:
    """An arm's own age groups are declared and admitted by its trait."""
    for ag in arm.age_groups or ():
        refs.check_age_group(ag, file, arm.id, "age_groups")
        if ag not in trait.age_groups:
            raise ConflictingArgumentsError(
                file,
                arm.id,
                "age_groups",
                f"arm open to {ag!r} but trait {trait.id!r} admits only {list(trait.age_groups)}",
            )


def check_components(
    arm: Arm, substances: Mapping[str, Substance], refs: References, file: str = FILE
) -> None:
    """Each component gives a known substance by a procedure or by adult (and child) doses."""
    for i, c in enumerate(arm.components):
        fld = f"components[{i}]"
        if c.substance not in substances:
            raise UnknownReferenceError(
                file,
                arm.id,
                f"{fld}.substance",
                f"substance {c.substance!r} is not in substances.yaml",
            )
        if (c.procedure is None) == (c.adult is None):
            raise ConflictingArgumentsError(
                file,
                arm.id,
                fld,
                "give either a procedure or an adult dose, not both or neither",
            )
        for j, dose in enumerate(c.adult or ()):
            check_dose(dose, arm.id, f"{fld}.adult[{j}]", refs, file)
        if isinstance(c.child, tuple):
            for j, dose in enumerate(c.child):
                check_dose(dose, arm.id, f"{fld}.child[{j}]", refs, file)
        if c.procedure is not None and (
            c.procedure.max_hours_per_day <= 0
            or c.procedure.max_hours_per_day > 24
            or c.procedure.max_consecutive_days <= 0
        ):
            raise OutOfRangeError(
                file,
                arm.id,
                f"{fld}.procedure",
                "hours per day must be in (0, 24] and days > 0",
            )


def check_arms(
    arms: tuple[Arm, ...],
    traits: tuple[Trait, ...],
    substances: Mapping[str, Substance],
    bounds: ArmsPerTrait,
    refs: References,
) -> None:
    """arms.yaml: each arm, then each trait's one control and its number of experimental arms."""
    by_id = {t.id: t for t in traits}
    for a in arms:
        if a.trait not in by_id:
            raise UnknownReferenceError(
                FILE,
                a.id,
                "trait",
                f"trait {a.trait!r} is not in traits.yaml ({', '.join(by_id)})",
            )
        check_arm_age_groups(a, by_id[a.trait], refs)
        if a.role == "control" and a.components:
            raise ConflictingArgumentsError(
                FILE, a.id, "components", "a usual-care control has no components"
            )
        if a.role == "experimental" and not a.components:
            raise DesignSchemaError(
                FILE,
                a.id,
                "components",
                "an experimental arm needs at least one component",
            )
        if a.availability.initial_state == "planned" and not a.availability.opens_when:
            raise DesignSchemaError(
                FILE,
                a.id,
                "availability.opens_when",
                "a planned arm must say when it opens",
            )
        check_components(a, substances, refs)
    for t in traits:
        controls = [a for a in arms if a.trait == t.id and a.role == "control"]
        if not controls:
            raise MissingControlError(
                FILE, t.id, "role", f"trait {t.id!r} has no usual-care control arm"
            )
        if len(controls) > 1:
            raise ConflictingArgumentsError(
                FILE,
                t.id,
                "role",
                f"trait {t.id!r} has {len(controls)} control arms: {[a.id for a in controls]}",
            )
        n_exp = sum(a.trait == t.id and a.role == "experimental" for a in arms)
        if not bounds.experimental_min <= n_exp <= bounds.experimental_max:
            raise OutOfRangeError(
                FILE,
                t.id,
                "role",
                f"trait {t.id!r} has {n_exp} experimental arms; the registry allows {bounds.experimental_min} to {bounds.experimental_max}",
            )


def check_shared_effect_groups(
    groups: tuple[SharedEffectGroup, ...], arms: tuple[Arm, ...]
) -> None:
    """shared_effect_groups.yaml: two or more experimental arms of different traits giving the
    same substances, each arm in one group at most."""
    f = "shared_effect_groups.yaml"
    by_id = {a.id: a for a in arms}
    for g in groups:
        if len(g.arms) < 2:
            raise DesignSchemaError(
                f, g.id, "arms", "a shared-effect group needs at least two arms"
            )
        for aid in g.arms:
            if aid not in by_id:
                raise UnknownReferenceError(f, g.id, "arms", f"arm {aid!r} is not in arms.yaml")
            if by_id[aid].role != "experimental":
                raise ConflictingArgumentsError(
                    f,
                    g.id,
                    "arms",
                    f"arm {aid!r} is a control; only experimental effects are shared",
                )
        traits = [by_id[aid].trait for aid in g.arms]
        if len(set(traits)) != len(traits):
            raise ConflictingArgumentsError(
                f, g.id, "arms", f"arms must be in different traits, got {traits}"
            )
        substance_sets = {
            tuple(sorted(c.substance for c in by_id[aid].components)) for aid in g.arms
        }
        if len(substance_sets) != 1:
            raise ConflictingArgumentsError(
                f,
                g.id,
                "arms",
                f"arms must give the same substances, got {sorted(substance_sets)}",
            )
    seen: dict[str, str] = {}
    for g in groups:
        for aid in g.arms:
            if aid in seen:
                raise ConflictingArgumentsError(
                    f, g.id, "arms", f"arm {aid!r} is already in group {seen[aid]!r}"
                )
            seen[aid] = g.id


__all__ = [
    "DOSE_DIMENSIONS",
    "Arm",
    "ArmRegistry",
    "ArmsFile",
    "Availability",
    "BsaRule",
    "Cap",
    "Component",
    "Dose",
    "DoseRules",
    "Frequency",
    "Procedure",
    "Quantity",
    "SharedEffectGroup",
    "SharedEffectGroupsFile",
    "Substance",
    "SubstancesFile",
    "check_arm_age_groups",
    "check_arms",
    "check_components",
    "check_dose",
    "check_shared_effect_groups",
]
