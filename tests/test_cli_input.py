"""Hostile input at the command line (issue 13, Input): every unusable file is one line and
exit status 2, every invalid row is reported with its row, line and field and exit status 1
(rows in = rows out), an internal error is exit status 3, and no traceback ever."""

from __future__ import annotations

import csv
import secrets
from collections.abc import Callable

import pandas as pd
import pytest
import support

from palette_core.cli import EXIT_INTERNAL, EXIT_PROBLEMS, EXIT_UNUSABLE, main
from palette_core.randomisation.randomise import SECRET_ENV, SECRET_FILE_ENV
from palette_core.tableio import FORMULA_PREFIXES

EXAMPLES = support.DATA / "examples" / "worked_examples.csv"
TEXT = EXAMPLES.read_text(encoding="utf-8")
HEADER, *ROWS = TEXT.splitlines()


@pytest.fixture(autouse=True)
def env_secret(monkeypatch):
    monkeypatch.delenv(SECRET_FILE_ENV, raising=False)
    monkeypatch.setenv(SECRET_ENV, secrets.token_hex(32))


def _csv(rows: list[str]) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode("utf-8")


UNUSABLE: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "empty": ("csv", lambda: b"", "empty file"),
    "whitespace only": ("csv", lambda: b" \n\t \n\n", "empty file"),
    "binary": ("csv", lambda: bytes(range(256)) * 4, "binary data"),
    "Latin-1": ("csv", lambda: TEXT.replace("EX-01", "EX-\u00e901").encode("latin-1"), "not UTF-8"),
    "UTF-16": ("csv", lambda: TEXT.encode("utf-16"), "UTF-16"),
    "unbalanced quote": ("csv", lambda: _csv(['"' + ROWS[0], *ROWS[1:]]), "not valid CSV"),
    "stray carriage return": (
        "csv",
        lambda: _csv([ROWS[0][:25] + "\r" + ROWS[0][25:], *ROWS[1:]]),
        "carriage return",
    ),
    "unknown column": ("csv", lambda: TEXT.replace("site_id", "site", 1).encode(), "unknown"),
    "empty Parquet": ("parquet", lambda: b"", "empty file"),
    "corrupt Parquet": ("parquet", lambda: b"PAR1" + bytes(range(200)) + b"PAR1", "Parquet"),
}


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


@pytest.mark.parametrize("name", list(UNUSABLE))
@pytest.mark.parametrize("command", ["classify", "randomise"])
def test_an_unusable_file_is_one_typed_line_and_exit_2(tmp_path, capsys, name, command):
    suffix, make, message = UNUSABLE[name]
    path = tmp_path / f"patients.{suffix}"
    path.write_bytes(make())
    extra = ["--seed", "1"] if command == "classify" else ["--log", str(tmp_path / "open.jsonl")]
    rc, out, err = _run([command, str(path), *extra], capsys)
    assert rc == EXIT_UNUSABLE
    assert err.count("\n") == 1 and err.startswith(f"palette: {path}:") and message in err
    assert not (tmp_path / "open.jsonl").exists()  # nothing randomised from an unusable file


BAD_ROWS = {
    "gcs inf": (lambda r: r.replace(",14,", ",inf,", 1), "gcs"),
    "gcs 1e309": (lambda r: r.replace(",14,", ",1e309,", 1), "gcs"),
    "gcs 400 nines": (lambda r: r.replace(",14,", "," + "9" * 400 + ",", 1), "gcs"),
    "one extra field": (lambda r: r + ",X", "physician_veto"),
    "cut to 10 fields": (lambda r: ",".join(r.split(",")[:10]), "suspected_infection"),
}


@pytest.mark.parametrize("name", list(BAD_ROWS))
def test_classify_keeps_every_row_and_names_row_line_and_field(tmp_path, capsys, name):
    edit, field = BAD_ROWS[name]
    path = tmp_path / "patients.csv"
    path.write_bytes(_csv([edit(ROWS[0]), *ROWS[1:]]))
    out_path = tmp_path / "out.csv"
    rc, _, err = _run(["classify", str(path), "--seed", "1", "--out", str(out_path)], capsys)
    assert rc == EXIT_PROBLEMS
    assert "row 1 (line 2)" in err and repr(field) in err
    result = pd.read_csv(out_path, dtype=str, keep_default_na=False)
    assert len(result) == len(ROWS)  # rows in = rows out
    assert list(result["patient_id"])[1:] == [r.split(",")[0] for r in ROWS[1:]]  # not shifted
    assert list(result["record_status"]).count("invalid") == 1


