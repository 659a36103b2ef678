"""Patient-level doses: hand-computed amounts for every kind of registry dose, and every status."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from palette_core.design.loader import modified_design
from palette_core.errors import (
    ConflictingArgumentsError,
    MissingPatientDataError,
    PatientRecordError,
)
from palette_core.registry.doses import TRANSCRIPTION_NOTICE
from palette_core.screening.dosing import (
    DOSE_COLUMNS,
    bsa_mosteller,
    calculate_dose,
    calculate_doses,
    dose_table,
    format_amount,
    reference_patients,
)

ADULT = {
    "patient_id": "a1",
    "weight_kg": 70.0,
    "height_cm": 175.0,
    "sex": "male",
}  # at ideal weight


def _patients(rows: list[dict]) -> pd.DataFrame:
    """A patient frame in contract dtypes (no dependency on palette_core.screening.patients)."""
    df = pd.DataFrame(rows)
    return df.astype(
        {
            "patient_id": "string",
            **{c: "float64" for c in ("weight_kg", "height_cm") if c in df.columns},
        }
    )


# ----------------------------------------------------------------------------- Mosteller
def test_mosteller_bsa_by_hand():
    # sqrt(175 * 70 / 3600) = sqrt(3.402777...) = 1.844662...
    assert float(bsa_mosteller(175, 70)) == pytest.approx(1.8446619, rel=1e-6)
    # 90 cm x 10 kg is 0.25 m^4 under the root: exactly 0.5 m2
    assert float(bsa_mosteller(90, 10)) == 0.5


# ----------------------------------------------------------------------------- per kg
def test_gcsf_per_kg_with_its_miu_equivalent(design):
    r = calculate_dose(design, "hypo_gcsf", ADULT, "adult")
    assert r.status == "computed"
    (c,) = r.components
    assert c.per_administration == pytest.approx((350.0, 350.0))  # 5 ug/kg x 70 kg
    assert c.per_day == pytest.approx((350.0, 350.0))
    assert c.unit == "ug"
    assert c.equivalent_unit == "MIU" and c.equivalent == pytest.approx((35.0, 35.0))
    assert r.text == "350 µg (35 MIU) once daily"


def test_tinzaparin_per_kg_per_day_given_once_daily(design):
    r = calculate_dose(design, "hcoag_lmwh", {"weight_kg": 80.0}, "adult")
    c = r.components[0]
    assert c.per_day == pytest.approx((14000.0, 14000.0))  # 175 IU/kg x 80 kg
    assert c.per_administration == pytest.approx((14000.0, 14000.0))
    assert r.text == "14000 IU once daily"


def test_plasminogen_and_thrombomodulin_are_daily_amounts_without_a_stated_division(design):
    p = calculate_dose(design, "hfib_plasminogen", ADULT, "adult").components[0]
    assert p.per_day == pytest.approx((154.0, 154.0))  # 2.2 mg/kg x 70 kg
    assert p.per_administration is None
    t = calculate_dose(design, "hcoag_rhtm", ADULT, "adult")
    assert t.components[0].per_day == pytest.approx((4.2, 4.2))  # 0.06 mg/kg x 70 kg
    assert t.text == "4.2 mg per day"


def test_octaplas_volume_per_kg(design):
    r = calculate_dose(design, "hfib_octaplas", ADULT, "adult")
    assert r.components[0].per_administration == pytest.approx((840.0, 840.0))  # 12 mL/kg
    assert r.text == "840 mL once daily"


def test_continuous_infusions_give_rate_per_hour_and_amount_per_day(design):
    ufh = calculate_dose(design, "hcoag_ufh_therapeutic", ADULT, "adult").components[0]
    assert ufh.per_day == pytest.approx((28000.0, 28000.0))  # 400 IU/kg/24 h x 70 kg
    assert ufh.per_hour == pytest.approx((28000 / 24, 28000 / 24))
    assert ufh.per_administration is None
    siv = calculate_dose(design, "hfib_sivelestat", ADULT, "adult")
    assert siv.components[0].per_hour == pytest.approx((14.0, 14.0))  # 0.2 mg/kg/h
    assert siv.components[0].per_day == pytest.approx((336.0, 336.0))
    assert siv.text == "14 mg/h as a continuous infusion (336 mg per day)"


def test_prophylactic_heparin_per_24h(design):
    r = calculate_dose(design, "hcoag_ufh_prophylactic", ADULT, "adult")
    assert r.components[0].per_day == pytest.approx((7000.0, 7000.0))  # 100 IU/kg/24 h


# ----------------------------------------------------------------------------- per m2: IFN-gamma
def test_interferon_gamma_per_m2_above_half_a_square_metre(design):
    r = calculate_dose(design, "hypo_ifng", ADULT, "adult")
    assert r.bsa_m2 == pytest.approx(1.8446619, rel=1e-6)
    assert r.components[0].per_administration == pytest.approx((92.233, 92.233), rel=1e-4)
    assert r.components[0].rule.basis == "per_m2"
    assert r.text == "92.2 µg every other day"


def test_interferon_gamma_per_kg_for_a_neonate(design):
    r = calculate_dose(design, "hypo_ifng", {"weight_kg": 3.5, "height_cm": 50.0}, "child")
    assert r.bsa_m2 == pytest.approx(math.sqrt(50 * 3.5 / 3600))  # 0.2205 m2
    assert r.components[0].rule.basis == "per_kg"
    assert r.components[0].per_administration == pytest.approx((5.25, 5.25))  # 1.5 ug/kg


def test_interferon_gamma_exactly_half_a_square_metre_is_dosed_per_kg(design):
    # "1.5 µg/kg if body surface of 0,5 m2 or less": 0.5 m2 takes the per-kg branch
    r = calculate_dose(design, "hypo_ifng", {"weight_kg": 10.0, "height_cm": 90.0}, "child")
    assert r.bsa_m2 == 0.5
    assert r.components[0].rule.basis == "per_kg"
    assert r.components[0].per_administration == pytest.approx((15.0, 15.0))


def test_interferon_gamma_just_above_half_a_square_metre_is_dosed_per_m2(design):
    r = calculate_dose(design, "hypo_ifng", {"weight_kg": 10.0, "height_cm": 91.0}, "child")
    bsa = math.sqrt(910 / 3600)
    assert r.bsa_m2 == pytest.approx(bsa) and bsa > 0.5
    assert r.components[0].rule.basis == "per_m2"
    assert r.components[0].per_administration == pytest.approx((50 * bsa, 50 * bsa))


# ----------------------------------------------------------------------------- ranges and caps
def test_hydrocortisone_child_range_below_the_cap(design):
    r = calculate_dose(design, "cort_hydrocortisone", {"weight_kg": 20.0}, "child")
    c = r.components[0]
    assert c.per_administration == pytest.approx((20.0, 40.0))  # 1-2 mg/kg
    assert c.per_day == pytest.approx((80.0, 160.0))  # every 6 h
    assert not c.capped and c.cap is None
    assert r.text == "20-40 mg every 6 h"


def test_hydrocortisone_40kg_child_is_capped_and_says_so(design):
    r = calculate_dose(
        design, "cort_hydrocortisone", {"patient_id": "c40", "weight_kg": 40.0}, "child"
    )
    c = r.components[0]
    assert c.per_administration == pytest.approx((40.0, 50.0))  # 40-80 mg, capped at 50
    assert c.per_day == pytest.approx((160.0, 200.0))
    assert c.capped
    assert c.cap == "capped at 50 mg (proposed, RF-15)"
    assert r.text == "40-50 mg every 6 h; capped at 50 mg (proposed, RF-15)"
    assert r.status == "computed" and r.patient_id == "c40"


def test_hydrocortisone_heavy_child_whole_range_at_the_cap(design):
    r = calculate_dose(design, "cort_hydrocortisone", {"weight_kg": 60.0}, "child")
    assert r.components[0].per_administration == pytest.approx((50.0, 50.0))
    assert r.text.startswith("50 mg every 6 h; capped at 50 mg")


# ----------------------------------------------------------------------------- fixed doses
def test_fixed_adult_doses_need_no_weight(design):
    assert calculate_dose(design, "hinf_baricitinib", {}, "adult").text == "4 mg once daily"
    assert calculate_dose(design, "hinf_anakinra", {}, "adult").text == "100 mg once daily"
    hc = calculate_dose(design, "cort_hydrocortisone", {}, "adult").components[0]
    assert hc.per_administration == (50.0, 50.0) and hc.per_day == (200.0, 200.0)


def test_fludrocortisone_is_computed_for_children(design):
    r = calculate_dose(design, "cort_fludrocortisone", {"weight_kg": 3.5}, "child")
    assert r.status == "computed"
    assert r.components[0].per_administration == (50.0, 50.0) and r.components[0].unit == "ug"


# ----------------------------------------------------------------------------- statuses
@pytest.mark.parametrize(
    ("arm", "group", "findings"),
    [
        ("cort_hc_fc", "adult", ("RF-01",)),
        ("cort_hc_fc", "child", ("RF-01", "RF-15")),
        ("hinf_tocilizumab", "adult", ("RF-02",)),
        ("hinf_tocilizumab", "child", ("RF-02",)),
        ("hinf_baricitinib", "child", ("RF-14",)),
        ("hinf_anakinra", "child", ("RF-14",)),
        ("mals_anakinra", "child", ("RF-14",)),
        ("mals_mtx100", "child", ("RF-18",)),
        ("hinf_mtx100", "child", ("RF-18",)),
    ],
)
def test_blocked_arms_are_not_computable_and_name_the_finding(design, arm, group, findings):
    r = calculate_dose(design, arm, ADULT, group)
    assert r.status == "not computable"
    assert r.findings == findings
    assert r.text == f"not computable ({', '.join(findings)})"
    assert all(c.per_administration is None and c.per_day is None for c in r.components)


@pytest.mark.parametrize(
    "arm",
    [
        "hcoag_ufh_prophylactic",
        "hcoag_ufh_therapeutic",
        "hcoag_lmwh",
        "hcoag_rhtm",
        "hfib_sivelestat",
        "hfib_plasminogen",
    ],
)
def test_adult_only_arms_are_not_open_to_children_even_without_weight(design, arm):
    r = calculate_dose(design, arm, {}, "child")
    assert r.status == "not open"
    assert r.text == "not open to children"


def test_device_arm_is_a_procedure_without_amount(design):
    r = calculate_dose(design, "mals_mtx100", {}, "adult")
    assert r.status == "procedure"
    assert r.text == "up to 4 h a day, up to 4 consecutive days"
    assert r.components[0].per_administration is None


def test_usual_care_has_no_dose(design):
    r = calculate_dose(design, "mals_usual_care", ADULT, "adult")
    assert r.status == "not applicable" and r.components == ()


def test_no_child_dose_in_the_registry_is_not_stated():
    # lift the RF-01/RF-15 blocks: the combination arm then has no children's dose at all
    def lift(data):
        for f in data["findings"]:
            f["blocks_dose"] = [b for b in f["blocks_dose"] if b["arm"] != "cort_hc_fc"]

    with modified_design(None, "registry_findings.yaml", lift) as d:
        child = calculate_dose(d, "cort_hc_fc", {"weight_kg": 20.0}, "child")
        assert child.status == "not stated"
        assert child.text == "not stated in the registry"
        adult = calculate_dose(d, "cort_hc_fc", {}, "adult")
        assert adult.status == "computed"
        assert adult.text == "Hydrocortisone: 50 mg every 6 h + Fludrocortisone: 50 mg once daily"
        frame = calculate_doses(d, "cort_hc_fc", _patients([{"patient_id": "x"}]), "adult")
        assert list(frame["substance"]) == ["hydrocortisone", "fludrocortisone"]


def test_two_dose_rules_applying_at_once_is_a_design_conflict():
    def overlap(data):
        arm = next(a for a in data["arms"] if a["id"] == "hypo_ifng")
        arm["components"][0]["adult"][1]["when"]["op"] = ">="

    with modified_design(None, "arms.yaml", overlap) as d:
        with pytest.raises(ConflictingArgumentsError, match="exactly one must"):
            calculate_dose(d, "hypo_ifng", ADULT, "adult")


# ----------------------------------------------------------------------------- missing data
def test_missing_weight_raises_a_typed_error_naming_the_field(design):
    with pytest.raises(MissingPatientDataError) as err:
        calculate_dose(design, "hypo_gcsf", {"patient_id": "p9", "height_cm": 170.0}, "adult")
    assert err.value.field == "weight_kg"
    assert err.value.patient_id == "p9"
    assert "weight_kg" in str(err.value)


def test_missing_height_for_body_surface_area_names_height(design):
    with pytest.raises(MissingPatientDataError) as err:
        calculate_dose(design, "hypo_ifng", {"weight_kg": 70.0, "height_cm": None}, "adult")
    assert err.value.field == "height_cm"


def test_nan_weight_counts_as_missing(design):
    with pytest.raises(MissingPatientDataError):
        calculate_dose(design, "cort_hydrocortisone", {"weight_kg": float("nan")}, "child")


def test_non_positive_weight_is_rejected_not_dosed(design):
    with pytest.raises(PatientRecordError) as err:
        calculate_dose(design, "hypo_gcsf", {"weight_kg": 0.0}, "adult")
    assert err.value.field == "weight_kg"


# ----------------------------------------------------------------------------- vectorised
def test_vectorised_keeps_every_row_and_flags_missing_data(design):
    pts = _patients(
        [
            {"patient_id": "a", "weight_kg": 70.0, "height_cm": 175.0},
            {"patient_id": "b", "weight_kg": np.nan, "height_cm": 120.0},
            {"patient_id": "c", "weight_kg": 10.0, "height_cm": 90.0},
            {"patient_id": "d", "weight_kg": 20.0, "height_cm": np.nan},
            {"patient_id": "e", "weight_kg": 20.0, "height_cm": 115.0},
        ]
    )
    pts.index = [10, 11, 12, 13, 14]
    groups = pd.Series(["adult", "child", "child", "child", pd.NA], index=pts.index)
    out = calculate_doses(design, "hypo_ifng", pts, groups)
    assert list(out.index) == [10, 11, 12, 13, 14]
    assert list(out["status"]) == [
        "computed",
        "missing data",
        "computed",
        "missing data",
        "missing data",
    ]
    assert "weight_kg" in out.loc[11, "reason"] and out.loc[11, "missing"] == "weight_kg"
    assert out.loc[13, "missing"] == "height_cm"
    assert out.loc[14, "missing"] == "age_group"
    assert out.loc[12, "per_administration_low"] == pytest.approx(15.0)
    assert out.loc[10, "per_administration_low"] == pytest.approx(
        calculate_dose(design, "hypo_ifng", ADULT, "adult").components[0].per_administration[0]
    )
    assert (out["notice"] == TRANSCRIPTION_NOTICE).all()
    assert out.attrs["notice"] == TRANSCRIPTION_NOTICE
    assert dict(out.dtypes.astype(str)) == DOSE_COLUMNS


def test_vectorised_matches_scalar_on_many_patients(design):
    rng = np.random.default_rng(3)
    w = rng.uniform(2, 120, 200)
    h = rng.uniform(45, 200, 200)
    pts = _patients(
        [{"patient_id": f"p{i}", "weight_kg": w[i], "height_cm": h[i]} for i in range(200)]
    )
    for arm in ("hypo_ifng", "cort_hydrocortisone", "hypo_gcsf"):
        out = calculate_doses(design, arm, pts, "child")
        for i in range(0, 200, 37):
            r = calculate_dose(design, arm, {"weight_kg": w[i], "height_cm": h[i]}, "child")
            assert out["text"].iloc[i] == r.text
            assert out["per_administration_high"].iloc[i] == pytest.approx(
                r.components[0].per_administration[1]
            )


def test_vectorised_rejects_an_unknown_age_group(design):
    with pytest.raises(Exception, match="teenager"):
        calculate_doses(design, "hypo_gcsf", _patients([{"patient_id": "x"}]), "teenager")


# ----------------------------------------------------------------------------- every arm, the book
ALLOWED = {"computed", "procedure", "not computable", "not stated", "not open"}


def test_every_experimental_arm_has_an_answer_for_every_reference_patient(design):
    pts = reference_patients(design)
    for arm in design.experimental_arms():
        out = calculate_doses(design, arm.id, pts, pts["age_group"])
        assert set(out["status"]) <= ALLOWED, arm.id
        for _, row in pts.iterrows():
            r = calculate_dose(design, arm.id, row.to_dict(), row["age_group"])
            assert r.status in ALLOWED and r.notice == TRANSCRIPTION_NOTICE


def test_reference_patients_are_a_neonate_a_child_and_an_adult(design):
    pts = reference_patients(design)
    assert list(pts["age_group"]) == ["child", "child", "adult"]
    bsa = bsa_mosteller(pts["height_cm"], pts["weight_kg"])
    assert bsa[0] < 0.5 < bsa[1] < bsa[2]
    assert pts.loc["ref-adult", "weight_kg"] == 70.0


def test_dose_table_reads_like_the_registry(design):
    table = dose_table(design, reference_patients(design))
    exp = design.experimental_arms()
    assert list(table.index) == [a.id for a in exp]
    assert list(table.columns[:2]) == ["Trait", "Arm"] and table.shape[1] == 5
    neonate, child, adult = table.columns[2:]
    assert table.loc["hinf_tocilizumab", adult] == "not computable (RF-02)"
    assert table.loc["hcoag_lmwh", adult] == "12250 IU once daily"
    assert table.loc["hcoag_lmwh", child] == "not open to children"
    assert table.loc["hypo_ifng", neonate] == "5.25 µg every other day"
    assert table.loc["cort_hydrocortisone", child] == "20-40 mg every 6 h"
    assert table.loc["mals_anakinra", neonate] == "not computable (RF-14)"
    assert table.attrs["notice"] == TRANSCRIPTION_NOTICE


@pytest.mark.parametrize(
    ("x", "text"),
    [(12250.0, "12250"), (92.2331, "92.2"), (5.25, "5.25"), (0.06, "0.06"), (4.0, "4")],
)
def test_amounts_are_formatted_for_people(x, text):
    assert format_amount(x) == text


def test_unknown_age_group_in_the_scalar_is_missing_data(design):
    with pytest.raises(MissingPatientDataError) as err:
        calculate_dose(design, "hypo_gcsf", ADULT, None)
    assert err.value.field == "age_group"


# ----------------------------------------------------------------------------- dosing weight
#: 200 kg, 175 cm: the issue's patient for whom every per-kg dose was "computed" on 200 kg
OBESE = {"patient_id": "o1", "weight_kg": 200.0, "height_cm": 175.0, "sex": "male"}
#: Devine: 50 kg + 2.3 kg per inch over 60 in; adjusted: ideal + 0.4 x the excess
IDEAL = 50.0 + 2.3 * (175.0 / 2.54 - 60.0)
ADJUSTED = IDEAL + 0.4 * (200.0 - IDEAL)


def test_ideal_and_adjusted_weights_follow_devine_and_the_excess_fraction(design):
    from palette_core.screening.dosing import dosing_weight, ideal_body_weight

    got = ideal_body_weight(design, [175.0, 175.0, 175.0], ["male", "female", ""])
    assert got[0] == pytest.approx(IDEAL, abs=1e-3)
    assert got[1] == pytest.approx(IDEAL - 4.5, abs=1e-3)
    assert np.isnan(got[2])
    w, what = dosing_weight(design, "ufh", "adult", [200.0, 60.0], [175.0, 175.0], ["male"] * 2)
    assert w[0] == pytest.approx(ADJUSTED, abs=1e-3) and w[1] == 60.0
    assert what[0].startswith("adjusted (ideal 70.5 kg)")
    assert what[1] == "actual (not above ideal)"


def test_heparin_and_plasma_at_200_kg_use_the_adjusted_weight(design):
    """The defect: at 200 kg UFH gave 80,000 IU/day and Octaplas 2,400 mL/day, "computed"."""
    ufh = calculate_dose(design, "hcoag_ufh_therapeutic", OBESE, "adult")
    assert ufh.status == "computed"
    assert ufh.dosing_weight_kg == pytest.approx(ADJUSTED, abs=1e-3)
    assert ufh.components[0].per_day[0] == pytest.approx(400 * ADJUSTED, abs=0.5)
    assert ufh.components[0].per_day[0] < 80000
    assert "dosing weight 122 kg, adjusted" in ufh.text and "(proposed)" in ufh.text
    octaplas = calculate_dose(design, "hfib_octaplas", OBESE, "adult")
    assert octaplas.components[0].per_administration[0] == pytest.approx(12 * ADJUSTED, abs=0.1)
    assert octaplas.components[0].per_administration[0] < 2400


def test_thrombomodulin_and_tocilizumab_cap_the_dosing_weight_at_100_kg(design):
    """The defect: thrombomodulin 12 mg/day at 200 kg; SCARLET's maximum is 6 mg/day."""
    rhtm = calculate_dose(design, "hcoag_rhtm", OBESE, "adult")
    assert rhtm.components[0].per_day == pytest.approx((6.0, 6.0))
    assert "capped at 100 kg" in rhtm.text
    assert calculate_dose(design, "hcoag_rhtm", ADULT, "adult").components[0].per_day == (
        pytest.approx((4.2, 4.2))
    )


