"""The pre-specified analyses of a look: the primary fit and the sensitivity analyses.

One function, :func:`fit_outcome`, runs any analysis of one outcome on a tidy table of cell
counts (the input of :func:`palette_core.analysis.models.model_data`) and returns benefit-oriented
draws of the log odds ratios (adults and all ages, and children) with the fit's gates. The
analyses are named; :func:`analysis_options` says what each changes:

``primary``
    The pre-specified joint model: hierarchical borrowing in shared-effect groups, children's
    effect = adults' + a shrunk deviation, calendar eras shared across traits.
``no_borrowing``
    Every arm has its own prior in every age stratum (no borrowing across traits, none from
    adults to children). Its ``child_draws`` are the **children-only effect** used for the
    harm check in children (``quantities.summarise(..., population="child")``).
``prior_<name>_<scale>``
    One prior scale of ``proposed/priors.yaml`` replaced by one of its ``sensitivity_scales``.
``per_trait_eras``
    One calendar random walk per trait instead of one shared walk.
``exnex``
    EXNEX mixture prior for the arms of shared-effect groups (``priors.exnex``).
``concurrent_controls``
    Each arm's effect estimated from its trait's usual-care patients randomised in the eras in
    which the arm had patients (``proposed/interim_analysis.yaml``,
    ``sensitivity.concurrent_controls``); see :func:`concurrent_plan`.

Which sensitivity analyses a look runs is data (``interim_analysis.yaml``,
``sensitivity.analyses``; ``prior_scale`` expands to one analysis per sensitivity scale).

The primary analysis of a look is fitted by :func:`fit_escalated`: a fit that fails the
convergence gates is run again with each step of ``interim_analysis.yaml``,
``convergence.escalation`` (:func:`escalated_runs`), and :func:`add_chains` pools another run
of chains into a fit whose decision probabilities need more draws (``monte_carlo``).
Fitters are cached per (model spec, run size), and prior values are traced arguments, so
the primary analysis, every prior-scale analysis and every fit of the concurrent-controls
analysis reuse one compiled sampler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jax
import numpy as np
import pandas as pd

from palette_core.analysis.fit import FitResult, Fitter, combine_samples
from palette_core.analysis.models import (
    ModelSpec,
    exnex_draws,
    model_data,
    model_priors,
    model_spec,
)
from palette_core.analysis.sampler import Samples
from palette_core.design.loader import Design
from palette_core.errors import ModelDataError

PRIMARY = "primary"
_FIXED = {
    "primary": {},
    "no_borrowing": {"borrowing": "none"},
    "per_trait_eras": {"eras": "per_trait"},
    "exnex": {"borrowing": "exnex"},
    "concurrent_controls": {"concurrent": True},
}
#: Sampler settings that an analysis needs whatever the run size: the EXNEX likelihood is a
#: mixture, and at a target acceptance of 0.95 its fit of the worked interim analysis had 5
#: divergent transitions; at 0.99 it passed every gate.
RUN_OVERRIDES: dict[str, dict[str, Any]] = {"exnex": {"target_accept_prob": 0.99}}
#: the stream (``jax.random.fold_in`` data) of the EXNEX component draws of a fit
EXNEX_STREAM = 0x45584E58
#: the stream of the chains of run ``b`` (>= 1) added to a fit: ``fold_in(key(seed), stream + b)``
MORE_CHAINS_STREAM = 0x4D4F5245
_FITTERS: dict[tuple[ModelSpec, tuple[tuple[str, Any], ...]], Fitter] = {}


@dataclass(frozen=True)
class AnalysisFit:
    """One analysis of one outcome.

    ``draws`` and ``child_draws`` are ``[n_draws, n_arms]`` benefit-oriented log odds ratios
    (adults, the reference stratum, and children) in the order of ``arms``, chain after chain;
    ``results`` are the fits behind them (one, or one per concurrent-controls fit) and
    ``gates_passed`` is True only if every one passed. ``run`` holds the sampler settings used,
    ``seed`` the seed, ``runs`` how many runs of chains are pooled (1, plus those added by
    :func:`add_chains`); ``samples`` keeps the raw draws of each run of a single-fit analysis.
    """

    analysis: str
    outcome: str
    arms: tuple[str, ...]
    draws: np.ndarray
    child_draws: np.ndarray
    results: tuple[FitResult, ...]
    run: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    runs: int = 1
    samples: tuple[Samples, ...] = field(default=(), repr=False)

    @property
    def n_chains(self) -> int:
        """Chains behind ``draws`` (every fit of the analysis has as many)."""
        return int(self.results[0].idata.posterior.sizes["chain"])

    @property
    def gates_passed(self) -> bool:
        return all(r.gates_passed for r in self.results)

    @property
    def failures(self) -> tuple[str, ...]:
        if len(self.results) == 1:
            return self.results[0].failures
        return tuple(f"fit {i + 1}: {f}" for i, r in enumerate(self.results) for f in r.failures)


def sensitivity_analyses(design: Design) -> tuple[str, ...]:
    """The sensitivity analyses a look runs, in the order of ``interim_analysis.yaml``."""
    out: list[str] = []
    for name in design.interim_analysis.sensitivity.analyses:
        if name == "prior_scale":
            for prior in ("arm_log_or", "shared_effect_mean", "between_trait_sd",
                          "child_deviation_sd", "era_step_sd", "trait_shift"):  # fmt: skip
                for value in getattr(design.priors, prior).sensitivity_scales:
                    out.append(f"prior_{prior}_{value:g}")
        else:
            out.append(name)
    return tuple(out)


def analysis_options(design: Design, analysis: str) -> dict[str, Any]:
    """The model switches of a named analysis (keyword arguments of ``model_spec`` plus
    ``concurrent``). Raises :class:`~palette_core.errors.ModelDataError` for an unknown name."""
    if analysis in _FIXED:
        return dict(_FIXED[analysis])
    if analysis.startswith("prior_"):
        for prior in ("arm_log_or", "shared_effect_mean", "between_trait_sd",
                      "child_deviation_sd", "era_step_sd", "trait_shift"):  # fmt: skip
            head = f"prior_{prior}_"
            if analysis.startswith(head):
                try:
                    value = float(analysis[len(head) :])
                except ValueError:
                    break
                allowed = getattr(design.priors, prior).sensitivity_scales
                if not any(np.isclose(value, v) for v in allowed):
                    raise ModelDataError(
                        f"{value:g} is not among the sensitivity_scales of {prior!r} in "
                        f"proposed/priors.yaml ({list(allowed)})",
                        "analysis",
                    )
                return {"prior_scales": {prior: value}}
    raise ModelDataError(
        f"unknown analysis {analysis!r} (primary, {', '.join(sensitivity_analyses(design))})",
        "analysis",
    )


def fitter_for(spec: ModelSpec, run: Mapping[str, Any]) -> Fitter:
    """A cached :class:`~palette_core.analysis.fit.Fitter` for ``spec`` and the run size ``run``."""
    key = (spec, tuple(sorted(run.items())))
    if key not in _FITTERS:
        _FITTERS[key] = Fitter(spec, **run)
    return _FITTERS[key]


def _arm_column(cells: pd.DataFrame) -> str:
    return "patients" if "patients" in cells.columns else "count"


def concurrent_plan(
    design: Design,
    cells: pd.DataFrame,
    open_eras: Mapping[str, Any] | None = None,
) -> list[tuple[tuple[str, ...], pd.DataFrame]]:
    """The fits of the concurrent-controls analysis: ``[(target arms, cells), ...]``.

    An arm's open eras are ``open_eras[arm]`` or, by default, the eras in which ``cells`` hold
    at least one of its patients. Within a trait, arms with the same open eras form a group;
    fit ``j`` restricts every trait that has a ``j``-th group to usual care and that group's
    arms in that group's eras, and keeps every other trait whole (so borrowing through the
    shared-effect groups is unchanged). An arm with no patients and no ``open_eras`` entry has
    no concurrent controls; it is targeted in the first fit with its trait whole.
    """
    n_col = _arm_column(cells)
    has = cells[cells[n_col] > 0]
    groups_by_trait: dict[str, list[tuple[frozenset[int], list[str]]]] = {}
    untargeted: list[str] = []
    for trait in design.trait_ids:
        groups: dict[frozenset[int], list[str]] = {}
        for arm in design.arms_of(trait)[1:]:
            if open_eras is not None and arm.id in open_eras:
                eras = frozenset(int(k) for k in open_eras[arm.id])
            else:
                eras = frozenset(int(k) for k in has.loc[has["arm"] == arm.id, "era"])
            if not eras:
                untargeted.append(arm.id)
                continue
            groups.setdefault(eras, []).append(arm.id)
        groups_by_trait[trait] = sorted(groups.items(), key=lambda g: (sorted(g[0]), g[1]))
    n_fits = max([len(g) for g in groups_by_trait.values()] + [1])
    plan = []
    for j in range(n_fits):
        keep = np.ones(len(cells), dtype=bool)
        targets: list[str] = list(untargeted) if j == 0 else []
        for trait, groups in groups_by_trait.items():
            if j >= len(groups):
                continue
            eras, arms = groups[j]
            targets.extend(arms)
            control = design.arms_of(trait)[0].id
            in_trait = (cells["trait"] == trait).to_numpy()
            ok = cells["arm"].isin([control, *arms]).to_numpy() & cells["era"].isin(eras).to_numpy()
            keep &= ~in_trait | ok
        plan.append((tuple(targets), cells[keep].reset_index(drop=True)))
    return plan


def _setup(
    design: Design, cells: pd.DataFrame, outcome: str, n_eras: int, analysis: str
) -> tuple[ModelSpec, Any, bool]:
    options = analysis_options(design, analysis)
    concurrent = options.pop("concurrent", False)
    priors = model_priors(design, options.pop("prior_scales", None))
    spec = model_spec(design, outcome, n_eras, **options)
    return spec, priors, concurrent


def _oriented(res: FitResult, spec: ModelSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The fit's adult and child draws ``[chain x draw, arm]`` (EXNEX mixed where it applies)."""
    post = {k: v.values for k, v in res.idata.posterior.data_vars.items()}
    # the EXNEX component draw gets its own stream, derived from the fit's seed
    key = jax.random.fold_in(jax.random.key(seed), EXNEX_STREAM)
    a, c = exnex_draws(post, spec, key)  # unchanged unless borrowing="exnex"
    return a.reshape(-1, len(spec.arms)), c.reshape(-1, len(spec.arms))


