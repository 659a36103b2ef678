"""Safety monitoring of the safety outcomes by arm: the rule, and its false-alarm rate.

The rule (``data/protocol/safety_monitoring.yaml``, *proposed*): at a look, a monitored arm is
compared with usual care of its trait on the proportion of patients with the safety event, with
independent Beta priors (whole-number prior counts); a **safety signal** when ``Pr(p_arm >
p_control) > threshold`` and the arm has at least ``min_patients_arm`` patients. A probability
equal to the threshold does not signal (as in :mod:`palette_core.analysis.decisions`).

Two layers, as for the decision rules:

* :func:`pr_arm_riskier` and :func:`safety_signal_arrays`: pure JAX array functions
  (``jax.jit`` and ``jax.vmap``-able, no validation), the probability computed exactly as a
  finite sum of beta functions;
* :func:`safety_params` and :func:`monitor` at the boundary (validated event counts in a table,
  one row per arm and outcome); :func:`safety_counts` pairs each monitored arm with usual care
  of its trait from an interim analysis's ``safety`` table, and :func:`safety_signals` applies
  the rule to all of them (what ``palette analyse`` writes as ``safety_signals.csv``, for the
  closed report); and :func:`false_alarm_rates`: a small beta-binomial simulation
  of the rule alone (one arm and its usual care accruing 1:1, the rule applied after every block
  of patients; the rule's verdict for every possible count at a look is tabulated once with the
  pure function, :func:`signal_table`), *not* a simulation of the platform.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.scipy.special import betaln

from palette_core.design.loader import Design
from palette_core.design.protocol import Protocol, SafetyMonitoringFile
from palette_core.errors import DecisionInputError

#: The rule's source: every protocol file, or the safety monitoring file alone
#: (:func:`~palette_core.design.protocol.load_safety_monitoring`).
RuleSource = Protocol | SafetyMonitoringFile


class SafetyParams(NamedTuple):
    """The rule's numbers (``safety_monitoring.yaml`` ``rule``), a pytree for the pure core."""

    prior_events: float
    prior_non_events: float
    threshold: float
    min_patients_arm: int


def _safety_file(source: RuleSource) -> SafetyMonitoringFile:
    return source.safety if isinstance(source, Protocol) else source


def safety_params(source: RuleSource) -> SafetyParams:
    """Read the rule's numbers from the validated protocol files (or the safety file alone)."""
    r = _safety_file(source).rule
    return SafetyParams(
        prior_events=float(r.prior_events),
        prior_non_events=float(r.prior_non_events),
        threshold=float(r.threshold),
        min_patients_arm=int(r.min_patients_arm),
    )


def pr_arm_riskier(
    events_arm: Any,
    n_arm: Any,
    events_control: Any,
    n_control: Any,
    params: SafetyParams,
    max_terms: int,
) -> Any:
    """``Pr(p_arm > p_control)`` under independent Beta posteriors (pure JAX, exact).

    With ``p_arm ~ Beta(a1, b1)``, ``p_control ~ Beta(a0, b0)`` and ``a1`` a whole number, the
    probability is the finite sum ``sum_{i < a1} B(a0 + i, b0 + b1) / ((b1 + i) B(1 + i, b1)
    B(a0, b0))`` (computed with log-beta functions); the prior's event count is a whole number
    so that ``a1`` is one.

    Parameters
    ----------
    events_arm, n_arm, events_control, n_control
        Event counts and patients of the arm and of usual care (arrays broadcast together).
    params
        :class:`SafetyParams`.
    max_terms
        A static bound on ``a1`` (the arm's events plus the prior's), at least the largest
        value in the batch: the number of terms summed (masked beyond each ``a1``).

    Returns
    -------
    The posterior probability, same shape as the broadcast inputs.
    """
    f = jnp.float32
    a1 = params.prior_events + jnp.asarray(events_arm, dtype=f)
    b1 = params.prior_non_events + jnp.asarray(n_arm, dtype=f) - jnp.asarray(events_arm, dtype=f)
    a0 = params.prior_events + jnp.asarray(events_control, dtype=f)
    b0 = (
        params.prior_non_events
        + jnp.asarray(n_control, dtype=f)
        - jnp.asarray(events_control, dtype=f)
    )
    a1, b1, a0, b0 = (x[..., None] for x in jnp.broadcast_arrays(a1, b1, a0, b0))
    i = jnp.arange(max_terms, dtype=f)
    log_term = betaln(a0 + i, b0 + b1) - jnp.log(b1 + i) - betaln(1.0 + i, b1) - betaln(a0, b0)
    total = jnp.sum(jnp.where(i < a1, jnp.exp(log_term), 0.0), axis=-1)
    return jnp.clip(total, 0.0, 1.0)


