"""Dates and times as the trial's files write them: ISO 8601 calendar dates and UTC time stamps.

One definition for every reader and writer of the package:

* **Dates** are ``YYYY-MM-DD`` (ISO 8601 extended calendar date, ASCII digits) and nothing else:
  :func:`parse_iso_date` refuses the other forms that :meth:`datetime.date.fromisoformat`
  accepts (``20260601``, ``2026-W22-1``), so a date reads back as exactly the text that
  :meth:`datetime.date.isoformat` writes. The export contract (CSV cells, ``export.yaml``), the
  allocation state, the platform (lifecycle) state and the restricted log read dates here.
* **Time stamps** are UTC with microseconds and a ``Z``: ``2026-06-01T09:30:00.000000Z``
  (:data:`UTC_TIMESTAMP_FORMAT`). The open log's ``time`` and the log anchors' ``updated`` are
  written by :func:`utc_timestamp` and read by :func:`parse_utc_timestamp`.

What stays apart, and why: an empty CSV cell is a *missing* date, not a bad one
(:func:`palette_core.exports.contract.parse_date` maps ``""`` to ``None`` before calling
:func:`parse_iso_date`), whereas a JSON record has no empty dates; and the suffix of files that
``palette log recover`` saves (``alloc.jsonl.removed-20260601T093000000000Z``) has no ``-`` or
``:`` so that it stays one plain word in a file name: it names a file, it is never read back as
a time.

Examples
--------
>>> import datetime as dt
>>> parse_iso_date("2026-06-01")
datetime.date(2026, 6, 1)
>>> utc_timestamp(dt.datetime(2026, 6, 1, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))))
'2026-06-01T09:30:00.000000Z'
"""

from __future__ import annotations

import datetime as dt
import re

#: How an ISO date is written, for messages.
ISO_DATE = "YYYY-MM-DD"
#: ``strftime`` format of the UTC time stamps of the allocation log and its anchors.
UTC_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
#: How a UTC time stamp is written, for messages.
UTC_TIMESTAMP = "YYYY-MM-DDTHH:MM:SS.ffffffZ"

_ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UTC_TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def parse_iso_date(text: str) -> dt.date:
    """A calendar date written ``YYYY-MM-DD``.

    Raises
    ------
    ValueError
        ``"not an ISO 8601 date (YYYY-MM-DD)"`` when the text has another form,
        ``"not a calendar date"`` when it has the form but no such day exists (2026-02-30).
    """
    if not isinstance(text, str) or not _ISO_DATE_RE.fullmatch(text):
        raise ValueError(f"not an ISO 8601 date ({ISO_DATE})")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("not a calendar date") from None


def utc_timestamp(when: dt.datetime | None = None) -> str:
    """``when`` (timezone-aware; default now) in UTC, written ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Raises
    ------
    ValueError
        ``when`` has no time zone (a naive time is ambiguous).
    """
    if when is None:
        when = dt.datetime.now(dt.UTC)
    elif when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("a time stamp needs a timezone-aware time (UTC)")
    return when.astimezone(dt.UTC).strftime(UTC_TIMESTAMP_FORMAT)


def parse_utc_timestamp(text: str) -> dt.datetime:
    """The timezone-aware time of a stamp written by :func:`utc_timestamp`.

    Raises
    ------
    ValueError
        The text is not ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, or names no real time.
    """
    if not isinstance(text, str) or not _UTC_TIMESTAMP_RE.fullmatch(text):
        raise ValueError(f"not a UTC time stamp ({UTC_TIMESTAMP})")
    try:  # the form is checked above; fromisoformat checks the values (and is fast)
        return dt.datetime.fromisoformat(text[:-1]).replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValueError("not a calendar time") from None


__all__ = [
    "ISO_DATE",
    "UTC_TIMESTAMP",
    "UTC_TIMESTAMP_FORMAT",
    "parse_iso_date",
    "parse_utc_timestamp",
    "utc_timestamp",
]
