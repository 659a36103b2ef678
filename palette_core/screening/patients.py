"""The patient record contract: parse and validate patient data at the boundary.

The contract is data (``data/design/patient_record.yaml``): every field's kind, unit,
physiological range and categories. :func:`validate_patients` turns raw input (strings from a
CSV, values from a form) into typed columns and checks them with a pandera schema built from the
contract. Nothing is dropped, clipped or guessed:

* a value that cannot be parsed, is out of range or not an allowed category makes its **row
  invalid**, reported with the row number, the patient id, the field and the value; the row stays
  in the output (with the offending value removed) so that counts in equal counts out;
* a missing value is allowed unless the field is ``required``; criteria that need it are then
  "indeterminate" downstream, never "negative";
* a column the contract does not know, or a missing required column, is an error for the whole
  file (:class:`~palette_core.errors.PatientFileError`).

Typed dtypes after validation: ``float64`` (NaN missing), ``Int64``, ``boolean``, ``string``.

Examples
--------
>>> from palette_core import load_design
>>> from palette_core.screening.patients import validate_record
>>> design = load_design()
>>> validate_record({"patient_id": "p1", "age_years": 54, "sex": "male", "inr": 1.4}, design)["inr"]
1.4
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from palette_core.design.loader import Design
from palette_core.design.records import PatientField
from palette_core.errors import PatientFileError, PatientRecordError

DTYPES = {
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
    "category": "string",
    "str": "string",
}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
ROW_STATUS = "record_status"
ROW_ERRORS = "record_errors"


@dataclass(frozen=True)
class PatientValidation:
    """Validated patients plus the problems found, row by row.

    ``frame`` has one row per input row, in input order, with typed contract columns; values that
    failed are set to missing there and listed in ``errors`` (columns ``row``, ``patient_id``,
    ``field``, ``value``, ``problem``). ``valid`` is True for rows without any problem.
    """

    frame: pd.DataFrame
    errors: pd.DataFrame
    source: str

    @property
    def valid(self) -> pd.Series:
        bad = set(self.errors["row"]) if len(self.errors) else set()
        return pd.Series(
            [(i + 1) not in bad for i in range(len(self.frame))],
            index=self.frame.index,
            name="valid",
        )

    def row_errors(self) -> pd.Series:
        """One readable string per row ("" when the row is valid)."""
        out = pd.Series([""] * len(self.frame), index=self.frame.index, dtype="string")
        for row, grp in self.errors.groupby("row", sort=True):
            out.iloc[row - 1] = "; ".join(
                f"{f}: {p}" for f, p in zip(grp["field"], grp["problem"], strict=True)
            )
        return out


def contract_schema(design: Design) -> pa.DataFrameSchema:
    """The pandera schema of the patient record, built from ``patient_record.yaml``."""
    columns = {}
    for name, fld in design.patient_fields.items():
        checks = []
        if fld.range is not None:
            checks.append(
                pa.Check.in_range(
                    fld.range[0],
                    fld.range[1],
                    error=f"outside the range [{fld.range[0]:g}, {fld.range[1]:g}] {fld.unit or ''}".rstrip(),
                )
            )
        if fld.categories is not None:
            checks.append(
                pa.Check.isin(list(fld.categories), error=f"not one of {list(fld.categories)}")
            )
        if fld.kind == "int":
            checks.append(
                pa.Check(
                    lambda x: x.isna() | (x == x.round()),
                    element_wise=False,
                    error="not a whole number",
                )
            )
        columns[name] = pa.Column(
            DTYPES[fld.kind],
            checks=checks,
            nullable=not fld.required,
            required=fld.required,
            coerce=False,
        )
    return pa.DataFrameSchema(columns, strict=True, ordered=False)


def _parse_column(raw: pd.Series, fld: PatientField) -> tuple[pd.Series, pd.Series]:
    """Parse one raw column to its contract dtype; also return a mask of unparseable values."""
    present = raw.notna() & ~raw.astype("string").str.strip().isin(
        ["", "NA", "nan", "NaN", "<NA>"]
    ).fillna(False).astype(bool)
    text = raw.astype("string").str.strip()
    if fld.kind in ("float", "int"):
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            values = pd.to_numeric(raw, errors="coerce").astype("float64")
        else:
            values = pd.to_numeric(text.where(present), errors="coerce").astype("float64")
        bad = present & values.isna()
        if fld.kind == "int":
            whole = values.isna() | (values == np.round(values))
            bad |= ~whole
            values = values.where(whole).astype("Int64")
        return values, bad
    if fld.kind == "bool":
        if pd.api.types.is_bool_dtype(raw):
            return raw.astype("boolean"), pd.Series(False, index=raw.index)
        low = text.str.lower()
        values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        values[low.isin(_TRUE).fillna(False).astype(bool)] = True
        values[low.isin(_FALSE).fillna(False).astype(bool)] = False
        bad = present & values.isna()
        return values, bad
    values = text.where(present).astype("string")
    return values, pd.Series(False, index=raw.index)


def validate_patients(
    raw: pd.DataFrame, design: Design, source: str = "<input>"
) -> PatientValidation:
    """Parse and validate a table of patients against the contract.

    Raises
    ------
    PatientFileError
        The table has a column the contract does not know, or lacks a required column.
    """
    unknown = [c for c in raw.columns if c not in design.patient_fields]
    if unknown:
        raise PatientFileError(
            source, f"unknown column(s) {unknown}; the contract is data/design/patient_record.yaml"
        )
    missing = [n for n, f in design.patient_fields.items() if f.required and n not in raw.columns]
    if missing:
        raise PatientFileError(source, f"required column(s) {missing} missing")
    raw = raw.reset_index(drop=True)
    frame = pd.DataFrame(index=raw.index)
    errors: list[dict[str, Any]] = []
    ids = (
        raw["patient_id"].astype("string")
        if "patient_id" in raw
        else pd.Series(pd.NA, index=raw.index, dtype="string")
    )
    for name, fld in design.patient_fields.items():
        if name not in raw.columns:
            frame[name] = pd.Series(
                pd.NA if fld.kind != "float" else np.nan, index=raw.index, dtype=DTYPES[fld.kind]
            )
            continue
        values, bad = _parse_column(raw[name], fld)
        for i in np.flatnonzero(bad.to_numpy()):
            errors.append(
                {
                    "row": i + 1,
                    "patient_id": ids.iloc[i],
                    "field": name,
                    "value": str(raw[name].iloc[i]),
                    "problem": f"not a valid {fld.kind}",
                }
            )
        frame[name] = values
    try:
        contract_schema(design).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        for _, case in exc.failure_cases.iterrows():
            col, idx = case["column"], case["index"]
            if idx is None or pd.isna(idx) or col not in frame.columns:
                continue
            i = int(idx)
            problem = str(case["check"])
            if problem == "not_nullable":
                if any(e["row"] == i + 1 and e["field"] == col for e in errors):
                    continue  # already reported as unparseable
                problem = "required but missing"
            errors.append(
                {
                    "row": i + 1,
                    "patient_id": ids.iloc[i],
                    "field": col,
                    "value": str(frame[col].iloc[i]),
                    "problem": problem,
                }
            )
            frame.loc[i, col] = (
                pd.NA if DTYPES[design.patient_fields[col].kind] != "float64" else np.nan
            )
    err = pd.DataFrame(errors, columns=["row", "patient_id", "field", "value", "problem"])
    err = err.drop_duplicates().sort_values(["row", "field"], kind="stable").reset_index(drop=True)
    return PatientValidation(frame=frame, errors=err, source=source)


def read_patients(path: str | Path, design: Design) -> PatientValidation:
    """Read a CSV or Parquet file of patients and validate it (see :func:`validate_patients`)."""
    path = Path(path)
    if not path.is_file():
        raise PatientFileError(str(path), "file not found")
    if path.suffix.lower() == ".parquet":
        raw = pd.read_parquet(path)
    elif path.suffix.lower() == ".csv":
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    else:
        raise PatientFileError(str(path), "expected a .csv or .parquet file")
    return validate_patients(raw, design, source=str(path))


def validate_record(record: Mapping[str, Any], design: Design) -> pd.Series:
    """Validate one patient record; raise :class:`PatientRecordError` on the first problem."""
    result = validate_patients(pd.DataFrame([dict(record)]), design, source="record")
    if len(result.errors):
        e = result.errors.iloc[0]
        raise PatientRecordError(e["field"], e["value"], e["problem"], patient_id=e["patient_id"])
    return result.frame.iloc[0]


def coerce_patients(raw: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Typed contract columns for a table already known to be valid (e.g. a synthetic cohort).

    Raises :class:`PatientRecordError` for the first invalid value rather than dropping it.
    """
    result = validate_patients(raw, design, source="table")
    if len(result.errors):
        e = result.errors.iloc[0]
        raise PatientRecordError(
            e["field"], e["value"], e["problem"], patient_id=e["patient_id"], row=int(e["row"])
        )
    return result.frame
