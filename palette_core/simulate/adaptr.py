"""adaptr's binomial trial without a common control, as a trial program of the engine.

adaptr (Granholm, Jensen, Lange, Kaas-Hansen; R package, https://github.com/INCEPTdk/adaptr,
doi:10.21105/joss.04284) is the open simulator of adaptive trials of the INCEPT programme. This
module runs its ``setup_trial_binom()`` design without a common control on the engine of
:mod:`palette_core.simulate.engine`, so that the engine's plumbing (keys, scan over looks,
masking, chunks, workers) is proven by reproducing adaptr's published operating
characteristics (:func:`adaptr_crosscheck`). The rules, each with the adaptr source it follows:

Outcomes and randomisation (``R/run_trial.R``, ``run_trial()``; ``R/get_ys_and_draws.R``)
    At look ``l`` the patients ``randomised_at_looks[l-1] + 1 .. randomised_at_looks[l]`` are
    allocated independently (``sample(arms, n, prob, replace = TRUE)``: simple randomisation,
    no blocks, no exact counts) with the allocation probabilities in force among the active
    arms, and each outcome is Bernoulli(``true_ys[arm]``) (``get_ys_binom()``). The analysis
    uses the first ``data_looks[l]`` patients (outcome data available); without follow-up lag
    ``randomised_at_looks = data_looks``.
Posterior (``get_draws_binom()``)
    Each arm: Beta(1 + events, 1 + patients - events), a flat Beta(1, 1) prior; adaptr draws
    ``n_draws`` = 5000 values (``setup_trial_binom()`` default) and computes every probability
    from the draws (``R/prob_funs.R``).
Probability of being best (``prob_best()``)
    Lower is better (``highest_is_best = FALSE``, an undesirable outcome): Pr(arm i has the
    lowest event rate among the active arms).
Inferiority (``run_trial()``, no common control)
    While an active arm has Pr(best) < ``inferiority``: drop every such arm, recompute
    Pr(best) among the remaining arms, repeat.
Superiority
    If the largest Pr(best) > ``superiority``: that arm (the first, on ties) is superior and the
    trial stops.
Equivalence (``prob_all_equi()``)
    Otherwise, if Pr(max - min of the active arms' rates < ``equivalence_diff``) >
    ``equivalence_prob``: every active arm is declared equivalent and the trial stops.
Allocation (``reallocate_probs()``)
    Otherwise the new allocation probabilities of the active arms are Pr(best) raised to
    ``soften_power`` and rescaled; an arm below its ``min_probs`` gets its minimum and the
    remaining probability is shared among the other active arms the same way, repeatedly, until
    no arm falls below its minimum (minimum probabilities are not rescaled when arms are
    dropped, adaptr's default). Dropped arms get no patients.
End (``run_trial()``)
    At the last look an undecided trial stops with status ``max``. A final analysis uses every
    patient randomised (``*_all`` estimates).
Estimates (``summarise_dist()``, ``robust = TRUE``)
    The posterior median of each arm, at the last adaptive analysis that included it (``est``)
    and in the final analysis (``est_all``).
Selection and metrics (``R/extract_results.R``, ``extract_results()``; ``R/check_performance.R``,
``check_performance()``, ``calculate_idp()``)
    The selected arm is the superior arm; otherwise, with ``select_strategy = "best"``, the
    remaining arm (not inferior; after equivalence, the arms declared equivalent at the last
    look; at the maximum, the active arms) with the highest Pr(best) at the last analysis, and
    with ``"control if available"`` (the default; no common control here) or ``"none"`` no arm.
    ``sq_err`` uses ``est`` without follow-up lag and ``est_all`` with it (``final_ests = NULL``).
    Metrics: sample size, events and event rate (``sum_ys_all``) summarised by mean, SD (n - 1),
    quantiles (R's type 7); Pr(conclusive), Pr(superiority), Pr(equivalence), Pr(futility),
    Pr(max); selection probabilities; RMSE and median absolute error of the selected arm's
    estimate; ideal design percentage (Viele et al. 2020, doi:10.1177/1740774519877836):
    ``100 - 100 (E[true y of the selected arm] - min y) / (max y - min y)`` over trials with a
    selected arm.

Posterior probabilities: computed, not drawn (``settings.posterior = "quadrature"``, default)
    adaptr estimates Pr(best) and Pr(all equivalent) from 5000 posterior draws per arm and
    analysis. Here they are integrals over one grid per analysis: Pr(i best) =
    ``int f_i(x) prod_{j != i} (1 - F_j(x)) dx`` and Pr(all equivalent) = ``sum_i int f_i(x)
    prod_{j != i} (F_j(x + d) - F_j(x)) dx``, with the Beta densities on ``grid_points`` nodes
    spanning ``grid_width_sd`` posterior SDs around every active arm, the CDFs by the
    Euler-Maclaurin corrected cumulative trapezoid rule, Simpson's rule for the outer
    integrals and cubic Hermite interpolation of the CDFs at ``x + d``; with 257 nodes the
    error is about 1e-6 (``tests/simulate/test_adaptr.py`` compares with SciPy's adaptive
    quadrature). Why: drawing is slow in JAX on CPU (``jax.random.beta`` under ``vmap`` costs
    about 800 ns a draw against NumPy's 50 ns, and adaptr's rule needs 15,000 draws per
    analysis), and 5000 draws add a Monte Carlo error (SD 0.0014 at a probability of 0.99) to
    every decision, which the computed probabilities do not have; the operating
    characteristics are the same within Monte Carlo error (:func:`compare_posterior_methods`
    runs both on the same trials). ``posterior = "draws"`` keeps adaptr's rule: ``n_draws``
    draws per arm and analysis, redrawn after arms are dropped, taken by inverting each arm's
    CDF on its own grid (the same Beta distribution, several times cheaper than
    ``jax.random.beta``); the estimates are then medians of draws, as in adaptr.

Not implemented (the README design does not use them): a common control arm (and with it
futility and control-relative rules), ``fixed_probs``, ``max_probs``, ``rescale_probs``, and
outcomes other than binary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from palette_core.design.locate import default_data_root
from palette_core.errors import ScenarioError
from palette_core.simulate import engine
from palette_core.simulate.engine import ProgramDefinition, TrialProgram

PROGRAM = "adaptr_binomial"
#: arm status codes of the program (``status`` column)
ARM_STATUS = ("active", "superior", "inferior", "equivalence")
ACTIVE, SUPERIOR, INFERIOR, EQUIVALENT = range(4)
#: trial status codes (``final_status`` column), as adaptr names them
FINAL_STATUS = ("max", "superiority", "equivalence")
MAX, SUPERIORITY, EQUIVALENCE = range(3)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


# ----------------------------------------------------------------------------- scenario schema
class AdaptrSettings(BaseModel):
    """Static settings: the arms and the shapes (one compilation per settings and chunk size)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arms: tuple[str, ...] = Field(min_length=2)
    n_looks: int = Field(ge=1, le=1000)
    max_n: int = Field(ge=1, le=1_000_000)
    posterior: Literal["quadrature", "draws"] = "quadrature"
    n_draws: int = Field(default=5000, ge=100, le=1_000_000)
    max_batch: int | None = Field(default=None, ge=1)
    grid_points: int = Field(default=257, ge=33, le=16385)
    grid_width_sd: float = Field(default=10.0, ge=4.0, le=40.0)

    @field_validator("arms")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("arm names must be unique")
        return v

    @field_validator("grid_points")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("must be odd (Simpson's rule)")
        return v


