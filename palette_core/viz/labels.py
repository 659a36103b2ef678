"""Words shown for columns, traits and age groups, defined once for every table and chart."""

from __future__ import annotations

from palette_core.design.loader import Design

#: Column labels of the book's tables, so every table uses the same words.
LABELS = {
    "trait": "Trait",
    "age_groups": "Age groups",
    "control": "Control",
    "experimental": "Experimental arms",
    "n_experimental": "No. experimental arms",
    "arm": "Arm",
    "role": "Role",
    "route": "Route",
    "dose_adult": "Adults",
    "dose_child": "Children",
    "availability": "Availability",
    "shared": "Shared effect with",
    "rule": "Rule",
    "parameter": "Parameter",
    "value": "Value",
    "rationale": "Rationale",
    "source": "Source",
}


def trait_label(design: Design, trait_id: str) -> str:
    """The short name of a trait where it has one (e.g. "MALS"), else its name.

    Parameters
    ----------
    design
        The loaded design.
    trait_id
        A trait id of ``traits.yaml``.

    Returns
    -------
    str
        The label shown in charts and compact tables.
    """
    t = design.trait(trait_id)
    return t.short_name or t.name


def age_label(design: Design, ids: tuple[str, ...]) -> str:
    """The labels of age groups, in the order given, joined by commas.

    Parameters
    ----------
    design
        The loaded design.
    ids
        Age-group ids of ``strata`` (e.g. ``("adult", "child")``).

    Returns
    -------
    str
        For example ``"Adults, Children"``.
    """
    labels = {g.id: g.label for g in design.strata.age_groups}
    return ", ".join(labels[i] for i in ids)
