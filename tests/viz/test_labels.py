"""Labels shown for traits, age groups, arms, outcomes and the terms of data/labels.yaml."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import yaml

from palette_core.errors import DesignSchemaError
from palette_core.viz.labels import LABELS, LABELS_FILE, age_label, load_labels, trait_label


def test_trait_label_is_the_short_name_where_there_is_one(design):
    assert trait_label(design, "mals") == "MALS"
    for t in design.traits:
        assert trait_label(design, t.id) == (t.short_name or t.name)


def test_age_label_keeps_the_order_given(design):
    labels = {g.id: g.label for g in design.strata.age_groups}
    assert age_label(design, ("adult", "child")) == f"{labels['adult']}, {labels['child']}"
    assert age_label(design, ("child",)) == labels["child"]


def test_column_labels_are_distinct():
    assert len(set(LABELS.values())) == len(LABELS)


def test_labeller_names_arms_traits_outcomes_and_the_terms_of_the_label_table(design):
    labels = load_labels(design)
    control = design.control_of("hyperinflammation")
    assert labels(control.id) == control.name
    assert labels("mals") == design.trait("mals").name
    primary = next(o for o in design.outcomes.outcomes if o.role == "primary")
    assert labels(primary.id) == primary.label
    terms = yaml.safe_load((design.data_root / LABELS_FILE).read_text(encoding="utf-8"))["terms"]
    assert labels("response_adaptive") == terms["response_adaptive"]
    # an id inside a longer text is replaced; a short word only as a whole cell
    assert labels(f"{control.id}: closed") == f"{control.name}: closed"
    assert labels("open") == terms["open"] and labels("reopened") == "reopened"
    assert labels(f"Pr(OR > 1) on {primary.id} = 0.9") == f"Pr(OR > 1) on {primary.label} = 0.9"
    assert labels("harm is open") == "harm is open"
    # a parameterised analysis name: its label and its value
    assert labels("prior_between_trait_sd_0.5") == f"{terms['prior_between_trait_sd']} 0.5"
    assert labels("prior_unknown_0.5") == "prior_unknown_0.5"
    assert labels(3) == 3


def test_labeller_frame_labels_columns_and_cells_and_drops_index_names(design):
    labels = load_labels(design)
    df = pd.DataFrame({"cap_reached": ["hinf_anakinra", "text"], "n": [1, 2]})
    df.columns.name = "policy"
    df.index.name = "row"
    out = labels.frame(df)
    assert list(out.columns) == [labels("cap_reached"), "n"]
    assert out.columns.name is None and out.index.name is None
    assert out.iloc[:, 0].tolist() == [design.arm("hinf_anakinra").name, "text"]
    assert df.iloc[0, 0] == "hinf_anakinra"  # the input is not changed


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("terms: {open: ''}\n", "open"),
        ("labels: {}\n", None),
        ("terms: [a, b]\n", None),
    ],
)
def test_label_table_errors_name_the_file_and_entry(design, tmp_path, text, field):
    (tmp_path / LABELS_FILE).write_text(text, encoding="utf-8")
    moved = dataclasses.replace(design, data_root=tmp_path)
    with pytest.raises(DesignSchemaError) as err:
        load_labels(moved)
    assert LABELS_FILE in str(err.value)
    if field:
        assert field in str(err.value)


def test_missing_label_table_is_a_typed_error(design, tmp_path):
    with pytest.raises(DesignSchemaError, match="label table not found"):
        load_labels(dataclasses.replace(design, data_root=tmp_path))
