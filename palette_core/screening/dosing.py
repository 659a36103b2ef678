"""Patient-level doses: what an arm's registry dose means for one patient.

Everything here is a *transcription of the registry, not a prescription*: every result carries
:data:`palette_core.registry.doses.TRANSCRIPTION_NOTICE`. The structured doses of
``data/design/arms.yaml`` are applied to a patient's weight and height:

* ``per_kg`` doses are multiplied by the **dosing weight**: the weight that
  ``data/design/proposed/dosing_weight.yaml`` names for the substance's class and the patient's
  age group (proposed; the registry is silent, RF-24): the actual weight, the ideal body
  weight of Devine (1974) where it is below the actual weight, or the adjusted body weight
  (ideal + 0.4 of the excess) where the actual weight is above the ideal one, capped where the
  class has a maximum (tocilizumab and thrombomodulin: 100 kg). A dose on a weight other than
  the actual one says so in its text;
* a weight outside the plausible limits of the age group (``weight_limits`` of the same file)
  is refused (``missing data``, naming ``weight_kg``), never used: it is most often a unit
  error;
* ``per_m2`` doses by the body-surface area of Mosteller (1987),
  ``sqrt(height_cm * weight_kg / 3600)`` m², on the actual weight;
* a rule with ``when`` applies only where the body-surface area satisfies it (the interferon
  gamma-1b rule: 50 µg/m² above 0.5 m², 1.5 µg/kg at 0.5 m² or less); exactly one rule of a
  component must apply, or the design is in conflict;
* a range (hydrocortisone in children, 1-2 mg/kg) gives a low and a high amount;
* a cap (``max_amount``) limits the amount of the rule's own time basis (per dose for a dose per
  administration) and is reported with its finding, never applied silently.

The answer for an arm and a patient has one of these statuses:

``computed``
    the amounts per administration, per day and per hour (where the schedule defines them);
``procedure``
    a device schedule (MTx.100 adsorption), no amount;
``not computable``
    a registry finding blocks the dose for this age group (the finding ids are named);
``not stated``
    the registry gives no dose for this age group;
``not open``
    the arm is not open to this age group;
``not applicable``
    usual care (a control arm has no dose);
``missing data``
    (vectorised function only) a value needed for the computation is missing or unusable; the
    reason names the field. The scalar :func:`calculate_dose` raises
    :class:`~palette_core.errors.MissingPatientDataError` instead.

Amounts per day are the total over a dosing day (an every-other-day regimen gives nothing on the
days in between); a daily amount whose division into doses the registry does not state
(``frequency: daily``) has no amount per administration; a continuous infusion has a rate per
hour and an amount per day.

Examples
--------
>>> from palette_core.design.loader import load_design
>>> design = load_design()
>>> calculate_dose(design, "hypo_ifng", {"weight_kg": 10, "height_cm": 90}, "child").text
'15 µg every other day'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from palette_core.design.arms import Arm, Cap, Component, Dose
from palette_core.design.loader import Design, data_file
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignSchemaError,
    MissingPatientDataError,
    PatientRecordError,
    UnknownReferenceError,
)
from palette_core.registry.doses import TRANSCRIPTION_NOTICE, describe_procedure, unit_display
from palette_core.yamlio import read_yaml

#: The reference patients of the dose table, relative to the data root (:attr:`Design.data_root`).
REFERENCE_PATIENTS = "cohort/reference_patients.yaml"

DoseStatus = Literal[
    "computed",
    "procedure",
    "not computable",
    "not stated",
    "not open",
    "not applicable",
    "missing data",
]

#: Columns of :func:`calculate_doses`, in order, with their dtypes.
DOSE_COLUMNS: dict[str, str] = {
    "patient_id": "string",
    "arm_id": "string",
    "age_group": "string",
    "component": "Int64",
    "substance": "string",
    "status": "string",
    "reason": "string",
    "findings": "string",
    "missing": "string",
    "weight_kg": "float64",
    "height_cm": "float64",
    "dosing_weight_kg": "float64",
    "dosing_weight": "string",
    "bsa_m2": "float64",
    "rule": "Int64",
    "unit": "string",
    "per_administration_low": "float64",
    "per_administration_high": "float64",
    "per_day_low": "float64",
    "per_day_high": "float64",
    "per_hour_low": "float64",
    "per_hour_high": "float64",
    "equivalent_unit": "string",
    "equivalent_low": "float64",
    "equivalent_high": "float64",
    "capped": "boolean",
    "cap": "string",
    "schedule": "string",
    "duration_days": "float64",
    "text": "string",
    "notice": "string",
}

_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
_SCHEDULE = {
    "once_daily": "once daily",
    "every_other_day": "every other day",
    "continuous_infusion": "as a continuous infusion",
    "daily": "per day",
}
_AMOUNTS = (
    "per_administration_low",
    "per_administration_high",
    "per_day_low",
    "per_day_high",
    "per_hour_low",
    "per_hour_high",
    "equivalent_low",
    "equivalent_high",
)


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ComponentDose:
    """The dose of one component of an arm (one substance or device) for one patient.

    Amounts are ``(low, high)`` in ``unit``; ``low == high`` unless the registry gives a range.
    ``None`` where the schedule does not define the quantity.
    """

    substance: str
    name: str
    route: str | None
    status: DoseStatus
    text: str
    rule: Dose | None = None
    unit: str | None = None
    per_administration: tuple[float, float] | None = None
    per_day: tuple[float, float] | None = None
    per_hour: tuple[float, float] | None = None
    equivalent_unit: str | None = None
    equivalent: tuple[float, float] | None = None
    capped: bool = False
    cap: str | None = None
    schedule: str | None = None
    duration_days: float | None = None


@dataclass(frozen=True)
class DoseResult:
    """The dose of one arm for one patient, or why there is none."""

    arm_id: str
    patient_id: str | None
    age_group: str
    status: DoseStatus
    text: str
    findings: tuple[str, ...] = ()
    reason: str | None = None
    weight_kg: float | None = None
    height_cm: float | None = None
    bsa_m2: float | None = None
    components: tuple[ComponentDose, ...] = ()
    notice: str = TRANSCRIPTION_NOTICE
    dosing_weight_kg: float | None = None


# ----------------------------------------------------------------------------- helpers
def bsa_mosteller(height_cm: Any, weight_kg: Any) -> np.ndarray:
    """Body-surface area in m² by Mosteller's formula, ``sqrt(height_cm * weight_kg / 3600)``.

    >>> float(bsa_mosteller(90.0, 10.0))
    0.5
    """
    return np.sqrt(np.asarray(height_cm, dtype=float) * np.asarray(weight_kg, dtype=float) / 3600.0)


def format_amount(x: float) -> str:
    """A dose amount for people: whole numbers from 100, then 1, 2 or 3 significant decimals."""
    if not math.isfinite(x):
        return "?"
    a = abs(x)
    text = (
        f"{x:.0f}" if a >= 100 else f"{x:.1f}" if a >= 10 else f"{x:.2f}" if a >= 1 else f"{x:.3g}"
    )
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _range_text(lo: float, hi: float, unit: str) -> str:
    u = unit_display(unit)
    a, b = format_amount(lo), format_amount(hi)
    return f"{a} {u}" if a == b else f"{a}-{b} {u}"


def _schedule(rule: Dose) -> str:
    if rule.frequency == "every_n_hours":
        return f"every {rule.every_hours} h"
    return _SCHEDULE[rule.frequency]


def _doses_per_day(rule: Dose) -> float | None:
    """Administrations in a dosing day; None where the registry does not say (daily, infusion)."""
    if rule.frequency == "every_n_hours":
        return 24.0 / float(rule.every_hours or 24)
    if rule.frequency in ("once_daily", "every_other_day"):
        return 1.0
    if rule.frequency == "daily" and rule.per == "administration":
        return 1.0
    return None


def _rules_for(component: Component, age_group: str) -> tuple[Dose, ...] | None:
    """The component's dose rules for an age group (``same_as_adult`` resolved); None if none."""
    if age_group not in Component.model_fields:
        raise ConflictingArgumentsError(
            "arms.yaml",
            None,
            "components",
            f"age group {age_group!r} has no dose field in a component (known: adult, child)",
        )
    rules = getattr(component, age_group)
    if rules == "same_as_adult":
        rules = component.adult
    return rules


