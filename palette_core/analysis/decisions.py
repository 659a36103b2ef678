"""Decision rules at a look: graduation, futility, harm, cap reached, or continue.

The rules, thresholds, minimum information and cap are those of
``data/design/proposed/decisions.yaml`` (all *proposed*, to be calibrated by simulation); no
number is written in this module. They are applied to the *stored quantities* table of
:func:`palette_core.analysis.quantities.summarise`, so a threshold can be changed (in a copy of the
design, :func:`palette_core.design.loader.modified_design`) without refitting or re-summarising.

The rules (as written in the YAML; every comparison of a probability is strict)
------------------------------------------------------------------------------
With ``n`` the arm's complete primary outcomes and ``N`` its patients allocated:

* **harm**: for any outcome of ``harm.outcomes`` (the primary outcome and 28-day mortality),
  ``Pr(OR < harm.or_reference) > harm.threshold``, evaluable when ``n >= harm.min_complete``.
  Harm on mortality alone fires.
* **graduation**: ``Pr(OR > graduation.or_reference) > graduation.threshold`` on
  ``graduation.outcome``, evaluable when ``n >= graduation.min_complete``.
* **futility**: ``Pr(OR > futility.or_reference) < futility.threshold`` on ``futility.outcome``,
  evaluable when ``n >= futility.min_complete``.
* **cap reached** ("cap reached, inconclusive"): ``N >= cap_per_experimental_arm.value``.
  *Proposed reading*: the cap is the largest number an arm may enrol, so an arm with exactly
  ``cap`` patients allocated has reached it. It is counted in patients allocated (the registry's
  sense of arm size), not complete outcomes.

The estimand of every decision (proposed, ``data/protocol/decision_estimands.yaml``)
---------------------------------------------------------------------------------
Graduation, futility and harm read the **adults' effect**: the effect of the reference age
stratum of the joint model, the rows ``population="all"`` of the quantities table (the
children's effect is the adults' plus a shrunken deviation). The **children's rule**
(:func:`children_harm_arrays`, :func:`children_decisions`) applies the harm rule to the
children's effect without borrowing, with children's complete outcomes; when it fires the arm
closes to children and continues in adults (binding, proposed).

A probability exactly equal to its threshold does not fire. A rule whose minimum information
is not met is *not evaluable* and does not fire; the reason is reported. Minimum information
counts the experimental arm's complete primary outcomes (both outcomes are complete at day 28;
*proposed*: the usual-care count is not part of the rule).

Monte Carlo error (proposed, ``proposed/interim_analysis.yaml``, ``monte_carlo``)
------------------------------------------------------------------------------
Each probability carries its Monte Carlo standard error (the ``mcse_*`` columns of the
quantities table). An evaluable rule whose probability lies within ``mcse_margin`` MCSEs of its
threshold (``|value - threshold| <= mcse_margin * mcse``) is **unresolved**: it neither fires nor
"does not fire". :func:`palette_core.interim.analyse.analyse` first draws more (it adds chains
to the primary fit, up to ``max_extra_runs`` times); what is still unresolved then takes no
decision: an arm's decision is the one the precedence below gives both when every unresolved
rule of the arm fires and when none does; if the two differ, the arm's decision is
``"unresolved"`` (no rule is applied; the arm stays in its state until the next look, and the
DMC is told which rule could not be resolved). An MCSE that is not known (NaN: a hand-made table,
or fewer than 4 draws per chain) leaves the rule to its value alone.

Precedence (proposed) when several rules fire
---------------------------------------------
**harm, then graduation, then futility, then cap reached**, else **continue**. Safety first:
an arm that is both probably harmful on mortality and probably beneficial on the primary
outcome is stopped for harm. Graduation and futility cannot both fire while the design keeps
``futility.or_reference >= graduation.or_reference`` and ``futility.threshold <
graduation.threshold`` (checked by ``load_design``): ``Pr(OR > 1.1) <= Pr(OR > 1)``, so
``Pr(OR > 1.1) < 0.10`` excludes ``Pr(OR > 1) > 0.95``; the order matters only for a design that
broke those checks. A conclusive result at the cap wins over "cap reached, inconclusive".

Two layers
----------
* :func:`decide_arrays`: the pure, vectorised core for the simulator (JAX, ``jax.jit`` and
  ``jax.vmap``-able), returning numeric codes (:data:`DECISION_NAMES`), with the design's
  numbers in a :class:`DecisionParams` pytree from :func:`decision_params`.
* :func:`decide` and :func:`evaluate_rules`: the boundary, on the stored quantities table and
  per-arm information; they validate once, raise
  :class:`~palette_core.errors.DecisionInputError`, compute with the *same* core in NumPy
  float64 (so a stored ``k / n_draws`` equal to a threshold compares equal to it), and return
  readable tables with the rule, the value, the threshold and the reason.

In JAX (float32 unless ``JAX_ENABLE_X64``) a probability ``k / n`` equal to a threshold also
compares equal (both round to the same float32), but two values closer than float32 resolution
(about 6e-8 near 1) cannot be told apart: irrelevant for Monte Carlo probabilities, and why the
boundary uses float64.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd

from palette_core.design.loader import Design
from palette_core.errors import DecisionInputError

#: Decision codes of :func:`decide_arrays`, in order of precedence after "continue".
CONTINUE, HARM, GRADUATION, FUTILITY, CAP_REACHED = 0, 1, 2, 3, 4
#: ``DECISION_NAMES[code]`` is the decision's name, as used by :func:`decide`.
DECISION_NAMES = ("continue", "harm", "graduation", "futility", "cap_reached")
#: The code and name :func:`decide` gives an arm whose decision depends on an unresolved rule
#: (never produced by :func:`decide_arrays`, which has no Monte Carlo error).
UNRESOLVED_CODE, UNRESOLVED_DECISION = -1, "unresolved"
#: Rule statuses reported by :func:`evaluate_rules`.
FIRES, DOES_NOT_FIRE, NOT_EVALUABLE = "fires", "does not fire", "not evaluable"
UNRESOLVED = "unresolved"
#: the column of a quantities table holding the MCSE of each probability column
MCSE_COLUMN = {
    "pr_benefit": "mcse_pr_benefit",
    "pr_or_gt_ref": "mcse_pr_or_gt_ref",
    "pr_harm": "mcse_pr_harm",
}

_FILE = "proposed/decisions.yaml"


class DecisionParams(NamedTuple):
    """The numbers of ``proposed/decisions.yaml``, as a pytree the pure core can trace."""

    graduation_threshold: float
    graduation_min_complete: int
    futility_threshold: float
    futility_min_complete: int
    harm_threshold: float
    harm_min_complete: int
    cap: int


def decision_params(design: Design) -> DecisionParams:
    """Read the thresholds, minimum information and cap from ``design.decisions``."""
    dec = design.decisions
    return DecisionParams(
        graduation_threshold=float(dec.graduation.threshold),
        graduation_min_complete=int(dec.graduation.min_complete),
        futility_threshold=float(dec.futility.threshold),
        futility_min_complete=int(dec.futility.min_complete),
        harm_threshold=float(dec.harm.threshold),
        harm_min_complete=int(dec.harm.min_complete),
        cap=int(dec.cap_per_experimental_arm.value),
    )


# ----------------------------------------------------------------------------- the core
# The four comparisons, shared by the core and the readable rule table so they cannot differ.
def decision_outcomes(design: Design) -> list[str]:
    """The outcomes the decision rules read (primary and mortality), in design order.

    The outcomes of graduation, futility and harm in ``proposed/decisions.yaml``: those a look
    must fit (the interim analysis, the stored example fit, the prior predictive check).
    """
    dec = design.decisions
    used = {dec.graduation.outcome, dec.futility.outcome, *dec.harm.outcomes}
    return [o.id for o in design.outcomes.outcomes if o.id in used]


def _above(value: Any, threshold: Any) -> Any:
    """Harm and graduation fire strictly above their threshold."""
    return value > threshold


def _below(value: Any, threshold: Any) -> Any:
    """Futility fires strictly below its threshold."""
    return value < threshold


def _evaluable(n_complete: Any, min_complete: Any) -> Any:
    """A rule is evaluable from its minimum number of complete outcomes on (``>=``)."""
    return n_complete >= min_complete


def _cap_reached(n_allocated: Any, cap: Any) -> Any:
    """The cap is reached at ``cap`` patients allocated (``>=``; proposed reading)."""
    return n_allocated >= cap


def _fired(xp: Any, pr_benefit, pr_futility, pr_harm, n_complete, n_allocated, p: DecisionParams):
    """Which rules fire (bool arrays ``[..., n_arms]``): harm, graduation, futility, cap."""
    harm = _evaluable(n_complete, p.harm_min_complete) & xp.any(
        _above(pr_harm, p.harm_threshold), axis=-1
    )
    grad = _evaluable(n_complete, p.graduation_min_complete) & _above(
        pr_benefit, p.graduation_threshold
    )
    fut = _evaluable(n_complete, p.futility_min_complete) & _below(
        pr_futility, p.futility_threshold
    )
    cap = _cap_reached(n_allocated, p.cap)
    return harm, grad, fut, cap


def _codes(xp: Any, harm, grad, fut, cap):
    return xp.where(
        harm,
        HARM,
        xp.where(grad, GRADUATION, xp.where(fut, FUTILITY, xp.where(cap, CAP_REACHED, CONTINUE))),
    )


def decide_arrays(
    pr_benefit: Any,
    pr_futility: Any,
    pr_harm: Any,
    n_complete: Any,
    n_allocated: Any,
    params: DecisionParams,
) -> Any:
    """Decision codes per arm (pure JAX; no validation).

    Parameters
    ----------
    pr_benefit
        ``[n_arms]`` Pr(OR > graduation reference) on the graduation outcome.
    pr_futility
        ``[n_arms]`` Pr(OR > futility reference) on the futility outcome.
    pr_harm
        ``[n_arms, n_harm_outcomes]`` Pr(OR < harm reference), one column per outcome of
        ``harm.outcomes`` (any column may fire).
    n_complete, n_allocated
        ``[n_arms]`` complete primary outcomes and patients allocated per arm.
    params
        :func:`decision_params` of the design.

    Returns
    -------
    ``[n_arms]`` int codes: :data:`CONTINUE`, :data:`HARM`, :data:`GRADUATION`,
    :data:`FUTILITY`, :data:`CAP_REACHED` (``DECISION_NAMES[code]``). A NaN probability never
    fires. Leading batch axes broadcast, or ``jax.vmap`` over trials.
    """
    fired = _fired(
        jnp,
        jnp.asarray(pr_benefit),
        jnp.asarray(pr_futility),
        jnp.asarray(pr_harm),
        jnp.asarray(n_complete),
        jnp.asarray(n_allocated),
        params,
    )
    return _codes(jnp, *fired)


def children_harm_arrays(pr_harm_child: Any, n_complete_child: Any, params: DecisionParams) -> Any:
    """The children's decision rule (pure JAX): does the harm rule fire in children?

    The rule of ``data/protocol/decision_estimands.yaml`` (``children_rule``, *proposed*): the
    harm rule of ``proposed/decisions.yaml`` (same threshold and minimum information, the
    minimum counted in children's complete outcomes) applied to the children's effect without
    borrowing. When it fires the arm closes to children and continues in adults; arm-level
    decisions (:func:`decide_arrays`) read the adults' effect and are not changed by it.

    Parameters
    ----------
    pr_harm_child
        ``[n_arms, n_harm_outcomes]`` Pr(OR < harm reference) of the children's effect.
    n_complete_child
        ``[n_arms]`` complete primary outcomes of children per arm.
    params
        :func:`decision_params` of the design.

    Returns
    -------
    ``[n_arms]`` bool: close the arm to children. A NaN probability never fires.
    """
    return _evaluable(jnp.asarray(n_complete_child), params.harm_min_complete) & jnp.any(
        _above(jnp.asarray(pr_harm_child), params.harm_threshold), axis=-1
    )


# ----------------------------------------------------------------------------- boundary
def _information(information: Any, arms: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``n_complete`` and ``n_allocated`` per arm, validated, in the order of ``arms``."""
    where = "argument 'information'"
    if isinstance(information, pd.DataFrame):
        missing = {"arm", "n_complete", "n_allocated"} - set(information.columns)
        if missing:
            raise DecisionInputError(where, f"missing column(s) {sorted(missing)}")
        if information["arm"].duplicated().any():
            dup = sorted(information.loc[information["arm"].duplicated(), "arm"])
            raise DecisionInputError(where, f"arm(s) {dup} appear more than once")
        info = {
            r.arm: {"n_complete": r.n_complete, "n_allocated": r.n_allocated}
            for r in information.itertuples(index=False)
        }
    elif isinstance(information, Mapping):
        info = dict(information)
    else:
        raise DecisionInputError(
            where,
            "expected a DataFrame (arm, n_complete, n_allocated) or a mapping "
            f"arm -> {{n_complete, n_allocated}}, got {type(information).__name__}",
        )
    n_c, n_a = [], []
    for arm in arms:
        if arm not in info:
            raise DecisionInputError(f"{where}, arm {arm!r}", "no information given for this arm")
        entry = info[arm]
        values = []
        for name in ("n_complete", "n_allocated"):
            v = entry.get(name) if isinstance(entry, Mapping) else None
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, Integral) or v < 0:
                raise DecisionInputError(
                    f"{where}, arm {arm!r}, field {name!r}",
                    f"expected a whole number >= 0, got {v!r}",
                )
            values.append(int(v))
        if values[0] > values[1]:
            raise DecisionInputError(
                f"{where}, arm {arm!r}",
                f"{values[0]} complete outcomes but only {values[1]} patients allocated",
            )
        n_c.append(values[0])
        n_a.append(values[1])
    return np.array(n_c), np.array(n_a)