def test_tinzaparin_stays_on_actual_weight_within_the_limits(design):
    r = calculate_dose(design, "hcoag_lmwh", OBESE, "adult")
    assert r.components[0].per_day == pytest.approx((175 * 200.0, 175 * 200.0))
    assert "dosing weight" not in r.text


@pytest.mark.parametrize(
    ("arm", "group", "weight"),
    [
        ("hcoag_lmwh", "adult", 301.0),  # 663 lb entered as kg is impossible; 301 kg refused
        ("hcoag_lmwh", "adult", 29.0),
        ("hypo_gcsf", "child", 151.0),
        ("hypo_gcsf", "child", 0.9),
        ("hfib_sivelestat", "adult", 440.0),  # 200 kg entered in pounds
    ],
)
def test_a_weight_outside_the_plausible_limits_is_refused_not_dosed(design, arm, group, weight):
    patient = {**ADULT, "weight_kg": weight}
    with pytest.raises(PatientRecordError, match="outside the plausible weight") as info:
        calculate_dose(design, arm, patient, group)
    assert info.value.field == "weight_kg"
    table = calculate_doses(design, arm, _patients([patient]), group)
    assert table["status"].iloc[0] == "missing data"
    assert table["missing"].iloc[0] == "weight_kg"
    assert "check the unit" in table["reason"].iloc[0]


