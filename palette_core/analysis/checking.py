"""Model checking: prior-predictive checks, synthetic data with known effects, and SBC.

Three tools for the chapter "Statistical model and priors" and for the stored results of
:mod:`palette_core.results.store`:

* :func:`prior_predictive`: what the priors of ``proposed/priors.yaml`` imply for usual care,
  by age stratum and trait: the 28-day event probability of a binary outcome (mortality), or
  the distribution of an ordinal one (Pr(death), mean and median organ-support-free days).
* :func:`simulate_cells`: a cell table in the format of
  :func:`~palette_core.analysis.models.model_data` from *known* effects (true benefit-oriented
  log odds ratios, usual-care outcome distribution per age stratum), for recovery checks and
  examples.
* :func:`sbc`: simulation-based calibration (Talts et al. 2018): parameters drawn from the
  prior, data simulated from them, the model refitted with one compiled
  :class:`~palette_core.analysis.fit.Fitter`; the rank of each true value among thinned
  posterior draws is uniform when the fit is calibrated. A chi-square test on binned ranks
  reports uniformity.

Everything comes from the model itself: parameter draws and simulated counts from
:class:`numpyro.infer.Predictive` on :func:`~palette_core.analysis.models.joint_model` (its
likelihood is an observed distribution, so with ``totals`` it samples counts; known effects
are substituted for its sites), and cell probabilities from the model's own
:func:`~palette_core.analysis.models.cell_log_probs`. Random numbers come from JAX keys
derived from the integer seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.infer import Predictive
from scipy import stats

from palette_core.analysis.fit import Fitter
from palette_core.analysis.models import (
    BINARY_COLUMNS,
    ORDINAL_COLUMNS,
    CellData,
    ModelSpec,
    Priors,
    cell_grid,
    cell_log_probs,
    joint_model,
    model_data,
    model_priors,
    model_spec,
)
from palette_core.analysis.sampler import Samples, stack_data
from palette_core.design.loader import Design
from palette_core.errors import ModelDataError

#: Quantiles reported by :func:`prior_predictive`.
PRIOR_QUANTILES = (0.025, 0.25, 0.5, 0.75, 0.975)
PRIOR_PREDICTIVE_COLUMNS = (
    "outcome",
    "age_group",
    "trait",
    "quantity",
    "n_draws",
    "mean",
    "sd",
    "q025",
    "q25",
    "q50",
    "q75",
    "q975",
)
#: the model's observed site (the cell counts)
OBSERVED_SITE = "y"
_PARAMS = ("trait_shift", "era_effect", "log_or", "log_or_child", "cutpoints")


# ----------------------------------------------------------------------------- shared core
def empty_data(design: Design, spec: ModelSpec) -> CellData:
    """The spec's full cell grid with all counts zero (the likelihood is then constant)."""
    cols = BINARY_COLUMNS if spec.outcome_type == "binary" else ORDINAL_COLUMNS
    return model_data(design, pd.DataFrame({c: [] for c in cols}), spec)


def prior_draws(
    design: Design, spec: ModelSpec, n_draws: int, seed: int, priors: Priors | None = None
) -> dict[str, np.ndarray]:
    """``n_draws`` joint prior draws of every parameter of the model (leading axis = draw)."""
    _positive_int(n_draws, "n_draws")
    priors = model_priors(design) if priors is None else priors
    pred = Predictive(partial(joint_model, spec), num_samples=n_draws)
    draws = pred(jax.random.key(seed), empty_data(design, spec), priors)
    return {k: np.asarray(v) for k, v in draws.items() if k != OBSERVED_SITE}


def cell_probabilities(spec: ModelSpec, params: Mapping[str, Any], data: CellData) -> np.ndarray:
    """Category probabilities ``[n_draws, n_cells, n_categories]`` of every cell.

    ``params`` holds draws (leading axis = draw) of ``trait_shift`` ``[D, T]``,
    ``era_effect`` ``[D, n_eras]`` (or ``[D, T, n_eras]`` with per-trait eras), ``log_or`` and
    ``log_or_child`` ``[D, n_arms]`` (benefit-oriented) and ``cutpoints`` ``[D, S, K - 1]``;
    computed by the model's own :func:`~palette_core.analysis.models.cell_log_probs`.
    """
    missing = [k for k in _PARAMS if k not in params]
    if missing:
        raise ModelDataError(f"missing parameter(s) {missing}", "params")
    draws = {k: jnp.asarray(params[k], dtype=jnp.float32) for k in _PARAMS}
    log_p = jax.vmap(lambda p: cell_log_probs(spec, p, data))(draws)
    p = np.exp(np.asarray(log_p, dtype=np.float64))
    return p / p.sum(axis=-1, keepdims=True)


