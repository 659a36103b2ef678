"""Chapter "Interim analyses and decision rules": the rules applied at each look."""

from __future__ import annotations

import base64
import html
import textwrap

import altair as alt
import pandas as pd
from IPython.display import HTML

from palette_core.design.loader import Design
from palette_core.tableio import neutralise_formulas
from palette_core.viz.labels import LABELS, Labeller


def decision_rules_table(design: Design) -> pd.DataFrame:
    """The decision rules applied at each look (``data/design/proposed/decisions.yaml``).

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        One row per decision in order of precedence (harm, graduation, futility, cap reached)
        with its rule, minimum information and rationale.
    """
    dec = design.decisions
    label = {o.id: o.label for o in design.outcomes.outcomes}
    rows = [
        (
            "harm",
            f"Pr(OR < {dec.harm.or_reference:g}) > {dec.harm.threshold:g} on {' or '.join(label[o] for o in dec.harm.outcomes)}",
            f">= {dec.harm.min_complete} complete",
            dec.harm.rationale,
        ),
        (
            "graduation",
            f"Pr(OR > {dec.graduation.or_reference:g}) > {dec.graduation.threshold:g} on {label[dec.graduation.outcome]}",
            f">= {dec.graduation.min_complete} complete",
            dec.graduation.rationale,
        ),
        (
            "futility",
            f"Pr(OR > {dec.futility.or_reference:g}) < {dec.futility.threshold:g} on {label[dec.futility.outcome]}",
            f">= {dec.futility.min_complete} complete",
            dec.futility.rationale,
        ),
        (
            "cap reached",
            f"{dec.cap_per_experimental_arm.value} patients allocated to the arm",
            "-",
            dec.cap_per_experimental_arm.rationale,
        ),
    ]
    return pd.DataFrame(
        [(a, b, c, " ".join(d.split())) for a, b, c, d in rows],
        columns=[
            "Decision (in order of precedence)",
            "Rule",
            "Minimum information",
            LABELS["rationale"],
        ],
    )


#: Colour of a rule's probability in :func:`rules_chart`: whether the rule fires.
STATUS_COLOURS = {
    "fires": "#b2182b",
    "does not fire": "#4d4d4d",
    "not evaluable": "#bababa",
}


def _arm_row_label(design: Design, arm_id: str, decision: str, labels: Labeller) -> str:
    arm = design.arm(arm_id)
    trait = design.trait(arm.trait)
    return f"{trait.short_name or trait.name}: {arm.short_name or arm.name} → {labels(decision)}"


def rules_chart_data(
    rules: pd.DataFrame, decisions: pd.DataFrame, design: Design, labels: Labeller
) -> pd.DataFrame:
    """The probability rules of every arm, one row per arm and rule, labelled for the chart.

    Parameters
    ----------
    rules
        :func:`palette_core.analysis.decisions.evaluate_rules` (one row per arm, rule and outcome).
    decisions
        The decision of each arm (columns ``arm`` and ``decision``).
    design
        The loaded design (arm and trait names).
    labels
        The labeller (decision and outcome names).

    Returns
    -------
    pandas.DataFrame
        Columns ``row`` (trait: arm → decision), ``rule`` (rule, inequality and outcome, lines
        separated by ``|``), ``value``,
        ``threshold``, ``status``; the cap rule (a count, not a probability) is left out: it is
        in the decision of the row.
    """
    decision_of = dict(zip(decisions["arm"], decisions["decision"], strict=True))
    probs = rules[rules["rule"] != "cap_reached"]
    out = pd.DataFrame(
        {
            "row": [_arm_row_label(design, a, decision_of[a], labels) for a in probs["arm"]],
            # header lines, split at "|": the rule, its inequality, the outcome (wrapped)
            "rule": [
                "|".join([labels(r), f"{q} {c} {t:g}", *textwrap.wrap(labels(o), 24)])
                for r, q, c, t, o in zip(
                    probs["rule"],
                    probs["quantity"],
                    probs["comparison"],
                    probs["threshold"],
                    probs["outcome"],
                    strict=True,
                )
            ],
            "value": probs["value"].to_numpy(),
            "threshold": probs["threshold"].to_numpy(),
            "comparison": probs["comparison"].to_numpy(),
            "status": probs["status"].to_numpy(),
        }
    )
    return out


def rules_chart(data: pd.DataFrame, design: Design) -> alt.FacetChart:
    """Per arm, each rule's posterior probability (dot) against its threshold (bar).

    Parameters
    ----------
    data
        :func:`rules_chart_data`.
    design
        The loaded design (arm order: the order of ``arms.yaml``).

    Returns
    -------
    altair.FacetChart
        One column per rule, one row per arm; a red dot is a rule that fires.
    """
    order = list(dict.fromkeys(data["row"]))
    base = alt.Chart().encode(
        y=alt.Y("row:N", sort=order, title=None, axis=alt.Axis(labelLimit=360)),
    )
    threshold = base.mark_tick(thickness=2, size=14, color="#2166ac").encode(
        x=alt.X("threshold:Q", scale=alt.Scale(domain=[0, 1]), title="Posterior probability")
    )
    dots = base.mark_circle(size=55, opacity=1).encode(
        x=alt.X("value:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color(
            "status:N",
            title="The rule",
            scale=alt.Scale(domain=list(STATUS_COLOURS), range=list(STATUS_COLOURS.values())),
            legend=alt.Legend(orient="top"),
        ),
        tooltip=["row", "rule", "value", "comparison", "threshold", "status"],
    )
    return (
        alt.layer(threshold, dots)
        .properties(width=110, height=alt.Step(16))
        .facet(
            column=alt.Column(
                "rule:N",
                title=None,
                sort=list(dict.fromkeys(data["rule"])),
                header=alt.Header(
                    labelExpr="split(datum.label, '|')", labelFontSize=10.5, labelAngle=0
                ),
            ),
            data=data,
        )
        .resolve_scale(y="shared")
    )


def rules_csv_link(rules: pd.DataFrame, labels: Labeller, filename: str) -> HTML:
    """The full table of rules as a CSV file the reader downloads from the page itself.

    The file is embedded in the link (a ``data:`` address), so the site serves nothing more
    and the stored output is deterministic. Cells that a spreadsheet would run as a formula are
    neutralised.

    Parameters
    ----------
    rules
        The table (one row per arm, rule and outcome), labelled before writing.
    labels
        The labeller.
    filename
        The name the browser saves the file under.

    Returns
    -------
    IPython.display.HTML
        A paragraph with the link, its size and the number of rows.
    """
    text = neutralise_formulas(labels.frame(rules)).to_csv(index=False, lineterminator="\n")
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return HTML(
        f'<p class="palette-download pdf-omit"><a download="{html.escape(filename)}" '
        f'href="data:text/csv;charset=utf-8;base64,{payload}">Download the full table '
        f"({len(rules)} rows, CSV, {len(text.encode()) / 1024:.0f} kB)</a></p>"
    )
