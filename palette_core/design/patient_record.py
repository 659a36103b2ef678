"""The patient record contract (``patient_record.yaml``): what screening reads.

Every field's kind, unit, physiological range (narrower by age where ``range_by_age`` says
so) and categories; each biomarker of ``traits.yaml`` and each site-recorded hook class has
its field; how the age is given (``age``) and the checks between fields (``consistency``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from palette_core.design.common import Frozen, References
from palette_core.design.traits import Biomarker, Hook
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignSchemaError,
    OutOfRangeError,
    UnknownReferenceError,
    UnknownUnitError,
)

#: The fields of the age that palette_core.screening reads by name, with their kinds.
PATIENT_AGE_FIELDS: dict[str, str] = {
    "age_years": "float",
    "date_of_birth": "date",
    "screening_date": "date",
    "gestational_age_at_birth_weeks": "int",
    "gestational_age_at_birth_days": "int",
    "sex": "category",
}


class AgeBand(Frozen):
    """A narrower range of a field below an age (years)."""

    below_age_years: float
    range: tuple[float, float]


class PatientField(Frozen):
    """One field of the patient record contract (patient_record.yaml)."""

    kind: Literal["float", "int", "bool", "category", "str", "date"]
    unit: str | None = None
    range: tuple[float, float] | None = None
    range_by_age: tuple[AgeBand, ...] = ()
    categories: tuple[str, ...] | None = None
    required: bool = False
    group: Literal[
        "identity",
        "demographics",
        "sepsis",
        "sofa",
        "phoenix",
        "biomarkers",
        "seymour",
        "inclusion",
        "exclusion",
    ]
    description: str


class AgeRule(Frozen):
    """How the age is given: below ``dates_required_below_years`` by the two dates."""

    dates_required_below_years: float
    rationale: str


class ConsistencyRule(Frozen):
    """A check between fields of one record; ``field`` is the one a failure names.

    ``requires``: when ``field`` is true, ``other`` is one of ``values``; ``min_age``: when
    ``field`` is true, the age is at least ``min_age_years``; ``not_above``: ``field`` is at
    most ``other``; ``implied_fraction``: ``other / field`` lies in ``range``; ``agree``:
    ``field`` and ``other`` differ by at most ``relative_tolerance`` of the larger.
    """

    id: str
    kind: Literal["requires", "min_age", "not_above", "implied_fraction", "agree"]
    field: str
    other: str | None = None
    values: tuple[str, ...] | None = None
    min_age_years: float | None = None
    range: tuple[float, float] | None = None
    relative_tolerance: float | None = None
    rationale: str


class PatientRecordFile(Frozen):
    fields: dict[str, PatientField]
    age: AgeRule
    consistency: tuple[ConsistencyRule, ...] = ()


def _check_bands(name: str, fld: PatientField, f: str) -> None:
    """Age bands: on a numeric field with a range, by increasing age, each within the range."""
    if not fld.range_by_age:
        return
    if fld.range is None:
        raise ConflictingArgumentsError(f, name, "range_by_age", "needs the field's range too")
    last = 0.0
    for i, band in enumerate(fld.range_by_age):
        where = f"range_by_age[{i}]"
        if band.below_age_years <= last:
            raise OutOfRangeError(
                f, name, f"{where}.below_age_years", "bands go by increasing age, above 0"
            )
        last = band.below_age_years
        lo, hi = band.range
        if not (fld.range[0] <= lo < hi <= fld.range[1]):
            raise OutOfRangeError(
                f, name, f"{where}.range", f"[{lo:g}, {hi:g}] must lie within {list(fld.range)}"
            )


def check_record_rules(record: PatientRecordFile) -> None:
    """The age fields exist with their kinds, and each consistency rule fits its fields."""
    f = "patient_record.yaml"
    fields = record.fields
    for name, kind in PATIENT_AGE_FIELDS.items():
        fld = fields.get(name)
        if fld is None or fld.kind != kind:
            raise DesignSchemaError(
                f, name, "kind", f"the age needs a {kind} field {name!r} (palette_core reads it)"
            )
    if record.age.dates_required_below_years <= 0:
        raise OutOfRangeError(f, "age", "dates_required_below_years", "must be > 0")
    numeric = ("float", "int")
    for r in record.consistency:
        entry = r.id
        for fld_name, role in ((r.field, "field"), (r.other, "other")):
            if fld_name is not None and fld_name not in fields:
                raise UnknownReferenceError(
                    f, entry, role, f"{fld_name!r} is not a field of the record"
                )
        need_other = r.kind in ("requires", "not_above", "implied_fraction", "agree")
        if need_other != (r.other is not None):
            raise ConflictingArgumentsError(
                f, entry, "other", f"a {r.kind} rule {'needs' if need_other else 'has no'} other"
            )
        kinds = (fields[r.field].kind, fields[r.other].kind if r.other else None)
        if r.kind in ("requires", "min_age") and kinds[0] != "bool":
            raise ConflictingArgumentsError(
                f, entry, "field", f"a {r.kind} rule is on a yes/no field"
            )
        if r.kind == "requires" and (kinds[1] != "category" or not r.values):
            raise ConflictingArgumentsError(
                f, entry, "values", "a requires rule names values of a category field"
            )
        if r.kind == "requires":
            unknown = set(r.values or ()) - set(fields[r.other or ""].categories or ())
            if unknown:
                raise UnknownReferenceError(
                    f, entry, "values", f"not categories: {sorted(unknown)}"
                )
        if r.kind == "min_age" and (r.min_age_years is None or r.min_age_years <= 0):
            raise ConflictingArgumentsError(
                f, entry, "min_age_years", "a min_age rule needs it > 0"
            )
        if r.kind in ("not_above", "implied_fraction", "agree") and not (
            kinds[0] in numeric and kinds[1] in numeric
        ):
            raise ConflictingArgumentsError(f, entry, "field", f"a {r.kind} rule compares numbers")
        if r.kind == "implied_fraction" and (r.range is None or not 0 < r.range[0] < r.range[1]):
            raise ConflictingArgumentsError(f, entry, "range", "needs 0 < low < high")
        if r.kind == "agree" and not (
            r.relative_tolerance is not None and r.relative_tolerance >= 0
        ):
            raise ConflictingArgumentsError(
                f, entry, "relative_tolerance", "an agree rule needs a tolerance >= 0"
            )


def check_patient_record(
    fields: Mapping[str, PatientField],
    biomarkers: Mapping[str, Biomarker],
    hooks: Mapping[str, Hook],
    refs: References,
) -> None:
    """patient_record.yaml: ranges and categories by kind; a field, in the biomarker's unit, for
    every biomarker; the categories of a hook's input field are the hook's classes."""
    f = "patient_record.yaml"
    for name, fld in fields.items():
        numeric = fld.kind in ("float", "int")
        if fld.unit is not None:
            refs.check_unit(fld.unit, f, name, "unit")
        if numeric and fld.range is None:
            raise DesignSchemaError(
                f, name, "range", "a numeric field needs its physiological range"
            )
        if fld.range is not None:
            if not numeric:
                raise ConflictingArgumentsError(
                    f, name, "range", f"a {fld.kind} field has no range"
                )
            if not fld.range[0] < fld.range[1]:
                raise OutOfRangeError(
                    f,
                    name,
                    "range",
                    f"lower bound {fld.range[0]} must be below upper bound {fld.range[1]}",
                )
        if (fld.kind == "category") != (fld.categories is not None):
            raise ConflictingArgumentsError(
                f, name, "categories", "categories are given for, and only for, category fields"
            )
        _check_bands(name, fld, f)
    for bid, b in biomarkers.items():
        fld = fields.get(bid)
        if fld is None:
            raise UnknownReferenceError(
                f,
                bid,
                None,
                f"biomarker {bid!r} of traits.yaml has no field in the patient record",
            )
        if fld.unit is None or refs.unit_id(fld.unit) != refs.unit_id(b.unit):
            raise UnknownUnitError(
                f,
                bid,
                "unit",
                f"field unit {fld.unit!r} differs from the biomarker unit {b.unit!r} in traits.yaml",
            )
    for hid, h in hooks.items():
        if h.input_field is None:
            continue
        fld = fields.get(h.input_field)
        if fld is None:
            raise UnknownReferenceError(
                "traits.yaml",
                hid,
                "input_field",
                f"field {h.input_field!r} is not in patient_record.yaml",
            )
        if fld.categories is None or set(fld.categories) != set(h.classes):
            raise ConflictingArgumentsError(
                f,
                h.input_field,
                "categories",
                f"{fld.categories} differ from the classes {list(h.classes)} of hook {hid!r} in traits.yaml",
            )


__all__ = [
    "PATIENT_AGE_FIELDS",
    "AgeBand",
    "AgeRule",
    "ConsistencyRule",
    "PatientField",
    "PatientRecordFile",
    "check_patient_record",
    "check_record_rules",
]