def _cap_note(design: Design, cap: Cap) -> str:
    status = design.finding(cap.finding).reading_status
    word = "proposed" if status == "proposed" else "as written"
    return f"capped at {format_amount(cap.amount)} {unit_display(cap.unit)} ({word}, {cap.finding})"


def _needs(rules: tuple[Dose, ...]) -> tuple[bool, bool]:
    """(needs weight, needs height) for a component's rules."""
    bsa = any(r.when is not None or r.basis == "per_m2" for r in rules)
    weight = bsa or any(r.basis == "per_kg" for r in rules)
    return weight, bsa


def _select_rules(rules: tuple[Dose, ...], bsa: np.ndarray, arm_id: str, field: str) -> np.ndarray:
    """Index of the rule that applies to each row (exactly one must)."""
    masks = np.stack(
        [
            np.ones(bsa.shape, dtype=bool)
            if r.when is None
            else _OPS[r.when.op](bsa, r.when.threshold)
            for r in rules
        ]
    )
    counts = masks.sum(axis=0)
    if np.any(counts != 1):
        bad = float(bsa[np.flatnonzero(counts != 1)[0]])
        raise ConflictingArgumentsError(
            "arms.yaml",
            arm_id,
            field,
            f"{int(counts[counts != 1][0])} dose rules apply at body-surface area {bad:g} m²; "
            "exactly one must",
        )
    return np.argmax(masks, axis=0)


