"""Labels shown for traits and age groups."""

from __future__ import annotations

from palette_core.viz.labels import LABELS, age_label, trait_label


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
