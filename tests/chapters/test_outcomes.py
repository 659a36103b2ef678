"""The outcomes chapter: outcomes, strategies, estimands per trait and the prose's numbers."""

from __future__ import annotations

from typing import Any

from charts import assert_renders_to_svg_offline, assert_valid_inline_spec

from palette_core.analysis.estimands import estimands_table, intercurrent_events_table
from palette_core.chapters import outcomes as ch
from palette_core.design.loader import modified_design


def test_chart_counts_every_estimand(design):
    table = estimands_table(design)
    data = ch.estimands_chart(table, design).data
    assert data["estimands"].sum() == len(table)


def test_estimands_chart_is_valid_and_renders_offline(design):
    chart = ch.estimands_chart(estimands_table(design), design)
    assert_valid_inline_spec(chart)
    assert_renders_to_svg_offline(chart)


def test_strategy_matrix_has_a_row_per_event_and_a_column_per_outcome(design):
    assert ch.strategy_matrix(design).shape == (5, 1 + len(design.outcomes.outcomes))


def test_strategy_matrix_shows_the_strategy_of_each_event_and_outcome(design):
    matrix = ch.strategy_matrix(design).set_index("Intercurrent event")
    long = intercurrent_events_table(design)
    labels = {o.id: o.label for o in design.outcomes.outcomes}
    for row in long.itertuples():
        assert matrix.loc[row.event_label, labels[row.outcome]] == row.strategy_label


def test_event_definitions_list_every_event_with_its_default_strategy(design):
    table = ch.event_definitions_table(design)
    assert table["Intercurrent event"].tolist() == [
        e.label for e in design.estimands.intercurrent_events
    ]
    assert table.set_index("Intercurrent event").loc["Death before day 28", "Default strategy"] == (
        "Composite"
    )


def test_outcomes_table_follows_the_outcomes_file(design):
    def edit(data: dict[str, Any]) -> None:
        data["outcomes"][0]["label"] = "Renamed primary outcome"

    before = ch.outcomes_table(design)
    with modified_design(None, "proposed/outcomes.yaml", edit) as changed:
        after = ch.outcomes_table(changed)
    assert before["Outcome"].tolist() == [o.label for o in design.outcomes.outcomes]
    assert after["Outcome"].iloc[0] == "Renamed primary outcome"
    assert after["Outcome"].iloc[1:].tolist() == before["Outcome"].iloc[1:].tolist()


def test_chapter_numbers_are_computed_from_the_design(design):
    numbers = ch.estimands_numbers(design)
    table = estimands_table(design)
    assert numbers["n_estimands"] == len(table)
    assert numbers["n_outcomes"] == len(design.outcomes.outcomes)
    assert numbers["osfd_death"] == design.outcome("osfd28").death_value
    assert ch.estimands_numbers(design, table) == numbers


def test_estimands_matrix_condenses_a_trait_to_one_row_per_arm(design):
    table = estimands_table(design)
    matrix = ch.estimands_matrix(table, design, "hypercoagulation")
    arms = design.experimental_arms("hypercoagulation")
    assert matrix.iloc[:, 0].tolist() == [a.name for a in arms]
    rows = table[table["trait"] == "hypercoagulation"]
    # every estimand of the trait is one filled cell, and only those
    assert (matrix.iloc[:, 1:] != "-").sum().sum() == len(rows)
    assert ch.estimand_population(table, "hypercoagulation") == rows["population"].iloc[0]
