"""The tipping-point analysis of missing outcomes applied to an export, stored as a result.

``proposed/tipping_point.yaml`` (:func:`~palette_core.design.tipping.load_tipping_spec`) says
what is imputed and how; :mod:`palette_core.analysis.tipping` holds the pure pieces. This
module is the boundary: it reads and derives the export, fits each outcome's complete cells by
the simulator's integrated Laplace approximation of the primary analysis
(:class:`~palette_core.simulate.posterior.LaplacePosterior`), draws the imputations' posterior
parameters from it, refits every imputed dataset by the same approximation (warm-started at the
complete-case fit), and refits one imputed dataset per outcome by NUTS at its smallest tipping
point as a check.

Why the approximation: the grid (two scenarios, 25 values of ``delta``, 40 imputations, two
outcomes) is 4,000 refits; NUTS takes minutes per fit of the ordinal model on 2 cores, the
approximation hundredths of a second, and its error against NUTS is measured in the stored
result ``laplace_accuracy``.

Parameter draws. Imputation ``m`` draws a node ``h_k`` of the quadrature rule with the
posterior weights, refits the Gaussian at ``h_k`` (Newton from the complete-case centre) and
draws every latent variable (cut-points, trait shifts, eras, arm effects) from it: the
posterior predictive of the model, not of its effects alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.scipy.linalg import solve_triangular
from numpyro.distributions.transforms import OrderedTransform

from palette_core.analysis import tipping as tp
from palette_core.analysis.decisions import decision_outcomes
from palette_core.analysis.fit import Fitter
from palette_core.analysis.models import CellData, cell_grid, model_data, model_priors, model_spec
from palette_core.design.loader import Design, data_file
from palette_core.design.tipping import TippingPointFile, load_tipping_spec
from palette_core.errors import ModelDataError
from palette_core.exports import derive as _derive
from palette_core.exports.contract import read_export
from palette_core.exports.synthetic import EXPORT_FOLDER
from palette_core.provenance import build_manifest
from palette_core.simulate import posterior as lp

#: Run sizes: imputations (``None``: the file's), Newton steps of a parameter draw, the NUTS
#: check (``None``: none), and the grid thinned to every ``grid_every``-th point of the file's.
SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "n_imputations": None,
        "newton_steps": 4,
        "nuts": {"num_warmup": 500, "num_samples": 1000, "num_chains": 2},
        "grid_every": 1,
    },
    "small": {"n_imputations": 4, "newton_steps": 2, "nuts": None, "grid_every": 4},
}


@dataclass(frozen=True)
class Rule:
    """A decision rule applied to one outcome: name, OR reference, threshold, direction."""

    name: str
    outcome: str
    log_ref: float
    threshold: float
    below: bool
    greater: bool
    min_complete: int


def rules_of(design: Design, outcome: str) -> list[Rule]:
    """The rules of ``proposed/decisions.yaml`` that read ``outcome``."""
    dec = design.decisions
    out = []
    if outcome == dec.graduation.outcome:
        g, f = dec.graduation, dec.futility
        out.append(
            Rule(
                "graduation",
                outcome,
                float(np.log(g.or_reference)),
                g.threshold,
                False,
                True,
                g.min_complete,
            )
        )
        out.append(
            Rule(
                "futility",
                outcome,
                float(np.log(f.or_reference)),
                f.threshold,
                True,
                True,
                f.min_complete,
            )
        )
    if outcome in dec.harm.outcomes:
        h = dec.harm
        out.append(
            Rule(
                "harm",
                outcome,
                float(np.log(h.or_reference)),
                h.threshold,
                False,
                False,
                h.min_complete,
            )
        )
    return out


@dataclass(frozen=True)
class OutcomeInput:
    """One outcome's complete cells and its missing patients, laid on the model's grid."""

    outcome: str
    data: CellData
    spec: Any
    missing_cell: np.ndarray  # [n_missing] row of the cell grid
    missing_experimental: np.ndarray  # [n_missing] bool
    missing_arm: np.ndarray  # [n_missing] arm id


def outcome_inputs(
    design: Design, derived: pd.DataFrame, spec_file: TippingPointFile
) -> list[OutcomeInput]:
    """The complete cells and the missing patients of every outcome of the tipping-point file.

    Raises :class:`~palette_core.errors.ModelDataError` naming the row of a missing patient
    whose trait, age group and arm have no cell in the design.
    """
    missing = derived[derived["status"].astype(str).isin(spec_file.imputed_statuses)]
    n_eras = _derive.n_eras_of(derived)
    if len(missing):
        n_eras = max(n_eras, int(missing["era"].max()) + 1)
    grid = cell_grid(design, n_eras)
    index = {
        (t, ag, a, int(e)): i
        for i, (t, ag, a, e) in enumerate(
            zip(grid["trait"], grid["age_group"], grid["arm"], grid["era"], strict=True)
        )
    }
    cells_of_missing = []
    for row, r in missing.iterrows():
        key = (str(r["assigned_trait"]), str(r["age_group"]), str(r["arm"]), int(r["era"]))
        if key not in index:
            raise ModelDataError(f"no model cell for {key}", "arm", int(row))
        cells_of_missing.append(index[key])
    exp = np.asarray([design.arm(a).role == "experimental" for a in missing["arm"]], dtype=bool)
    out = []
    for o in spec_file.outcomes:
        spec = model_spec(design, o, n_eras)
        cells = _derive.cell_counts(derived, o, design, n_eras)
        out.append(
            OutcomeInput(
                o,
                model_data(design, cells, spec),
                spec,
                np.asarray(cells_of_missing, dtype=np.int32),
                exp,
                missing["arm"].astype(str).to_numpy(),
            )
        )
    return out


def parameter_draws(
    post: lp.LaplacePosterior,
    result: lp.LaplaceResult,
    data: CellData,
    cells: np.ndarray,
    key: jax.Array,
    n: int,
    newton_steps: int,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``n`` posterior draws of each missing patient's linear predictor ``[n, n_missing]`` and
    cut-points ``[n, n_missing, K-1]`` (module docstring: node, Newton, Gaussian draw)."""
    lay, st, prior = post.layout, post.structure, post.prior
    counts = jnp.asarray(data.counts, dtype=jnp.float32)
    idx = lp.cell_index(lay, data._replace(counts=counts))
    pos, coef, stratum = idx.pos[cells], idx.coef[cells], idx.stratum[cells]

    def one(k):
        k_node, k_x = jax.random.split(k)
        node = jax.random.choice(k_node, result.weights.shape[0], p=result.weights)
        h = result.nodes[node]
        fit = lp.newton(lay, st, prior, h, result.state.pilot_mode, counts, newton_steps)
        eps = jax.random.normal(k_x, fit.mode.shape, dtype=fit.mode.dtype)
        x = fit.mode + solve_triangular(fit.chol.T, eps, lower=False)
        # x = (cut-point coordinates per stratum, normal block): NumPyro's ordered transform
        xc = x[: lay.n_cut_total].reshape(lay.n_strata, lay.n_cut)
        z = x[lay.n_cut_total :]
        cut = OrderedTransform()(xc)
        u0, mat = lp.design_map(lay, prior, h)
        u = u0 + mat @ z
        return jnp.sum(u[pos] * coef, axis=-1), cut[stratum]

    return jax.jit(jax.vmap(one))(jax.random.split(key, n))


