"""The stored simulation results (calibration, operating characteristics) at the small size:
what they hold, their Monte Carlo errors, the size setting and when they go stale."""

from __future__ import annotations

import json

import numpy as np
import pytest

from palette_core.cli import main
from palette_core.design.loader import modified_design
from palette_core.errors import ModelDataError
from palette_core.results import store as results

TRIALS = 4  # the --trials setting, above the small size's default


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """``palette results rebuild --small --only calibration,operating_characteristics``."""
    out = tmp_path_factory.mktemp("derived")
    code = main(
        ["results", "rebuild", "--small", "--only", ",".join(results.SIMULATIONS),
         "--trials", str(TRIALS), "--out", str(out), "--seed", "5"]
    )  # fmt: skip
    return out, code


def test_both_results_are_written_with_their_size_and_inputs(small, design):
    out, code = small
    assert code == 0
    for name in results.SIMULATIONS:
        manifest = json.loads((out / name / "manifest.json").read_text())
        assert manifest["size"] == "small" and manifest["seed"] == 5
        assert manifest["settings"]["n_patients"] == 400
        assert manifest["scenario_sha256"]
        for table in manifest["tables"]:
            assert (out / name / table).is_file()
    cal = results.load_result("calibration", out, design=design)
    assert cal.manifest["n_trials_per_run"] == TRIALS
    oc = results.load_result("operating_characteristics", out, design=design)
    assert oc.manifest["n_trials_per_scenario"] == TRIALS
    assert set(oc.tables["arms"]["n_trials"]) == {TRIALS}


def test_calibration_confirms_the_common_threshold_it_chose(small, design):
    cal = results.load_result("calibration", small[0], design=design)
    t = cal.tables["thresholds"]
    common = t["common_threshold"].iloc[0]
    assert (t["common_threshold"] == t["per_trait_threshold"].max()).all()
    assert cal.manifest["confirmation_threshold"] == pytest.approx(common)
    assert (t["rate_at_per_trait"] <= cal.manifest["target_false_graduation_per_arm"]).all()
    curve = cal.tables["curve_traits"]
    for _, block in curve.groupby("trait"):  # a higher threshold never graduates more
        assert np.all(np.diff(block.sort_values("threshold")["rate"].to_numpy()) <= 1e-12)
    assert t["confirmed_n_trials"].eq(TRIALS).all()


def test_operating_characteristics_carry_monte_carlo_errors(small, design):
    oc = results.load_result("operating_characteristics", small[0], design=design)
    arms = oc.tables["arms"]
    for d in ("graduation", "futility", "harm", "cap_reached", "false_graduation"):
        p = arms[f"pr_{d}"]
        np.testing.assert_allclose(arms[f"mcse_{d}"], np.sqrt(p * (1 - p) / arms["n_trials"]))
    effective = arms["true_or"] > 1
    assert arms.loc[effective, "power"].notna().all() and arms.loc[~effective, "power"].isna().all()
    names = set(oc.tables["platform"]["scenario"])
    assert {"global_null", "fixed_allocation_one_effective", "new_arm_joins"} <= names
    alloc = oc.tables["allocation"]
    sums = alloc.groupby(["scenario", "trait", "look"])["share"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)  # mean probabilities of a live trait
    s = oc.tables["sample_size"]
    assert list(s["trait"]) == [t.id for t in design.traits]
    assert (s["n_per_arm_needed"] > 0).all() and s["share"].sum() == pytest.approx(1.0)


def test_the_calibration_does_not_go_stale_when_its_threshold_is_written(small, design):
    def threshold(d):
        d["graduation"]["threshold"] = 0.987

    def futility(d):
        d["futility"]["threshold"] = 0.2

    with modified_design(design.root, "proposed/decisions.yaml", threshold) as changed:
        assert not results.load_result("calibration", small[0], design=changed).stale
        stale = results.load_result("operating_characteristics", small[0], design=changed,
                                    allow_stale=True)  # fmt: skip
        assert stale.stale  # the operating characteristics depend on every threshold
    with modified_design(design.root, "proposed/decisions.yaml", futility) as changed:
        assert results.load_result("calibration", small[0], design=changed, allow_stale=True).stale


def test_a_bad_number_of_trials_is_refused(design, tmp_path):
    with pytest.raises(ModelDataError, match="trials"):
        results.rebuild(design, tmp_path, size="small", only=["calibration"], trials=0)
