"""The data export contract: read and validate what the trial database sends at each look.

An export is a folder holding ``export.yaml`` (metadata: trial id, export id, data cut) and
``patients.csv`` (one row per randomised patient). Both are described by
``data/design/export_contract.yaml``, and this module enforces that contract with a pandera
schema built from it, in the way :mod:`palette_core.screening.patients` enforces the patient record.

Design choices
--------------
* **Two levels of problem.** A problem with the file as a whole (missing folder or file, not
  UTF-8, ragged CSV, unknown, repeated or missing column, bad metadata, another trial's id)
  raises :class:`~palette_core.errors.ExportFileError` naming the path and the field. A
  problem with one row never raises: the row is **kept and marked invalid**
  (``record_status``), and each problem is listed in :attr:`ExportValidation.errors` with the
  CSV line, the data row, the patient id, the field, the raw value and a message. Counts in =
  counts out: ``n_valid + n_invalid == n_rows`` == the number of data records in the CSV.
* **Every column is required to be present**, even where every cell is empty. An empty cell
  says "none recorded" (an interval list, an event date) or "not applicable"; an absent column
  says nothing, so reading it as "none" would be a guess.
* **Parse, then check.** Raw text is parsed into typed columns (dates ``datetime64[ns]``,
  numbers ``float64``, text ``string``, id lists as tuples, interval lists as tuples of
  ``(start, end)`` :class:`datetime.date` pairs with ``end=None`` for a support still running
  at the data cut). A value that cannot be parsed, or fails its own column's check (range,
  pattern, category, unknown id), is listed and set to missing in ``frame``; the raw text stays
  in ``errors``. A value that is fine on its own but contradicts another field (a death before
  a discharge) stays in ``frame``; the row is invalid all the same.
* **Cross-field rules** are pandera DataFrame checks, one per rule, each naming the field at
  fault: assigned trait among the positive traits; arm of the assigned trait and open to the
  age group; randomisation on or after the study start; every date between randomisation and
  the data cut; ICU discharge not after hospital discharge; death not before a discharge and
  no later date after death; withdrawal date and scope given together; support intervals
  starting after randomisation, ending before death, discharge and the data cut, and open only
  while the patient is neither dead nor discharged; a severity score (``severity_of``) given
  for a patient of another age group; every repeat of a unique id after the first. A float
  field with ``integer: true`` (the severity scores) fails its own check when not whole.
* **Lines and rows.** ``line`` is the 1-based line of ``patients.csv`` on which a record
  starts (the header is line 1, so data row ``i`` is line ``i + 2`` unless a blank line or a
  quoted line break intervenes); ``row`` is the 0-based index of the data row, the index of
  ``frame``. Wholly blank lines hold no data and are not rows.

Examples
--------
>>> import pandas as pd
>>> from palette_core import load_design
>>> from palette_core.exports.contract import export_columns, validate_export
>>> design = load_design()
>>> raw = pd.DataFrame([{c: "" for c in export_columns(design)}])
>>> meta = {"trial_id": "NCT06381661", "export_id": "x", "data_cut": "2027-01-01"}
>>> v = validate_export(raw, meta, design)
>>> v.n_rows, v.n_invalid, "patient_id" in set(v.errors["field"])
(1, 1, True)
"""

from __future__ import annotations

import datetime as dt
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from palette_core.design.loader import Design
from palette_core.design.records import EXPORT_META_FIELDS, ExportField
from palette_core.errors import DesignError, ExportFileError, ExportRowError
from palette_core.isotime import parse_iso_date
from palette_core.tableio import id_problem, normalise_id, read_csv_records
from palette_core.yamlio import read_yaml

META_FILE = "export.yaml"
PATIENTS_FILE = "patients.csv"
LIST_SEP = ";"
INTERVAL_SEP = "/"
RECORD_STATUS = "record_status"
RECORD_ERRORS = "record_errors"
ERROR_COLUMNS = ("line", "row", "patient_id", "field", "value", "message")
DTYPES = {
    "str": "string",
    "category": "string",
    "date": "datetime64[ns]",
    "float": "float64",
    "trait_list": "object",
    "substance_list": "object",
    "interval_list": "object",
}
_MISSING_TEXT = {"", "NA", "nan", "NaN", "<NA>", "NaT", "None"}
#: identifier fields, compared in canonical form (:func:`palette_core.tableio.normalise_id`)
ID_FIELDS = ("patient_id", "site_id")