def fit_outcome(
    design: Design,
    cells: pd.DataFrame,
    outcome: str,
    n_eras: int,
    *,
    analysis: str = PRIMARY,
    run: Mapping[str, Any],
    seed: int,
    open_eras: Mapping[str, Any] | None = None,
) -> AnalysisFit:
    """Fit the analysis ``analysis`` of ``outcome`` to ``cells``; see the module docstring.

    ``run`` holds the :class:`~palette_core.analysis.fit.Fitter` settings (``num_warmup``,
    ``num_samples``, ``num_chains``, optionally ``target_accept_prob``, which
    :data:`RUN_OVERRIDES` may raise for an analysis); ``seed`` the NUTS seed.
    """
    spec, priors, concurrent = _setup(design, cells, outcome, n_eras, analysis)
    run = {**run, **RUN_OVERRIDES.get(analysis, {})}
    fitter = fitter_for(spec, run)
    if concurrent:
        plan = concurrent_plan(design, cells, open_eras)
    else:
        plan = [(spec.arms, cells)]
    draws = child = None
    results = []
    kept: tuple[Samples, ...] = ()
    for i, (targets, part) in enumerate(plan):
        data = model_data(design, part, spec)
        samples = fitter.sample(data, priors, seed + i)
        res = fitter.result(samples, data)
        a, c = _oriented(res, spec, seed + i)
        if draws is None:
            draws, child = a.copy(), c.copy()
        cols = [spec.arms.index(t) for t in targets]
        draws[:, cols], child[:, cols] = a[:, cols], c[:, cols]
        results.append(res)
        kept = (samples,) if len(plan) == 1 else ()
    assert draws is not None and child is not None
    return AnalysisFit(
        analysis, spec.outcome, spec.arms, draws, child, tuple(results), run, seed, 1, kept
    )


