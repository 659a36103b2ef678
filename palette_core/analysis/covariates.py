"""The covariate-adjusted sensitivity analysis: baseline severity and country.

``data/protocol/analysis_populations.yaml`` (``covariates``) proposes that the primary model
adjusts for the design variables only, and that the final analysis repeats it with (1) the
baseline severity score standardised within age stratum (SOFA for adults, Phoenix for
children) as a linear term and (2) a country random intercept, and compares the conclusions.
This module fits that model and makes the comparison.

Model
-----
For patient ``i`` in design cell ``(t, s, a, k)`` (:mod:`palette_core.analysis.models`) and
country ``c``::

    eta_i = [the primary model's linear predictor] + gamma * z_i + u[c]
    z_i   = (score_i - mean_s) / sd_s
    u[c]  = sigma_country * w[c],   w[c] ~ N(0, 1),   sigma_country ~ HalfNormal(scale)
    gamma ~ N(loc, scale)

with every prior of the primary model unchanged (hierarchical borrowing, shared eras) and the
priors of ``gamma`` and ``sigma_country`` from ``adjusted_model`` of the protocol file.
``mean_s`` and ``sd_s`` are the mean and standard deviation (``ddof=1``) of the scores of the
analysed patients of age stratum ``s``: one common ``gamma`` then means "per standard deviation
of the stratum's own score", which is what makes SOFA (0-24) and Phoenix (0-13) one term.
``gamma`` is on the linear predictor: positive moves patients to higher outcome categories (for
28-day mortality, higher severity = more deaths when ``gamma > 0``).

Missing severity (``missing_severity: stratum_mean``, proposed): a patient whose score is
missing keeps ``z = 0``, the mean of the stratum; the patients are all analysed, and the
number with a missing score is reported per arm (:attr:`CovariateTable.missing`). A stratum
with patients needs ``min_scored_per_stratum`` scored patients and a non-zero spread, else the
score cannot be standardised and :class:`~palette_core.errors.ModelDataError` is raised.

How the data enter the model
----------------------------
The primary model is fitted on counts per design cell (:class:`~palette_core.analysis.models.
CellData`); a patient-level covariate breaks that aggregation. Two ways were open: a
per-patient likelihood, or cells extended by the covariates. This module extends the cells:
a *unit* is a design cell crossed with the country and the patient's exact score. The linear
predictor depends on a patient only through these, so the counts per unit and category are
sufficient statistics and the multinomial likelihood of the units
(:class:`~palette_core.analysis.models.CellCounts`) equals the per-patient likelihood
exactly: nothing is binned. The scores are whole numbers (``integer: true`` in the export
contract), so there are at most as many units as patients, usually fewer, and the model is
the primary model's code plus two terms (:func:`adjusted_model`). The price is that the number
of units depends on the data, so the sampler is compiled for each dataset: acceptable for one
fit at the final analysis (the primary analysis keeps its fixed grid and one compiled sampler).

Boundary
--------
:func:`covariate_data` validates a tidy patient table (columns :data:`PATIENT_COLUMNS`, one row
per patient with a complete outcome; from an export,
:func:`palette_core.exports.derive.covariate_table`) and raises
:class:`~palette_core.errors.ModelDataError` naming the column and row of the first problem:
unknown trait, age group, arm or era, an empty country, a score that is not a whole number,
outside its field's range or of an age group without a severity field, an outcome value outside
its categories. :func:`compare_with_primary` fits both models on the same patients and returns,
per arm, the decision probabilities and decisions side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from palette_core.analysis.decisions import decide
from palette_core.analysis.diagnostics import gate, to_inference_data
from palette_core.analysis.models import (
    BINARY_COLUMNS,
    ORDINAL_COLUMNS,
    CellCounts,
    ModelSpec,
    Priors,
    category_log_probs,
    cell_grid,
    check_cell_labels,
    linear_predictor,
    model_priors,
    model_spec,
    sample_parameters,
)
from palette_core.analysis.quantities import summarise
from palette_core.analysis.sampler import chain_keys, nuts_sampler
from palette_core.analysis.sensitivity import PRIMARY, AnalysisFit, fit_outcome, fitter_for
from palette_core.design.loader import Design
from palette_core.design.protocol import AdjustedModel, load_protocol
from palette_core.errors import ModelDataError

#: the name of this analysis in quantities and decision tables
ADJUSTED = "covariate_adjusted"
#: the columns of the patient table (:func:`covariate_data`)
PATIENT_COLUMNS = ("trait", "age_group", "arm", "era", "country", "severity", "y")
#: the quantities compared, primary beside adjusted (:func:`compare_with_primary`)
COMPARED = ("pr_benefit", "pr_or_gt_ref", "pr_harm", "or_median")


class CovariateData(NamedTuple):
    """Arrays of the units (design cell x country x score), a JAX pytree. ``severity`` is the
    standardised score (0 where missing), ``country`` an index into
    :attr:`CovariateTable.countries`, ``counts`` ``[n_units, n_categories]``."""

    trait: np.ndarray
    stratum: np.ndarray
    arm: np.ndarray  # 0 = usual care, 1 + e = experimental arm e of spec.arms
    era: np.ndarray
    country: np.ndarray
    severity: np.ndarray
    counts: np.ndarray
    n_eras: np.ndarray


class AdjustedPriors(NamedTuple):
    """The primary model's priors and those of the two added terms (traced scalars)."""

    base: Priors
    severity_loc: Any
    severity_scale: Any
    country_scale: Any


