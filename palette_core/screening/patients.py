"""The patient record contract: parse and validate patient data at the boundary.

The contract is data (``data/design/patient_record.yaml``): every field's kind, unit,
physiological range (narrower by age where ``range_by_age`` says so), categories, how the age
is given, and the checks between fields. :func:`validate_patients` turns raw input (strings
from a CSV, values from a Parquet file or a form) into typed columns and checks them. Nothing
is dropped, clipped or guessed:

* a value that cannot be parsed (not a number, not finite, too large for a whole number, not
  a ``YYYY-MM-DD`` calendar date), is out of range (for the patient's age), is not an allowed
  category, or an identifier that is not acceptable makes its **row invalid**, reported with
  the row number, the patient id, the field, the value and the problem; the row stays in the
  output (with the offending value removed) so that counts in equal counts out;
* a value that is fine on its own but contradicts another field (``consistency``: male and
  pregnant, lymphocytes above the white count, a mean arterial pressure above the systolic,
  a PaO2/FiO2 ratio that implies an FiO2 outside 0.21-1, an age and dates that disagree)
  stays in the output, and the row is invalid all the same;
* a missing value is allowed unless the field is ``required``; criteria that need it are then
  "indeterminate" downstream, never "negative";
* patient (and site) identifiers are compared in a canonical form
  (:func:`palette_core.tableio.normalise_id`: NFKC, invisible characters removed, dashes
  unified, upper case), which is the form the output carries; an identifier that appears on
  several rows makes every one of them invalid;
* the **age**: below ``age.dates_required_below_years`` (one year) it is given by
  ``date_of_birth`` and ``screening_date`` and counted exactly in days (``age_days``, a
  derived column); ``age_years`` is then derived from the dates (completed years plus the
  fraction of the current year of life) and, if also given, must agree in completed years;
  from one year on ``age_years`` alone may be given;
* a file that cannot be read as a whole (:func:`read_patients`: not found, empty, binary,
  not UTF-8, an unbalanced quote, a carriage return inside a line, a corrupt Parquet file,
  a column the contract does not know, no age column) raises
  :class:`~palette_core.errors.PatientFileError`; a CSV record with more or fewer values
  than the header is not read (never shifted into other columns) and its row is invalid.

Typed dtypes after validation: ``float64`` (NaN missing), ``Int64``, ``boolean``,
``string``, ``datetime64[ns]``; the derived ``age_days`` is ``Int64``.

Examples
--------
>>> from palette_core import load_design
>>> from palette_core.screening.patients import validate_record
>>> design = load_design()
>>> validate_record({"patient_id": "p1", "age_years": 54, "sex": "male", "inr": 1.4}, design)["inr"]
1.4
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from palette_core.design.loader import Design
from palette_core.design.patient_record import ConsistencyRule, PatientField
from palette_core.errors import PatientFileError, PatientRecordError
from palette_core.isotime import parse_iso_date
from palette_core.tableio import (
    id_problem,
    normalise_id,
    read_csv_records,
    read_parquet_frame,
)

DTYPES = {
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
    "category": "string",
    "str": "string",
    "date": "datetime64[ns]",
}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_MISSING_TEXT = ["", "NA", "nan", "NaN", "<NA>", "NaT", "None"]
ROW_STATUS = "record_status"
ROW_ERRORS = "record_errors"
ERROR_COLUMNS = ["row", "patient_id", "field", "value", "problem"]
#: the derived column of the exact age in days (from the two dates)
AGE_DAYS = "age_days"
#: fields whose text is an identifier, compared in canonical form
ID_FIELDS = ("patient_id", "site_id")
#: the dates a record may hold (a date outside is an entry error, and beyond what a
#: ``datetime64[ns]`` column can hold)
_FIRST_DAY, _LAST_DAY = dt.date(1800, 1, 1), dt.date(2200, 12, 31)
#: the largest whole number a float64 holds exactly
_MAX_WHOLE = 2.0**53


@dataclass(frozen=True)
class PatientValidation:
    """Validated patients plus the problems found, row by row.

    ``frame`` has one row per input row, in input order, with typed contract columns and the
    derived ``age_days``; values that failed are set to missing there and listed in
    ``errors`` (columns ``row``, ``patient_id``, ``field``, ``value``, ``problem``).
    ``valid`` is True for rows without any problem. ``lines`` gives, for a CSV file, the line
    on which each row starts (``None`` otherwise).
    """

    frame: pd.DataFrame
    errors: pd.DataFrame
    source: str
    lines: tuple[int, ...] | None = None

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

    def where(self, row: int) -> str:
        """``"row 3"`` or, for a CSV file, ``"row 3 (line 5)"``."""
        if self.lines is not None and 0 < row <= len(self.lines):
            return f"row {row} (line {self.lines[row - 1]})"
        return f"row {row}"


def contract_schema(design: Design) -> pa.DataFrameSchema:
    """The pandera schema of the patient record, built from ``patient_record.yaml``.

    It checks each field on its own (range for any age, categories, whole numbers); the
    ranges by age and the checks between fields are applied by :func:`validate_patients`.
    """
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
        columns[name] = pa.Column(
            DTYPES[fld.kind],
            checks=checks,
            nullable=not fld.required,
            required=fld.required,
            coerce=False,
        )
    return pa.DataFrameSchema(columns, strict=True, ordered=False)


# ----------------------------------------------------------------------------- parsing
def _clean_text(raw: pd.Series) -> pd.Series:
    """Cells as text: NFKC, invisible format characters removed, surrounding space stripped."""

    def clean(v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return pd.NA
        s = unicodedata.normalize("NFKC", str(v))
        return "".join(ch for ch in s if unicodedata.category(ch) != "Cf").strip()

    return raw.map(clean).astype("string")


def _parse_number(raw: pd.Series, text: pd.Series, present: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return pd.to_numeric(raw, errors="coerce").astype("float64")
    return pd.to_numeric(text.where(present), errors="coerce").astype("float64")


def _parse_column(raw: pd.Series, fld: PatientField) -> tuple[pd.Series, pd.Series]:
    """Parse one raw column to its contract dtype.

    Returns the values and, per row, the problem of a present value that could not be parsed
    (``""`` where there is none).
    """
    text = _clean_text(raw)
    present = (text.notna() & ~text.isin(_MISSING_TEXT).fillna(False)).astype(bool)
    problems = pd.Series("", index=raw.index, dtype=object)
    if fld.kind in ("float", "int"):
        values = _parse_number(raw, text, present)
        problems[present & values.isna()] = f"not a valid {fld.kind}"
        infinite = present & values.notna() & ~np.isfinite(values.fillna(0.0))
        problems[infinite] = f"not a valid {fld.kind} (not a finite number)"
        values = values.where(~infinite)
        if fld.kind == "int":
            finite = values.notna()
            huge = finite & (values.abs() > _MAX_WHOLE)
            fractional = finite & ~huge & (values != np.round(values))
            problems[huge] = "not a valid int (too large)"
            problems[fractional] = "not a valid int (not a whole number)"
            values = values.where(~(huge | fractional)).astype("Int64")
        return values, problems
    if fld.kind == "bool":
        if pd.api.types.is_bool_dtype(raw):
            return raw.astype("boolean"), problems
        low = text.str.lower()
        values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        values[low.isin(_TRUE).fillna(False).astype(bool)] = True
        values[low.isin(_FALSE).fillna(False).astype(bool)] = False
        problems[present & values.isna()] = "not a valid bool (true/false, yes/no)"
        return values, problems
    if fld.kind == "date":
        if pd.api.types.is_datetime64_any_dtype(raw):  # already dates (a frame, a Parquet file)
            values = pd.to_datetime(raw).astype("datetime64[ns]")
            timed = values.notna() & (values != values.dt.normalize())
            problems[timed] = "a date without a time of day (YYYY-MM-DD)"
            return values.where(~timed), problems
        parsed: list[Any] = []
        for i, (v, here) in enumerate(zip(text, present, strict=True)):
            try:
                day = parse_iso_date(str(v)) if here else None
            except ValueError as exc:
                day = None
                problems.iloc[i] = str(exc)
            if day is not None and not _FIRST_DAY <= day <= _LAST_DAY:
                problems.iloc[i] = f"{day} is not a plausible date ({_FIRST_DAY} to {_LAST_DAY})"
                day = None
            parsed.append(pd.NaT if day is None else pd.Timestamp(day))
        return pd.Series(parsed, index=raw.index, dtype="datetime64[ns]"), problems
    values = text.where(present).astype("string")
    if fld.kind == "category" and fld.categories is not None:
        by_case = {c.casefold(): c for c in fld.categories}
        values = values.map(lambda v: by_case.get(str(v).casefold(), v) if pd.notna(v) else v)
        values = values.astype("string")
    return values, problems


def _missing(kind: str) -> Any:
    return np.nan if DTYPES[kind] == "float64" else (pd.NaT if kind == "date" else pd.NA)


class _Errors:
    """The problems found, one dict per problem; at most one per (row, field)."""

    def __init__(self, ids: pd.Series):
        self.ids = list(ids)
        self.rows: list[dict[str, Any]] = []
        self.seen: set[tuple[int, str]] = set()
        self.unread: set[int] = set()  # rows the reader could not read: one problem each

    def add(self, i: int, field: str, value: Any, problem: str) -> None:
        if (i + 1, field) in self.seen or i in self.unread:
            return
        self.seen.add((i + 1, field))
        pid = self.ids[i] if i < len(self.ids) else pd.NA
        self.rows.append(
            {"row": i + 1, "patient_id": pid, "field": field, "value": str(value)[:200],
             "problem": problem}
        )  # fmt: skip

    def frame(self) -> pd.DataFrame:
        err = pd.DataFrame(self.rows, columns=ERROR_COLUMNS)
        return err.sort_values(["row", "field"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- identifiers
def _identifiers(frame: pd.DataFrame, raw: pd.DataFrame, errors: _Errors) -> None:
    """Canonical identifiers; an unacceptable one is removed, a repeated patient id flagged."""
    for name in ID_FIELDS:
        if name not in raw.columns:
            continue
        canon: list[Any] = []
        for i, v in enumerate(frame[name]):
            if pd.isna(v):
                canon.append(pd.NA)
                continue
            c = normalise_id(str(v))
            why = id_problem(c)
            if why is not None:
                errors.add(i, name, raw[name].iloc[i], why)
                canon.append(pd.NA)
            else:
                canon.append(c)
        frame[name] = pd.Series(canon, index=frame.index, dtype="string")
    if "patient_id" not in frame.columns:
        return
    errors.ids = list(frame["patient_id"])
    rows: dict[str, list[int]] = {}
    for i, pid in enumerate(frame["patient_id"]):
        if pd.notna(pid):
            rows.setdefault(str(pid), []).append(i)
    for pid, where in rows.items():
        if len(where) > 1:
            for i in where:
                others = ", ".join(str(j + 1) for j in where if j != i)
                errors.add(
                    i,
                    "patient_id",
                    raw["patient_id"].iloc[i],
                    f"{pid!r} is also on row(s) {others} (identifiers are compared after "
                    "Unicode normalisation, case and invisible characters): a patient is "
                    "screened once",
                )


# ----------------------------------------------------------------------------- the age
def _years_between(born: dt.date, on: dt.date) -> tuple[int, float]:
    """Completed years from ``born`` to ``on``, and the age in years with the fraction of the
    current year of life (exact at every birthday; 29 February counts from 28 February)."""

    def birthday(year: int) -> dt.date:
        try:
            return born.replace(year=year)
        except ValueError:  # 29 February in a common year
            return dt.date(year, 2, 28)

    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    last, nxt = birthday(born.year + years), birthday(born.year + years + 1)
    return years, years + (on - last).days / (nxt - last).days


def _age(frame: pd.DataFrame, raw: pd.DataFrame, design: Design, errors: _Errors) -> None:
    """``age_days`` and ``age_years`` from the dates; the age rule of the contract."""
    limit = design.patient_record.age.dates_required_below_years
    max_years = design.patient_fields["age_years"].range[1]  # type: ignore[index]
    days: list[Any] = [pd.NA] * len(frame)
    years = frame["age_years"].to_numpy(dtype="float64", na_value=np.nan).copy()
    raw_age = list(raw["age_years"]) if "age_years" in raw else list(years)
    born = [None if pd.isna(v) else v.date() for v in frame["date_of_birth"]]
    on = [None if pd.isna(v) else v.date() for v in frame["screening_date"]]
    for i, (b, s) in enumerate(zip(born, on, strict=True)):
        given = years[i]
        if (b is None) != (s is None):
            missing = "screening_date" if b is not None else "date_of_birth"
            present = "date_of_birth" if b is not None else "screening_date"
            errors.add(i, missing, "", f"required with {present} (the age is counted between them)")
            continue
        if b is not None and s is not None:
            if s < b:
                errors.add(i, "screening_date", s, f"before date_of_birth {b}")
                years[i] = np.nan
                continue
            completed, exact = _years_between(b, s)
            if completed > max_years:
                errors.add(i, "date_of_birth", b, f"an age of {completed} years is implausible")
                years[i] = np.nan
                continue
            if not np.isnan(given) and math.floor(given) != completed:
                errors.add(
                    i,
                    "age_years",
                    raw_age[i],
                    f"disagrees with the dates ({completed} completed years from {b} to {s})",
                )
            days[i] = (s - b).days
            years[i] = exact
        elif np.isnan(given):
            if (i + 1, "age_years") not in errors.seen:
                errors.add(i, "age_years", "", "required but missing (or give date_of_birth and "
                           "screening_date)")  # fmt: skip
        elif given < limit:
            errors.add(
                i,
                "age_years",
                raw_age[i],
                f"below {limit:g} year(s) the age is given by date_of_birth and screening_date "
                "(an age in fractional years is ambiguous: the corrected gestational age is "
                "counted in days)",
            )
            years[i] = np.nan
    frame["age_years"] = pd.Series(years, index=frame.index, dtype="float64")
    frame[AGE_DAYS] = pd.Series(pd.array(days, dtype="Int64"), index=frame.index)


# ----------------------------------------------------------------------------- checks
def _band_ranges(frame: pd.DataFrame, design: Design, errors: _Errors) -> None:
    """The narrower ranges by age (``range_by_age``); an offending value is removed."""
    age = frame["age_years"].to_numpy(dtype=float, na_value=np.nan)
    for name, fld in design.patient_fields.items():
        if not fld.range_by_age:
            continue
        values = frame[name].astype("float64").to_numpy()
        bad = np.zeros(len(frame), dtype=bool)
        for i in np.flatnonzero(~np.isnan(values) & ~np.isnan(age)):
            band = next((b for b in fld.range_by_age if age[i] < b.below_age_years), None)
            if band is None:
                continue
            lo, hi = band.range
            if not lo <= values[i] <= hi:
                unit = f" {fld.unit}" if fld.unit else ""
                errors.add(
                    int(i),
                    name,
                    values[i],
                    f"outside the range [{lo:g}, {hi:g}]{unit} for an age below "
                    f"{band.below_age_years:g} years (a unit error?)",
                )
                bad[i] = True
        if bad.any():
            frame[name] = frame[name].mask(bad, _missing(fld.kind))


def _rule_failures(rule: ConsistencyRule, frame: pd.DataFrame) -> list[tuple[int, str]]:
    """(row index, message) for every row that breaks a consistency rule."""
    out: list[tuple[int, str]] = []
    f, o = rule.field, rule.other
    if rule.kind in ("requires", "min_age"):
        on = frame[f].fillna(False).astype(bool).to_numpy()
        for i in np.flatnonzero(on):
            if rule.kind == "requires":
                v = frame[o].iloc[i]
                if pd.notna(v) and str(v) not in (rule.values or ()):
                    out.append(
                        (int(i), f"{f} is true but {o} is {v} (only {list(rule.values or ())})")
                    )
            else:
                age = frame["age_years"].iloc[i]
                if pd.notna(age) and age < (rule.min_age_years or 0):
                    out.append(
                        (int(i), f"{f} is true at {age:.3g} years (below {rule.min_age_years:g})")
                    )
        return out
    a = frame[f].astype("float64").to_numpy()
    b = frame[o].astype("float64").to_numpy()
    both = ~np.isnan(a) & ~np.isnan(b)
    for i in np.flatnonzero(both):
        x, y = float(a[i]), float(b[i])
        if rule.kind == "not_above" and x > y:
            out.append((int(i), f"{f} {x:g} is above {o} {y:g}"))
        elif rule.kind == "implied_fraction" and rule.range is not None:
            frac = y / x if x > 0 else math.inf
            lo, hi = rule.range
            if not lo <= frac <= hi:
                out.append(
                    (int(i), f"{o} {y:g} / {f} {x:g} = {frac:.3g}, outside [{lo:g}, {hi:g}]")
                )
        elif rule.kind == "agree" and rule.relative_tolerance is not None:
            if abs(x - y) > rule.relative_tolerance * max(abs(x), abs(y)):
                out.append((int(i), f"{f} {x:g} and {o} {y:g} differ by more than "
                                    f"{rule.relative_tolerance:.0%}"))  # fmt: skip
    return out


def _consistency(frame: pd.DataFrame, design: Design, errors: _Errors) -> None:
    for rule in design.patient_record.consistency:
        for i, message in _rule_failures(rule, frame):
            errors.add(i, rule.field, frame[rule.field].iloc[i], f"{message} ({rule.id})")


# ----------------------------------------------------------------------------- validation
def validate_patients(
    raw: pd.DataFrame,
    design: Design,
    source: str = "<input>",
    *,
    unreadable: Mapping[int, tuple[str, str, str]] | None = None,
    lines: tuple[int, ...] | None = None,
) -> PatientValidation:
    """Parse and validate a table of patients against the contract.

    Parameters
    ----------
    raw
        One row per patient; columns among the contract's fields.
    unreadable
        Rows (0-based) that the reader could not read, with (field, value, problem): they are
        kept, every value missing, and reported.
    lines
        The file line on which each row starts (CSV), for messages.

    Raises
    ------
    PatientFileError
        The table has a column the contract does not know or repeats a column, lacks a
        required column, or has no column for the age.
    """
    if AGE_DAYS in raw.columns:  # a frame validated before: the derived column is derived again
        raw = raw.drop(columns=[AGE_DAYS])
    names = [str(c) for c in raw.columns]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise PatientFileError(source, f"column(s) {repeated} repeated")
    unknown = [c for c in names if c not in design.patient_fields]
    if unknown:
        raise PatientFileError(
            source, f"unknown column(s) {unknown}; the contract is data/design/patient_record.yaml"
        )
    missing = [n for n, f in design.patient_fields.items() if f.required and n not in names]
    if missing:
        raise PatientFileError(source, f"required column(s) {missing} missing")
    if "age_years" not in names and not {"date_of_birth", "screening_date"} <= set(names):
        raise PatientFileError(
            source, "no age: a column age_years, or the columns date_of_birth and screening_date"
        )
    raw = raw.reset_index(drop=True)
    frame = pd.DataFrame(index=raw.index)
    ids = (
        _clean_text(raw["patient_id"])
        if "patient_id" in raw
        else pd.Series(pd.NA, index=raw.index, dtype="string")
    )
    errors = _Errors(ids)
    for i, (fld_name, value, problem) in (unreadable or {}).items():
        errors.add(i, fld_name, value, problem)
    errors.unread = set(unreadable or {})
    for name, fld in design.patient_fields.items():
        if name not in raw.columns:
            frame[name] = pd.Series(_missing(fld.kind), index=raw.index, dtype=DTYPES[fld.kind])
            continue
        values, problems = _parse_column(raw[name], fld)
        cells, why = raw[name].to_numpy(dtype=object), problems.to_numpy(dtype=object)
        for i in np.flatnonzero(why != ""):
            errors.add(int(i), name, cells[i], why[i])
        frame[name] = values
    _identifiers(frame, raw, errors)
    try:
        contract_schema(design).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        failed: dict[str, list[int]] = {}
        cases = exc.failure_cases
        cells: dict[str, np.ndarray] = {}
        for col, idx, check in zip(cases["column"], cases["index"], cases["check"], strict=True):
            if idx is None or pd.isna(idx) or col not in frame.columns:
                continue
            i = int(idx)
            problem = "required but missing" if str(check) == "not_nullable" else str(check)
            if col not in cells:
                cells[col] = frame[col].to_numpy(dtype=object)
            errors.add(i, col, cells[col][i], problem)
            failed.setdefault(col, []).append(i)
        for col, rows in failed.items():  # the offending values removed, a column at a time
            mask = np.zeros(len(frame), dtype=bool)
            mask[rows] = True
            frame[col] = frame[col].mask(mask, _missing(design.patient_fields[col].kind))
    _age(frame, raw, design, errors)
    _band_ranges(frame, design, errors)
    _consistency(frame, design, errors)
    return PatientValidation(frame=frame, errors=errors.frame(), source=source, lines=lines)


def read_patients(path: str | Path, design: Design) -> PatientValidation:
    """Read a CSV or Parquet file of patients and validate it (see :func:`validate_patients`).

    Every record of a CSV file is a row: a record with more or fewer values than the header
    is kept as an invalid row, not read (nothing is shifted into another column).

    Raises
    ------
    PatientFileError
        The file cannot be read as a whole (see the module docstring), or its columns do not
        fit the contract.
    """
    path = Path(path)
    label = str(path)

    def fail(message: str) -> PatientFileError:
        return PatientFileError(label, message)

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise fail("expected a .csv or .parquet file")
    if suffix == ".parquet":
        raw, bad = read_parquet_frame(path, fail)
        unreadable = {}
        for col in bad.columns:
            for i in np.flatnonzero(bad[col].to_numpy(dtype=bool)):
                unreadable[int(i)] = (col, str(raw[col].iloc[i]), "not a single value")
                raw.loc[raw.index[i], col] = None
        return validate_patients(raw, design, source=label, unreadable=unreadable)
    table = read_csv_records(path, fail)
    width = len(table.header)
    rows: list[tuple[str, ...]] = []
    unreadable = {}
    for i, record in enumerate(table.records):
        if len(record) == width:
            rows.append(record)
            continue
        if len(record) < width:
            fld, value = table.header[len(record)], ""
            why = f"missing: the record has {len(record)} of {width} values and is not read"
        else:
            fld, value = table.header[-1], record[width]
            why = (
                f"{len(record) - width} value(s) after the last column: the record has "
                f"{len(record)} values for {width} columns and is not read"
            )
        unreadable[i] = (fld, value, f"{why} (a stray or missing delimiter?)")
        rows.append(("",) * width)
    raw = pd.DataFrame(list(rows), columns=list(table.header), dtype=object)
    if not rows:
        raw = pd.DataFrame({c: pd.Series([], dtype=object) for c in table.header})
    return validate_patients(raw, design, source=label, unreadable=unreadable, lines=table.lines)


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


__all__ = [
    "AGE_DAYS",
    "DTYPES",
    "ERROR_COLUMNS",
    "ID_FIELDS",
    "ROW_ERRORS",
    "ROW_STATUS",
    "PatientValidation",
    "contract_schema",
    "coerce_patients",
    "read_patients",
    "validate_patients",
    "validate_record",
]