def simulated_counts(
    spec: ModelSpec,
    data: CellData,
    priors: Priors,
    params: Mapping[str, Any],
    totals: Any,
    key: Any,
) -> np.ndarray:
    """Counts ``[n_draws, n_cells, n_categories]`` drawn from the model's likelihood with
    ``totals`` patients per cell, given parameter draws ``params`` (leading axis = draw; any
    of the model's sites, e.g. the deterministic ``log_or`` or a full prior draw)."""
    pred = Predictive(
        partial(joint_model, spec),
        posterior_samples={k: jnp.asarray(v) for k, v in params.items() if k != OBSERVED_SITE},
        return_sites=[OBSERVED_SITE],
        condition_deterministic=True,
    )
    totals = jnp.asarray(totals, dtype=jnp.float32)
    return np.asarray(pred(key, data, priors, totals)[OBSERVED_SITE])


#: OSFD cut-points of the proportional-odds check: the outcome above k (k = -1: alive)
PO_CUTPOINTS = (-1, 0, 7, 14, 21)


def cumulative_log_odds_ratios(
    spec: ModelSpec, data: CellData, counts: Any, cutpoints: Sequence[int] = PO_CUTPOINTS
) -> np.ndarray:
    """Log odds ratio of ``outcome > k``, each experimental arm against usual care of its trait,
    at every cut-point ``k``, pooled over strata and eras (0.5 added to every cell).

    Parameters
    ----------
    spec, data
        The ordinal model's spec and cell grid (which arm and trait each cell belongs to).
    counts
        ``[..., n_cells, n_categories]`` counts: the observed ``data.counts`` or replicates.
    cutpoints
        Outcome values ``k`` (in ``spec.categories``).

    Returns
    -------
    ``[..., n_arms, n_cutpoints]`` log odds ratios (benefit = higher category).
    """
    counts = np.asarray(counts, dtype=np.float64)
    cats = np.asarray(spec.categories)
    above = np.stack([counts[..., cats > k].sum(-1) for k in cutpoints], axis=-1)
    total = counts.sum(-1)[..., None]
    arm = np.asarray(data.arm)
    trait = np.asarray(data.trait)
    out = []
    for e, t in enumerate(spec.arm_trait):
        own = arm == 1 + e
        ctl = (arm == 0) & (trait == t)
        a_hi = above[..., own, :].sum(-2) + 0.5
        a_lo = total[..., own, :].sum(-2) - above[..., own, :].sum(-2) + 0.5
        c_hi = above[..., ctl, :].sum(-2) + 0.5
        c_lo = total[..., ctl, :].sum(-2) - above[..., ctl, :].sum(-2) + 0.5
        out.append(np.log(a_hi / a_lo) - np.log(c_hi / c_lo))
    return np.stack(out, axis=-2)


