"""Eligibility (``eligibility.yaml``): the registry's inclusion and exclusion criteria.

Each criterion keeps the registry's text, the reading applied and, where the criterion is a
yes/no fact recorded per patient, the patient-record field that records it. The registry's
structured fields (minimum age, sex, healthy volunteers) are kept as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from palette_core.design.common import Frozen, References
from palette_core.design.patient_record import PatientField
from palette_core.errors import ConflictingArgumentsError, DesignSchemaError, UnknownReferenceError

FILE = "eligibility.yaml"


class Criterion(Frozen):
    id: str
    registry_text: str
    reading: str | None = None
    finding: str | None = None
    field: str | None = None
    field_value_required: bool | None = None


class MinimumAgeField(Frozen):
    value: float
    unit: str
    registry_text: str
    finding: str | None = None


class EligibilityFields(Frozen):
    minimum_age: MinimumAgeField
    sex: Literal["ALL", "FEMALE", "MALE"]
    healthy_volunteers: bool


class EligibilityFile(Frozen):
    inclusion: tuple[Criterion, ...] = Field(min_length=1)
    exclusion: tuple[Criterion, ...] = ()
    fields: EligibilityFields


def check_eligibility(
    e: EligibilityFile, patient_fields: Mapping[str, PatientField], refs: References
) -> None:
    """eligibility.yaml: known findings; a criterion's fact is a yes/no field of the record
    (every exclusion has one); the minimum age is in an age unit."""
    for c in e.inclusion + e.exclusion:
        refs.check_finding(c.finding, FILE, c.id, "finding")
    for c in e.inclusion + e.exclusion:
        if c.field is None:
            continue
        fld = patient_fields.get(c.field)
        if fld is None:
            raise UnknownReferenceError(
                FILE, c.id, "field", f"field {c.field!r} is not in patient_record.yaml"
            )
        if fld.kind != "bool":
            raise ConflictingArgumentsError(
                FILE,
                c.id,
                "field",
                f"{c.field!r} is a {fld.kind} field; a criterion fact must be yes/no",
            )
        if (c in e.inclusion) != (c.field_value_required is not None):
            raise ConflictingArgumentsError(
                FILE,
                c.id,
                "field_value_required",
                "required for an inclusion fact, and only there (an exclusion fact excludes when true)",
            )
    for c in e.exclusion:
        if c.field is None:
            raise DesignSchemaError(
                FILE,
                c.id,
                "field",
                "every exclusion needs the patient record field that records it",
            )
    refs.check_unit(e.fields.minimum_age.unit, FILE, "minimum_age", "unit", {"age"})
    refs.check_finding(e.fields.minimum_age.finding, FILE, "minimum_age", "finding")


__all__ = [
    "Criterion",
    "EligibilityFields",
    "EligibilityFile",
    "MinimumAgeField",
    "check_eligibility",
]
