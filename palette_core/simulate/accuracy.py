"""How far the Laplace approximation (:mod:`palette_core.simulate.posterior`) is from long NUTS.

:func:`accuracy_panel` draws looks from simulated trials (:func:`simulate_looks`: sample sizes
that grow look by look, arms opening late and closing early, children, calendar drift and arm
effects spread over the region where the decision rules change their verdict), fits each look
of both outcomes by NUTS (:class:`~palette_core.analysis.fit.Fitter`, several looks at once
with ``jax.vmap``) and by the approximation (warm-started look after look, as the trial
simulator runs it), and compares the decision probabilities of ``proposed/decisions.yaml``:
graduation ``Pr(OR > 1)``, futility ``Pr(OR > 1.1)`` and harm ``Pr(OR < 1)`` on the primary
outcome, harm on mortality, and ``Pr(best)`` among the open arms of a trait
(:func:`palette_core.randomisation.allocation.pr_best`, on the primary outcome). The table
reports, per quantity and population, the largest and the 99th-percentile absolute
difference, the Monte Carlo standard error of the NUTS probabilities, the rate at which the
decision differs and the share of probabilities within a band around the threshold (looks
that the simulator may re-analyse by NUTS).

:func:`rebuild_accuracy` stores the table and the per-comparison rows under ``data/derived``
with a manifest (:func:`palette_core.provenance.build_manifest`); :data:`SIZES` holds the full
and the small (test) configurations. :func:`speed_table` times the approximation.

The simulated trials are a test bench for the approximation, not the trial simulator: their
patients are allocated equally among the arms open at a look, and every outcome is complete
at the look.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from palette_core.analysis.fit import Fitter
from palette_core.analysis.models import (
    BINARY_COLUMNS,
    ORDINAL_COLUMNS,
    CellData,
    ModelSpec,
    Priors,
    cell_grid,
    model_data,
    model_priors,
    model_spec,
)
from palette_core.analysis.sampler import stack_data
from palette_core.design.loader import Design
from palette_core.errors import ModelDataError
from palette_core.provenance import build_manifest, git_revision, package_versions
from palette_core.randomisation.allocation import pr_best
from palette_core.simulate import posterior as lp

#: Run sizes of :func:`rebuild_accuracy`. ``full``: 20 trials of 10 looks (200 looks of both
#: outcomes), 10 calendar eras; NUTS 2 chains x (500 warm-up + 1,000 draws) on every look of
#: both models, ``batch`` looks per ``jax.vmap``-ed call. On this 2-core machine a NUTS fit of
#: the OSFD model takes about 75-100 s (200 fits: over 4 hours) and of the mortality model
#: about 4 s, so the stored panel was fitted on a GPU, with all the looks of an outcome in a few
#: vmapped calls (``rebuild_accuracy(..., batch=...)``; the manifest names the device); the
#: code is the same. ``small``: what the tests run.
SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "n_trials": 20,
        "n_looks": 10,
        "n_eras": 10,
        "nuts": {"num_warmup": 500, "num_samples": 1000, "num_chains": 2},
        "batch": 2,
        "n_draws": 8000,
        "rules": ("3-3-3", "2-2-2", "1-2-2"),
        "n_nuts_looks": {},
    },
    "small": {
        "n_trials": 1,
        "n_looks": 2,
        "n_eras": 1,
        "nuts": {"num_warmup": 30, "num_samples": 30, "num_chains": 2},
        "batch": 2,
        "n_draws": 1000,
        "rules": ("3-3-3", "1-2-2"),
        "n_nuts_looks": {"osfd28": 1},
    },
}
#: The quadrature rules over the three variance parameters (era step, between-trait,
#: children's deviation) that the panel compares, by name: nodes per parameter.
RULES: dict[str, tuple[int, int, int]] = {
    "3-3-3": (3, 3, 3),
    "2-2-2": (2, 2, 2),
    "1-2-2": (1, 2, 2),
}
#: The rule of :class:`~palette_core.simulate.posterior.Rule`'s default.
DEFAULT_RULE = "3-3-3"

#: Half-width of the band around each threshold (the accuracy targets): probabilities within
#: it are the ones the simulator may re-analyse by NUTS.
DEFAULT_BANDS = {"binary": 0.01, "ordinal": 0.02}

#: Columns of the per-comparison rows (:func:`panel_comparisons`).
COMPARISON_COLUMNS = (
    "rule",
    "trial",
    "look",
    "n_patients",
    "quantity",
    "outcome",
    "population",
    "arm",
    "n_arm",
    "threshold",
    "nuts",
    "nuts_mcse",
    "laplace",
)
#: Columns of the summary table (:func:`accuracy_panel`).
PANEL_COLUMNS = (
    "rule",
    "quantity",
    "outcome",
    "population",
    "n",
    "max_abs_diff",
    "p99_abs_diff",
    "mean_abs_diff",
    "median_nuts_mcse",
    "threshold",
    "band",
    "share_in_band",
    "decision_differs",
)


# ----------------------------------------------------------------------------- simulated looks
@dataclass(frozen=True)
class Look:
    """One look of a simulated trial: counts of both outcomes on the spec's grid, patients per
    experimental arm (adults, children: ``[2, A]``), the arms open at the look ``[A]`` and the
    true benefit-oriented log ORs ``[2, A]``."""

    trial: int
    look: int
    n_patients: int
    counts: dict[str, np.ndarray]
    n_arm: np.ndarray
    open_arms: np.ndarray
    truth: np.ndarray


def _cut_from_probs(p: np.ndarray) -> np.ndarray:
    f = np.clip(np.cumsum(p)[:-1], 1e-9, 1 - 1e-9)
    return np.log(f) - np.log1p(-f)


def simulate_looks(
    design: Design,
    primary: ModelSpec,
    binary: ModelSpec,
    n_trials: int,
    n_looks: int,
    seed: int,
    *,
    look_every: int | None = None,
) -> list[Look]:
    """Looks of ``n_trials`` simulated trials, each with ``n_looks`` looks every
    ``look_every`` patients (default: ``proposed/interims.yaml``), with the counts of the
    ordinal ``primary`` outcome and of the ``binary`` one (its death category).

    Per trial (NumPy generator seeded by ``seed``): true adult log ORs of the experimental arms
    (0 with probability 0.3, else normal with SD 0.4, so that probabilities fall on both sides
    of every threshold), children's = adults' + normal(0, 0.25); trait shifts normal(0, 0.3);
    a calendar random walk with a step SD uniform on (0, 0.25); usual-care death 0.15-0.35 in
    adults, 0.05-0.15 in children, survivors' organ-support-free days weighted towards the
    top; trait prevalence Dirichlet(2); children 20 % of the patients of a trait that admits
    them; eras of 80-120 patients; one arm in five opens at a later look and one in five
    closes early. Patients are allocated equally among the arms open to them. The ordinal
    primary outcome follows the proportional-odds model; mortality is its death category,
    which the proportional-odds model makes a logistic model with the same log OR.
    """
    if primary.outcome_type != "ordinal" or primary.sign != 1:
        raise ModelDataError("must be ordinal with benefit = higher", "primary")
    if binary.outcome_type != "binary" or binary.n_eras != primary.n_eras:
        raise ModelDataError("must be a binary outcome with the primary's eras", "binary")
    for name, v in (("n_trials", n_trials), ("n_looks", n_looks)):
        if not isinstance(v, int) or v < 1:
            raise ModelDataError(f"must be an integer >= 1, not {v!r}", name)
    every = int(look_every or design.interims.look_every_complete)
    n_eras = primary.n_eras
    grid = cell_grid(design, n_eras)
    death = design.outcome(primary.outcome).death_value
    cats = np.asarray(primary.categories)
    k = len(cats)
    arm_code = {a: 1 + i for i, a in enumerate(primary.arms)}
    cell_of = {
        (r.trait, r.age_group, r.arm, r.era): i for i, r in enumerate(grid.itertuples(index=False))
    }
    strata = primary.age_groups
    ref = primary.reference_stratum
    rng = np.random.default_rng(seed)
    looks: list[Look] = []
    n_total = n_looks * every
    per_era_min = int(np.ceil(n_total / n_eras))
    for trial in range(n_trials):
        a = len(primary.arms)
        theta = np.where(rng.random(a) < 0.3, 0.0, rng.normal(0.0, 0.4, a))
        theta_child = theta + rng.normal(0.0, 0.25, a)
        shift = rng.normal(0.0, 0.3, len(primary.traits))
        era_eff = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, rng.uniform(0, 0.25), 40))])
        cuts = {}
        for s, ag in enumerate(strata):
            m = rng.uniform(0.15, 0.35) if s == ref else rng.uniform(0.05, 0.15)
            w = np.where(cats == death, 0.0, cats - cats.min() + 1.0) ** rng.uniform(0.5, 2.0)
            p = (1.0 - m) * w / w.sum()
            p[cats == death] = m
            cuts[ag] = _cut_from_probs(p)
        prevalence = rng.dirichlet(np.full(len(primary.traits), 2.0))
        per_era = int(rng.integers(max(80, per_era_min), max(121, per_era_min + 1)))
        opens = np.where(rng.random(a) < 0.2, rng.integers(1, max(2, n_looks), a), 0)
        closes = np.where(rng.random(a) < 0.2, rng.integers(1, n_looks + 1, a), n_looks + 1)
        closes = np.maximum(closes, opens + 1)
        counts = {
            primary.outcome: np.zeros((len(grid), k)),
            binary.outcome: np.zeros((len(grid), 2)),
        }
        n_arm = np.zeros((2, a))
        for i in range(n_total):
            look, era = i // every, min(i // per_era, n_eras - 1)
            t = int(rng.choice(len(primary.traits), p=prevalence))
            trait = primary.traits[t]
            ags = design.trait(trait).age_groups
            ag = "child" if ("child" in ags and rng.random() < 0.2) else "adult"
            if ag not in ags:
                ag = ags[0]
            arms = [
                x.id
                for x in design.arms_of(trait)
                if ag in design.arm_age_groups(x)
                and (
                    x.id not in arm_code
                    or opens[arm_code[x.id] - 1] <= look < closes[arm_code[x.id] - 1]
                )
            ]
            arm = arms[int(rng.integers(len(arms)))]
            code = arm_code.get(arm, 0)
            eff = 0.0
            if code:
                eff = (theta if ag == strata[ref] else theta_child)[code - 1]
                n_arm[0 if ag == strata[ref] else 1, code - 1] += 1
            eta = shift[t] + era_eff[era] + eff
            cdf = 1.0 / (1.0 + np.exp(-(cuts[ag] - eta)))
            y = int(np.searchsorted(cdf, rng.random()))
            c = cell_of[(trait, ag, arm, era)]
            counts[primary.outcome][c, y] += 1
            counts[binary.outcome][c, int(cats[y] == death)] += 1
            if (i + 1) % every == 0:
                open_now = (opens <= look) & (look < closes)
                looks.append(
                    Look(
                        trial,
                        look,
                        i + 1,
                        {o: v.astype(np.float32) for o, v in counts.items()},
                        n_arm.copy(),
                        open_now,
                        np.stack([theta, theta_child]),
                    )
                )
    return looks


# ----------------------------------------------------------------------------- both fits
def _template(design: Design, spec: ModelSpec) -> CellData:
    """The spec's grid as :func:`~palette_core.analysis.models.model_data` lays it out."""
    cols = BINARY_COLUMNS if spec.outcome_type == "binary" else ORDINAL_COLUMNS
    return model_data(design, pd.DataFrame({c: [] for c in cols}), spec)