@pytest.mark.parametrize("name", list(BAD_ROWS))
def test_randomise_refuses_only_the_bad_row(tmp_path, capsys, name):
    edit, _ = BAD_ROWS[name]
    path = tmp_path / "patients.csv"
    path.write_bytes(_csv([edit(ROWS[0]), ROWS[1]]))
    rc, out, err = _run(["randomise", str(path), "--log", str(tmp_path / "open.jsonl")], capsys)
    assert rc == EXIT_PROBLEMS
    assert "row 1 (line 2)" in err and "invalid record" in err
    assert [line.split("\t")[1] for line in out.splitlines()[1:]] == ["EX-02"]


def test_a_patient_under_a_look_alike_id_is_not_randomised_twice(tmp_path, capsys):
    """One patient was randomised five times: in one file, and across runs into one log."""
    log = tmp_path / "open.jsonl"
    path = tmp_path / "patients.csv"
    variants = ["ex-02", "EX\u201002", "EX-\u200b02", "\uff25\uff38\uff0d\uff10\uff12"]
    path.write_bytes(_csv([ROWS[1], *(ROWS[1].replace("EX-02", v, 1) for v in variants)]))
    rc, out, err = _run(["randomise", str(path), "--log", str(log)], capsys)
    assert rc == EXIT_PROBLEMS and len(out.splitlines()) == 1  # every copy refused
    path.write_bytes(_csv([ROWS[1]]))
    assert _run(["randomise", str(path), "--log", str(log)], capsys)[0] == 0
    for v in variants:
        path.write_bytes(_csv([ROWS[1].replace("EX-02", v, 1)]))
        rc, out, err = _run(["randomise", str(path), "--log", str(log)], capsys)
        assert rc == EXIT_PROBLEMS and "already randomised" in err, v


def test_classify_output_neutralises_formulas(tmp_path, capsys):
    path = tmp_path / "patients.csv"
    hostile = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)"]
    rows = [ROWS[0].replace("EX-01", f'"{h.replace(chr(34), chr(34) * 2)}"', 1) for h in hostile]
    rows += [ROWS[1].replace(",S01,", ",=1+1,", 1)]
    path.write_bytes(_csv(rows))
    out_path = tmp_path / "out.csv"
    rc, _, _ = _run(["classify", str(path), "--seed", "1", "--out", str(out_path)], capsys)
    assert rc == EXIT_PROBLEMS
    with out_path.open(encoding="utf-8", newline="") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not [c for c in cells if c.startswith(FORMULA_PREFIXES)]


def test_a_log_in_a_folder_that_does_not_exist_is_exit_2_without_a_traceback(tmp_path, capsys):
    log = tmp_path / "missing" / "open.jsonl"
    rc, _, err = _run(["randomise", str(EXAMPLES), "--log", str(log)], capsys)
    assert rc == EXIT_UNUSABLE and "does not exist" in err
    assert not log.parent.exists()


@pytest.mark.parametrize("command", [["log", "verify"], ["log", "recover"], ["log", "head"], []])
def test_a_deeply_nested_json_line_is_exit_2_not_a_recursion_error(tmp_path, capsys, command):
    log = tmp_path / "open.jsonl"
    log.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    argv = [*command, str(log)] if command else ["randomise", str(EXAMPLES), "--log", str(log)]
    rc, _, err = _run(argv, capsys)
    assert rc in (EXIT_PROBLEMS, EXIT_UNUSABLE) and "RecursionError" not in err


def test_an_internal_error_is_exit_3_with_one_line_and_a_traceback_on_request(monkeypatch, capsys):
    import palette_core.cli as cli_module

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli_module, "classify_patients", broken)
    monkeypatch.delenv("PALETTE_DEBUG", raising=False)
    rc, _, err = _run(["classify", str(EXAMPLES), "--seed", "1", "--out", "/dev/null"], capsys)
    assert rc == EXIT_INTERNAL and "internal error (ZeroDivisionError: a bug)" in err
    monkeypatch.setenv("PALETTE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["classify", str(EXAMPLES), "--seed", "1", "--out", "/dev/null"])


def test_exit_statuses_are_distinct_and_documented():
    import palette_core.cli as cli

    assert len({cli.EXIT_OK, EXIT_PROBLEMS, EXIT_UNUSABLE, EXIT_INTERNAL}) == 4
    readme = (support.ROOT / "README.md").read_text(encoding="utf-8")
    for status in (EXIT_PROBLEMS, EXIT_UNUSABLE, EXIT_INTERNAL):
        assert f"**{status}**" in (cli.__doc__ or "") and f"**{status}**" in readme