def posterior_predictive_po(
    spec: ModelSpec,
    data: CellData,
    priors: Priors,
    draws: Mapping[str, Any],
    seed: int,
    n_replicates: int,
    cutpoints: Sequence[int] = PO_CUTPOINTS,
) -> pd.DataFrame:
    """Posterior-predictive check of proportional odds (ordinal model).

    ``n_replicates`` posterior draws (evenly thinned from ``draws``, leading axes ``[chain,
    draw]``) each generate a replicate of the cell counts with the same patients per cell
    (:func:`simulated_counts`, i.e. ``numpyro.infer.Predictive`` on the model). For every
    experimental arm the statistic is the spread of its cumulative log odds ratios across the
    cut-points (largest minus smallest, :func:`cumulative_log_odds_ratios`): near zero under
    proportional odds. The posterior-predictive p-value is the share of replicates whose spread
    is at least the observed one; a small value flags a departure the model does not
    reproduce.

    Returns
    -------
    pandas.DataFrame
        One row per arm and cut-point: ``arm``, ``cutpoint``, ``observed`` (log OR),
        ``replicate_median``, ``replicate_q05``, ``replicate_q95``, ``observed_spread``,
        ``ppp`` (the arm's posterior-predictive p-value) and ``n_patients`` (the arm's).
    """
    if spec.outcome_type != "ordinal":
        raise ModelDataError("the proportional-odds check needs the ordinal model", "spec")
    _positive_int(n_replicates, "n_replicates")
    arrays = {k: np.asarray(v) for k, v in draws.items()}
    flat = {k: v.reshape((v.shape[0] * v.shape[1], *v.shape[2:])) for k, v in arrays.items()}
    n_total = next(iter(flat.values())).shape[0]
    pick = np.linspace(0, n_total - 1, min(n_replicates, n_total)).round().astype(int)
    params = {k: v[pick] for k, v in flat.items()}
    totals = np.asarray(data.counts).sum(-1)
    rep = simulated_counts(spec, data, priors, params, totals, jax.random.key(seed))
    obs = cumulative_log_odds_ratios(spec, data, data.counts, cutpoints)
    sim = cumulative_log_odds_ratios(spec, data, rep, cutpoints)
    obs_spread = obs.max(-1) - obs.min(-1)
    sim_spread = sim.max(-1) - sim.min(-1)
    ppp = (sim_spread >= obs_spread[None, :]).mean(0)
    arm = np.asarray(data.arm)
    rows = []
    for e, name in enumerate(spec.arms):
        n = int(np.asarray(data.counts)[arm == 1 + e].sum())
        for j, k in enumerate(cutpoints):
            q05, q50, q95 = np.quantile(sim[:, e, j], [0.05, 0.5, 0.95])
            rows.append(
                {
                    "arm": name,
                    "cutpoint": int(k),
                    "observed": float(obs[e, j]),
                    "replicate_median": float(q50),
                    "replicate_q05": float(q05),
                    "replicate_q95": float(q95),
                    "observed_spread": float(obs_spread[e]),
                    "ppp": float(ppp[e]),
                    "n_patients": n,
                }
            )
    return pd.DataFrame(rows)


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ModelDataError(f"must be an integer >= 1, not {value!r}", name)
    return int(value)


# ----------------------------------------------------------------------------- prior predictive
def prior_predictive(
    design: Design, outcome_id: str, n_draws: int, seed: int, *, n_eras: int = 1
) -> pd.DataFrame:
    """What the priors imply for usual care, by age stratum and trait (first era).

    Returns a tidy table with the columns :data:`PRIOR_PREDICTIVE_COLUMNS`, one row per age
    group, trait (and ``"all"``: the draws of every trait pooled) and quantity:

    * binary outcome: ``pr_event``, the probability of the event (28-day mortality);
    * ordinal outcome: ``pr_death`` (Pr of the outcome's ``death_value``, if it has one),
      ``mean`` and ``median`` of the outcome (organ-support-free days, death = -1).
    """
    spec = model_spec(design, outcome_id, n_eras)
    outcome = design.outcome(outcome_id)
    draws = prior_draws(design, spec, n_draws, seed)
    grid = cell_grid(design, n_eras)
    data = empty_data(design, spec)
    keep = np.flatnonzero((grid["arm_index"].to_numpy() == 0) & (grid["era"].to_numpy() == 0))
    p = cell_probabilities(spec, draws, data)[:, keep]  # [D, usual-care cells, K]
    values = np.asarray(spec.categories, dtype=np.float64)
    quantities: dict[str, np.ndarray] = {}
    if spec.outcome_type == "binary":
        quantities["pr_event"] = p[..., 1]
    else:
        if outcome.death_value is not None:
            quantities["pr_death"] = p[..., spec.categories.index(outcome.death_value)]
        quantities["mean"] = p @ values
        cdf = np.cumsum(p, axis=-1)
        quantities["median"] = values[np.argmax(cdf >= 0.5, axis=-1)]
    cells = grid.iloc[keep].reset_index(drop=True)
    rows = []
    for ag in spec.age_groups:
        in_ag = (cells["age_group"] == ag).to_numpy()
        if not in_ag.any():
            continue
        groups = [("all", in_ag)] + [
            (t, in_ag & (cells["trait"] == t).to_numpy())
            for t in spec.traits
            if (in_ag & (cells["trait"] == t).to_numpy()).any()
        ]
        for trait, mask in groups:
            for name, q in quantities.items():
                x = q[:, mask].ravel()
                qs = np.quantile(x, PRIOR_QUANTILES)
                rows.append(
                    (spec.outcome, ag, trait, name, int(x.size), float(x.mean()), float(x.std()))
                    + tuple(float(v) for v in qs)
                )
    return pd.DataFrame(rows, columns=list(PRIOR_PREDICTIVE_COLUMNS))


