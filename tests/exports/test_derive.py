"""Derived outcomes on hand-made timelines: OSFD, mortality, safety, completeness, cells."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from palette_core.analysis.models import model_data
from palette_core.errors import ModelDataError
from palette_core.exports.contract import export_columns, validate_export
from palette_core.exports.derive import (
    STATUS,
    cell_counts,
    completeness_table,
    derive_outcomes,
    follow_up_day,
    information,
    n_eras_of,
    osfd,
)

D1 = dt.date(2026, 6, 1)  # randomisation: day 1; day 28 is 2026-06-28
CUT = dt.date(2026, 9, 30)
META = {"trial_id": "NCT06381661", "export_id": "t", "data_cut": CUT.isoformat()}


def day(d: int, start: dt.date = D1) -> dt.date:
    return start + dt.timedelta(days=d - 1)


def iso(d: int, start: dt.date = D1) -> str:
    return day(d, start).isoformat()


def row(design, pid: str, **changes: str) -> dict[str, str]:
    """A valid export row: MALS, anakinra, adult, no support, known alive on day 28."""
    r = {c: "" for c in export_columns(design)}
    r.update(
        patient_id=pid,
        site_id="S1",
        country="FR",
        randomisation_date=D1.isoformat(),
        age_group="adult",
        positive_traits="mals",
        assigned_trait="mals",
        arm="mals_anakinra",
        last_known_alive_date=iso(28),
    )
    r.update(changes)
    return r


def derive(design, rows, cut: dt.date = CUT):
    v = validate_export(pd.DataFrame(rows), {**META, "data_cut": cut.isoformat()}, design)
    return v, derive_outcomes(v, design)


# ----------------------------------------------------------------------------- osfd()
def test_day_one_is_the_randomisation_date():
    assert follow_up_day(D1, 1) == D1
    assert follow_up_day(D1, 28) == dt.date(2026, 6, 28)


def test_death_on_day_3_scores_minus_one():
    assert osfd(D1, day(3), None, [(day(1), day(3))], CUT) == -1


def test_death_on_day_28_scores_minus_one_and_on_day_29_does_not():
    assert osfd(D1, day(28), None, [], CUT) == -1
    # died on day 29 after support on days 20..29: days 20..28 count, 28 - 9 = 19
    assert osfd(D1, day(29), None, [(day(20), day(29))], CUT) == 19


def test_discharge_on_day_10_after_4_days_of_ventilation_scores_24():
    # ventilated on days 1, 2, 3, 4; days 5..28 are free (discharged alive on day 10): 24
    assert osfd(D1, None, day(10), [(day(1), day(4))], CUT) == 24


def test_support_on_the_day_of_discharge_counts():
    assert osfd(D1, None, day(10), [(day(1), day(10))], CUT) == 18


def test_overlapping_supports_of_two_types_count_each_day_once():
    ventilation = [(day(1), day(5))]
    vasopressors = [(day(3), day(7))]  # days 3..5 overlap
    assert osfd(D1, None, None, ventilation + vasopressors, CUT) == 28 - 7
    # the same with an overlap within one type, and a one-day interval inside another
    assert osfd(D1, None, None, [(day(1), day(5)), (day(2), day(2)), (day(4), day(7))], CUT) == 21


def test_support_running_past_day_28_is_cut_at_day_28():
    assert osfd(D1, None, None, [(day(20), day(40))], CUT) == 28 - 9


def test_open_ended_support_runs_to_the_data_cut():
    # running from day 20 at a cut on day 35: days 20..28 with support
    assert osfd(D1, None, None, [(day(20), None)], day(35)) == 19
    # cut on day 24, patient in hospital: the record does not reach day 28
    assert osfd(D1, None, None, [(day(20), None)], day(24)) is None
    # discharged on day 12 before a cut on day 20: the record reaches the discharge
    assert osfd(D1, None, day(12), [(day(2), day(3))], day(20)) == 26


def test_no_support_and_alive_scores_28():
    assert osfd(D1, None, None, [], CUT) == 28


def test_window_and_death_value_come_from_the_arguments():
    assert osfd(D1, None, None, [(day(1), day(2))], CUT, window_days=21) == 19
    assert osfd(D1, day(2), None, [], CUT, death_value=-9) == -9


# ----------------------------------------------------------------------------- derive_outcomes
def test_hand_timelines_through_the_export(design):
    rows = [
        # died on day 3 after 3 days of ventilation
        row(
            design,
            "died3",
            death_date=iso(3),
            last_known_alive_date="",
            support_invasive_ventilation=f"{iso(1)}/{iso(3)}",
        ),
        # 4 days of ventilation, discharged alive on day 10, alive on day 28, infection day 5
        row(
            design,
            "home10",
            hospital_discharge_date=iso(10),
            support_invasive_ventilation=f"{iso(1)}/{iso(4)}",
            secondary_infection_date=iso(5),
        ),
        # two overlapping supports (days 1..5 and 3..7), bleeding on day 28
        row(
            design,
            "overlap",
            hospital_discharge_date=iso(15),
            support_invasive_ventilation=f"{iso(1)}/{iso(5)}",
            support_vasopressors=f"{iso(3)}/{iso(7)}",
            isth_major_bleeding_date=iso(28),
        ),
        # bleeding on day 29 is outside the window
        row(
            design,
            "bleed29",
            last_known_alive_date=iso(30),
            isth_major_bleeding_date=iso(29),
            open_label_substances="ufh",
        ),
    ]
    v, d = derive(design, rows)
    assert v.n_valid == 4
    assert list(d["status"]) == ["complete"] * 4
    assert list(d["osfd28"]) == [-1, 24, 21, 28]
    assert list(d["mortality28"]) == [1, 0, 0, 0]
    assert list(d["support_days"]) == [3, 4, 7, 0]
    assert list(d["secondary_infection"]) == [0, 1, 0, 0]
    assert list(d["isth_major_bleeding"]) == [0, 0, 1, 0]
    assert list(d["open_label"]) == [False, False, False, True]
    assert list(d["day28_date"]) == [pd.Timestamp("2026-06-28")] * 4
    assert str(d["osfd28"].dtype) == "Int64" and str(d["era"].dtype) == "Int64"


@pytest.mark.parametrize(
    ("changes", "status", "reason"),
    [
        # withdrawal from follow-up before day 28: no outcome
        (
            {
                "withdrawal_date": iso(15),
                "withdrawal_scope": "follow_up",
                "last_known_alive_date": "",
            },
            "missing",
            "withdrawn",
        ),
        # ... after day 28: the outcome was complete before the withdrawal
        (
            {
                "withdrawal_date": iso(35),
                "withdrawal_scope": "follow_up",
                "last_known_alive_date": iso(28),
            },
            "complete",
            "alive",
        ),
        # ... a death recorded after the withdrawal is not used
        (
            {
                "withdrawal_date": iso(12),
                "withdrawal_scope": "follow_up",
                "death_date": iso(14),
                "last_known_alive_date": "",
            },
            "missing",
            "withdrawn",
        ),
        # ... a day-28 contact after the withdrawal is not used
        (
            {"withdrawal_date": iso(20), "withdrawal_scope": "follow_up"},
            "missing",
            "withdrawn",
        ),
        # withdrawal from the trial drug changes nothing
        ({"withdrawal_date": iso(5), "withdrawal_scope": "treatment"}, "complete", "alive"),
        # withdrawal of all data: counted, never analysed
        (
            {"withdrawal_date": iso(5), "withdrawal_scope": "all_data"},
            "withdrawn_all_data",
            "consent",
        ),
        # discharged on day 10, no news since: vital status on day 28 unknown
        (
            {"hospital_discharge_date": iso(10), "last_known_alive_date": iso(10)},
            "missing",
            "vital status",
        ),
        # discharged on day 30: alive on day 28 by the discharge itself
        (
            {"hospital_discharge_date": iso(30), "last_known_alive_date": ""},
            "complete",
            "alive",
        ),
        # died on day 40: alive on day 28
        ({"death_date": iso(40), "last_known_alive_date": ""}, "complete", "alive"),
    ],
)
def test_completeness_rule(design, changes, status, reason):
    _, d = derive(design, [row(design, "p", **changes)])
    assert d.at[0, "status"] == status, d.at[0, "status_reason"]
    assert reason in d.at[0, "status_reason"]
    outcomes = ["osfd28", "mortality28", "isth_major_bleeding", "secondary_infection"]
    assert d.loc[0, outcomes].notna().all() == (status == "complete")


def test_died_after_day_28_counts_the_support_to_day_28(design):
    r = row(
        design,
        "p",
        death_date=iso(40),
        last_known_alive_date="",
        support_invasive_ventilation=f"{iso(20)}/{iso(40)}",
    )
    _, d = derive(design, [r])
    assert (d.at[0, "osfd28"], d.at[0, "mortality28"], d.at[0, "support_days"]) == (19, 0, 9)


def test_pending_when_day_28_is_after_the_data_cut(design):
    start = dt.date(2026, 9, 20)
    r = row(design, "late", randomisation_date=start.isoformat(), last_known_alive_date="")
    died = row(
        design,
        "late_died",
        randomisation_date=start.isoformat(),
        death_date=iso(5, start),
        last_known_alive_date="",
    )
    _, d = derive(design, [r, died])
    # a death before a day 28 that lies after the cut is pending too: counting it while the
    # survivors randomised with it are pending would over-represent early deaths
    assert list(d["status"]) == ["pending", "pending"]
    assert "after the data cut" in d.at[0, "status_reason"]
    assert "after the data cut" in d.at[1, "status_reason"]
    assert d.at[0, "day28_date"] == pd.Timestamp(day(28, start))
    assert d.loc[:, ["osfd28", "mortality28"]].isna().all().all()


def test_open_ended_support_to_the_data_cut_in_a_derived_row(design):
    cut = day(35)
    r = row(
        design,
        "icu",
        last_known_alive_date=cut.isoformat(),
        support_ecmo=f"{iso(20)}/",
    )
    _, d = derive(design, [r], cut=cut)
    assert (d.at[0, "status"], d.at[0, "osfd28"], d.at[0, "support_days"]) == ("complete", 19, 9)


def test_invalid_rows_are_kept_with_their_problems(design):
    rows = [row(design, "ok"), row(design, "bad", country="France"), row(design, "ok2")]
    v, d = derive(design, rows)
    assert len(d) == v.n_rows == 3
    assert list(d["patient_id"]) == ["OK", "BAD", "OK2"]  # identifiers in canonical form
    assert list(d["line"]) == [2, 3, 4]
    assert list(d["status"]) == ["complete", "invalid", "complete"]
    assert "country" in d.at[1, "status_reason"]
    assert pd.isna(d.at[1, "osfd28"])


@pytest.mark.parametrize(
    ("randomised", "era"),
    [("2026-05-01", 0), ("2026-07-30", 0), ("2026-07-31", 1), ("2026-09-01", 1)],
)
def test_era_counts_91_day_periods_from_the_study_start(design, randomised, era):
    # study start 2026-05-01 (trial.yaml): 2026-07-31 is 91 days later
    start = dt.date.fromisoformat(randomised)
    _, d = derive(
        design, [row(design, "p", randomisation_date=randomised, last_known_alive_date="")]
    )
    assert d.at[0, "era"] == era
    assert d.at[0, "day28_date"] == pd.Timestamp(day(28, start))


# ----------------------------------------------------------------------------- tables
def _cohort(design) -> list[dict[str, str]]:
    """A small mixed cohort over three arms, two eras, with every status."""
    rows = []
    arms = [("mals", "mals_usual_care"), ("mals", "mals_anakinra"), ("mals", "mals_mtx100")]
    for i in range(24):
        trait, arm = arms[i % 3]
        start = D1 if i < 12 else dt.date(2026, 8, 10)  # era 0 and era 1
        changes = {"randomisation_date": start.isoformat(), "arm": arm, "assigned_trait": trait}
        changes["last_known_alive_date"] = iso(28, start)
        if i % 4 == 0:
            changes.update(death_date=iso(1 + i % 9, start), last_known_alive_date="")
        elif i % 4 == 1:
            changes["support_high_flow_oxygen"] = f"{iso(1, start)}/{iso(1 + i % 6, start)}"
        rows.append(row(design, f"P{i:02d}", **changes))
    rows.append(row(design, "W1", withdrawal_date=iso(3), withdrawal_scope="all_data"))
    rows.append(row(design, "W2", withdrawal_date=iso(3), withdrawal_scope="follow_up"))
    late = dt.date(2026, 9, 25)
    rows.append(row(design, "L1", randomisation_date=late.isoformat(), last_known_alive_date=""))
    rows.append(row(design, "X1", arm="hinf_anakinra"))  # invalid: arm of another trait
    return rows


def test_completeness_table_counts_every_row(design):
    _, d = derive(design, _cohort(design))
    table = completeness_table(d)
    assert list(table["status"]) == list(STATUS)
    assert dict(zip(table["status"], table["n"], strict=True)) == {
        "complete": 24,
        "pending": 1,
        "missing": 1,
        "withdrawn_all_data": 1,
        "invalid": 1,
    }
    assert table["n"].sum() == len(d) == 28


def test_completeness_table_keeps_zero_rows():
    table = completeness_table(pd.DataFrame({"status": pd.Series([], dtype="string")}))
    assert list(table["n"]) == [0] * len(STATUS)
    with pytest.raises(ValueError, match="unknown status"):
        completeness_table(pd.DataFrame({"status": ["done"]}))


def test_cell_counts_total_the_complete_rows(design):
    _, d = derive(design, _cohort(design))
    complete = d[d["status"] == "complete"]
    n_eras = n_eras_of(d)
    assert n_eras == 2
    binary = cell_counts(d, "mortality28", design, n_eras)
    assert list(binary.columns) == ["trait", "age_group", "arm", "era", "events", "patients"]
    assert binary["patients"].sum() == len(complete) == 24
    assert binary["events"].sum() == complete["mortality28"].sum() == 6
    first = binary[(binary["arm"] == "mals_usual_care") & (binary["era"] == 0)].iloc[0]
    # rows 0, 3, 6, 9 of era 0 are usual care; rows 0 and 8 die (i % 4 == 0) -> 0 only is UC
    assert (first["patients"], first["events"]) == (4, 1)
    ordinal = cell_counts(d, "osfd28", design, n_eras)
    assert list(ordinal.columns) == ["trait", "age_group", "arm", "era", "category", "count"]
    assert ordinal["count"].sum() == 24
    assert (ordinal["category"] == -1).sum() > 0
    expected = complete.groupby("osfd28").size()
    got = ordinal.groupby("category")["count"].sum()
    assert got.to_dict() == {int(k): int(v) for k, v in expected.items()}


def test_cell_counts_are_accepted_by_model_data(design):
    _, d = derive(design, _cohort(design))
    for outcome in ("mortality28", "osfd28", "isth_major_bleeding"):
        cells = cell_counts(d, outcome, design, 2)
        data = model_data(design, cells, outcome, n_eras=2)
        assert int(np.asarray(data.counts).sum()) == 24


def test_cell_counts_refuse_an_era_beyond_n_eras_and_an_unknown_outcome(design):
    _, d = derive(design, _cohort(design))
    with pytest.raises(ModelDataError, match="era 1 >= n_eras = 1"):
        cell_counts(d, "osfd28", design, 1)
    with pytest.raises(ModelDataError, match="unknown outcome"):
        cell_counts(d, "osfd90", design, 2)


def test_withdrawn_rows_are_counted_but_not_in_cells(design):
    rows = [row(design, "a"), row(design, "w", withdrawal_date=iso(3), withdrawal_scope="all_data")]
    _, d = derive(design, rows)
    assert list(d["status"]) == ["complete", "withdrawn_all_data"]
    assert cell_counts(d, "mortality28", design, 1)["patients"].sum() == 1
    assert completeness_table(d)["n"].sum() == 2


def test_information_counts_complete_and_allocated_per_experimental_arm(design):
    _, d = derive(design, _cohort(design))
    info = information(d, design)
    assert set(info) == {a.id for a in design.experimental_arms()}
    # anakinra: cohort rows 1, 4, ..., 22 (8, complete) + W2 (missing) + L1 (pending);
    # W1 (all data withdrawn) and X1 (invalid) are not counted
    assert info["mals_anakinra"] == {"n_complete": 8, "n_allocated": 10}
    assert info["mals_mtx100"] == {"n_complete": 8, "n_allocated": 8}
    assert info["hinf_tocilizumab"] == {"n_complete": 0, "n_allocated": 0}
    assert "mals_usual_care" not in info
