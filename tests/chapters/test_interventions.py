"""The interventions chapter: arms and doses by trait, dose status, registry findings."""

from __future__ import annotations

import pytest
from charts import assert_renders_to_svg_offline, assert_valid_inline_spec

from palette_core.chapters import interventions as ch
from palette_core.registry.doses import dose_cell
from palette_core.registry.fidelity import check_fidelity
from palette_core.viz.labels import load_labels

AGE_OF_COLUMN = {"Adults": "adult", "Children": "child"}


@pytest.fixture(scope="module")
def fidelity(design):
    return check_fidelity(design)


@pytest.mark.parametrize(
    "trait_id",
    [
        "hyperinflammation",
        "hypoinflammation",
        "mals",
        "corticosteroid_response",
        "hypercoagulation",
        "hypofibrinolysis",
    ],
)
def test_arm_table_has_one_row_per_arm_control_first(design, trait_id):
    table = ch.arm_table(design, trait_id)
    arms = design.arms_of(trait_id)
    assert len(table) == len(arms)
    assert arms[0].role == "control"
    assert table["Arm"].iloc[0] == "Usual care"
    for shown, arm in zip(table["Arm"], arms, strict=True):
        assert shown.startswith(arm.name)
    for column in ("Adults", "Children"):
        doses = list(table[column])
        assert doses[1:] == [dose_cell(design, a, AGE_OF_COLUMN[column]).text for a in arms[1:]]


def test_arm_table_marks_planned_arms_and_shared_effects(design):
    names = list(ch.arm_table(design, "hypofibrinolysis")["Arm"])
    assert [n for n in names if "planned" in n] == [names[2]]
    assert names[2].startswith("Octaplas LG (planned")
    mals = ch.arm_table(design, "mals")
    shared = dict(zip(mals["Arm"], mals["Shared effect with"], strict=True))
    assert shared["Usual care"] == "-"
    assert "Hyperinflammation" in shared["Anakinra"]


def test_dose_status_table_has_every_experimental_arm_and_age_group(design):
    table = ch.dose_status_table(design)
    assert len(table) == 18 * 2
    assert (table["status"] == "blocked").sum() == 9
    assert set(table["status"]) == {"stated", "blocked", "not open"}


def test_dose_status_summary_counts_cells_and_arms_blocked_everywhere(design):
    summary = ch.dose_status_summary(design)
    assert summary["blocked_cells"] == 9
    # tocilizumab (RF-02) and the combination (RF-01): blocked for every age group they admit
    assert summary["arms_blocked_everywhere"] == 2


def test_finding_counts_add_up(fidelity):
    counts = ch.finding_counts(fidelity)
    assert sum(counts[s] for s in ch.SEVERITY_ORDER) == len(fidelity.findings)
    assert 0 < counts["proposed_readings"] <= len(fidelity.findings)


def test_interventions_numbers_agree_with_the_tables(design, fidelity):
    numbers = ch.interventions_numbers(design, fidelity)
    assert numbers["n_experimental"] == len(ch.dose_status_table(design)) // 2
    assert numbers["n_findings"] == len(ch.fidelity_summary_table(fidelity))
    assert numbers["fidelity_status"] == "faithful"


def test_findings_markdown_has_a_section_per_finding(fidelity):
    text = ch.findings_markdown(fidelity).data
    for f in fidelity.findings:
        assert f"**{f.id} — {f.title}**" in text
    blocking = [f for f in fidelity.findings if f.blocks_dose]
    assert text.count("- Dose calculation blocked:") == len(blocking) > 0


def test_findings_markdown_names_the_blocked_arms_with_a_labeller(design, fidelity):
    labelled = ch.findings_markdown(fidelity, load_labels(design)).data
    for f in fidelity.findings:
        for b in f.blocks_dose:
            assert f"Dose calculation blocked: {design.arm(b.arm).name}" in labelled or (
                f"; {design.arm(b.arm).name} (" in labelled
            )
            assert f"blocked: {b.arm} (" not in labelled


@pytest.mark.parametrize("name", ["findings", "dose status"])
def test_chart_is_valid_and_renders_offline(design, fidelity, name):
    chart = ch.findings_chart(fidelity) if name == "findings" else ch.dose_status_chart(design)
    assert_valid_inline_spec(chart)
    assert_renders_to_svg_offline(chart)