def escalated_runs(run: Mapping[str, Any], steps: Sequence[Any]) -> list[dict[str, Any]]:
    """The sampler settings of the pre-specified run, then of each escalation step in turn
    (``interim_analysis.yaml``, ``convergence.escalation``), each on top of the previous:
    ``num_warmup_factor`` multiplies the warm-up, ``target_accept_prob`` replaces the target."""
    runs = [dict(run)]
    for step in steps:
        nxt = dict(runs[-1])
        if step.num_warmup_factor is not None:
            nxt["num_warmup"] = int(nxt["num_warmup"]) * int(step.num_warmup_factor)
        if step.target_accept_prob is not None:
            nxt["target_accept_prob"] = float(step.target_accept_prob)
        runs.append(nxt)
    return runs


def fit_escalated(
    design: Design,
    cells: pd.DataFrame,
    outcome: str,
    n_eras: int,
    *,
    analysis: str = PRIMARY,
    run: Mapping[str, Any],
    seed: int,
    open_eras: Mapping[str, Any] | None = None,
    steps: Sequence[Any] | None = None,
) -> tuple[AnalysisFit, tuple[AnalysisFit, ...]]:
    """:func:`fit_outcome` with the settings of :func:`escalated_runs` in turn (``steps``,
    default the design's ``convergence.escalation``), same seed, until a fit passes the gates.

    Returns the fit used (the first that passed, else the last tried) and every fit tried, in
    order (for the diagnostics table).
    """
    if steps is None:
        steps = design.interim_analysis.convergence.escalation
    tried: list[AnalysisFit] = []
    for r in escalated_runs(run, steps):
        fit = fit_outcome(
            design, cells, outcome, n_eras, analysis=analysis, run=r, seed=seed, open_eras=open_eras
        )
        tried.append(fit)
        if fit.gates_passed:
            break
    return tried[-1], tuple(tried)


