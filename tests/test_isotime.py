"""Dates and time stamps as the trial's files write them (palette_core.isotime)."""

from __future__ import annotations

import datetime as dt

import pytest

from palette_core.exports.contract import parse_date
from palette_core.isotime import parse_iso_date, parse_utc_timestamp, utc_timestamp


def test_a_date_reads_back_as_the_text_isoformat_writes():
    day = dt.date(2026, 6, 1)
    assert parse_iso_date(day.isoformat()) == day


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("20260601", "not an ISO 8601 date \\(YYYY-MM-DD\\)"),  # fromisoformat takes it
        ("2026-W22-1", "not an ISO 8601 date"),
        ("2026-06-01\n", "not an ISO 8601 date"),
        ("2026-06-01T00:00:00", "not an ISO 8601 date"),
        ("\uff12\uff10\uff12\uff16-06-01", "not an ISO 8601 date"),  # full-width digits
        ("2026-02-30", "not a calendar date"),
    ],
)
def test_other_forms_of_a_date_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_iso_date(text)


def test_the_export_reads_the_same_dates_and_an_empty_cell_as_none():
    assert parse_date("2026-06-01") == dt.date(2026, 6, 1)
    assert parse_date("") is None
    with pytest.raises(ValueError, match="not an ISO 8601 date"):
        parse_date("01/06/2026")


def test_a_time_stamp_is_utc_with_microseconds():
    paris = dt.timezone(dt.timedelta(hours=2))
    when = dt.datetime(2026, 6, 1, 11, 30, 0, 250, tzinfo=paris)
    text = utc_timestamp(when)
    assert text == "2026-06-01T09:30:00.000250Z"
    assert parse_utc_timestamp(text) == when
    assert parse_utc_timestamp(utc_timestamp()).tzinfo == dt.UTC


def test_a_naive_time_has_no_time_stamp():
    with pytest.raises(ValueError, match="timezone-aware"):
        utc_timestamp(dt.datetime(2026, 6, 1, 9, 30))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-06-01T09:30:00Z", "not a UTC time stamp"),
        ("2026-06-01T09:30:00.000000+00:00", "not a UTC time stamp"),
        ("2026-06-01 09:30:00.000000Z", "not a UTC time stamp"),
        ("2026-06-31T09:30:00.000000Z", "not a calendar time"),
    ],
)
def test_other_forms_of_a_time_stamp_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_utc_timestamp(text)