def _fmt(value: float, threshold: float) -> str:
    """A probability for a reason text: 4 significant digits, unless that hides the boundary."""
    text = f"{value:.4g}"
    return repr(value) if float(text) == threshold and value != threshold else text


def _prob(table: pd.DataFrame, arm: str, outcome: str, column: str) -> tuple[float, float]:
    """The probability and its MCSE (NaN if unknown) of one arm and outcome."""
    rows = table[(table["arm"] == arm) & (table["outcome"] == outcome)]
    where = f"quantities table, arm {arm!r}, outcome {outcome!r}"
    if len(rows) == 0:
        raise DecisionInputError(where, "no row: the rules need it (summarise this outcome)")
    if len(rows) > 1:
        raise DecisionInputError(where, f"{len(rows)} rows; expected one")
    v = rows[column].iloc[0]
    if not isinstance(v, (float, int, np.floating, np.integer)) or not 0.0 <= float(v) <= 1.0:
        raise DecisionInputError(f"{where}, column {column!r}", f"not a probability: {v!r}")
    e = rows[MCSE_COLUMN[column]].iloc[0]
    if not isinstance(e, (float, int, np.floating, np.integer)) or float(e) < 0:
        raise DecisionInputError(
            f"{where}, column {MCSE_COLUMN[column]!r}", f"not a standard error: {e!r}"
        )
    return float(v), float(e)