# ----------------------------------------------------------------------------- simulation
def _baseline_cutpoints(spec: ModelSpec, baseline: Mapping[str, Any]) -> np.ndarray:
    """Cut-points ``[S, K - 1]`` that give usual care the ``baseline`` distribution."""
    if not isinstance(baseline, Mapping):
        raise ModelDataError("expected a mapping age group -> usual-care distribution", "baseline")
    cut = np.zeros((len(spec.age_groups), spec.n_categories - 1))
    for s, ag in enumerate(spec.age_groups):
        if ag not in baseline:
            raise ModelDataError(f"no usual-care distribution for age group {ag!r}", "baseline")
        b = baseline[ag]
        if spec.outcome_type == "binary" and np.ndim(b) == 0:
            b = [1.0 - float(b), float(b)]  # the event probability
        p = np.asarray(b, dtype=np.float64)
        if p.shape != (spec.n_categories,) or np.any(p <= 0) or not np.isclose(p.sum(), 1.0):
            raise ModelDataError(
                f"age group {ag!r}: expected {spec.n_categories} positive probabilities summing "
                f"to 1 (or, for a binary outcome, an event probability in (0, 1)), got {b!r}",
                "baseline",
            )
        f = np.cumsum(p / p.sum())[:-1]
        cut[s] = np.log(f) - np.log1p(-f)
    return cut


def _arm_vector(spec: ModelSpec, values: Mapping[str, float] | None, name: str) -> np.ndarray:
    out = np.zeros(len(spec.arms))
    for arm, v in (values or {}).items():
        if arm not in spec.arms:
            raise ModelDataError(f"{arm!r} is not an experimental arm of the design", name)
        if not np.isfinite(v):
            raise ModelDataError(f"arm {arm!r}: log odds ratio must be finite, not {v!r}", name)
        out[spec.arms.index(arm)] = float(v)
    return out


def _counts_table(
    design: Design, spec: ModelSpec, counts: np.ndarray, patients: np.ndarray
) -> pd.DataFrame:
    grid = cell_grid(design, spec.n_eras)[["trait", "age_group", "arm", "era"]]
    if spec.outcome_type == "binary":
        out = grid.copy()
        out["events"] = counts[:, 1].astype(np.int64)
        out["patients"] = patients.astype(np.int64)
        return out.reset_index(drop=True)
    k = spec.n_categories
    out = grid.loc[grid.index.repeat(k)].reset_index(drop=True)
    out["category"] = np.tile(np.asarray(spec.categories, dtype=np.int64), len(grid))
    out["count"] = counts.reshape(-1).astype(np.int64)
    return out


def _patients_per_cell(design: Design, spec: ModelSpec, n_per_arm: int) -> np.ndarray:
    """Split ``n_per_arm`` patients of every arm (usual care included) over its cells."""
    grid = cell_grid(design, spec.n_eras)
    key = grid["trait"] + "/" + grid["arm"]
    n = np.zeros(len(grid), dtype=np.int64)
    for _, idx in grid.groupby(key, sort=False).indices.items():
        share, extra = divmod(n_per_arm, len(idx))
        n[idx] = share
        n[idx[:extra]] += 1
    return n


