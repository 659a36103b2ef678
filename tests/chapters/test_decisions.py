"""The decisions chapter: the rules table follows decisions.yaml."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import pandas as pd
from charts import assert_renders_to_svg_offline, assert_valid_inline_spec

from palette_core.analysis.decisions import evaluate_rules
from palette_core.chapters import decisions as ch
from palette_core.design.loader import modified_design
from palette_core.results.store import load_result
from palette_core.viz.labels import load_labels


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


def _example_rules(design):
    example = load_result("example_fit", design=design)
    info = example.tables["decisions"][["arm", "n_complete", "n_allocated"]]
    return evaluate_rules(example.tables["quantities"], info, design), example.tables["decisions"]


def test_rules_chart_has_a_row_per_arm_and_a_column_per_probability_rule(design):
    rules, decisions = _example_rules(design)
    labels = load_labels(design)
    data = ch.rules_chart_data(rules, decisions, design, labels)
    probability_rules = rules[rules["rule"] != "cap_reached"]
    assert len(data) == len(probability_rules)
    assert data["row"].nunique() == decisions["arm"].nunique()
    assert (data["status"] == probability_rules["status"].to_numpy()).all()
    # no id reaches the reader: rows and headers are names
    for text in list(data["row"]) + list(data["rule"]):
        assert "_" not in text and "osfd28" not in text
    graduated = decisions.loc[decisions["decision"] == "graduation", "arm"]
    for arm in graduated:
        assert any(design.arm(arm).name in r and "→ Graduation" in r for r in data["row"])
    spec = assert_valid_inline_spec(ch.rules_chart(data, design))
    assert spec["facet"]["column"]["field"] == "rule"
    assert_renders_to_svg_offline(ch.rules_chart(data, design))


def test_rules_csv_link_embeds_the_full_labelled_table(design):
    rules, _ = _example_rules(design)
    link = ch.rules_csv_link(rules, load_labels(design), "rules.csv").data
    payload = re.search(r"base64,([A-Za-z0-9+/=]+)", link).group(1)
    table = pd.read_csv(io.StringIO(base64.b64decode(payload).decode("utf-8")))
    assert len(table) == len(rules) and len(table.columns) == len(rules.columns)
    assert 'download="rules.csv"' in link and f"{len(rules)} rows" in link
    assert not table.astype(str).apply(lambda c: c.str.contains("hinf_")).any().any()
