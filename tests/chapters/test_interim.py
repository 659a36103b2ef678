"""The worked-interim chapter: the export contract and the numbers of its prose."""

from __future__ import annotations

from palette_core.chapters import interim as ch
from palette_core.exports.synthetic import load_scenario, true_odds_ratios
from palette_core.interim.analyse import load_analysis
from palette_core.results.store import WORKED_INTERIM, derived_root


def test_export_contract_table_lists_every_column_once(design):
    t = ch.export_contract_table(design)
    assert list(t["Column"]) == list(design.export_contract.fields)
    required = {k for k, f in design.export_contract.fields.items() if f.required}
    assert set(t.loc[t["Required"] == "yes", "Column"]) == required


def test_interim_numbers_agree_with_the_stored_analysis(design):
    analysis = load_analysis(derived_root(design) / WORKED_INTERIM, design=design)
    scenario = load_scenario(design)
    n = ch.interim_numbers(analysis, design, scenario)
    assert n["n_rows"] == analysis.manifest["counts"]["rows"]
    assert n["n_injected"] == len(scenario["bad_rows"]["kinds"])
    assert 0 <= n["n_covered"] <= n["n_arms_with_data"] <= len(design.experimental_arms())
    harmful = true_odds_ratios(design, scenario).query("true_or < 1")["true_or"]
    assert len(harmful) > 0  # the scenario has a harmful arm, which the prose names
    assert n["harm_true_or"] == f"{harmful.min():g}"
