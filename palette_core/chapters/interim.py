"""Chapter "Worked interim analysis": the export contract and the numbers its prose quotes.
The stored analysis and the scenario are read by the chapter with
:func:`palette_core.interim.analyse.load_analysis` and
:func:`palette_core.exports.synthetic.load_scenario`; nothing here reads a file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from palette_core.design.loader import Design
from palette_core.exports.synthetic import true_odds_ratios
from palette_core.interim.analyse import InterimAnalysis
from palette_core.interim.report import forest_data

#: How a list kind of the export contract is described.
KIND_WORDS = {
    "trait_list": "list of trait ids",
    "substance_list": "list of substance ids",
    "interval_list": "list of date intervals",
}


def export_contract_table(design: Design) -> pd.DataFrame:
    """The export contract (``export_contract.yaml``): one row per column of ``patients.csv``.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Columns Column, Content (kind, categories, unit, range), Required and Description.
    """
    rows = []
    for name, f in design.export_contract.fields.items():
        kind = "whole number" if f.integer else KIND_WORDS.get(f.kind, f.kind)
        if f.categories_from:
            kind += f" ({f.categories_from[:-1].replace('_', ' ')} id)"
        elif f.categories:
            kind += f" ({', '.join(f.categories)})"
        if f.unit:
            kind += f", {f.unit}"
        if f.range:
            kind += f", {f.range[0]:g} to {f.range[1]:g}"
        rows.append(
            {
                "Column": name,
                "Content": kind,
                "Required": "yes" if f.required else "",
                "Description": " ".join(f.description.split()),
            }
        )
    return pd.DataFrame(rows)


def interim_numbers(
    analysis: InterimAnalysis, design: Design, scenario: Mapping[str, Any]
) -> dict[str, object]:
    """The numbers quoted in the prose of the chapter "Worked interim analysis".

    Parameters
    ----------
    analysis
        The stored analysis of the synthetic export.
    design
        The loaded design.
    scenario
        The raw scenario of the synthetic export (``data/scenarios/interim_example.yaml``).

    Returns
    -------
    dict
        Glue name -> value: follow-up window, screening and export counts, and how many true odds
        ratios of the primary outcome lie inside their 95 % interval.
    """
    derived = analysis.table("derived")
    truth = true_odds_ratios(design, scenario)
    f = forest_data(analysis, truth).query("outcome == @design.decisions.graduation.outcome")
    with_data = f[f["arm"].isin(derived.loc[derived["status"] == "complete", "arm"])]
    inside = (with_data["or_low"] < with_data["true_or"]) & (
        with_data["true_or"] < with_data["or_high"]
    )
    harmful = truth.loc[truth["true_or"] < 1, "true_or"]
    return {
        "window_days": design.interim_analysis.follow_up.window_days,
        "n_screened": int(scenario["n_screened"]),
        "n_sites": int(derived["site_id"].nunique()),
        "n_countries": int(derived["country"].nunique()),
        "data_cut": str(analysis.manifest["export"]["data_cut"]),
        "n_rows": int(analysis.manifest["counts"]["rows"]),
        "n_injected": len(scenario["bad_rows"]["kinds"]),
        "n_covered": int(inside.sum()),
        "n_arms_with_data": len(with_data),
        "harm_true_or": f"{harmful.min():g}" if len(harmful) else "none",
    }


def decision_notice(analysis: InterimAnalysis) -> str:
    """Markdown that says why the look took no decision, from the stored diagnostics (empty
    when it took one): the primary fit whose convergence gates failed after every escalation,
    and what failed. Withholding the decision is the rule (``proposed/interim_analysis.yaml``):
    numbers from a fit that failed its gates are not acted on."""
    if len(analysis.table("decisions")):
        return ""
    diag = analysis.table("diagnostics")
    used = diag[(diag["analysis"] == "primary") & diag["used"].astype(bool)]
    failed = used[~used["gates_passed"].astype(bool)]
    what = "; ".join(
        f"{r.outcome}: {r.failures} after {int(r.attempt) + 1} attempts"
        for r in failed.itertuples()
    )
    return (
        "**No decision at this look.** The primary fit failed its convergence gates after every "
        f"escalation ({what}), so no arm graduates, stops or is capped on it: the arms stay as "
        "they were and the look is repeated with the next data. The tables below show the "
        "fit's numbers for the DMC's information only."
    )
