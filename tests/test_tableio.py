"""Strict table reading, canonical identifiers and formula-safe CSV output (issue 13)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from palette_core.errors import PatientFileError
from palette_core.tableio import (
    FORMULA_PREFIXES,
    id_problem,
    neutralise_formulas,
    normalise_id,
    read_csv_records,
    read_parquet_frame,
)


def fail(message: str) -> PatientFileError:
    return PatientFileError("f.csv", message)


@pytest.mark.parametrize(
    "text",
    [
        "EX-01",
        "ex-01",
        " EX-01 ",
        "EX\u201001",  # hyphen
        "EX\u221201",  # minus sign
        "EX-\u200b01",  # zero-width space
        "\ufeffEX-01",  # byte-order mark
        "E\u00adX-01",  # soft hyphen
        "\uff25\uff38\uff0d\uff10\uff11",  # full-width
    ],
)
def test_look_alike_identifiers_have_one_canonical_form(text):
    assert normalise_id(text) == "EX-01"


@pytest.mark.parametrize(
    "text", ["", "=HYPERLINK(1)", "+1", "-1", "@SUM(A1)", "\t=1", "a" * 65, "a,b", "<script>"]
)
def test_identifiers_that_are_empty_formulas_or_odd_are_refused(text):
    assert id_problem(normalise_id(text)) is not None


def test_an_ordinary_identifier_is_accepted():
    assert id_problem(normalise_id("SYN-000123")) is None


def _write(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "f.csv"
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"   \n\t\n", "empty file"),
        (b"a,b\n1,\x002\n", "binary data"),
        ("a,b\ncaf\u00e9,1\n".encode("latin-1"), "not UTF-8"),
        ("a,b\n1,2\n".encode("utf-16"), "UTF-16"),
        ("a,b\n1,2\n".encode("utf-16-be").join([b"\xfe\xff", b""]), "UTF-16"),
        (b'a,b\n"1,2\n3,4\n', "not valid CSV"),
        (b"a,b\n1,2\r3,4\n", "carriage return"),
        (b"a,,c\n1,2,3\n", "empty column name"),
    ],
)
def test_unreadable_csv_files_raise_the_callers_typed_error(tmp_path, data, message):
    with pytest.raises(PatientFileError, match=message):
        read_csv_records(_write(tmp_path, data), fail)


def test_crlf_line_ends_and_blank_lines_are_fine_and_lines_are_counted(tmp_path):
    t = read_csv_records(_write(tmp_path, b'a,b\r\n1,2\r\n\r\n"x\r\ny",4\r\n5,6\r\n'), fail)
    assert t.header == ("a", "b")
    assert t.records == (("1", "2"), ("x\r\ny", "4"), ("5", "6"))
    assert t.lines == (2, 4, 6)


def test_ragged_records_come_back_with_their_own_values_never_shifted(tmp_path):
    t = read_csv_records(_write(tmp_path, b"a,b,c\n1,2,3,4\n1\n7,8,9\n"), fail)
    assert t.records == (("1", "2", "3", "4"), ("1",), ("7", "8", "9"))


def test_empty_and_corrupt_parquet_files_raise_the_typed_error(tmp_path):
    empty, corrupt = tmp_path / "e.parquet", tmp_path / "c.parquet"
    empty.write_bytes(b"")
    corrupt.write_bytes(b"PAR1" + b"\x00garbage" * 10 + b"PAR1")
    with pytest.raises(PatientFileError, match="empty file"):
        read_parquet_frame(empty, fail)
    with pytest.raises(PatientFileError, match="not a readable Parquet file"):
        read_parquet_frame(corrupt, fail)
    with pytest.raises(PatientFileError, match="file not found"):
        read_parquet_frame(tmp_path / "missing.parquet", fail)


def test_parquet_cells_that_are_not_single_values_are_marked(tmp_path):
    p = tmp_path / "l.parquet"
    pd.DataFrame({"a": ["x", "y"], "b": [[1, 2], None]}).to_parquet(p)
    frame, bad = read_parquet_frame(p, fail)
    assert list(bad["b"]) == [True, False] and not bad["a"].any()
    assert list(frame["a"]) == ["x", "y"]


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_formula_prefixes_are_neutralised_in_csv_output(prefix):
    frame = pd.DataFrame(
        {"id": [f"{prefix}HYPERLINK(1)", "ok"], "n": [-1.0, 2.0]}, dtype=object
    ).astype({"n": "float64"})
    out = neutralise_formulas(frame)
    assert list(out["id"]) == [f"'{prefix}HYPERLINK(1)", "ok"]
    assert list(out["n"]) == [-1.0, 2.0]  # numbers are left alone
    assert list(frame["id"])[0].startswith(prefix)  # the input is not changed
    written = out.to_csv(index=False)
    for cell in pd.read_csv(io.StringIO(written), dtype=str)["id"]:
        assert not cell.startswith(FORMULA_PREFIXES)
