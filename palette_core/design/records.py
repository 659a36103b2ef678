"""The data export contract (``export_contract.yaml``): what the interim analysis reads from a
data export: the metadata of ``export.yaml`` and the columns of ``patients.csv``, including
those the code reads by name (:data:`EXPORT_CORE_FIELDS`, :data:`EXPORT_META_FIELDS`) and the
dates and intervals from which the outcomes of ``proposed/outcomes.yaml`` are derived. The
patient record contract is in :mod:`palette_core.design.patient_record`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from palette_core.design.common import Frozen, References
from palette_core.design.outcomes import OutcomesFile
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignSchemaError,
    DuplicateIdError,
    OutOfRangeError,
    UnknownReferenceError,
)

# ----------------------------------------------------------------------------- data export
ExportKind = Literal[
    "str", "date", "category", "float", "trait_list", "substance_list", "interval_list"
]
ExportGroup = Literal[
    "identity", "randomisation", "severity", "follow_up", "organ_support", "safety", "adherence"
]

#: The export columns that palette_core.exports.contract and palette_core.exports.derive read by
#: name: name -> (kind, categories_from, must be required). The contract may declare more columns.
EXPORT_CORE_FIELDS: dict[str, tuple[str, str | None, bool]] = {
    "patient_id": ("str", None, True),
    "site_id": ("str", None, True),
    "country": ("str", None, True),
    "randomisation_date": ("date", None, True),
    "age_group": ("category", "age_groups", True),
    "positive_traits": ("trait_list", None, True),
    "assigned_trait": ("category", "traits", True),
    "arm": ("category", "arms", True),
    "death_date": ("date", None, False),
    "icu_discharge_date": ("date", None, False),
    "hospital_discharge_date": ("date", None, False),
    "last_known_alive_date": ("date", None, False),
    "withdrawal_date": ("date", None, False),
    "withdrawal_scope": ("category", None, False),
    "open_label_substances": ("substance_list", None, False),
}
#: The metadata of an export (export.yaml) that palette_core.exports.contract reads: name -> kind.
EXPORT_META_FIELDS: dict[str, str] = {
    "trial_id": "str",
    "export_id": "str",
    "data_cut": "date",
    "created_by": "str",
}


class ExportMetaField(Frozen):
    """One entry of an export's ``export.yaml`` (export_contract.yaml ``metadata``)."""

    kind: Literal["str", "date"]
    required: bool = False
    description: str


class ExportField(Frozen):
    """One column of an export's ``patients.csv`` (export_contract.yaml ``fields``).

    ``outcome`` (date fields) names the binary outcome of ``proposed/outcomes.yaml`` whose event
    the date records; ``organ_support`` (interval lists) names the organ-support type of the
    ordinal outcome that the intervals record. ``severity_of`` (float fields) names the age
    group whose baseline severity score the field records (read by the covariate-adjusted
    sensitivity analysis, :mod:`palette_core.analysis.covariates`); a value given for a patient
    of another age group is an error. ``integer`` fields hold whole numbers only. ``status:
    proposed`` marks a field the registry does not ask for, with its ``rationale``.
    """

    kind: ExportKind
    required: bool = False
    unique: bool = False
    pattern: str | None = None
    unit: str | None = None
    range: tuple[float, float] | None = None
    categories: tuple[str, ...] | None = None
    categories_from: Literal["traits", "arms", "age_groups", "substances"] | None = None
    outcome: str | None = None
    organ_support: str | None = None
    severity_of: str | None = None
    integer: bool = False
    group: ExportGroup
    description: str
    status: Literal["proposed"] | None = None
    rationale: str | None = None


class ExportContractFile(Frozen):
    metadata: dict[str, ExportMetaField] = Field(min_length=1)
    fields: dict[str, ExportField] = Field(min_length=1)