def add_chains(design: Design, cells: pd.DataFrame, fit: AnalysisFit, n_eras: int) -> AnalysisFit:
    """``fit`` with one more run of as many chains (same settings, new seeds from
    :data:`MORE_CHAINS_STREAM`), pooled with its chains and gated again.

    The compiled sampler of ``fit`` is reused. Only a single-fit analysis (not concurrent
    controls) can be extended: raises :class:`~palette_core.errors.ModelDataError` otherwise.
    """
    if len(fit.results) != 1 or not fit.samples:
        raise ModelDataError(
            f"more chains can be added to a single-fit analysis only, not {fit.analysis!r}",
            "analysis",
        )
    spec, priors, _ = _setup(design, cells, fit.outcome, n_eras, fit.analysis)
    fitter = fitter_for(spec, fit.run)
    data = model_data(design, cells, spec)
    key = jax.random.fold_in(jax.random.key(fit.seed), MORE_CHAINS_STREAM + fit.runs)
    samples = (*fit.samples, fitter.sample(data, priors, key))
    res = fitter.result(combine_samples(samples), data)
    draws, child = _oriented(res, spec, fit.seed)
    return replace(
        fit, draws=draws, child_draws=child, results=(res,), runs=fit.runs + 1, samples=samples
    )


def run_analysis(
    design: Design,
    cells_by_outcome: Mapping[str, pd.DataFrame],
    n_eras: int,
    analysis: str,
    run: Mapping[str, Any],
    seed: int,
    open_eras: Mapping[str, Any] | None = None,
) -> dict[str, AnalysisFit]:
    """:func:`fit_outcome` for every outcome of ``cells_by_outcome`` (seeds ``seed + 100 i``)."""
    return {
        oid: fit_outcome(
            design,
            cells,
            oid,
            n_eras,
            analysis=analysis,
            run=run,
            seed=seed + 100 * i,
            open_eras=open_eras,
        )
        for i, (oid, cells) in enumerate(cells_by_outcome.items())
    }


__all__ = [
    "MORE_CHAINS_STREAM",
    "PRIMARY",
    "RUN_OVERRIDES",
    "AnalysisFit",
    "add_chains",
    "analysis_options",
    "concurrent_plan",
    "escalated_runs",
    "fit_escalated",
    "fit_outcome",
    "fitter_for",
    "run_analysis",
    "sensitivity_analyses",
]
