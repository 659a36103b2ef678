"""Doses as the registry states them: rendered text and the status of every arm and age group."""

from __future__ import annotations

import pytest

from palette_core.design.loader import load_design
from palette_core.registry.doses import (
    TRANSCRIPTION_NOTICE,
    describe_dose,
    describe_procedure,
    describe_rules,
    dose_cell,
)


def _cell(design, arm_id: str, group: str):
    return dose_cell(design, design.arm(arm_id), group)


# ----------------------------------------------------------------------------- rendered text
def test_hydrocortisone_adult(design):
    dose = design.arm("cort_hydrocortisone").components[0].adult[0]
    assert describe_dose(dose) == "50 mg every 6 h for 7 days"
    assert _cell(design, "cort_hydrocortisone", "adult").text == "50 mg every 6 h for 7 days"


def test_hydrocortisone_child_shows_the_range_and_the_proposed_cap(design):
    cell = _cell(design, "cort_hydrocortisone", "child")
    assert cell.status == "stated"
    assert cell.text == "1-2 mg/kg every 6 h for 7 days; at most 50 mg per dose (proposed, RF-15)"
    assert cell.findings == ()


def test_fludrocortisone_child_is_the_adult_dose_in_micrograms(design):
    adult = _cell(design, "cort_fludrocortisone", "adult")
    child = _cell(design, "cort_fludrocortisone", "child")
    expected = "50 µg once daily for 7 days or until ICU discharge, whichever is first"
    assert adult.text == child.text == expected
    assert adult.status == child.status == "stated"


def test_interferon_gamma_joins_its_two_bsa_rules(design):
    rules = design.arm("hypo_ifng").components[0].adult
    text = _cell(design, "hypo_ifng", "adult").text
    assert text == describe_rules(rules)
    first, second = text.split("; ", 1)
    assert first == (
        "if body-surface area > 0.5 m²: 50 µg/m² every other day for 15 days"
        " or until ICU discharge, whichever is first"
    )
    assert second.startswith("if body-surface area ≤ 0.5 m²: 1.5 µg/kg every other day for 15 days")
    assert second.endswith("or until ICU discharge, whichever is first")
    assert _cell(design, "hypo_ifng", "child").text == text


def test_gcsf_shows_its_miu_equivalent(design):
    text = _cell(design, "hypo_gcsf", "adult").text
    # a daily amount given once a day reads as a dose, not "per day ... once daily"
    assert text.startswith("5 µg/kg (0.5 MIU/kg) once daily for 5 days")
    assert "for 5 days or until ICU discharge, whichever is first" in text
    assert _cell(design, "hypo_gcsf", "child").text == text


def test_sivelestat_is_per_hour_by_continuous_infusion_until_icu_discharge(design):
    assert _cell(design, "hfib_sivelestat", "adult").text == (
        "0.2 mg/kg/h as a continuous infusion for 7 days or until ICU discharge, whichever is first"
    )


def test_plasminogen_is_read_with_a_decimal_point(design):
    assert _cell(design, "hfib_plasminogen", "adult").text == "2.2 mg/kg/day for 3 days"


def test_procedure_is_described_as_a_session_schedule(design):
    procedure = design.arm("mals_mtx100").components[0].procedure
    assert describe_procedure(procedure) == "up to 4 h a day, up to 4 consecutive days"


def test_transcription_notice_says_it_is_not_a_prescription():
    assert "not a prescription" in TRANSCRIPTION_NOTICE
    assert "NCT06381661" in TRANSCRIPTION_NOTICE


# ----------------------------------------------------------------------------- statuses
def test_combination_is_blocked_for_both_ages(design):
    adult = _cell(design, "cort_hc_fc", "adult")
    child = _cell(design, "cort_hc_fc", "child")
    assert (adult.status, adult.findings) == ("blocked", ("RF-01",))
    assert (child.status, child.findings) == ("blocked", ("RF-01", "RF-15"))
    assert adult.text.startswith("not computable")
    assert "RF-01" in adult.text and "mg" not in adult.text
    assert "RF-01" in child.text and "RF-15" in child.text


@pytest.mark.parametrize("group", ["adult", "child"])
def test_tocilizumab_is_blocked(design, group):
    cell = _cell(design, "hinf_tocilizumab", group)
    assert (cell.status, cell.findings) == ("blocked", ("RF-02",))
    assert "RF-02" in cell.text


def test_anakinra_is_stated_for_adults_and_blocked_for_children(design):
    for arm in ("hinf_anakinra", "mals_anakinra"):
        adult = _cell(design, arm, "adult")
        assert adult.status == "stated"
        assert adult.text == (
            "100 mg once daily for 10 days or until hospital discharge, whichever is first"
        )
        child = _cell(design, arm, "child")
        assert (child.status, child.findings) == ("blocked", ("RF-14",))


def test_hypercoagulation_arms_are_not_open_to_children(design):
    arms = design.experimental_arms("hypercoagulation")
    assert len(arms) == 4
    for arm in arms:
        cell = dose_cell(design, arm, "child")
        assert cell.status == "not open", arm.id
        assert cell.findings == ()
        assert dose_cell(design, arm, "adult").status == "stated", arm.id


def test_mtx100_is_a_stated_procedure_for_adults_and_blocked_for_children(design):
    adult = _cell(design, "mals_mtx100", "adult")
    assert adult.status == "stated"
    assert adult.text == (
        "MTx.100 plasma adsorption column: up to 4 h a day, up to 4 consecutive days"
    )
    child = _cell(design, "mals_mtx100", "child")
    assert (child.status, child.findings) == ("blocked", ("RF-18",))


def test_usual_care_is_not_applicable(design):
    for trait in design.traits:
        control = design.control_of(trait.id)
        for group in design.age_group_ids:
            cell = dose_cell(design, control, group)
            assert (cell.status, cell.text, cell.findings) == ("not applicable", "usual care", ())


def test_every_open_unblocked_experimental_dose_is_stated_with_text(design):
    for arm in design.experimental_arms():
        for group in design.age_group_ids:
            cell = dose_cell(design, arm, group)
            if group not in design.arm_age_groups(arm):
                assert cell.status == "not open"
            elif design.dose_blocks(arm.id, group):
                assert cell.status == "blocked"
                assert cell.findings == tuple(f.id for f in design.dose_blocks(arm.id, group))
            else:
                assert cell.status == "stated", (arm.id, group)
                assert cell.text and "None" not in cell.text


def test_missing_child_dose_is_not_stated_once_unblocked(design_copy, edit):
    """Without its blocking findings the combination has no children's dose to show."""

    def unblock(data):
        for f in data["findings"]:
            f["blocks_dose"] = [b for b in f["blocks_dose"] if b["arm"] != "cort_hc_fc"]

    edit(design_copy, "registry_findings.yaml", unblock)
    changed = load_design(design_copy)
    cell = dose_cell(changed, changed.arm("cort_hc_fc"), "child")
    assert cell.status == "not stated"
    assert "not stated" in cell.text and "Hydrocortisone" in cell.text
    adult = dose_cell(changed, changed.arm("cort_hc_fc"), "adult")
    assert adult.status == "stated"
    assert adult.text == (
        "Hydrocortisone: 50 mg every 6 h for 7 days + Fludrocortisone: 50 mg once daily for 7 days"
    )