@dataclass(frozen=True)
class CovariateTable:
    """Validated model data and its bookkeeping.

    ``standardisation``: one row per age group with patients, columns ``age_group,
    n_patients, n_scored, n_missing, mean, sd``. ``missing``: one row per arm with patients,
    columns ``arm, n_patients, n_missing`` (patients whose score was missing and set to the
    stratum's mean).
    """

    data: CovariateData
    countries: tuple[str, ...]
    standardisation: pd.DataFrame
    missing: pd.DataFrame
    n_patients: int


def adjusted_settings(design: Design) -> AdjustedModel:
    """``covariates.adjusted_model`` of ``data/protocol/analysis_populations.yaml``."""
    return load_protocol(design).populations.covariates.adjusted_model


def adjusted_priors(design: Design, settings: AdjustedModel | None = None) -> AdjustedPriors:
    """The priors of the adjusted model: the primary priors and the protocol's two."""
    s = adjusted_settings(design) if settings is None else settings
    f32 = jnp.float32
    return AdjustedPriors(
        model_priors(design),
        jnp.asarray(s.severity_effect.loc, f32),
        jnp.asarray(s.severity_effect.scale, f32),
        jnp.asarray(s.country_sd.scale, f32),
    )


def _severity_ranges(design: Design) -> dict[str, tuple[str, float, float]]:
    """Age group -> (export field, low, high) of its severity score."""
    out = {}
    for name, fld in design.export_contract.fields.items():
        if fld.severity_of is not None:
            assert fld.range is not None  # the contract requires a range of a float field
            out[fld.severity_of] = (name, float(fld.range[0]), float(fld.range[1]))
    return out


def _is_whole(v: Any) -> bool:
    if isinstance(v, bool | np.bool_):
        return False
    if isinstance(v, int | np.integer):
        return True
    return isinstance(v, float | np.floating) and bool(np.isfinite(v)) and float(v).is_integer()


