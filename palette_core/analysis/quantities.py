"""Posterior decision quantities: probabilities and odds-ratio summaries from posterior draws.

"Analyse once, decide many" (bhmbasket): a fit's draws are reduced once, by :func:`summarise`,
to a tidy table of *stored quantities*; the decision rules (:mod:`palette_core.analysis.decisions`) read
that table, so thresholds can be changed without refitting.

Orientation
-----------
Every draw array handled here holds **log odds ratios of an experimental arm vs usual care in
the same trait, oriented so that log OR > 0 (OR > 1) means benefit** (``proposed/outcomes.yaml``,
``odds_ratio_orientation.benefit_is: greater_than_one``). A model's natural log odds ratio is
that of a *higher value of the outcome*: for a binary outcome, of the event coded 1 (death for
``mortality28``); for an ordinal outcome in the cumulative-logistic (proportional-odds) model,
of a higher category (more organ-support-free days for ``osfd28``). :func:`orient` turns such
draws into benefit-oriented draws: it flips the sign when the outcome's
``benefit_direction`` is ``"lower"`` (an OR of death of 0.5 becomes an OR of benefit of 2).
Callers orient before summarising; :func:`summarise` trusts its input to be oriented.

Two layers
----------
* **Pure array functions** (:func:`pr_or_greater`, :func:`pr_or_less`, :func:`pr_best`,
  :func:`or_summary`): JAX, no validation, no Python control flow on values, so they can be
  ``jax.jit``-ed and ``jax.vmap``-ed over simulated trials. ``draws`` is ``[n_draws, n_arms]``
  and every result is ``[n_arms]``. Comparisons are strict (``>``, ``<``), as the rules in
  ``proposed/decisions.yaml`` are written.
* **Boundary functions** (:func:`orient`, :func:`summarise`): take the
  :class:`~palette_core.design.loader.Design`, validate once and raise
  :class:`~palette_core.errors.DecisionInputError` naming what is at fault. :func:`summarise`
  computes in NumPy float64 so that a stored probability is exactly ``k / n_draws`` (a fraction
  exactly equal to a threshold compares equal to it); the pure functions compute the same
  formulas in JAX (float32 unless ``JAX_ENABLE_X64``), and tests check that the two agree.

Examples
--------
>>> import numpy as np
>>> from palette_core.analysis.quantities import pr_or_greater, or_summary
>>> draws = np.log(np.array([[0.5, 2.0], [1.5, 3.0], [2.0, 0.9], [3.0, 1.2]]))
>>> [float(x) for x in pr_or_greater(draws, 1.0)]
[0.75, 0.75]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd

from palette_core.design.arms import Arm
from palette_core.design.loader import Design
from palette_core.design.outcomes import Outcome
from palette_core.errors import DecisionInputError
from palette_core.randomisation import allocation as _allocation

#: Coverage of the equal-tailed posterior interval of the odds ratio: 95 %, the convention of
#: clinical trial reports. It is a reporting convention, not a decision parameter (the rules
#: read posterior probabilities), so it is not read from ``data/design``.
INTERVAL_LEVEL = 0.95

#: Columns of the stored quantities table written by :func:`summarise`, in order.
QUANTITY_COLUMNS = (
    "analysis",
    "population",
    "outcome",
    "trait",
    "arm",
    "n_draws",
    "pr_benefit",
    "pr_or_gt_ref",
    "pr_harm",
    "pr_best",
    "or_median",
    "or_low",
    "or_high",
    "ref_benefit",
    "ref_futility",
    "ref_harm",
)


class OrSummary(NamedTuple):
    """Posterior median and equal-tailed interval of the odds ratio, each ``[n_arms]``."""

    median: Any
    low: Any
    high: Any


# ----------------------------------------------------------------------------- shared formulas
# Written once against an array namespace (``jnp`` for the pure functions, ``np`` for the
# float64 boundary), so the JAX and the NumPy results are the same formula.
def _pr_greater(xp: Any, draws: Any, or_reference: Any) -> Any:
    return xp.mean(draws > xp.log(or_reference), axis=0)


def _pr_less(xp: Any, draws: Any, or_reference: Any) -> Any:
    return xp.mean(draws < xp.log(or_reference), axis=0)


def _or_summary(xp: Any, draws: Any, level: float) -> OrSummary:
    tail = (1.0 - level) / 2.0
    q = xp.quantile(draws, xp.asarray([0.5, tail, 1.0 - tail]), axis=0)
    q = xp.exp(q)
    return OrSummary(median=q[0], low=q[1], high=q[2])


# ----------------------------------------------------------------------------- pure functions
def pr_or_greater(draws: Any, or_reference: Any) -> Any:
    """Pr(OR > ``or_reference``): the share of draws with log OR strictly above log(reference).

    Parameters
    ----------
    draws
        ``[n_draws, n_arms]`` benefit-oriented log odds ratios (see :func:`orient`).
    or_reference
        The reference odds ratio (> 0), e.g. 1.0 for any benefit, 1.1 for the futility rule.

    Returns
    -------
    ``[n_arms]`` probabilities.
    """
    return _pr_greater(jnp, jnp.asarray(draws), or_reference)


def pr_or_less(draws: Any, or_reference: Any) -> Any:
    """Pr(OR < ``or_reference``): the share of draws with log OR strictly below log(reference)."""
    return _pr_less(jnp, jnp.asarray(draws), or_reference)


#: Pr(arm is best among the open arms of its trait), ``pr_best(draws, open_mask)``: the same
#: function that drives response-adaptive allocation (:func:`palette_core.randomisation.allocation.pr_best`),
#: re-used so that allocation and reporting cannot disagree. ``draws`` are benefit-oriented log
#: ORs of one trait's arms ``[n_draws, n_arms]``; closed arms get 0; ties go to the arm that
#: comes first.
pr_best = _allocation.pr_best


def or_summary(draws: Any, level: float = INTERVAL_LEVEL) -> OrSummary:
    """Posterior median and equal-tailed ``level`` interval of the odds ratio.

    Quantiles are taken of the log OR draws (linear interpolation between order statistics)
    and exponentiated; since ``exp`` is increasing this is the quantile of the OR itself, up to
    the interpolation between two neighbouring draws.

    Returns
    -------
    :class:`OrSummary` of three ``[n_arms]`` arrays: ``median``, ``low``, ``high``.
    """
    return _or_summary(jnp, jnp.asarray(draws), level)


# ----------------------------------------------------------------------------- boundary
def orient(log_or_draws: Any, outcome: Outcome) -> Any:
    """Turn a model's log odds ratios of a *higher outcome value* into benefit-oriented ones.

    ``outcome`` is the design's entry (``design.outcome("mortality28")``). If its
    ``benefit_direction`` is ``"lower"`` (mortality, bleeding, infection) the sign is flipped,
    so that OR > 1 means benefit for every outcome; if ``"higher"`` (organ-support-free days)
    the draws are returned unchanged. Works on NumPy and JAX arrays (and under ``jax.jit``:
    the direction is static design data).
    """
    if not isinstance(outcome, Outcome):
        raise DecisionInputError(
            "argument 'outcome'",
            f"expected an outcome of the design (design.outcome(id)), got {type(outcome).__name__}",
        )
    if outcome.benefit_direction == "lower":
        return -log_or_draws
    return log_or_draws


def _validated_draws(
    draws_by_outcome: Mapping[str, Any], n_arms: int, design: Design
) -> dict[str, np.ndarray]:
    if not isinstance(draws_by_outcome, Mapping) or not draws_by_outcome:
        raise DecisionInputError(
            "argument 'draws_by_outcome'",
            "expected a non-empty mapping outcome id -> [n_draws, n_arms] draws",
        )
    known = [o.id for o in design.outcomes.outcomes]
    out: dict[str, np.ndarray] = {}
    for oid in known:  # design order, so the table's order does not depend on the caller's
        if oid not in draws_by_outcome:
            continue
        where = f"argument 'draws_by_outcome', outcome {oid!r}"
        try:
            arr = np.asarray(draws_by_outcome[oid], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DecisionInputError(where, f"not a numeric array: {exc}") from None
        if arr.ndim != 2 or arr.shape[1] != n_arms:
            raise DecisionInputError(
                where, f"expected shape [n_draws, {n_arms}] (one column per arm), got {arr.shape}"
            )
        if arr.shape[0] < 1:
            raise DecisionInputError(where, "no draws")
        if not np.all(np.isfinite(arr)):
            raise DecisionInputError(where, "draws must be finite (found NaN or infinity)")
        out[oid] = arr
    unknown = [k for k in draws_by_outcome if k not in known]
    if unknown:
        raise DecisionInputError(
            "argument 'draws_by_outcome'",
            f"outcome(s) {unknown} are not in proposed/outcomes.yaml ({', '.join(known)})",
        )
    return out


def _validated_arms(arm_ids: Sequence[str], design: Design) -> list[Arm]:
    if isinstance(arm_ids, str) or not isinstance(arm_ids, Sequence) or not arm_ids:
        raise DecisionInputError("argument 'arm_ids'", "expected a non-empty sequence of arm ids")
    experimental = {a.id: a for a in design.experimental_arms()}
    arms = []
    for arm_id in arm_ids:
        if arm_id not in experimental:
            what = (
                "usual care (no decision quantities)"
                if arm_id in {a.id for a in design.arms}
                else "not in arms.yaml"
            )
            raise DecisionInputError(f"argument 'arm_ids', arm {arm_id!r}", what)
        arms.append(experimental[arm_id])
    dup = sorted({a for a in arm_ids if list(arm_ids).count(a) > 1})
    if dup:
        raise DecisionInputError("argument 'arm_ids'", f"arm(s) {dup} appear more than once")
    return arms


def summarise(
    draws_by_outcome: Mapping[str, Any],
    arm_ids: Sequence[str],
    design: Design,
    *,
    open_arms: Collection[str] | None = None,
    population: str = "all",
    analysis: str = "primary",
) -> pd.DataFrame:
    """The stored quantities table: one row per outcome and arm.

    Parameters
    ----------
    draws_by_outcome
        ``outcome id -> [n_draws, n_arms]`` benefit-oriented log odds ratios vs usual care in
        the arm's trait (apply :func:`orient` first), columns in the order of ``arm_ids``.
        Outcomes may have different numbers of draws.
    arm_ids
        Experimental arms of the design (one trait or several), one per column.
    open_arms
        Arms open to randomisation, for Pr(best); default: all of ``arm_ids``.
    population
        ``"all"``, or an age group of ``proposed/strata.yaml`` for a stratum-specific effect
        (the children-only effect without borrowing is ``population="child"`` of a
        no-borrowing fit).
    analysis
        A label for the fit the draws come from (``"primary"``, ``"no_borrowing"``, ...).

    Returns
    -------
    A DataFrame with the columns :data:`QUANTITY_COLUMNS`:

    ``pr_benefit``
        Pr(OR > ``ref_benefit``), the graduation reference of ``proposed/decisions.yaml``
        (1.0: Pr(OR > 1)).
    ``pr_or_gt_ref``
        Pr(OR > ``ref_futility``), the futility reference (1.1).
    ``pr_harm``
        Pr(OR < ``ref_harm``), the harm reference (1.0: Pr(OR < 1)).
    ``pr_best``
        Pr(arm has the largest OR among the open arms of ``arm_ids`` in its trait); NaN for an
        arm that is not open.
    ``or_median``, ``or_low``, ``or_high``
        Posterior median and equal-tailed :data:`INTERVAL_LEVEL` interval of the OR.

    The references used are stored with the probabilities, so :func:`palette_core.analysis.decisions.decide`
    can refuse a table computed at another reference than the design's. Thresholds, minimum
    information and the cap are *not* used here: they may change without recomputing this table.
    """
    arms = _validated_arms(arm_ids, design)
    draws = _validated_draws(draws_by_outcome, len(arms), design)
    ids = [a.id for a in arms]
    if open_arms is None:
        open_set = set(ids)
    else:
        if isinstance(open_arms, str):
            raise DecisionInputError("argument 'open_arms'", "expected a collection of arm ids")
        open_set = set(open_arms)
        stray = sorted(open_set - set(ids))
        if stray:
            raise DecisionInputError(
                "argument 'open_arms'", f"arm(s) {stray} are not among arm_ids"
            )
    allowed = ("all", *design.age_group_ids)
    if population not in allowed:
        raise DecisionInputError(
            "argument 'population'", f"{population!r} is not one of {', '.join(allowed)}"
        )
    if not isinstance(analysis, str) or not analysis:
        raise DecisionInputError("argument 'analysis'", "expected a non-empty label")

    dec = design.decisions
    refs = {
        "ref_benefit": float(dec.graduation.or_reference),
        "ref_futility": float(dec.futility.or_reference),
        "ref_harm": float(dec.harm.or_reference),
    }
    traits = [a.trait for a in arms]
    open_mask = np.array([i in open_set for i in ids])
    rows: list[dict[str, Any]] = []
    for oid, arr in draws.items():
        pr_benefit = _pr_greater(np, arr, refs["ref_benefit"])
        pr_fut = _pr_greater(np, arr, refs["ref_futility"])
        pr_harm = _pr_less(np, arr, refs["ref_harm"])
        summ = _or_summary(np, arr, INTERVAL_LEVEL)
        best = np.full(len(ids), np.nan)
        for trait in dict.fromkeys(traits):  # Pr(best) within each trait
            cols = np.array([t == trait for t in traits])
            mask = open_mask[cols]
            if mask.any():
                pb = np.asarray(pr_best(arr[:, cols], mask), dtype=np.float64)
                best[np.flatnonzero(cols)] = np.where(mask, pb, np.nan)
        for j, arm in enumerate(arms):
            rows.append(
                {
                    "analysis": analysis,
                    "population": population,
                    "outcome": oid,
                    "trait": arm.trait,
                    "arm": arm.id,
                    "n_draws": int(arr.shape[0]),
                    "pr_benefit": float(pr_benefit[j]),
                    "pr_or_gt_ref": float(pr_fut[j]),
                    "pr_harm": float(pr_harm[j]),
                    "pr_best": float(best[j]),
                    "or_median": float(summ.median[j]),
                    "or_low": float(summ.low[j]),
                    "or_high": float(summ.high[j]),
                    **refs,
                }
            )
    return pd.DataFrame(rows, columns=list(QUANTITY_COLUMNS))


__all__ = [
    "INTERVAL_LEVEL",
    "QUANTITY_COLUMNS",
    "OrSummary",
    "orient",
    "or_summary",
    "pr_best",
    "pr_or_greater",
    "pr_or_less",
    "summarise",
]
