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
        kind = KIND_WORDS.get(f.kind, f.kind)
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
