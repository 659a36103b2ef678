"""Tipping-point analysis of missing outcomes: the pure pieces (``proposed/tipping_point.yaml``).

At the final analysis a randomised patient whose day-28 outcome is missing is imputed from the
posterior predictive distribution of the joint model fitted to the complete outcomes (missing
at random given trait, arm, age stratum and era: the model's cells), and then shifted by
``delta`` on the model's log-odds scale, in the direction of benefit, for the missing patients
of one side only (the experimental arms, or usual care). Each imputed dataset is refitted; the
decision probability is the mean over the imputations; the tipping point is the ``delta``
nearest to 0 at which a decision differs from its decision under missing at random.

Everything here is a pure array function (JAX or NumPy, no validation, fixed shapes); the
boundary that reads an export, fits and refits is :mod:`palette_core.results.tipping`, which
holds the posterior method (the simulator's Laplace approximation).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from palette_core.analysis.models import category_log_probs


def shifts(delta: Any, experimental: Any, shifted: str) -> jnp.ndarray:
    """Per missing patient, the benefit-oriented shift of its linear predictor ``[n_missing]``.

    ``experimental`` is True for a patient on an experimental arm; ``shifted`` is
    ``"experimental"`` (those patients get ``delta``, usual care 0) or ``"control"`` (the
    reverse).
    """
    exp = jnp.asarray(experimental, dtype=bool)
    on = exp if shifted == "experimental" else ~exp
    return jnp.where(on, jnp.asarray(delta, dtype=jnp.float32), 0.0)


def impute_categories(
    eta: jnp.ndarray, cut: jnp.ndarray, shift: jnp.ndarray, sign: int, uniform: jnp.ndarray
) -> jnp.ndarray:
    """Outcome category index of each missing patient ``[n_missing]`` (0 = lowest category).

    ``eta`` ``[n_missing]`` and ``cut`` ``[n_missing, K-1]`` are the model's linear predictor
    and cut-points for the patient's cell under one posterior draw; ``shift`` is oriented to
    benefit, so it enters as ``sign * shift`` (``sign`` of the model: +1 when higher categories
    are better). The category is the inverse CDF at ``uniform`` ``[n_missing]``: with the same
    uniforms, a larger ``shift`` never gives a worse category (common random numbers across
    the grid of ``delta``).
    """
    p = jnp.exp(category_log_probs(eta + sign * shift, cut))
    cdf = jnp.cumsum(p, axis=-1)[..., :-1]
    return jnp.sum(cdf < uniform[..., None], axis=-1)


def add_imputed(counts: jnp.ndarray, cell: jnp.ndarray, category: jnp.ndarray) -> jnp.ndarray:
    """Counts ``[n_cells, K]`` with one patient added per missing patient at ``(cell, category)``."""
    return counts.at[cell, category].add(1.0)


def pooled(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over imputations (axis 0) and its Monte Carlo SE (between-imputation SD / sqrt M).

    The posterior of the completed data averaged over the imputations is the multiple-imputation
    posterior, so its probabilities are the means of the imputations' probabilities.
    """
    p = np.asarray(probabilities, dtype=float)
    m = p.shape[0]
    return p.mean(axis=0), p.std(axis=0, ddof=1) / np.sqrt(m)


def fires(probability: Any, threshold: float, below: bool) -> np.ndarray:
    """Whether a rule fires: ``probability < threshold`` (futility) or ``> threshold``."""
    p = np.asarray(probability, dtype=float)
    return p < threshold if below else p > threshold


def tipping_points(
    deltas: np.ndarray, probability: np.ndarray, threshold: float, below: bool
) -> tuple[float, float]:
    """The negative and the positive ``delta`` nearest to 0 at which the rule's verdict differs
    from its verdict at ``delta = 0``; NaN where it does not change within the grid.

    ``deltas`` ``[n]`` is increasing and contains 0; ``probability`` ``[n]`` the pooled decision
    probability on it. The crossing is interpolated linearly between the two grid points that
    bracket it.
    """
    d = np.asarray(deltas, dtype=float)
    p = np.asarray(probability, dtype=float)
    i0 = int(np.flatnonzero(np.isclose(d, 0.0))[0])
    verdict = fires(p, threshold, below)

    def crossing(i_prev: int, i: int) -> float:
        dp = p[i] - p[i_prev]
        frac = 0.5 if dp == 0 else (threshold - p[i_prev]) / dp
        return float(d[i_prev] + np.clip(frac, 0.0, 1.0) * (d[i] - d[i_prev]))

    lower = upper = float("nan")
    for i in range(i0 - 1, -1, -1):
        if verdict[i] != verdict[i0]:
            lower = crossing(i + 1, i)
            break
    for i in range(i0 + 1, len(d)):
        if verdict[i] != verdict[i0]:
            upper = crossing(i - 1, i)
            break
    return lower, upper


__all__ = [
    "add_imputed",
    "fires",
    "impute_categories",
    "pooled",
    "shifts",
    "tipping_points",
]