def simulate_cells(
    design: Design,
    spec: ModelSpec,
    true_log_or: Mapping[str, float],
    n_per_arm: int,
    seed: int,
    *,
    baseline: Mapping[str, Any],
    true_log_or_child: Mapping[str, float] | None = None,
    trait_shift: Mapping[str, float] | None = None,
    era_effect: Sequence[float] | None = None,
) -> pd.DataFrame:
    """A cell table (format of :func:`~palette_core.analysis.models.model_data`) with known effects.

    Parameters
    ----------
    true_log_or
        Benefit-oriented log odds ratio (log OR > 0 = benefit) per experimental arm id, for
        the reference (adult) stratum; arms not listed have 0 (no effect).
    n_per_arm
        Patients per arm of every trait, usual care included, split as evenly as possible over
        the arm's cells (age groups it admits x eras).
    baseline
        Usual-care outcome distribution per age group of ``proposed/strata.yaml`` (first era,
        trait shift 0): the event probability of a binary outcome, or the probabilities of the
        ``spec.categories`` of an ordinal one.
    true_log_or_child
        The effect in the other age strata (children); default: the same as adults.
    trait_shift, era_effect
        Location shift per trait (default 0) and effect per era (default 0), on the model's
        linear-predictor scale (a positive value shifts towards higher categories).
    """
    n_per_arm = _positive_int(n_per_arm, "n_per_arm")
    theta = _arm_vector(spec, true_log_or, "true_log_or")
    theta_child = (
        theta if true_log_or_child is None else _arm_vector(spec, true_log_or_child, "child")
    )
    shift = np.zeros(len(spec.traits))
    for t, v in (trait_shift or {}).items():
        if t not in spec.traits:
            raise ModelDataError(f"unknown trait {t!r}", "trait_shift")
        shift[spec.traits.index(t)] = float(v)
    era = np.zeros(spec.n_eras) if era_effect is None else np.asarray(era_effect, dtype=float)
    if era.shape != (spec.n_eras,):
        raise ModelDataError(f"expected {spec.n_eras} era effects, got {era.shape}", "era_effect")
    if spec.eras == "per_trait":
        era = np.broadcast_to(era, (len(spec.traits), spec.n_eras))
    params = {
        "trait_shift": shift[None],
        "era_effect": era[None],
        "log_or": theta[None],
        "log_or_child": theta_child[None],
        "cutpoints": _baseline_cutpoints(spec, baseline)[None],
    }
    n = _patients_per_cell(design, spec, n_per_arm)
    data, priors = empty_data(design, spec), model_priors(design)
    counts = simulated_counts(spec, data, priors, params, n, jax.random.key(seed))[0]
    return _counts_table(design, spec, counts, n)


# ----------------------------------------------------------------------------- SBC
#: the stream (``jax.random.fold_in`` data) of SBC's simulated counts
SBC_DATA_STREAM = 0x534243
SBC_RANK_COLUMNS = ("sim", "parameter", "true", "rank", "n_ranks", "posterior_mean", "divergences")
SBC_UNIFORMITY_COLUMNS = ("parameter", "n_sims", "n_ranks", "n_bins", "chi2", "df", "p_value")


@dataclass(frozen=True)
class SbcResult:
    """Ranks per simulation and parameter, and a chi-square test of their uniformity."""

    ranks: pd.DataFrame
    uniformity: pd.DataFrame


def default_sbc_parameters(spec: ModelSpec) -> tuple[str, ...]:
    """Two arm log ORs (the first arm outside and the first inside a shared-effect group) and
    the between-trait SD (if the spec borrows), as ``"log_or[arm]"`` / ``"between_trait_sd"``."""
    out = []
    free = [a for a, g in zip(spec.arms, spec.arm_group, strict=True) if g < 0]
    grouped = [a for a, g in zip(spec.arms, spec.arm_group, strict=True) if g >= 0]
    out += [f"log_or[{a}]" for a in (free[:1] + grouped[:1])]
    if len(out) < 2:
        out = [f"log_or[{a}]" for a in spec.arms[:2]]
    if spec.borrowing == "hierarchical" and spec.groups:
        out.append("between_trait_sd")
    return tuple(out)