def covariate_data(
    design: Design,
    patients: pd.DataFrame,
    spec: ModelSpec,
    settings: AdjustedModel | None = None,
) -> CovariateTable:
    """Validate a patient table and lay it out as units (see the module docstring).

    ``patients`` has the columns :data:`PATIENT_COLUMNS`: ``trait`` (assigned), ``age_group``,
    ``arm`` (ids), ``era`` (below ``spec.n_eras``), ``country`` (non-empty text),
    ``severity`` (the baseline score of the patient's age group, a whole number within the
    range of its export field; missing = ``<NA>``/NaN) and ``y`` (the outcome value, one of
    ``spec.categories``). Raises :class:`~palette_core.errors.ModelDataError` with the column
    and the row (position in ``patients``) of the first problem.
    """
    s = adjusted_settings(design) if settings is None else settings
    for col in PATIENT_COLUMNS:
        if col not in patients.columns:
            raise ModelDataError(f"missing column (needs {', '.join(PATIENT_COLUMNS)})", col)
    extra = [c for c in patients.columns if c not in PATIENT_COLUMNS]
    if extra:
        raise ModelDataError("unexpected column", extra[0])
    if len(patients) == 0:
        raise ModelDataError("no patient to analyse", "y")
    pts = patients.reset_index(drop=True)
    grid = cell_grid(design, spec.n_eras)
    index = {
        (r.trait, r.age_group, r.arm, r.era): i for i, r in enumerate(grid.itertuples(index=False))
    }
    ranges = _severity_ranges(design)
    traits, arm_ids = set(design.trait_ids), {a.id for a in design.arms}
    n = len(pts)
    cell = np.empty(n, dtype=np.int64)
    cat = np.empty(n, dtype=np.int64)
    score = np.full(n, np.nan)
    countries = pts["country"].to_numpy(dtype=object)
    for row, (t, ag, a, k, c, sev, y) in enumerate(
        zip(*(pts[col].to_numpy(dtype=object) for col in PATIENT_COLUMNS), strict=True)
    ):
        check_cell_labels(design, traits, arm_ids, t, ag, a, row)
        if not _is_whole(k) or not 0 <= int(k) < spec.n_eras:
            raise ModelDataError(
                f"era {k!r} is not a whole number in 0..{spec.n_eras - 1}", "era", row
            )
        key = (t, ag, a, int(k))
        if key not in index:
            raise ModelDataError(
                f"arm {a!r} of trait {t!r} does not admit age group {ag!r}", "age_group", row
            )
        cell[row] = index[key]
        if not isinstance(c, str) or not c.strip():
            raise ModelDataError(f"country {c!r} is not a non-empty text", "country", row)
        if not (sev is None or sev is pd.NA or (isinstance(sev, float) and np.isnan(sev))):
            if ag not in ranges:
                raise ModelDataError(
                    f"a severity score for age group {ag!r}, which no export field scores "
                    "(severity_of in export_contract.yaml)",
                    "severity",
                    row,
                )
            name, lo, hi = ranges[ag]
            if not _is_whole(sev) or not lo <= float(sev) <= hi:
                raise ModelDataError(
                    f"{sev!r} is not a whole number in [{lo:g}, {hi:g}] ({name})", "severity", row
                )
            score[row] = float(sev)
        if not _is_whole(y) or int(y) not in spec.categories:
            raise ModelDataError(
                f"outcome value {y!r} is not one of {spec.categories[0]}..{spec.categories[-1]}",
                "y",
                row,
            )
        cat[row] = int(y) - spec.categories[0]
    stratum = grid["age_group"].map(spec.age_groups.index).to_numpy(np.int32)
    z = np.zeros(n)
    rows = []
    groups = pts["age_group"].to_numpy(dtype=object)
    for ag in spec.age_groups:
        mine = groups == ag
        if not mine.any():
            continue
        scored = mine & ~np.isnan(score)
        values = score[scored]
        if len(values) < s.min_scored_per_stratum:
            raise ModelDataError(
                f"{len(values)} patient(s) of age group {ag!r} have a severity score; at least "
                f"{s.min_scored_per_stratum} are needed to standardise it "
                "(min_scored_per_stratum, analysis_populations.yaml)",
                "severity",
            )
        mean, sd = float(values.mean()), float(values.std(ddof=1))
        if not sd > 0:
            raise ModelDataError(
                f"every scored patient of age group {ag!r} has the score {values[0]:g}: "
                "its spread is 0 and it cannot be standardised",
                "severity",
            )
        z[scored] = (values - mean) / sd  # missing stays 0: the stratum's mean
        rows.append((ag, int(mine.sum()), len(values), int(mine.sum()) - len(values), mean, sd))
    standardisation = pd.DataFrame(
        rows, columns=["age_group", "n_patients", "n_scored", "n_missing", "mean", "sd"]
    )
    country_ids = tuple(sorted({str(c).strip() for c in countries}))
    country = np.array([country_ids.index(str(c).strip()) for c in countries], dtype=np.int64)
    # units: design cell x country x score (missing = its own unit, at z = 0)
    score_key = np.where(np.isnan(score), -1.0, score)
    units = pd.DataFrame({"cell": cell, "country": country, "score": score_key, "z": z})
    unit_id, uniques = pd.factorize(
        pd.MultiIndex.from_frame(units[["cell", "country", "score"]]), sort=True
    )
    n_units = len(uniques)
    counts = np.zeros((n_units, spec.n_categories), dtype=np.float32)
    np.add.at(counts, (unit_id, cat), 1.0)
    first = np.unique(unit_id, return_index=True)[1]
    ucell = cell[first]
    arm_code = {a: 1 + i for i, a in enumerate(spec.arms)}
    data = CovariateData(
        trait=grid["trait"].map(spec.traits.index).to_numpy(np.int32)[ucell],
        stratum=stratum[ucell],
        arm=np.array([arm_code.get(a, 0) for a in grid["arm"]], dtype=np.int32)[ucell],
        era=grid["era"].to_numpy(np.int32)[ucell],
        country=country[first].astype(np.int32),
        severity=z[first].astype(np.float32),
        counts=counts,
        n_eras=np.asarray(spec.n_eras, dtype=np.int32),
    )
    missing = (
        pd.DataFrame({"arm": pts["arm"].astype(str), "missing": np.isnan(score)})
        .groupby("arm", sort=False)["missing"]
        .agg(n_patients="size", n_missing="sum")
        .reset_index()
        .astype({"n_patients": "int64", "n_missing": "int64"})
    )
    return CovariateTable(data, country_ids, standardisation, missing, n)


