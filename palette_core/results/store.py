"""Stored heavy results in ``data/derived`` (:func:`derived_root` of a design): prior
predictive, an example fit, SBC and the worked interim analysis.

``palette results rebuild`` (:func:`rebuild`) recomputes them; chapters read them with
:func:`load_result`, which refuses (:class:`~palette_core.errors.StaleResultError`) a result
whose manifest names another design hash than the current design's, so a chapter never shows
numbers of an old design silently. The tests run the same code at ``size="small"``.

Each result is a folder with ``manifest.json`` (:func:`palette_core.provenance.build_manifest`
plus the sizes, chains, draws and runtime) and CSV tables:

``prior_predictive/``
    ``prior_predictive.csv``: :func:`palette_core.analysis.checking.prior_predictive` for every outcome
    of the model (binary and ordinal).
``example_fit/``
    Both outcomes fitted, with every arm at the design's cap, to data simulated by
    :func:`palette_core.analysis.checking.simulate_cells` with the known odds ratios of
    ``data/scenarios/example_fit.yaml``: ``truth.csv`` (true ORs), ``quantities.csv``
    (:func:`palette_core.analysis.quantities.summarise`: the primary analysis, the no-borrowing analysis
    and its children-only effects, ``population="child"``), ``decisions.csv``
    (:func:`palette_core.analysis.decisions.decide`), ``diagnostics.csv`` (gates per outcome).
``sbc/``
    ``ranks.csv`` and ``uniformity.csv`` of :func:`palette_core.analysis.checking.sbc` (binary model).
``tipping_point/``
    The tipping-point analysis of missing outcomes (``proposed/tipping_point.yaml``) applied to
    the synthetic export (:func:`palette_core.results.tipping.tipping_result`): ``curves.csv``,
    ``tipping.csv``, ``missing.csv`` and ``nuts_check.csv``.

The example scenario is *illustrative* (invented effects and usual-care rates, not design
parameters); it is stored with the result.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np
import pandas as pd
import yaml

from palette_core.analysis import checking, covariates
from palette_core.analysis.decisions import decide, decision_outcomes, decision_params
from palette_core.analysis.fit import Fitter
from palette_core.analysis.models import model_data, model_priors, model_spec
from palette_core.analysis.quantities import summarise
from palette_core.analysis.sensitivity import PRIMARY, fit_escalated, fit_outcome
from palette_core.design.loader import Design, data_file, design_hash, load_design
from palette_core.design.locate import checkout_design_dir
from palette_core.errors import ModelDataError, StaleResultError, StoredResultError
from palette_core.exports.contract import read_export
from palette_core.exports.derive import covariate_table, derive_outcomes
from palette_core.exports.synthetic import EXPORT_FOLDER, true_odds_ratios
from palette_core.interim.analyse import SIZES as INTERIM_SIZES
from palette_core.interim.analyse import InterimAnalysis, analyse, load_analysis
from palette_core.interim.report import write_reports
from palette_core.provenance import (
    build_manifest,
    changed_design_files,
    design_file_hashes,
    file_sha256,
)
from palette_core.results.tipping import tipping_result
from palette_core.simulate import calibration as cal
from palette_core.simulate import engine, metrics
from palette_core.simulate import sample_size as ss
from palette_core.simulate.accuracy import rebuild_accuracy
from palette_core.simulate.adaptr import SCENARIO_FILE as ADAPTR_SCENARIOS
from palette_core.simulate.adaptr import adaptr_crosscheck
from palette_core.yamlio import read_yaml

#: The stored results, relative to the data root (:attr:`Design.data_root`).
DERIVED = "derived"
Size = Literal["full", "small"]

#: Run sizes. "full" fits in about 3 minutes on 2 CPU cores; "small" is for the tests.
SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "prior_draws": 4000,
        "example": {"num_warmup": 1000, "num_samples": 1000, "num_chains": 4},
        "sbc": {"num_warmup": 300, "num_samples": 250, "num_chains": 2},
        "sbc_sims": 100,
        "sbc_patients_per_cell": 40,
        "adaptr_trials": 20000,
        "adaptr_draws_trials": 1000,
        "po_replicates": 1000,
        # virtual PALETTE trials: per scenario (operating characteristics) and per run
        # (calibration); the registered design at its own size. The sizes of the stored
        # results (about an hour on 2 shared cores); the target is 1,000 (--trials 1000)
        "oc_trials": 40,
        "calibration_trials": 200,
        "simulation_chunk": 50,
        "simulation_settings": {},
    },
    "small": {
        "prior_draws": 200,
        "example": {"num_warmup": 100, "num_samples": 100, "num_chains": 2},
        "sbc": {"num_warmup": 50, "num_samples": 50, "num_chains": 2},
        "sbc_sims": 3,
        "sbc_patients_per_cell": 20,
        "adaptr_trials": 50,
        "adaptr_draws_trials": 0,
        "po_replicates": 50,
        "oc_trials": 2,
        "calibration_trials": 2,
        "simulation_chunk": 4,
        # a 400-patient trial (two looks) with a coarser posterior: the tests' size
        "simulation_settings": {
            "n_patients": 400,
            "pool_size": 3000,
            "n_draws": 200,
            "laplace_rule": [2, 2, 2],
        },
    },
}

#: The scenario file of adaptr's README design, relative to the data root.
ADAPTR_SCENARIO_FILE = ADAPTR_SCENARIOS
#: The illustrative truth of the example fit, relative to the data root.
EXAMPLE_SCENARIO_FILE = "scenarios/example_fit.yaml"


def derived_root(design: Design) -> Path:
    """The folder of the design's stored results: :data:`DERIVED` under its data root."""
    return data_file(design, DERIVED)


