"""Seymour 2019 subphenotypes: the constants, our implementation, and agreement with SENECA.

The mock data of the authors' repository (tests/data/seneca, MIT licence) has no complete row:
every patient misses at least two of the 29 variables, and the script imputes them before it
assigns. So the agreement is shown in two steps:

1. as the data stand, our assignment (which does not impute) says "not computable" for all 100
   rows and names the missing variables;
2. with the script's imputed values filled in (recovered exactly, see
   tests/data/seneca/README.md), our distances equal the published ones to ~1e-13 and our
   classes agree in 100 of 100 rows, when age is left out of the distance as the script
   (unintentionally) does; with age in the distance, as in the paper and by default, 97 of 100.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from support import DATA, TEST_DATA

from palette_core.errors import DesignSchemaError
from palette_core.screening.seymour import (
    CLASS_COLUMN,
    REASON_COLUMN,
    UNUSABLE_COLUMN,
    assign_seymour,
    load_seymour_reference,
    seymour_distances,
)

SENECA = TEST_DATA / "seneca"
CONTRACT = DATA / "design" / "patient_record.yaml"
DIST_COLS = ["dist_alpha", "dist_beta", "dist_gamma", "dist_delta"]


@pytest.fixture(scope="module")
def ref(design):
    return load_seymour_reference(design)


@pytest.fixture(scope="module")
def mock() -> pd.DataFrame:
    return pd.read_csv(SENECA / "SENECA - Mock Dataset.csv")


@pytest.fixture(scope="module")
def published() -> pd.DataFrame:
    return pd.read_csv(SENECA / "SENECA - Mock Data - Phenotype Assignments.csv")


def as_record(mock: pd.DataFrame, ref) -> pd.DataFrame:
    """SENECA columns renamed to PALETTE's record fields, with the record's dtypes."""
    out = pd.DataFrame(index=mock.index)
    for v in ref.variables:
        col = mock[v.seneca]
        if v.codes is not None:
            col = col.map({code: name for name, code in v.codes.items()}).astype("string")
        elif v.field in ("gcs", "elixhauser"):
            col = col.astype("Int64")
        else:
            col = col.astype("float64")
        out[v.field] = col
    return out


def completed(mock: pd.DataFrame) -> pd.DataFrame:
    """The mock data with the script's imputed values (recovered_imputations.csv) filled in."""
    imputed = pd.read_csv(SENECA / "recovered_imputations.csv")
    full = mock.set_index("id").copy()
    for row in imputed.itertuples(index=False):
        assert pd.isna(full.loc[row.id, row.variable]), "only missing cells are filled"
        full.loc[row.id, row.variable] = row.value
    return full.reset_index()


# ----------------------------------------------------------------------------- the constants
def test_reference_has_29_variables_4_classes_and_its_citation(ref):
    assert ref.classes == ("alpha", "beta", "gamma", "delta")
    assert len(ref.variables) == 29
    assert ref.centroids.shape == (4, 29)
    assert ref.doi == "10.1001/jama.2019.5791"
    assert "pitt-healthsciences/SENECA" in ref.numbers_from
    assert not ref.centroids.flags.writeable


def test_reference_fields_are_the_record_contracts_seymour_variables(ref):
    contract = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))["fields"]
    assert set(ref.fields) <= set(contract), set(ref.fields) - set(contract)
    seymour_group = {f for f, spec in contract.items() if spec.get("group") == "seymour"}
    assert seymour_group <= set(ref.fields)  # every seymour-only field is used
    shared = set(ref.fields) - seymour_group
    assert shared == {
        "age_years",
        "bilirubin_mg_dl",
        "creatinine_mg_dl",
        "gcs",
        "inr",
        "lactate_mmol_l",
        "platelets",
        "sex",
    }


