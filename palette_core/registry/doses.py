"""Doses as the registry states them, rendered for people.

Everything here is a *transcription of the registry, not a prescription*. For each arm and age
group the answer is one of:

* ``stated`` — the structured dose, rendered as text;
* ``blocked`` — a registry finding makes the dose unsafe to compute (the finding is named);
* ``not stated`` — the registry gives no dose for this age group;
* ``not open`` — the arm is not open to this age group;
* ``not applicable`` — usual care.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from palette_core.design.arms import Arm, Dose, Procedure
from palette_core.design.loader import Design

TRANSCRIPTION_NOTICE = (
    "Doses are a transcription of the registry record NCT06381661, not a prescription. "
    "Arms whose registry text is inconsistent are shown as blocked, with the finding."
)

_UNIT_DISPLAY = {"ug": "µg", "m2": "m²", "umol/L": "µmol/L", "10^9/L": "×10⁹/L", "ratio": ""}
_FREQUENCY = {
    "once_daily": "once daily",
    "every_other_day": "every other day",
    "continuous_infusion": "as a continuous infusion",
    "daily": "",
}
_STOP = {"icu_discharge": "ICU discharge", "hospital_discharge": "hospital discharge"}
_BASIS = {"fixed": "", "per_kg": "/kg", "per_m2": "/m²"}
_PER = {"administration": "", "day": "/day", "hour": "/h"}

DoseStatus = Literal["stated", "blocked", "not stated", "not open", "not applicable"]


def unit_display(unit: str) -> str:
    return _UNIT_DISPLAY.get(unit, unit)


def _num(x: float) -> str:
    return f"{x:g}"


def describe_dose(dose: Dose) -> str:
    """One dose rule as text, e.g. ``'50 mg every 6 h for 7 days'``."""
    amount = (
        _num(dose.amount)
        if dose.amount_max is None
        else f"{_num(dose.amount)}-{_num(dose.amount_max)}"
    )
    # "5 µg/kg/day once daily" says "per day" twice: a daily amount given once a day is per dose
    per = "administration" if (dose.per == "day" and dose.frequency == "once_daily") else dose.per
    text = f"{amount} {unit_display(dose.unit)}{_BASIS[dose.basis]}{_PER[per]}"
    if dose.equivalent is not None:
        text += f" ({_num(dose.equivalent.amount)} {unit_display(dose.equivalent.unit)}{_BASIS[dose.basis]}{_PER[per]})"
    freq = (
        f"every {dose.every_hours} h"
        if dose.frequency == "every_n_hours"
        else _FREQUENCY[dose.frequency]
    )
    if freq:
        text += f" {freq}"
    if dose.duration_days is not None:
        text += f" for {_num(dose.duration_days)} days"
    if dose.stop_on:
        text += f" or until {' or '.join(_STOP[x] for x in dose.stop_on)}, whichever is first"
    if dose.max_amount is not None:
        cap = dose.max_amount
        text += f"; at most {_num(cap.amount)} {unit_display(cap.unit)} per dose (proposed, {cap.finding})"
    if dose.condition:
        text += f"; {dose.condition[0].lower()}{dose.condition[1:]}"
    if dose.when is not None:
        op = {"<=": "≤", ">=": "≥"}.get(dose.when.op, dose.when.op)
        text = f"if body-surface area {op} {_num(dose.when.threshold)} m²: {text}"
    return text


def describe_rules(rules: tuple[Dose, ...]) -> str:
    return "; ".join(describe_dose(d) for d in rules) if len(rules) > 1 else describe_dose(rules[0])


def describe_procedure(p: Procedure) -> str:
    return f"up to {_num(p.max_hours_per_day)} h a day, up to {p.max_consecutive_days} consecutive days"


@dataclass(frozen=True)
class DoseCell:
    """What the book shows for one arm and one age group."""

    status: DoseStatus
    text: str
    findings: tuple[str, ...] = ()


def dose_cell(design: Design, arm: Arm, age_group: str) -> DoseCell:
    """The registry dose of ``arm`` for ``age_group``, or why there is none."""
    if arm.role == "control":
        return DoseCell("not applicable", "usual care")
    if age_group not in design.arm_age_groups(arm):
        return DoseCell("not open", "not open to this age group")
    blocks = design.dose_blocks(arm.id, age_group)
    if blocks:
        ids = tuple(f.id for f in blocks)
        return DoseCell("blocked", f"not computable (registry finding {', '.join(ids)})", ids)
    parts = []
    for c in arm.components:
        name = design.substances[c.substance].name
        if c.procedure is not None:
            parts.append(f"{name}: {describe_procedure(c.procedure)}")
            continue
        rules = c.adult if (age_group == "adult" or c.child == "same_as_adult") else c.child
        if not rules:
            return DoseCell("not stated", f"not stated in the registry ({name})")
        parts.append(
            f"{name}: {describe_rules(rules)}" if len(arm.components) > 1 else describe_rules(rules)
        )
    return DoseCell("stated", " + ".join(parts))