def load_example_scenario(source: Design | Path | str) -> dict[str, Any]:
    """The example fit's scenario: true ORs per arm, usual-care mortality, eras, NUTS target.

    ``source``: the design (the file is :data:`EXAMPLE_SCENARIO_FILE` under its data root) or
    the file's path. Raises :class:`~palette_core.errors.ModelDataError` naming the file and
    key when a key is missing or a value is not usable.
    """
    path = data_file(source, EXAMPLE_SCENARIO_FILE)
    sc = read_yaml(path, path.name)
    where = f"{path.name}"
    for key in ("true_or", "mortality", "n_eras", "target_accept_prob"):
        if key not in sc:
            raise ModelDataError(f"{where}: missing key", key)
    for arm, v in sc["true_or"].items():
        if not (isinstance(v, int | float) and v > 0):
            raise ModelDataError(f"{where}: true OR of {arm!r} must be > 0, not {v!r}", "true_or")
    for ag, m in sc["mortality"].items():
        if not (isinstance(m, int | float) and 0 < m < 1):
            raise ModelDataError(f"{where}: mortality of {ag!r} must lie in (0, 1)", "mortality")
    return sc


def _baseline(spec: Any, design: Design, mortality: dict[str, float]) -> dict[str, Any]:
    """Usual-care distribution per age group: the event rate (binary); for the ordinal outcome
    death with that probability and survivors' values weighted linearly towards the top."""
    if spec.outcome_type == "binary":
        return dict(mortality)
    death = design.outcome(spec.outcome).death_value
    cats = np.asarray(spec.categories, dtype=float)
    out = {}
    for ag, m in mortality.items():
        w = np.where(cats == death, 0.0, cats - cats.min() + 1.0)
        p = (1.0 - m) * w / w.sum()
        p[cats == death] = m
        out[ag] = p
    return out


