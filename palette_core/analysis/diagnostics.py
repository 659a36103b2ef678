"""Convergence gates of a NUTS fit, and the ArviZ view of the draws (the boundary).

Gates (:data:`GATES`): R-hat < 1.01, bulk and tail ESS > 400, no divergent transition, on
every parameter except the era effect of era 0 (fixed at 0), eras beyond those in use (padding)
and EXNEX's conditional probabilities (:data:`NOT_GATED`). A :class:`FitResult` carries
``gates_passed`` and the failing diagnostics in words; :meth:`FitResult.require_gates` raises
:class:`~palette_core.errors.ConvergenceError`. The gates need long-enough runs (e.g. 4 chains
x 1,000 draws); tiny test runs fail them, and are meant to.

R-hat and ESS are ArviZ's rank-normalised versions (Vehtari et al. 2021), computed here on the
:class:`~palette_core.analysis.sampler.Samples` arrays of the pure sampler; nothing inside the
compiled sampler knows about ArviZ.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from palette_core.analysis.models import ModelSpec
from palette_core.analysis.sampler import Samples
from palette_core.errors import ConvergenceError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # ArviZ announces its refactor on import
    import arviz as az

GATES = {"max_rhat": 1.01, "min_ess_bulk": 400.0, "min_ess_tail": 400.0, "max_divergences": 0}
#: recorded but not gated: a conditional probability may sit at 0 or 1 in every draw
NOT_GATED = ("exnex_pr_ex",)


@dataclass(frozen=True)
class FitResult:
    """A fit: the ArviZ ``InferenceData``, its diagnostics and whether it passed the gates."""

    idata: Any
    gates_passed: bool
    failures: tuple[str, ...]
    diagnostics: dict[str, float] = field(default_factory=dict)

    def require_gates(self) -> FitResult:
        """Return self if the gates passed; otherwise raise ``ConvergenceError``."""
        if not self.gates_passed:
            raise ConvergenceError(self.failures)
        return self


def to_inference_data(
    spec: ModelSpec, samples: Samples, n_eras: int, countries: Sequence[str] = ()
) -> Any:
    """The draws of one fit as ArviZ ``InferenceData`` with named dims; eras beyond the
    ``n_eras`` in use (padding of the spec's capacity) are dropped. ``countries`` names the
    country effects of the covariate-adjusted model."""
    posterior = {k: np.asarray(v) for k, v in samples.draws.items()}
    if "era_effect" in posterior:
        posterior["era_effect"] = posterior["era_effect"][..., :n_eras]
    coords = {
        "arm": list(spec.arms),
        "trait": list(spec.traits),
        "group": list(spec.groups),
        "era": list(range(n_eras)),
        "age_group": list(spec.age_groups),
        "cut": list(spec.categories[:-1]),
        "exnex_arm": [spec.arms[i] for i in range(len(spec.arms)) if spec.arm_group[i] >= 0],
    }
    if countries:
        coords["country"] = list(countries)
    dims = {
        "log_or": ["arm"],
        "log_or_child": ["arm"],
        "trait_shift": ["trait"],
        "group_mean": ["group"],
        "era_effect": ["era"] if spec.eras == "shared" else ["trait", "era"],
        "cutpoints": ["age_group", "cut"],
        "log_or_nex": ["arm"],
        "log_or_child_nex": ["arm"],
        "exnex_pr_ex": ["exnex_arm"],
        "country_effect": ["country"],
    }
    idata = az.from_dict(
        posterior=posterior,
        sample_stats={
            "diverging": np.asarray(samples.diverging),
            "acceptance_rate": np.asarray(samples.accept_prob),
            "n_steps": np.asarray(samples.num_steps),
        },
        coords=coords,
        dims={k: v for k, v in dims.items() if k in posterior},
    )
    arm_trait = np.array([spec.traits[i] for i in spec.arm_trait])
    idata.posterior = idata.posterior.assign_coords(arm_trait=("arm", arm_trait))
    return idata


def _shown(value: float, gate_value: float, bad: Any) -> str:
    """``value`` with 3 significant digits, or more until the text read back fails the gate
    (``bad``) and differs from ``gate_value``: an R-hat of 1.0112 against a gate of 1.01 reads
    "1.011", never "1.01"."""
    for digits in range(3, 18):
        text = f"{value:.{digits}g}"
        if bad(float(text)) and (float(text) != gate_value or value == gate_value):
            return text
    return repr(value)


def gate(idata: Any, gates: dict[str, float] | None = None) -> FitResult:
    """Check an ``InferenceData`` against the gates; list every failing diagnostic.

    Era effects of era 0 (fixed at 0) are skipped. R-hat and ESS need at least 2 chains of 4
    draws; with fewer, the gates fail (never a silent pass).
    """
    g = {**GATES, **(gates or {})}
    post = idata.posterior
    failures: list[str] = []
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    n_div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    if n_div > g["max_divergences"]:
        failures.append(f"{n_div} divergent transitions (max {g['max_divergences']})")
    diagnostics: dict[str, float] = {"divergences": float(n_div)}
    if n_chains < 2 or n_draws < 4:
        failures.append(f"{n_chains} chains x {n_draws} draws: too few to compute R-hat and ESS")
        return FitResult(idata, False, tuple(failures), diagnostics)
    if "era" in post.dims:
        post = post.isel(era=slice(1, None))  # era 0 is fixed at 0: no diagnostics
    post = post.drop_vars([v for v in NOT_GATED if v in post.data_vars])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant draws give nan, caught below
        rhat = az.rhat(post)
        ess_bulk = az.ess(post, method="bulk")
        ess_tail = az.ess(post, method="tail")
    for name, ds, bad, label in (
        ("max_rhat", rhat, lambda v: not v < g["max_rhat"], "R-hat"),
        ("min_ess_bulk", ess_bulk, lambda v: not v > g["min_ess_bulk"], "bulk ESS"),
        ("min_ess_tail", ess_tail, lambda v: not v > g["min_ess_tail"], "tail ESS"),
    ):
        worst_name, worst_val = None, None
        for var, da in ds.data_vars.items():
            values = np.asarray(da).ravel()
            if values.size == 0:
                continue
            if np.any(np.isnan(values)):
                failures.append(f"{label} of {var} is not a number")
                continue
            v = float(values.max() if name == "max_rhat" else values.min())
            if worst_val is None or (v > worst_val if name == "max_rhat" else v < worst_val):
                worst_name, worst_val = var, v
            if bad(v):
                failures.append(f"{label} of {var} = {_shown(v, g[name], bad)} (gate {g[name]})")
        if worst_val is not None:
            diagnostics[name] = worst_val
            diagnostics[f"{name}_variable"] = worst_name  # type: ignore[assignment]
    return FitResult(idata, not failures, tuple(failures), diagnostics)


def indicator_mcse(indicators: Any) -> np.ndarray:
    """Monte Carlo standard error of the mean of indicator draws: ``[chain, draw, k]`` -> ``[k]``.

    ArviZ's ``mcse(method="mean")``, i.e. the indicator's posterior standard deviation over the
    square root of its (rank-normalised, multi-chain) effective sample size: the error of a
    posterior probability estimated as a share of draws. An indicator that is constant over
    every draw has MCSE 0; with fewer than 4 draws per chain the MCSE is unknown (NaN).
    """
    x = np.asarray(indicators, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"indicators must be [chain, draw, k], got shape {x.shape}")
    if x.shape[1] < 4:
        return np.full(x.shape[2], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = az.mcse(az.convert_to_dataset({"x": x}), method="mean")["x"].values
    return np.asarray(values, dtype=np.float64).reshape(x.shape[2])


__all__ = ["GATES", "NOT_GATED", "FitResult", "gate", "indicator_mcse", "to_inference_data"]