def safety_signal_arrays(
    events_arm: Any,
    n_arm: Any,
    events_control: Any,
    n_control: Any,
    params: SafetyParams,
    max_terms: int,
) -> Any:
    """Does the rule signal (bool, pure JAX)? Evaluable from ``min_patients_arm`` on;
    ``max_terms`` as for :func:`pr_arm_riskier`."""
    pr = pr_arm_riskier(events_arm, n_arm, events_control, n_control, params, max_terms)
    return (jnp.asarray(n_arm) >= params.min_patients_arm) & (pr > params.threshold)


_COUNT_COLUMNS = ("events_arm", "n_arm", "events_control", "n_control")


def _is_count(v: Any) -> bool:
    """A whole number >= 0 (not a flag, not missing, not text)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    return bool(np.isfinite(v)) and float(v).is_integer() and v >= 0


def monitor(counts: pd.DataFrame, protocol: RuleSource) -> pd.DataFrame:
    """The safety rule for every row of ``counts`` (one row per monitored arm and outcome).

    Parameters
    ----------
    counts
        Columns ``arm``, ``outcome``, ``events_arm``, ``n_arm``, ``events_control``,
        ``n_control`` (whole numbers, events no more than patients).
    protocol
        The validated protocol files, or the safety monitoring file alone.

    Returns
    -------
    ``counts`` (counts as integers) with ``probability`` (Pr of excess risk), ``threshold``,
    ``min_patients_arm``, ``evaluable`` and ``signal`` columns.

    Raises
    ------
    DecisionInputError
        Naming the row and column of the first invalid count (missing, text, negative, not
        whole, or more events than patients).
    """
    missing = {"arm", "outcome", *_COUNT_COLUMNS} - set(counts.columns)
    if missing:
        raise DecisionInputError("safety counts", f"missing column(s) {sorted(missing)}")
    for i, row in enumerate(counts.itertuples(index=False)):
        where = f"safety counts, row {i} (arm {row.arm!r}, outcome {row.outcome!r})"
        for c in _COUNT_COLUMNS:
            v = getattr(row, c)
            if not _is_count(v):
                raise DecisionInputError(f"{where}, column {c!r}", f"not a count: {v!r}")
        if row.events_arm > row.n_arm or row.events_control > row.n_control:
            raise DecisionInputError(where, "more events than patients")
    p = safety_params(protocol)
    counts = counts.astype(dict.fromkeys(_COUNT_COLUMNS, np.int64))
    args = [np.asarray(counts[c], dtype=np.float64) for c in _COUNT_COLUMNS]
    terms = int(args[0].max(initial=0)) + int(p.prior_events)
    prob = np.asarray(pr_arm_riskier(*args, p, terms), dtype=np.float64)
    evaluable = args[1] >= p.min_patients_arm
    return counts.assign(
        probability=prob,
        threshold=p.threshold,
        min_patients_arm=p.min_patients_arm,
        evaluable=evaluable,
        signal=evaluable & (prob > p.threshold),
    )


def monitored_arms(design: Design) -> list[tuple[str, str]]:
    """``(outcome, arm)`` for every safety outcome of ``outcomes.yaml`` and every experimental
    arm it monitors (an arm with a substance the outcome applies to), in the design's order."""
    pairs = []
    for o in design.outcomes.outcomes:
        if o.role != "safety":
            continue
        for a in design.experimental_arms():
            if {c.substance for c in a.components} & set(o.applies_to_substances):
                pairs.append((o.id, a.id))
    return pairs


def safety_counts(design: Design, safety: pd.DataFrame) -> pd.DataFrame:
    """Event counts of every monitored arm and its trait's usual care, from an interim
    analysis's ``safety`` table (one row per arm: ``arm``, ``n_complete`` and one column of
    event counts per safety outcome, among complete patients), for :func:`monitor`.

    Every monitored arm gets a row (:func:`monitored_arms`): an arm, or its usual care, missing
    from ``safety`` is an error, never a row left out. Counts are passed on as they are;
    :func:`monitor` checks them.

    Returns
    -------
    pandas.DataFrame
        Columns ``trait``, ``arm``, ``control``, ``outcome``, ``events_arm``, ``n_arm``,
        ``events_control``, ``n_control``.

    Raises
    ------
    DecisionInputError
        A column or an arm's row missing from ``safety``, or an arm listed twice.
    """
    pairs = monitored_arms(design)
    need = {"arm", "n_complete", *{o for o, _ in pairs}}
    missing = need - set(safety.columns)
    if missing:
        raise DecisionInputError("safety table", f"missing column(s) {sorted(missing)}")
    repeated = sorted(set(safety.loc[safety["arm"].duplicated(), "arm"]))
    if repeated:
        raise DecisionInputError("safety table", f"arm(s) listed more than once: {repeated}")
    control = {a.trait: a.id for a in design.arms if a.role == "control"}
    by_arm = safety.set_index("arm")
    rows = []
    for outcome, arm_id in pairs:
        trait = design.arm(arm_id).trait
        for who in (arm_id, control[trait]):
            if who not in by_arm.index:
                raise DecisionInputError(
                    f"safety table, arm {who!r}",
                    f"no row (needed to monitor {arm_id!r} for {outcome!r})",
                )
        arm, uc = by_arm.loc[arm_id], by_arm.loc[control[trait]]
        rows.append(
            {
                "trait": trait,
                "arm": arm_id,
                "control": control[trait],
                "outcome": outcome,
                "events_arm": arm[outcome],
                "n_arm": arm["n_complete"],
                "events_control": uc[outcome],
                "n_control": uc["n_complete"],
            }
        )
    columns = ["trait", "arm", "control", "outcome", *_COUNT_COLUMNS]
    return pd.DataFrame(rows, columns=columns)