def _write(
    folder: Path,
    tables: dict[str, pd.DataFrame],
    manifest: dict[str, Any],
    parquet: dict[str, pd.DataFrame] | None = None,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    for name, df in (parquet or {}).items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    names = [f"{n}.csv" for n in tables] + [f"{n}.parquet" for n in parquet or {}]
    manifest = {**manifest, "tables": sorted(names)}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")


def rebuild_prior_predictive(
    design: Design, out: Path, size: Size, seed: int, progress: Any = None
) -> None:
    t0 = time.perf_counter()
    n = SIZES[size]["prior_draws"]
    table = pd.concat(
        [checking.prior_predictive(design, o, n, seed) for o in decision_outcomes(design)],
        ignore_index=True,
    )
    extra = {"result": "prior_predictive", "size": size, "n_draws": n}
    runtime = {"runtime_s": round(time.perf_counter() - t0, 2)}
    _write(out, {"prior_predictive": table}, build_manifest(design, seed, **extra, **runtime))


def rebuild_example_fit(
    design: Design, out: Path, size: Size, seed: int, progress: Any = None
) -> None:
    """The primary fit of both outcomes and the no-borrowing fit (children-only effects)."""
    t0 = time.perf_counter()
    cfg = SIZES[size]
    sc = load_example_scenario(design)
    run = {**cfg["example"], "target_accept_prob": float(sc["target_accept_prob"])}
    log_or = {a: float(np.log(v)) for a, v in sc["true_or"].items()}
    n = design.decisions.cap_per_experimental_arm.value  # a look at the cap
    fits: dict[str, dict[str, Any]] = {PRIMARY: {}, "no_borrowing": {}}
    diags = []
    arms: tuple[str, ...] = ()
    for i, oid in enumerate(decision_outcomes(design)):
        spec = model_spec(design, oid, sc["n_eras"])
        arms = spec.arms
        cells = checking.simulate_cells(
            design,
            spec,
            log_or,
            n,
            seed + i,
            baseline=_baseline(spec, design, sc["mortality"]),
        )
        for analysis in fits:
            f = fit_outcome(
                design, cells, oid, sc["n_eras"], analysis=analysis, run=run, seed=seed + i
            )
            fits[analysis][oid] = f
            res = f.results[0]
            diags.append(
                {
                    "analysis": analysis,
                    "outcome": oid,
                    "gates_passed": res.gates_passed,
                    "failures": "; ".join(res.failures),
                    **res.diagnostics,
                }
            )
    truth = pd.DataFrame(
        {
            "arm": list(arms),
            "trait": [design.arm(a).trait for a in arms],
            "true_or": [float(sc["true_or"].get(a, 1.0)) for a in arms],
        }
    )
    nob = fits["no_borrowing"]
    chains = cfg["example"]["num_chains"]
    quantities = pd.concat(
        [
            summarise(
                {o: f.draws for o, f in fits[PRIMARY].items()}, list(arms), design, chains=chains
            ),
            summarise(
                {o: f.draws for o, f in nob.items()},
                list(arms),
                design,
                analysis="no_borrowing",
                chains=chains,
            ),
            summarise(
                {o: f.child_draws for o, f in nob.items()},
                list(arms),
                design,
                population="child",
                analysis="no_borrowing",
                chains=chains,
            ),
        ],
        ignore_index=True,
    )
    decisions = decide(quantities, {a: {"n_complete": n, "n_allocated": n} for a in arms}, design)
    extra = {
        "result": "example_fit",
        "size": size,
        "scenario": sc,
        "n_per_arm": n,
        "chains": cfg["example"]["num_chains"],
        "warmup": cfg["example"]["num_warmup"],
        "draws": cfg["example"]["num_samples"],
        "target_accept_prob": run["target_accept_prob"],
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    tables = {
        "truth": truth,
        "quantities": quantities,
        "decisions": decisions,
        "diagnostics": pd.DataFrame(diags),
    }
    _write(out, tables, build_manifest(design, seed, **extra))


def rebuild_sbc(
    design: Design,
    out: Path,
    size: Size,
    seed: int,
    progress: Any = None,
    *,
    outcome: str = "mortality28",
    result: str = "sbc",
    batch: int = 1,
) -> None:
    """Simulation-based calibration of the model of ``outcome``
    (:func:`palette_core.analysis.checking.sbc`), ``batch`` simulations per vmapped NUTS call."""
    t0 = time.perf_counter()
    cfg = SIZES[size]
    spec = model_spec(design, outcome, 1)
    fitter = Fitter(spec, **cfg["sbc"])
    res = checking.sbc(
        design,
        spec,
        cfg["sbc_sims"],
        fitter,
        seed,
        patients_per_cell=cfg["sbc_patients_per_cell"],
        batch=batch,
    )
    extra = {
        "result": result,
        "size": size,
        "outcome": spec.outcome,
        "n_sims": cfg["sbc_sims"],
        "patients_per_cell": cfg["sbc_patients_per_cell"],
        "chains": cfg["sbc"]["num_chains"],
        "warmup": cfg["sbc"]["num_warmup"],
        "draws": cfg["sbc"]["num_samples"],
        "batch": batch,
        "devices": [str(d) for d in jax.devices()],
        "matmul_precision": str(jax.config.jax_default_matmul_precision),
        "compilations": fitter.n_traces,
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    tables = {"ranks": res.ranks, "uniformity": res.uniformity}
    _write(out, tables, build_manifest(design, seed, **extra))


def rebuild_sbc_osfd(
    design: Design, out: Path, size: Size, seed: int, progress: Any = None
) -> None:
    """Simulation-based calibration of the primary (OSFD) model, at the sizes of ``sbc``, one
    simulation per NUTS call. Its fits are slow on 2 CPU cores: the stored result was fitted on
    a GPU, 100 simulations per vmapped call (``rebuild_sbc(..., batch=100)``; its manifest
    names the device)."""
    rebuild_sbc(design, out, size, seed, progress, outcome="osfd28", result="sbc_osfd")


#: The worked interim analysis of the synthetic export (chapter "Worked interim analysis").
WORKED_INTERIM = "worked_interim"


def rebuild_worked_interim(
    design: Design,
    out: Path,
    size: Size,
    seed: int,
    progress: Any = None,
    *,
    export: Path | None = None,
) -> None:
    """``palette analyse`` of the shipped synthetic export, with its reports, into ``out``.

    The full size runs every sensitivity analysis (about 10 minutes on 2 cores); the small
    size runs the primary analysis only. ``export`` analyses another export folder instead
    (the tests' small one); the stored result is always the shipped export's.
    """

    analyse(
        export if export is not None else data_file(design, EXPORT_FOLDER),
        design,
        seed=seed,
        size=size,
        out_dir=out,
        progress=progress,
        analyses=None if size == "full" else (),
    )
    write_reports(out, truth=true_odds_ratios(design), design=design)


def rebuild_po_check(
    design: Design, out: Path, size: Size, seed: int, progress: Any = None
) -> None:
    """Posterior-predictive check of proportional odds on the worked interim analysis.

    The worked interim's primary fit of the primary outcome is made again as
    :func:`palette_core.interim.analyse.analyse` makes it (its cells, eras and seed; the
    interim's run settings at ``size``, with the escalation), and :func:`palette_core.analysis.checking.posterior_predictive_po` compares each
    arm's cumulative odds ratios across cut-points with replicates from that posterior
    (``po_check.csv``; ``seed`` seeds the replicates). Needs the worked interim of the same
    design beside ``out`` (built first by :func:`rebuild`).
    """
    t0 = time.perf_counter()
    worked = load_result(WORKED_INTERIM, out.parent, design=design)
    outcome = decision_outcomes(design)[0]
    n_eras = int(worked.manifest["n_eras"])
    cells = worked.tables[f"cells_{outcome}"]
    fit_seed = int(worked.manifest["seed"])  # the interim's primary fit of its first outcome
    run = INTERIM_SIZES[size]["primary"]  # the interim's own run at this size
    fit, tried = fit_escalated(design, cells, outcome, n_eras, run=run, seed=fit_seed)
    spec = model_spec(design, outcome, n_eras)
    data = model_data(design, cells, spec)
    table = checking.posterior_predictive_po(
        spec, data, model_priors(design), fit.samples[0].draws, seed, SIZES[size]["po_replicates"]
    )
    extra = {
        "result": "po_check",
        "size": size,
        "source": f"worked_interim (design {worked.manifest['design_hash'][:12]})",
        "outcome": outcome,
        "n_eras": n_eras,
        "fit_seed": fit_seed,
        "run": dict(fit.run),
        "attempts": len(tried),
        "gates_passed": bool(fit.gates_passed),
        "failures": [f for r in fit.results for f in r.failures],
        "replicates": SIZES[size]["po_replicates"],
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    _write(out, {"po_check": table}, build_manifest(design, seed, **extra))


#: The covariate-adjusted sensitivity analysis of the worked interim's export.
COVARIATES = "covariate_sensitivity"


def rebuild_covariate_sensitivity(
    design: Design,
    out: Path,
    size: Size,
    seed: int,
    progress: Any = None,
    *,
    export: Path | None = None,
) -> None:
    """The covariate-adjusted sensitivity analysis (:mod:`palette_core.analysis.covariates`)
    of the worked interim's export, compared with its stored primary analysis.

    The export (default the shipped synthetic one; ``export``: another, the tests' tiny one)
    is read and derived as ``palette analyse`` does; each decision outcome's adjusted model is
    fitted with the interim's sensitivity-analysis run at ``size`` (seed ``seed + 100 i`` for
    outcome ``i``) and its decision probabilities and decisions are set beside those of the
    primary analysis of the worked interim beside ``out`` (its quantities and information
    tables), as the look's other sensitivity analyses are. Tables: ``probabilities``,
    ``decisions``, ``effects`` (severity effect, country SD, missing scores, gates per
    outcome), ``standardisation`` and ``missing`` (per arm).
    """
    t0 = time.perf_counter()
    worked = load_result(WORKED_INTERIM, out.parent, design=design)
    source = export if export is not None else data_file(design, EXPORT_FOLDER)
    derived = derive_outcomes(read_export(source, design), design)
    n_eras = int(worked.manifest["n_eras"])
    run = INTERIM_SIZES[size]["sensitivity"]
    fits = {}
    for i, o in enumerate(decision_outcomes(design)):
        patients = covariate_table(derived, o, design, n_eras)
        fits[o] = covariates.fit_adjusted(design, patients, o, n_eras, run=run, seed=seed + 100 * i)
    stored = worked.tables["quantities"]
    primary = stored[(stored["analysis"] == PRIMARY) & (stored["population"] == "all")]
    quantities = pd.concat(
        [primary, covariates.adjusted_quantities(design, fits)], ignore_index=True
    )
    information = worked.tables["information"][["arm", "n_complete", "n_allocated"]]
    probabilities, decisions = covariates.compare_quantities(design, quantities, information)
    effects = pd.DataFrame([covariates.effects_row(o, f) for o, f in fits.items()])
    first = next(iter(fits.values())).table
    extra = {
        "result": COVARIATES,
        "size": size,
        "source": f"worked_interim (design {worked.manifest['design_hash'][:12]})",
        "export": str(source.relative_to(design.data_root))
        if source.is_relative_to(design.data_root)
        else str(source),
        "n_eras": n_eras,
        "run": dict(run),
        "fit_seeds": {o: seed + 100 * i for i, o in enumerate(fits)},
        "gates_passed": bool(all(f.fit.gates_passed for f in fits.values())),
        "failures": {o: list(f.fit.failures) for o, f in fits.items()},
        "countries": list(first.countries),
        "adjusted_model": covariates.adjusted_settings(design).model_dump(mode="json"),
        "any_decision_changed": bool(decisions["changed"].any()),
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    tables = {
        "probabilities": probabilities,
        "decisions": decisions,
        "effects": effects,
        "standardisation": first.standardisation,
        "missing": first.missing,
    }
    _write(out, tables, build_manifest(design, seed, **extra))


def rebuild_adaptr_crosscheck(
    design: Design, out: Path, size: Size, seed: int, progress: Any = None
) -> None:
    """adaptr's published operating characteristics reproduced by the simulation engine
    (:func:`palette_core.simulate.adaptr.adaptr_crosscheck`): 20,000 trials per scenario at
    full size, with the posterior-method comparison on 1,000 paired trials."""
    full = size == "full"
    adaptr_crosscheck(
        SIZES[size]["adaptr_trials"],
        seed,
        out,
        scenario_file=data_file(design, ADAPTR_SCENARIO_FILE),
        scheduler=engine.PROCESSES if full else engine.IN_PROCESS,
        progress=progress is not None,
        draws_trials=SIZES[size]["adaptr_draws_trials"],
        manifest={"size": size},
    )


def rebuild_laplace_accuracy(
    design: Design, out: Path, size: Size, seed: int, progress: Any = None
) -> None:
    """The accuracy of the simulator's Laplace approximation against NUTS
    (:func:`palette_core.simulate.accuracy.rebuild_accuracy`, at the same size)."""
    rebuild_accuracy(design, out, size, seed)


def rebuild_tipping_point(
    design: Design, out: Path, size: Size, seed: int, progress: Any = None
) -> None:
    """The tipping-point analysis of missing outcomes (``proposed/tipping_point.yaml``) applied
    to the synthetic export (:func:`palette_core.results.tipping.tipping_result`)."""
    tables, manifest = tipping_result(design, size, seed)
    _write(out, tables, manifest)


#: The scenario files of the calibration and of the operating characteristics (data root).
CALIBRATION_SCENARIO_FILE = "scenarios/calibration.yaml"
OC_SCENARIO_FILE = "scenarios/operating_characteristics.yaml"
#: The calibration's scenarios: graduation disabled, then the design's thresholds.
CALIBRATION_RUN, CONFIRMATION_RUN = "null_graduation_disabled", "null_design_thresholds"
#: The operating characteristics' reference null and the sample size's check (one effective
#: arm per trait, fixed allocation).
OC_REFERENCE, OC_EFFECTIVE_FIXED = "global_null", "fixed_allocation_one_effective"


def _platform_scenarios(design: Design, relative: str, size: Size) -> engine.ScenarioSet:
    """A scenario file of the platform program at ``size``, for ``design``'s folder."""
    settings = dict(SIZES[size]["simulation_settings"])
    checkout = checkout_design_dir()
    if checkout is None or checkout.resolve() != design.root.resolve():
        settings["design"] = str(design.root)
    return engine.load_scenarios(data_file(design, relative), settings=settings)


def _simulation_sizes(size: Size, trials: int | None, key: str) -> tuple[int, int]:
    n = int(trials) if trials is not None else int(SIZES[size][key])
    return n, min(int(SIZES[size]["simulation_chunk"]), n)


def rebuild_calibration(
    design: Design,
    out: Path,
    size: Size,
    seed: int,
    progress: Any = None,
    trials: int | None = None,
) -> None:
    """The graduation threshold calibrated under the global null, then confirmed
    (:mod:`palette_core.simulate.calibration`): ``calibration.yaml``'s two runs of
    ``trials`` trials each (default :data:`SIZES`).

    Tables: ``curve_traits`` and ``curve_arms`` (false graduation rate against the threshold,
    with Monte Carlo errors), ``thresholds`` (per trait: the calibrated per-trait and common
    thresholds, the design's threshold and the confirmation run's rate), ``confirmation_arms``
    (per arm, the confirmation run's decisions), ``maxima`` (per trial and arm, the running
    maximum of Pr(OR > 1)).
    """
    t0 = time.perf_counter()
    sc = _platform_scenarios(design, CALIBRATION_SCENARIO_FILE, size)
    n, chunk = _simulation_sizes(size, trials, "calibration_trials")
    run = {"chunk_size": chunk, "scheduler": engine.IN_PROCESS, "keep_looks": True}
    show = progress is not None
    first = engine.run_scenarios(sc, n, seed, names=[CALIBRATION_RUN], progress=show, **run)
    maxima = cal.max_pr_benefit(first.looks, sc, CALIBRATION_RUN)
    curve_arms, curve_traits = cal.false_graduation_curve(maxima)
    target = float(design.decisions.calibration.max_false_graduation_per_arm)
    chosen = cal.calibrate(curve_traits, target)
    common = float(chosen["common_threshold"].iloc[0])
    if progress is not None:
        per_trait = ", ".join(
            f"{t} {c:.3f}"
            for t, c in zip(chosen["trait"], chosen["per_trait_threshold"], strict=True)
        )
        progress(f"calibrated: common {common:.3f}; per trait {per_trait}", 1, 2)
    sc2 = cal.with_graduation_threshold(sc, CONFIRMATION_RUN, common)
    second = engine.run_scenarios(sc2, n, seed + 1, names=[CONFIRMATION_RUN], progress=show, **run)
    table = metrics.arm_table(second.trials, sc2, second.looks)
    confirmed = cal.observed_false_graduation(table)
    design_threshold = float(design.decisions.graduation.threshold)
    thresholds = chosen.merge(confirmed, on="trait", how="left")
    thresholds.insert(1, "design_threshold", design_threshold)
    for field in ("rate", "mcse"):
        thresholds[f"calibration_{field}_at_design"] = [
            float(
                curve_traits.loc[
                    (curve_traits["trait"] == t)
                    & np.isclose(curve_traits["threshold"], design_threshold),
                    field,
                ].iloc[0]
            )
            for t in thresholds["trait"]
        ]
    extra = {
        "result": "calibration",
        "size": size,
        # what the calibration depends on: the design without the threshold it calibrates
        "calibration_input_hash": calibration_input_hash(design),
        "confirmation_threshold": common,
        "scenario_file": engine.simulation_manifest(sc, first)["scenario_file"],
        "scenario_sha256": sc.sha256,
        "settings": json.loads(sc.settings_json),
        "n_trials_per_run": n,
        "seeds": {CALIBRATION_RUN: seed, CONFIRMATION_RUN: seed + 1},
        "key_derivation": engine.KEY_DERIVATION,
        "target_false_graduation_per_arm": target,
        "runs": {CALIBRATION_RUN: first.facts, CONFIRMATION_RUN: second.facts},
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    tables = {
        "curve_traits": curve_traits,
        "curve_arms": curve_arms,
        "thresholds": thresholds,
        "confirmation_arms": metrics.arm_characteristics(table),
        "maxima": maxima,
    }
    _write(out, tables, build_manifest(design, seed, **extra))


def calibration_input_hash(design: Design) -> str:
    """The hash of what the calibration depends on: every design file but
    ``proposed/decisions.yaml``, and the numbers of that file other than the graduation
    threshold (the calibration overrides it: writing the calibrated value into the design
    does not make the calibration stale)."""
    params = decision_params(design)._asdict()
    params.pop("graduation_threshold")
    d = design.decisions
    numbers = {
        **params,
        "references": [d.graduation.or_reference, d.futility.or_reference, d.harm.or_reference],
        "outcomes": [d.graduation.outcome, d.futility.outcome, list(d.harm.outcomes)],
        "target": d.calibration.max_false_graduation_per_arm,
    }
    files = design_hash(design.root, design.registry_path, exclude={"proposed/decisions.yaml"})
    text = json.dumps({"files": files, "decisions": numbers}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def rebuild_operating_characteristics(
    design: Design,
    out: Path,
    size: Size,
    seed: int,
    progress: Any = None,
    trials: int | None = None,
) -> None:
    """Every scenario of ``operating_characteristics.yaml``, ``trials`` trials each (default
    :data:`SIZES`), summarised by :mod:`palette_core.simulate.metrics` and
    :mod:`palette_core.simulate.sample_size`.

    Tables: ``arms``, ``traits``, ``platform`` (the metrics, each with its Monte Carlo
    error), ``allocation`` (allocation probabilities over the looks), ``sample_size`` (per
    trait, at the design's graduation threshold), ``arm_trials`` (one row per scenario, trial
    and arm: the distributions) and ``trial_traits`` (patients per trait and trial).
    """

    t0 = time.perf_counter()
    sc = _platform_scenarios(design, OC_SCENARIO_FILE, size)
    n, chunk = _simulation_sizes(size, trials, "oc_trials")
    sim = engine.run_scenarios(
        sc,
        n,
        seed,
        chunk_size=chunk,
        scheduler=engine.IN_PROCESS,
        keep_looks=True,
        progress=progress is not None,
    )
    table = metrics.arm_table(sim.trials, sc, sim.looks)
    arms = metrics.arm_characteristics(table)
    traits = metrics.trait_characteristics(table)
    per_trait = ss.trial_traits(sim.trials, sc)
    effective = sc.scenario(OC_EFFECTIVE_FIXED).params["log_or"]
    odds_ratio = float(np.exp(np.max(np.asarray(effective, dtype=float))))
    threshold = float(design.decisions.graduation.threshold)
    sizes = ss.sample_size_table(
        sc,
        arms,
        traits,
        per_trait,
        reference=OC_REFERENCE,
        effective=OC_EFFECTIVE_FIXED,
        threshold=threshold,
        odds_ratio=odds_ratio,
    )
    extra = {
        "result": "operating_characteristics",
        "size": size,
        "scenario_file": engine.simulation_manifest(sc, sim)["scenario_file"],
        "scenario_sha256": sc.sha256,
        "settings": json.loads(sc.settings_json),
        "n_trials_per_scenario": n,
        "key_derivation": engine.KEY_DERIVATION,
        "graduation_threshold": threshold,
        "sample_size_odds_ratio": odds_ratio,
        "run": sim.facts,
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    tables = {
        "arms": arms,
        "traits": traits,
        "platform": metrics.platform_characteristics(table, sim.trials, sc),
        "allocation": metrics.allocation_over_time(sim.looks, sc),
        "sample_size": sizes,
    }
    parquet = {"arm_trials": table, "trial_traits": per_trial_frame(per_trait, sim.trials)}
    _write(out, tables, build_manifest(design, seed, **extra), parquet=parquet)


def per_trial_frame(per_trait: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Patients per trait and trial, with the trial's duration (days)."""
    days = trials[["scenario", "trial", "duration_days"]]
    return per_trait.merge(days, on=["scenario", "trial"], how="left", validate="many_to_one")


#: every stored result, in the order :func:`rebuild` makes them, with its builder
#: ``builder(design, out, size, seed, progress)``
BUILDERS: dict[str, Any] = {
    "prior_predictive": rebuild_prior_predictive,
    "example_fit": rebuild_example_fit,
    "sbc": rebuild_sbc,
    "sbc_osfd": rebuild_sbc_osfd,
    WORKED_INTERIM: rebuild_worked_interim,
    "adaptr_crosscheck": rebuild_adaptr_crosscheck,
    "laplace_accuracy": rebuild_laplace_accuracy,
    "tipping_point": rebuild_tipping_point,
    "po_check": rebuild_po_check,
    COVARIATES: rebuild_covariate_sensitivity,
    "calibration": rebuild_calibration,
    "operating_characteristics": rebuild_operating_characteristics,
}
#: the results whose size is a number of simulated trials (``rebuild(trials=N)``)
SIMULATIONS = ("calibration", "operating_characteristics")
RESULTS = tuple(BUILDERS)

_TIPPING_ONLY = "read by the tipping-point analysis only"
#: Design files a stored result does not read, with the reason: a change in one of them does
#: not make that result stale. Any other design file, including one added later, does.
NOT_READ: dict[str, dict[str, str]] = {
    "prior_predictive": {
        "proposed/tipping_point.yaml": _TIPPING_ONLY,
        "proposed/decisions.yaml": "the prior predictive is drawn from the model's priors; no "
        "decision is taken",
    },
    "sbc": {
        "proposed/tipping_point.yaml": _TIPPING_ONLY,
        "proposed/decisions.yaml": "simulation-based calibration checks the posterior's ranks; "
        "no decision is taken",
    },
    "sbc_osfd": {
        "proposed/tipping_point.yaml": _TIPPING_ONLY,
        "proposed/decisions.yaml": "simulation-based calibration checks the posterior's ranks; "
        "no decision is taken",
    },
    "example_fit": {"proposed/tipping_point.yaml": _TIPPING_ONLY},
    "laplace_accuracy": {"proposed/tipping_point.yaml": _TIPPING_ONLY},
    WORKED_INTERIM: {"proposed/tipping_point.yaml": _TIPPING_ONLY},
    "po_check": {"proposed/tipping_point.yaml": _TIPPING_ONLY},
    COVARIATES: {"proposed/tipping_point.yaml": _TIPPING_ONLY},
    "calibration": {"proposed/tipping_point.yaml": _TIPPING_ONLY},
    "operating_characteristics": {"proposed/tipping_point.yaml": _TIPPING_ONLY},
}


_SEVERITY_ONLY = (
    "a baseline severity score, read only by the covariate-adjusted sensitivity analysis "
    "(palette_core.analysis.covariates); the export's other columns are validated and derived "
    "as before"
)
#: Entries of a design file (YAML key paths) that a stored result does not read, with the
#: reason: a change confined to them (added, removed or edited) does not make that result
#: stale, as a change in prose does not (:func:`prose_only_change`). The covariate-adjusted
#: analysis reads them and so is not listed.
NOT_READ_ENTRIES: dict[str, dict[str, dict[tuple[str, ...], str]]] = {
    name: {
        "export_contract.yaml": {
            ("fields", "sofa_score"): _SEVERITY_ONLY,
            ("fields", "phoenix_score"): _SEVERITY_ONLY,
        }
    }
    for name in RESULTS
    if name not in ("adaptr_crosscheck", COVARIATES)
}
#: the calibration overrides the graduation threshold it calibrates (:func:`calibration_input_hash`)
NOT_READ_ENTRIES["calibration"]["proposed/decisions.yaml"] = {
    ("graduation", "threshold"): "the calibration overrides the threshold it calibrates"
}


def rebuild(
    design: Design | None = None,
    out_dir: Path | str | None = None,
    size: Size = "full",
    seed: int = 20260505,
    *,
    only: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    progress: Any = None,
    trials: int | None = None,
) -> dict[str, Path]:
    """Recompute the stored results into ``out_dir/<name>/``; return the folders.

    ``design`` defaults to :func:`~palette_core.design.loader.load_design`, ``out_dir`` to
    :func:`derived_root` of the design. ``only`` names the results to make (default: every
    one of :data:`RESULTS`), ``skip`` those to leave out; ``progress`` is passed to the long
    builders (the worked interim, the simulations). ``trials`` replaces the size's number of
    simulated trials (per scenario) of :data:`SIMULATIONS`.
    """
    if size not in SIZES:
        raise ModelDataError(f"size must be one of {', '.join(SIZES)}, not {size!r}", "size")
    if trials is not None and not (isinstance(trials, int) and trials >= 1):
        raise ModelDataError(f"trials must be a whole number >= 1, not {trials!r}", "trials")
    names = list(RESULTS if only is None else only)
    unknown = [n for n in [*names, *skip] if n not in BUILDERS]
    if unknown:
        raise ModelDataError(
            f"unknown result(s) {', '.join(unknown)} (known: {', '.join(RESULTS)})", "only"
        )
    design = load_design() if design is None else design
    root = derived_root(design) if out_dir is None else Path(out_dir)
    folders = {}
    for name in [n for n in RESULTS if n in names and n not in skip]:
        folders[name] = root / name
        if name in SIMULATIONS and trials is not None:
            BUILDERS[name](design, folders[name], size, seed, progress, trials=trials)
        else:
            BUILDERS[name](design, folders[name], size, seed, progress)
    return folders


@dataclass(frozen=True)
class StoredResult:
    """A stored result: its tables by name, its manifest, whether it is stale, and which
    design files changed since it was computed (``None`` when its manifest does not hash the
    design's files one by one, or the result was computed from a scenario file alone)."""

    name: str
    tables: dict[str, pd.DataFrame]
    manifest: dict[str, Any]
    stale: bool
    changed: tuple[str, ...] | None = None
    #: the changed design files whose change is in prose only (:func:`prose_only_change`)
    prose_changed: tuple[str, ...] = ()
    #: the changed design files whose change is confined to prose and to entries the result
    #: does not read (:data:`NOT_READ_ENTRIES`)
    unread_changed: tuple[str, ...] = ()


def load_result(
    name: str,
    root: Path | str | None = None,
    *,
    design: Design | None = None,
    allow_stale: bool = False,
) -> StoredResult:
    """Read the stored result ``name`` and check its design hash against ``design``.

    ``design`` defaults to :func:`~palette_core.design.loader.load_design`, ``root`` to
    :func:`derived_root` of the design.

    Raises :class:`~palette_core.errors.StaleResultError` when the result is stale (unless
    ``allow_stale``: then ``stale`` is True): a design file it reads changed since it was
    computed (its manifest's ``design_files`` against the design's; a file listed for it in
    :data:`NOT_READ` does not count), or, for a manifest without ``design_files``, the design
    hash differs from the current design's. Raises
    :class:`~palette_core.errors.StoredResultError` when the result is missing or unreadable.
    """
    design = load_design() if design is None else design
    folder = (derived_root(design) if root is None else Path(root)) / name
    path = folder / "manifest.json"
    if not path.is_file():
        raise StoredResultError(f"{path}: no stored result {name!r}: run `palette results rebuild`")
    try:
        manifest = json.loads(path.read_text())
        table_names = manifest["tables"]
        stored, current = _input_hashes(manifest, design)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise StoredResultError(f"{path}: unreadable manifest ({exc})") from None
    files = manifest.get("design_files")
    changed = None
    prose: tuple[str, ...] = ()
    unread: tuple[str, ...] = ()
    if isinstance(files, dict) and "design_hash" in manifest:
        # the calibration's own input hash leaves out the threshold it calibrates
        changed = tuple(changed_design_files(files, design_file_hashes(design.root)))
        ignored = NOT_READ.get(name, {})
        prose = tuple(
            f for f in changed if f not in ignored and prose_only_change(design, manifest, f)
        )
        unread = tuple(
            f
            for f in changed
            if f not in ignored
            and f not in prose
            and f in NOT_READ_ENTRIES.get(name, {})
            and prose_only_change(design, manifest, f, NOT_READ_ENTRIES[name][f])
        )
        stale = any(f not in ignored and f not in prose and f not in unread for f in changed)
        if "calibration_input_hash" in manifest:
            # its input hash leaves out the threshold; a change confined to prose and
            # entries it does not read (NOT_READ_ENTRIES) does not count either
            stale = stored != current and stale
    else:
        stale = stored != current
    if stale and not allow_stale:
        raise StaleResultError(name, str(stored), current)
    tables = {}
    for t in table_names:
        if not (folder / t).is_file():
            raise StoredResultError(f"{folder / t}: table listed in the manifest is missing")
        read = pd.read_parquet if t.endswith(".parquet") else pd.read_csv
        tables[t.removesuffix(".csv").removesuffix(".parquet")] = read(folder / t)
    return StoredResult(name, tables, manifest, stale, changed, prose, unread)


def load_worked_interim(
    root: Path | str | None = None, *, design: Design | None = None
) -> InterimAnalysis:
    """The stored worked interim analysis (:func:`palette_core.interim.analyse.load_analysis`),
    refused with :class:`~palette_core.errors.StaleResultError` when it is stale by the rules
    of :func:`load_result`: a change to a design file it reads, other than to prose or to
    entries it does not read (:data:`NOT_READ_ENTRIES`), makes it stale."""
    design = load_design() if design is None else design
    root = derived_root(design) if root is None else Path(root)
    load_result(WORKED_INTERIM, root, design=design)
    return load_analysis(root / WORKED_INTERIM, design=design, allow_stale=True)


#: Keys of the design's YAML that hold prose only: no computation reads them (they are shown
#: in the book), so an edit to them does not make a stored result stale.
PROSE_KEYS = frozenset({"rationale"})


def _without_prose(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_prose(v) for k, v in value.items() if k not in PROSE_KEYS}
    if isinstance(value, list):
        return [_without_prose(v) for v in value]
    return value


def _without_entries(value: Any, entries: Collection[tuple[str, ...]]) -> Any:
    """``value`` (parsed YAML) without the entries at the key paths ``entries``."""
    for path in entries:
        node = value
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return value


def prose_only_change(
    design: Design,
    manifest: dict[str, Any],
    relative: str,
    not_read: Collection[tuple[str, ...]] = (),
) -> bool:
    """Whether the design file ``relative`` differs from the version a result was computed
    with in its prose (:data:`PROSE_KEYS`) only, or in the entries ``not_read`` (key paths
    that the result does not read, :data:`NOT_READ_ENTRIES`).

    The stored version is read from git at the manifest's revision and must have the SHA-256
    the manifest records for it (so a revision with uncommitted changes is used only where that
    file was committed); both versions are parsed and compared without their prose. Anything
    that cannot be established (no git, no such file, not YAML) counts as a real change.
    """
    stored_sha = (manifest.get("design_files") or {}).get(relative)
    current = design.root / relative
    if stored_sha is None or not current.is_file() or not relative.endswith((".yaml", ".yml")):
        return False
    revision = str(manifest.get("git_revision", "")).removesuffix("+dirty")
    try:
        top = Path(_git(design.root, "rev-parse", "--show-toplevel").decode().strip())
        prefix = design.root.resolve().relative_to(top).as_posix()
        old = _git(top, "show", f"{revision}:{prefix}/{relative}")
        if hashlib.sha256(old).hexdigest() != stored_sha:
            return False
        before = yaml.safe_load(old)
        after = yaml.safe_load(current.read_bytes())
    except (OSError, subprocess.CalledProcessError, ValueError, yaml.YAMLError):
        return False
    before, after = _without_entries(before, not_read), _without_entries(after, not_read)
    return _without_prose(before) == _without_prose(after)


def backfill_design_files(
    name: str, root: Path | str | None = None, *, design: Design | None = None
) -> bool:
    """Add ``design_files`` to the manifest of a result stored before manifests hashed the
    design's files one by one, from the git history: the design folder at the manifest's git
    revision is read, and its files are written to the manifest only if they hash to the
    manifest's ``design_hash`` (so the backfill is exact or not done). Returns whether it was
    done; a manifest that already has them is left as it is (``True``).
    """
    design = load_design() if design is None else design
    path = (derived_root(design) if root is None else Path(root)) / name / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if "design_files" in manifest:
        return True
    if "design_hash" not in manifest:
        return False
    revision = str(manifest.get("git_revision", "")).removesuffix("+dirty")
    try:
        top = Path(_git(design.root, "rev-parse", "--show-toplevel").decode().strip())
        prefix = design.root.resolve().relative_to(top).as_posix()
        listed = _git(top, "ls-tree", "-r", "--name-only", revision, "--", prefix).decode().split()
        blobs = {p[len(prefix) + 1 :]: _git(top, "show", f"{revision}:{p}") for p in listed}
        trial = yaml.safe_load(blobs["trial.yaml"])
        registry = (Path(prefix) / trial["registry_file"]).as_posix()
        registry_blob = _git(top, "show", f"{revision}:{os.path.normpath(registry)}")
    except (OSError, subprocess.CalledProcessError, KeyError, TypeError, ValueError):
        return False
    h = hashlib.sha256()
    for rel in sorted(blobs):
        h.update(rel.encode() + b"\0")
        h.update(blobs[rel] + b"\0")
    h.update(b"registry\0" + registry_blob + b"\0")
    if h.hexdigest() != manifest["design_hash"]:
        return False
    manifest["design_files"] = {
        rel: hashlib.sha256(b).hexdigest() for rel, b in sorted(blobs.items())
    }
    manifest["design_files_source"] = (
        f"backfilled from git revision {revision}, checked against design_hash"
    )
    path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return True


def _git(cwd: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout


def _input_hashes(manifest: dict[str, Any], design: Design) -> tuple[str, str]:
    """``(stored, current)`` hash of the result's input: the design's, or, for a result
    computed from a scenario file alone (adaptr's design), that file's SHA-256."""
    if "calibration_input_hash" in manifest:
        return manifest["calibration_input_hash"], calibration_input_hash(design)
    if "design_hash" in manifest:
        return manifest["design_hash"], design.design_hash
    try:
        current = data_file(design, Path(manifest["scenario_file"]).relative_to("data"))
    except ValueError:  # a scenario file outside the data folder cannot be checked
        return manifest["scenario_sha256"], "not in the data folder"
    now = file_sha256(current) if current.is_file() else "missing"
    return manifest["scenario_sha256"], now


__all__ = [
    "DERIVED",
    "backfill_design_files",
    "prose_only_change",
    "EXAMPLE_SCENARIO_FILE",
    "derived_root",
    "WORKED_INTERIM",
    "COVARIATES",
    "rebuild_covariate_sensitivity",
    "rebuild_worked_interim",
    "load_worked_interim",
    "load_example_scenario",
    "RESULTS",
    "SIZES",
    "StoredResult",
    "load_result",
    "rebuild",
]
