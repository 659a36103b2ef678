"""The decisions chapter: the rules table follows decisions.yaml."""

from __future__ import annotations

from typing import Any

from palette_core.chapters import decisions as ch
from palette_core.design.loader import modified_design


def test_rules_are_listed_in_order_of_precedence(design):
    t = ch.decision_rules_table(design)
    assert list(t.iloc[:, 0]) == ["harm", "graduation", "futility", "cap reached"]
    assert t["Rationale"].str.len().min() > 20


def test_rules_table_follows_the_design(design):
    def edit(data: dict[str, Any]) -> None:
        data["futility"]["threshold"] = 0.2
        data["harm"]["min_complete"] = 30

    before = ch.decision_rules_table(design).set_index("Decision (in order of precedence)")
    with modified_design(None, "proposed/decisions.yaml", edit) as changed:
        after = ch.decision_rules_table(changed).set_index("Decision (in order of precedence)")
    f = design.decisions.futility
    assert f"< {f.threshold:g} on" in before.loc["futility", "Rule"]
    assert "< 0.2 on" in after.loc["futility", "Rule"]
    assert after.loc["harm", "Minimum information"] == ">= 30 complete"
    assert before.loc["graduation"].equals(after.loc["graduation"])
