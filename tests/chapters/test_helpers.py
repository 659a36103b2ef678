"""Book tables and figures, built from the design (no numbers of their own)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import vl_convert

from palette_core.chapters import helpers as r
from palette_core.design.loader import load_design
from palette_core.registry.doses import dose_cell
from palette_core.registry.fidelity import check_fidelity

AGE_OF_COLUMN = {"Adults": "adult", "Children": "child"}
EXPERIMENTAL_PER_TRAIT = {
    "Hyperinflammation": 4,
    "Hypoinflammation": 2,
    "Macrophage activation-like syndrome (MALS)": 2,
    "Corticosteroid response": 3,
    "Hypercoagulation": 4,
    "Hypofibrinolysis": 3,
}


def test_traits_arms_table_counts_experimental_arms_per_trait(design):
    table = r.traits_arms_table(design)
    assert len(table) == 6
    counts = dict(zip(table["Trait"], table["No. experimental arms"], strict=True))
    assert counts == EXPERIMENTAL_PER_TRAIT
    named = dict(zip(table["Trait"], table["Experimental arms"], strict=True))
    assert {trait: len(arms.split("; ")) for trait, arms in named.items()} == counts
    assert set(table["Control"]) == {"Usual care"}


def test_traits_arms_table_marks_octaplas_as_planned(design):
    table = r.traits_arms_table(design).set_index("Trait")
    arms = table.loc["Hypofibrinolysis", "Experimental arms"].split("; ")
    assert "Octaplas LG (planned)" in arms
    assert (
        sum(a.endswith("(planned)") for a in "; ".join(table["Experimental arms"]).split("; ")) == 1
    )


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
    table = r.arm_table(design, trait_id)
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
    names = list(r.arm_table(design, "hypofibrinolysis")["Arm"])
    assert [n for n in names if "planned" in n] == [names[2]]
    assert names[2].startswith("Octaplas LG (planned")
    mals = r.arm_table(design, "mals")
    shared = dict(zip(mals["Arm"], mals["Shared effect with"], strict=True))
    assert shared["Usual care"] == "-"
    assert "Hyperinflammation" in shared["Anakinra"]


def test_trait_rules_table_has_a_row_per_trait_and_age_group(design):
    table = r.trait_rules_table(design)
    assert len(table) == 10  # 4 traits x 2 age groups + 2 adult-only traits
    per_trait = table.groupby("Trait").size().to_dict()
    assert per_trait["Hypercoagulation"] == per_trait["Hypofibrinolysis"] == 1
    assert all(
        n == 2 for t, n in per_trait.items() if t not in {"Hypercoagulation", "Hypofibrinolysis"}
    )


def test_hypercoagulation_rule_shows_the_adopted_grouping(design):
    table = r.trait_rules_table(design).set_index("Trait")
    rule = table.loc["Hypercoagulation", "Rule"]
    assert table.loc["Hypercoagulation", "Finding"] == "RF-05"
    inr, rest = rule.split(" AND ")
    assert "INR" in inr and "1.4" in inr
    # the OR is inside the second operand of AND: INR AND (platelets OR fall)
    assert rest.startswith("((") and rest.endswith("))")
    assert " OR " in rest and "OR" not in inr
    assert "150 000" in rest and "30 %" in rest


def test_proposed_parameters_table_is_built_from_the_design(design, design_copy, edit):
    before = r.proposed_parameters_table(design).set_index("Parameter")
    assert "> 0.95," in before.loc["Graduation", "Value"]

    def lower(data: dict[str, Any]) -> None:
        data["graduation"]["threshold"] = 0.9
        data["cap_per_experimental_arm"]["value"] = 120

    edit(design_copy, "proposed/decisions.yaml", lower)
    after = r.proposed_parameters_table(load_design(design_copy)).set_index("Parameter")
    assert "> 0.9," in after.loc["Graduation", "Value"]
    assert "0.95" not in after.loc["Graduation", "Value"]
    assert after.loc["Cap per experimental arm", "Value"] == "120 patients"
    unchanged = [p for p in before.index if p not in {"Graduation", "Cap per experimental arm"}]
    assert before.loc[unchanged, "Value"].equals(after.loc[unchanged, "Value"])


def test_proposed_parameters_table_has_a_rationale_for_every_row(design):
    table = r.proposed_parameters_table(design)
    assert list(table.columns) == ["Parameter", "Value", "Rationale"]
    assert table["Rationale"].str.len().min() > 20


def test_dose_status_table_has_every_experimental_arm_and_age_group(design):
    table = r.dose_status_table(design)
    assert len(table) == 18 * 2
    assert (table["status"] == "blocked").sum() == 9
    assert set(table["status"]) == {"stated", "blocked", "not open"}


# ----------------------------------------------------------------------------- figures
def _urls(node: Any) -> list[str]:
    """Every ``url`` in a Vega-Lite spec (data must be inline: the book renders offline)."""
    if isinstance(node, dict):
        own = [node["url"]] if isinstance(node.get("url"), str) else []
        return own + [u for v in node.values() for u in _urls(v)]
    if isinstance(node, list):
        return [u for v in node for u in _urls(v)]
    return []


@pytest.fixture(scope="module")
def charts(design):
    return {
        "platform": r.platform_chart(design),
        "findings": r.findings_chart(check_fidelity(design)),
        "dose status": r.dose_status_chart(design),
    }


@pytest.mark.parametrize("name", ["platform", "findings", "dose status"])
def test_chart_is_valid_vega_lite_with_inline_data(charts, name):
    spec = charts[name].to_dict()  # validates against the Vega-Lite schema
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert spec.get("datasets"), "data must be embedded in the spec"
    assert _urls(spec) == []
    assert json.loads(charts[name].to_json()) == spec


@pytest.mark.parametrize("name", ["platform", "findings", "dose status"])
def test_chart_renders_to_svg_offline(charts, name):
    svg = vl_convert.vegalite_to_svg(charts[name].to_json())
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")


def test_platform_chart_has_a_tile_per_arm(design, charts):
    spec = charts["platform"].to_dict()
    (rows,) = spec["datasets"].values()
    assert len(rows) == 24
    kinds = {row["kind"] for row in rows}
    assert kinds == {
        "Usual care",
        "Experimental, open",
        "Experimental, planned",
        "Dose blocked by a finding",
    }
    # blocked for every age group it admits: tocilizumab (RF-02) and the combination (RF-01)
    assert sum(row["kind"] == "Dose blocked by a finding" for row in rows) == 2
    assert sum(row["kind"] == "Experimental, planned" for row in rows) == 1
    assert sum(row["kind"] == "Usual care" for row in rows) == 6


def test_export_contract_table_lists_every_column_once(design):
    t = r.export_contract_table(design)
    assert list(t["Column"]) == list(design.export_contract.fields)
    required = {k for k, f in design.export_contract.fields.items() if f.required}
    assert set(t.loc[t["Required"] == "yes", "Column"]) == required


def test_sensitivity_table_has_one_row_per_analysis(design):
    from palette_core.analysis.sensitivity import sensitivity_analyses

    t = r.sensitivity_table(design)
    assert list(t["Analysis"]) == list(sensitivity_analyses(design))
    assert t["What changes"].str.len().min() > 20


def test_children_harm_table_keeps_only_arms_open_to_children(design):
    import numpy as np

    from palette_core.analysis.quantities import summarise

    arms = [a.id for a in design.experimental_arms()]
    draws = np.random.default_rng(1).normal(size=(400, len(arms)))
    q = summarise({"mortality28": draws}, arms, design, population="child", analysis="no_borrowing")
    t = r.children_harm_table(q, design)
    child = [a.id for a in design.experimental_arms() if "child" in design.arm_age_groups(a)]
    assert list(t["Arm"]) == child and 0 < len(child) < len(arms)
    assert t.filter(like="Pr(OR <").iloc[:, 0].between(0, 1).all()
    primary_only = summarise({"mortality28": draws}, arms, design)
    assert r.children_harm_table(primary_only, design).empty
