"""Outcomes and estimands: the table follows the design, and a bad estimands.yaml is refused."""

from __future__ import annotations

from typing import Any

import pytest

from palette_core import load_design
from palette_core.analysis.estimands import (
    estimands_table,
    intercurrent_events_table,
)
from palette_core.design.loader import modified_design
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignSchemaError,
    DuplicateIdError,
    UnknownReferenceError,
)

FILE = "proposed/estimands.yaml"


@pytest.fixture(scope="module")
def design():
    return load_design()


def _block(data: dict[str, Any], outcome: str) -> dict[str, Any]:
    return next(e for e in data["estimands"] if e["outcome"] == outcome)


def test_one_row_per_arm_for_primary_and_key_secondary_plus_safety_rows(design):
    experimental = design.experimental_arms()
    safety = [o for o in design.outcomes.outcomes if o.role == "safety"]
    by_hand = 2 * len(experimental) + sum(
        any(c.substance in o.applies_to_substances for c in a.components)
        for a in experimental
        for o in safety
    )
    table = estimands_table(design)
    assert len(experimental) == 18
    # bleeding: UFH x2, tinzaparin, rhTM, plasminogen, Octaplas LG; infection: tocilizumab,
    # baricitinib, anakinra x2, hydrocortisone, fludrocortisone, hydrocortisone + fludrocortisone
    assert by_hand == 18 * 2 + 6 + 7
    assert len(table) == by_hand
    assert not table.duplicated(["arm", "outcome"]).any()


def test_safety_outcomes_only_for_arms_whose_substances_they_name(design):
    table = estimands_table(design).set_index(["arm", "outcome"])
    assert ("hcoag_lmwh", "isth_major_bleeding") in table.index
    assert ("hcoag_lmwh", "secondary_infection") not in table.index
    assert ("cort_hc_fc", "secondary_infection") in table.index
    assert ("hypo_gcsf", "isth_major_bleeding") not in table.index
    assert ("hypo_gcsf", "secondary_infection") not in table.index


def test_every_referenced_outcome_trait_and_arm_exists(design):
    table = estimands_table(design)
    assert set(table["outcome"]) == {o.id for o in design.outcomes.outcomes}
    assert set(table["trait"]) <= set(design.trait_ids)
    for _, row in table.iterrows():
        assert design.arm(row["arm"]).trait == row["trait"]
        assert design.arm(row["arm"]).role == "experimental"


def test_population_names_the_trait_and_its_age_groups(design):
    row = estimands_table(design).query("arm == 'hcoag_rhtm' and outcome == 'osfd28'").iloc[0]
    trait = design.trait("hypercoagulation")
    assert (trait.short_name or trait.name) in row["population"]
    assert "adults" in row["population"] and "children" not in row["population"]
    both = estimands_table(design).query("arm == 'hinf_anakinra'").iloc[0]["population"]
    assert "adults" in both and "children" in both


def test_summary_measure_is_oriented_to_benefit_for_every_outcome(design):
    table = estimands_table(design)
    assert table["summary_measure"].str.contains("OR > 1 = benefit").all()
    primary = table[table["outcome"] == "osfd28"]["summary_measure"].unique()
    assert list(primary) == ["Proportional odds ratio vs usual care (OR > 1 = benefit)"]


def test_strategy_override_applies_to_its_outcome_only(design):
    ice = intercurrent_events_table(design).set_index(["outcome", "event"])["strategy"]
    assert ice["osfd28", "death"] == "composite"
    assert ice["osfd28", "discharge_alive"] == "composite"
    assert ice["mortality28", "discharge_alive"] == "treatment_policy"
    assert ice["isth_major_bleeding", "death"] == "while_alive"
    assert ice["osfd28", "withdrawal_of_consent"] == "treatment_policy"
    assert len(ice) == len(design.outcomes.outcomes) * len(design.estimands.intercurrent_events)


def test_estimands_follow_the_yaml(design):
    def edit(data: dict[str, Any]) -> None:
        data["intercurrent_events"][0]["strategy"] = "hypothetical"
        data["population"]["template"] = "Assigned to {trait}"

    with modified_design(None, FILE, edit) as changed:
        table = estimands_table(changed)
    before = estimands_table(design)
    assert table.loc[0, "population"] == "Assigned to Hyperinflammation"
    assert "Death before day 28: hypothetical" in table.loc[0, "intercurrent_events"]
    assert "Death before day 28: composite" in before.loc[0, "intercurrent_events"]


def test_estimands_follow_the_outcomes(design):
    def edit(data: dict[str, Any]) -> None:
        data["outcomes"][2]["applies_to_substances"] = ["ufh"]

    with modified_design(None, "proposed/outcomes.yaml", edit) as changed:
        table = estimands_table(changed)
    assert len(table) == len(estimands_table(design)) - 4  # tinzaparin, rhTM, plasminogen, Octaplas


@pytest.mark.parametrize(
    ("edit", "error", "entry", "field"),
    [
        (
            lambda d: _block(d, "mortality28").update(outcome="mortality90"),
            UnknownReferenceError,
            "mortality90",
            "outcome",
        ),
        (
            lambda d: d["intercurrent_events"][1].update(strategy="last_observation"),
            UnknownReferenceError,
            "discharge_alive",
            "strategy",
        ),
        (
            lambda d: _block(d, "isth_major_bleeding")["strategies"]["death"].update(
                strategy="imputation"
            ),
            UnknownReferenceError,
            "isth_major_bleeding",
            "strategies.death.strategy",
        ),
        (
            lambda d: _block(d, "osfd28").update(
                strategies={"rescue": _block(d, "mortality28")["strategies"]["discharge_alive"]}
            ),
            UnknownReferenceError,
            "osfd28",
            "strategies.rescue",
        ),
        (
            lambda d: d["estimands"].pop(),
            ConflictingArgumentsError,
            None,
            "estimands",
        ),
        (
            lambda d: d["estimands"].append(dict(_block(d, "osfd28"))),
            DuplicateIdError,
            "osfd28",
            "outcome",
        ),
        (
            lambda d: _block(d, "osfd28").update(summary_measure="odds_ratio"),
            ConflictingArgumentsError,
            "osfd28",
            "summary_measure",
        ),
        (
            lambda d: _block(d, "osfd28").update(summary_measure="risk_ratio"),
            DesignSchemaError,
            "[0]",
            "summary_measure",
        ),
        (
            lambda d: d["treatment"].update(template="{arm} versus {comparator}"),
            UnknownReferenceError,
            "treatment",
            "template",
        ),
        (
            lambda d: d.update(status="adopted"),
            DesignSchemaError,
            None,
            "status",
        ),
    ],
    ids=[
        "unknown-outcome",
        "unknown-default-strategy",
        "unknown-override-strategy",
        "unknown-intercurrent-event",
        "outcome-without-estimand",
        "two-blocks-for-one-outcome",
        "measure-does-not-fit-type",
        "measure-not-allowed",
        "unknown-template-placeholder",
        "not-proposed",
    ],
)
def test_bad_estimands_are_refused_naming_file_entry_and_field(edit, error, entry, field):
    with pytest.raises(error) as info, modified_design(None, FILE, edit):
        pass
    assert info.value.file == FILE
    assert info.value.entry == entry
    assert info.value.field == field