def unresolved(value: float, threshold: float, mcse: float, margin: float) -> bool:
    """A probability within ``margin`` Monte Carlo standard errors of its threshold (a NaN
    MCSE, unknown, never makes a rule unresolved)."""
    return not math.isnan(mcse) and abs(value - threshold) <= margin * mcse


def _select(quantities: pd.DataFrame, design: Design, population: str, analysis: str):
    if not isinstance(quantities, pd.DataFrame):
        raise DecisionInputError(
            "argument 'quantities'",
            f"expected the table of quantities.summarise, got {type(quantities).__name__}",
        )
    need = {
        "analysis",
        "population",
        "outcome",
        "arm",
        "pr_benefit",
        "pr_or_gt_ref",
        "pr_harm",
        *MCSE_COLUMN.values(),
        "ref_benefit",
        "ref_futility",
        "ref_harm",
    }
    missing = need - set(quantities.columns)
    if missing:
        raise DecisionInputError("quantities table", f"missing column(s) {sorted(missing)}")
    table = quantities[
        (quantities["population"] == population) & (quantities["analysis"] == analysis)
    ]
    if table.empty:
        raise DecisionInputError(
            "quantities table", f"no rows for analysis {analysis!r}, population {population!r}"
        )
    dec = design.decisions
    for column, rule, ref in (
        ("ref_benefit", "graduation", dec.graduation.or_reference),
        ("ref_futility", "futility", dec.futility.or_reference),
        ("ref_harm", "harm", dec.harm.or_reference),
    ):
        stored = set(table[column].astype(float))
        if any(not math.isclose(v, ref, rel_tol=1e-12) for v in stored):
            raise DecisionInputError(
                f"quantities table, column {column!r}",
                f"computed at OR reference {sorted(stored)}, but {_FILE} {rule}.or_reference is "
                f"{ref}: summarise the draws again (thresholds can change without it, "
                "references cannot)",
            )
    return table, list(dict.fromkeys(table["arm"]))


