"""Calibration of the graduation threshold: the running maximum of Pr(OR > 1) and the rates it
gives, on hand-made look records whose answer is known (no simulation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from palette_core.simulate import calibration as cal
from palette_core.simulate import engine
from palette_core.simulate.platform import context

SMALL = {"n_patients": 400, "pool_size": 3000, "n_draws": 200, "laplace_rule": [2, 2, 2]}
RUN = "null_graduation_disabled"


@pytest.fixture(scope="module")
def scenarios(design):
    return engine.load_scenarios(design.data_root / "scenarios" / "calibration.yaml", SMALL)


def _looks(scenarios) -> pd.DataFrame:
    """Two trials of three looks. Trial 0: baricitinib crosses 0.99 before its minimum
    information, then reaches 0.9305; anakinra reaches 0.96 at the look where futility stops
    it (graduation would have come first), then 0.99 when already closed; G-CSF reaches 0.91,
    then 0.97 at the look where harm stops it (harm comes first). Tocilizumab is suspended and
    Octaplas LG planned: neither randomises. Trial 1: nothing happens."""
    arms = list(context(scenarios.settings_json).spec.arms)
    rows = []
    for trial in (0, 1):
        for look in range(3):
            row = {"scenario": RUN, "trial": trial, "look": look, "day": 100.0 * (look + 1)}
            for a in arms:
                state = {"hinf_tocilizumab": "suspended", "hfib_octaplas": "planned"}.get(a, "open")
                row |= {f"pr_benefit[{a}]": 0.5, f"n_complete_arm[{a}]": 0,
                        f"decision[{a}]": "continue", f"state[{a}]": state}  # fmt: skip
            if trial == 0:
                n, pr = [30, 50, 70][look], [0.99, 0.90, 0.9305][look]
                row |= {"n_complete_arm[hinf_baricitinib]": n, "pr_benefit[hinf_baricitinib]": pr}
                row |= {"n_complete_arm[hinf_anakinra]": 50 + 20 * look,
                        "pr_benefit[hinf_anakinra]": [0.96, 0.99, 0.99][look],
                        "decision[hinf_anakinra]": "futility" if look == 0 else "continue",
                        "state[hinf_anakinra]": "closed"}  # fmt: skip
                row |= {"n_complete_arm[hypo_gcsf]": 45 + 5 * look,
                        "pr_benefit[hypo_gcsf]": [0.91, 0.97, 0.99][look],
                        "decision[hypo_gcsf]": "harm" if look == 1 else "continue",
                        "state[hypo_gcsf]": "open" if look == 0 else "closed"}  # fmt: skip
                row["pr_benefit[hfib_octaplas]"] = 0.999
            rows.append(row)
    return pd.DataFrame(rows)


def test_running_maximum_counts_only_looks_where_graduation_could_stop_the_arm(scenarios):
    m = cal.max_pr_benefit(_looks(scenarios), scenarios, RUN).set_index(["trial", "arm"])
    assert m.loc[(0, "hinf_baricitinib"), "max_pr_benefit"] == pytest.approx(0.9305)
    assert m.loc[(0, "hinf_anakinra"), "max_pr_benefit"] == pytest.approx(0.96)
    assert m.loc[(0, "hinf_anakinra"), "stop"] == "futility"
    assert m.loc[(0, "hypo_gcsf"), "max_pr_benefit"] == pytest.approx(0.91)
    assert m.loc[(0, "hypo_gcsf"), "stop"] == "harm"
    assert not m.loc[(0, "hfib_octaplas"), "randomising"]
    assert not m.loc[(0, "hinf_tocilizumab"), "randomising"]
    assert np.isneginf(m.loc[(1, "hinf_baricitinib"), "max_pr_benefit"])
    assert m.loc[(0, "hinf_baricitinib"), "evaluable"] and not m.loc[(1, "hypo_ifng"), "evaluable"]


def test_curve_and_thresholds_follow_from_the_maxima(scenarios):
    m = cal.max_pr_benefit(_looks(scenarios), scenarios, RUN)
    per_arm, per_trait = cal.false_graduation_curve(m, np.round(np.arange(0.9, 0.9995, 0.001), 3))
    assert "hinf_tocilizumab" not in set(per_arm["arm"])  # suspended: not an arm that can graduate
    assert "hfib_octaplas" not in set(per_arm["arm"])
    hinf = per_trait[per_trait["trait"] == "hyperinflammation"].set_index("threshold")
    assert hinf.loc[0.92, "n_arms"] == 3
    assert hinf.loc[0.92, "rate"] == pytest.approx(1 / 3)  # (1/2 + 1/2 + 0) / 3
    assert hinf.loc[0.92, "familywise"] == pytest.approx(0.5)
    assert hinf.loc[0.92, "max_arm_rate"] == pytest.approx(0.5)
    assert hinf.loc[0.95, "rate"] == pytest.approx(1 / 6)
    assert hinf.loc[0.96, "rate"] == 0.0  # strictly above the threshold
    row = per_arm[(per_arm["arm"] == "hinf_anakinra") & np.isclose(per_arm["threshold"], 0.92)]
    assert row["mcse"].iloc[0] == pytest.approx(np.sqrt(0.25 / 2))
    chosen = cal.calibrate(per_trait, target=0.3).set_index("trait")
    assert chosen.loc["hyperinflammation", "per_trait_threshold"] == pytest.approx(0.931)
    assert chosen.loc["hyperinflammation", "rate_at_per_trait"] <= 0.3
    assert chosen.loc["hypoinflammation", "at_grid_minimum"]
    assert (chosen["common_threshold"] == chosen["per_trait_threshold"].max()).all()


def test_a_threshold_set_for_the_confirmation_run_reaches_its_parameters(scenarios):
    changed = cal.with_graduation_threshold(scenarios, "null_design_thresholds", 0.987)
    params = changed.scenario("null_design_thresholds").params["decision"]
    assert float(params["graduation_threshold"]) == pytest.approx(0.987)
    disabled = changed.scenario(RUN).params["decision"]["graduation_threshold"]
    assert float(disabled) == 1.0  # the other scenario is untouched