Interval = tuple[dt.date, dt.date | None]


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ExportMeta:
    """The metadata of an export (``export.yaml``)."""

    trial_id: str
    export_id: str
    data_cut: dt.date
    created_by: str | None = None


@dataclass(frozen=True)
class ExportValidation:
    """A validated export: typed rows, every row kept, and the problems found row by row.

    ``frame`` has one row per data record of ``patients.csv``, in input order (index
    ``0 .. n-1``), the contract's columns typed, plus ``line`` (1-based CSV line), ``row``
    (0-based data row, = the index), ``record_status`` (``"valid"`` or ``"invalid"``) and
    ``record_errors`` (``"field: message; ..."``, empty when valid). ``errors`` has one row per
    problem, columns ``line, row, patient_id, field, value, message``; ``value`` is the raw text.
    """

    meta: ExportMeta
    frame: pd.DataFrame
    errors: pd.DataFrame
    source: str

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @property
    def n_valid(self) -> int:
        return int((self.frame[RECORD_STATUS] == "valid").sum())

    @property
    def n_invalid(self) -> int:
        return int((self.frame[RECORD_STATUS] == "invalid").sum())

    @property
    def valid(self) -> pd.Series:
        """Boolean mask of the valid rows (index of ``frame``)."""
        return (self.frame[RECORD_STATUS] == "valid").rename("valid")

    def require_valid(self) -> ExportValidation:
        """Return ``self`` if every row is valid; else raise :class:`ExportRowError` (first)."""
        if len(self.errors):
            e = self.errors.iloc[0]
            raise ExportRowError(
                int(e["line"]), int(e["row"]), e["patient_id"], e["field"], e["value"], e["message"]
            )
        return self


# ----------------------------------------------------------------------------- contract
def export_columns(design: Design) -> tuple[str, ...]:
    """The columns of ``patients.csv``, in the order of the contract."""
    return tuple(design.export_contract.fields)


def _category_values(design: Design, fld: ExportField) -> tuple[str, ...] | None:
    if fld.categories is not None:
        return fld.categories
    if fld.categories_from is None:
        return None
    return _id_source(design, fld.categories_from)


def _id_source(design: Design, source: str) -> tuple[str, ...]:
    return {
        "traits": lambda: design.trait_ids,
        "arms": lambda: tuple(a.id for a in design.arms),
        "age_groups": lambda: design.age_group_ids,
        "substances": lambda: tuple(design.substances),
    }[source]()


_SOURCE_NAMES = {
    "traits": ("trait", "traits.yaml"),
    "arms": ("arm", "arms.yaml"),
    "age_groups": ("age group", "proposed/strata.yaml"),
    "substances": ("substance", "substances.yaml"),
}
_LIST_SOURCE = {"trait_list": ("traits", "trait"), "substance_list": ("substances", "substance")}


def _column_checks(design: Design, name: str, fld: ExportField) -> list[pa.Check]:
    """The checks of one column on its own (value by value)."""
    checks: list[pa.Check] = []
    if fld.pattern is not None:
        checks.append(pa.Check.str_matches(fld.pattern, error=f"does not match {fld.pattern}"))
    if fld.range is not None:
        lo, hi = fld.range
        unit = f" {fld.unit}" if fld.unit else ""
        checks.append(pa.Check.in_range(lo, hi, error=f"outside the range [{lo:g}, {hi:g}]{unit}"))
    if fld.integer:
        checks.append(
            pa.Check(
                lambda v: bool(float(v).is_integer()), element_wise=True, error="not a whole number"
            )
        )
    cats = _category_values(design, fld)
    if cats is not None:
        if fld.categories_from is not None:
            what, file = _SOURCE_NAMES[fld.categories_from]
            error = f"unknown {what} id (not in {file})"
        else:
            error = f"not one of {list(cats)}"
        checks.append(pa.Check.isin(list(cats), error=error))
    if fld.kind in _LIST_SOURCE:
        source, what = _LIST_SOURCE[fld.kind]
        known = frozenset(_id_source(design, source))
        checks.append(
            pa.Check(
                lambda v, known=known: all(x in known for x in v),
                element_wise=True,
                error=f"unknown {what} id (not in {source}.yaml)",
            )
        )
        checks.append(
            pa.Check(
                lambda v: len(set(v)) == len(v), element_wise=True, error=f"a {what} listed twice"
            )
        )
        if fld.required:
            checks.append(
                pa.Check(lambda v: len(v) > 0, element_wise=True, error="required but missing")
            )
    if fld.kind == "interval_list":
        checks.append(
            pa.Check(
                lambda v: all(e is None or b <= e for b, e in v),
                element_wise=True,
                error="an interval ends before it starts",
            )
        )
    return checks