def evaluate_rules(
    quantities: pd.DataFrame,
    information: Any,
    design: Design,
    *,
    population: str = "all",
    analysis: str = "primary",
) -> pd.DataFrame:
    """Every rule for every arm: one row per arm and rule (harm once per harm outcome).

    Columns: ``arm``, ``rule``, ``outcome``, ``quantity`` (e.g. ``"Pr(OR > 1.1)"``),
    ``value``, ``mcse`` (its Monte Carlo standard error; NaN for the cap or when unknown),
    ``comparison`` (``">"``, ``"<"``, ``">="``), ``threshold``, ``min_complete``,
    ``n_complete``, ``n_allocated``, ``status`` (:data:`FIRES`, :data:`DOES_NOT_FIRE`,
    :data:`NOT_EVALUABLE`, :data:`UNRESOLVED`) and ``reason``. Arguments as for :func:`decide`.
    """
    table, arms = _select(quantities, design, population, analysis)
    n_complete, n_allocated = _information(information, arms)
    dec = design.decisions
    p = decision_params(design)
    margin = float(design.interim_analysis.monte_carlo.mcse_margin)
    rules = [
        ("harm", o, "pr_harm", "<", dec.harm.or_reference, p.harm_threshold, p.harm_min_complete)
        for o in dec.harm.outcomes
    ] + [
        (
            "graduation",
            dec.graduation.outcome,
            "pr_benefit",
            ">",
            dec.graduation.or_reference,
            p.graduation_threshold,
            p.graduation_min_complete,
        ),
        (
            "futility",
            dec.futility.outcome,
            "pr_or_gt_ref",
            ">",
            dec.futility.or_reference,
            p.futility_threshold,
            p.futility_min_complete,
        ),
    ]
    rows: list[dict[str, Any]] = []
    for i, arm in enumerate(arms):
        nc, na = int(n_complete[i]), int(n_allocated[i])
        for rule, outcome, column, sign, ref, threshold, min_complete in rules:
            value, mcse = _prob(table, arm, outcome, column)
            quantity = f"Pr(OR {sign} {ref:g})"
            cmp = "<" if rule == "futility" else ">"
            if not _evaluable(nc, min_complete):
                status = NOT_EVALUABLE
                reason = f"not evaluable: {nc} complete < {min_complete} needed"
            elif unresolved(value, threshold, mcse, margin):
                status = UNRESOLVED
                reason = (
                    f"unresolved: {quantity} on {outcome} = {_fmt(value, threshold)} (MCSE "
                    f"{mcse:.2g}) lies within {margin:g} MCSE of {threshold:g}"
                )
            else:
                fires = bool((_below if cmp == "<" else _above)(value, threshold))
                status = FIRES if fires else DOES_NOT_FIRE
                neg = "" if fires else "not "
                reason = (
                    f"{quantity} on {outcome} = {_fmt(value, threshold)} {neg}{cmp} {threshold:g}"
                )
            rows.append(
                {
                    "arm": arm,
                    "rule": rule,
                    "outcome": outcome,
                    "quantity": quantity,
                    "value": value,
                    "mcse": mcse,
                    "comparison": cmp,
                    "threshold": threshold,
                    "min_complete": min_complete,
                    "n_complete": nc,
                    "n_allocated": na,
                    "status": status,
                    "reason": reason,
                }
            )
        fires = bool(_cap_reached(na, p.cap))
        rows.append(
            {
                "arm": arm,
                "rule": "cap_reached",
                "outcome": None,
                "quantity": "patients allocated",
                "value": float(na),
                "mcse": math.nan,
                "comparison": ">=",
                "threshold": float(p.cap),
                "min_complete": 0,
                "n_complete": nc,
                "n_allocated": na,
                "status": FIRES if fires else DOES_NOT_FIRE,
                "reason": f"{na} allocated {'>=' if fires else 'below'} cap {p.cap}",
            }
        )
    return pd.DataFrame(rows)


