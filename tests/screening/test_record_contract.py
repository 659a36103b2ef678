"""The record contract against the defects of issue 13 (Patients and Input): unit mistakes,
impossible combinations, the age of a newborn, hostile values and ragged or duplicated rows.

Each test names the defect it covers; before the contract had ranges by age, checks between
fields, dates and canonical identifiers, each accepted the record.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from palette_core.errors import PatientFileError
from palette_core.screening.classify import classify_patients
from palette_core.screening.patients import AGE_DAYS, read_patients, validate_patients

ADULT = {"patient_id": "p1", "age_years": "54", "sex": "male"}
EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples" / "worked_examples.csv"


def problems(design, record: dict[str, str]) -> dict[str, str]:
    """field -> problem for one record (the row is kept either way)."""
    v = validate_patients(pd.DataFrame([record]), design)
    assert len(v.frame) == 1
    return dict(zip(v.errors["field"], v.errors["problem"], strict=True))


def infant(days_old: int, **fields: str) -> dict[str, str]:
    born = dt.date(2026, 3, 1)
    return {
        "patient_id": "n1",
        "sex": "female",
        "date_of_birth": born.isoformat(),
        "screening_date": (born + dt.timedelta(days=days_old)).isoformat(),
        **fields,
    }


# ----------------------------------------------------------------------------- unit mistakes
@pytest.mark.parametrize(
    ("field", "value", "unit_mistake"),
    [
        ("lymphocytes", "450", "cells/uL for 10^9/L"),
        ("creatinine_mg_dl", "28", "umol/L for mg/dL (0.32 mg/dL)"),
        ("bilirubin_mg_dl", "60", "umol/L for mg/dL"),
        ("lactate_mmol_l", "36", "mg/dL for mmol/L"),
        ("fibrinogen_mg_dl", "3.5", "g/L for mg/dL"),
        ("plasminogen", "8", "percent activity for umol/L"),
    ],
)
def test_a_value_in_the_wrong_unit_is_refused_not_read(design, field, value, unit_mistake):
    found = problems(design, {**ADULT, field: value})
    assert "outside the range" in found[field], unit_mistake


def test_a_lymphocyte_count_per_microlitre_no_longer_makes_the_patient_negative(design):
    """450 cells/uL read as 450 x10^9/L made a lymphopenic patient hypoinflammation-negative:
    now the row is invalid, the value removed, and the trait is not called negative."""
    v = validate_patients(
        pd.DataFrame([{**ADULT, "lymphocytes": "450", "ferritin": "300"}]), design
    )
    assert not v.valid.iloc[0]
    assert pd.isna(v.frame["lymphocytes"].iloc[0])
    out = classify_patients(v, design, seed=1)
    assert out["record_status"].iloc[0] == "invalid"


@pytest.mark.parametrize(
    ("days_old", "age_years", "field", "value"),
    [
        (36, None, "weight_kg", "300"),  # 0.1 y and 300 kg
        (36, None, "weight_kg", "3300"),  # grams for kg
        (None, "3", "weight_kg", "150"),
        (None, "30", "weight_kg", "10"),
        (None, "30", "height_cm", "69"),  # inches for cm
        (200, None, "creatinine_mg_dl", "12"),  # an infant: 12 mg/dL is a unit error
    ],
)
def test_ranges_by_age_refuse_what_is_plausible_only_at_another_age(
    design, days_old, age_years, field, value
):
    record = infant(days_old) if days_old is not None else {**ADULT, "age_years": age_years}
    found = problems(design, {**record, field: value})
    assert "outside the range" in found[field]


def test_the_same_values_at_a_plausible_age_are_accepted(design):
    assert problems(design, {**ADULT, "weight_kg": "150", "creatinine_mg_dl": "12"}) == {}
    assert problems(design, infant(36, weight_kg="4.1", height_cm="54")) == {}


# ----------------------------------------------------------------------------- combinations
@pytest.mark.parametrize(
    ("record", "field", "rule"),
    [
        ({**ADULT, "pregnant": "true"}, "pregnant", "pregnant_female"),
        ({**ADULT, "breastfeeding": "yes"}, "breastfeeding", "lactating_female"),
        (
            {**ADULT, "sex": "female", "age_years": "4", "pregnant": "true"},
            "pregnant",
            "pregnant_age",
        ),
        ({**ADULT, "lymphocytes": "5", "wbc": "3"}, "lymphocytes", "lymphocytes_within_wbc"),
        ({**ADULT, "map_mmhg": "120", "sbp_mmhg": "100"}, "map_mmhg", "map_below_sbp"),
        ({**ADULT, "pf_ratio": "600", "pao2_fio2": "60"}, "pf_ratio", "pf_ratios_agree"),
        ({**ADULT, "pf_ratio": "600", "pao2_mmhg": "60"}, "pf_ratio", "pf_ratio_fio2"),
        ({**ADULT, "pao2_fio2": "100", "pao2_mmhg": "400"}, "pao2_fio2", "pao2_fio2_fio2"),
    ],
)
def test_impossible_combinations_are_typed_errors_naming_the_field(design, record, field, rule):
    found = problems(design, record)
    assert rule in found[field]


def test_consistent_combinations_pass(design):
    record = {
        **ADULT,
        "sex": "female",
        "pregnant": "true",
        "lymphocytes": "1.2",
        "wbc": "9",
        "map_mmhg": "70",
        "sbp_mmhg": "105",
        "pf_ratio": "200",
        "pao2_fio2": "210",
        "pao2_mmhg": "80",
    }
    assert problems(design, record) == {}


def test_a_breastfed_infant_is_not_a_lactating_patient(design):
    """RF-25: "breast feeding" is the lactating patient; ticked for an infant it is refused,
    and an infant with it unticked is not excluded for it."""
    assert "lactating_age" in problems(design, infant(40, breastfeeding="true"))["breastfeeding"]
    assert design.finding("RF-25").reading_status == "proposed"


# ----------------------------------------------------------------------------- the age
def test_a_newborns_age_is_counted_in_days_from_the_dates(design):
    v = validate_patients(pd.DataFrame([infant(7)]), design)
    assert v.errors.empty
    assert v.frame[AGE_DAYS].iloc[0] == 7
    assert v.frame["age_years"].iloc[0] == pytest.approx(7 / 365)  # 2026-03-01 to 2027-03-01


@pytest.mark.parametrize(
    ("record", "field", "problem"),
    [
        ({**ADULT, "age_years": "0.0192"}, "age_years", "date_of_birth and screening_date"),
        ({**infant(7), "screening_date": ""}, "screening_date", "required with date_of_birth"),
        ({**infant(7), "screening_date": "2026-02-01"}, "screening_date", "before date_of_birth"),
        ({**infant(7), "age_years": "2"}, "age_years", "disagrees with the dates"),
        ({**infant(7), "date_of_birth": "2026-02-30"}, "date_of_birth", ""),
        ({**infant(7), "date_of_birth": "1800-01-01"}, "date_of_birth", "implausible"),
        ({**infant(7), "date_of_birth": "0001-01-01"}, "date_of_birth", "not a plausible date"),
        ({**infant(7), "screening_date": "9999-12-31"}, "screening_date", "not a plausible date"),
        (
            {**infant(7), "gestational_age_at_birth_days": "7"},
            "gestational_age_at_birth_days",
            "range",
        ),
        (
            {**infant(7), "gestational_age_at_birth_weeks": "36.5"},
            "gestational_age_at_birth_weeks",
            "whole",
        ),
    ],
)
def test_an_ambiguous_or_impossible_age_is_refused(design, record, field, problem):
    found = problems(design, record)
    assert problem in found[field], found


def test_a_birthday_on_29_february_counts_completed_years_exactly(design):
    record = {
        **ADULT,
        "age_years": "",
        "date_of_birth": "2008-02-29",
        "screening_date": "2026-02-28",
    }
    v = validate_patients(pd.DataFrame([record]), design)
    assert v.errors.empty and v.frame["age_years"].iloc[0] == 18.0


# ----------------------------------------------------------------------------- hostile values
@pytest.mark.parametrize("field", ["gcs", "baseline_sofa", "vasoactives", "elixhauser"])
@pytest.mark.parametrize("value", ["inf", "-inf", "1e309", "9" * 400, "1e20", "3.5", "0x10"])
def test_a_non_finite_huge_or_fractional_integer_makes_one_row_invalid(design, field, value):
    """One such value crashed the whole file (OverflowError); now its row alone is invalid."""
    raw = pd.DataFrame([{**ADULT, field: value}, {**ADULT, "patient_id": "p2"}])
    v = validate_patients(raw, design)
    assert list(v.valid) == [False, True]
    assert v.errors["field"].tolist() == [field]
    assert pd.isna(v.frame[field].iloc[0])


# ----------------------------------------------------------------------------- identifiers
def test_look_alike_patient_ids_are_one_patient_and_every_copy_is_refused(design):
    """One patient was randomised five times under case, hyphen, zero-width and full-width
    variants of its id."""
    ids = ["EX-01", "ex-01", "EX\u201001", "EX-\u200b01", "\uff25\uff38\uff0d\uff10\uff11", "EX-02"]
    v = validate_patients(pd.DataFrame([{**ADULT, "patient_id": i} for i in ids]), design)
    assert list(v.frame["patient_id"]) == ["EX-01"] * 5 + ["EX-02"]
    assert list(v.valid) == [False] * 5 + [True]


def test_a_formula_as_patient_id_is_refused(design):
    v = validate_patients(pd.DataFrame([{**ADULT, "patient_id": "=HYPERLINK(1)"}]), design)
    assert not v.valid.iloc[0] and pd.isna(v.frame["patient_id"].iloc[0])


# ----------------------------------------------------------------------------- ragged files
def _examples(tmp_path: Path, edit) -> Path:
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()
    p = tmp_path / "patients.csv"
    p.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
    return p


def test_a_row_with_an_extra_field_is_invalid_and_nothing_is_shifted(design, tmp_path):
    """One extra field shifted every column: patient ids became site ids."""
    path = _examples(tmp_path, lambda ls: [ls[0], ls[1] + ",X", *ls[2:]])
    v = read_patients(path, design)
    n = len(EXAMPLES.read_text(encoding="utf-8").splitlines()) - 1
    assert len(v.frame) == n  # rows in = rows out
    assert not v.valid.iloc[0] and v.valid.iloc[1:].all()
    assert v.frame["patient_id"].iloc[1] == "EX-02" and v.frame["site_id"].iloc[1] == "S01"
    assert "after the last column" in v.errors["problem"].iloc[0]
    assert v.where(1) == "row 1 (line 2)"


def test_a_row_cut_short_is_invalid_not_valid(design, tmp_path):
    """A row cut to 10 of the header's fields was accepted as valid."""
    path = _examples(tmp_path, lambda ls: [ls[0], ",".join(ls[1].split(",")[:10]), *ls[2:]])
    v = read_patients(path, design)
    assert not v.valid.iloc[0] and v.valid.iloc[1:].all()
    assert "10 of" in v.errors["problem"].iloc[0]


def test_a_stray_carriage_return_refuses_the_file_rather_than_splitting_a_record(design, tmp_path):
    path = _examples(tmp_path, lambda ls: [ls[0], ls[1][:20] + "\r" + ls[1][20:], *ls[2:]])
    with pytest.raises(PatientFileError, match="line 2: a carriage return"):
        read_patients(path, design)