class LookSequence(BaseModel):
    """``seq(from, to, by)`` as adaptr's examples write the looks."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: int = Field(alias="from", ge=1)
    to: int = Field(ge=1)
    by: int = Field(ge=1)

    def values(self) -> list[int]:
        return list(range(self.from_, self.to + 1, self.by))


#: metrics of ``check_performance()`` compared by the cross-check, in adaptr's order
SUMMARY_STATS = ("mean", "sd", "median", "p25", "p75", "p0", "p100")


def metric_names(arms: Sequence[str]) -> list[str]:
    """The names of adaptr's ``check_performance()`` metrics for these arms."""
    out = [f"{v}_{s}" for v in ("size", "sum_ys", "ratio_ys") for s in SUMMARY_STATS]
    out += ["prob_conclusive", "prob_superior", "prob_equivalence", "prob_futility", "prob_max"]
    out += [f"prob_select_arm_{a}" for a in arms] + ["prob_select_none", "rmse", "mae", "idp"]
    return out


class PublishedResult(BaseModel):
    """Operating characteristics adaptr published for a scenario (``run_trials()`` output)."""

    model_config = ConfigDict(extra="forbid")

    source: str
    adaptr_version: str
    n_rep: int = Field(ge=1)
    base_seed: int
    select_strategy: Literal["control if available", "none", "best"]
    final_ests: bool | None = None
    #: values as printed (a string keeps its last digit, hence its rounding); null for NA
    metrics: dict[str, str | float | None]

    def value(self, metric: str) -> tuple[float, float]:
        """The published value of ``metric`` and the SD of its rounding error (uniform)."""
        v = self.metrics[metric]
        if v is None:
            return math.nan, 0.0
        text = str(v).strip()
        decimals = len(text.split(".")[1]) if isinstance(v, str) and "." in text else None
        rounding = 0.0 if decimals is None else 0.5 * 10.0**-decimals / math.sqrt(3.0)
        return float(text), rounding


