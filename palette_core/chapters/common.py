"""What every chapter of the book uses: the notebook set-up, tables as HTML, the closing note,
and the trait rules (shown by the synopsis and by the population chapter).

Only the book imports this module (it needs IPython, which the library does not).
"""

from __future__ import annotations

import functools

import altair as alt
import pandas as pd
from IPython.display import HTML, Markdown

from palette_core.design.loader import Design, load_design
from palette_core.design.traits import AllOf, Comparison, Condition, HookRule
from palette_core.provenance import package_versions
from palette_core.registry.doses import unit_display
from palette_core.viz.labels import LABELS, Labeller, age_label, load_labels

#: How a comparison operator of ``traits.yaml`` is printed.
OP_DISPLAY = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}

#: The packages named in the closing note of every chapter.
NOTE_PACKAGES = ("palette-core", "jax", "numpyro", "pandas", "altair", "jupyter-book")


def setup_book() -> None:
    """Render charts as inline SVG (no JavaScript, no CDN) and show whole table cells."""
    alt.renderers.enable("svg")
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_rows", 200)


@functools.cache
def default_labels() -> Labeller:
    """The labeller of the design the chapters load (``load_design()``), read once."""
    return load_labels(load_design())


def table(df: pd.DataFrame, labels: Labeller | None = None) -> HTML:
    """A table as plain HTML without the index (deterministic output, no random ids), every id
    in its column names and cells replaced by its label (``data/labels.yaml`` and the design).

    Parameters
    ----------
    df
        The table to show; missing values are shown as ``-``.
    labels
        The labeller; by default the one of the design the chapters load.

    Returns
    -------
    IPython.display.HTML
        The table, displayed by the notebook.

    Raises
    ------
    ValueError
        When a column has no name (a screen reader announces an empty header; name it).
    """
    shown = (labels or default_labels()).frame(df)
    unnamed = [i for i, c in enumerate(shown.columns) if not str(c).strip()]
    if unnamed:
        raise ValueError(f"table columns without a name (positions {unnamed}): name them")
    return HTML(shown.to_html(index=False, border=0, classes="palette-table", na_rep="-"))


def versions_note(design: Design) -> Markdown:
    """Closing cell of every chapter: the design and the versions that produced the page.

    Parameters
    ----------
    design
        The loaded design (its hash is quoted).

    Returns
    -------
    IPython.display.Markdown
        One italic sentence.
    """
    v = package_versions(NOTE_PACKAGES)
    listed = ", ".join(f"{k} {val}" for k, val in v.items())
    return Markdown(
        f"*Computed from design `{design.design_hash[:12]}` (data/design) and registry record "
        f"{design.trial.registry_id} with {listed}; see the Reproducibility chapter.*"
    )


def describe_condition(design: Design, cond: Condition) -> str:
    """A trait rule of ``traits.yaml`` in words, e.g. ``INR ≥ 1.4 AND ((...) OR (...))``.

    Parameters
    ----------
    design
        The loaded design (biomarker labels, hooks).
    cond
        A comparison, a hook rule, or an ``all_of`` / ``any_of`` combination of them.

    Returns
    -------
    str
        The rule, each operand of AND / OR in parentheses.
    """
    if isinstance(cond, Comparison):
        b = design.biomarkers[cond.biomarker]
        thr = f"{cond.threshold:,g}".replace(",", " ")
        unit = unit_display(cond.unit)
        return f"{b.label} {OP_DISPLAY[cond.op]} {thr}{' ' + unit if unit else ''}"
    if isinstance(cond, HookRule):
        h = design.hooks[cond.hook]
        return f"{h.label}: {', '.join(cond.positive)}"
    if isinstance(cond, AllOf):
        return " AND ".join(f"({describe_condition(design, c)})" for c in cond.all_of)
    return " OR ".join(f"({describe_condition(design, c)})" for c in cond.any_of)


def trait_rules_table(design: Design) -> pd.DataFrame:
    """The adopted rule of every trait and age group, generated from ``traits.yaml``.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Columns Trait, Age group, Rule and Finding (the registry finding discussing the rule).
    """
    rows = []
    for t in design.traits:
        for ag in t.age_groups:
            rows.append(
                {
                    LABELS["trait"]: t.name,
                    "Age group": age_label(design, (ag,)),
                    LABELS["rule"]: describe_condition(design, t.rules[ag]),
                    "Finding": t.finding or "-",
                }
            )
    return pd.DataFrame(rows)
