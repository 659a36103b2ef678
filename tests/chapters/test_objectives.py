"""The chapter "Objectives and estimands of the decisions": hypotheses, rules, registry quotes, age mix."""

from __future__ import annotations

import pytest
import support

from palette_core.chapters import objectives
from palette_core.errors import RegistryFormatError

BOOK = support.ROOT / "book"


def test_one_hypothesis_per_experimental_arm_naming_arm_and_control(design, protocol):
    table = objectives.hypotheses_table(design, protocol)
    assert len(table) == len(design.experimental_arms())
    first = design.experimental_arms()[0]
    control = next(a for a in design.arms if a.trait == first.trait and a.role == "control")
    assert first.name in table["Hypothesis"].iloc[0] and control.name in table["Hypothesis"].iloc[0]


def test_rule_texts_follow_the_decisions_file(design):
    texts = objectives.rule_texts(design)
    d = design.decisions
    assert f"> {d.graduation.threshold:g}" in texts["graduation"]
    assert f"< {d.futility.threshold:g}" in texts["futility"]
    assert str(d.cap_per_experimental_arm.value) in texts["cap_reached"]


def test_registry_quotes_carry_their_line_and_a_wrong_quote_is_refused(design, record):
    table = objectives.registry_quotes(design, ["2000 participants"])
    assert "2000" in record.line(int(table["Line"].iloc[0]))
    with pytest.raises(RegistryFormatError, match="quote not found"):
        objectives.registry_quotes(design, ["a sentence the registry never wrote"])


def test_age_mix_counts_every_cell(design, worked_interim):
    cells = worked_interim.tables["cells_osfd28"]
    mix = objectives.age_mix_table(design, cells)
    labels = [g.label for g in design.strata.age_groups]
    assert int(mix[labels].to_numpy().sum()) == int(cells["count"].sum())
