"""Derived outcomes: from a validated data export to the model's cell counts.

:func:`derive_outcomes` turns every row of an :class:`~palette_core.exports.contract.ExportValidation`
into the outcomes of ``proposed/outcomes.yaml``, a completeness status and a calendar era;
:func:`cell_counts` and :func:`information` then give what
:func:`palette_core.analysis.models.model_data` and :func:`palette_core.analysis.decisions.decide` need.

Design choices
--------------
* **Counts in = counts out.** One output row per export row, same order; an invalid row is
  kept with status ``invalid`` and its problems as the reason. :func:`completeness_table`
  lists every status, zeros included, so its counts always sum to the number of rows.
* **Follow-up days** (``proposed/interim_analysis.yaml``): day 1 is the randomisation date and
  day ``d`` is ``randomisation_date + (d - 1)`` days, so day 28 is 27 days after
  randomisation. A day is a day with organ support if any support of any type ran on any part
  of it (both ends of an interval are inclusive); two supports on the same day count once.
* **OSFD** (:func:`osfd`): death on or before day 28 gives ``death_value`` (-1); otherwise
  the number of days 1..28 without support. Days after hospital discharge are support-free
  (alive and discharged = support-free from then on); an open-ended interval runs to the date
  up to which the record is complete (the data cut).
* **Binary outcomes**: the event of each binary outcome is dated by the export field that
  names it (``outcome:`` in ``export_contract.yaml``: ``death_date`` for 28-day mortality, the
  safety event dates for the safety outcomes); the outcome is 1 when that date falls on days
  1..28. No outcome name is written in this module.
* **Completeness** (``completeness.rule: vital_status_at_day_28``). For a valid row, with the
  record complete up to the data cut, or up to the withdrawal date for a withdrawal of
  follow-up (``analyse_if_complete``: nothing later is used):

  - ``withdrawn_all_data``: consent to any use of the data withdrawn (``exclude_and_count``);
    counted, never analysed;
  - ``pending``: day 28 is after the data cut, *whatever has happened* (a death included):
    an interim uses only patients who have had the chance to reach day 28, so that early
    deaths among recently randomised patients, whose survivors are still pending, do not
    weigh more than the survivors;
  - ``complete``: day 28 is on or before the data cut and the patient died on or before day
    28, or is known alive on day 28 (a
    ``last_known_alive_date``, a discharge or a death on or after day 28) with organ support
    recorded to day 28 or to hospital discharge;
  - ``missing``: not complete although day 28 has passed, or follow-up withdrawn before the
    outcome was complete;
  - ``invalid``: the export row is invalid (or its era is not defined).

  Every outcome is ``<NA>`` unless the status is ``complete``; a withdrawal from treatment
  changes nothing (treatment policy).
* **Eras** (``eras``): ``floor((randomisation_date - study_start).days / length_days)``; a
  negative era makes the row invalid (the export already rejects a randomisation before the
  study start).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from palette_core.analysis.models import BINARY_COLUMNS, ORDINAL_COLUMNS
from palette_core.design.loader import Design
from palette_core.errors import ModelDataError
from palette_core.exports.contract import ExportValidation, Interval

STATUS = ("complete", "pending", "missing", "withdrawn_all_data", "invalid")
IDENTITY_COLUMNS = (
    "line",
    "patient_id",
    "site_id",
    "country",
    "assigned_trait",
    "arm",
    "age_group",
    "randomisation_date",
)

#: The export fields that decide a row's completeness status.
STATUS_FIELDS = (
    "death_date",
    "hospital_discharge_date",
    "icu_discharge_date",
    "last_known_alive_date",
    "withdrawal_date",
    "withdrawal_scope",
)


# ----------------------------------------------------------------------------- one patient
def follow_up_day(randomisation_date: dt.date, day: int) -> dt.date:
    """The calendar date of follow-up day ``day`` (day 1 = the randomisation date)."""
    return randomisation_date + dt.timedelta(days=day - 1)


def support_days(
    randomisation_date: dt.date,
    intervals: Iterable[Interval],
    *,
    until: dt.date,
    data_cut: dt.date,
    window_days: int = 28,
) -> int:
    """Days ``1 .. window_days`` on or before ``until`` covered by any support interval.

    An open-ended interval (``end=None``) runs to ``data_cut``. Overlapping intervals, of one
    type or of several, count each day once.
    """
    last = min(until, follow_up_day(randomisation_date, window_days))
    covered: set[dt.date] = set()
    for start, end in intervals:
        stop = min(data_cut if end is None else end, last)
        day = max(start, randomisation_date)
        while day <= stop:
            covered.add(day)
            day += dt.timedelta(days=1)
    return len(covered)


def osfd(
    randomisation_date: dt.date,
    death_date: dt.date | None,
    hospital_discharge_date: dt.date | None,
    intervals: Iterable[Interval],
    data_cut: dt.date,
    window_days: int = 28,
    death_value: int = -1,
) -> int | None:
    """Organ-support-free days to day ``window_days`` for one patient.

    Parameters
    ----------
    randomisation_date
        Day 1 of follow-up.
    death_date, hospital_discharge_date
        ``None`` when they did not happen (by ``data_cut``).
    intervals
        Every support interval of every type, ``(start, end)`` with both ends inclusive and
        ``end=None`` for a support still running at ``data_cut``.
    data_cut
        The date up to which the record is complete.
    window_days, death_value
        From ``proposed/interim_analysis.yaml`` and ``proposed/outcomes.yaml`` (28 and -1).

    Returns
    -------
    int or None
        ``death_value`` if the patient died on or before the last day; otherwise the number
        of support-free days (days after hospital discharge are support-free); ``None`` when
        the organ-support record does not reach the last day or the discharge (the record
        ends at ``data_cut`` before either). Vital status at the last day is not checked here
        (see :func:`derive_outcomes`).

    Examples
    --------
    >>> d = dt.date(2027, 3, 1)
    >>> osfd(d, dt.date(2027, 3, 3), None, [], data_cut=dt.date(2027, 4, 30))
    -1
    >>> osfd(d, None, dt.date(2027, 3, 10), [(d, dt.date(2027, 3, 4))], dt.date(2027, 4, 30))
    24
    """
    last = follow_up_day(randomisation_date, window_days)
    if death_date is not None and death_date <= last:
        return death_value
    recorded_to = last if hospital_discharge_date is None else min(last, hospital_discharge_date)
    if data_cut < recorded_to:
        return None
    used = support_days(
        randomisation_date,
        intervals,
        until=recorded_to,
        data_cut=data_cut,
        window_days=window_days,
    )
    return window_days - used


# ----------------------------------------------------------------------------- the export
def _date(value: Any) -> dt.date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def _support_fields(design: Design) -> tuple[str, ...]:
    return tuple(n for n, f in design.export_contract.fields.items() if f.organ_support is not None)


def _event_fields(design: Design) -> dict[str, str]:
    """Binary outcome id -> the export date field recording its event."""
    return {f.outcome: n for n, f in design.export_contract.fields.items() if f.outcome is not None}


def _ordinal_outcome(design: Design):
    """The ordinal outcome derived as organ-support-free days (osfd28)."""
    return next(o for o in design.outcomes.outcomes if o.type == "ordinal" and o.organ_support)


def _status(
    r: dict[str, Any], day28: dt.date, data_cut: dt.date
) -> tuple[str, str, dt.date | None]:
    """(status, reason, date the record is complete to) of one valid row."""
    scope = r["withdrawal_scope"]
    withdrawn = r["withdrawal_date"]
    if scope == "all_data":
        return (
            "withdrawn_all_data",
            f"consent to any use of the data withdrawn on {withdrawn}",
            None,
        )
    known_to = data_cut
    if scope == "follow_up":
        known_to = min(data_cut, withdrawn)

    def known(d: dt.date | None) -> dt.date | None:
        return d if d is not None and d <= known_to else None

    death = known(r["death_date"])
    home = known(r["hospital_discharge_date"])
    died_by_day28 = death is not None and death <= day28
    if day28 > data_cut:  # not yet had the chance to complete: pending, even if dead
        if scope == "follow_up" and withdrawn < day28 and not died_by_day28:
            return (
                "missing",
                f"follow-up withdrawn on {withdrawn}, before day 28 ({day28})",
                known_to,
            )
        return "pending", f"day 28 ({day28}) is after the data cut ({data_cut})", known_to
    if died_by_day28:
        return "complete", f"died on {death}, on or before day 28 ({day28})", known_to
    alive_dates = [
        known(r[n])
        for n in ("last_known_alive_date", "hospital_discharge_date", "icu_discharge_date")
    ]
    alive = any(d is not None and d >= day28 for d in alive_dates) or death is not None
    recorded = known_to >= (day28 if home is None else min(day28, home))
    if alive and recorded:
        return "complete", f"known alive on day 28 ({day28})", known_to
    if scope == "follow_up" and withdrawn < day28:
        return "missing", f"follow-up withdrawn on {withdrawn}, before day 28 ({day28})", known_to
    if day28 > data_cut:
        return "pending", f"day 28 ({day28}) is after the data cut ({data_cut})", known_to
    if not alive:
        return "missing", f"vital status on day 28 ({day28}) unknown", known_to
    return "missing", f"organ support not recorded to day 28 ({day28})", known_to


def derive_outcomes(validation: ExportValidation, design: Design) -> pd.DataFrame:
    """Derived outcomes, completeness and era for every row of a validated export.

    Returns
    -------
    pandas.DataFrame
        One row per export row, same order and index. Columns: ``line, patient_id, site_id,
        country, assigned_trait, arm, age_group, randomisation_date, era, day28_date, status,
        status_reason``, the severity scores of the export (``Float64``, one per field with
        ``severity_of`` in the contract, ``<NA>`` where empty), one ``Int64`` column per outcome of ``proposed/outcomes.yaml``
        (``<NA>`` unless complete), ``support_days`` (days 1..28 with organ support, ``<NA>``
        unless complete) and ``open_label`` (any trial substance given open-label; ``<NA>``
        where the export value was invalid).
    """
    frame = validation.frame
    data_cut = validation.meta.data_cut
    ia = design.interim_analysis
    window = ia.follow_up.window_days
    study_start = design.trial.study_start
    era_days = ia.eras.length_days
    ordinal = _ordinal_outcome(design)
    death_value = ordinal.death_value if ordinal.death_value is not None else -1
    supports = _support_fields(design)
    events = _event_fields(design)
    outcome_ids = [o.id for o in design.outcomes.outcomes]
    dates = {n for n, f in design.export_contract.fields.items() if f.kind == "date"}
    n = len(frame)
    out: dict[str, list[Any]] = {
        "era": [],
        "day28_date": [],
        "status": [],
        "status_reason": [],
        "support_days": [],
        "open_label": [],
    }
    values: dict[str, list[Any]] = {o: [] for o in outcome_ids}
    for r in frame.to_dict("records"):
        rand = _date(r["randomisation_date"])
        day28 = follow_up_day(rand, window) if rand is not None else None
        era = None if rand is None else (rand - study_start).days // era_days
        labels = r["open_label_substances"]
        out["open_label"].append(None if labels is None else len(labels) > 0)
        out["day28_date"].append(day28)
        out["era"].append(era)
        status, reason, known_to = "invalid", str(r["record_errors"]), None
        if r["record_status"] == "valid":
            assert rand is not None and day28 is not None  # required and valid
            if era is not None and era < 0:
                reason = f"randomised before the study start {study_start} (era {era})"
            else:
                rec = {
                    k: _date(r[k]) if k in dates else (None if _missing(r[k]) else r[k])
                    for k in STATUS_FIELDS
                }
                status, reason, known_to = _status(rec, day28, data_cut)
        out["status"].append(status)
        out["status_reason"].append(reason)
        if status != "complete":
            out["support_days"].append(None)
            for o in outcome_ids:
                values[o].append(None)
            continue
        assert known_to is not None
        death = _date(r["death_date"])
        death = death if death is not None and death <= known_to else None
        home = _date(r["hospital_discharge_date"])
        home = home if home is not None and home <= known_to else None
        intervals = [iv for f in supports for iv in r[f]]
        until = follow_up_day(rand, window)
        if death is not None:
            until = min(until, death)
        if home is not None:
            until = min(until, home)
        out["support_days"].append(
            support_days(rand, intervals, until=until, data_cut=known_to, window_days=window)
        )
        for o in design.outcomes.outcomes:
            if o.id == ordinal.id:
                values[o.id].append(
                    osfd(rand, death, home, intervals, known_to, window, death_value)
                )
            else:
                d = _date(r[events[o.id]])
                values[o.id].append(int(d is not None and d <= min(day28, known_to)))
    result = pd.DataFrame(index=frame.index)
    for col in IDENTITY_COLUMNS:
        result[col] = frame[col]
    for col in severity_fields(design):  # baseline: kept for every status, NA where empty
        result[col] = frame[col].astype("Float64")
    result["era"] = pd.Series(out["era"], index=frame.index, dtype="Int64")
    result["day28_date"] = pd.Series(
        [pd.NaT if d is None else pd.Timestamp(d) for d in out["day28_date"]],
        index=frame.index,
        dtype="datetime64[ns]",
    )
    result["status"] = pd.Series(out["status"], index=frame.index, dtype="string")
    result["status_reason"] = pd.Series(out["status_reason"], index=frame.index, dtype="string")
    for o in outcome_ids:
        result[o] = pd.Series(values[o], index=frame.index, dtype="Int64")
    result["support_days"] = pd.Series(out["support_days"], index=frame.index, dtype="Int64")
    result["open_label"] = pd.Series(out["open_label"], index=frame.index, dtype="boolean")
    assert len(result) == n
    return result


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, tuple) and bool(pd.isna(value)))


# ----------------------------------------------------------------------------- summaries
def completeness_table(derived: pd.DataFrame) -> pd.DataFrame:
    """Rows by completeness status: columns ``status, n`` for every status, zeros kept.

    ``n`` sums to the number of rows of ``derived``; an unknown status raises ``ValueError``
    (it would otherwise be left out of the table).
    """
    unknown = sorted(set(derived["status"].astype(str)) - set(STATUS))
    if unknown:
        raise ValueError(f"unknown status(es) {unknown}; expected one of {STATUS}")
    counts = derived["status"].astype(str).value_counts()
    return pd.DataFrame(
        {"status": list(STATUS), "n": [int(counts.get(st, 0)) for st in STATUS]}
    ).astype({"n": "int64"})


def _complete(derived: pd.DataFrame) -> pd.DataFrame:
    return derived[derived["status"] == "complete"]


def cell_counts(derived: pd.DataFrame, outcome: str, design: Design, n_eras: int) -> pd.DataFrame:
    """Tidy cell counts of one outcome for :func:`palette_core.analysis.models.model_data`.

    Only rows with a complete outcome count. Binary outcomes: columns ``trait, age_group, arm,
    era, events, patients``; ordinal: ``trait, age_group, arm, era, category, count`` (one row
    per observed category). Cells without patients are left out (``model_data`` gives them
    zero counts). ``trait`` is the assigned trait.

    Raises
    ------
    ModelDataError
        An unknown outcome, or a complete row in an era ``>= n_eras``.
    """
    try:
        o = design.outcome(outcome)
    except KeyError:
        raise ModelDataError(f"unknown outcome {outcome!r}", column="outcome") from None
    if not isinstance(n_eras, int) or isinstance(n_eras, bool) or n_eras < 1:
        raise ModelDataError(f"n_eras must be an integer >= 1, not {n_eras!r}", "n_eras")
    rows = _complete(derived)
    if rows[outcome].isna().any():
        i = int(np.flatnonzero(rows[outcome].isna().to_numpy())[0])
        raise ModelDataError(
            f"complete row without a value of {outcome!r}", column=outcome, row=int(rows.index[i])
        )
    late = rows["era"] >= n_eras
    if late.any():
        i = rows.index[late.to_numpy()][0]
        raise ModelDataError(
            f"era {int(rows.at[i, 'era'])} >= n_eras = {n_eras} (line {int(rows.at[i, 'line'])})",
            column="era",
            row=int(i),
        )
    tidy = pd.DataFrame(
        {
            "trait": rows["assigned_trait"].astype(str).to_numpy(),
            "age_group": rows["age_group"].astype(str).to_numpy(),
            "arm": rows["arm"].astype(str).to_numpy(),
            "era": rows["era"].astype("int64").to_numpy(),
            "y": rows[outcome].astype("int64").to_numpy(),
        }
    )
    cell = ["trait", "age_group", "arm", "era"]
    if o.type == "binary":
        table = (
            tidy.groupby(cell, sort=True)["y"]
            .agg(events="sum", patients="size")
            .reset_index()
            .astype({"era": "int64", "events": "int64", "patients": "int64"})
        )
        return table[list(BINARY_COLUMNS)]
    table = (
        tidy.groupby([*cell, "y"], sort=True)
        .size()
        .rename("count")
        .reset_index()
        .rename(columns={"y": "category"})
        .astype({"era": "int64", "category": "int64", "count": "int64"})
    )
    return table[list(ORDINAL_COLUMNS)]


def severity_fields(design: Design) -> dict[str, str]:
    """The export's baseline severity fields: field name -> the age group it scores."""
    return {n: f.severity_of for n, f in design.export_contract.fields.items() if f.severity_of}


