"""The safety monitoring rule: exact posterior probability, strict threshold, minimum size,
validation at the boundary, and the false-alarm simulation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from palette_core.analysis import safety as s
from palette_core.design.loader import Design
from palette_core.design.protocol import load_protocol
from palette_core.errors import DecisionInputError


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