def _extract(spec: ModelSpec, values: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """``values[site][..., arm]`` for ``"site[arm]"``, else ``values[name]`` (leading axes kept)."""
    if name.endswith("]") and "[" in name:
        site, arm = name[:-1].split("[", 1)
        if site not in ("log_or", "log_or_child") or arm not in spec.arms:
            raise ModelDataError(f"unknown SBC parameter {name!r}", "parameters")
        return np.asarray(values[site])[..., spec.arms.index(arm)]
    if name not in ("between_trait_sd", "child_deviation_sd", "era_step_sd"):
        raise ModelDataError(f"unknown SBC parameter {name!r}", "parameters")
    return np.asarray(values[name])


def _bins(n_ranks: int, n_sims: int) -> int:
    """Largest number of equal bins of the ``n_ranks`` rank values with >= 5 expected per bin."""
    cap = min(20, n_sims // 5)
    return max([b for b in range(1, cap + 1) if n_ranks % b == 0], default=1)


def sbc_uniformity(ranks: pd.DataFrame) -> pd.DataFrame:
    """Chi-square test of uniform ranks per parameter (NaN p-value when < 2 bins fit)."""
    rows = []
    for name, r in ranks.groupby("parameter", sort=False):
        n_ranks = int(r["n_ranks"].iloc[0])
        b = _bins(n_ranks, len(r))
        if b < 2:
            rows.append((name, len(r), n_ranks, b, np.nan, 0, np.nan))
            continue
        observed = np.bincount(r["rank"].to_numpy() * b // n_ranks, minlength=b)
        chi2, p = stats.chisquare(observed)
        rows.append((name, len(r), n_ranks, b, float(chi2), b - 1, float(p)))
    return pd.DataFrame(rows, columns=list(SBC_UNIFORMITY_COLUMNS))


def sbc(
    design: Design,
    spec: ModelSpec,
    n_sims: int,
    fitter: Fitter,
    seed: int,
    *,
    patients_per_cell: int = 40,
    parameters: Sequence[str] | None = None,
    max_ranks: int = 100,
    batch: int = 1,
) -> SbcResult:
    """Simulation-based calibration of ``spec`` with one compiled ``fitter``.

    For each of ``n_sims`` joint prior draws, counts are simulated with ``patients_per_cell``
    patients in every cell of the grid, the model is refitted, and the rank of the true value
    among ``L`` evenly spaced posterior draws (``L + 1 = n_ranks <= max_ranks`` possible ranks)
    is recorded. ``parameters`` default to :func:`default_sbc_parameters`. ``batch``
    simulations are fitted per ``jax.vmap``-ed call (:meth:`Fitter.sample_many`; a GPU fits
    a hundred at once); simulation ``i`` uses the seed ``seed + 1 + i`` whatever the batch.
    """
    n_sims = _positive_int(n_sims, "n_sims")
    patients_per_cell = _positive_int(patients_per_cell, "patients_per_cell")
    if fitter.spec != spec:
        raise ModelDataError("the fitter was built for another model spec", "fitter")
    names = tuple(parameters) if parameters is not None else default_sbc_parameters(spec)
    priors = model_priors(design)
    truth_draws = prior_draws(design, spec, n_sims, seed, priors)
    truth = {n: _extract(spec, truth_draws, n) for n in names}
    data = empty_data(design, spec)
    totals = np.full(len(np.asarray(data.arm)), patients_per_cell)
    key = jax.random.fold_in(jax.random.key(seed), SBC_DATA_STREAM)
    simulated = simulated_counts(spec, data, priors, truth_draws, totals, key)
    total = fitter.num_chains * fitter.num_samples
    n_thin = min(total, _positive_int(max_ranks, "max_ranks") - 1)
    keep = np.unique(np.linspace(0, total - 1, n_thin).round().astype(int))
    n_ranks = len(keep) + 1
    batch = _positive_int(batch, "batch")
    rows = []
    for i in range(n_sims):
        counts = simulated[i].astype(np.float32)
        if batch == 1:
            res = fitter.fit(data._replace(counts=counts), priors, seed=seed + 1 + i)
        else:
            if i % batch == 0:
                chunk = [min(j, n_sims - 1) for j in range(i, i + batch)]  # the last padded
                stacked = stack_data(
                    [data._replace(counts=simulated[j].astype(np.float32)) for j in chunk]
                )
                keys = [jax.random.key(seed + 1 + j) for j in chunk]
                many = fitter.sample_many(stacked, priors, keys)
            one = Samples(*(jax.tree.map(lambda x, k=i % batch: x[k], f) for f in many))
            res = fitter.result(one, data)
        post = res.idata.posterior
        div = int(np.asarray(res.idata.sample_stats["diverging"]).sum())
        values = {k: post[k].values.reshape((total, *post[k].shape[2:])) for k in post.data_vars}
        for name in names:
            d = _extract(spec, values, name)[keep]
            t = float(truth[name][i])
            rows.append((i, name, t, int(np.sum(d < t)), n_ranks, float(d.mean()), div))
    ranks = pd.DataFrame(rows, columns=list(SBC_RANK_COLUMNS))
    return SbcResult(ranks, sbc_uniformity(ranks))


__all__ = [
    "PO_CUTPOINTS",
    "PRIOR_PREDICTIVE_COLUMNS",
    "SBC_RANK_COLUMNS",
    "SBC_UNIFORMITY_COLUMNS",
    "SbcResult",
    "cell_probabilities",
    "cumulative_log_odds_ratios",
    "default_sbc_parameters",
    "empty_data",
    "prior_draws",
    "posterior_predictive_po",
    "prior_predictive",
    "sbc",
    "sbc_uniformity",
    "simulate_cells",
    "simulated_counts",
]