class AdaptrScenario(BaseModel):
    """One scenario: ``setup_trial_binom()``'s arguments (and what adaptr published for it)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str | None = None
    true_ys: list[Probability]
    start_probs: list[Probability] | None = None
    min_probs: list[Probability | None] | None = None
    data_looks: list[int] | LookSequence
    randomised_at_looks: list[int] | LookSequence | None = None
    inferiority: Probability | list[Probability] = 0.01
    superiority: Probability | list[Probability] = 0.99
    equivalence_prob: Probability | list[Probability] | None = None
    equivalence_diff: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    soften_power: (
        Annotated[float, Field(gt=0.0, le=1.0)] | list[Annotated[float, Field(gt=0.0, le=1.0)]]
    ) = 1.0
    published: list[PublishedResult] = []


def _looks(v: list[int] | LookSequence | None) -> list[int] | None:
    return v.values() if isinstance(v, LookSequence) else v


def _per_look(
    value: Any, n_looks: int, name: str, err: Callable[[str, str], ScenarioError]
) -> np.ndarray:
    if isinstance(value, list):
        if len(value) != n_looks:
            raise err(
                name,
                f"{len(value)} values, but the scenario has {n_looks} looks (give one value or one per look)",
            )
        return np.asarray(value, dtype=np.float32)
    return np.full(n_looks, value, dtype=np.float32)


def scenario_parameters(
    settings: AdaptrSettings, sc: AdaptrScenario, where: tuple[str, str]
) -> dict[str, np.ndarray]:
    """The scenario's parameter arrays, after the checks that involve several fields.

    Raises :class:`~palette_core.errors.ScenarioError` naming ``where`` (file, entry) and the
    field: lengths that do not match the arms or the looks, looks that do not increase, more
    patients than ``settings.max_n``, allocation probabilities that do not sum to 1, an
    inferiority threshold of 1 / number of arms or more (adaptr's rule without a common
    control), equivalence without a difference, or a published metric adaptr does not compute.
    """
    file, entry = where

    def err(fld: str, msg: str) -> ScenarioError:
        return ScenarioError(file, entry, fld, msg)

    k, n_looks = len(settings.arms), settings.n_looks
    for name in ("true_ys", "start_probs", "min_probs"):
        v = getattr(sc, name)
        if v is not None and len(v) != k:
            raise err(name, f"{len(v)} values for {k} arms ({', '.join(settings.arms)})")
    data = _looks(sc.data_looks)
    assert data is not None
    rand = _looks(sc.randomised_at_looks) or list(data)
    for name, looks in (("data_looks", data), ("randomised_at_looks", rand)):
        if len(looks) != n_looks:
            raise err(
                name,
                f"{len(looks)} looks, but settings.n_looks is {n_looks} (every scenario of a file has the same looks count)",
            )
        if any(x < 1 for x in looks):
            raise err(name, "patient counts must be >= 1")
    if any(b <= a for a, b in zip(data, data[1:], strict=False)):
        raise err("data_looks", "must increase strictly")
    if any(b < a for a, b in zip(rand, rand[1:], strict=False)):
        raise err("randomised_at_looks", "must not decrease")
    bad = [i for i, (d, r) in enumerate(zip(data, rand, strict=True)) if r < d]
    if bad:
        raise err(
            f"randomised_at_looks[{bad[0]}]",
            f"{rand[bad[0]]} randomised but {data[bad[0]]} with outcome data",
        )
    if rand[-1] > settings.max_n:
        raise err(
            "randomised_at_looks" if sc.randomised_at_looks else "data_looks",
            f"{rand[-1]} patients exceed settings.max_n = {settings.max_n}",
        )
    batch = settings.max_batch or settings.max_n
    steps = {"data_looks": np.diff([0, *data])}
    if sc.randomised_at_looks is not None:
        steps["randomised_at_looks"] = np.diff([0, *rand])
    for name, step in steps.items():
        if step.max() > batch:
            j = int(np.argmax(step))
            raise err(
                f"{name}[{j}]",
                f"{int(step[j])} patients between looks exceed settings.max_batch = {batch}",
            )
    start = np.full(k, 1.0 / k) if sc.start_probs is None else np.asarray(sc.start_probs, float)
    if abs(start.sum() - 1.0) > 1e-6 or (start <= 0).any():
        raise err("start_probs", "must be > 0 and sum to 1")
    mins = np.array([0.0 if m is None else m for m in (sc.min_probs or [None] * k)], dtype=float)
    if mins.sum() > 1.0 + 1e-9:
        raise err("min_probs", f"sum to {mins.sum():g} > 1")
    inf = _per_look(sc.inferiority, n_looks, "inferiority", err)
    sup = _per_look(sc.superiority, n_looks, "superiority", err)
    if (inf >= 1.0 / k).any():
        raise err(
            "inferiority",
            f"must be < 1 / number of arms = {1.0 / k:.4g} (adaptr: no common control)",
        )
    if (sup <= 0).any():
        raise err("superiority", "must be > 0")
    if sc.equivalence_prob is not None and sc.equivalence_diff is None:
        raise err("equivalence_diff", "required when equivalence_prob is given")
    if sc.equivalence_prob is None:
        eqp = np.full(n_looks, 2.0, dtype=np.float32)  # a probability never exceeds 2: no check
    else:
        eqp = _per_look(sc.equivalence_prob, n_looks, "equivalence_prob", err)
    known = set(metric_names(settings.arms))
    for i, pub in enumerate(sc.published):
        unknown = sorted(set(pub.metrics) - known)
        if unknown:
            raise err(
                f"published[{i}].metrics.{unknown[0]}",
                "not a metric of check_performance() for these arms",
            )
        for metric in pub.metrics:
            try:
                pub.value(metric)
            except ValueError:
                raise err(
                    f"published[{i}].metrics.{metric}", f"not a number: {pub.metrics[metric]!r}"
                ) from None
    return {
        "true_ys": np.asarray(sc.true_ys, dtype=np.float32),
        "start_probs": start.astype(np.float32),
        "min_probs": mins.astype(np.float32),
        "data_looks": np.asarray(data, dtype=np.int32),
        "randomised_at_looks": np.asarray(rand, dtype=np.int32),
        "inferiority": inf,
        "superiority": sup,
        "equivalence_prob": eqp,
        "equivalence_diff": np.asarray(sc.equivalence_diff or 0.0, dtype=np.float32),
        "soften_power": _per_look(sc.soften_power, n_looks, "soften_power", err),
    }


# ----------------------------------------------------------------------------- posterior (JAX)
@dataclass(frozen=True)
class _Grid:
    x: Any  # (G,) nodes
    f: Any  # (K, G) densities
    F: Any  # (K, G) CDFs
    h: Any  # spacing
    wh: Any  # (G,) Simpson weights times h


def _simpson(n: int) -> np.ndarray:
    w = np.ones(n)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return w / 3.0


def beta_grid(a: Any, b: Any, use: Any, n_points: int, width: float) -> _Grid:
    """Beta(a, b) densities and CDFs of each arm on one grid spanning the arms in ``use``.

    The grid spans ``width`` posterior SDs on both sides of every arm in ``use`` (clipped to
    [0, 1]); densities are normalised by Simpson's rule, CDFs are the cumulative trapezoid rule
    with the Euler-Maclaurin end correction (error O(h^4)), rescaled to end at 1.
    """
    import jax.numpy as jnp
    from jax.scipy.special import xlog1py, xlogy

    mean = a / (a + b)
    sd = jnp.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
    lo = jnp.clip(jnp.min(jnp.where(use, mean - width * sd, 1.0)), 0.0, 1.0)
    hi = jnp.clip(jnp.max(jnp.where(use, mean + width * sd, 0.0)), 0.0, 1.0)
    h = jnp.maximum(hi - lo, 1e-6) / (n_points - 1)
    x = lo + h * jnp.arange(n_points, dtype=a.dtype)
    logf = xlogy(a[:, None] - 1.0, x) + xlog1py(b[:, None] - 1.0, -x)
    logf = logf - jnp.max(logf, axis=1, keepdims=True)
    wh = jnp.asarray(_simpson(n_points), dtype=a.dtype) * h
    f = jnp.exp(logf)
    f = f / (f @ wh)[:, None]
    trap = jnp.cumsum(0.5 * h * (f[:, 1:] + f[:, :-1]), axis=1)
    cum = jnp.concatenate([jnp.zeros_like(f[:, :1]), trap], axis=1)
    fp = jnp.gradient(f, h, axis=1)
    F = cum - h * h / 12.0 * (fp - fp[:, :1])
    F = jnp.clip(F / F[:, -1:], 0.0, 1.0)
    return _Grid(x, f, F, h, wh)


def _others(v: Any) -> Any:
    """(K, G) -> (K, G): for each i the product over j != i of v[j]."""
    import jax.numpy as jnp

    k = v.shape[0]
    eye = jnp.eye(k, dtype=bool)
    return jnp.prod(jnp.where(eye[:, :, None], 1.0, v[None, :, :]), axis=1)


def grid_prob_best(g: _Grid, active: Any) -> Any:
    """Pr(each active arm has the lowest rate among the active arms); 0 for the others."""
    import jax.numpy as jnp

    surv = jnp.where(active[:, None], 1.0 - g.F, 1.0)
    p = (g.f * _others(surv)) @ g.wh
    p = jnp.where(active, jnp.maximum(p, 0.0), 0.0)
    return p / jnp.sum(p)


def grid_prob_all_equivalent(g: _Grid, active: Any, diff: Any) -> Any:
    """Pr(max - min of the active arms' rates < diff)."""
    import jax.numpy as jnp

    n = g.x.shape[0]
    t = diff / g.h + jnp.arange(n, dtype=g.x.dtype)
    k0 = jnp.clip(jnp.floor(t), 0, n - 2).astype(jnp.int32)
    s = t - k0
    s2, s3 = s * s, s * s * s
    h00, h10, h01, h11 = 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, -2 * s3 + 3 * s2, s3 - s2
    f0, f1, F0, F1 = g.f[:, k0], g.f[:, k0 + 1], g.F[:, k0], g.F[:, k0 + 1]
    shifted = h00 * F0 + h10 * g.h * f0 + h01 * F1 + h11 * g.h * f1
    shifted = jnp.where(t >= n - 1, 1.0, jnp.clip(shifted, 0.0, 1.0))
    within = jnp.where(active[:, None], jnp.maximum(shifted - g.F, 0.0), 1.0)
    q = jnp.where(active, (g.f * _others(within)) @ g.wh, 0.0)
    return jnp.clip(jnp.sum(q), 0.0, 1.0)


def grid_median(a: Any, b: Any, n_points: int, width: float) -> Any:
    """Posterior median of each Beta(a, b), by inverting its CDF on its own grid."""
    import jax
    import jax.numpy as jnp

    def one(ai: Any, bi: Any) -> Any:
        g = beta_grid(ai[None], bi[None], jnp.ones(1, bool), n_points, width)
        F = g.F[0]
        k = jnp.clip(jnp.sum(F < 0.5) - 1, 0, n_points - 2)
        F0, F1 = F[k], F[k + 1]
        return g.x[k] + g.h * jnp.clip((0.5 - F0) / jnp.maximum(F1 - F0, 1e-12), 0.0, 1.0)

    return jax.vmap(one)(a, b)


def grid_draws(key: Any, a: Any, b: Any, n_draws: int, n_points: int, width: float) -> Any:
    """``n_draws`` draws from each Beta(a, b), by inverting its CDF on the arm's own grid.

    The same distribution as adaptr's ``rbeta()`` (up to the grid's 1e-6), at a fraction of
    the cost of ``jax.random.beta`` (a gamma rejection sampler) under ``vmap`` on CPU.
    """
    import jax
    import jax.numpy as jnp

    def one(ai: Any, bi: Any, u: Any) -> Any:
        g = beta_grid(ai[None], bi[None], jnp.ones(1, bool), n_points, width)
        return jnp.interp(u, g.F[0], g.x)

    u = jax.random.uniform(key, (a.shape[0], n_draws), a.dtype)
    return jax.vmap(one)(a, b, u).T


def draws_prob_best(draws: Any, active: Any) -> Any:
    """adaptr's ``prob_best()``: share of draws in which each active arm is lowest."""
    import jax.numpy as jnp

    k = draws.shape[1]
    best = jnp.argmin(jnp.where(active[None, :], draws, jnp.inf), axis=1)
    return jnp.mean(best[:, None] == jnp.arange(k)[None, :], axis=0).astype(draws.dtype)


def draws_prob_all_equivalent(draws: Any, active: Any, diff: Any) -> Any:
    """adaptr's ``prob_all_equi()``: share of draws with max - min < diff (active arms)."""
    import jax.numpy as jnp

    hi = jnp.max(jnp.where(active[None, :], draws, -jnp.inf), axis=1)
    lo = jnp.min(jnp.where(active[None, :], draws, jnp.inf), axis=1)
    return jnp.mean((hi - lo) < diff).astype(draws.dtype)


def reallocate(probs_best: Any, active: Any, min_probs: Any, soften_power: Any) -> Any:
    """adaptr's ``reallocate_probs()`` without fixed or maximum probabilities.

    The active arms' Pr(best) raised to ``soften_power`` and rescaled; arms below their
    minimum get it and the rest is shared among the others again, until none is below.
    Returns 0 for inactive arms; the active arms' probabilities sum to 1.
    """
    import jax.numpy as jnp

    k = probs_best.shape[0]
    final = jnp.zeros_like(probs_best)
    clamped = jnp.zeros(k, bool)
    done = jnp.array(False)
    result = jnp.zeros_like(probs_best)
    for _ in range(k + 1):  # every pass clamps an arm or finishes
        rem = active & ~clamped
        total = 1.0 - jnp.sum(jnp.where(clamped, final, 0.0))
        rem_sum = jnp.sum(jnp.where(rem, probs_best, 0.0))
        base = jnp.where(rem_sum > 0, probs_best, 1.0)
        powered = jnp.where(rem, base**soften_power, 0.0)
        tmp = jnp.where(rem, total * powered / jnp.maximum(jnp.sum(powered), 1e-30), final)
        new = rem & (tmp < min_probs)
        finish = ~done & (~jnp.any(rem) | ~jnp.any(new))
        clamped_sum = jnp.sum(jnp.where(active, final, 0.0))
        all_clamped = final / jnp.where(clamped_sum > 0, clamped_sum, 1.0)
        out = jnp.where(jnp.any(rem), tmp, all_clamped)
        result = jnp.where(finish, jnp.where(active, out, 0.0), result)
        final = jnp.where(~done & new, min_probs, final)
        clamped = clamped | (~done & new)
        done = done | finish
    return result


# ----------------------------------------------------------------------------- the program
def build_program(settings: AdaptrSettings) -> TrialProgram:
    """The trial program of one ``settings`` (arms, looks, patients, posterior method)."""
    import jax
    import jax.numpy as jnp

    k, n_looks, n_max = len(settings.arms), settings.n_looks, settings.max_n
    batch = settings.max_batch or n_max
    padded = n_max + batch  # so that a window of ``batch`` patients never runs off the end
    quadrature = settings.posterior == "quadrature"
    n_points, width, n_draws = settings.grid_points, settings.grid_width_sd, settings.n_draws
    f32 = jnp.float32
    arms_idx = jnp.arange(k)
    window = jnp.arange(batch)

    def init(key: Any, p: dict[str, Any]) -> dict[str, Any]:
        k_alloc, k_y, k_post = jax.random.split(key, 3)
        return {
            "p": p,
            "key_post": k_post,
            "u_alloc": jax.random.uniform(k_alloc, (padded,), f32),
            "u_y": jax.random.uniform(k_y, (padded,), f32),
            "arm": jnp.full(padded, -1, jnp.int32),
            "y": jnp.zeros(padded, jnp.int32),
            "n_followed": jnp.zeros(k, jnp.int32),
            "y_followed": jnp.zeros(k, jnp.int32),
            "randomised": jnp.int32(0),
            "followed": jnp.int32(0),
            "looks": jnp.int32(0),
            "stopped": jnp.array(False),
            "final_status": jnp.int32(MAX),
            "status": jnp.full(k, ACTIVE, jnp.int32),
            "status_look": jnp.full(k, -1, jnp.int32),
            "status_prob": jnp.full(k, jnp.nan, f32),
            "alloc": p["start_probs"].astype(f32),
            "final_alloc": jnp.full(k, jnp.nan, f32),
            "probs_best_last": jnp.full(k, jnp.nan, f32),
            "ns": jnp.zeros(k, jnp.int32),
            "sum_ys": jnp.zeros(k, jnp.int32),
            "ns_all": jnp.zeros(k, jnp.int32),
            "sum_ys_all": jnp.zeros(k, jnp.int32),
        }

    def posterior(a: Any, b: Any, use: Any, key: Any) -> Any:
        if quadrature:
            return beta_grid(a, b, use, n_points, width)
        return grid_draws(key, a, b, n_draws, n_points, width)

    def prob_best(post: Any, active: Any) -> Any:
        return grid_prob_best(post, active) if quadrature else draws_prob_best(post, active)

    def prob_equivalent(post: Any, active: Any, diff: Any) -> Any:
        if quadrature:
            return grid_prob_all_equivalent(post, active, diff)
        return draws_prob_all_equivalent(post, active, diff)

    def look(c: dict[str, Any], i: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        p = c["p"]
        n_rand, n_data = p["randomised_at_looks"][i], p["data_looks"][i]
        active = c["status"] == ACTIVE
        # randomise the new patients among the active arms (simple randomisation)
        alloc = jnp.where(active, c["alloc"], 0.0)
        alloc = alloc / jnp.sum(alloc)
        last_active = k - 1 - jnp.argmax(active[::-1])
        cum = jnp.where(arms_idx >= last_active, 2.0, jnp.cumsum(alloc))
        start = c["randomised"]
        u = jax.lax.dynamic_slice(c["u_alloc"], (start,), (batch,))
        uy = jax.lax.dynamic_slice(c["u_y"], (start,), (batch,))
        drawn = jnp.argmax(u[:, None] < cum[None, :], axis=1).astype(jnp.int32)
        new = window < n_rand - start
        new_y = (uy < p["true_ys"][drawn]).astype(jnp.int32)
        old_arm = jax.lax.dynamic_slice(c["arm"], (start,), (batch,))
        old_y = jax.lax.dynamic_slice(c["y"], (start,), (batch,))
        arm = jax.lax.dynamic_update_slice(c["arm"], jnp.where(new, drawn, old_arm), (start,))
        y = jax.lax.dynamic_update_slice(c["y"], jnp.where(new, new_y, old_y), (start,))
        hit = (drawn[:, None] == arms_idx[None, :]) & new[:, None]
        n_all = c["ns_all"] + jnp.sum(hit, axis=0, dtype=jnp.int32)
        y_all = c["sum_ys_all"] + jnp.sum(hit & (new_y == 1)[:, None], axis=0, dtype=jnp.int32)
        # outcome data of the patients who reached follow-up since the last look
        first = c["followed"]
        f_arm = jax.lax.dynamic_slice(arm, (first,), (batch,))
        f_y = jax.lax.dynamic_slice(y, (first,), (batch,))
        f_hit = (f_arm[:, None] == arms_idx[None, :]) & (window < n_data - first)[:, None]
        n_f = c["n_followed"] + jnp.sum(f_hit, axis=0, dtype=jnp.int32)
        y_f = c["y_followed"] + jnp.sum(f_hit & (f_y == 1)[:, None], axis=0, dtype=jnp.int32)
        ns = jnp.where(active, n_f, c["ns"])
        sum_ys = jnp.where(active, y_f, c["sum_ys"])
        a = (1 + y_f).astype(f32)
        b = (1 + n_f - y_f).astype(f32)
        key_look = jax.random.fold_in(c["key_post"], i)
        # analysis; inferior arms dropped (and Pr(best) recomputed) until none is left
        post = posterior(a, b, active, jax.random.fold_in(key_look, 0))
        probs = prob_best(post, active)
        status, status_look, status_prob = c["status"], c["status_look"], c["status_prob"]
        for it in range(k - 1):
            drop = active & (probs < p["inferiority"][i])
            status = jnp.where(drop, INFERIOR, status)
            status_look = jnp.where(drop, n_data, status_look)
            status_prob = jnp.where(drop, probs, status_prob)
            remaining = active & ~drop
            post2 = (
                post
                if quadrature
                else posterior(a, b, remaining, jax.random.fold_in(key_look, it + 1))
            )
            probs2 = prob_best(post2, remaining)
            dropped = jnp.any(drop)
            probs = jnp.where(dropped, probs2, probs)
            if not quadrature:
                post = jnp.where(dropped, post2, post)
            active = remaining
        # superiority
        ranked = jnp.where(active, probs, -1.0)
        best = jnp.argmax(ranked)
        superior = ranked[best] > p["superiority"][i]
        is_best = superior & (arms_idx == best)
        status = jnp.where(is_best, SUPERIOR, status)
        status_look = jnp.where(is_best, n_data, status_look)
        status_prob = jnp.where(is_best, probs, status_prob)
        # equivalence of all active arms
        p_equiv = prob_equivalent(post, active, p["equivalence_diff"])
        equivalent = ~superior & (p_equiv > p["equivalence_prob"][i])
        eq_arms = equivalent & active
        status = jnp.where(eq_arms, EQUIVALENT, status)
        status_look = jnp.where(eq_arms, n_data, status_look)
        status_prob = jnp.where(eq_arms, probs, status_prob)
        # stop, or reallocate
        last = i == n_looks - 1
        stop = superior | equivalent | last
        final_status = jnp.where(superior, SUPERIORITY, jnp.where(equivalent, EQUIVALENCE, MAX))
        new_alloc = reallocate(probs, active, p["min_probs"], p["soften_power"][i])
        was_active = c["status"] == ACTIVE
        carry = {
            **c,
            "arm": arm,
            "y": y,
            "randomised": n_rand,
            "followed": n_data,
            "looks": c["looks"] + 1,
            "stopped": stop,
            "final_status": final_status.astype(jnp.int32),
            "status": status,
            "status_look": status_look,
            "status_prob": status_prob,
            "alloc": jnp.where(stop, c["alloc"], new_alloc),
            "final_alloc": jnp.where(was_active, c["alloc"], c["final_alloc"]),
            "probs_best_last": jnp.where(active, probs, jnp.nan),
            "ns": ns,
            "sum_ys": sum_ys,
            "ns_all": n_all,
            "sum_ys_all": y_all,
            "n_followed": n_f,
            "y_followed": y_f,
        }
        record = {
            "followed_n": n_data,
            "randomised_n": n_rand,
            "n": n_f,
            "events": y_f,
            "probs_best": jnp.where(active, probs, jnp.nan),
            "prob_all_equivalent": jnp.where(superior, jnp.nan, p_equiv),
            "alloc_next": jnp.where(stop, jnp.nan, new_alloc),
            "status": status,
        }
        return carry, record

    def median(n: Any, events: Any, key: Any) -> Any:
        a = (1 + events).astype(f32)
        b = (1 + n - events).astype(f32)
        if quadrature:
            return grid_median(a, b, n_points, width)
        return jnp.median(grid_draws(key, a, b, n_draws, n_points, width), axis=0)

    def summary(c: dict[str, Any]) -> dict[str, Any]:
        return {
            "final_status": c["final_status"],
            "final_n": c["randomised"],
            "followed_n": c["followed"],
            "looks": c["looks"],
            "status": c["status"],
            "status_look": c["status_look"],
            "status_prob": c["status_prob"],
            "probs_best_last": c["probs_best_last"],
            "final_alloc": c["final_alloc"],
            "ns": c["ns"],
            "sum_ys": c["sum_ys"],
            "ns_all": c["ns_all"],
            "sum_ys_all": c["sum_ys_all"],
            "est": median(c["ns"], c["sum_ys"], jax.random.fold_in(c["key_post"], n_looks)),
            "est_all": median(
                c["ns_all"], c["sum_ys_all"], jax.random.fold_in(c["key_post"], n_looks + 1)
            ),
        }

    per_arm = (
        "status",
        "status_look",
        "status_prob",
        "probs_best_last",
        "final_alloc",
        "ns",
        "sum_ys",
        "ns_all",
        "sum_ys_all",
        "est",
        "est_all",
        "n",
        "events",
        "probs_best",
        "alloc_next",
    )
    return TrialProgram(
        name=PROGRAM,
        n_looks=n_looks,
        init=init,
        look=look,
        stopped=lambda c: c["stopped"],
        summary=summary,
        labels={name: settings.arms for name in per_arm},
        categories={"final_status": FINAL_STATUS, "status": ARM_STATUS},
    )


DEFINITION = engine.register_program(
    ProgramDefinition(
        name=PROGRAM,
        settings_model=AdaptrSettings,
        scenario_model=AdaptrScenario,
        build=build_program,
        parameters=scenario_parameters,
    )
)


# ----------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class TrialOutcomes:
    """Per-trial arrays the metrics are computed from (one scenario, one selection rule)."""

    size: np.ndarray
    sum_ys: np.ndarray
    ratio_ys: np.ndarray
    final_status: np.ndarray  # codes of FINAL_STATUS
    selected: np.ndarray  # arm index, -1 for none
    err: np.ndarray  # estimate - truth of the selected arm (nan for none)
    arms: tuple[str, ...]
    true_ys: np.ndarray


def _col(df: pd.DataFrame, name: str, arms: Sequence[str]) -> np.ndarray:
    return np.column_stack([np.asarray(df[f"{name}[{a}]"]) for a in arms])


def trial_outcomes(
    trials: pd.DataFrame,
    arms: Sequence[str],
    true_ys: Sequence[float],
    select_strategy: str = "control if available",
    final_ests: bool | None = None,
    lag: bool = False,
) -> TrialOutcomes:
    """Selection and errors of each trial, as ``extract_results()`` defines them.

    ``final_ests = None`` uses the final analysis (``est_all``) when the design has
    follow-up lag (``lag``), else the last adaptive analysis (``est``), as adaptr does.
    """
    arms = tuple(arms)
    truth = np.asarray(true_ys, dtype=float)
    final = np.asarray(pd.Categorical(trials["final_status"], categories=FINAL_STATUS).codes)
    status = np.column_stack(
        [
            np.asarray(pd.Categorical(trials[f"status[{a}]"], categories=ARM_STATUS).codes)
            for a in arms
        ]
    )
    look = _col(trials, "status_look", arms)
    followed = np.asarray(trials["followed_n"])[:, None]
    pbl = _col(trials, "probs_best_last", arms).astype(float)
    n = len(trials)
    selected = np.full(n, -1)
    sup = final == SUPERIORITY
    selected[sup] = np.argmax(status[sup] == SUPERIOR, axis=1)
    if select_strategy == "best":
        cand = status != INFERIOR
        eq = (final == EQUIVALENCE)[:, None]
        cand &= np.where(eq, (status == EQUIVALENT) & (look == followed), status != EQUIVALENT)
        score = np.where(cand & np.isfinite(pbl), pbl, -np.inf)
        pick = np.argmax(score, axis=1)
        has = np.isfinite(score[np.arange(n), pick])
        rest = ~sup & has
        selected[rest] = pick[rest]
    elif select_strategy not in ("control if available", "none"):
        raise ValueError(
            f"select_strategy {select_strategy!r} is not implemented (no common control)"
        )
    use_all = lag if final_ests is None else final_ests
    est = _col(trials, "est_all" if use_all else "est", arms).astype(float)
    err = np.full(n, np.nan)
    chosen = selected >= 0
    err[chosen] = est[chosen, selected[chosen]] - truth[selected[chosen]]
    size = np.asarray(trials["final_n"], dtype=float)
    sum_ys = _col(trials, "sum_ys_all", arms).sum(axis=1).astype(float)
    return TrialOutcomes(size, sum_ys, sum_ys / size, final, selected, err, arms, truth)


def _summary(v: np.ndarray) -> list[float]:
    if len(v) == 0:
        return [math.nan] * len(SUMMARY_STATS)
    q = np.quantile(v, [0.5, 0.25, 0.75, 0.0, 1.0])  # numpy's default is R's type 7
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
    return [float(np.mean(v)), sd, *map(float, q)]


def performance(o: TrialOutcomes, index: np.ndarray | None = None) -> dict[str, float]:
    """``check_performance()``'s metrics over the trials ``index`` (all by default)."""
    idx = np.arange(len(o.size)) if index is None else index
    st, sel, err = o.final_status[idx], o.selected[idx], o.err[idx]
    n = len(idx)
    out: dict[str, float] = {}
    for name, v in (("size", o.size), ("sum_ys", o.sum_ys), ("ratio_ys", o.ratio_ys)):
        out.update(dict(zip((f"{name}_{s}" for s in SUMMARY_STATS), _summary(v[idx]), strict=True)))
    out["prob_conclusive"] = float(np.mean(st != MAX))
    out["prob_superior"] = float(np.mean(st == SUPERIORITY))
    out["prob_equivalence"] = float(np.mean(st == EQUIVALENCE))
    out["prob_futility"] = 0.0  # futility needs a common control
    out["prob_max"] = float(np.mean(st == MAX))
    counts = np.bincount(sel[sel >= 0], minlength=len(o.arms))
    for a, c in zip(o.arms, counts, strict=True):
        out[f"prob_select_arm_{a}"] = float(c / n)
    out["prob_select_none"] = float(np.mean(sel < 0))
    e = err[np.isfinite(err)]
    out["rmse"] = float(np.sqrt(np.mean(e**2))) if len(e) else math.nan
    out["mae"] = float(np.median(np.abs(e))) if len(e) else math.nan
    span = o.true_ys.max() - o.true_ys.min()
    if counts.sum() == 0 or span == 0:
        out["idp"] = math.nan
    else:
        expected = float(np.sum(counts / counts.sum() * o.true_ys))
        out["idp"] = 100.0 - 100.0 * (expected - o.true_ys.min()) / span
    return out


def resampled_sd(
    o: TrialOutcomes, size: int, n_resamples: int, rng: np.random.Generator
) -> dict[str, float]:
    """SD of each metric over resamples of ``size`` trials drawn with replacement.

    With ``size`` = our number of trials this is the bootstrap Monte Carlo SE of our metrics;
    with ``size`` = adaptr's ``n_rep`` it is the Monte Carlo SE of a published value computed
    from ``n_rep`` trials, estimated from our trials.
    """
    n = len(o.size)
    rows = [performance(o, rng.integers(0, n, size)) for _ in range(n_resamples)]
    table = pd.DataFrame(rows)
    return {
        m: float(np.nanstd(table[m].to_numpy(float), ddof=1))
        if table[m].notna().sum() > 1
        else math.nan
        for m in table
    }


# ----------------------------------------------------------------------------- cross-check
#: the scenario file of adaptr's README design and its published variants (under the data root)
SCENARIO_FILE = "scenarios/adaptr_readme.yaml"
#: where :func:`adaptr_crosscheck` writes by default (under the data root)
CROSSCHECK_DIR = "derived/adaptr_crosscheck"


def scenario_path() -> Path:
    """The shipped scenario file of adaptr's README design, under the default data root."""
    return default_data_root() / SCENARIO_FILE


#: min/max of a sample are not compared: they have no useful standard error
NOT_COMPARED = ("size_p0", "size_p100", "sum_ys_p0", "sum_ys_p100", "ratio_ys_p0", "ratio_ys_p100")


def _is_lag(sc: AdaptrScenario) -> bool:
    rand = _looks(sc.randomised_at_looks)
    return rand is not None and rand != _looks(sc.data_looks)


def compare_with_published(
    scenarios: engine.ScenarioSet,
    trials: pd.DataFrame,
    *,
    n_resamples: int = 400,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (scenario, published source, metric): adaptr's value, ours, MC SEs, z.

    ``se_adaptr`` is the SD of the metric over resamples of ``n_rep`` of our trials (the Monte
    Carlo error of a value computed from ``n_rep`` trials), ``se_ours`` the bootstrap SE of
    ours, ``se_rounding`` the SD of the published value's rounding (uniform over half its last
    printed digit), ``z = |ours - adaptr| / sqrt(se_adaptr^2 + se_ours^2 + se_rounding^2)``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    arms = scenarios.settings.arms
    for s in scenarios.scenarios:
        sc: AdaptrScenario = s.model
        mine = trials[trials["scenario"] == s.name].reset_index(drop=True)
        if mine.empty:
            continue
        for pub in sc.published:
            o = trial_outcomes(
                mine, arms, sc.true_ys, pub.select_strategy, pub.final_ests, _is_lag(sc)
            )
            ours = performance(o)
            se_ours = resampled_sd(o, len(o.size), max(n_resamples // 2, 50), rng)
            se_pub = resampled_sd(o, pub.n_rep, n_resamples, rng)
            for metric in pub.metrics:
                if metric in NOT_COMPARED:
                    continue
                pv, rounding = pub.value(metric)
                ov = ours[metric]
                se = math.sqrt(se_pub[metric] ** 2 + se_ours[metric] ** 2 + rounding**2)
                diff = abs(ov - pv)
                if math.isnan(diff) or math.isnan(se):
                    z = math.nan
                elif se == 0:
                    z = 0.0 if diff < 1e-12 else math.inf
                else:
                    z = diff / se
                rows.append(
                    {
                        "scenario": s.name,
                        "source": pub.source,
                        "adaptr_version": pub.adaptr_version,
                        "n_rep": pub.n_rep,
                        "base_seed": pub.base_seed,
                        "select_strategy": pub.select_strategy,
                        "metric": metric,
                        "adaptr": pv,
                        "ours": ov,
                        "n_trials_ours": len(o.size),
                        "se_adaptr": se_pub[metric],
                        "se_ours": se_ours[metric],
                        "se_rounding": rounding,
                        "z": z,
                    }
                )
    return pd.DataFrame(rows)


def adaptr_crosscheck(
    n_trials: int,
    seed: int,
    out_dir: Path | str | None = None,
    *,
    scenario_file: Path | str | None = None,
    chunk_size: int = engine.DEFAULT_CHUNK_SIZE,
    scheduler: str = engine.PROCESSES,
    workers: int | None = None,
    progress: bool = True,
    draws_trials: int = 0,
    keep_trials: bool = False,
    manifest: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Reproduce adaptr's published results: simulate, compare, store; return the table.

    Runs ``n_trials`` trials of every scenario of ``scenario_file`` (default
    ``data/scenarios/adaptr_readme.yaml``), compares each published metric with ours
    (:func:`compare_with_published`) and writes into ``out_dir`` (default
    ``data/derived/adaptr_crosscheck``): ``crosscheck.csv`` (metric, adaptr published, ours,
    MC SEs, z), ``performance.csv`` (every metric of every scenario, ours, both selection
    rules) and ``manifest.json``; ``trials.parquet`` (one row per trial, about 150 bytes each)
    only with ``keep_trials``; ``manifest`` adds entries to the manifest. With
    ``draws_trials`` > 0, also
    ``posterior_methods.csv``: :func:`compare_posterior_methods` on that many trials of the
    README scenario (drawing is slow: about 0.2 s a trial).
    """
    t0 = time.perf_counter()
    scenarios = engine.load_scenarios(scenario_path() if scenario_file is None else scenario_file)
    result = engine.run_scenarios(
        scenarios,
        n_trials,
        seed,
        chunk_size=chunk_size,
        scheduler=scheduler,
        workers=workers,
        progress=progress,
    )
    table = compare_with_published(scenarios, result.trials, seed=seed)
    perf = []
    for s in scenarios.scenarios:
        mine = result.trials[result.trials["scenario"] == s.name].reset_index(drop=True)
        for strategy in ("control if available", "best"):
            o = trial_outcomes(
                mine, scenarios.settings.arms, s.model.true_ys, strategy, None, _is_lag(s.model)
            )
            perf += [
                {"scenario": s.name, "select_strategy": strategy, "metric": m, "ours": v}
                for m, v in performance(o).items()
            ]
    csv = {"crosscheck": table, "performance": pd.DataFrame(perf)}
    extra: dict[str, Any] = {"result": "adaptr_crosscheck", **(manifest or {})}
    if draws_trials > 0:
        methods, seconds = compare_posterior_methods(
            draws_trials, seed, scenario_file=scenarios.path, chunk_size=min(chunk_size, 100)
        )
        csv["posterior_methods"] = methods
        extra["posterior_methods"] = {"n_trials": draws_trials, "scenario": "readme", **seconds}
    extra["runtime_s"] = round(time.perf_counter() - t0, 2)
    extra["largest_z"] = float(np.nanmax(table["z"].to_numpy(float))) if len(table) else None
    engine.write_results(
        default_data_root() / CROSSCHECK_DIR if out_dir is None else out_dir,
        scenarios,
        result,
        csv_tables=csv,
        trials=keep_trials,
        **extra,
    )
    return table


def compare_posterior_methods(
    n_trials: int,
    seed: int,
    *,
    scenario: str = "readme",
    scenario_file: Path | str | None = None,
    n_draws: int | None = None,
    chunk_size: int = 100,
    scheduler: str = engine.IN_PROCESS,
    select_strategy: str = "best",
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The same trials with probabilities computed (quadrature) and drawn (adaptr's rule).

    Both runs use the same keys, hence the same patients and outcomes: the differences come
    from the posterior method alone. Returns a table (metric, quadrature, draws, difference, its
    paired bootstrap SE) with the share of trials whose final status, size or selected arm
    differ, and the seconds per 1000 trials of each method (compilation excluded).
    """
    base = engine.load_scenarios(scenario_path() if scenario_file is None else scenario_file)
    update: dict[str, Any] = {"posterior": "draws"}
    if n_draws is not None:
        update["n_draws"] = n_draws
    drawn = replace(base, settings=base.settings.model_copy(update=update))
    sc: AdaptrScenario = base.scenario(scenario).model
    outcomes, seconds = {}, {}
    for label, scenarios in (("quadrature", base), ("draws", drawn)):
        engine.run_scenarios(  # compile (and warm up) before timing
            scenarios,
            chunk_size,
            seed + 1,
            chunk_size=chunk_size,
            scheduler=scheduler,
            names=[scenario],
            progress=False,
        )
        t0 = time.perf_counter()
        res = engine.run_scenarios(
            scenarios,
            n_trials,
            seed,
            chunk_size=chunk_size,
            scheduler=scheduler,
            names=[scenario],
            progress=False,
        )
        seconds[label] = 1000.0 * (time.perf_counter() - t0) / n_trials
        outcomes[label] = trial_outcomes(
            res.trials, base.settings.arms, sc.true_ys, select_strategy, None, _is_lag(sc)
        )
    q, d = outcomes["quadrature"], outcomes["draws"]
    pq, pd_ = performance(q), performance(d)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(300):
        idx = rng.integers(0, n_trials, n_trials)
        a, b = performance(q, idx), performance(d, idx)
        diffs.append({m: b[m] - a[m] for m in a})
    se = pd.DataFrame(diffs).std(ddof=1)
    rows = [
        {
            "metric": m,
            "quadrature": pq[m],
            "draws": pd_[m],
            "difference": pd_[m] - pq[m],
            "se_difference": float(se[m]),
        }
        for m in pq
    ]
    for name, a, b in (
        ("share_final_status_differs", q.final_status, d.final_status),
        ("share_size_differs", q.size, d.size),
        ("share_selected_arm_differs", q.selected, d.selected),
    ):
        rows.append({"metric": name, "quadrature": 0.0, "draws": float(np.mean(a != b))})
    table = pd.DataFrame(rows)
    table.insert(0, "scenario", scenario)
    table["n_trials"] = n_trials
    return table, {f"seconds_per_1000_{k}": round(v, 3) for k, v in seconds.items()}
