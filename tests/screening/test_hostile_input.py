"""Property test: hostile records and files never give a traceback (issue 13, item 4).

Each run generates, in batches, at least 10,000 hostile patient records (non-finite, huge,
fractional, mistyped, out-of-range and mis-unit values, dates that do not exist, look-alike,
duplicated and formula identifiers, impossible combinations) and at least 3,000 hostile CSV
files (bytes inserted, deleted or replaced, quotes and carriage returns, fields added or cut,
other encodings). Every record must come out as a row, valid or invalid with its problems, and
be classified; every file must be read or refused with a :class:`PatientFileError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import support
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from palette_core.errors import PatientFileError
from palette_core.screening.classify import classify_patients
from palette_core.screening.patients import read_patients, validate_patients
from palette_core.tableio import read_csv_records

RECORD_BATCHES, RECORDS_PER_BATCH = 6, 2_000  # 12,000 records per run
FILE_BATCHES, FILES_PER_BATCH = 20, 150  # 3,000 files per run (one per batch read in full)
EXAMPLES = support.DATA / "examples" / "worked_examples.csv"
#: a batch that fails is reported as it is: shrinking thousands of rows would take minutes
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)

SPECIAL = [
    "", " ", "NA", "nan", "inf", "-inf", "Infinity", "1e309", "-1e309", "9" * 400, "1e20", "-0",
    "0x10", "1_000", "1,5", " 7 ", "\uff15", "\u0665", "3.5", "true", "yes", "2", "-1",
    "\u200b", "=1+1", "+1", "@A1", "\t", "\x00", "\ud7ff", "\U0001f600", "x" * 300,
    "2026-02-30", "2026-13-01", "0001-01-01", "9999-12-31", "2026-1-1", "2026-06-01T10:00",
]  # fmt: skip
IDS = [
    "EX-01", "ex-01", "EX\u201001", "EX-\u200b01", "\uff25\uff38\uff0d\uff10\uff11",
    '=HYPERLINK("http://x","y")', "+1", "-1", "@x", "", " ", "\u200b", "a" * 80, "ok_1",
]  # fmt: skip


def _numbers(lo: float, hi: float) -> st.SearchStrategy[str]:
    """Values around and beyond a range, and the usual unit factors applied to it."""
    span = hi - lo
    inside = st.floats(lo, hi, allow_nan=False)
    outside = st.floats(lo - 10 * span - 1, hi + 10 * span + 1, allow_nan=False)
    scaled = st.builds(lambda v, k: v * k, inside, st.sampled_from([1000, 88.4, 17.1, 9, 0.01]))
    return st.one_of(inside, outside, scaled).map(lambda v: f"{v:.6g}")


def _field_values(fld) -> st.SearchStrategy[str]:
    if fld.kind in ("float", "int") and fld.range is not None:
        base = _numbers(*fld.range)
    elif fld.kind == "category":
        base = st.sampled_from([*fld.categories, *(c.upper() for c in fld.categories)])
    elif fld.kind == "bool":
        base = st.sampled_from(["true", "false", "TRUE", "no", "1", "0", "maybe"])
    elif fld.kind == "date":
        base = st.dates(dt_min, dt_max).map(lambda d: d.isoformat())
    else:
        base = st.sampled_from(IDS)
    return st.one_of(base, st.sampled_from(SPECIAL), st.text(max_size=8))


dt_min, dt_max = pd.Timestamp("1890-01-01").date(), pd.Timestamp("2030-12-31").date()


def record_batches(design) -> st.SearchStrategy[pd.DataFrame]:
    """Batches of records: per field a pool of hostile values, combined row by row."""
    fields = dict(design.patient_fields)

    @st.composite
    def batches(draw) -> pd.DataFrame:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        n = RECORDS_PER_BATCH
        columns = {}
        for name, fld in fields.items():
            pool = draw(st.lists(_field_values(fld), min_size=1, max_size=6))
            pick = rng.integers(0, len(pool), n)
            missing = rng.random(n) < draw(st.sampled_from([0.0, 0.3, 0.9]))
            columns[name] = [None if m else pool[k] for k, m in zip(pick, missing, strict=True)]
        columns["patient_id"] = [
            f"P{i}" if rng.random() < 0.7 else IDS[rng.integers(len(IDS))] for i in range(n)
        ]
        return pd.DataFrame(columns, dtype=object)

    return batches()


def _check_batch(raw: pd.DataFrame, design) -> int:
    """Check one batch; return its number of invalid rows."""
    v = validate_patients(raw, design, source="hostile batch")
    n = len(raw)
    assert len(v.frame) == n  # rows in = rows out
    valid = v.valid.to_numpy()
    assert set(v.errors["row"]) == {i + 1 for i in np.flatnonzero(~valid)}
    assert v.errors["field"].isin(list(design.patient_fields)).all()
    ok = v.frame[valid]
    for name, fld in design.patient_fields.items():
        if fld.range is not None and len(ok):
            values = ok[name].astype("float64").dropna()
            assert values.between(*fld.range).all(), name
            assert np.isfinite(values).all(), name
    ids = ok["patient_id"].dropna()
    assert not ids.duplicated().any()
    assert not ids.str.startswith(("=", "+", "-", "@", "\t", "\r")).any()
    out = classify_patients(v, design, seed=1)
    assert len(out) == n
    assert (out.loc[~valid, "record_status"] == "invalid").all()
    return int((~valid).sum())


def test_hostile_records_are_rows_never_tracebacks(design):
    seen = {"records": 0, "invalid": 0}

    @settings(
        max_examples=RECORD_BATCHES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=NO_SHRINK,
    )
    @given(record_batches(design))
    def run(raw: pd.DataFrame) -> None:
        seen["records"] += len(raw)
        seen["invalid"] += _check_batch(raw, design)

    run()
    assert seen["records"] >= 10_000
    assert seen["invalid"] > 0  # the batches reach what the contract must refuse


# ----------------------------------------------------------------------------- files
_BASE = EXAMPLES.read_bytes()
_INSERTS = [b'"', b",", b"\r", b"\n", b"\x00", b"\xe9", b"\xff\xfe", b'""', b"\r\n", b"\t"]


def _mutate(rng: np.random.Generator, data: bytes) -> bytes:
    """A hostile variant of a CSV file: a few edits of one of several kinds."""
    kind = rng.integers(0, 8)
    if kind == 0:  # another encoding
        text = data.decode("utf-8").replace("EX-0", "\u00e9X-0")
        return text.encode(["latin-1", "utf-16", "utf-16-le", "utf-32"][rng.integers(0, 4)])
    if kind == 1:  # truncated
        return data[: int(rng.integers(0, len(data)))]
    if kind == 2:  # fields added or cut on some lines
        lines = data.split(b"\n")
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(lines)))
            cells = lines[i].split(b",")
            lines[i] = b",".join(cells + [b"X"] if rng.random() < 0.5 else cells[: len(cells) // 2])
        return b"\n".join(lines)
    if kind == 3:  # random bytes
        return rng.bytes(int(rng.integers(0, 400)))
    if kind == 4:  # whitespace only
        return b" \n\t\r\n"[: int(rng.integers(0, 6))]
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):  # byte edits: insert, delete, replace
        pos = int(rng.integers(0, len(out) + 1))
        op = rng.integers(0, 3)
        piece = _INSERTS[int(rng.integers(0, len(_INSERTS)))]
        if op == 0:
            out[pos:pos] = piece
        elif op == 1:
            del out[pos : pos + 1]
        else:
            out[pos : pos + len(piece)] = piece
    return bytes(out)


def test_hostile_files_are_read_or_refused_never_tracebacks(design, tmp_path):
    seen = {"files": 0, "refused": 0, "read": 0}

    def fail(message: str) -> PatientFileError:
        return PatientFileError("f.csv", message)

    @settings(
        max_examples=FILE_BATCHES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=NO_SHRINK,
    )
    @given(st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for k in range(FILES_PER_BATCH):
            path = tmp_path / f"f{k % 7}.csv"
            path.write_bytes(_mutate(rng, _BASE))
            seen["files"] += 1
            try:
                table = read_csv_records(path, fail)
            except PatientFileError:
                seen["refused"] += 1
                continue
            seen["read"] += 1
            assert len(table.records) == len(table.lines)
            if k == 0 or (len(table.records) and k % 50 == 0):
                _read_in_full(path, table, design)

    run()
    assert seen["files"] >= 3_000 and seen["refused"] > 0 and seen["read"] > 0


def _read_in_full(path: Path, table, design) -> None:
    try:
        v = read_patients(path, design)
    except PatientFileError:
        return
    assert len(v.frame) == len(table.records)  # rows in = rows out
    assert v.lines == table.lines
    width = len(table.header)
    for i, record in enumerate(table.records):
        if len(record) != width:
            assert not v.valid.iloc[i]
    classify_patients(v, design, seed=1)
