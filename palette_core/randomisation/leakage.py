"""What the allocation ratios of response-adaptive randomisation reveal about the results.

Under the allocation rule of ``proposed/allocation.yaml`` (see
:mod:`palette_core.randomisation.allocation`), an open experimental arm above the floor gets a
share proportional to ``Pr(best)^damping`` (usual care weighted as the leader). The map can be
inverted: whoever knows the allocation probabilities of a trait in the adaptive phase knows the
ratios ``Pr(best)_i / Pr(best)_j = (share_i / share_j)^(1 / damping)`` of every pair of arms
above the floor, and so ``Pr(best)`` itself of those arms (they sum to one with the floored
arms' share, which is only bounded). An arm at the floor reveals only that its weight is at most
the floor's.

* :func:`implied_pr_best`: the inversion (pure JAX), exact for arms above the floor; an arm at
  the floor is given the largest value the floor allows (an upper bound, marked by
  ``at_floor``).
* :func:`observer_estimates`: an observer who *counts* allocations (``n_seen`` patients of one
  trait in one period) estimates the shares by their proportions and inverts them; the spread
  of its estimate of ``Pr(best)`` over repeated periods (a multinomial simulation) measures the
  leakage of a given number of observed allocations.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from palette_core.randomisation.allocation import AllocationParams, allocation_probabilities


def implied_pr_best(probs: Any, open_mask: Any, params: AllocationParams) -> tuple[Any, Any]:
    """``Pr(best)`` of each open experimental arm implied by a trait's allocation probabilities.

    Parameters
    ----------
    probs
        ``[1 + n_arms]`` allocation probabilities of the adaptive phase (index 0 usual care).
    open_mask
        ``[n_arms]`` bool, the open experimental arms.
    params
        :class:`~palette_core.randomisation.allocation.AllocationParams` (damping, floor).

    Returns
    -------
    ``(pr_best, at_floor)``, both ``[n_arms]``: the implied probabilities (summing to 1 over the
    open arms; closed arms 0) and whether each arm sits at the floor (its value is then the
    largest value consistent with the floor, an upper bound: it is not identified).
    """
    probs = jnp.asarray(probs, dtype=jnp.float32)
    open_mask = jnp.asarray(open_mask, dtype=bool)
    exp = probs[1:]
    at_floor = open_mask & (exp <= params.floor_per_open_arm * (1 + 1e-5))
    above = open_mask & ~at_floor
    weight = jnp.where(above, exp, 0.0) ** (1.0 / params.damping_power)
    # scale: the arms above the floor keep their ratios; the floored arms share what is left,
    # with the largest weight a floored arm could have had (that of the floor) as an upper bound
    floor_w = jnp.where(at_floor, params.floor_per_open_arm ** (1.0 / params.damping_power), 0.0)
    total = jnp.sum(weight) + jnp.sum(floor_w)
    implied = jnp.where(open_mask, (weight + floor_w) / jnp.where(total > 0, total, 1.0), 0.0)
    return implied, at_floor


def observer_estimates(
    pr_best: Any,
    open_mask: Any,
    params: AllocationParams,
    n_seen: int,
    n_periods: int,
    seed: int,
) -> pd.DataFrame:
    """An observer's estimate of ``Pr(best)`` from ``n_seen`` counted allocations.

    The true allocation probabilities follow from ``pr_best`` by the trial's own
    :func:`~palette_core.randomisation.allocation.allocation_probabilities` (adaptive phase);
    ``n_periods`` periods of ``n_seen`` allocations are drawn, and in each the observed
    proportions are inverted by :func:`implied_pr_best`.

    Returns
    -------
    pandas.DataFrame
        One row per open experimental arm (by index): ``arm_index``, ``pr_best`` (true),
        ``allocation`` (its true probability), ``estimate_median``, ``estimate_q05``,
        ``estimate_q95`` and ``pr_identifies_leader`` (share of periods in which the arm with
        the largest estimate is the true leader, the same on every row).
    """
    pr = jnp.asarray(pr_best, dtype=jnp.float32)
    mask = jnp.asarray(open_mask, dtype=bool)
    n_complete = jnp.full(pr.shape[0] + 1, 10**6)  # past burn-in: the adaptive phase
    probs = allocation_probabilities(pr, mask, n_complete, params)
    counts = jax.random.multinomial(
        jax.random.key(seed), n_seen, probs, shape=(n_periods, probs.shape[0])
    )
    shares = counts / n_seen
    est, _ = jax.vmap(lambda s: implied_pr_best(s, mask, params))(shares)
    est = np.asarray(est, dtype=np.float64)
    truth = np.asarray(pr, dtype=np.float64)
    masked = np.where(np.asarray(mask), est, -np.inf)
    leader = float(np.mean(np.argmax(masked, axis=1) == np.argmax(np.where(mask, truth, -1))))
    rows = []
    for i in np.flatnonzero(np.asarray(mask)):
        q05, q50, q95 = np.quantile(est[:, i], [0.05, 0.5, 0.95])
        rows.append(
            {
                "arm_index": int(i),
                "pr_best": float(truth[i]),
                "allocation": float(probs[1 + i]),
                "estimate_median": float(q50),
                "estimate_q05": float(q05),
                "estimate_q95": float(q95),
                "pr_identifies_leader": leader,
            }
        )
    return pd.DataFrame(rows)


__all__ = ["implied_pr_best", "observer_estimates"]
