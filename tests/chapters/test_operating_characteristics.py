"""The chapter "Simulation plan and operating characteristics": its tables and numbers agree with
the stored results, and the design's threshold is the calibrated one."""

from __future__ import annotations

import numpy as np
import pytest

from palette_core.chapters import operating_characteristics as ch
from palette_core.results.store import load_result


@pytest.fixture(scope="module")
def stored(design):
    return load_result("calibration", design=design), load_result(
        "operating_characteristics", design=design
    )


def test_the_design_threshold_is_the_calibrated_common_threshold(stored, design):
    cal, oc = stored
    t = cal.tables["thresholds"]
    assert t["common_threshold"].iloc[0] == pytest.approx(design.decisions.graduation.threshold)
    assert oc.manifest["graduation_threshold"] == pytest.approx(
        design.decisions.graduation.threshold
    )
    assert design.decisions.calibration.result == "derived/calibration"
    target = design.decisions.calibration.max_false_graduation_per_arm
    assert (t["rate_at_common"] <= target).all()


def test_tables_name_arms_and_traits_in_words_and_carry_errors(stored, design):
    cal, oc = stored
    th = ch.thresholds_table(cal, design)
    assert list(th["Trait"]) == [t.short_name or t.name for t in design.traits]
    arms = ch.arms_table(oc, design, "global_null")
    assert not arms["Arm"].str.contains("_").any()  # human names, never ids
    assert arms["Graduation"].str.contains("±").all()
    assert "Tocilizumab" not in set(arms["Arm"])  # suspended: never randomised
    sizes = ch.sample_size_table(oc, design)
    assert len(sizes) == len(design.traits)


def test_oc_curve_probabilities_add_up_per_truth(stored):
    _, oc = stored
    curve = ch.oc_curve_table(oc)
    total = curve.groupby(["trait", "true_or"])["p"].sum()
    np.testing.assert_allclose(total, 1.0, atol=1e-9)  # every randomising arm ends somewhere
    assert set(curve["true_or"]) >= {0.6, 1.0, 1.5}


def test_key_numbers_quote_the_stored_results(stored, design):
    cal, oc = stored
    n = ch.key_numbers(cal, oc, design)
    assert n["oc_trials"] == f"{oc.manifest['n_trials_per_scenario']:,}"
    assert n["common_threshold"] == f"{design.decisions.graduation.threshold:.3f}"
    assert n["ss_vs_cap"] in {"more than", "no more than"}
    assert " ± " in n["worst_rate"]


def test_pm_and_the_scenario_table(stored, design):
    assert ch.pm(0.1234, 0.0123) == "0.123 ± 0.012"
    assert ch.pm(float("nan"), 0.1) == "-"
    table = ch.scenarios_table(design)
    _, oc = stored
    assert list(table["Scenario"]) == list(oc.tables["platform"]["scenario"])
    assert table["Rationale"].str.len().gt(20).all()