def _probabilities(result: lp.LaplaceResult, rules: list[Rule], n_arms: int) -> np.ndarray:
    """``[..., n_rules, A]``: each rule's probability for every adult arm effect."""
    out = []
    for r in rules:
        p = lp.pr_greater(result, r.log_ref) if r.greater else lp.pr_less(result, r.log_ref)
        out.append(np.asarray(p)[..., :n_arms])
    return np.stack(out, axis=-2)


def tipping_curves(
    design: Design,
    inp: OutcomeInput,
    spec_file: TippingPointFile,
    deltas: np.ndarray,
    n_imputations: int,
    seed: int,
    newton_steps: int,
) -> tuple[pd.DataFrame, lp.LaplaceResult, list[np.ndarray]]:
    """Pooled decision probabilities of every arm and rule of ``inp``'s outcome on the grid.

    Returns the tidy curves (outcome, scenario, delta, arm, rule, threshold, probability,
    mcse, complete_case), the complete-case fit, and the imputed counts of imputation 0 per
    scenario and delta (in that order) for the NUTS check.
    """
    priors = model_priors(design)
    post = lp.LaplacePosterior(inp.spec, inp.data, priors)
    counts = jnp.asarray(inp.data.counts, dtype=jnp.float32)
    res0 = post.analyse(counts)
    rules = rules_of(design, inp.outcome)
    arms = inp.spec.arms
    cc = _probabilities(res0, rules, len(arms))  # [R, A]
    key = jax.random.fold_in(jax.random.key(seed), decision_outcomes(design).index(inp.outcome))
    k_par, k_u = jax.random.split(key)
    cells = jnp.asarray(inp.missing_cell)
    eta, cut = parameter_draws(
        post, res0, inp.data, inp.missing_cell, k_par, n_imputations, newton_steps
    )
    uniform = jax.random.uniform(k_u, (n_imputations, len(inp.missing_cell)))
    sign = int(inp.spec.sign)
    state = jax.tree.map(lambda a: jnp.broadcast_to(a, (n_imputations, *jnp.shape(a))), res0.state)

    @partial(jax.jit, static_argnames="which")
    def imputed(delta, which):
        shift = tp.shifts(delta, inp.missing_experimental, which)
        cat = jax.vmap(lambda e, c, u: tp.impute_categories(e, c, shift, sign, u))(
            eta, cut, uniform
        )
        return jax.vmap(lambda c: tp.add_imputed(counts, cells, c))(cat)

    rows = []
    first = []
    for sc in spec_file.scenarios:
        for d in deltas:
            batch = (
                imputed(float(d), sc.shifted)
                if len(inp.missing_cell)
                else jnp.broadcast_to(counts, (n_imputations, *counts.shape))
            )
            first.append(np.asarray(batch[0]))
            res = post.analyse_batch(batch, state)
            mean, se = tp.pooled(_probabilities(res, rules, len(arms)))
            for ri, r in enumerate(rules):
                for ai, a in enumerate(arms):
                    rows.append(
                        (
                            inp.outcome,
                            sc.id,
                            float(d),
                            a,
                            r.name,
                            r.threshold,
                            float(mean[ri, ai]),
                            float(se[ri, ai]),
                            float(cc[ri, ai]),
                        )
                    )
    cols = [
        "outcome",
        "scenario",
        "delta",
        "arm",
        "rule",
        "threshold",
        "probability",
        "mcse",
        "complete_case",
    ]
    return pd.DataFrame(rows, columns=cols), res0, first