def covariate_table(
    derived: pd.DataFrame, outcome: str, design: Design, n_eras: int
) -> pd.DataFrame:
    """One row per patient with a complete ``outcome``: the input of the covariate-adjusted
    sensitivity analysis (:func:`palette_core.analysis.covariates.covariate_data`).

    Columns ``trait, age_group, arm, era, country, severity, y``: ``severity`` is the baseline
    score of the patient's age group (the contract field whose ``severity_of`` is that group:
    SOFA for adults, Phoenix for children), ``<NA>`` where the export left it empty (the
    analysis handles it, never this function); ``y`` is the outcome value. The rows are those
    of :func:`cell_counts` (same checks), patient by patient.
    """
    cell_counts(derived, outcome, design, n_eras)  # the same checks, raised the same way
    rows = _complete(derived)
    by_group = {ag: n for n, ag in severity_fields(design).items()}
    severity = pd.Series(pd.NA, index=rows.index, dtype="Float64")
    for ag, name in by_group.items():
        mine = (rows["age_group"].astype(str) == ag).to_numpy()
        severity[mine] = rows.loc[mine, name].astype("Float64")
    return pd.DataFrame(
        {
            "trait": rows["assigned_trait"].astype(str).to_numpy(),
            "age_group": rows["age_group"].astype(str).to_numpy(),
            "arm": rows["arm"].astype(str).to_numpy(),
            "era": rows["era"].astype("int64").to_numpy(),
            "country": rows["country"].astype(str).to_numpy(),
            "severity": severity.to_numpy(),
            "y": rows[outcome].astype("int64").to_numpy(),
        }
    ).astype({"severity": "Float64"})


