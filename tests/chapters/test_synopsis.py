"""The synopsis: tables and the platform chart, built from the design (no numbers of their own)."""

from __future__ import annotations

from typing import Any

import pytest
from charts import assert_renders_to_svg_offline, assert_valid_inline_spec

from palette_core.chapters import synopsis as ch
from palette_core.design.loader import load_design
from palette_core.errors import RegistryFormatError

EXPERIMENTAL_PER_TRAIT = {
    "Hyperinflammation": 4,
    "Hypoinflammation": 2,
    "Macrophage activation-like syndrome (MALS)": 2,
    "Corticosteroid response": 3,
    "Hypercoagulation": 4,
    "Hypofibrinolysis": 3,
}


def test_traits_arms_table_counts_experimental_arms_per_trait(design):
    table = ch.traits_arms_table(design)
    assert len(table) == 6
    counts = dict(zip(table["Trait"], table["No. experimental arms"], strict=True))
    assert counts == EXPERIMENTAL_PER_TRAIT
    named = dict(zip(table["Trait"], table["Experimental arms"], strict=True))
    assert {trait: len(arms.split("; ")) for trait, arms in named.items()} == counts
    assert set(table["Control"]) == {"Usual care"}


def test_traits_arms_table_marks_octaplas_as_planned(design):
    table = ch.traits_arms_table(design).set_index("Trait")
    arms = table.loc["Hypofibrinolysis", "Experimental arms"].split("; ")
    assert "Octaplas LG (planned)" in arms
    assert (
        sum(a.endswith("(planned)") for a in "; ".join(table["Experimental arms"]).split("; ")) == 1
    )


def test_proposed_parameters_table_is_built_from_the_design(design, design_copy, edit):
    before = ch.proposed_parameters_table(design).set_index("Parameter")
    assert f"> {design.decisions.graduation.threshold}," in before.loc["Graduation", "Value"]

    def lower(data: dict[str, Any]) -> None:
        data["graduation"]["threshold"] = 0.9
        data["cap_per_experimental_arm"]["value"] = 120

    edit(design_copy, "proposed/decisions.yaml", lower)
    after = ch.proposed_parameters_table(load_design(design_copy)).set_index("Parameter")
    assert "> 0.9," in after.loc["Graduation", "Value"]
    assert "0.95" not in after.loc["Graduation", "Value"]
    assert after.loc["Cap per experimental arm", "Value"] == "120 patients"
    unchanged = [p for p in before.index if p not in {"Graduation", "Cap per experimental arm"}]
    assert before.loc[unchanged, "Value"].equals(after.loc[unchanged, "Value"])


def test_proposed_parameters_table_has_a_rationale_for_every_row(design):
    table = ch.proposed_parameters_table(design)
    assert list(table.columns) == ["Parameter", "Value", "Rationale"]
    assert table["Rationale"].str.len().min() > 20


def test_synopsis_numbers_come_from_the_design(design):
    numbers = ch.synopsis_numbers(design)
    counts = design.summary()
    assert numbers["n_arms"] == counts["arms"] == numbers["n_controls"] + numbers["n_experimental"]
    assert numbers["per_arm"] == f"{design.trial.enrollment / counts['arms']:.0f}"
    # one clause per shared-effect group, each naming the traits it spans
    clauses = numbers["shared_names"].split("; ")
    assert len(clauses) == numbers["n_shared"] == len(design.shared_effect_groups)
    assert all(" in " in c and " and " in c for c in clauses)


def test_platform_chart_is_valid_and_renders_offline(design):
    chart = ch.platform_chart(design)
    assert_valid_inline_spec(chart)
    assert_renders_to_svg_offline(chart)


def test_platform_chart_has_a_tile_per_arm(design):
    spec = ch.platform_chart(design).to_dict()
    (rows,) = spec["datasets"].values()
    assert len(rows) == 24
    kinds = {row["kind"] for row in rows}
    assert (
        kinds
        == set(ch.ROLE_COLOURS)
        == {
            "Usual care",
            "Experimental, open",
            "Experimental, planned",
            "Dose blocked by a finding",
        }
    )
    # blocked for every age group it admits: tocilizumab (RF-02) and the combination (RF-01)
    assert sum(row["kind"] == "Dose blocked by a finding" for row in rows) == 2
    assert sum(row["kind"] == "Experimental, planned" for row in rows) == 1
    assert sum(row["kind"] == "Usual care" for row in rows) == 6


def test_registry_aim_is_the_first_sentence_of_the_brief_summary(design):
    aim = ch.registry_aim(design)
    record = design.registry_path.read_text(encoding="utf-8")
    assert aim.startswith("PALETTE is a perpetual adaptive platform") and aim.endswith(".")
    assert aim[:-1] in record


def test_registry_aim_without_a_brief_summary_is_a_typed_error(design, tmp_path):
    text = design.registry_path.read_text(encoding="utf-8").replace("Brief Summary", "Summary")
    (tmp_path / "record.txt").write_text(text, encoding="utf-8")
    with pytest.raises(RegistryFormatError, match="Brief Summary"):
        ch.registry_aim_from(tmp_path / "record.txt")


def test_objectives_and_journey_quote_the_design(design):
    goals = ch.objectives(design)
    primary = next(o for o in design.outcomes.outcomes if o.role == "primary")
    g = design.decisions.graduation
    assert goals[0].startswith("**Primary**")
    assert primary.label.lower() in goals[0] and f"> {g.threshold:g}" in goals[0]
    assert "ISTH" in goals[2]  # an acronym keeps its capitals inside a sentence
    journey = ch.patient_journey(design)
    assert len(journey) == 5
    assert f"{len(design.eligibility.inclusion)} inclusion" in journey[0]
    assert f"{len(design.traits)} treatable traits" in journey[1]


def test_key_choices_table_is_the_proposed_parameters_without_rationale(design):
    key = ch.key_choices_table(design)
    full = ch.proposed_parameters_table(design)
    assert list(key.columns) == ["Choice", "Value"]
    assert key["Value"].tolist() == full["Value"].tolist()


def test_platform_schema_has_six_steps_from_the_design_and_fits_a_phone(design):
    chart = ch.platform_schema(design)
    spec = assert_valid_inline_spec(chart)
    assert spec["width"] <= 360
    svg = assert_renders_to_svg_offline(chart)
    for step in ("1. Screening", "3. Randomisation within the trait", "6. Decisions per arm"):
        assert step in svg
    assert f"Every {design.interims.look_every_complete} complete" in svg
    assert f"cap {design.decisions.cap_per_experimental_arm.value} patients" in svg