def test_the_adjusted_weight_needs_height_and_sex(design):
    with pytest.raises(MissingPatientDataError) as info:
        calculate_dose(design, "hcoag_ufh_therapeutic", {"weight_kg": 90.0, "sex": "male"}, "adult")
    assert info.value.field == "height_cm"
    with pytest.raises(MissingPatientDataError) as info:
        calculate_dose(design, "hfib_octaplas", {"weight_kg": 90.0, "height_cm": 170.0}, "adult")
    assert info.value.field == "sex"
    # actual weight needs neither
    assert calculate_dose(design, "hcoag_lmwh", {"weight_kg": 90.0}, "adult").status == "computed"


def test_children_are_dosed_on_actual_weight(design):
    child = {"weight_kg": 60.0, "height_cm": 140.0, "sex": "female"}
    r = calculate_dose(design, "hypo_gcsf", child, "child")
    assert r.dosing_weight_kg == 60.0 and "dosing weight" not in r.text


def _drop_rule(rule_id: str):
    def edit(data):
        data["rules"] = [r for r in data["rules"] if r["id"] != rule_id]

    return edit


@pytest.mark.parametrize(
    ("edit_fn", "entry", "field", "message"),
    [
        (_drop_rule("plasma_products"), None, "rules", "hfib_octaplas doses 'octaplas_lg'"),
        (lambda d: d["rules"][1]["substances"].append("ufh"), "low_molecular_weight_heparin",
         "substances", "already covered"),
        (lambda d: d["rules"][0]["weight"].pop("child") and None, "unfractionated_heparin", "weight",
         "no weight for age group"),
        (lambda d: d["rules"][0]["weight"].update(adult="lean"), "unfractionated_heparin",
         "weight.adult", "Input should be"),
        (lambda d: d["weight_limits"].pop() and None, None, "weight_limits", "no limit for age group"),
        (lambda d: d["weight_limits"][0].update(min_kg=400), "weight_limits[0]", "max_kg",
         "min_kg < max_kg"),
        (lambda d: d["rules"][0]["substances"].append("aspirin"), "unfractionated_heparin",
         "substances", "not in substances.yaml"),
        (lambda d: d["rules"][2].update(max_kg=float("nan")), "monoclonal_antibody", "max_kg",
         "finite"),
    ],
)  # fmt: skip
def test_the_loader_refuses_a_bad_dosing_weight_file(
    design_copy, edit, edit_fn, entry, field, message
):
    from palette_core.design.loader import load_design
    from palette_core.errors import DesignError

    edit(design_copy, "proposed/dosing_weight.yaml", edit_fn)
    with pytest.raises(DesignError, match=message) as info:
        load_design(design_copy)
    assert info.value.file == "proposed/dosing_weight.yaml"
    assert (info.value.entry, info.value.field) == (entry, field)
