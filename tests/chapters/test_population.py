"""The population chapter: worked examples, trait status and overlap, accrual per policy."""

from __future__ import annotations

import pandas as pd
import pytest
from charts import assert_renders_to_svg_offline, assert_valid_inline_spec
from support import DATA

from palette_core.chapters import population as ch
from palette_core.screening.classify import classify_patients
from palette_core.screening.eligibility import eligibility_flow
from palette_core.screening.patients import read_patients


@pytest.fixture(scope="module")
def worked(design):
    return classify_patients(ch.load_worked_examples(design), design, seed=7)


def test_worked_examples_are_read_from_the_data_folder(design):
    loaded = ch.load_worked_examples(design)
    direct = read_patients(DATA / "examples" / "worked_examples.csv", design)
    assert loaded.errors.empty
    pd.testing.assert_frame_equal(loaded.frame, direct.frame)


def test_population_report_tables_and_charts(design, worked):
    status = ch.trait_status_table(worked, design)
    assert len(status) == len(design.traits)
    assert (
        status[["positive", "negative", "indeterminate", "not applicable"]].sum(axis=1)
        == len(worked)
    ).all()
    overlap = ch.trait_overlap_table(worked, design)
    assert overlap["patients"].sum() <= len(worked)
    elig, traits = ch.worked_examples_tables(worked, design)
    assert len(elig) == len(traits) == len(worked)
    accrual = ch.policy_accrual_table({"default": worked}, design)
    assert accrual["randomised in trait"].sum() == worked["assigned_trait"].notna().sum()
    wide = ch.policy_comparison_table(accrual, design)
    assert list(wide.columns) == ["Trait", "default"]
    assert wide["Trait"].tolist() == [t.short_name or t.name for t in design.traits]
    assert wide["default"].sum() == accrual["randomised in trait"].sum()
    for chart in (ch.upset_chart(worked, design), ch.policy_accrual_chart(accrual, design)):
        assert chart.to_dict()


def test_worked_examples_tables_name_traits_and_the_trait_randomised_in(design, worked):
    _, traits = ch.worked_examples_tables(worked, design)
    names = {t.short_name or t.name for t in design.traits}
    shown = {x for cell in traits["Randomised in"] if cell != "-" for x in cell.split(", ")}
    assert shown and shown <= names
    assigned = worked["assigned_trait"].notna().to_numpy()
    assert ((traits["Randomised in"] != "-").to_numpy() == assigned).all()


def test_trait_overlap_counts_each_patient_once(design, worked):
    overlap = ch.trait_overlap_table(worked, design, top=100)
    with_any = sum(
        (worked[f"trait_{t.id}"] == "positive").to_numpy() for t in design.traits
    ).astype(bool)
    assert overlap["patients"].sum() == with_any.sum()
    assert (overlap["n_traits"] == overlap["traits"].map(len)).all()


def test_eligibility_parameters_come_from_the_design_and_the_sofa_reference(design):
    p = ch.eligibility_parameters(design)
    groups = {g.id: g for g in design.strata.age_groups}
    assert p["adult_min_age"] == f"{groups['adult'].min_age_years.value:g}"
    assert p["sofa_rise"] >= 1 and p["phoenix_min"] >= 1


def test_eligibility_flow_chart_is_valid_and_renders_offline(worked):
    chart = ch.eligibility_flow_chart(eligibility_flow(worked))
    assert_valid_inline_spec(chart)
    assert_renders_to_svg_offline(chart)
