"""Screening end to end (palette_core.screening.classify) and `palette classify`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import DATA

from palette_core.cli import main
from palette_core.screening.classify import classification_summary, classify_patients
from palette_core.screening.cohort import generate_cohort
from palette_core.screening.patients import read_patients, validate_patients

EXAMPLES = DATA / "examples" / "worked_examples.csv"


@pytest.fixture(scope="module")
def worked(design):
    return classify_patients(read_patients(EXAMPLES, design), design, seed=7)


def test_worked_examples_get_the_documented_answers(worked):
    by_id = worked.set_index("patient_id")
    assert by_id.loc["EX-01", "eligible"] == "eligible"
    assert by_id.loc["EX-01", "trait_hypercoagulation"] == "positive"  # INR 1.40 and platelets 149
    assert by_id.loc["EX-02", "trait_mals"] == "negative"  # ferritin exactly 4420
    assert by_id.loc["EX-02", "trait_hypoinflammation"] == "negative"  # lymphocytes exactly 1.0
    assert by_id.loc["EX-03", "trait_hypoinflammation"] == "indeterminate"  # lymphocytes missing
    assert by_id.loc["EX-03", "trait_hypercoagulation"] == "positive"  # INR and a 31 % fall
    assert by_id.loc["EX-04", "eligible"] == "ineligible"  # pregnancy
    assert "pregnan" in by_id.loc["EX-04", "eligibility_reasons"]
    assert by_id.loc["EX-05", "trait_mals"] == "positive"  # child, ferritin 501 > 500
    assert by_id.loc["EX-05", "trait_hypercoagulation"] == "not applicable"  # adult-only trait
    assert by_id.loc["EX-06", "eligible"] == "ineligible"  # corrected GA 36 weeks
    assert by_id.loc["EX-07", "eligible"] == "ineligible"  # no organ dysfunction


def test_only_eligible_patients_are_assigned_a_trait(worked):
    eligible = worked["eligible"] == "eligible"
    assert worked.loc[~eligible, "assigned_trait"].isna().all()
    assigned = worked.loc[eligible, "assigned_trait"].dropna()
    for pid, trait in zip(worked.loc[assigned.index, "patient_id"], assigned, strict=True):
        positive = worked.set_index("patient_id").loc[pid, "positive_traits"].split(";")
        assert trait in positive


def test_invalid_rows_are_kept_reported_and_not_classified(design):
    raw = pd.read_csv(EXAMPLES, dtype=str, keep_default_na=False)
    raw.loc[2, "inr"] = "abc"
    raw.loc[4, "ferritin"] = "-5"
    result = classify_patients(validate_patients(raw, design), design, seed=7)
    assert len(result) == len(raw)
    assert list(result["patient_id"]) == list(raw["patient_id"])
    assert list(result.loc[[2, 4], "record_status"]) == ["invalid", "invalid"]
    assert "inr" in result.loc[2, "record_errors"] and "ferritin" in result.loc[4, "record_errors"]
    assert result.loc[[2, 4], "eligible"].isna().all()
    assert (result.drop(index=[2, 4])["record_status"] == "valid").all()
    assert result.drop(index=[2, 4])["eligible"].notna().all()


def test_assignment_is_the_same_alone_or_in_a_batch(design):
    cohort = validate_patients(generate_cohort(design, n=300, seed=3), design)
    batch = classify_patients(cohort, design, seed=11).set_index("patient_id")
    for i in (0, 57, 211):
        row = cohort.frame.iloc[[i]].reset_index(drop=True)
        alone = classify_patients(validate_patients(row, design), design, seed=11).iloc[0]
        a, b = alone["assigned_trait"], batch.loc[alone["patient_id"], "assigned_trait"]
        assert (pd.isna(a) and pd.isna(b)) or a == b


def test_summary_counts_add_up(design, worked):
    summary = classification_summary(worked, design).set_index("count of")["n"]
    assert summary["records"] == len(worked)
    assert summary["eligible"] + summary["ineligible"] + summary["indeterminate"] == len(worked)


def test_cli_classify_round_trip_keeps_every_row(design, tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert main(["classify", str(EXAMPLES), "--seed", "7", "--out", str(out)]) == 0
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    expected = classify_patients(read_patients(EXAMPLES, design), design, seed=7)
    assert len(written) == len(expected)
    assert list(written["patient_id"]) == list(expected["patient_id"])
    assert list(written["eligible"]) == list(expected["eligible"])
    assert list(written["assigned_trait"]) == [
        x if isinstance(x, str) else "" for x in expected["assigned_trait"]
    ]
    assert set(written["seed"]) == {"7"}
    assert "wrote 7 rows (input 7)" in capsys.readouterr().out


def test_cli_classify_reports_bad_rows_and_exits_1(tmp_path, capsys):
    raw = pd.read_csv(EXAMPLES, dtype=str, keep_default_na=False)
    raw.loc[1, "lymphocytes"] = "lots"
    src = tmp_path / "bad.csv"
    raw.to_csv(src, index=False)
    out = tmp_path / "bad.out.parquet"
    assert main(["classify", str(src), "--seed", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "row 2" in err and "'lymphocytes'" in err and "'lots'" in err
    written = pd.read_parquet(out)
    assert len(written) == len(raw)
    assert written.loc[1, "record_status"] == "invalid"


def test_cli_classify_rejects_an_unknown_column_with_exit_2(tmp_path, capsys):
    raw = pd.read_csv(EXAMPLES, dtype=str, keep_default_na=False).rename(
        columns={"ferritin": "feritin"}
    )
    src = tmp_path / "cols.csv"
    raw.to_csv(src, index=False)
    assert main(["classify", str(src), "--seed", "1"]) == 2
    assert "feritin" in capsys.readouterr().err


def test_cli_classify_policy_sensitivity_uses_priority_order(tmp_path):
    out = tmp_path / "s.csv"
    main(["classify", str(EXAMPLES), "--seed", "7", "--policy", "sensitivity", "--out", str(out)])
    written = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("patient_id")
    assert (
        written.loc["EX-02", "assigned_trait"] == "hypofibrinolysis"
    )  # first in the priority order


def test_installed_command_classifies(tmp_path):
    exe = Path(sys.executable).parent / "palette"
    out = tmp_path / "o.csv"
    proc = subprocess.run(
        [str(exe), "classify", str(EXAMPLES), "--seed", "3", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(out)) == 7
