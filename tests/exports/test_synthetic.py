"""The synthetic export: contract conformity, known truth, determinism, injected bad rows.

Most tests use a small export (250 screened patients, about 170 randomised); one checks that
the export shipped in data/exports/synthetic_interim is what the scenario and the code make.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from palette_core.errors import DesignSchemaError, OutOfRangeError, UnknownReferenceError
from palette_core.exports.contract import read_export
from palette_core.exports.derive import derive_outcomes
from palette_core.exports.synthetic import (
    EXPORT_FOLDER,
    SUPPORT_TYPES,
    UNKNOWN_ARM,
    SyntheticExport,
    draw_osfd,
    export_yaml,
    load_scenario,
    make_synthetic_export,
    parse_scenario,
    patients_csv,
    shifted_pmf,
    truth_csv,
    usual_care_pmf,
    write_synthetic_export,
)
from palette_core.provenance import file_sha256

N_SMALL = 250
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INTERVAL = re.compile(r"^(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})?$")
SUPPORT_COLS = tuple(f"support_{k}" for k in SUPPORT_TYPES)
DATE_COLS = (
    "death_date",
    "icu_discharge_date",
    "hospital_discharge_date",
    "last_known_alive_date",
    "withdrawal_date",
    "isth_major_bleeding_date",
    "secondary_infection_date",
)


@pytest.fixture(scope="module")
def scenario(design) -> dict:
    return load_scenario(design)


@pytest.fixture(scope="module")
def small(design, scenario) -> SyntheticExport:
    return make_synthetic_export(design, scenario, n_screened=N_SMALL)


@pytest.fixture(scope="module")
def written(design, scenario, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "export"
    return write_synthetic_export(out, design, scenario, n_screened=N_SMALL)


def _d(text: str) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _intervals(text: str) -> list[tuple[dt.date, dt.date | None]]:
    out = []
    for part in filter(None, text.split(";")):
        m = INTERVAL.match(part)
        assert m, f"malformed interval {part!r}"
        out.append((_d(m.group(1)), _d(m.group(2) or "")))
    return out


def _clean(export: SyntheticExport) -> pd.DataFrame:
    """Export rows joined with their truth, without the deliberately bad rows."""
    rows = export.patients.join(export.truth[["expected_status", "injected_problem"]])
    return rows[rows["injected_problem"] == ""]


# ----------------------------------------------------------------------------- outcome model
def test_usual_care_distribution_matches_the_scenario(design, scenario):
    sc = parse_scenario(scenario, design)
    for group, spec in sc.usual_care.by_age_group.items():
        pmf = usual_care_pmf(spec)
        assert pmf.shape == (30,) and np.all(pmf >= 0), group
        assert pmf.sum() == pytest.approx(1.0)
        assert pmf[0] == pytest.approx(spec.mortality28)  # OSFD = -1
        survivors = 1 - spec.mortality28
        assert pmf[-1] == pytest.approx(survivors * spec.no_support)  # OSFD = 28
        days = np.arange(28, -1, -1)  # support days of OSFD 0..28
        mean = (pmf[1:] * days).sum() / (survivors * (1 - spec.no_support))
        assert 1 < mean <= spec.support_days_mean  # 28+ support days are counted as 28


def test_one_proportional_odds_model_gives_the_same_or_for_death(design, scenario):
    pmf = usual_care_pmf(parse_scenario(scenario, design).usual_care.by_age_group["adult"])
    for odds_ratio in (0.5, 1.6, 2.5):
        arm = shifted_pmf(pmf, math.log(odds_ratio))
        assert arm.sum() == pytest.approx(1.0)
        up0, up1 = 1 - np.cumsum(pmf)[:-1], 1 - np.cumsum(arm)[:-1]  # P(OSFD >= k)
        cumulative_or = (up1 / (1 - up1)) / (up0 / (1 - up0))
        assert np.allclose(cumulative_or[:-1], odds_ratio)  # every threshold, k = 0..27
        survival_or = ((1 - arm[0]) / arm[0]) / ((1 - pmf[0]) / pmf[0])
        assert survival_or == pytest.approx(odds_ratio)  # benefit-oriented OR of mortality28


def test_draw_osfd_follows_the_distribution(design, scenario):
    pmf = shifted_pmf(
        usual_care_pmf(parse_scenario(scenario, design).usual_care.by_age_group["child"]), 0.7
    )
    y = draw_osfd(pmf, np.random.default_rng(3).random(200_000))
    assert y.min() >= -1 and y.max() <= 28
    freq = np.bincount(y + 1, minlength=30) / y.size
    assert np.abs(freq - pmf).max() < 0.005


# ----------------------------------------------------------------------------- the export
def test_columns_and_metadata_follow_the_contract(design, small):
    assert list(small.patients.columns) == list(design.export_contract.fields)
    assert set(small.meta) == set(design.export_contract.metadata)
    assert small.meta["trial_id"] == design.trial.registry_id
    assert all(isinstance(v, str) for v in small.patients.to_numpy().ravel())
    assert list(small.truth["line"]) == list(range(2, len(small.patients) + 2))
    assert list(small.truth["patient_id"]) == list(small.patients["patient_id"])


def test_values_are_well_formed_and_within_the_data_cut(design, small):
    cut = dt.date.fromisoformat(small.meta["data_cut"])
    arms = {a.id: a for a in design.arms}
    substances = set(design.substances)
    rows = _clean(small)
    assert rows["patient_id"].is_unique
    for _, r in rows.iterrows():
        rand = _d(r["randomisation_date"])
        assert design.trial.study_start <= rand <= cut
        assert re.fullmatch(r"[A-Z]{2}", r["country"])
        assert r["age_group"] in design.age_group_ids
        assert r["weight_kg"] == "" or 0.4 <= float(r["weight_kg"]) <= 350  # optional
        positive = r["positive_traits"].split(";")
        assert set(positive) <= set(design.trait_ids) and r["assigned_trait"] in positive
        arm = arms[r["arm"]]
        assert arm.trait == r["assigned_trait"]
        assert r["age_group"] in design.arm_age_groups(arm)
        assert set(filter(None, r["open_label_substances"].split(";"))) <= substances
        dates = {c: _d(r[c]) for c in DATE_COLS}
        for c, d in dates.items():
            assert r[c] == "" or DATE.match(r[c]), c
            assert d is None or rand <= d <= cut, (r["patient_id"], c)
        assert (dates["withdrawal_date"] is None) == (r["withdrawal_scope"] == "")
        death, icu, home = (
            dates["death_date"],
            dates["icu_discharge_date"],
            dates["hospital_discharge_date"],
        )
        if icu and home:
            assert icu <= home
        if death:
            assert all(d is None or d <= death for d in (icu, home, dates["last_known_alive_date"]))
        for col in SUPPORT_COLS:
            for start, end in _intervals(r[col]):
                assert rand <= start <= cut
                assert end is None or start <= end <= cut
                assert end is None or death is None or end <= death
                assert end is None or home is None or end < home
                if end is None:  # still running at the cut
                    assert death is None and home is None


def test_osfd_recomputed_from_the_dates_equals_the_truth(small):
    """An independent, day-by-day reading of the export gives the true OSFD of every
    complete row (death on day <= 28 = -1; open intervals run to the data cut)."""
    cut = dt.date.fromisoformat(small.meta["data_cut"])
    rows = _clean(small)
    truth = small.truth.loc[rows.index]
    complete = truth["expected_status"] == "complete"
    assert complete.sum() > 100
    for i in rows.index[complete]:
        r = rows.loc[i]
        rand = _d(r["randomisation_date"])
        days = [rand + dt.timedelta(days=k) for k in range(28)]
        death = _d(r["death_date"])
        if death is not None and death <= days[-1]:
            got = -1
        else:
            covered = set()
            for col in SUPPORT_COLS:
                for start, end in _intervals(r[col]):
                    covered |= {d for d in days if start <= d <= (end or cut)}
            got = 28 - len(covered)
        assert got == truth.at[i, "osfd_true"] == truth.at[i, "expected_osfd"], r["patient_id"]


def test_truth_holds_the_scenario_effects(design, scenario, small):
    ors = scenario["true_effects"]["odds_ratios"]
    controls = {design.control_of(t).id for t in design.trait_ids}
    truth = small.truth
    expected = [1.0 if a in controls else ors[a] for a in truth["arm"]]
    assert np.allclose(truth["true_or"], expected)
    assert np.allclose(truth["true_log_or"], np.log(expected))
    assert ((truth["osfd_true"] == -1) == (truth["mortality28_true"] == 1)).all()
    assert (
        truth["expected_osfd"].isna().to_numpy().tolist()
        == (truth["expected_status"] != "complete").tolist()
    )
    # the scenario: a harmful arm, clearly beneficial arms, a shared-effect pair with one OR
    values = sorted(set(ors.values()))
    assert values[0] < 1 < values[-1]
    for group in design.shared_effect_groups:
        assert len({ors[a] for a in group.arms}) == 1, group.id


def test_pending_rows_have_no_day28_status(small):
    cut = dt.date.fromisoformat(small.meta["data_cut"])
    rows = _clean(small)
    status = rows["expected_status"]
    assert {"complete", "pending", "missing", "withdrawn_all_data"} <= set(status)
    for _, r in rows.iterrows():
        day28 = _d(r["randomisation_date"]) + dt.timedelta(days=27)
        if r["expected_status"] == "pending":
            assert day28 > cut  # a death before the cut does not make it complete
            assert r["last_known_alive_date"] == "" or _d(r["last_known_alive_date"]) < day28
        else:
            assert day28 <= cut or r["expected_status"] in ("missing", "withdrawn_all_data")
    # an interval left open at the cut exists in the small export too
    assert any(v.endswith("/") for c in SUPPORT_COLS for v in rows[c] if v)


def test_withdrawals_of_each_scope(scenario, small):
    w = scenario["withdrawals"]
    scope = small.truth.loc[small.truth["injected_problem"] == "", "withdrawal_scope"]
    assert (scope == "treatment").sum() == w["treatment"]
    assert (scope == "follow_up").sum() == w["follow_up_before_day28"] + w["follow_up_after_day28"]
    assert (scope == "all_data").sum() == w["all_data"]
    rows = _clean(small)
    gone = rows[rows["withdrawal_scope"] == "all_data"]
    assert (gone["expected_status"] == "withdrawn_all_data").all()
    assert (gone[list(SUPPORT_COLS) + ["death_date", "last_known_alive_date"]] == "").all().all()


def test_bad_rows_are_the_documented_ones(design, scenario, small):
    truth = small.truth
    bad = truth[truth["injected_problem"] != ""]
    assert sorted(bad["injected_problem"]) == sorted(scenario["bad_rows"]["kinds"])
    assert (bad["expected_status"] == "invalid").all()
    for i, b in bad.iterrows():
        row = small.patients.loc[i]
        field = b["expected_field"]
        if b["injected_problem"] == "unknown_arm":
            assert row["arm"] == UNKNOWN_ARM and UNKNOWN_ARM not in {a.id for a in design.arms}
        elif b["injected_problem"] == "discharge_before_randomisation":
            assert _d(row[field]) < _d(row["randomisation_date"])
        elif b["injected_problem"] == "malformed_interval":
            assert field in SUPPORT_COLS
            with pytest.raises(AssertionError, match="malformed interval"):
                _intervals(row[field])
        else:
            assert field == "patient_id"
            first = small.patients.index[small.patients["patient_id"] == row["patient_id"]]
            assert len(first) == 2 and first[1] == i  # the copy comes after the original
            assert (small.patients.loc[first[0]] == row).all()


# ----------------------------------------------------------------------------- reproducibility
def test_same_seed_same_bytes_other_seed_other_export(design, scenario, small):
    again = make_synthetic_export(design, copy.deepcopy(scenario), n_screened=N_SMALL)
    assert patients_csv(again) == patients_csv(small)
    assert truth_csv(again) == truth_csv(small)
    assert export_yaml(again) == export_yaml(small)
    other = make_synthetic_export(design, scenario, seed=1, n_screened=N_SMALL)
    assert patients_csv(other) != patients_csv(small)


def test_written_files_and_manifest(written, small):
    assert sorted(p.name for p in written.iterdir()) == [
        "export.yaml",
        "manifest.json",
        "patients.csv",
        "truth.csv",
    ]
    assert (written / "patients.csv").read_text(encoding="utf-8") == patients_csv(small)
    manifest = json.loads((written / "manifest.json").read_text(encoding="utf-8"))
    for name, sha in manifest["files"].items():
        assert file_sha256(written / name) == sha
    assert manifest["counts"] == small.counts()
    assert manifest["seed"] == small.seed


def test_shipped_export_is_what_the_scenario_makes(design):
    """data/exports/synthetic_interim is up to date with the scenario and this code."""
    shipped = design.data_root / EXPORT_FOLDER
    manifest = json.loads((shipped / "manifest.json").read_text(encoding="utf-8"))
    for name, sha in manifest["files"].items():
        assert file_sha256(shipped / name) == sha, f"{name} changed since it was written"
    fresh = make_synthetic_export(design)
    assert (shipped / "patients.csv").read_text(encoding="utf-8") == patients_csv(fresh)
    assert (shipped / "truth.csv").read_text(encoding="utf-8") == truth_csv(fresh)
    counts = fresh.counts()
    assert 1150 <= counts["randomised"] <= 1350
    assert counts["by_status"]["pending"] >= 50


def test_no_patient_is_allocated_to_a_suspended_arm_or_age_stratum(design, small):
    """Tocilizumab (RF-02) and hydrocortisone + fludrocortisone (RF-01) are suspended, and so
    are children on baricitinib, anakinra and MTx.100 (RF-14, RF-18): the randomiser never
    draws them, so the export (the shipped one and a small one) holds none."""
    shipped = pd.read_csv(
        design.data_root / EXPORT_FOLDER / "patients.csv", dtype=str, keep_default_na=False
    )
    for patients in (shipped, small.patients):
        known = patients[patients["arm"].isin([a.id for a in design.arms])]
        suspended = [
            (arm, group)
            for arm, group in zip(known["arm"], known["age_group"], strict=True)
            if design.suspended_by(arm, group)
        ]
        assert suspended == []
        assert not known["arm"].isin(["hinf_tocilizumab", "cort_hc_fc"]).any()
        assert len(known) > 100


# ----------------------------------------------------------------------------- scenario checks
@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (
            lambda s: s["true_effects"]["odds_ratios"].pop("hinf_baricitinib"),
            DesignSchemaError,
            "hinf_baricitinib",
        ),
        (
            lambda s: s["true_effects"]["odds_ratios"].update(hinf_placebo=1.0),
            UnknownReferenceError,
            "hinf_placebo",
        ),
        (
            lambda s: s["true_effects"]["odds_ratios"].update(hinf_mtx100=0.0),
            OutOfRangeError,
            "hinf_mtx100",
        ),
        (
            lambda s: s["accrual"]["sites"][0].update(opens=dt.date(2020, 1, 1)),
            OutOfRangeError,
            "FR01",
        ),
        (lambda s: s["usual_care"]["by_age_group"].pop("child"), DesignSchemaError, "child"),
        (lambda s: s.update(surprise=1), DesignSchemaError, "surprise"),
        (lambda s: s["timeline"]["primary_support"].update(ecmo=0.1), DesignSchemaError, "ecmo"),
    ],
)
def test_invalid_scenarios_are_refused(design, scenario, edit, error, match):
    bad = copy.deepcopy(scenario)
    edit(bad)
    with pytest.raises(error, match=match):
        parse_scenario(bad, design)


def test_too_few_patients_for_the_withdrawals_is_an_error(design, scenario):
    bad = copy.deepcopy(scenario)
    bad["withdrawals"]["follow_up_before_day28"] = 10_000
    with pytest.raises(OutOfRangeError, match="follow_up_before_day28"):
        make_synthetic_export(design, bad, n_screened=60)


# ----------------------------------------------------------------------------- with the reader
def test_read_export_reports_exactly_the_injected_rows(design, written, small):
    validation = read_export(written, design)
    assert validation.n_rows == len(small.patients)
    bad = small.truth[small.truth["injected_problem"] != ""]
    invalid = validation.frame.index[validation.frame["record_status"] == "invalid"]
    assert list(invalid) == list(bad.index)
    for _, b in bad.iterrows():
        fields = set(validation.errors.loc[validation.errors["line"] == b["line"], "field"])
        assert b["expected_field"] in fields, (b["injected_problem"], fields)
    assert set(validation.errors["line"]) == set(bad["line"])


def test_derived_outcomes_reproduce_the_truth(design, written, small):
    derived = derive_outcomes(read_export(written, design), design)
    truth = small.truth
    assert derived["status"].astype(str).tolist() == truth["expected_status"].tolist()
    complete = (truth["expected_status"] == "complete").to_numpy()
    assert derived.loc[complete, "osfd28"].astype(int).tolist() == (
        truth.loc[complete, "osfd_true"].tolist()
    )
    for outcome in ("mortality28", "isth_major_bleeding", "secondary_infection"):
        assert derived.loc[complete, outcome].astype(int).tolist() == (
            truth.loc[complete, f"{outcome}_true"].tolist()
        ), outcome
    assert derived.loc[~complete, "osfd28"].isna().all()
    assert derived["era"].astype(int).tolist() == truth["era"].tolist()


def test_severity_scores_are_the_screening_scores_of_each_age_group(design):
    """sofa_score is given for adults only, phoenix_score for children only, as whole numbers
    within their contract range; a score the screening record leaves undetermined is empty
    (not assessable), and most patients have one."""
    shipped = pd.read_csv(
        design.data_root / EXPORT_FOLDER / "patients.csv", dtype=str, keep_default_na=False
    )
    fields = design.export_contract.fields
    for name, group in (("sofa_score", "adult"), ("phoenix_score", "child")):
        assert fields[name].severity_of == group and fields[name].status == "proposed"
        given = shipped[name] != ""
        assert (shipped.loc[given, "age_group"] == group).all()
        values = shipped.loc[given, name].astype(int)
        lo, hi = fields[name].range
        assert values.between(lo, hi).all() and values.nunique() > 3
        mine = shipped["age_group"] == group
        assert 0.6 < given[mine].mean() < 1.0  # most scored, some not assessable