def test_sign_convention_of_the_script_is_resolved(ref):
    """``(x + 0.143662)`` in the script is a mean of -0.143662; ``(z + 0.2822)^2`` a centroid of -0.2822."""
    by = {v.seneca: v for v in ref.variables}
    assert by["bili"].mean == -0.143662 and by["trop"].mean == -2.288375
    assert by["age"].mean == 64.41131 and by["age"].sd == 17.11103
    assert ref.centroids[0, 0] == -0.282231680  # alpha, age
    assert ref.centroids[3, 1] == -0.499133452  # delta, albumin
    assert by["sao2"].transform == "log_101_minus"
    logged = {v.seneca for v in ref.variables if v.transform == "log"}
    assert logged == {
        "alt",
        "ast",
        "bands",
        "bili",
        "bun",
        "creat",
        "crp",
        "esr",
        "gluc",
        "inr",
        "lactate",
        "plt",
        "sbp",
        "trop",
        "wbc",
    }
    assert ref.script_omits == ("age",)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("variables", 0, "sd"), 0.0, "must be > 0"),
        (("variables", 2, "transform"), "sqrt", "is not one of"),
        (("variables", 3, "centroid"), {"alpha": 0.0, "beta": 0.0}, "exactly the classes"),
        (("script_distance_omits",), ["height"], "is not a variable"),
    ],
)
def test_malformed_reference_raises_a_typed_error(ref, tmp_path, path, value, message):
    raw = yaml.safe_load((Path(ref.path)).read_text(encoding="utf-8"))
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    bad = tmp_path / "seymour_bad.yaml"
    bad.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(DesignSchemaError, match=message):
        load_seymour_reference(bad)


# ----------------------------------------------------------------------------- mock data as is
def test_mock_data_has_no_complete_row_so_every_row_is_not_computable(mock, ref):
    record = as_record(mock, ref)
    out = assign_seymour(record, ref)
    n_missing = record.isna().sum(axis=1)
    # documented: 0 complete rows, 100 rows with 2 to 8 missing variables, 499 missing cells
    assert (n_missing == 0).sum() == 0
    assert len(mock) == 100 and n_missing.min() == 2 and n_missing.max() == 8
    assert int(n_missing.sum()) == 499
    assert out[CLASS_COLUMN].isna().all()
    assert out[DIST_COLS].isna().all().all()
    first = out[REASON_COLUMN].iloc[0]  # patient 10001 misses bands, crp, esr, gcs, pao2, trop
    assert first.startswith("not computable: 6 of 29 variables missing")
    for field in ("bands_pct", "crp_mg_l", "esr_mm_h", "gcs", "pao2_mmhg", "troponin_ng_ml"):
        assert field in first and field in out[UNUSABLE_COLUMN].iloc[0]


# ----------------------------------------------------------------------------- agreement
def test_recovered_imputations_are_values_observed_in_the_same_column(mock):
    """Predictive mean matching copies observed values: each recovered value must be one."""
    imputed = pd.read_csv(SENECA / "recovered_imputations.csv")
    assert len(imputed) == 499 and imputed["id"].nunique() == 100
    for row in imputed.itertuples(index=False):
        assert row.value in set(mock[row.variable].dropna())


def test_distances_and_classes_match_the_script_once_its_imputations_are_filled_in(
    mock, published, ref
):
    record = as_record(completed(mock), ref)
    assert record.notna().all().all()
    out = assign_seymour(record, ref, exclude=ref.script_omits)
    theirs = published[["dist.alpha", "dist.beta", "dist.gamma", "dist.delta"]].to_numpy()
    np.testing.assert_allclose(out[DIST_COLS].to_numpy(), theirs, rtol=0, atol=1e-12)
    agree = (out[CLASS_COLUMN].str.capitalize() == published["phenotype"]).sum()
    assert agree == 100  # 100 of 100 rows
    assert "without age_years" in out[REASON_COLUMN].iloc[0]