def _check_export_metadata(c: ExportContractFile, f: str) -> None:
    for name, kind in EXPORT_META_FIELDS.items():
        meta = c.metadata.get(name)
        required = name != "created_by"
        if meta is None:
            if required:
                raise DesignSchemaError(
                    f,
                    name,
                    None,
                    "metadata entry missing (palette_core.exports.contract reads it)",
                )
            continue
        if meta.kind != kind:
            raise ConflictingArgumentsError(
                f, name, "kind", f"must be {kind!r} (palette_core.exports.contract reads it so)"
            )
        if required and not meta.required:
            raise ConflictingArgumentsError(f, name, "required", "must be required")
    for name in c.metadata:
        if name not in EXPORT_META_FIELDS:
            raise UnknownReferenceError(
                f,
                name,
                None,
                f"no metadata entry {name!r} is known to palette_core.exports.contract "
                f"({', '.join(EXPORT_META_FIELDS)})",
            )


def _check_export_field(name: str, fld: ExportField, f: str, refs: References) -> None:
    if fld.unit is not None:
        refs.check_unit(fld.unit, f, name, "unit")
    if fld.kind == "float" and fld.range is None:
        raise DesignSchemaError(f, name, "range", "a float field needs its plausible range")
    if fld.range is not None:
        if fld.kind != "float":
            raise ConflictingArgumentsError(f, name, "range", f"a {fld.kind} has no range")
        if not fld.range[0] < fld.range[1]:
            raise OutOfRangeError(
                f,
                name,
                "range",
                f"lower bound {fld.range[0]} must be below upper bound {fld.range[1]}",
            )
    if fld.unit is not None and fld.kind != "float":
        raise ConflictingArgumentsError(f, name, "unit", f"a {fld.kind} has no unit")
    if fld.pattern is not None:
        if fld.kind != "str":
            raise ConflictingArgumentsError(f, name, "pattern", "only a str field has a pattern")
        try:
            re.compile(fld.pattern)
        except re.error as exc:
            raise DesignSchemaError(
                f, name, "pattern", f"not a regular expression: {exc}"
            ) from None
    given = (fld.categories is not None) + (fld.categories_from is not None)
    if fld.kind == "category" and given != 1:
        raise ConflictingArgumentsError(
            f,
            name,
            "categories",
            "a category field needs exactly one of categories and categories_from",
        )
    if fld.kind != "category" and given:
        raise ConflictingArgumentsError(
            f, name, "categories", f"a {fld.kind} field has no categories"
        )
    if fld.categories is not None and len(set(fld.categories)) != len(fld.categories):
        raise DuplicateIdError(f, name, "categories", "a category is listed twice")
    if fld.unique and fld.kind != "str":
        raise ConflictingArgumentsError(f, name, "unique", "only a str field is unique")
    if fld.outcome is not None and fld.kind != "date":
        raise ConflictingArgumentsError(
            f, name, "outcome", "only a date field records an outcome's event"
        )
    if fld.integer and fld.kind != "float":
        raise ConflictingArgumentsError(f, name, "integer", "only a float field is integer")
    if fld.severity_of is not None and not fld.integer:
        raise ConflictingArgumentsError(
            f, name, "severity_of", "a severity score is a whole number: needs integer: true"
        )
    if (fld.status is None) != (fld.rationale is None):
        raise ConflictingArgumentsError(
            f, name, "rationale", "a proposed field gives its rationale, and only it"
        )
    if (fld.organ_support is not None) != (fld.kind == "interval_list"):
        raise ConflictingArgumentsError(
            f,
            name,
            "organ_support",
            "every interval_list field, and only it, names its organ-support type",
        )


