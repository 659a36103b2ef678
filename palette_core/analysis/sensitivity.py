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
Fitters are cached per (model spec, run size), and prior values are traced arguments, so
the primary analysis, every prior-scale analysis and every fit of the concurrent-controls
analysis reuse one compiled sampler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import pandas as pd

from palette_core.analysis.fit import FitResult, Fitter
from palette_core.analysis.models import (
    ModelSpec,
    exnex_draws,
    model_data,
    model_priors,
    model_spec,
)
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
_FITTERS: dict[tuple[ModelSpec, tuple[tuple[str, Any], ...]], Fitter] = {}


@dataclass(frozen=True)
class AnalysisFit:
    """One analysis of one outcome.

    ``draws`` and ``child_draws`` are ``[n_draws, n_arms]`` benefit-oriented log odds ratios
    (adults, the reference stratum, and children) in the order of ``arms``; ``results`` are the
    fits behind them (one, or one per concurrent-controls fit) and ``gates_passed`` is True only
    if every one passed.
    """

    analysis: str
    outcome: str
    arms: tuple[str, ...]
    draws: np.ndarray
    child_draws: np.ndarray
    results: tuple[FitResult, ...]

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
    options = analysis_options(design, analysis)
    concurrent = options.pop("concurrent", False)
    priors = model_priors(design, options.pop("prior_scales", None))
    run = {**run, **RUN_OVERRIDES.get(analysis, {})}
    spec = model_spec(design, outcome, n_eras, **options)
    fitter = fitter_for(spec, run)
    if concurrent:
        plan = concurrent_plan(design, cells, open_eras)
    else:
        plan = [(spec.arms, cells)]
    draws = child = None
    results = []
    for i, (targets, part) in enumerate(plan):
        res = fitter.fit(model_data(design, part, spec), priors, seed=seed + i)
        post = {k: v.values for k, v in res.idata.posterior.data_vars.items()}
        # the EXNEX component draw gets its own stream, derived from the fit's seed
        key = jax.random.fold_in(jax.random.key(seed + i), EXNEX_STREAM)
        a, c = exnex_draws(post, spec, key)  # unchanged unless borrowing="exnex"
        a = a.reshape(-1, len(spec.arms))
        c = c.reshape(-1, len(spec.arms))
        if draws is None:
            draws, child = a.copy(), c.copy()
        cols = [spec.arms.index(t) for t in targets]
        draws[:, cols], child[:, cols] = a[:, cols], c[:, cols]
        results.append(res)
    return AnalysisFit(analysis, spec.outcome, spec.arms, draws, child, tuple(results))


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
    "PRIMARY",
    "RUN_OVERRIDES",
    "AnalysisFit",
    "analysis_options",
    "concurrent_plan",
    "fit_outcome",
    "fitter_for",
    "run_analysis",
    "sensitivity_analyses",
]