def test_with_age_in_the_distance_as_in_the_paper_97_of_100_agree(mock, published, ref):
    record = as_record(completed(mock), ref)
    ours = assign_seymour(record, ref)  # default: all 29 variables
    same = ours[CLASS_COLUMN].str.capitalize().to_numpy() == published["phenotype"].to_numpy()
    assert int(same.sum()) == 97
    changed = mock["id"][~same].tolist()
    # the three rows change class only because age enters the distance
    script = assign_seymour(record, ref, exclude=["age"])[CLASS_COLUMN]
    assert (script.str.capitalize() == published["phenotype"]).all()
    assert len(changed) == 3


def test_age_constants_matter_with_the_default_distance(mock, ref):
    record = as_record(completed(mock), ref)
    with_age = seymour_distances(record, ref).to_numpy()
    without = seymour_distances(record, ref, exclude=["age_years"]).to_numpy()
    z_age = (record["age_years"].to_numpy() - 64.41131) / 17.11103
    expected = without**2 + (z_age[:, None] - ref.centroids[:, 0][None]) ** 2
    np.testing.assert_allclose(with_age**2, expected, rtol=1e-12)


# ----------------------------------------------------------------------------- behaviour
def one_complete_patient(mock, ref) -> pd.DataFrame:
    return as_record(completed(mock), ref).iloc[[0]].reset_index(drop=True)


@pytest.mark.parametrize("field", ["bands_pct", "bilirubin_mg_dl", "platelets"])
def test_zero_value_of_a_logged_variable_is_not_computable_without_a_warning(mock, ref, field):
    p = one_complete_patient(mock, ref)
    p[field] = 0.0
    out = assign_seymour(p, ref)  # warnings are errors: log(0) must not be attempted
    assert out[CLASS_COLUMN].isna().all()
    assert f"{field} (log undefined at this value)" in out[REASON_COLUMN].item()
    assert out[UNUSABLE_COLUMN].item() == field


def test_sex_is_coded_male_1_female_0(mock, ref):
    p = one_complete_patient(mock, ref)
    numeric = p.copy()
    numeric["sex"] = np.where(p["sex"] == "male", 1.0, 0.0)
    pd.testing.assert_frame_equal(seymour_distances(p, ref), seymour_distances(numeric, ref))
    flipped = p.copy()
    flipped["sex"] = pd.array(["female" if s == "male" else "male" for s in p["sex"]], "string")
    assert not np.allclose(seymour_distances(p, ref), seymour_distances(flipped, ref))


def test_assignment_is_row_order_independent_and_keeps_the_index(mock, ref):
    record = as_record(completed(mock), ref)
    record.index = record.index * 3 + 7
    out = assign_seymour(record, ref)
    shuffled = record.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(assign_seymour(shuffled, ref).loc[out.index], out)


def test_absent_columns_count_as_missing(ref):
    out = assign_seymour(pd.DataFrame({"age_years": [50.0, np.nan]}), ref)
    assert out[CLASS_COLUMN].isna().all()
    assert out[REASON_COLUMN].iloc[1].startswith("not computable: 29 of 29 variables missing")


def test_equidistant_centroids_are_not_computable(tmp_path, mock, ref):
    raw = yaml.safe_load(Path(ref.path).read_text(encoding="utf-8"))
    for v in raw["variables"]:
        v["centroid"]["beta"] = v["centroid"]["alpha"]  # alpha and beta coincide
    tied = tmp_path / "tied.yaml"
    tied.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    record = as_record(completed(mock), ref)
    ours = assign_seymour(record, load_seymour_reference(tied))
    nearest = ours[DIST_COLS].idxmin(axis=1)
    tie_rows = nearest == "dist_alpha"
    assert tie_rows.any()
    assert ours.loc[tie_rows, CLASS_COLUMN].isna().all()
    assert ours.loc[tie_rows, REASON_COLUMN].str.contains("equidistant").all()


def test_unknown_excluded_variable_is_an_error(ref):
    with pytest.raises(KeyError, match="not a Seymour 2019 variable"):
        assign_seymour(pd.DataFrame({"age_years": [50.0]}), ref, exclude=["height_cm"])