def safety_signals(design: Design, safety: pd.DataFrame, rule: RuleSource) -> pd.DataFrame:
    """The safety rule applied to every monitored arm and outcome of an interim analysis:
    :func:`monitor` of :func:`safety_counts` (``palette analyse`` writes it as
    ``safety_signals.csv``; by-arm data, for the closed report only)."""
    return monitor(safety_counts(design, safety), rule)


def signal_table(n: int, p: SafetyParams) -> np.ndarray:
    """``[n + 1, n + 1]`` bool: does the rule signal with ``i`` events among ``n`` patients in
    the arm and ``j`` among ``n`` with usual care (the rule at one look of a 1:1 accrual)."""
    e = jnp.arange(n + 1, dtype=jnp.float32)
    ea, ec = jnp.meshgrid(e, e, indexing="ij")
    terms = n + int(p.prior_events)
    signal = jax.jit(safety_signal_arrays, static_argnums=5)
    return np.asarray(signal(ea, float(n), ec, float(n), p, terms))


def _any_signal(
    rng: np.random.Generator, risk_arm: float, risk_control: float, n_trials: int, looks, tables
) -> float:
    """Share of simulated arms with a signal at any look (``looks``: cumulative sizes per arm;
    ``tables``: :func:`signal_table` of each look)."""
    block = np.diff(np.concatenate([[0], looks]))
    ea = np.cumsum(rng.binomial(block, risk_arm, size=(n_trials, len(looks))), axis=1)
    ec = np.cumsum(rng.binomial(block, risk_control, size=(n_trials, len(looks))), axis=1)
    fired = np.zeros(n_trials, dtype=bool)
    for j, table in enumerate(tables):
        fired |= table[ea[:, j], ec[:, j]]
    return float(fired.mean())


def false_alarm_rates(protocol: RuleSource) -> pd.DataFrame:
    """False-alarm and detection rates of the safety rule, by a beta-binomial simulation.

    For each safety outcome and each assumed usual-care risk (the value and both ends of its
    range, ``assumed_control_risk``): ``n_trials`` arms and their usual care accrue 1:1 up to
    ``patients_per_arm``, the rule is applied after every ``look_every_patients`` patients per
    arm; the false-alarm rate is the share of arms with at least one signal when the arm's
    risk equals usual care's, the detection rate when it is ``relative_risk_alternative``
    times it (capped at 1). Monte Carlo standard errors are given.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome``, ``control_risk``, ``assumption`` (value, low, high), ``scenario``
        (``"null"``, ``"alternative"``), ``arm_risk``, ``pr_any_signal``, ``mcse``,
        ``n_looks``.
    """
    safety = _safety_file(protocol)
    sim = safety.simulation
    p = safety_params(protocol)
    looks = np.arange(sim.look_every_patients, sim.patients_per_arm + 1, sim.look_every_patients)
    looks = looks[looks >= p.min_patients_arm]
    tables = [signal_table(int(n), p) for n in looks]
    rng = np.random.default_rng(sim.seed)
    rows = []
    for risk in safety.assumed_control_risk:
        for label, rc in (("value", risk.value), ("low", risk.range[0]), ("high", risk.range[1])):
            for scenario, ra in (
                ("null", rc),
                ("alternative", min(1.0, rc * sim.relative_risk_alternative)),
            ):
                rate = _any_signal(rng, ra, rc, sim.n_trials, looks, tables)
                rows.append(
                    {
                        "outcome": risk.outcome,
                        "control_risk": rc,
                        "assumption": label,
                        "scenario": scenario,
                        "arm_risk": ra,
                        "pr_any_signal": rate,
                        "mcse": float(np.sqrt(rate * (1 - rate) / sim.n_trials)),
                        "n_looks": len(looks),
                    }
                )
    return pd.DataFrame(rows)


__all__ = [
    "RuleSource",
    "signal_table",
    "SafetyParams",
    "false_alarm_rates",
    "monitor",
    "monitored_arms",
    "pr_arm_riskier",
    "safety_counts",
    "safety_params",
    "safety_signal_arrays",
    "safety_signals",
]