def ideal_body_weight(design: Design, height_cm: Any, sex: Any) -> np.ndarray:
    """Devine's ideal body weight (kg) for heights in cm and sexes ``"male"``/``"female"``.

    ``base + kg_per_cm * (height - base_height)`` with the numbers of
    ``proposed/dosing_weight.yaml``; NaN where the sex is neither.

    >>> from palette_core.design.loader import load_design
    >>> float(ideal_body_weight(load_design(), [152.4], ["female"])[0])
    45.5
    """
    ibw = design.dosing_weight.ideal_body_weight
    h = np.asarray(height_cm, dtype=float)
    sexes = np.asarray(sex, dtype=object)
    base = np.where(
        sexes == "male", ibw.male_kg, np.where(sexes == "female", ibw.female_kg, np.nan)
    )
    return base + ibw.kg_per_cm * (h - ibw.base_height_cm)


def dosing_weight(
    design: Design, substance: str, age_group: str, weight: Any, height: Any, sex: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The weight a per-kg dose of ``substance`` is computed on, and how it was obtained.

    Pure array arithmetic on valid inputs (checked by the caller): the rule of
    ``proposed/dosing_weight.yaml`` for the substance and age group, then its cap. Returns the
    dosing weights (kg) and their descriptions (``"actual"``, ``"adjusted (ideal 70.5 kg)"``,
    ``"actual, capped at 100 kg"``...).
    """
    w = np.asarray(weight, dtype=float)
    rule = design.dosing_weight.rule_for(substance)
    kind = "actual" if rule is None else rule.weight[age_group]
    out = w.copy()
    what = np.full(w.shape, kind, dtype=object)
    if kind in ("ideal", "adjusted"):
        ibw = ideal_body_weight(design, height, sex)
        above = w > ibw
        excess = design.dosing_weight.adjusted_body_weight.fraction_of_excess
        reduced = ibw if kind == "ideal" else ibw + excess * (w - ibw)
        out = np.where(above, reduced, w)
        what = np.array(
            [
                f"{kind} (ideal {format_amount(i)} kg)" if a else "actual (not above ideal)"
                for a, i in zip(above, ibw, strict=True)
            ],
            dtype=object,
        )
    if rule is not None and rule.max_kg is not None:
        capped = out > rule.max_kg
        out = np.minimum(out, rule.max_kg)
        what = np.where(capped, what + f", capped at {rule.max_kg:g} kg", what)
    return out, what


def _compute_rule(design: Design, rule: Dose, w: np.ndarray, bsa: np.ndarray) -> dict[str, Any]:
    """Amounts of one dose rule for arrays of weights and body-surface areas."""
    factor = {"fixed": np.ones_like(w), "per_kg": w, "per_m2": bsa}[rule.basis]
    lo = rule.amount * factor
    hi = (rule.amount_max if rule.amount_max is not None else rule.amount) * factor
    capped = np.zeros(w.shape, dtype=bool)
    if rule.max_amount is not None:
        cap = design.to_unit(rule.max_amount.amount, rule.max_amount.unit, rule.unit)
        capped = hi > cap
        lo, hi = np.minimum(lo, cap), np.minimum(hi, cap)
    n = _doses_per_day(rule)
    infusion = rule.frequency == "continuous_infusion"
    nan = np.full(w.shape, np.nan)
    out = {k: nan for k in _AMOUNTS}
    if rule.per == "administration":
        out["per_administration_low"], out["per_administration_high"] = lo, hi
        if n is not None:
            out["per_day_low"], out["per_day_high"] = lo * n, hi * n
    elif rule.per == "day":
        out["per_day_low"], out["per_day_high"] = lo, hi
        if infusion:
            out["per_hour_low"], out["per_hour_high"] = lo / 24.0, hi / 24.0
        elif n is not None:
            out["per_administration_low"], out["per_administration_high"] = lo / n, hi / n
    else:  # per hour
        out["per_hour_low"], out["per_hour_high"] = lo, hi
        out["per_day_low"], out["per_day_high"] = lo * 24.0, hi * 24.0
    if rule.equivalent is not None:
        ratio = rule.equivalent.amount / rule.amount
        base = "per_administration" if n is not None and not infusion else "per_day"
        out["equivalent_low"] = out[f"{base}_low"] * ratio
        out["equivalent_high"] = out[f"{base}_high"] * ratio
    out["capped"] = capped
    return out


def _rule_text(rule: Dose, row: Mapping[str, Any], cap_note: str | None) -> str:
    """One computed dose as text, e.g. ``'350 µg (35 MIU) once daily'``."""
    u = rule.unit
    if rule.frequency == "continuous_infusion":
        hour = _range_text(row["per_hour_low"], row["per_hour_high"], u) + "/h"
        day = _range_text(row["per_day_low"], row["per_day_high"], u) + " per day"
        text = (
            f"{hour} as a continuous infusion ({day})"
            if rule.per == "hour"
            else f"{day} as a continuous infusion ({hour})"
        )
    elif not math.isnan(row["per_administration_low"]):
        text = _range_text(row["per_administration_low"], row["per_administration_high"], u)
        if rule.equivalent is not None:
            eq = _range_text(row["equivalent_low"], row["equivalent_high"], rule.equivalent.unit)
            text += f" ({eq})"
        text += f" {_schedule(rule)}"
    else:
        text = _range_text(row["per_day_low"], row["per_day_high"], u) + " per day"
    if row["capped"] and cap_note:
        text += f"; {cap_note}"
    return text


def _as_float(values: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )


# ----------------------------------------------------------------------------- vectorised core
def _empty_columns(n: int) -> dict[str, np.ndarray]:
    """Result columns for ``n`` rows: NaN amounts, no text, nothing capped."""
    cols: dict[str, np.ndarray] = {
        k: np.full(n, np.nan) for k in (*_AMOUNTS, "bsa_m2", "dosing_weight_kg")
    }
    cols["duration_days"] = np.full(n, np.nan)
    cols["capped"] = np.zeros(n, dtype=bool)
    for k in (
        "status",
        "reason",
        "findings",
        "missing",
        "rule",
        "unit",
        "equivalent_unit",
        "cap",
        "schedule",
        "text",
        "dosing_weight",
    ):
        cols[k] = np.full(n, None, dtype=object)
    return cols


def _component_frame(
    design: Design,
    arm: Arm,
    index: int,
    component: Component,
    age_group: str,
    weight: np.ndarray,
    height: np.ndarray,
    sex: np.ndarray,
) -> dict[str, Any]:
    """Columns for one component and one age group (rows already restricted to that group)."""
    n = len(weight)
    cols = _empty_columns(n)
    cols["status"][:] = "computed"
    name = design.substances[component.substance].name
    if component.procedure is not None:
        cols["status"][:] = "procedure"
        cols["text"][:] = describe_procedure(component.procedure)
        cols["schedule"][:] = describe_procedure(component.procedure)
        return cols
    rules = _rules_for(component, age_group)
    if not rules:
        cols["status"][:] = "not stated"
        cols["reason"][:] = f"the registry gives no dose of {name} for this age group"
        cols["text"][:] = "not stated in the registry"
        return cols
    need_w, need_h = _needs(rules)
    dw_rule = design.dosing_weight.rule_for(component.substance)
    dw_kind = "actual" if dw_rule is None else dw_rule.weight[age_group]
    need_ibw = need_w and dw_kind in ("ideal", "adjusted")
    problems = np.full(n, "", dtype=object)
    missing = np.full(n, "", dtype=object)

    def flag(mask: np.ndarray, fname: str, msg: str) -> None:
        if mask.any():
            sep = np.where(problems[mask] == "", "", "; ")
            problems[mask] = problems[mask] + sep + msg
            msep = np.where(missing[mask] == "", "", ", ")
            missing[mask] = missing[mask] + msep + fname

    checks = [("weight_kg", weight, need_w), ("height_cm", height, need_h or need_ibw)]
    for fname, values, needed in checks:
        if not needed:
            continue
        what = (
            "body-surface area"
            if need_h
            else ("the dosing weight" if fname == "height_cm" else "a per-kg dose")
        )
        absent = np.isnan(values)
        unusable = ~absent & ~(np.isfinite(values) & (values > 0))
        flag(absent, fname, f"{fname} missing (needed for {what})")
        flag(unusable, fname, f"{fname} not a positive number (needed for {what})")
    if need_w:
        lim = design.dosing_weight.limit_for(age_group)
        ok_w = np.isfinite(weight) & (weight > 0)
        if lim is not None:
            label = next(a.label for a in design.strata.age_groups if a.id == age_group).lower()
            out_of = ok_w & ((weight < lim.min_kg) | (weight > lim.max_kg))
            flag(
                out_of,
                "weight_kg",
                f"weight_kg outside the plausible weight of {label} for a dose "
                f"({lim.min_kg:g}-{lim.max_kg:g} kg, proposed/dosing_weight.yaml): check the unit",
            )
    if need_ibw:
        no_sex = ~np.isin(sex, ["male", "female"])
        flag(no_sex, "sex", "sex missing (needed for the ideal body weight of the dosing weight)")
    bad = problems != ""
    cols["status"][bad] = "missing data"
    cols["reason"][bad] = problems[bad]
    cols["missing"][bad] = missing[bad]
    cols["text"][bad] = "missing data (" + missing[bad] + ")"
    ok = ~bad
    if not ok.any():
        return cols
    w, h = weight[ok], height[ok]
    bsa = bsa_mosteller(h, w) if need_h else np.full(w.shape, np.nan)
    if need_h:
        cols["bsa_m2"][ok] = bsa
    if need_w:
        w_dose, w_what = dosing_weight(design, component.substance, age_group, w, h, sex[ok])
        cols["dosing_weight_kg"][ok] = w_dose
        cols["dosing_weight"][ok] = w_what
    else:
        w_dose = w
    field = f"components[{index}].{age_group}"
    chosen = _select_rules(rules, bsa, arm.id, field)
    ok_idx = np.flatnonzero(ok)
    for j, rule in enumerate(rules):
        sel = chosen == j
        if not sel.any():
            continue
        rows = ok_idx[sel]
        amounts = _compute_rule(design, rule, w_dose[sel], bsa[sel])
        for k in _AMOUNTS:
            cols[k][rows] = amounts[k]
        cols["capped"][rows] = amounts["capped"]
        cols["rule"][rows] = j
        cols["unit"][rows] = rule.unit
        cols["schedule"][rows] = _schedule(rule)
        cols["duration_days"][rows] = (
            rule.duration_days if rule.duration_days is not None else np.nan
        )
        if rule.equivalent is not None:
            cols["equivalent_unit"][rows] = rule.equivalent.unit
        note = _cap_note(design, rule.max_amount) if rule.max_amount is not None else None
        if note is not None:
            cols["cap"][rows[amounts["capped"]]] = note
        keys = (*_AMOUNTS, "capped")
        for r in rows:
            text = _rule_text(rule, {k: cols[k][r] for k in keys}, note)
            used = cols["dosing_weight_kg"][r]
            if rule.basis == "per_kg" and used != weight[r]:  # not the actual weight: say so
                kind = cols["dosing_weight"][r]
                text += f"; dosing weight {format_amount(used)} kg, {kind} (proposed)"
            cols["text"][r] = text
    return cols


def calculate_doses(
    design: Design,
    arm_id: str,
    patients_df: pd.DataFrame,
    age_group_series: pd.Series | str,
) -> pd.DataFrame:
    """The dose of one arm for every patient of a frame (vectorised).

    Parameters
    ----------
    design
        The trial design.
    arm_id
        An arm of ``arms.yaml``.
    patients_df
        Patients, one row each, with (at least) ``weight_kg`` and ``height_cm`` where the arm
        needs them, and ``patient_id`` if known. A missing column counts as missing values.
    age_group_series
        The age group of each patient (an id of ``proposed/strata.yaml``), with the same index
        as ``patients_df``; ``<NA>`` where unknown. A single string applies to every row.

    Returns
    -------
    pandas.DataFrame
        One row per patient and arm component (for a one-component arm, exactly the rows and
        index of ``patients_df``), with the columns of :data:`DOSE_COLUMNS`. Nothing is dropped:
        a row that cannot be computed says why in ``status``, ``reason``, ``findings`` and
        ``missing``. ``notice`` holds the transcription notice; ``attrs["notice"]`` too.
    """
    arm = design.arm(arm_id)
    n = len(patients_df)
    index = patients_df.index
    if isinstance(age_group_series, str):
        groups = pd.Series(age_group_series, index=index, dtype="string")
    else:
        groups = pd.Series(age_group_series).astype("string")
        if not groups.index.equals(index):
            raise ValueError("age_group_series must have the same index as patients_df")
    known = set(design.age_group_ids)
    unknown = sorted(set(groups.dropna()) - known)
    if unknown:
        raise UnknownReferenceError(
            "proposed/strata.yaml",
            None,
            "age_groups",
            f"age group(s) {unknown} not declared; known: {sorted(known)}",
        )

    def column(name: str) -> np.ndarray:
        if name not in patients_df.columns:
            return np.full(n, np.nan)
        return _as_float(patients_df[name].to_numpy(dtype=object))

    weight, height = column("weight_kg"), column("height_cm")
    sex = (
        patients_df["sex"].astype("string").fillna("").to_numpy(dtype=object)
        if "sex" in patients_df.columns
        else np.full(n, "", dtype=object)
    )
    ids = (
        patients_df["patient_id"].astype("string")
        if "patient_id" in patients_df.columns
        else pd.Series(pd.NA, index=index, dtype="string")
    )
    no_group = groups.isna().to_numpy(dtype=bool)
    in_group = {g: (groups == g).fillna(False).to_numpy(dtype=bool) for g in design.age_group_ids}
    components = arm.components if arm.components else (None,)
    frames = []
    for ci, comp in enumerate(components):
        cols = _empty_columns(n)
        cols["status"][no_group] = "missing data"
        cols["reason"][no_group] = "age group not known"
        cols["missing"][no_group] = "age_group"
        cols["text"][no_group] = "missing data (age group)"
        for g in design.age_group_ids:
            rows = np.flatnonzero(in_group[g])
            if rows.size == 0:
                continue
            if arm.role == "control" or comp is None:
                cols["status"][rows] = "not applicable"
                cols["reason"][rows] = "usual care has no dose"
                cols["text"][rows] = "usual care"
                continue
            if g not in design.arm_age_groups(arm):
                label = next(a.label for a in design.strata.age_groups if a.id == g)
                cols["status"][rows] = "not open"
                cols["reason"][rows] = f"the arm is not open to {label.lower()}"
                cols["text"][rows] = f"not open to {label.lower()}"
                continue
            blocks = design.dose_blocks(arm.id, g)
            if blocks:
                ids_ = ", ".join(f.id for f in blocks)
                cols["status"][rows] = "not computable"
                cols["findings"][rows] = ids_
                cols["reason"][rows] = "; ".join(f"{f.id}: {f.title}" for f in blocks)
                cols["text"][rows] = f"not computable ({ids_})"
                continue
            sub = _component_frame(design, arm, ci, comp, g, weight[rows], height[rows], sex[rows])
            for k, v in sub.items():
                cols[k][rows] = v
        frame = pd.DataFrame(index=index)
        frame["patient_id"] = ids.to_numpy()
        frame["arm_id"] = arm.id
        frame["age_group"] = groups.to_numpy()
        frame["component"] = ci if comp is not None else pd.NA
        frame["substance"] = comp.substance if comp is not None else pd.NA
        for k in (
            "status",
            "reason",
            "findings",
            "missing",
        ):
            frame[k] = cols[k]
        frame["weight_kg"] = weight
        frame["height_cm"] = height
        frame["dosing_weight_kg"] = cols["dosing_weight_kg"]
        frame["dosing_weight"] = cols["dosing_weight"]
        frame["bsa_m2"] = cols["bsa_m2"]
        frame["rule"] = cols["rule"]
        frame["unit"] = cols["unit"]
        for k in _AMOUNTS[:6]:
            frame[k] = cols[k]
        frame["equivalent_unit"] = cols["equivalent_unit"]
        frame["equivalent_low"] = cols["equivalent_low"]
        frame["equivalent_high"] = cols["equivalent_high"]
        frame["capped"] = cols["capped"]
        frame["cap"] = cols["cap"]
        frame["schedule"] = cols["schedule"]
        frame["duration_days"] = cols["duration_days"]
        frame["text"] = cols["text"]
        frame["notice"] = TRANSCRIPTION_NOTICE
        frames.append(frame)
    out = pd.concat(frames) if len(frames) > 1 else frames[0]
    out = out[list(DOSE_COLUMNS)].astype(DOSE_COLUMNS)
    out.attrs["notice"] = TRANSCRIPTION_NOTICE
    return out


# ----------------------------------------------------------------------------- scalar
def _pair(row: pd.Series, stem: str) -> tuple[float, float] | None:
    lo, hi = row[f"{stem}_low"], row[f"{stem}_high"]
    return None if pd.isna(lo) else (float(lo), float(hi))


def _opt(x: Any) -> Any:
    if pd.isna(x):
        return None
    return float(x) if isinstance(x, np.floating) else x


def _arm_status(statuses: list[str]) -> DoseStatus:
    if len(set(statuses)) == 1:
        return statuses[0]  # type: ignore[return-value]
    for s_ in ("missing data", "not stated"):
        if s_ in statuses:
            return s_  # type: ignore[return-value]
    return "computed"


def calculate_dose(
    design: Design, arm_id: str, patient: Mapping[str, Any], age_group: str
) -> DoseResult:
    """The dose of one arm for one patient.

    Parameters
    ----------
    patient
        A mapping with ``weight_kg`` and ``height_cm`` where the arm needs them (and
        ``patient_id``, used in messages).
    age_group
        An age group id (``"adult"``, ``"child"``).

    Raises
    ------
    MissingPatientDataError
        A value needed for this dose is missing (``.field`` names it).
    PatientRecordError
        A value needed for this dose is present but not a positive number.

    Examples
    --------
    >>> from palette_core.design.loader import load_design
    >>> d = load_design()
    >>> r = calculate_dose(d, "cort_hydrocortisone", {"weight_kg": 40}, "child")
    >>> r.text
    '40-50 mg every 6 h; capped at 50 mg (proposed, RF-15)'
    """
    pid = patient.get("patient_id")
    if age_group is None or (not isinstance(age_group, str) and pd.isna(age_group)):
        raise MissingPatientDataError("age_group", pid, f"arm {arm_id!r}: the age group is needed")
    frame = pd.DataFrame(
        {
            "patient_id": pd.Series([pid], dtype="string"),
            "weight_kg": [patient.get("weight_kg")],
            "height_cm": [patient.get("height_cm")],
            "sex": pd.Series([patient.get("sex")], dtype="string"),
        }
    )
    doses = calculate_doses(design, arm_id, frame, age_group)
    for fname in ("weight_kg", "height_cm", "sex"):
        if doses["missing"].str.contains(fname, regex=False).fillna(False).any():
            value = patient.get(fname)
            reason = next(r for r in doses["reason"].dropna() if fname in r)
            if value is None or pd.isna(value):
                raise MissingPatientDataError(fname, pid, f"arm {arm_id!r}: {reason}")
            raise PatientRecordError(fname, value, f"arm {arm_id!r}: {reason}", patient_id=pid)
    arm = design.arm(arm_id)
    comps = []
    for comp, (_, row) in zip(arm.components, doses.iterrows(), strict=False):
        rule_idx = _opt(row["rule"])
        rule = None
        if rule_idx is not None:
            rules = _rules_for(comp, age_group)
            rule = rules[int(rule_idx)] if rules else None
        comps.append(
            ComponentDose(
                substance=comp.substance,
                name=design.substances[comp.substance].name,
                route=comp.route,
                status=row["status"],
                text=row["text"],
                rule=rule,
                unit=_opt(row["unit"]),
                per_administration=_pair(row, "per_administration"),
                per_day=_pair(row, "per_day"),
                per_hour=_pair(row, "per_hour"),
                equivalent_unit=_opt(row["equivalent_unit"]),
                equivalent=_pair(row, "equivalent"),
                capped=bool(row["capped"]),
                cap=_opt(row["cap"]),
                schedule=_opt(row["schedule"]),
                duration_days=_opt(row["duration_days"]),
            )
        )
    first = doses.iloc[0]
    statuses = list(doses["status"])
    status = _arm_status(statuses)
    if len(comps) > 1 and status in ("computed", "procedure"):
        text = " + ".join(f"{c.name}: {c.text}" for c in comps)
    else:
        text = str(first["text"])
    findings = tuple(str(first["findings"]).split(", ")) if pd.notna(first["findings"]) else ()
    return DoseResult(
        arm_id=arm_id,
        patient_id=None if pid is None or pd.isna(pid) else str(pid),
        age_group=age_group,
        status=status,
        text=text,
        findings=findings,
        reason=_opt(first["reason"]),
        weight_kg=_opt(first["weight_kg"]),
        height_cm=_opt(first["height_cm"]),
        bsa_m2=_opt(first["bsa_m2"]),
        components=tuple(comps),
        dosing_weight_kg=_opt(first["dosing_weight_kg"]),
    )


# ----------------------------------------------------------------------------- reference patients
_REFERENCE_FIELDS = (
    "patient_id",
    "age_years",
    "gestational_age_at_birth_weeks",
    "sex",
    "weight_kg",
    "height_cm",
)


def reference_patients(design: Design, path: str | Path | None = None) -> pd.DataFrame:
    """The reference patients of the book's dose table (``path``, default the design's
    :data:`REFERENCE_PATIENTS`).

    Returns one row per patient with ``label``, ``age_group`` and the contract fields
    ``patient_id``, ``age_years``, ``gestational_age_at_birth_weeks``, ``sex``, ``weight_kg``,
    ``height_cm`` (contract dtypes).
    """
    path = data_file(design if path is None else path, REFERENCE_PATIENTS)
    label = f"cohort/{path.name}"
    raw = read_yaml(path, label)
    if not isinstance(raw, dict) or not isinstance(raw.get("patients"), list):
        raise DesignSchemaError(label, None, "patients", "expected a list of patients")
    rows = []
    for i, p in enumerate(raw["patients"]):
        entry = str(p.get("patient_id", f"[{i}]")) if isinstance(p, dict) else f"[{i}]"
        if not isinstance(p, dict):
            raise DesignSchemaError(label, entry, None, "a patient must be a mapping")
        allowed = {*_REFERENCE_FIELDS, "label", "age_group", "note"}
        extra = sorted(set(p) - allowed)
        if extra:
            raise DesignSchemaError(label, entry, extra[0], "unknown field")
        for fld in ("patient_id", "label", "age_group", "age_years", "sex"):
            if fld not in p:
                raise DesignSchemaError(label, entry, fld, "required field missing")
        if p["age_group"] not in design.age_group_ids:
            raise UnknownReferenceError(
                label, entry, "age_group", f"{p['age_group']!r} is not an age group"
            )
        for fld in _REFERENCE_FIELDS:
            spec = design.patient_fields.get(fld)
            value = p.get(fld)
            if spec is None:
                raise UnknownReferenceError(label, entry, fld, "not a patient-record field")
            if value is not None and spec.range is not None:
                if not spec.range[0] <= float(value) <= spec.range[1]:
                    raise DesignSchemaError(
                        label, entry, fld, f"{value} outside the contract range {spec.range}"
                    )
        rows.append({k: p.get(k) for k in ("label", "age_group", *_REFERENCE_FIELDS)})
    df = pd.DataFrame(rows)
    dtypes = {"label": "string", "age_group": "string", "patient_id": "string", "sex": "string"}
    for fld in ("age_years", "gestational_age_at_birth_weeks", "weight_kg", "height_cm"):
        dtypes[fld] = "float64"
    df = df.astype(dtypes)
    return df.set_index(df["patient_id"].to_numpy())


def dose_table(design: Design, patients: pd.DataFrame) -> pd.DataFrame:
    """Arm x patient table of readable doses, for the book.

    ``patients`` needs ``age_group`` (and ``label`` for the column headings, else
    ``patient_id``), with ``weight_kg`` and ``height_cm``; :func:`reference_patients` gives
    them. One row per experimental arm (index: arm id), columns ``Trait``, ``Arm`` and one per
    patient. Cells read e.g. ``"4 mg once daily"``, ``"not computable (RF-02)"``,
    ``"not open to children"``. ``attrs["notice"]`` holds the transcription notice.
    """
    if "age_group" not in patients.columns:
        raise ValueError("patients needs an 'age_group' column (see reference_patients)")
    labels = (
        patients["label"].astype(str)
        if "label" in patients.columns
        else patients["patient_id"].astype(str)
    ).tolist()
    rows = {}
    for trait in design.traits:
        for arm in design.experimental_arms(trait.id):
            doses = calculate_doses(design, arm.id, patients, patients["age_group"])
            texts = []
            for pos in range(len(patients)):
                part = doses.iloc[pos :: len(patients)]  # this patient's component rows
                if len(part) > 1 and set(part["status"]) <= {"computed", "procedure"}:
                    names = [design.substances[x].name for x in part["substance"]]
                    texts.append(
                        " + ".join(f"{nm}: {t}" for nm, t in zip(names, part["text"], strict=True))
                    )
                else:
                    texts.append(str(part["text"].iloc[0]))
            rows[arm.id] = {
                "Trait": trait.short_name or trait.name,
                "Arm": arm.short_name or arm.name,
                **dict(zip(labels, texts, strict=True)),
            }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.attrs["notice"] = TRANSCRIPTION_NOTICE
    return table


__all__ = [
    "DOSE_COLUMNS",
    "ComponentDose",
    "DoseResult",
    "DoseStatus",
    "bsa_mosteller",
    "calculate_dose",
    "calculate_doses",
    "dose_table",
    "format_amount",
    "reference_patients",
]