#: Statuses of rows that count as allocated: valid and not withdrawn from all data use.
ALLOCATED = ("complete", "pending", "missing")


def allocated(derived: pd.DataFrame) -> pd.Series:
    """Boolean mask of the rows that count as allocated (status in :data:`ALLOCATED`)."""
    return derived["status"].astype(str).isin(ALLOCATED)


def information(
    derived: pd.DataFrame, design: Design, arms: Sequence[str] | None = None
) -> dict[str, dict[str, int]]:
    """Per arm: ``n_complete`` (complete day-28 outcomes) and ``n_allocated``.

    ``n_allocated`` counts every valid randomised row except those withdrawn from all data
    use (:func:`allocated`); ``n_complete`` the rows with status ``complete``. ``arms``
    defaults to every experimental arm of the design (usual care may be listed too); every
    arm appears, with zeros where it has no patients.
    """
    ids = [a.id for a in design.experimental_arms()] if arms is None else list(arms)
    n_alloc = derived.loc[allocated(derived), "arm"].astype(str).value_counts()
    n_comp = _complete(derived)["arm"].astype(str).value_counts()
    return {
        a: {"n_complete": int(n_comp.get(a, 0)), "n_allocated": int(n_alloc.get(a, 0))} for a in ids
    }


def n_eras_of(derived: pd.DataFrame) -> int:
    """The number of eras a model needs for these rows: ``max(era) + 1`` over complete rows."""
    eras = _complete(derived)["era"].dropna()
    return int(eras.max()) + 1 if len(eras) else 1


def outcome_columns(design: Design) -> Sequence[str]:
    """The outcome columns of :func:`derive_outcomes`, in the order of ``outcomes.yaml``."""
    return tuple(o.id for o in design.outcomes.outcomes)


__all__ = [
    "STATUS",
    "cell_counts",
    "completeness_table",
    "covariate_table",
    "derive_outcomes",
    "follow_up_day",
    "ALLOCATED",
    "allocated",
    "information",
    "n_eras_of",
    "osfd",
    "outcome_columns",
    "severity_fields",
    "support_days",
]