def decide(
    quantities: pd.DataFrame,
    information: Any,
    design: Design,
    *,
    population: str = "all",
    analysis: str = "primary",
) -> pd.DataFrame:
    """The decision for every arm of a stored quantities table.

    Parameters
    ----------
    quantities
        The table of :func:`palette_core.analysis.quantities.summarise` (possibly several analyses and
        populations concatenated; ``population`` and ``analysis`` pick the rows used).
    information
        Per arm: complete primary outcomes and patients allocated, as a DataFrame with columns
        ``arm``, ``n_complete``, ``n_allocated`` or a mapping ``arm -> {"n_complete": ...,
        "n_allocated": ...}``. Every arm of the table needs an entry.
    design
        Thresholds, minimum information and cap come from ``design.decisions`` only.

    Returns
    -------
    One row per arm (in table order): ``arm``, ``decision`` (``"harm"``, ``"graduation"``,
    ``"futility"``, ``"cap_reached"``, ``"continue"``, or ``"unresolved"`` when the decision
    depends on a rule within the Monte Carlo margin of its threshold), ``code``
    (:data:`DECISION_NAMES`; :data:`UNRESOLVED_CODE` for "unresolved"), ``rule``, ``outcome``,
    ``quantity``, ``value``, ``threshold`` (of the rule that decided; empty for "continue" and
    "unresolved"), ``reason`` (readable), ``not_evaluable`` (the rules below their minimum
    information, "; "-separated, empty if none), ``unresolved`` (the unresolved rules, e.g.
    ``"futility on osfd28"``, empty if none), ``n_complete``, ``n_allocated``. When harm fires
    on several outcomes, the row reports the largest Pr(OR < reference).
    """
    rules = evaluate_rules(
        quantities, information, design, population=population, analysis=analysis
    )
    arms = list(dict.fromkeys(rules["arm"]))
    by_arm = {a: rules[rules["arm"] == a] for a in arms}

    def states(rule: str, accept: tuple[str, ...]) -> np.ndarray:
        return np.array([bool(by_arm[a].loc[by_arm[a]["rule"] == rule, "status"]
                              .isin(accept).any()) for a in arms])  # fmt: skip

    n_complete = np.array([int(by_arm[a]["n_complete"].iloc[0]) for a in arms])
    n_allocated = np.array([int(by_arm[a]["n_allocated"].iloc[0]) for a in arms])
    cap = _cap_reached(n_allocated, decision_params(design).cap)
    # the same precedence as decide_arrays (its _codes), once with every unresolved rule firing
    # and once with none; a rule's status uses the same comparisons as the core (_fired)
    low = _codes(np, *(states(r, (FIRES,)) for r in ("harm", "graduation", "futility")), cap)
    high = _codes(
        np, *(states(r, (FIRES, UNRESOLVED)) for r in ("harm", "graduation", "futility")), cap
    )
    out: list[dict[str, Any]] = []
    for i, arm in enumerate(arms):
        r = by_arm[arm]
        not_eval = "; ".join(
            f"{x.rule} on {x.outcome}: {x.n_complete} complete < {x.min_complete}"
            for x in r[r["status"] == NOT_EVALUABLE].itertuples()
        )
        pending = r[r["status"] == UNRESOLVED]
        row: dict[str, Any] = {
            "arm": arm,
            "decision": "",
            "code": int(low[i]),
            "rule": None,
            "outcome": None,
            "quantity": None,
            "value": math.nan,
            "threshold": math.nan,
            "reason": "",
            "not_evaluable": not_eval,
            "unresolved": "; ".join(f"{x.rule} on {x.outcome}" for x in pending.itertuples()),
            "n_complete": int(n_complete[i]),
            "n_allocated": int(n_allocated[i]),
        }
        if low[i] != high[i]:
            row.update(
                decision=UNRESOLVED_DECISION,
                code=UNRESOLVED_CODE,
                reason="unresolved, no decision: " + "; ".join(pending["reason"]),
            )
            out.append(row)
            continue
        name = DECISION_NAMES[int(low[i])]
        row["decision"] = name
        if name == "continue":
            row["reason"] = "continue: no rule fires (" + "; ".join(r["reason"]) + ")"
        else:
            fired = r[(r["rule"] == name) & (r["status"] == FIRES)]
            if name == "harm":
                fired = fired.sort_values("value", ascending=False, kind="stable")
            f = fired.iloc[0]
            label = {
                "harm": "stop for harm",
                "graduation": "graduate",
                "futility": "stop for futility",
                "cap_reached": "cap reached, inconclusive",
            }[name]
            row.update(
                rule=name,
                outcome=f["outcome"],
                quantity=f["quantity"],
                value=float(f["value"]),
                threshold=float(f["threshold"]),
                reason=f"{label}: {f['reason']}",
            )
        out.append(row)
    return pd.DataFrame(out)


