"""The patient record contract: parsing, validation, nothing dropped or guessed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palette_core.errors import PatientFileError, PatientRecordError
from palette_core.screening.patients import (
    DTYPES,
    coerce_patients,
    contract_schema,
    read_patients,
    validate_patients,
    validate_record,
)

BASE = {"patient_id": "p1", "age_years": "54", "sex": "male"}


def test_contract_covers_every_trait_biomarker_with_its_unit(design):
    for bid, biomarker in design.biomarkers.items():
        assert design.patient_fields[bid].unit == biomarker.unit


def test_schema_has_one_column_per_contract_field(design):
    assert set(contract_schema(design).columns) == set(design.patient_fields)


def test_valid_rows_get_contract_dtypes(design):
    raw = pd.DataFrame([{**BASE, "inr": "1.40", "imv": "yes", "gcs": "14", "pedsep_class": ""}])
    result = validate_patients(raw, design)
    assert result.errors.empty
    for name, fld in design.patient_fields.items():
        assert str(result.frame[name].dtype) == DTYPES[fld.kind], name
    row = result.frame.iloc[0]
    assert row["inr"] == 1.40 and bool(row["imv"]) is True and row["gcs"] == 14
    assert pd.isna(row["pedsep_class"]) and math.isnan(row["ferritin"])


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("age_years", "abc", "not a valid float"),
        ("age_years", "121", "outside the range [0, 120] years"),
        ("inr", "0.4", "outside the range [0.5, 20] ratio"),
        ("ferritin", "-1", "outside the range"),
        ("gcs", "14.5", "not a valid int"),
        ("gcs", "2", "outside the range [3, 15] points"),
        ("imv", "maybe", "not a valid bool"),
        ("sex", "x", "not one of ['female', 'male']"),
        ("seymour_class", "epsilon", "not one of"),
    ],
)
def test_bad_value_is_reported_with_row_field_and_value(design, field, value, problem):
    raw = pd.DataFrame([{**BASE, "patient_id": "ok"}, {**BASE, "patient_id": "bad", field: value}])
    result = validate_patients(raw, design, source="x.csv")
    assert list(result.valid) == [True, False]
    err = result.errors.iloc[0]
    assert (err["row"], err["patient_id"], err["field"], err["value"]) == (
        2,
        "bad",
        field,
        value,
    ) or (err["row"] == 2 and err["field"] == field)
    assert problem in err["problem"]
    assert len(result.frame) == 2  # the bad row is kept, not dropped
    assert pd.isna(result.frame.loc[1, field])  # the bad value is removed, not clipped


def test_missing_required_value_is_an_error_not_a_guess(design):
    raw = pd.DataFrame([{**BASE, "sex": ""}])
    result = validate_patients(raw, design)
    assert result.errors.iloc[0]["field"] == "sex"
    assert result.errors.iloc[0]["problem"] == "required but missing"


def test_unparseable_required_value_is_reported_once(design):
    result = validate_patients(pd.DataFrame([{**BASE, "age_years": "old"}]), design)
    assert len(result.errors) == 1


def test_unknown_column_rejects_the_file(design):
    with pytest.raises(PatientFileError, match="unknown column"):
        validate_patients(pd.DataFrame([{**BASE, "ferritn": "900"}]), design, source="f.csv")


def test_missing_required_column_rejects_the_file(design):
    with pytest.raises(PatientFileError, match=r"required column\(s\) \['sex'\]"):
        validate_patients(pd.DataFrame([{"patient_id": "p", "age_years": "3"}]), design)


def test_validate_record_raises_typed_error_naming_the_field(design):
    with pytest.raises(PatientRecordError) as info:
        validate_record({**BASE, "lymphocytes": 900}, design)
    assert info.value.field == "lymphocytes"
    assert "P1" in str(info.value) and "lymphocytes" in str(info.value)


def test_row_errors_join_every_problem_of_a_row(design):
    raw = pd.DataFrame([{**BASE, "inr": "0", "imv": "maybe"}])
    text = validate_patients(raw, design).row_errors().iloc[0]
    assert "inr:" in text and "imv:" in text


def test_read_csv_and_parquet_give_the_same_frame(design, tmp_path):
    raw = pd.DataFrame([{**BASE, "inr": "1.4", "platelets": "120"}, {**BASE, "patient_id": "p2"}])
    raw.to_csv(tmp_path / "p.csv", index=False)
    typed = validate_patients(raw, design).frame
    typed.to_parquet(tmp_path / "p.parquet")
    a = read_patients(tmp_path / "p.csv", design)
    b = read_patients(tmp_path / "p.parquet", design)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.errors.empty and b.errors.empty


def test_read_rejects_other_formats_and_missing_files(design, tmp_path):
    with pytest.raises(PatientFileError, match="not found"):
        read_patients(tmp_path / "none.csv", design)
    (tmp_path / "p.xlsx").write_text("x")
    with pytest.raises(PatientFileError, match=".csv or .parquet"):
        read_patients(tmp_path / "p.xlsx", design)


def test_coerce_raises_on_the_first_invalid_value_with_its_row(design):
    raw = pd.DataFrame([{**BASE}, {**BASE, "patient_id": "p2", "inr": "99"}])
    with pytest.raises(PatientRecordError) as info:
        coerce_patients(raw, design)
    assert info.value.row == 2 and info.value.field == "inr"


@settings(max_examples=60, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
def test_numeric_values_are_kept_in_range_or_reported_never_clipped(design, value):
    lo, hi = design.patient_fields["ferritin"].range
    result = validate_patients(pd.DataFrame([{**BASE, "ferritin": value}]), design)
    if lo <= value <= hi:
        assert result.errors.empty and result.frame.loc[0, "ferritin"] == value
    else:
        assert list(result.errors["field"]) == ["ferritin"]
        assert np.isnan(result.frame.loc[0, "ferritin"])