def _check_export_outcomes(c: ExportContractFile, outcomes: OutcomesFile, f: str) -> None:
    """Each binary outcome is dated by one field, each organ support recorded by one field."""
    binary = {o.id for o in outcomes.outcomes if o.type == "binary"}
    supports = {t for o in outcomes.outcomes for t in o.organ_support}
    dated: dict[str, str] = {}
    recorded: dict[str, str] = {}
    for name, fld in c.fields.items():
        if fld.outcome is not None:
            if fld.outcome not in binary:
                raise UnknownReferenceError(
                    f,
                    name,
                    "outcome",
                    f"{fld.outcome!r} is not a binary outcome of proposed/outcomes.yaml",
                )
            if fld.outcome in dated:
                raise DuplicateIdError(
                    f, name, "outcome", f"{dated[fld.outcome]!r} already dates {fld.outcome!r}"
                )
            dated[fld.outcome] = name
        if fld.organ_support is not None:
            if fld.organ_support not in supports:
                raise UnknownReferenceError(
                    f,
                    name,
                    "organ_support",
                    f"{fld.organ_support!r} is not an organ support of proposed/outcomes.yaml",
                )
            if fld.organ_support in recorded:
                raise DuplicateIdError(
                    f,
                    name,
                    "organ_support",
                    f"{recorded[fld.organ_support]!r} already records {fld.organ_support!r}",
                )
            recorded[fld.organ_support] = name
    undated = sorted(binary - set(dated))
    if undated:
        raise ConflictingArgumentsError(
            f, None, "fields", f"no date field records the binary outcome(s) {undated}"
        )
    unrecorded = sorted(supports - set(recorded))
    if unrecorded:
        raise ConflictingArgumentsError(
            f, None, "fields", f"no interval_list field records organ support(s) {unrecorded}"
        )


def _check_export_severity(c: ExportContractFile, age_groups: Sequence[str], f: str) -> None:
    """Each severity field names an age group of proposed/strata.yaml, each age group at most
    once."""
    scored: dict[str, str] = {}
    for name, fld in c.fields.items():
        if fld.severity_of is None:
            continue
        if fld.severity_of not in age_groups:
            raise UnknownReferenceError(
                f,
                name,
                "severity_of",
                f"{fld.severity_of!r} is not an age group of proposed/strata.yaml "
                f"({', '.join(age_groups)})",
            )
        if fld.severity_of in scored:
            raise DuplicateIdError(
                f,
                name,
                "severity_of",
                f"{scored[fld.severity_of]!r} already records the severity of {fld.severity_of!r}",
            )
        scored[fld.severity_of] = name


def check_export_contract(
    contract: ExportContractFile,
    outcomes: OutcomesFile,
    refs: References,
    age_groups: Sequence[str],
) -> None:
    """export_contract.yaml: every column the code reads, every outcome derivable, every
    severity score tied to one age group."""
    f = "export_contract.yaml"
    _check_export_metadata(contract, f)
    _check_export_severity(contract, age_groups, f)
    for name, fld in contract.fields.items():
        _check_export_field(name, fld, f, refs)
    for name, (kind, source, required) in EXPORT_CORE_FIELDS.items():
        fld = contract.fields.get(name)
        if fld is None:
            raise DesignSchemaError(
                f,
                name,
                None,
                "field missing (palette_core.exports.contract and outcomes read it)",
            )
        if fld.kind != kind:
            raise ConflictingArgumentsError(
                f, name, "kind", f"must be {kind!r} (palette_core reads it so)"
            )
        if source is not None and fld.categories_from != source:
            raise ConflictingArgumentsError(f, name, "categories_from", f"must be {source!r}")
        if required and not fld.required:
            raise ConflictingArgumentsError(f, name, "required", "must be required")
    if not contract.fields["patient_id"].unique:
        raise ConflictingArgumentsError(
            f, "patient_id", "unique", "a patient is exported once: must be unique"
        )
    _check_export_outcomes(contract, outcomes, f)


__all__ = [
    "EXPORT_CORE_FIELDS",
    "EXPORT_META_FIELDS",
    "ExportContractFile",
    "ExportField",
    "ExportGroup",
    "ExportKind",
    "ExportMetaField",
    "check_export_contract",
]