def adjusted_model(
    spec: ModelSpec,
    data: CovariateData,
    priors: AdjustedPriors,
    totals: Any | None = None,
    *,
    n_countries: int,
) -> None:
    """The primary joint model plus ``gamma * z`` and a country intercept (module docstring).

    Without ``totals`` the unit counts are observed; with ``totals`` they are sampled (prior
    or posterior predictive), as in :func:`~palette_core.analysis.models.joint_model`.
    """
    params = sample_parameters(spec, priors.base, data.n_eras)
    gamma = numpyro.sample(
        "severity_effect", dist.Normal(priors.severity_loc, priors.severity_scale)
    )
    sd = numpyro.sample("country_sd", dist.HalfNormal(priors.country_scale))
    w = numpyro.sample("country_z", dist.Normal(0.0, 1.0).expand([n_countries]).to_event(1))
    u = numpyro.deterministic("country_effect", sd * w)
    eta = linear_predictor(spec, params, data.trait, data.stratum, data.arm, data.era)
    eta = eta + gamma * data.severity + u[data.country]
    log_p = category_log_probs(eta, params["cutpoints"][data.stratum])
    counts = jnp.asarray(data.counts)
    likelihood = CellCounts(log_p, jnp.sum(counts, axis=-1) if totals is None else totals)
    numpyro.sample("y", likelihood, obs=counts if totals is None else None)


_SAMPLERS: dict[tuple[Any, ...], Any] = {}


def _sampler(spec: ModelSpec, settings: Any, n_countries: int) -> Any:
    key = (spec, settings, n_countries)
    if key not in _SAMPLERS:
        model = partial(adjusted_model, n_countries=n_countries)
        _SAMPLERS[key] = jax.jit(nuts_sampler(spec, settings, model))
    return _SAMPLERS[key]


@dataclass(frozen=True)
class AdjustedFit:
    """The adjusted fit of one outcome: ``fit`` (draws oriented as the primary's, gates) and
    the validated ``table`` behind it."""

    fit: AnalysisFit
    table: CovariateTable

    def effect(self, name: str) -> tuple[float, float, float]:
        """Posterior median and 95 % interval of ``severity_effect`` or ``country_sd``."""
        x = self.fit.results[0].idata.posterior[name].values.ravel()
        lo, med, hi = np.quantile(x, [0.025, 0.5, 0.975])
        return float(med), float(lo), float(hi)


def fit_adjusted(
    design: Design,
    patients: pd.DataFrame,
    outcome: str,
    n_eras: int,
    *,
    run: Mapping[str, Any],
    seed: int,
    settings: AdjustedModel | None = None,
) -> AdjustedFit:
    """Fit the adjusted model of ``outcome`` to a patient table (:func:`covariate_data`).

    ``run`` holds the NUTS settings (as :func:`palette_core.analysis.sensitivity.fit_outcome`),
    validated the same way; ``seed`` the seed of the chains.
    """
    s = adjusted_settings(design) if settings is None else settings
    spec = model_spec(design, outcome, n_eras)  # the primary model's switches
    nuts = fitter_for(spec, run).settings  # validates the run size
    table = covariate_data(design, patients, spec, s)
    data = CovariateData(*(jnp.asarray(x) for x in table.data))
    sampler = _sampler(spec, nuts, len(table.countries))
    samples = jax.device_get(
        sampler(chain_keys(seed, nuts.num_chains), data, adjusted_priors(design, s))
    )
    res = gate(to_inference_data(spec, samples, n_eras, table.countries))
    post = res.idata.posterior
    draws = post["log_or"].values.reshape(-1, len(spec.arms))
    child = post["log_or_child"].values.reshape(-1, len(spec.arms))
    fit = AnalysisFit(
        ADJUSTED, spec.outcome, spec.arms, draws, child, (res,), dict(run), seed, 1, (samples,)
    )
    return AdjustedFit(fit, table)


