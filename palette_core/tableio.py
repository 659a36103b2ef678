"""Tables in and out, strictly: what a site's CSV or Parquet file may hold, and what a CSV we
write may not.

Reading (:func:`read_csv_records`, :func:`read_parquet_frame`) refuses what cannot be read
faithfully, with a message that says why and where, instead of guessing: an empty or
whitespace-only file, binary data (a NUL byte), text that is not UTF-8 (Latin-1, UTF-16), an
unbalanced quote, a carriage return inside a line (it would split a record in two), an
empty column name, an empty or corrupt Parquet file, a Parquet cell that is not a single
value (a repeated column is the caller's to refuse, naming it). A record whose number of values differs from the header's is *not* refused
here: each record comes back with its own values and CSV line, so that the caller decides
(the export contract refuses the file, the patient record marks the row invalid); nothing is
ever shifted into another column.

Patient identifiers (:func:`normalise_id`) are compared in one canonical form: Unicode NFKC
(full-width letters become ASCII), invisible format characters removed (zero-width space,
soft hyphen, byte-order mark, direction marks), every dash and minus sign written ``-``,
runs of white space one space, upper case. ``ex‐01``, ``EX-01`` with a zero-width space and
``ＥＸ－０１`` are the same patient.

Writing (:func:`neutralise_formulas`): a text cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return would be run as a formula by a spreadsheet (CSV
injection); such a cell is written with a leading ``'``, as OWASP recommends.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: A canonical patient identifier: letters and digits, then letters, digits, space and
#: ``- _ . / : #`` (no formula prefix can start it), at most 64 characters.
ID_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9 _./:#-]{0,63}")
#: Characters a spreadsheet reads as the start of a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_DASHES = re.compile(r"[\u2010-\u2015\u2212\u2043\ufe58\ufe63\uff0d]")
_SPACES = re.compile(r"\s+")

Fail = Callable[[str], Exception]


@dataclass(frozen=True)
class CsvRecords:
    """A CSV file read as text: its header, each record's values and the line it starts on."""

    header: tuple[str, ...]
    records: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf"


def normalise_id(text: str) -> str:
    """The canonical form of an identifier (see the module docstring).

    >>> normalise_id(" ex\\u2010\\u200b01 ")
    'EX-01'
    >>> normalise_id("ＥＸ－０１")
    'EX-01'
    """
    s = unicodedata.normalize("NFKC", str(text))
    s = _DASHES.sub("-", s)
    s = "".join(ch for ch in s if not _invisible(ch))
    return _SPACES.sub(" ", s).strip().upper()


def id_problem(canonical: str) -> str | None:
    """Why a canonical identifier is not acceptable, or None."""
    if not canonical:
        return "empty identifier"
    if ID_PATTERN.fullmatch(canonical) is None:
        return (
            "an identifier starts with a letter or digit and holds only letters, digits, spaces "
            "and - _ . / : # (at most 64 characters)"
        )
    return None


def read_csv_records(path: Path, fail: Fail) -> CsvRecords:
    """Read a CSV file as text records, refusing what cannot be read faithfully.

    Parameters
    ----------
    path
        The file.
    fail
        Builds the typed error to raise from a message (the caller's file error class).

    Raises
    ------
    Exception
        ``fail(message)`` for: a missing file, an empty or whitespace-only file, a NUL byte
        (binary data), a UTF-16 byte-order mark, text that is not UTF-8, a carriage return
        inside a line, an unbalanced quote or other CSV error, an empty column name.
    """
    if not path.is_file():
        raise fail("file not found")
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise fail("UTF-16 text: save the file as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise fail(f"binary data (a NUL byte at byte {nul}): not a CSV file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(
            f"not UTF-8 text (byte {exc.start}; Latin-1 or another encoding?): save it as UTF-8"
        ) from None
    if not text.strip():
        raise fail("empty file: no header line")
    stray = re.search(r"\r(?!\n)", text)
    if stray is not None:
        line = text.count("\n", 0, stray.start()) + 1
        raise fail(
            f"line {line}: a carriage return inside a line (it would split a record in two); "
            "use LF or CRLF line ends only"
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    records: list[tuple[str, ...]] = []
    lines: list[int] = []
    try:
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            if header is None:
                header = record
                continue
            if not record or (len(record) == 1 and record[0].strip() == "" and len(header) > 1):
                continue  # a blank line holds no data
            records.append(tuple(record))
            lines.append(start)
    except csv.Error as exc:
        raise fail(f"line {reader.line_num}: not valid CSV ({exc})") from None
    if header is None:  # pragma: no cover - a non-blank text has a first record
        raise fail("empty file: no header line")
    names = [h.strip() for h in header]
    if any(not n for n in names):
        raise fail(f"line 1: an empty column name (column {names.index('') + 1})")
    return CsvRecords(tuple(names), tuple(records), tuple(lines))


def _parquet_cell(value: Any) -> tuple[Any, bool]:
    """(value, ok): a scalar Parquet cell as text or number; a list, mapping or bytes is not ok."""
    if value is None:
        return "", True
    if isinstance(value, bool | np.bool_ | int | np.integer | float | np.floating | str):
        return value, True
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).date().isoformat(), True
    return str(value)[:80], False


def read_parquet_frame(path: Path, fail: Fail) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a Parquet file into a frame of scalar cells, and a mask of cells that were not one.

    Raises
    ------
    Exception
        ``fail(message)`` for a missing, empty or corrupt file, or a repeated column.
    """
    if not path.is_file():
        raise fail("file not found")
    if path.stat().st_size == 0:
        raise fail("empty file: not a Parquet file")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise fail(f"not a readable Parquet file ({first})") from None
    names = [str(c) for c in frame.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise fail(f"column(s) {repeated} repeated")
    frame.columns = names
    bad = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    for col in frame.columns:
        if frame[col].dtype == object:
            cells = [_parquet_cell(v) for v in frame[col]]
            frame[col] = pd.Series([c for c, _ in cells], index=frame.index, dtype=object)
            bad[col] = [not ok for _, ok in cells]
    return frame.reset_index(drop=True), bad.reset_index(drop=True)


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy in which every text cell that a spreadsheet would run as a formula starts with
    ``'`` (numbers are left alone)."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        out[col] = s.map(
            lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v
        ).astype(s.dtype if pd.api.types.is_string_dtype(s) else object)
    return out


__all__ = [
    "FORMULA_PREFIXES",
    "ID_PATTERN",
    "CsvRecords",
    "id_problem",
    "neutralise_formulas",
    "normalise_id",
    "read_csv_records",
    "read_parquet_frame",
]
