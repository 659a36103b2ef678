"""The validation chapter: accuracy panel, adaptr summary, SBC table and the manifest table."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from charts import assert_renders_to_svg_offline

from palette_core.chapters import validation as ch
from palette_core.results.store import load_result
from palette_core.simulate.accuracy import summarise_panel


def _comparisons(design) -> pd.DataFrame:
    """Hand-made comparisons: two evaluable adult graduation rows (one decision flips, one
    difference of 5 NUTS SEs) and one row below the minimum information (left out)."""
    g = design.decisions.graduation
    base = {
        "rule": "3-3-3",
        "trial": 0,
        "n_patients": 400,
        "quantity": "graduation",
        "outcome": "osfd28",
        "population": "adult",
        "threshold": g.threshold,
    }
    rows = [
        {
            **base,
            "look": 0,
            "arm": "a",
            "n_arm": g.min_complete,
            "nuts": g.threshold - 0.001,
            "nuts_mcse": 0.01,
            "laplace": g.threshold + 0.001,
        },
        {
            **base,
            "look": 1,
            "arm": "a",
            "n_arm": g.min_complete + 5,
            "nuts": 0.50,
            "nuts_mcse": 0.002,
            "laplace": 0.51,
        },
        {
            **base,
            "look": 1,
            "arm": "b",
            "n_arm": g.min_complete - 1,
            "nuts": 0.2,
            "nuts_mcse": 0.01,
            "laplace": 0.9,
        },
    ]
    return pd.DataFrame(rows)


def test_accuracy_table_reads_the_panel_and_adds_the_share_beyond_three_nuts_ses(design):
    comp = _comparisons(design)
    panel = summarise_panel(comp, design)
    t = ch.accuracy_table(panel, comp, design)
    assert len(t) == 1
    row = t.iloc[0]
    assert row["Comparisons"] == 2  # the arm below the minimum information is left out
    assert row["Largest |diff.|"] == pytest.approx(0.01)
    assert row["Target"] == ch.target_of(design, "osfd28")
    assert row["Target met (99th pct)"] == "yes"
    assert row["|diff.| > 3 NUTS SE"] == pytest.approx(0.5)  # 0.01 / 0.002 = 5 SEs
    assert row["Decision differs"] == pytest.approx(0.5)  # either side of the threshold
    assert row["Probability"] == "Graduation: Pr(OR > 1)"
    assert "hinf" not in " ".join(map(str, row.values))


def test_accuracy_table_says_no_when_the_99th_percentile_misses_the_target(design):
    comp = _comparisons(design)
    comp.loc[1, "laplace"] = 0.60
    t = ch.accuracy_table(summarise_panel(comp, design), comp, design)
    assert t.iloc[0]["Target met (99th pct)"] == "no"


def test_accuracy_chart_renders_and_marks_the_threshold_band(design):
    comp = _comparisons(design)
    spec = ch.accuracy_chart(comp, design, "3-3-3").to_dict()
    text = json.dumps(spec)
    assert "description" in spec and "threshold" in text.lower()
    values = next(iter(spec["datasets"].values()))
    band = ch.target_of(design, "osfd28")
    assert {round(v["lo"], 6) for v in values} == {
        round(design.decisions.graduation.threshold - band, 6)
    }
    assert len(values) == 2  # the row below the minimum information is not drawn
    assert_renders_to_svg_offline(ch.accuracy_chart(comp, design, "3-3-3"))


def _crosscheck() -> pd.DataFrame:
    z = [0.5, -2.5, 1.0, np.nan, 0.0]
    return pd.DataFrame(
        {
            "scenario": ["s1", "s1", "s2", "s2", "s2"],
            "n_rep": [10, 10, 1000, 1000, 1000],
            "metric": ["prob_superior", "size_mean", "prob_superior", "idp", "prob_futility"],
            "adaptr": [0.5, 1000.0, 0.4, np.nan, 0.0],
            "ours": [0.51, 990.0, 0.41, np.nan, 0.0],
            "n_trials_ours": [100] * 5,
            "se_adaptr": [0.1, 4.0, 0.01, np.nan, 0.0],
            "se_ours": [0.01, 1.0, 0.001, np.nan, 0.0],
            "se_rounding": [0.0] * 5,
            "z": z,
        }
    )


def test_adaptr_summary_counts_z_above_two_against_chance():
    s = ch.adaptr_summary(_crosscheck())
    total = s.iloc[-1]
    # the metric without an SE (both 0) and the one without z are not comparisons
    assert total["Metrics compared"] == 3
    assert total["|z| > 2"] == 1
    assert total["Largest |z|"] == 2.5
    assert total["Expected by chance"] == round(3 * ch.P_ABS_Z_ABOVE_2, 1)
    assert list(s["Scenario"]) == ["s1", "s2", "all"]


def test_adaptr_z_chart_renders():
    assert_renders_to_svg_offline(ch.adaptr_z_chart(_crosscheck()))


def test_reproducibility_table_flags_stale_and_missing_results(design, tmp_path):
    src = design.data_root / "derived" / "sbc"
    shutil.copytree(src, tmp_path / "sbc")
    shutil.copytree(src, tmp_path / "sbc_old")
    m = json.loads((tmp_path / "sbc_old" / "manifest.json").read_text())
    m["design_hash"] = "0" * 64
    m["design_files"]["traits.yaml"] = "0" * 64
    (tmp_path / "sbc_old" / "manifest.json").write_text(json.dumps(m))
    t = ch.reproducibility_table(design, ["sbc", "sbc_old", "nothing"], root=tmp_path)
    status = dict(zip(t["Result"], t["Status"], strict=True))
    current = not load_result("sbc", tmp_path, design=design, allow_stale=True).stale
    assert status["sbc"].startswith("current" if current else "stale")
    assert status["sbc_old"].startswith("stale (") and "traits.yaml" in status["sbc_old"]
    old = load_result("sbc_old", tmp_path, design=design, allow_stale=True)
    notice = ch.stale_notice(old)
    assert "`traits.yaml`" in notice and "palette results rebuild --only sbc_old" in notice
    assert ch.stale_notice(old.__class__(old.name, old.tables, old.manifest, False)) == ""
    assert status["nothing"].startswith("missing")
    assert (
        t.set_index("Result").at["sbc_old", "Rebuild"] == "palette results rebuild --only sbc_old"
    )
    assert t.set_index("Result").at["sbc_old", "Input hash"] == "design 000000000000"


def test_sbc_table_keeps_every_parameter():
    u = pd.DataFrame(
        {
            "parameter": ["a", "b"],
            "n_sims": [100, 100],
            "n_ranks": [100, 100],
            "n_bins": [20, 20],
            "chi2": [9.2, 20.8],
            "df": [19, 19],
            "p_value": [0.97, 0.348],
        }
    )
    t = ch.sbc_table(u)
    assert list(t["Parameter"]) == ["a", "b"] and list(t["p-value"]) == [0.97, 0.348]


def _tipping(design):
    """Hand-made curves and tipping table: one graduation curve that flips at -0.5, one
    futility curve that never does."""
    arm, other = (a.id for a in design.experimental_arms()[:2])
    d = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    grad = pd.DataFrame(
        {
            "outcome": "osfd28",
            "scenario": "experimental",
            "delta": d,
            "arm": arm,
            "rule": "graduation",
            "threshold": 0.95,
            "probability": [0.90, 0.95, 0.97, 0.98, 0.99],
            "mcse": 0.002,
            "complete_case": 0.969,
        }
    )
    fut = grad.assign(
        arm=other, rule="futility", threshold=0.10, probability=0.5, complete_case=0.5
    )
    curves = pd.concat([grad, fut], ignore_index=True)
    base = {
        "outcome": "osfd28",
        "scenario": "experimental",
        "trait": "t",
        "n_complete": 50,
        "n_missing": 2,
        "n_missing_control": 1,
        "evaluable": True,
        "mcse_mar": 0.002,
    }
    tipping = pd.DataFrame(
        [
            {
                **base,
                "rule": "graduation",
                "arm": arm,
                "threshold": 0.95,
                "probability_mar": 0.97,
                "complete_case": 0.969,
                "fires_mar": True,
                "tipping_below": -0.5,
                "tipping_above": np.nan,
            },
            {
                **base,
                "rule": "futility",
                "arm": other,
                "threshold": 0.10,
                "probability_mar": 0.5,
                "complete_case": 0.5,
                "fires_mar": False,
                "tipping_below": np.nan,
                "tipping_above": np.nan,
            },
            {
                **base,
                "rule": "harm",
                "arm": other,
                "threshold": 0.95,
                "probability_mar": 0.5,
                "complete_case": 0.5,
                "fires_mar": False,
                "tipping_below": np.nan,
                "tipping_above": np.nan,
                "evaluable": False,
            },
        ]
    )
    return curves, tipping, d


def test_tipping_table_shows_evaluable_arms_with_names_and_the_range_where_nothing_flips(design):
    curves, tipping, d = _tipping(design)
    t = ch.tipping_table(tipping, design, d)
    assert len(t) == 2  # the non-evaluable row is left out
    first = t.iloc[0]
    assert first["Arm"] == design.experimental_arms()[0].name
    assert first["Tipping point below 0"] == f"-0.50 (OR {np.exp(-0.5):.2f})"
    assert t.iloc[1]["Tipping point above 0"] == "none in [-1, 1]"
    assert first["Fires under MAR"] == "yes"


def test_tipping_chart_labels_the_tipping_point_and_renders(design):
    curves, tipping, _ = _tipping(design)
    chart = ch.tipping_chart(curves, tipping, design, k=2)
    values = next(iter(chart.to_dict()["datasets"].values()))
    tips = [v for v in values if v["is_tip"]]
    assert len(tips) == 1 and tips[0]["delta"] == -0.5 and "tipping point" in tips[0]["label"]
    assert all("hinf_" not in v["Arm"] for v in values)
    assert_renders_to_svg_offline(chart)


def test_missing_and_nuts_check_tables_use_names_not_ids(design):
    arm = design.experimental_arms()[0]
    missing = pd.DataFrame(
        {
            "assigned_trait": [arm.trait],
            "arm": [arm.id],
            "age_group": ["adult"],
            "status": ["missing"],
            "n": [3],
        }
    )
    m = ch.missing_table(missing, design)
    assert m.iloc[0]["Arm"] == arm.name and m.iloc[0]["Missing outcomes"] == 3
    assert m.iloc[0]["Age group"] != "adult"  # the label of proposed/strata.yaml
    check = pd.DataFrame(
        {
            "outcome": ["mortality28"],
            "rule": ["harm"],
            "scenario": ["usual_care"],
            "arm": [arm.id],
            "delta": [-3.0],
            "where": ["nearest the threshold (no decision flips)"],
            "laplace": [0.91],
            "nuts": [0.9],
            "nuts_mcse": [0.007],
            "threshold": [0.95],
        }
    )
    c = ch.nuts_check_table(check, design)
    assert c.iloc[0]["Arm"] == arm.name and c.iloc[0]["Shifted"] == "usual care"
    assert c.iloc[0]["Rule"] == "Harm: Pr(OR < 1) on mortality"