#: the children's decision when the children's rule fires, and otherwise
CLOSE_TO_CHILDREN, CHILDREN_CONTINUE = "close to children", "continue in children"


def children_decisions(child_rules: pd.DataFrame, *, binding: bool | None) -> pd.DataFrame:
    """The children's decision of every arm, from its harm rows evaluated in children.

    Parameters
    ----------
    child_rules
        The ``harm`` rows of :func:`evaluate_rules` on the children's effect with children's
        information (the interim's ``child_harm`` table): ``arm``, ``outcome``, ``status``,
        ``reason``.
    binding
        ``children_rule.binding`` of ``data/protocol/decision_estimands.yaml``: when true a
        firing rule closes the arm to children; when false it is reported as advice; ``None``
        (no protocol file states it) the decision is given with the reason that its
        consequence is not stated.

    Returns
    -------
    One row per arm: ``arm``, ``decision`` (:data:`CLOSE_TO_CHILDREN` or
    :data:`CHILDREN_CONTINUE`; ``"unresolved"`` when a rule is unresolved and none fires),
    ``binding`` and ``reason``.
    """
    need = {"arm", "outcome", "status", "reason"}
    if not isinstance(child_rules, pd.DataFrame) or need - set(child_rules.columns):
        raise DecisionInputError(
            "argument 'child_rules'", f"expected a table with columns {sorted(need)}"
        )
    rows = []
    for arm, g in child_rules.groupby("arm", sort=False):
        fired = g[g["status"] == FIRES]
        if len(fired):
            decision = CLOSE_TO_CHILDREN
            reason = "; ".join(
                f"harm in children on {r.outcome}: {r.reason}" for r in fired.itertuples()
            )
        elif (g["status"] == UNRESOLVED).any():
            decision, reason = UNRESOLVED_DECISION, "; ".join(g["reason"])
        else:
            decision, reason = CHILDREN_CONTINUE, "; ".join(g["reason"])
        if decision == CLOSE_TO_CHILDREN and binding is None:
            reason = "consequence not stated (no protocol file gives the rule's binding): " + reason
        elif decision == CLOSE_TO_CHILDREN and not binding:
            reason = "advisory: " + reason
        rows.append({"arm": arm, "decision": decision, "binding": binding, "reason": reason})
    return pd.DataFrame(rows, columns=["arm", "decision", "binding", "reason"])


__all__ = [
    "CAP_REACHED",
    "CHILDREN_CONTINUE",
    "CLOSE_TO_CHILDREN",
    "CONTINUE",
    "DECISION_NAMES",
    "DOES_NOT_FIRE",
    "DecisionParams",
    "FIRES",
    "FUTILITY",
    "GRADUATION",
    "HARM",
    "NOT_EVALUABLE",
    "UNRESOLVED",
    "UNRESOLVED_CODE",
    "UNRESOLVED_DECISION",
    "children_decisions",
    "children_harm_arrays",
    "decide",
    "decide_arrays",
    "decision_outcomes",
    "decision_params",
    "evaluate_rules",
    "unresolved",
]