def tipping_table(
    curves: pd.DataFrame,
    design: Design,
    derived: pd.DataFrame,
    inputs: list[OutcomeInput],
) -> pd.DataFrame:
    """Per outcome, rule, scenario and arm: information, the decision under MAR and the
    tipping points (:func:`palette_core.analysis.tipping.tipping_points`)."""
    info = _derive.information(derived, design)
    missing_by_arm = pd.Series(inputs[0].missing_arm).value_counts() if inputs else pd.Series()
    control_of = {a.id: design.arms_of(a.trait)[0].id for a in design.experimental_arms()}
    rules = {
        (r.outcome, r.name): r for o in {i.outcome for i in inputs} for r in rules_of(design, o)
    }
    rows = []
    for (o, rule, sc, arm), g in curves.groupby(["outcome", "rule", "scenario", "arm"], sort=False):
        g = g.sort_values("delta")
        r = rules[(o, rule)]
        lo, hi = tp.tipping_points(
            g["delta"].to_numpy(), g["probability"].to_numpy(), r.threshold, r.below
        )
        at0 = g[np.isclose(g["delta"], 0.0)].iloc[0]
        n_c = info[arm]["n_complete"]
        rows.append(
            {
                "outcome": o,
                "rule": rule,
                "scenario": sc,
                "arm": arm,
                "trait": design.arm(arm).trait,
                "n_complete": n_c,
                "n_missing": int(missing_by_arm.get(arm, 0)),
                "n_missing_control": int(missing_by_arm.get(control_of[arm], 0)),
                "evaluable": bool(n_c >= r.min_complete),
                "threshold": r.threshold,
                "probability_mar": float(at0["probability"]),
                "mcse_mar": float(at0["mcse"]),
                "complete_case": float(at0["complete_case"]),
                "fires_mar": bool(tp.fires(at0["probability"], r.threshold, r.below)),
                "tipping_below": lo,
                "tipping_above": hi,
            }
        )
    return pd.DataFrame(rows)


