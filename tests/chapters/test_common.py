"""What every chapter uses: tables as HTML, the closing note, the trait rules."""

from __future__ import annotations

import pandas as pd
import pytest

from palette_core.chapters import common


def test_trait_rules_table_has_a_row_per_trait_and_age_group(design):
    table = common.trait_rules_table(design)
    assert len(table) == 10  # 4 traits x 2 age groups + 2 adult-only traits
    per_trait = table.groupby("Trait").size().to_dict()
    assert per_trait["Hypercoagulation"] == per_trait["Hypofibrinolysis"] == 1
    assert all(
        n == 2 for t, n in per_trait.items() if t not in {"Hypercoagulation", "Hypofibrinolysis"}
    )


def test_hypercoagulation_rule_shows_the_adopted_grouping(design):
    table = common.trait_rules_table(design).set_index("Trait")
    rule = table.loc["Hypercoagulation", "Rule"]
    assert table.loc["Hypercoagulation", "Finding"] == "RF-05"
    inr, rest = rule.split(" AND ")
    assert "INR" in inr and "1.4" in inr
    # the OR is inside the second operand of AND: INR AND (platelets OR fall)
    assert rest.startswith("((") and rest.endswith("))")
    assert " OR " in rest and "OR" not in inr
    assert "150 000" in rest and "30 %" in rest


def test_table_is_plain_html_without_index_and_shows_missing_as_dash():
    html = common.table(pd.DataFrame({"a": [1.5, None], "b": ["x", "y"]})).data
    assert html.startswith("<table") and 'class="dataframe palette-table"' in html
    assert "<th>a</th>" in html and "<th></th>" not in html  # no index column
    assert "<td>-</td>" in html
    assert "id=" not in html  # no random ids: the stored output is deterministic


def test_table_shows_labels_not_ids_and_refuses_an_unnamed_column(design):
    html = common.table(pd.DataFrame({"Arm": ["hinf_anakinra"], "Phase": ["burn_in"]})).data
    assert "hinf_anakinra" not in html and "burn_in" not in html
    assert design.arm("hinf_anakinra").name in html
    with pytest.raises(ValueError, match="without a name"):
        common.table(pd.DataFrame({"": ["a"], "b": [1]}))


def test_versions_note_names_the_design_and_the_registry(design):
    note = common.versions_note(design).data
    assert f"`{design.design_hash[:12]}`" in note
    assert design.trial.registry_id in note
    for package in common.NOTE_PACKAGES:
        assert package in note
