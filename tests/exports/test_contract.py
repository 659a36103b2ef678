"""The data export contract: every kind of bad row, every file-level problem, counts kept."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from support import TEST_DATA

from palette_core.errors import ExportFileError, ExportRowError, PaletteError
from palette_core.exports.contract import (
    ERROR_COLUMNS,
    ExportMeta,
    export_columns,
    format_intervals,
    parse_intervals,
    read_export,
    validate_export,
)

EXPORTS = TEST_DATA / "exports"
CUT = "2026-09-30"
META = {"trial_id": "NCT06381661", "export_id": "test-1", "data_cut": CUT}


def good(**changes: str) -> dict[str, str]:
    """A valid row (randomised 2026-06-01, ventilated days 1-4, discharged day 10)."""
    row = {
        "patient_id": "P001",
        "site_id": "S01",
        "country": "FR",
        "randomisation_date": "2026-06-01",
        "age_group": "adult",
        "weight_kg": "72.5",
        "positive_traits": "hyperinflammation;mals",
        "assigned_trait": "mals",
        "arm": "mals_anakinra",
        "sofa_score": "7",
        "phoenix_score": "",
        "death_date": "",
        "icu_discharge_date": "2026-06-06",
        "hospital_discharge_date": "2026-06-10",
        "last_known_alive_date": "2026-06-28",
        "withdrawal_date": "",
        "withdrawal_scope": "",
        "support_invasive_ventilation": "2026-06-01/2026-06-04",
        "support_non_invasive_ventilation": "",
        "support_high_flow_oxygen": "",
        "support_vasopressors": "2026-06-02/2026-06-03",
        "support_renal_replacement": "",
        "support_ecmo": "",
        "isth_major_bleeding_date": "",
        "secondary_infection_date": "2026-06-05",
        "open_label_substances": "",
    }
    row.update(changes)
    return row


def validate(rows: list[dict[str, str]], design, **meta: Any):
    return validate_export(pd.DataFrame(rows), {**META, **meta}, design)


def test_the_fixture_row_covers_every_contract_column(design):
    assert list(good()) == list(export_columns(design))


def test_a_valid_export_keeps_every_row_typed(design):
    rows = [good(patient_id=f"P{i:03d}") for i in range(3)]
    rows[1]["support_high_flow_oxygen"] = "2026-06-05/2026-06-06;2026-06-08/2026-06-09"
    rows[2].update(hospital_discharge_date="", last_known_alive_date="")
    rows[2]["support_ecmo"] = "2026-06-20/"
    rows[2]["open_label_substances"] = "tocilizumab;ufh"
    v = validate(rows, design)
    assert (v.n_rows, v.n_valid, v.n_invalid) == (3, 3, 0)
    assert v.errors.empty and list(v.errors.columns) == list(ERROR_COLUMNS)
    f = v.frame
    assert list(f.index) == [0, 1, 2]
    assert list(f["line"]) == [2, 3, 4] and list(f["row"]) == [0, 1, 2]
    assert list(f["record_status"]) == ["valid"] * 3 and list(f["record_errors"]) == [""] * 3
    assert str(f["randomisation_date"].dtype) == "datetime64[ns]"
    assert f.at[0, "randomisation_date"] == pd.Timestamp("2026-06-01")
    assert pd.isna(f.at[0, "death_date"])
    assert f.at[0, "weight_kg"] == 72.5
    assert f.at[0, "positive_traits"] == ("hyperinflammation", "mals")
    assert f.at[0, "open_label_substances"] == ()
    assert f.at[2, "open_label_substances"] == ("tocilizumab", "ufh")
    assert f.at[1, "support_high_flow_oxygen"] == (
        (dt.date(2026, 6, 5), dt.date(2026, 6, 6)),
        (dt.date(2026, 6, 8), dt.date(2026, 6, 9)),
    )
    assert f.at[2, "support_ecmo"] == ((dt.date(2026, 6, 20), None),)
    assert f.at[0, "support_ecmo"] == ()
    assert v.meta == ExportMeta("NCT06381661", "test-1", dt.date(2026, 9, 30), None)
    assert v.require_valid() is v


def test_interval_text_round_trips():
    text = "2026-06-05/2026-06-06;2026-06-20/"
    assert format_intervals(parse_intervals(text)) == text


# ----------------------------------------------------------------------------- bad rows
# (case, changes to the good row, field that must be named, message fragment)
BAD_ROWS = [
    ("unparseable date", {"death_date": "2026-02-30"}, "death_date", "calendar date"),
    ("date not ISO", {"randomisation_date": "01/06/2026"}, "randomisation_date", "ISO"),
    ("unknown trait", {"positive_traits": "mals;sepsis"}, "positive_traits", "unknown trait"),
    ("trait listed twice", {"positive_traits": "mals;mals"}, "positive_traits", "twice"),
    ("empty list entry", {"positive_traits": "mals;"}, "positive_traits", "empty entry"),
    ("no positive trait", {"positive_traits": ""}, "positive_traits", "required"),
    ("unknown assigned trait", {"assigned_trait": "malss"}, "assigned_trait", "unknown trait id"),
    ("unknown arm", {"arm": "mals_placebo"}, "arm", "unknown arm id (not in arms.yaml)"),
    ("unknown age group", {"age_group": "elderly"}, "age_group", "unknown age group id"),
    ("arm of another trait", {"arm": "hinf_anakinra"}, "arm", "belongs to trait"),
    (
        "arm not admitting the age group",
        {
            "positive_traits": "hypercoagulation",
            "assigned_trait": "hypercoagulation",
            "arm": "hcoag_rhtm",
            "age_group": "child",
        },
        "arm",
        "does not admit age group 'child'",
    ),
    (
        "assigned trait not positive",
        {"positive_traits": "hyperinflammation"},
        "assigned_trait",
        "not among positive_traits",
    ),
    ("date before randomisation", {"secondary_infection_date": "2026-05-31"}, None, None),
    ("date after the data cut", {"last_known_alive_date": "2026-10-01"}, None, None),
    ("randomised after the data cut", {"randomisation_date": "2026-10-01"}, None, None),
    ("randomised before the study start", {"randomisation_date": "2026-04-30"}, None, None),
    (
        "icu discharge after hospital discharge",
        {"icu_discharge_date": "2026-06-11"},
        "icu_discharge_date",
        "after hospital_discharge_date",
    ),
    (
        "death before discharge",
        {"death_date": "2026-06-09", "last_known_alive_date": ""},
        "death_date",
        "before hospital_discharge_date",
    ),
    (
        "last known alive after death",
        {"death_date": "2026-06-20"},
        "last_known_alive_date",
        "after death_date",
    ),
    (
        "safety event after death",
        {
            "death_date": "2026-06-20",
            "last_known_alive_date": "",
            "isth_major_bleeding_date": "2026-06-21",
        },
        "isth_major_bleeding_date",
        "after death_date",
    ),
    (
        "withdrawal date without scope",
        {"withdrawal_date": "2026-06-15"},
        "withdrawal_scope",
        "required when withdrawal_date",
    ),
    (
        "withdrawal scope without date",
        {"withdrawal_scope": "follow_up"},
        "withdrawal_date",
        "required when withdrawal_scope",
    ),
    (
        "unknown withdrawal scope",
        {"withdrawal_scope": "all", "withdrawal_date": "2026-06-15"},
        "withdrawal_scope",
        "not one of",
    ),
    ("interval without a slash", {"support_ecmo": "2026-06-01"}, "support_ecmo", "malformed"),
    (
        "interval with two slashes",
        {"support_ecmo": "2026-06-01/2026-06-02/2026-06-03"},
        "support_ecmo",
        "malformed",
    ),
    ("interval without a start", {"support_ecmo": "/2026-06-02"}, "support_ecmo", "malformed"),
    (
        "interval with a bad date",
        {"support_ecmo": "2026-06-01/2026-06-32"},
        "support_ecmo",
        "malformed",
    ),
    (
        "reversed interval",
        {"support_ecmo": "2026-06-03/2026-06-01"},
        "support_ecmo",
        "ends before it starts",
    ),
    (
        "interval before randomisation",
        {"support_ecmo": "2026-05-30/2026-06-01"},
        "support_ecmo",
        "starts before randomisation_date",
    ),
    (
        "interval after death",
        {
            "death_date": "2026-06-12",
            "hospital_discharge_date": "",
            "icu_discharge_date": "",
            "last_known_alive_date": "",
            "support_ecmo": "2026-06-10/2026-06-13",
        },
        "support_ecmo",
        "after death_date",
    ),
    (
        "interval after hospital discharge",
        {"support_ecmo": "2026-06-09/2026-06-11"},
        "support_ecmo",
        "after hospital_discharge_date",
    ),
    (
        "interval after the data cut",
        {
            "hospital_discharge_date": "",
            "last_known_alive_date": "",
            "support_ecmo": "2026-09-01/2026-10-02",
        },
        "support_ecmo",
        "after the data cut",
    ),
    ("open interval, discharged", {"support_ecmo": "2026-06-08/"}, "support_ecmo", "open-ended"),
    (
        "open interval, dead",
        {
            "death_date": "2026-06-12",
            "hospital_discharge_date": "",
            "icu_discharge_date": "",
            "last_known_alive_date": "",
            "support_ecmo": "2026-06-08/",
        },
        "support_ecmo",
        "the patient died",
    ),
    ("weight out of range", {"weight_kg": "400"}, "weight_kg", "outside the range"),
    ("weight not a number", {"weight_kg": "72,5"}, "weight_kg", "not a number"),
    ("weight infinite", {"weight_kg": "inf"}, "weight_kg", "finite"),
    ("country lower case", {"country": "fr"}, "country", "does not match"),
    ("country spelt out", {"country": "France"}, "country", "does not match"),
    (
        "unknown substance",
        {"open_label_substances": "anakinra;aspirin"},
        "open_label_substances",
        "unknown substance",
    ),
    ("SOFA not whole", {"sofa_score": "7.5"}, "sofa_score", "not a whole number"),
    ("SOFA out of range", {"sofa_score": "25"}, "sofa_score", "outside the range [0, 24]"),
    ("SOFA not a number", {"sofa_score": "high"}, "sofa_score", "not a number"),
    ("Phoenix out of range", {"phoenix_score": "14"}, "phoenix_score", "outside the range"),
    (
        "Phoenix score for an adult",
        {"sofa_score": "", "phoenix_score": "3"},
        "phoenix_score",
        "the child severity score given for a patient of age group 'adult'",
    ),
    (
        "SOFA score for a child",
        {"age_group": "child"},
        "sofa_score",
        "the adult severity score given for a patient of age group 'child'",
    ),
    ("patient id missing", {"patient_id": ""}, "patient_id", "required but missing"),
    ("arm missing", {"arm": ""}, "arm", "required but missing"),
]
# the cases whose field and message depend on the date at fault
DATE_CASES = {
    "date before randomisation": ("secondary_infection_date", "before randomisation_date"),
    "date after the data cut": ("last_known_alive_date", "after the data cut"),
    "randomised after the data cut": ("randomisation_date", "after the data cut"),
    "randomised before the study start": ("randomisation_date", "before the study start"),
}


@pytest.mark.parametrize(
    ("case", "changes", "field", "message"), BAD_ROWS, ids=[c[0] for c in BAD_ROWS]
)
def test_each_kind_of_bad_row_is_reported_with_line_field_and_value(
    design, case, changes, field, message
):
    if field is None:
        field, message = DATE_CASES[case]
    rows = [
        good(patient_id="P001"),
        good(**{"patient_id": "P002", **changes}),
        good(patient_id="P003"),
    ]
    v = validate(rows, design)
    assert v.n_rows == 3 and v.n_valid == 2 and v.n_invalid == 1, v.errors
    assert list(v.frame["record_status"]) == ["valid", "invalid", "valid"]
    hits = v.errors[v.errors["field"] == field]
    assert len(hits) >= 1, v.errors.to_string()
    hit = hits.iloc[0]
    assert (hit["line"], hit["row"]) == (3, 1)
    expected_id = rows[1]["patient_id"] or None
    assert (hit["patient_id"] if not pd.isna(hit["patient_id"]) else None) == expected_id
    assert hit["value"] == rows[1][field]
    assert message in hit["message"], hit["message"]
    assert set(v.errors["row"]) == {1}
    assert field in v.frame.at[1, "record_errors"]


def test_an_invalid_value_is_cleared_in_the_frame_but_kept_as_text(design):
    v = validate([good(weight_kg="400", country="fr", death_date="2026-13-01")], design)
    assert pd.isna(v.frame.at[0, "weight_kg"]) and pd.isna(v.frame.at[0, "country"])
    assert pd.isna(v.frame.at[0, "death_date"])
    assert dict(zip(v.errors["field"], v.errors["value"], strict=True)) == {
        "country": "fr",
        "weight_kg": "400",
        "death_date": "2026-13-01",
    }
    # errors are listed in the order of the contract within a row
    assert list(v.errors["field"]) == ["country", "weight_kg", "death_date"]
    with pytest.raises(ExportRowError, match="line 2, patient 'P001', field 'country'") as info:
        v.require_valid()
    assert isinstance(info.value, PaletteError) and info.value.row == 0


def test_a_contradiction_keeps_both_values(design):
    v = validate([good(death_date="2026-06-09", last_known_alive_date="")], design)
    assert v.frame.at[0, "death_date"] == pd.Timestamp("2026-06-09")
    assert list(v.errors["field"]) == ["death_date"]


def test_every_repeat_of_a_patient_id_after_the_first_is_invalid(design):
    rows = [good(patient_id="A"), good(patient_id="B"), good(patient_id="A"), good(patient_id="A")]
    v = validate(rows, design)
    assert list(v.frame["record_status"]) == ["valid", "valid", "invalid", "invalid"]
    assert list(v.errors["row"]) == [2, 3] and set(v.errors["field"]) == {"patient_id"}
    assert list(v.errors["line"]) == [4, 5]


def test_overlapping_supports_are_valid(design):
    v = validate(
        [good(support_high_flow_oxygen="2026-06-02/2026-06-05;2026-06-03/2026-06-04")], design
    )
    assert v.n_valid == 1


def test_open_interval_is_valid_while_in_hospital(design):
    row = good(hospital_discharge_date="", icu_discharge_date="", last_known_alive_date="")
    row["support_renal_replacement"] = "2026-09-20/"
    assert validate([row], design).n_valid == 1


def test_a_valid_row_is_never_dropped_among_many_bad_ones(design):
    bad = [good(**{"patient_id": f"B{i}", **c}) for i, (_, c, *_r) in enumerate(BAD_ROWS)]
    rows = [*bad[:10], good(patient_id="KEEP"), *bad[10:]]
    v = validate(rows, design)
    assert v.n_rows == len(rows) == v.n_valid + v.n_invalid
    assert v.n_valid == 1
    kept = v.frame[v.frame["record_status"] == "valid"]
    assert list(kept["patient_id"]) == ["KEEP"] and list(kept["line"]) == [12]
    assert set(v.errors["row"]) == set(range(len(rows))) - {10}


def test_cells_given_as_python_objects_are_read_as_their_text(design):
    row: dict[str, Any] = good()
    row.update(
        randomisation_date=dt.date(2026, 6, 1),
        weight_kg=72.5,
        death_date=None,
        withdrawal_scope=float("nan"),
    )
    v = validate([row], design)
    assert v.n_valid == 1 and v.frame.at[0, "weight_kg"] == 72.5


def test_an_empty_export_is_valid_with_zero_rows(design):
    v = validate_export(pd.DataFrame(columns=list(export_columns(design))), META, design)
    assert (v.n_rows, v.n_valid, v.n_invalid) == (0, 0, 0)


# ----------------------------------------------------------------------------- metadata
@pytest.mark.parametrize(
    ("meta", "field", "message"),
    [
        ({"trial_id": "NCT00000000"}, "trial_id", "NCT00000000"),
        ({"data_cut": "30/09/2026"}, "data_cut", "ISO"),
        ({"data_cut": dt.datetime(2026, 9, 30, 12)}, "data_cut", "calendar date"),
        ({"data_cut": None}, "data_cut", "required"),
        ({"export_id": 7}, "export_id", "not text"),
        ({"database": "x"}, "database", "unknown metadata entry"),
    ],
)
def test_bad_metadata_is_a_file_error(design, meta, field, message):
    with pytest.raises(ExportFileError) as info:
        validate_export(pd.DataFrame([good()]), {**META, **meta}, design)
    assert info.value.field == field and message in str(info.value)


def test_meta_may_be_given_as_export_meta(design):
    meta = ExportMeta("NCT06381661", "x", dt.date(2026, 9, 30), "tests")
    assert validate_export(pd.DataFrame([good()]), meta, design).meta == meta


# ----------------------------------------------------------------------------- files
@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "export"
    shutil.copytree(EXPORTS / "small", dest)
    return dest


def test_read_export_reports_csv_lines_and_keeps_every_record(design, export_dir):
    v = read_export(export_dir, design)
    assert v.source == str(export_dir)
    assert v.meta.export_id == "small-1" and v.meta.data_cut == dt.date(2026, 9, 30)
    # patients.csv: header, P1 (valid), P2 (bad country), a blank line, P3 (valid), P4 (bad date)
    assert list(v.frame["patient_id"]) == ["P1", "P2", "P3", "P4"]
    assert list(v.frame["line"]) == [2, 3, 5, 6]
    assert list(v.frame["record_status"]) == ["valid", "invalid", "valid", "invalid"]
    assert list(
        zip(
            v.errors["line"],
            v.errors["patient_id"],
            v.errors["field"],
            v.errors["value"],
            strict=True,
        )
    ) == [
        (3, "P2", "country", "Fr"),
        (6, "P4", "death_date", "2026-06-31"),
    ]


def _rewrite_csv(folder: Path, edit) -> None:
    path = folder / "patients.csv"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "make", "field", "message"),
    [
        ("no folder", lambda d: shutil.rmtree(d), None, "folder not found"),
        ("no metadata", lambda d: (d / "export.yaml").unlink(), None, "file not found"),
        ("no patients", lambda d: (d / "patients.csv").unlink(), None, "file not found"),
        (
            "metadata not YAML",
            lambda d: (d / "export.yaml").write_text("trial_id: [\n", encoding="utf-8"),
            None,
            "not valid YAML",
        ),
        (
            "metadata of another trial",
            lambda d: (d / "export.yaml").write_text(
                yaml.safe_dump({**META, "trial_id": "NCT1"}), encoding="utf-8"
            ),
            "trial_id",
            "NCT1",
        ),
        (
            "unknown column",
            lambda d: _rewrite_csv(d, lambda t: t.replace("site_id", "site", 1)),
            "site",
            "unknown column",
        ),
        (
            "missing column",
            lambda d: _rewrite_csv(
                d, lambda t: "\n".join(",".join(line.split(",")[:-1]) for line in t.splitlines())
            ),
            "open_label_substances",
            "column missing",
        ),
        (
            "repeated column",
            lambda d: _rewrite_csv(d, lambda t: t.replace("site_id", "patient_id", 1)),
            "patient_id",
            "repeated",
        ),
        (
            "ragged row",
            lambda d: _rewrite_csv(d, lambda t: t.replace("\nP3,", "\nP3,extra,", 1)),
            None,
            "line 5",
        ),
        (
            "not UTF-8",
            lambda d: (d / "patients.csv").write_bytes(b"patient_id\ncaf\xe9\n"),
            None,
            "not UTF-8",
        ),
        (
            "empty file",
            lambda d: (d / "patients.csv").write_text("", encoding="utf-8"),
            None,
            "empty",
        ),
        (  # issue 13: whitespace, binary, UTF-16, an unbalanced quote, a stray CR
            "whitespace only",
            lambda d: (d / "patients.csv").write_text(" \n\t\n", encoding="utf-8"),
            None,
            "empty",
        ),
        (
            "binary",
            lambda d: (d / "patients.csv").write_bytes(bytes(range(256))),
            None,
            "binary",
        ),
        (
            "UTF-16",
            lambda d: (d / "patients.csv").write_bytes(
                (d / "patients.csv").read_text(encoding="utf-8").encode("utf-16")
            ),
            None,
            "UTF-16",
        ),
        (
            "unbalanced quote",
            lambda d: _rewrite_csv(d, lambda t: t.replace("\nP3,", '\n"P3,', 1)),
            None,
            "not valid CSV",
        ),
        (
            "stray carriage return",
            lambda d: _rewrite_csv(d, lambda t: t.replace("\nP3,", "\nP3\r,", 1)),
            None,
            "carriage return",
        ),
    ],
)
def test_file_level_problems_raise_export_file_error(
    design, export_dir, name, make, field, message
):
    make(export_dir)
    with pytest.raises(ExportFileError) as info:
        read_export(export_dir, design)
    err = info.value
    assert isinstance(err, PaletteError) and isinstance(err, ValueError)
    assert err.field == field, err
    assert message in str(err), err


def test_a_header_only_export_has_zero_rows(design, export_dir):
    _rewrite_csv(export_dir, lambda t: t.splitlines()[0] + "\n")
    v = read_export(export_dir, design)
    assert v.n_rows == 0 and v.errors.empty


def test_validation_of_a_large_export_counts_every_invalid_row(design):
    rows = [good(patient_id=f"P{i:05d}") for i in range(2000)]
    for i in range(0, 2000, 97):
        rows[i]["country"] = "france"
    v = validate(rows, design)
    assert v.n_rows == 2000 and v.n_invalid == len(range(0, 2000, 97))


def test_look_alike_patient_ids_are_one_patient_in_an_export(design):
    """Issue 13: case, a Unicode hyphen, a zero-width space and full-width letters made five
    patients of one."""
    ids = ["P-1", "p-1", "P\u20101", "P-\u200b1", "\uff30\uff0d\uff11"]
    v = validate([good(patient_id=i) for i in ids], design)
    assert list(v.frame["patient_id"]) == ["P-1"] * 5
    assert list(v.frame["record_status"]) == ["valid"] + ["invalid"] * 4


def test_a_formula_as_patient_id_makes_the_row_invalid_and_is_not_kept(design):
    v = validate([good(patient_id='=HYPERLINK("http://x","y")'), good(patient_id="P2")], design)
    assert list(v.frame["record_status"]) == ["invalid", "valid"]
    assert v.errors.iloc[0]["field"] == "patient_id"
    assert not str(v.frame.iloc[0]["patient_id"]).startswith("=")


def test_a_missing_severity_score_leaves_the_row_valid(design):
    """The severity scores are proposed and optional: empty = not assessable, never invalid;
    a child's Phoenix score is kept as a number."""
    rows = [
        good(patient_id="P001", sofa_score=""),
        good(patient_id="P002", age_group="child", sofa_score="", phoenix_score="4"),
    ]
    v = validate(rows, design)
    assert v.n_valid == 2, v.errors
    assert v.frame["sofa_score"].isna().all() and v.frame.at[1, "phoenix_score"] == 4.0