def nuts_check(
    design: Design,
    inp: OutcomeInput,
    table: pd.DataFrame,
    curves: pd.DataFrame,
    first: list[np.ndarray],
    spec_file: TippingPointFile,
    deltas: np.ndarray,
    run: dict[str, int],
    seed: int,
) -> dict[str, Any] | None:
    """NUTS against the approximation on imputation 0 of one point of the grid: just past the
    smallest tipping point of an evaluable arm for ``inp``'s outcome, or, when no decision
    flips, where an evaluable arm's probability comes nearest its threshold."""
    t = table[(table["outcome"] == inp.outcome) & table["evaluable"]].copy()
    if t.empty:
        return None
    t["nearest"] = t[["tipping_below", "tipping_above"]].abs().min(axis=1)
    flipped = t[t["nearest"].notna()]
    if not flipped.empty:
        best = flipped.sort_values("nearest").iloc[0]
        lo, hi = best["tipping_below"], best["tipping_above"]
        tip = lo if np.isfinite(lo) and abs(lo) == best["nearest"] else hi
        # the first grid point beyond the tipping point, away from 0
        beyond = deltas[deltas <= tip].max() if tip < 0 else deltas[deltas >= tip].min()
        where = "past the tipping point"
    else:
        c = curves[curves["outcome"] == inp.outcome].merge(
            t[["rule", "scenario", "arm"]], on=["rule", "scenario", "arm"]
        )
        c = c.assign(gap=(c["probability"] - c["threshold"]).abs())
        best = c.sort_values(["gap", "delta"]).iloc[0]
        tip, beyond = float("nan"), float(best["delta"])
        where = "nearest the threshold (no decision flips)"
    s_i = [s.id for s in spec_file.scenarios].index(best["scenario"])
    d_i = int(np.flatnonzero(np.isclose(deltas, beyond))[0])
    counts = first[s_i * len(deltas) + d_i]
    rule = next(r for r in rules_of(design, inp.outcome) if r.name == best["rule"])
    a_i = list(inp.spec.arms).index(best["arm"])
    priors = model_priors(design)
    post = lp.LaplacePosterior(inp.spec, inp.data, priors)
    lap = float(_probabilities(post.analyse(counts), [rule], len(inp.spec.arms))[0, a_i])
    fitter = Fitter(inp.spec, **run, target_accept_prob=0.95)
    t0 = time.perf_counter()
    draws = np.asarray(
        fitter.sample(inp.data._replace(counts=counts), priors, seed).draws["log_or"]
    )
    seconds = time.perf_counter() - t0
    x = draws[..., a_i]
    ind = (x < rule.log_ref) if not rule.greater else (x > rule.log_ref)
    return {
        "outcome": inp.outcome,
        "rule": rule.name,
        "scenario": best["scenario"],
        "arm": best["arm"],
        "tipping_point": float(tip),
        "delta": float(beyond),
        "where": where,
        "laplace": lap,
        "nuts": float(ind.mean()),
        "nuts_mcse": float(_batch_mcse(ind.astype(float))),
        "threshold": rule.threshold,
        "nuts_seconds": round(seconds, 1),
    }


def _batch_mcse(ind: np.ndarray, n_batches: int = 20) -> float:
    """Monte Carlo SE of the mean of ``ind`` ``[chains, draws]`` by batch means."""
    c, d = ind.shape
    b = max(1, min(n_batches, d // 5))
    size = d // b
    means = ind[:, : b * size].reshape(c, b, size).mean(axis=2).reshape(-1)
    return float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float("nan")


def tipping_result(
    design: Design, size: str, seed: int
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The tipping-point analysis of the synthetic export (``data/exports/synthetic_interim``):
    the tables ``curves``, ``tipping``, ``missing`` and ``nuts_check``, and the manifest."""
    if size not in SIZES:
        raise ModelDataError(f"size must be one of {', '.join(SIZES)}, not {size!r}", "size")
    t0 = time.perf_counter()
    cfg = SIZES[size]
    spec_file = load_tipping_spec(design)
    n_imp = cfg["n_imputations"] or spec_file.imputation.n_imputations
    deltas = np.asarray(spec_file.deltas)
    keep = np.isclose(deltas, 0.0) | (np.arange(len(deltas)) % cfg["grid_every"] == 0)
    deltas = deltas[keep]
    export = data_file(design, EXPORT_FOLDER)
    derived = _derive.derive_outcomes(read_export(export, design), design)
    inputs = outcome_inputs(design, derived, spec_file)
    parts, firsts = [], {}
    for inp in inputs:
        c, _, first = tipping_curves(
            design, inp, spec_file, deltas, n_imp, seed, cfg["newton_steps"]
        )
        parts.append(c)
        firsts[inp.outcome] = first
    curves = pd.concat(parts, ignore_index=True)
    table = tipping_table(curves, design, derived, inputs)
    checks = []
    if cfg["nuts"] is not None and spec_file.refit.nuts_check:
        for i, inp in enumerate(inputs):
            row = nuts_check(
                design,
                inp,
                table,
                curves,
                firsts[inp.outcome],
                spec_file,
                deltas,
                cfg["nuts"],
                seed + i,
            )
            if row is not None:
                checks.append(row)
    missing = derived[derived["status"].astype(str).isin(spec_file.imputed_statuses)]
    missing_table = (
        missing.groupby(["assigned_trait", "arm", "age_group", "status"])
        .size()
        .rename("n")
        .reset_index()
    )
    check_cols = [
        "outcome",
        "rule",
        "scenario",
        "arm",
        "tipping_point",
        "delta",
        "where",
        "laplace",
        "nuts",
        "nuts_mcse",
        "threshold",
        "nuts_seconds",
    ]
    extra = {
        "result": "tipping_point",
        "size": size,
        "export": str(EXPORT_FOLDER),
        "n_imputations": n_imp,
        "deltas": [float(d) for d in deltas],
        "newton_steps": cfg["newton_steps"],
        "nuts": cfg["nuts"],
        "n_missing": int(len(missing)),
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    tables = {
        "curves": curves,
        "tipping": table,
        "missing": missing_table,
        "nuts_check": pd.DataFrame(checks, columns=check_cols),
    }
    return tables, build_manifest(design, seed, **extra)


__all__ = ["SIZES", "tipping_result", "rules_of", "tipping_curves", "tipping_table"]