def cell_table(patients: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The primary model's tidy cell counts of the same patients (the input of
    :func:`palette_core.analysis.models.model_data`): the patients without their covariates."""
    cell = ["trait", "age_group", "arm", "era"]
    tidy = patients[[*cell, "y"]].astype({"era": "int64", "y": "int64"})
    if spec.outcome_type == "binary":
        table = tidy.groupby(cell, sort=True)["y"].agg(events="sum", patients="size")
        return table.reset_index().astype({"events": "int64", "patients": "int64"})[
            list(BINARY_COLUMNS)
        ]
    table = tidy.groupby([*cell, "y"], sort=True).size().rename("count").reset_index()
    return table.rename(columns={"y": "category"}).astype({"count": "int64"})[list(ORDINAL_COLUMNS)]


@dataclass(frozen=True)
class CovariateComparison:
    """The adjusted analysis beside the primary one, on the same patients and run size.

    ``probabilities``: one row per outcome and arm, columns ``outcome, trait, arm`` and
    ``<q>_primary``, ``<q>_adjusted`` for each quantity ``q`` of :data:`COMPARED`.
    ``decisions``: one row per arm, columns ``trait, arm, primary, adjusted, changed``.
    ``effects``: one row per outcome, the posterior median and 95 % interval of the severity
    effect and of the country standard deviation, the patients, those with a missing score,
    the countries, and whether each fit passed the convergence gates. ``fits``: outcome ->
    (primary fit, adjusted fit).
    """

    probabilities: pd.DataFrame
    decisions: pd.DataFrame
    effects: pd.DataFrame
    quantities: pd.DataFrame
    fits: dict[str, tuple[AnalysisFit, AdjustedFit]] = field(repr=False)

    @property
    def any_change(self) -> bool:
        """Whether the adjustment changes the decision of any arm."""
        return bool(self.decisions["changed"].any())

    @property
    def gates_passed(self) -> bool:
        return bool(self.effects[["primary_gates_passed", "adjusted_gates_passed"]].all().all())


def effects_row(outcome: str, adjusted: AdjustedFit) -> dict[str, Any]:
    """One row of :attr:`CovariateComparison.effects` (without the primary fit's gates)."""
    g, g_lo, g_hi = adjusted.effect("severity_effect")
    c, c_lo, c_hi = adjusted.effect("country_sd")
    return {
        "outcome": outcome,
        "severity_effect": g,
        "severity_effect_low": g_lo,
        "severity_effect_high": g_hi,
        "country_sd": c,
        "country_sd_low": c_lo,
        "country_sd_high": c_hi,
        "n_patients": adjusted.table.n_patients,
        "n_missing_severity": int(adjusted.table.missing["n_missing"].sum()),
        "n_countries": len(adjusted.table.countries),
        "adjusted_gates_passed": adjusted.fit.gates_passed,
    }


def adjusted_quantities(
    design: Design, fits: Mapping[str, AdjustedFit], open_arms: Sequence[str] | None = None
) -> pd.DataFrame:
    """The quantities table (:func:`palette_core.analysis.quantities.summarise`) of the
    adjusted fits, analysis :data:`ADJUSTED`."""
    return pd.concat(
        [
            summarise(
                {oid: np.asarray(f.fit.draws, dtype=np.float64)},
                f.fit.arms,
                design,
                open_arms=open_arms,
                analysis=ADJUSTED,
                chains=f.fit.n_chains,
            )
            for oid, f in fits.items()
        ],
        ignore_index=True,
    )


def compare_quantities(
    design: Design, quantities: pd.DataFrame, information: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(probabilities, decisions)`` of :class:`CovariateComparison` from a quantities table
    holding the primary analysis and :data:`ADJUSTED` (population "all"), and ``information``
    (per arm ``n_complete`` and ``n_allocated``, as :func:`palette_core.analysis.decisions.
    decide` takes it). The primary rows may come from another run than the adjusted ones (the
    stored primary analysis of a look)."""
    q = quantities[quantities["population"] == "all"]
    keys = ["outcome", "trait", "arm"]
    by = {}
    for name, suffix in ((PRIMARY, "primary"), (ADJUSTED, "adjusted")):
        part = q[q["analysis"] == name]
        if part.empty:
            raise ModelDataError(f"no {name!r} rows in the quantities table", "analysis")
        by[suffix] = part.set_index(keys)[list(COMPARED)].add_suffix(f"_{suffix}")
    if not by["primary"].index.sort_values().equals(by["adjusted"].index.sort_values()):
        raise ModelDataError(
            "the primary and adjusted analyses cover different outcomes or arms", "arm"
        )
    probabilities = by["primary"].join(by["adjusted"]).reset_index()
    order = [*keys] + [f"{c}_{w}" for c in COMPARED for w in ("primary", "adjusted")]
    probabilities = probabilities[order]
    d = {name: decide(q, information, design, analysis=name) for name in (PRIMARY, ADJUSTED)}
    trait = {a.id: a.trait for a in design.arms}
    decisions = pd.DataFrame({"arm": list(d[PRIMARY]["arm"])})
    decisions.insert(0, "trait", decisions["arm"].map(trait))
    for name, col in ((PRIMARY, "primary"), (ADJUSTED, "adjusted")):
        decided = dict(zip(d[name]["arm"], d[name]["decision"], strict=True))
        decisions[col] = decisions["arm"].map(decided)
    decisions["changed"] = decisions["primary"] != decisions["adjusted"]
    return probabilities, decisions


def compare_with_primary(
    design: Design,
    patients_by_outcome: Mapping[str, pd.DataFrame],
    information: Any,
    n_eras: int,
    *,
    seed: int,
    run: Mapping[str, Any] | None = None,
    open_arms: Sequence[str] | None = None,
    settings: AdjustedModel | None = None,
) -> CovariateComparison:
    """Fit the primary and the adjusted model of each outcome to the same patients and compare
    each arm's decision probabilities and decision (:func:`compare_quantities`, with
    ``information``: per arm ``n_complete`` and ``n_allocated``).

    ``patients_by_outcome``: outcome -> patient table (:func:`covariate_data`). ``run``
    defaults to the protocol's ``adjusted_model.run``; both models get the same run and, for
    outcome ``i``, the seed ``seed + 100 i``. ``open_arms``: arms open to randomisation (for
    Pr(best)), default all.
    """
    s = adjusted_settings(design) if settings is None else settings
    run = dict(s.run if run is None else run)
    fits: dict[str, tuple[AnalysisFit, AdjustedFit]] = {}
    parts = []
    effects = []
    for i, (oid, pts) in enumerate(patients_by_outcome.items()):
        spec = model_spec(design, oid, n_eras)
        adjusted = fit_adjusted(design, pts, oid, n_eras, run=run, seed=seed + 100 * i, settings=s)
        cells = cell_table(pts.reset_index(drop=True), spec)
        primary = fit_outcome(design, cells, oid, n_eras, run=run, seed=seed + 100 * i)
        fits[oid] = (primary, adjusted)
        parts.append(
            summarise(
                {oid: np.asarray(primary.draws, dtype=np.float64)},
                spec.arms,
                design,
                open_arms=open_arms,
                analysis=PRIMARY,
                chains=primary.n_chains,
            )
        )
        effects.append({**effects_row(oid, adjusted), "primary_gates_passed": primary.gates_passed})
    q = pd.concat(
        [*parts, adjusted_quantities(design, {o: f[1] for o, f in fits.items()}, open_arms)],
        ignore_index=True,
    )
    probabilities, decisions = compare_quantities(design, q, information)
    return CovariateComparison(probabilities, decisions, pd.DataFrame(effects), q, fits)


__all__ = [
    "ADJUSTED",
    "COMPARED",
    "PATIENT_COLUMNS",
    "AdjustedFit",
    "AdjustedPriors",
    "CovariateComparison",
    "CovariateData",
    "CovariateTable",
    "adjusted_model",
    "adjusted_priors",
    "adjusted_quantities",
    "adjusted_settings",
    "cell_table",
    "compare_quantities",
    "compare_with_primary",
    "covariate_data",
    "effects_row",
    "fit_adjusted",
]