@dataclass(frozen=True)
class _Rule:
    """A cross-field rule: ``ok(frame)`` is True where the row passes; ``field`` is named."""

    field: str
    ok: Callable[[pd.DataFrame], pd.Series]
    message: Callable[[pd.Series], str]


def _normalise(record: Mapping[str, Any]) -> dict[str, Any]:
    """A frame row as plain Python: dates as :class:`datetime.date`, missing as None."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, tuple) or v is None:
            out[k] = v
        elif isinstance(v, pd.Timestamp):
            out[k] = v.date()
        elif pd.isna(v):
            out[k] = None
        else:
            out[k] = v
    return out


Problem = Callable[[dict[str, Any]], "str | None"]


def _rules(design: Design, meta: ExportMeta) -> list[_Rule]:
    """Every cross-field rule of the contract (see the module docstring)."""
    fields = design.export_contract.fields
    dates = [n for n, f in fields.items() if f.kind == "date"]
    cut = meta.data_cut
    start = design.trial.study_start
    arms = {a.id: a for a in design.arms}
    rules: list[_Rule] = []
    cache: dict[str, Any] = {}

    def records(df: pd.DataFrame) -> list[dict[str, Any]]:
        ref = cache.get("frame")
        if ref is None or ref() is not df:  # the rules share one conversion of the frame
            cache["frame"] = weakref.ref(df)  # weak: the frame must not outlive its use
            cache["records"] = [_normalise(r) for r in df.to_dict("records")]
        return cache["records"]

    def add(field: str, problem: Problem) -> None:
        def ok(df: pd.DataFrame) -> pd.Series:
            return pd.Series([problem(r) is None for r in records(df)], index=df.index)

        def message(row: pd.Series) -> str:
            return problem(_normalise(row.to_dict())) or ""

        rules.append(_Rule(field, ok, message))

    def randomisation(r: dict[str, Any]) -> str | None:
        d = r["randomisation_date"]
        if d is not None and d < start:
            return f"before the study start {start} (trial.yaml)"
        if d is not None and d > cut:
            return f"after the data cut {cut}"
        return None

    add("randomisation_date", randomisation)
    for name in dates:
        if name == "randomisation_date":
            continue

        def window(r: dict[str, Any], name: str = name) -> str | None:
            d, rand = r[name], r["randomisation_date"]
            if d is None:
                return None
            if rand is not None and d < rand:
                return f"before randomisation_date {rand}"
            if d > cut:
                return f"after the data cut {cut}"
            return None

        add(name, window)

    def assigned(r: dict[str, Any]) -> str | None:
        t, pos = r["assigned_trait"], r["positive_traits"]
        if t is None or pos is None or t in pos:
            return None
        return f"assigned trait {t!r} is not among positive_traits {list(pos)}"

    add("assigned_trait", assigned)

    def arm(r: dict[str, Any]) -> str | None:
        a, t, ag = r["arm"], r["assigned_trait"], r["age_group"]
        if a is None or a not in arms:
            return None
        if t is not None and arms[a].trait != t:
            return f"arm {a!r} belongs to trait {arms[a].trait!r}, not assigned_trait {t!r}"
        if ag is not None and ag not in design.arm_age_groups(arms[a]):
            return f"arm {a!r} does not admit age group {ag!r}"
        return None

    add("arm", arm)

    def icu(r: dict[str, Any]) -> str | None:
        i, h = r["icu_discharge_date"], r["hospital_discharge_date"]
        if i is not None and h is not None and i > h:
            return f"after hospital_discharge_date {h}"
        return None

    add("icu_discharge_date", icu)

    def death(r: dict[str, Any]) -> str | None:
        d = r["death_date"]
        if d is None:
            return None
        for name in ("hospital_discharge_date", "icu_discharge_date"):
            other = r[name]
            if other is not None and d < other:
                return f"before {name} {other} (a discharge is alive)"
        return None

    add("death_date", death)
    skip = {"randomisation_date", "death_date", "icu_discharge_date", "hospital_discharge_date"}
    for name in dates:
        if name in skip:
            continue

        def after_death(r: dict[str, Any], name: str = name) -> str | None:
            d, died = r[name], r["death_date"]
            if d is not None and died is not None and d > died:
                return f"after death_date {died}"
            return None

        add(name, after_death)

    def withdrawal_scope(r: dict[str, Any]) -> str | None:
        if r["withdrawal_date"] is not None and r["withdrawal_scope"] is None:
            return "required when withdrawal_date is given"
        return None

    def withdrawal_date(r: dict[str, Any]) -> str | None:
        if r["withdrawal_date"] is None and r["withdrawal_scope"] is not None:
            return "required when withdrawal_scope is given"
        return None

    add("withdrawal_scope", withdrawal_scope)
    add("withdrawal_date", withdrawal_date)
    for name, fld in fields.items():
        if fld.kind != "interval_list":
            continue

        def intervals(r: dict[str, Any], name: str = name) -> str | None:
            values = r[name]
            if values is None:
                return None
            rand, died, home = (
                r["randomisation_date"],
                r["death_date"],
                r["hospital_discharge_date"],
            )
            for b, e in values:
                text = f"{b}/{'' if e is None else e}"
                last = b if e is None else e
                if rand is not None and b < rand:
                    return f"interval {text} starts before randomisation_date {rand}"
                if last > cut:
                    return f"interval {text} runs after the data cut {cut}"
                if died is not None and last > died:
                    return f"interval {text} runs after death_date {died}"
                if home is not None and last > home:
                    return f"interval {text} runs after hospital_discharge_date {home}"
                if e is None and (died is not None or home is not None):
                    what = "died" if died is not None else "was discharged"
                    return f"interval {text} is open-ended but the patient {what}"
            return None

        add(name, intervals)
    for name, fld in fields.items():
        if fld.severity_of is None:
            continue

        def severity(r: dict[str, Any], name: str = name, of: str = fld.severity_of) -> str | None:
            ag = r["age_group"]
            if r[name] is None or ag is None or ag == of:
                return None
            return f"the {of} severity score given for a patient of age group {ag!r}"

        add(name, severity)
    for name, fld in fields.items():
        if not fld.unique:
            continue

        def first(df: pd.DataFrame, name: str = name) -> pd.Series:
            return df[name].isna() | ~df[name].duplicated(keep="first")

        def repeat(row: pd.Series, name: str = name) -> str:
            return f"{row[name]!r} repeats an earlier row (only the first is kept valid)"

        rules.append(_Rule(name, first, repeat))
    return rules


def contract_schema(design: Design, meta: ExportMeta) -> tuple[pa.DataFrameSchema, list[_Rule]]:
    """The pandera schema of ``patients.csv`` (typed), and its cross-field rules in order.

    The schema's DataFrame checks are the rules, in the same order, so that a failure's
    ``check_number`` is the index of its rule.
    """
    columns: dict[str, pa.Column] = {
        "line": pa.Column("int64"),
        "row": pa.Column("int64"),
    }
    for name, fld in design.export_contract.fields.items():
        lists = fld.kind in _LIST_SOURCE or fld.kind == "interval_list"
        columns[name] = pa.Column(
            DTYPES[fld.kind],
            checks=_column_checks(design, name, fld),
            nullable=lists or not fld.required,
            coerce=False,
        )
    rules = _rules(design, meta)
    checks = [pa.Check(r.ok, name=f"rule_{i}", error=f"rule {i}") for i, r in enumerate(rules)]
    return pa.DataFrameSchema(columns, checks=checks, strict=True, ordered=False), rules


# ----------------------------------------------------------------------------- parsing
def _text(value: Any) -> str:
    """One raw cell as stripped text ("" when empty or missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    return "" if text in _MISSING_TEXT else text


def parse_date(text: str) -> dt.date | None:
    """An ISO 8601 calendar date ``YYYY-MM-DD`` (:func:`palette_core.isotime.parse_iso_date`);
    ``ValueError`` otherwise, ``None`` for an empty cell (no date recorded)."""
    if text == "":
        return None
    return parse_iso_date(text)


def parse_intervals(text: str) -> tuple[Interval, ...]:
    """``start/end;start/`` -> ``((start, end), (start, None))``; ``ValueError`` if malformed."""
    if text == "":
        return ()
    out = []
    for part in text.split(LIST_SEP):
        part = part.strip()
        pieces = part.split(INTERVAL_SEP)
        if len(pieces) != 2 or pieces[0].strip() == "":
            raise ValueError(f"malformed interval {part!r} (expected start/end or start/)")
        try:
            start = parse_date(pieces[0].strip())
            end = parse_date(pieces[1].strip())
        except ValueError as exc:
            raise ValueError(f"malformed interval {part!r}: {exc}") from None
        assert start is not None
        out.append((start, end))
    return tuple(out)


def _parse_list(text: str) -> tuple[str, ...]:
    if text == "":
        return ()
    items = tuple(x.strip() for x in text.split(LIST_SEP))
    if any(x == "" for x in items):
        raise ValueError(f"empty entry in the {LIST_SEP!r}-separated list")
    return items


def _parse_value(text: str, kind: str) -> Any:
    """Parse one cell; raise ``ValueError`` with a reason when it cannot be parsed."""
    if kind in ("str", "category"):
        return pd.NA if text == "" else text
    if kind == "date":
        d = parse_date(text)
        return pd.NaT if d is None else pd.Timestamp(d)
    if kind == "float":
        if text == "":
            return np.nan
        try:
            x = float(text)
        except ValueError:
            raise ValueError("not a number") from None
        if not math.isfinite(x):
            raise ValueError("not a finite number")
        return x
    if kind in _LIST_SOURCE:
        return _parse_list(text)
    if kind == "interval_list":
        return parse_intervals(text)
    raise AssertionError(kind)  # pragma: no cover - the schema's Literal forbids it


_EMPTY = {"str": pd.NA, "category": pd.NA, "date": pd.NaT, "float": np.nan}


def _typed_column(values: list[Any], kind: str, index: pd.Index) -> pd.Series:
    if kind == "date":
        return pd.Series(values, index=index, dtype="datetime64[ns]")
    if kind in DTYPES and DTYPES[kind] == "object":
        out = pd.Series([None] * len(values), index=index, dtype=object)
        for i, v in enumerate(values):
            out.iloc[i] = v
        return out
    return pd.Series(values, index=index, dtype=DTYPES[kind])


# ----------------------------------------------------------------------------- metadata
def parse_meta(raw: Any, design: Design, label: str = META_FILE) -> ExportMeta:
    """Validate export metadata (a mapping, or an :class:`ExportMeta`) against the contract.

    Raises
    ------
    ExportFileError
        Not a mapping, an unknown or missing entry, a value of the wrong kind, or a trial id
        other than ``trial.yaml``'s.
    """
    contract = design.export_contract.metadata
    if isinstance(raw, ExportMeta):
        raw = {k: getattr(raw, k) for k in EXPORT_META_FIELDS}
        raw = {k: v for k, v in raw.items() if v is not None}
    if not isinstance(raw, Mapping):
        raise ExportFileError(label, None, f"expected a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in contract:
            raise ExportFileError(
                label,
                str(key),
                f"unknown metadata entry (export_contract.yaml has {', '.join(contract)})",
            )
    values: dict[str, Any] = {}
    for name, fld in contract.items():
        value = raw.get(name)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if fld.required:
                raise ExportFileError(label, name, "required metadata entry missing")
            values[name] = None
            continue
        if fld.kind == "date":
            if isinstance(value, dt.datetime) or not isinstance(value, dt.date | str):
                raise ExportFileError(label, name, f"{value!r} is not a calendar date")
            if isinstance(value, str):
                try:
                    value = parse_date(value.strip())
                except ValueError as exc:
                    raise ExportFileError(label, name, f"{value!r}: {exc}") from None
        elif not isinstance(value, str):
            raise ExportFileError(label, name, f"{value!r} is not text")
        values[name] = value
    if values["trial_id"] != design.trial.registry_id:
        raise ExportFileError(
            label,
            "trial_id",
            f"export of trial {values['trial_id']!r}, but the design is trial "
            f"{design.trial.registry_id!r} (trial.yaml)",
        )
    return ExportMeta(**values)


# ----------------------------------------------------------------------------- validation
def _check_columns(columns: Sequence[Any], design: Design, label: str) -> None:
    seen: set[str] = set()
    fields = design.export_contract.fields
    for c in columns:
        if c in seen:
            raise ExportFileError(label, str(c), "column repeated")
        seen.add(c)
        if c not in fields:
            raise ExportFileError(
                label,
                str(c),
                "unknown column; the contract is data/design/export_contract.yaml",
            )
    for name in fields:
        if name not in seen:
            raise ExportFileError(
                label,
                name,
                "column missing (every column of the contract must be present, even if empty)",
            )


def _failure_cases(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """pandera's failure cases of a lazy validation (empty when the frame passes)."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return exc.failure_cases
    return pd.DataFrame(columns=["schema_context", "column", "check", "check_number", "index"])


def validate_export(
    raw: pd.DataFrame,
    meta: ExportMeta | Mapping[str, Any],
    design: Design,
    source: str = "<frame>",
    *,
    lines: Sequence[int] | None = None,
) -> ExportValidation:
    """Parse and validate the rows of an export (raw text, as read from ``patients.csv``).

    Parameters
    ----------
    raw
        One row per patient, one column per field of the contract; cells are text (empty for
        none). Dates and numbers given as Python objects are accepted as their text.
    meta
        The export's metadata (see :func:`parse_meta`).
    design
        The design whose ``export_contract.yaml`` is enforced.
    source
        Where the rows come from, for messages.
    lines
        The CSV line of each row (default: row ``i`` is line ``i + 2``).

    Raises
    ------
    ExportFileError
        For problems with the table as a whole (columns, metadata). Row problems never raise.
    """
    meta = parse_meta(meta, design, f"{source} (metadata)")
    _check_columns(list(raw.columns), design, source)
    raw = raw.reset_index(drop=True)
    n = len(raw)
    if lines is None:
        lines = [i + 2 for i in range(n)]
    if len(lines) != n:
        raise ExportFileError(source, None, f"{len(lines)} line numbers for {n} rows")
    index = pd.RangeIndex(n)
    fields = design.export_contract.fields
    order = {name: i for i, name in enumerate(fields)}
    text = {name: [_text(v) for v in raw[name]] for name in fields}
    bad_ids: list[tuple[int, str, str]] = []
    for name in ID_FIELDS:  # one canonical form, so that look-alike ids are the same id
        for i, t in enumerate(text[name]):
            if t:
                canonical = normalise_id(t)
                why = id_problem(canonical)
                if why is None:
                    text[name][i] = canonical
                else:
                    bad_ids.append((i, name, why))
    ids = [t if t else None for t in text["patient_id"]]
    problems: list[dict[str, Any]] = []

    def report(i: int, name: str, message: str) -> None:
        problems.append(
            {
                "line": int(lines[i]),
                "row": i,
                "patient_id": ids[i],
                "field": name,
                "value": text[name][i],
                "message": message,
            }
        )

    frame = pd.DataFrame(
        {"line": np.asarray(lines, dtype=np.int64), "row": np.arange(n, dtype=np.int64)},
        index=index,
    )
    for i, name, why in bad_ids:
        report(i, name, why)
        text[name][i] = ""
    for name, fld in fields.items():
        values: list[Any] = []
        for i, cell in enumerate(text[name]):
            try:
                values.append(_parse_value(cell, fld.kind))
            except ValueError as exc:
                report(i, name, str(exc))
                values.append(_EMPTY.get(fld.kind))
        frame[name] = _typed_column(values, fld.kind, index)
    schema, rules = contract_schema(design, meta)
    unparsed = {(p["row"], p["field"]) for p in problems}  # reported once, as unparseable
    cases = _failure_cases(schema, frame)
    column_cases = cases[cases["schema_context"] == "Column"]
    to_clear: list[tuple[int, str]] = []  # values failing their own column's checks
    for col, idx, check in zip(
        column_cases["column"], column_cases["index"], column_cases["check"], strict=True
    ):
        if idx is None or pd.isna(idx):  # a dtype failure of a whole column: a bug here
            raise AssertionError(f"column {col!r}: {check}")
        i = int(idx)
        if (i, col) in unparsed:
            continue
        message = "required but missing" if check == "not_nullable" else str(check)
        report(i, col, message)
        if message != "required but missing":
            to_clear.append((i, col))
    frame_cases = cases[cases["schema_context"] == "DataFrameSchema"]
    done: set[tuple[int, int]] = set()
    for num, idx in zip(frame_cases["check_number"], frame_cases["index"], strict=True):
        if num is None or pd.isna(num) or idx is None or pd.isna(idx):
            raise AssertionError(f"unexpected schema failure: {frame_cases}")
        key = (int(num), int(idx))
        if key in done:
            continue
        done.add(key)
        rule = rules[key[0]]
        report(key[1], rule.field, rule.message(frame.loc[key[1]]))
    for i, col in to_clear:  # after the rules' messages, which read the values
        kind = fields[col].kind
        frame.at[i, col] = _EMPTY.get(kind) if kind in _EMPTY else None
    errors = pd.DataFrame(problems, columns=list(ERROR_COLUMNS))
    if len(errors):
        errors["_order"] = errors["field"].map(order)
        errors = errors.sort_values(["row", "_order"], kind="stable").drop(columns="_order")
    errors = errors.reset_index(drop=True)
    errors["line"] = errors["line"].astype("int64")
    errors["row"] = errors["row"].astype("int64")
    errors["patient_id"] = errors["patient_id"].astype("string")
    for col in ("field", "value", "message"):
        errors[col] = errors[col].astype(object)
    per_row = [""] * n
    for i, grp in errors.groupby("row", sort=True):
        per_row[int(i)] = "; ".join(
            f"{f}: {m}" for f, m in zip(grp["field"], grp["message"], strict=True)
        )
    frame[RECORD_STATUS] = pd.Series(
        ["invalid" if e else "valid" for e in per_row], index=index, dtype="string"
    )
    frame[RECORD_ERRORS] = pd.Series(per_row, index=index, dtype="string")
    return ExportValidation(meta=meta, frame=frame, errors=errors, source=source)


# ----------------------------------------------------------------------------- files
def _read_csv(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """Read ``patients.csv`` as text, keeping the line on which each record starts
    (:func:`palette_core.tableio.read_csv_records`); a record whose number of values differs
    from the header's makes the file unreadable (it would shift columns)."""

    def fail(message: str) -> ExportFileError:
        return ExportFileError(path, None, message)

    table = read_csv_records(path, fail)
    width = len(table.header)
    for record, line in zip(table.records, table.lines, strict=True):
        if len(record) != width:
            raise fail(f"line {line}: {len(record)} values but the header has {width} columns")
    raw = pd.DataFrame([list(r) for r in table.records], columns=list(table.header), dtype=object)
    if not table.records:
        raw = pd.DataFrame({c: pd.Series([], dtype=object) for c in table.header})
    return raw, list(table.lines)


def read_meta(path: str | Path, design: Design) -> ExportMeta:
    """Read and validate ``export.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise ExportFileError(path, None, "file not found")
    try:
        raw = read_yaml(path, str(path))
    except DesignError as exc:
        raise ExportFileError(path, exc.field, exc.message) from None
    return parse_meta(raw, design, str(path))


def read_export(path: str | Path, design: Design) -> ExportValidation:
    """Read an export folder (``export.yaml`` + ``patients.csv``) and validate it.

    Raises
    ------
    ExportFileError
        A missing folder or file, unreadable metadata or CSV, an unknown, repeated or missing
        column, or an export of another trial. Row problems never raise (see
        :func:`validate_export`).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ExportFileError(folder, None, "export folder not found")
    meta = read_meta(folder / META_FILE, design)
    csv_path = folder / PATIENTS_FILE
    raw, lines = _read_csv(csv_path)
    _check_columns(list(raw.columns), design, str(csv_path))
    result = validate_export(raw, meta, design, source=str(csv_path), lines=lines)
    return ExportValidation(
        meta=result.meta, frame=result.frame, errors=result.errors, source=str(folder)
    )


def format_intervals(intervals: Sequence[Interval]) -> str:
    """The CSV text of an interval list (the inverse of :func:`parse_intervals`)."""
    return LIST_SEP.join(f"{b}{INTERVAL_SEP}{'' if e is None else e}" for b, e in intervals)


__all__ = [
    "ERROR_COLUMNS",
    "ExportMeta",
    "ExportValidation",
    "contract_schema",
    "export_columns",
    "format_intervals",
    "parse_date",
    "parse_intervals",
    "parse_meta",
    "read_export",
    "read_meta",
    "validate_export",
]
