"""The safety monitoring rule: exact posterior probability, strict threshold, minimum size,
validation at the boundary, and the false-alarm simulation."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from palette_core.analysis import safety as s
from palette_core.design.loader import Design
from palette_core.design.protocol import load_protocol, load_safety_monitoring
from palette_core.errors import DecisionInputError, DesignSchemaError


@pytest.fixture(scope="module")
def protocol(design: Design):
    return load_protocol(design)


def _quadrature(ea, na, ec, nc, a=1, b=1):
    arm = stats.beta(a + ea, b + na - ea)
    ctl = stats.beta(a + ec, b + nc - ec)
    return integrate.quad(lambda x: ctl.pdf(x) * arm.sf(x), 0, 1, limit=200)[0]


@pytest.mark.parametrize(
    "counts", [(5, 50, 5, 50), (10, 50, 2, 50), (0, 20, 3, 25), (30, 150, 12, 140)]
)
def test_the_closed_form_matches_numerical_integration(protocol, counts):
    p = s.safety_params(protocol)
    got = float(s.pr_arm_riskier(*counts, p, 200))
    assert got == pytest.approx(_quadrature(*counts), abs=2e-5)


def test_equal_counts_give_one_half(protocol):
    p = s.safety_params(protocol)
    assert float(s.pr_arm_riskier(7, 80, 7, 80, p, 100)) == pytest.approx(0.5, abs=1e-5)


def test_the_rule_needs_its_minimum_number_of_patients(protocol):
    p = s.safety_params(protocol)
    n = p.min_patients_arm
    assert not bool(s.safety_signal_arrays(n - 1, n - 1, 0, n - 1, p, n + 2))
    assert bool(s.safety_signal_arrays(n, n, 0, n, p, n + 2))


def test_a_probability_equal_to_the_threshold_does_not_signal(protocol):
    p = s.safety_params(protocol)
    pr = float(s.pr_arm_riskier(6, 40, 1, 40, p, 50))
    at = p._replace(threshold=pr)
    below = p._replace(threshold=np.nextafter(np.float32(pr), np.float32(0)).item())
    assert not bool(s.safety_signal_arrays(6, 40, 1, 40, at, 50))
    assert bool(s.safety_signal_arrays(6, 40, 1, 40, below, 50))


def test_the_pure_core_jits_and_vmaps(protocol):
    p = s.safety_params(protocol)
    ea = jnp.array([0.0, 5.0, 20.0])
    f = jax.jit(jax.vmap(lambda e: s.safety_signal_arrays(e, 40.0, 2.0, 40.0, p, 50)))
    assert f(ea).tolist() == [False, False, True]


def test_monitor_names_the_row_and_column_of_a_bad_count(protocol):
    counts = pd.DataFrame(
        {"arm": ["a", "b"], "outcome": ["isth_major_bleeding"] * 2, "events_arm": [1, 3.5],
         "n_arm": [30, 30], "events_control": [0, 0], "n_control": [30, 30]}
    )  # fmt: skip
    with pytest.raises(DecisionInputError, match=r"row 1 .*'b'.*events_arm"):
        s.monitor(counts, protocol)


def test_monitor_refuses_more_events_than_patients(protocol):
    counts = pd.DataFrame(
        {"arm": ["a"], "outcome": ["x"], "events_arm": [31], "n_arm": [30],
         "events_control": [0], "n_control": [30]}
    )  # fmt: skip
    with pytest.raises(DecisionInputError, match="more events than patients"):
        s.monitor(counts, protocol)


def test_monitor_signals_a_clear_excess_only(protocol):
    counts = pd.DataFrame(
        {"arm": ["a", "b"], "outcome": ["isth_major_bleeding"] * 2, "events_arm": [15, 2],
         "n_arm": [60, 60], "events_control": [2, 2], "n_control": [60, 60]}
    )  # fmt: skip
    out = s.monitor(counts, protocol)
    assert out["signal"].tolist() == [True, False]
    assert out["probability"].iloc[1] == pytest.approx(0.5, abs=1e-4)


def test_the_signal_table_agrees_with_the_rule(protocol):
    p = s.safety_params(protocol)
    table = s.signal_table(40, p)
    for i, j in [(0, 0), (10, 1), (5, 4), (12, 3)]:
        assert table[i, j] == bool(s.safety_signal_arrays(i, 40, j, 40, p, 50))


def test_false_alarms_are_rarer_than_detections(protocol):
    small = protocol.safety.model_copy(
        update={"simulation": protocol.safety.simulation.model_copy(update={"n_trials": 2000})}
    )
    rates = s.false_alarm_rates(type(protocol)(**{**protocol.__dict__, "safety": small}))
    wide = rates.pivot_table(index=["outcome", "assumption"], columns="scenario",
                             values="pr_any_signal")  # fmt: skip
    assert (wide["alternative"] > wide["null"]).all()
    assert (rates["pr_any_signal"].between(0, 1)).all()


def _safety_table(design: Design, events: dict[str, dict[str, int]] | None = None, n: int = 40):
    """A ``safety`` table as ``palette analyse`` writes it: every arm, ``n`` complete patients,
    no event unless ``events`` (arm -> outcome -> events) says so."""
    events = events or {}
    rows = []
    for a in design.arms:
        row = {"trait": a.trait, "arm": a.id, "role": a.role, "n_complete": n}
        for o in design.outcomes.outcomes:
            if o.role == "safety":
                row[o.id] = events.get(a.id, {}).get(o.id, 0)
        rows.append(row)
    return pd.DataFrame(rows)


def test_safety_counts_pair_every_monitored_arm_with_its_usual_care(design):
    pairs = s.monitored_arms(design)
    safety_outcomes = {o.id for o in design.outcomes.outcomes if o.role == "safety"}
    assert pairs and {o for o, _ in pairs} == safety_outcomes
    counts = s.safety_counts(design, _safety_table(design))
    assert list(zip(counts["outcome"], counts["arm"], strict=True)) == pairs
    for r in counts.itertuples():
        control = design.arm(r.control)
        assert control.role == "control" and control.trait == design.arm(r.arm).trait == r.trait


def test_safety_counts_refuse_a_missing_arm_or_column(design):
    table = _safety_table(design)
    outcome, arm = s.monitored_arms(design)[0]
    control = next(a.id for a in design.arms_of(design.arm(arm).trait) if a.role == "control")
    with pytest.raises(DecisionInputError, match=rf"arm '{control}'.*no row"):
        s.safety_counts(design, table[table["arm"] != control])
    with pytest.raises(DecisionInputError, match=rf"missing column.*{outcome}"):
        s.safety_counts(design, table.drop(columns=outcome))
    with pytest.raises(DecisionInputError, match="more than once"):
        s.safety_counts(design, pd.concat([table, table.iloc[[0]]]))


@pytest.mark.parametrize("bad", [float("nan"), "3", None, -1, 2.5, True])
def test_monitor_refuses_what_is_not_a_count(protocol, bad):
    counts = pd.DataFrame(
        {"arm": ["a"], "outcome": ["isth_major_bleeding"], "events_arm": [bad], "n_arm": [30],
         "events_control": [0], "n_control": [30]}
    )  # fmt: skip
    with pytest.raises(DecisionInputError, match=r"row 0 .*'a'.*events_arm.*not a count"):
        s.monitor(counts, protocol)


def test_safety_signals_apply_the_rule_of_the_safety_file(design, protocol):
    outcome, arm = s.monitored_arms(design)[0]
    table = _safety_table(design, {arm: {outcome: 15}}, n=60)
    rule = load_safety_monitoring(design)
    out = s.safety_signals(design, table, rule)
    assert out.loc[out["arm"] == arm, "signal"].tolist() == [True]
    assert not out.loc[out["arm"] != arm, "signal"].any()
    assert (out["threshold"] == protocol.safety.rule.threshold).all()
    assert (out["min_patients_arm"] == protocol.safety.rule.min_patients_arm).all()
    assert out["events_arm"].dtype == np.int64
    # the safety file alone gives what every protocol file gives
    pd.testing.assert_frame_equal(out, s.safety_signals(design, table, protocol))
    few = s.safety_signals(design, _safety_table(design, {arm: {outcome: 15}}, n=15), rule)
    assert not few["evaluable"].any() and not few["signal"].any()


def test_a_missing_safety_file_is_a_typed_error(design, tmp_path):
    with pytest.raises(DesignSchemaError, match="safety_monitoring.yaml"):
        load_safety_monitoring(dataclasses.replace(design, data_root=tmp_path))
