"""The forest plot of odds ratios, drawn the same way by the book and the interim reports."""

from __future__ import annotations

import altair as alt
import pandas as pd

#: Tick values of the log odds-ratio axes.
OR_TICKS = [0.01, 0.03, 0.1, 0.25, 0.5, 1, 2, 4, 10, 30, 100]


def forest_plot(df: pd.DataFrame, title: str) -> alt.FacetChart:
    """Forest plot of odds ratios (log axis, > 1 = benefit), one panel per outcome.

    Parameters
    ----------
    df
        One row per outcome and arm, in display order, with columns ``label`` (the arm as
        shown), ``trait_name`` (colour), ``outcome_label`` (panel), ``or_median``, ``or_low``,
        ``or_high``, ``pr_benefit``, ``pr_harm`` and ``true_or`` (NaN where unknown; known
        values are drawn as black diamonds).
    title
        The chart's title.

    Returns
    -------
    altair.FacetChart
        The chart, with its data inline.
    """
    order = list(dict.fromkeys(df["label"]))
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    x_scale = alt.Scale(type="log", zero=False)
    ticks = alt.Axis(values=OR_TICKS, format="~g")
    base = alt.Chart()
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X(
            "or_low:Q", scale=x_scale, axis=ticks, title="Odds ratio (> 1 = benefit), 95 % interval"
        ),
        x2="or_high:Q",
        y=y,
        color=alt.Color("trait_name:N", title="Trait", legend=alt.Legend(orient="bottom")),
    )
    points = base.mark_point(filled=True, size=50).encode(
        x=alt.X("or_median:Q", scale=x_scale),
        y=y,
        color=alt.Color("trait_name:N"),
        tooltip=["label", "or_median", "or_low", "or_high", "pr_benefit", "pr_harm"],
    )
    one = base.mark_rule(strokeDash=[4, 3], color="#555555").encode(
        x=alt.X(datum=1, scale=x_scale, axis=ticks)
    )
    layers = [one, bars, points]
    if df["true_or"].notna().any():
        layers.append(
            base.transform_filter("isValid(datum.true_or)")
            .mark_point(shape="diamond", color="#000000", size=80, filled=False, strokeWidth=2)
            .encode(x=alt.X("true_or:Q", scale=x_scale), y=y)
        )
    return (
        alt.layer(*layers, data=df)
        .properties(width=300, height=alt.Step(16))
        .facet(
            column=alt.Column(
                "outcome_label:N", title=None, sort=list(dict.fromkeys(df["outcome_label"]))
            )
        )
        .properties(title=title)
    )
