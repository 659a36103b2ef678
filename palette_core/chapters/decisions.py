"""Chapter "Interim analyses and decision rules": the rules applied at each look."""

from __future__ import annotations

import pandas as pd

from palette_core.design.loader import Design
from palette_core.viz.labels import LABELS


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