def _batch_means_mcse(ind: np.ndarray, n_batches: int = 20) -> np.ndarray:
    """Monte Carlo SE of the mean of ``ind`` ``[chains, draws, ...]`` by batch means."""
    c, d = ind.shape[:2]
    b = max(1, min(n_batches, d // 5))
    size = d // b
    means = ind[:, : b * size].reshape(c, b, size, *ind.shape[2:]).mean(axis=2)
    flat = means.reshape(c * b, *ind.shape[2:])
    return flat.std(axis=0, ddof=1) / np.sqrt(c * b)


def nuts_draws(
    fitter: Fitter,
    priors: Priors,
    counts: list[np.ndarray],
    template: CellData,
    seed: int,
    batch: int,
    deadline: float | None = None,
) -> tuple[list[dict[str, np.ndarray]], float]:
    """NUTS fits of several datasets (:meth:`~palette_core.analysis.fit.Fitter.sample_many`,
    ``batch`` datasets per ``jax.vmap``-ed call, compiled once): per dataset, ``log_or`` and
    ``log_or_child`` ``[chains, draws, A]``; and the wall seconds per dataset (the batches
    after the first, which compiles; all if only one). Dataset ``i`` uses the key
    ``fold_in(key(seed), i)``.

    ``deadline`` (a :func:`time.perf_counter` time): a batch after the first starts only if
    the previous batch's duration still fits before it, so fewer datasets than ``counts`` may
    come back (the first ones, in order); None: all of them."""
    root = jax.random.key(seed)
    out: list[dict[str, np.ndarray]] = []
    times, last = [], 0.0
    for start in range(0, len(counts), batch):
        t0 = time.perf_counter()
        if start and deadline is not None and t0 + last > deadline:
            break
        chunk = counts[start : start + batch]
        pad = batch - len(chunk)
        stacked = stack_data([template._replace(counts=c) for c in chunk + [chunk[-1]] * pad])
        keys = [jax.random.fold_in(root, start + i) for i in range(batch)]
        draws = fitter.sample_many(stacked, priors, keys).draws
        for i in range(len(chunk)):
            out.append({k: np.asarray(draws[k][i]) for k in ("log_or", "log_or_child")})
        last = time.perf_counter() - t0
        times.append(last / batch)
    return out, float(np.mean(times[1:] if len(times) > 1 else times))


def _rows(look: Look, quantity, outcome, population, arms, n_arm, threshold, nuts, mcse, lap):
    return [
        (
            look.trial,
            look.look,
            look.n_patients,
            quantity,
            outcome,
            population,
            arm,
            int(n_arm[j]),
            threshold,
            float(nuts[j]),
            float(mcse[j]),
            float(lap[j]),
        )
        for j, arm in enumerate(arms)
    ]


def _add(rows, look, names, n_arm, quantity, outcome, threshold, ind, lap) -> None:
    """Rows of one probability for every arm with patients: NUTS mean and MCSE of ``ind``
    ``[chains, draws, 2A]`` and the approximation's ``lap`` ``[2A]``."""
    mc = _batch_means_mcse(ind.astype(np.float64))
    nu = ind.mean(axis=(0, 1))
    lap = np.asarray(lap)
    for j in np.flatnonzero(n_arm > 0):
        pop, arm = names[j].split(":")
        rows.extend(
            _rows(
                look,
                quantity,
                outcome,
                pop,
                [arm],
                n_arm[[j]],
                threshold,
                nu[[j]],
                mc[[j]],
                lap[[j]],
            )
        )


def _nuts_looks(n: int, k: int | None, seed: int) -> list[int]:
    """``k`` of the ``n`` looks (all if ``k`` is None or at least ``n``), in order, drawn
    with ``seed``."""
    if k is None or k >= n:
        return list(range(n))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(n, size=k, replace=False))


def _compare_outcome(
    post: lp.LaplacePosterior,
    looks: list[Look],
    nuts: dict[int, dict[str, np.ndarray]],
    oid: str,
    design: Design,
    rows: list[tuple],
    refs: dict[str, float],
    seed: int,
    n_draws: int,
) -> dict[str, list[float]]:
    """Append the comparison rows of outcome ``oid`` under ``post`` to ``rows`` (the
    approximation warm-started look after look within a trial); return the milliseconds per
    analysis, cold and warm."""
    dec = design.decisions
    primary_id = dec.graduation.outcome
    spec = post.spec
    arms = spec.arms
    arm_trait = np.asarray(spec.arm_trait)
    pops = ("adult", "child")
    key = jax.random.key(seed)
    counts = [lk.counts[oid] for lk in looks]
    first = post.analyse(counts[0])  # compile both paths before timing
    jax.block_until_ready(post.analyse(counts[0], first.state))
    state, ms = None, {"cold": [], "warm": []}
    for i, look in enumerate(looks):
        if look.look == 0:
            state = None
        t0 = time.perf_counter()
        res = post.analyse(look.counts[oid], state)
        jax.block_until_ready(res)
        ms["cold" if state is None else "warm"].append((time.perf_counter() - t0) * 1e3)
        state = res.state
        if i not in nuts:  # the approximation still runs: the next look starts from it
            continue
        d = nuts[i]
        both = np.concatenate([d["log_or"], d["log_or_child"]], axis=-1)  # [C, D, 2A]
        n_arm = look.n_arm.reshape(-1)
        names = [f"{p}:{a}" for p in pops for a in arms]

        if oid == primary_id:
            _add(
                rows,
                look,
                names,
                n_arm,
                "graduation",
                oid,
                dec.graduation.threshold,
                both > refs["graduation"],
                lp.pr_greater(res, refs["graduation"]),
            )
            _add(
                rows,
                look,
                names,
                n_arm,
                "futility",
                oid,
                dec.futility.threshold,
                both > refs["futility"],
                lp.pr_greater(res, refs["futility"]),
            )
        if oid in dec.harm.outcomes:
            _add(
                rows,
                look,
                names,
                n_arm,
                "harm",
                oid,
                dec.harm.threshold,
                both < refs["harm"],
                lp.pr_less(res, refs["harm"]),
            )
        if oid == primary_id:
            key, sub = jax.random.split(key)
            draws = np.asarray(lp.joint_draws(res, sub, n_draws))[:, : len(arms)]
            adult = d["log_or"].reshape(-1, len(arms))
            for t in np.unique(arm_trait):
                mask = (arm_trait == t) & look.open_arms
                if mask.sum() < 2:
                    continue
                best_n = np.asarray(pr_best(adult, mask))
                best_l = np.asarray(pr_best(draws, mask))
                ind = np.argmax(np.where(mask, d["log_or"], -np.inf), axis=-1)[
                    ..., None
                ] == np.arange(len(arms))
                mc = _batch_means_mcse(ind.astype(np.float64))
                for j in np.flatnonzero(mask & (look.n_arm[0] > 0)):
                    rows.extend(
                        _rows(
                            look,
                            "pr_best",
                            oid,
                            "adult",
                            [arms[j]],
                            look.n_arm[0, [j]],
                            np.nan,
                            best_n[[j]],
                            mc[[j]],
                            best_l[[j]],
                        )
                    )
    return ms


def panel_comparisons(
    design: Design,
    *,
    n_trials: int,
    n_looks: int,
    n_eras: int,
    nuts_settings: dict[str, int],
    seed: int,
    batch: int = 5,
    n_draws: int = 8000,
    rules: dict[str, lp.Rule] | None = None,
    n_nuts_looks: dict[str, int] | None = None,
    nuts_budget_s: dict[str, float] | None = None,
    nuts_fits: dict[str, dict[int, dict[str, np.ndarray]]] | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every comparison of the panel (:data:`COMPARISON_COLUMNS`), and timings.

    ``rules`` (name -> :class:`~palette_core.simulate.posterior.Rule`; default the
    default rule) are each compared with the same NUTS fits. ``n_nuts_looks`` (outcome ->
    number) fits an outcome by NUTS on that many looks only, drawn at random with ``seed``
    (the approximation still runs on every look, warm-started as in the simulator); default:
    every look. ``nuts_budget_s`` (outcome -> seconds from the start of this call): no NUTS
    batch of that outcome starts that would end after it (:func:`nuts_draws`), so an outcome
    may be compared on fewer looks (the first in order); the timings give the number compared,
    ``nuts_looks[outcome]``. ``nuts_fits`` (outcome -> look index -> ``log_or`` and
    ``log_or_child`` draws ``[chains, draws, A]``): use these instead of fitting (see
    :func:`recompute_approximation`).

    The approximation runs on the CPU whatever JAX's default device is: on a GPU (H200, JAX
    0.11.2, default matrix-product precision) it gave NaN probabilities in about a quarter of
    the OSFD rows of the panel, none on the CPU; the cause (reduced-precision float32 matrix
    products, TF32, is the likely one) was not investigated, and the simulator runs on the CPU.

    Looks come from :func:`simulate_looks`; each outcome's approximation is warm-started
    look after look within a trial (as the simulator runs it, cold at each trial's first
    look); NUTS fits every look on its own. Rows: per look, population (``adult``, ``child``)
    and experimental arm with at least one patient of that population: graduation,
    futility and harm on the primary outcome, harm on each binary harm outcome, and
    ``Pr(best)`` among the arms of a trait open at the look (adults, primary outcome; traits
    with 2 or more open arms). The timings: NUTS seconds per look and approximation
    milliseconds per analysis (cold and warm, this machine, wall clock) per outcome.
    """
    dec = design.decisions
    primary_id = dec.graduation.outcome
    binary_ids = [o for o in dec.harm.outcomes if design.outcome(o).type == "binary"]
    if not binary_ids:
        raise ModelDataError("no binary harm outcome in proposed/decisions.yaml", "harm")
    specs = {o: model_spec(design, o, n_eras) for o in [primary_id, *binary_ids]}
    looks = simulate_looks(design, specs[primary_id], specs[binary_ids[0]], n_trials, n_looks, seed)
    priors = model_priors(design)
    refs = {
        "graduation": float(np.log(dec.graduation.or_reference)),
        "futility": float(np.log(dec.futility.or_reference)),
        "harm": float(np.log(dec.harm.or_reference)),
    }
    rules = dict(rules or {DEFAULT_RULE: lp.Rule()})
    rows: dict[str, list[tuple]] = {name: [] for name in rules}
    started = time.perf_counter()
    timings: dict[str, float] = {}
    for oid, spec in specs.items():
        template = _template(design, spec)
        if nuts_fits is not None:
            nuts = nuts_fits[oid]
        else:
            chosen = _nuts_looks(len(looks), (n_nuts_looks or {}).get(oid), seed)
            counts = [looks[i].counts[oid] for i in chosen]
            fitter = Fitter(spec, **nuts_settings)
            budget = (nuts_budget_s or {}).get(oid)
            deadline = None if budget is None else started + budget
            fits, secs = nuts_draws(fitter, priors, counts, template, seed, batch, deadline)
            nuts = dict(zip(chosen[: len(fits)], fits, strict=True))
            timings[f"nuts_s_per_look[{oid}]"] = secs
            timings[f"nuts_looks[{oid}]"] = len(fits)
        for rname, rule in rules.items():
            with jax.default_device(jax.devices("cpu")[0]):
                post = lp.LaplacePosterior(spec, template, priors, rule=rule)
                ms = _compare_outcome(
                    post, looks, nuts, oid, design, rows[rname], refs, seed, n_draws
                )
            for kind, values in ms.items():
                timings[f"laplace_ms_{kind}[{oid},{rname}]"] = (
                    float(np.mean(values)) if values else np.nan
                )
    frames = [
        pd.DataFrame(r, columns=list(COMPARISON_COLUMNS[1:])).assign(rule=name)
        for name, r in rows.items()
    ]
    out = pd.concat(frames, ignore_index=True)[list(COMPARISON_COLUMNS)]
    return out, timings


def summarise_panel(
    comparisons: pd.DataFrame, design: Design, bands: dict[str, float] | None = None
) -> pd.DataFrame:
    """The summary table (:data:`PANEL_COLUMNS`) of :func:`panel_comparisons`.

    Per quantity, outcome and population, over the arms evaluable for the rule
    (``min_complete`` of ``proposed/decisions.yaml``; every arm with patients for
    ``Pr(best)``): the largest, 99th-percentile and mean ``|Laplace - NUTS|``, the median
    Monte Carlo SE of the NUTS probabilities, the share of NUTS probabilities within
    ``band`` of the threshold (``bands`` by outcome type; default :data:`DEFAULT_BANDS`) and
    the share of arms whose decision differs (``>`` threshold for graduation and harm, ``<``
    for futility).
    """
    bands = {**DEFAULT_BANDS, **(bands or {})}
    dec = design.decisions
    minimum = {
        "graduation": dec.graduation.min_complete,
        "futility": dec.futility.min_complete,
        "harm": dec.harm.min_complete,
        "pr_best": 1,
    }
    out = []
    keys = ["rule", "quantity", "outcome", "population"]
    for (r, q, o, pop), g in comparisons.groupby(keys, sort=False):
        g = g[g["n_arm"] >= minimum[q]]
        if g.empty:
            continue
        diff = (g["laplace"] - g["nuts"]).abs().to_numpy()
        thr = float(g["threshold"].iloc[0])
        band = bands[design.outcome(o).type]
        if np.isnan(thr):
            in_band = differs = np.nan
        else:
            below = q == "futility"
            fire_n = g["nuts"] < thr if below else g["nuts"] > thr
            fire_l = g["laplace"] < thr if below else g["laplace"] > thr
            differs = float(np.mean(fire_n.to_numpy() != fire_l.to_numpy()))
            in_band = float(np.mean(np.abs(g["nuts"].to_numpy() - thr) < band))
        out.append(
            (
                r,
                q,
                o,
                pop,
                len(g),
                float(diff.max()),
                float(np.quantile(diff, 0.99)),
                float(diff.mean()),
                float(g["nuts_mcse"].median()),
                thr,
                np.nan if np.isnan(thr) else band,
                in_band,
                differs,
            )
        )
    return pd.DataFrame(out, columns=list(PANEL_COLUMNS))


def accuracy_panel(
    design: Design,
    *,
    n_looks: int,
    nuts_settings: dict[str, int],
    seed: int,
    looks_per_trial: int = 10,
    n_eras: int = 10,
    batch: int = 5,
    n_draws: int = 8000,
    bands: dict[str, float] | None = None,
    rules: dict[str, lp.Rule] | None = None,
    n_nuts_looks: dict[str, int] | None = None,
    nuts_budget_s: dict[str, float] | None = None,
) -> pd.DataFrame:
    """The accuracy table (:func:`summarise_panel`) of about ``n_looks`` looks
    (``ceil(n_looks / looks_per_trial)`` trials of ``looks_per_trial`` looks), NUTS with
    ``nuts_settings`` (the arguments of :class:`~palette_core.analysis.fit.Fitter`). The
    comparisons and timings ride along in ``attrs["comparisons"]`` and ``attrs["timings"]``."""
    n_trials = int(np.ceil(n_looks / looks_per_trial))
    comparisons, timings = panel_comparisons(
        design,
        n_trials=n_trials,
        n_looks=looks_per_trial,
        n_eras=n_eras,
        nuts_settings=nuts_settings,
        seed=seed,
        batch=batch,
        n_draws=n_draws,
        rules=rules,
        n_nuts_looks=n_nuts_looks,
        nuts_budget_s=nuts_budget_s,
    )
    table = summarise_panel(comparisons, design, bands)
    table.attrs["comparisons"] = comparisons
    table.attrs["timings"] = timings
    return table


def rebuild_accuracy(
    design: Design,
    out: Path,
    size: str,
    seed: int,
    *,
    batch: int | None = None,
    nuts_budget_s: dict[str, float] | None = None,
) -> None:
    """Run the panel at ``size`` (:data:`SIZES`) and store ``panel.csv``,
    ``comparisons.csv`` and ``manifest.json`` (with the timings and the JAX devices) in
    ``out``. ``batch`` (looks per vmapped NUTS call) overrides the size's: a GPU fits all the
    looks of an outcome at once. ``nuts_budget_s``: as for :func:`panel_comparisons`."""
    if size not in SIZES:
        raise ModelDataError(f"size must be one of {', '.join(SIZES)}, not {size!r}", "size")
    cfg = dict(SIZES[size])
    if batch is not None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ModelDataError(f"must be an integer >= 1, not {batch!r}", "batch")
        cfg["batch"] = batch
    if nuts_budget_s:
        cfg["nuts_budget_s"] = dict(nuts_budget_s)
    t0 = time.perf_counter()
    table = accuracy_panel(
        design,
        n_looks=cfg["n_trials"] * cfg["n_looks"],
        nuts_settings=cfg["nuts"],
        seed=seed,
        looks_per_trial=cfg["n_looks"],
        n_eras=cfg["n_eras"],
        batch=cfg["batch"],
        n_draws=cfg["n_draws"],
        rules={name: lp.Rule(RULES[name]) for name in cfg["rules"]},
        n_nuts_looks=cfg["n_nuts_looks"],
        nuts_budget_s=nuts_budget_s,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "panel.csv", index=False)
    table.attrs["comparisons"].to_csv(out / "comparisons.csv", index=False)
    manifest = build_manifest(
        design,
        seed,
        result="laplace_accuracy",
        size=size,
        config=cfg,
        devices=[str(d) for d in jax.devices()],
        timings=table.attrs["timings"],
        runtime_s=round(time.perf_counter() - t0, 1),
        tables=["comparisons.csv", "panel.csv"],
    )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")


#: Key columns of a comparison row: everything but the two methods' numbers.
_ROW_KEY = [c for c in COMPARISON_COLUMNS if c not in ("nuts", "nuts_mcse", "laplace")]


def recompute_approximation(design: Design, folder: Path) -> pd.DataFrame:
    """Recompute the approximation's column of a stored panel on this machine's CPU, keeping
    its NUTS columns; rewrite ``comparisons.csv``, ``panel.csv`` and the manifest (the
    approximation's timings, its devices and this checkout's git revision under
    ``approximation``). Returns the new comparisons.

    For a panel whose NUTS ran elsewhere (a GPU): the looks are simulated again from the
    manifest's size and seed, the approximation is run on every look as in
    :func:`panel_comparisons` (placeholder NUTS draws fill the NUTS columns, then are
    dropped), and every row's key (rule, trial, look, patients, quantity, outcome,
    population, arm, patients in the arm, threshold) must equal the stored row's: else
    :class:`~palette_core.errors.ModelDataError` (the looks differ, so the NUTS fits belong
    to other data).
    """
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    stored = pd.read_csv(folder / "comparisons.csv")
    cfg = manifest["config"]
    seed = int(manifest["seed"])
    n_samples = 40
    fits: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    for oid, part in stored.groupby("outcome"):
        spec = model_spec(design, str(oid), cfg["n_eras"])
        zeros = np.zeros((1, n_samples, len(spec.arms)), dtype=np.float32)
        looks = sorted({(int(t), int(k)) for t, k in zip(part["trial"], part["look"], strict=True)})
        fits[str(oid)] = {
            t * cfg["n_looks"] + k: {"log_or": zeros, "log_or_child": zeros} for t, k in looks
        }
    t0 = time.perf_counter()
    fresh, timings = panel_comparisons(
        design,
        n_trials=cfg["n_trials"],
        n_looks=cfg["n_looks"],
        n_eras=cfg["n_eras"],
        nuts_settings=cfg["nuts"],
        seed=seed,
        n_draws=cfg["n_draws"],
        rules={name: lp.Rule(RULES[name]) for name in cfg["rules"]},
        nuts_fits=fits,
    )
    stored_key = stored[_ROW_KEY].reset_index(drop=True)
    fresh_key = fresh[_ROW_KEY].reset_index(drop=True).astype(stored_key.dtypes.to_dict())
    if len(stored_key) != len(fresh_key):
        differ = f"{len(fresh_key)} rows instead of {len(stored_key)}"
    else:
        equal = (stored_key == fresh_key) | (stored_key.isna() & fresh_key.isna())
        bad = np.flatnonzero(~equal.all(axis=1).to_numpy())
        differ = (
            ""
            if not len(bad)
            else f"{len(bad)} rows differ, the first (row {bad[0]}): stored "
            f"{stored_key.iloc[bad[0]].to_dict()}, simulated {fresh_key.iloc[bad[0]].to_dict()}"
        )
    if differ:
        fresh.to_csv(folder / "comparisons.recomputed.csv", index=False)
        raise ModelDataError(
            f"{folder / 'comparisons.csv'}: the looks simulated again from the manifest do not "
            f"give the stored rows ({differ}), so its NUTS fits belong to other data",
            "comparisons",
        )
    out = stored.assign(laplace=fresh["laplace"].to_numpy())
    table = summarise_panel(out, design)
    out.to_csv(folder / "comparisons.csv", index=False)
    table.to_csv(folder / "panel.csv", index=False)
    laplace_timings = {k: v for k, v in timings.items() if k.startswith("laplace_ms")}
    manifest["timings"] = {
        **{k: v for k, v in manifest["timings"].items() if not k.startswith("laplace_ms")},
        **laplace_timings,
    }
    manifest["approximation"] = {
        "recomputed_by": "palette_core.simulate.accuracy.recompute_approximation",
        "devices": [str(d) for d in jax.devices("cpu")],
        "git_revision": git_revision(design.data_root),
        "packages": package_versions(),
        "runtime_s": round(time.perf_counter() - t0, 1),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return out


# ----------------------------------------------------------------------------- speed
SPEED_COLUMNS = ("outcome", "n_eras", "mode", "batch", "ms_wall", "ms_cpu")


def speed_table(
    design: Design,
    *,
    n_eras: int = 20,
    batch: int = 8,
    repeats: int = 5,
    seed: int = 0,
    rule: lp.Rule | None = None,
) -> pd.DataFrame:
    """Milliseconds per analysis of the approximation (median of ``repeats``), wall clock and
    process CPU time, for each outcome of the decision rules at ``n_eras`` eras: one dataset
    cold and warm (a state from the previous look), and ``batch`` datasets warm under
    ``jax.vmap``. The datasets are the last looks of :func:`simulate_looks` trials.

    The CPU time counts every thread of the process; for a per-core figure run Python with
    ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"`` and
    ``OPENBLAS_NUM_THREADS=1`` (LAPACK's own threads make batched triangular solves tens of
    times slower on a busy machine).
    """
    dec = design.decisions
    primary_id = dec.graduation.outcome
    binary_id = next(o for o in dec.harm.outcomes if design.outcome(o).type == "binary")
    specs = {o: model_spec(design, o, n_eras) for o in (primary_id, binary_id)}
    n_looks = max(2, min(10, n_eras))
    looks = simulate_looks(design, specs[primary_id], specs[binary_id], batch, n_looks, seed)
    rows = []

    def clock(f):
        jax.block_until_ready(f())  # compile
        wall, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(f())
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return 1e3 * float(np.median(wall)), 1e3 * float(np.median(cpu))

    for oid, spec in specs.items():
        post = lp.LaplacePosterior(
            spec, _template(design, spec), model_priors(design), rule=rule or lp.Rule()
        )
        last = [lk.counts[oid] for lk in looks if lk.look == n_looks - 1]
        prev = [lk.counts[oid] for lk in looks if lk.look == n_looks - 2]
        states = post.analyse_batch(np.stack(prev)).state
        one = jax.tree.map(lambda a: a[0], states)
        w, c = clock(lambda post=post, last=last: post.analyse(last[0]))
        rows.append((oid, n_eras, "cold", 1, w, c))
        w, c = clock(lambda post=post, last=last, one=one: post.analyse(last[0], one))
        rows.append((oid, n_eras, "warm", 1, w, c))
        stacked = np.stack(last)
        w, c = clock(lambda post=post, s=stacked, st=states: post.analyse_batch(s, st))
        rows.append((oid, n_eras, "warm", len(last), w / len(last), c / len(last)))
    return pd.DataFrame(rows, columns=list(SPEED_COLUMNS))
