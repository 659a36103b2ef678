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


def test_a_look_without_decision_says_which_fit_failed_its_gates(design, tmp_path):
    import shutil

    import pandas as pd

    src = derived_root(design) / WORKED_INTERIM
    shutil.copytree(src, tmp_path / WORKED_INTERIM)
    a = load_analysis(tmp_path / WORKED_INTERIM, design=design, allow_stale=True)
    notice = ch.decision_notice(a)
    assert (notice == "") == bool(len(a.table("decisions")))
    # the same analysis with its decisions emptied and a failed primary fit says so
    folder = tmp_path / WORKED_INTERIM
    decisions = pd.read_csv(folder / "decisions.csv")
    decisions.iloc[0:0].to_csv(folder / "decisions.csv", index=False)
    diag = pd.read_csv(folder / "diagnostics.csv")
    primary = (diag["analysis"] == "primary") & diag["used"]
    diag.loc[primary, "gates_passed"] = False
    diag.loc[primary, "failures"] = "2 divergent transitions (max 0)"
    diag.to_csv(folder / "diagnostics.csv", index=False)
    empty = load_analysis(folder, design=design, allow_stale=True)
    text = ch.decision_notice(empty)
    assert text.startswith("**No decision at this look.**")
    assert "2 divergent transitions (max 0)" in text
