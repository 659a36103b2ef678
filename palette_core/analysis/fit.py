"""Compile-once NUTS fits of the joint model, ArviZ output and convergence gates.

``numpyro.infer.MCMC.run`` recompiles its sampling loop on every call (see TOOLCHAIN.md), so a
:class:`Fitter` builds NUTS warmup and sampling from the functional API
(:func:`numpyro.infer.hmc.hmc` with a potential-function generator, ``jax.lax.scan`` over
iterations, ``jax.vmap`` over chains) inside one ``jax.jit``-ed function whose traced
arguments are the chain keys and the :class:`~palette_core.analysis.models.CellData` arrays. A Fitter is
built once per model spec and run size; every later fit with new counts of the same shapes
reuses the compiled code (``Fitter.n_traces`` counts compilations).

Gates (:data:`GATES`): R-hat < 1.01, bulk and tail ESS > 400, no divergent transition. A
:class:`FitResult` carries ``gates_passed`` and the failing diagnostics in words;
:meth:`FitResult.require_gates` raises :class:`~palette_core.errors.ConvergenceError`. The
gates need long-enough runs (e.g. 4 chains x 1,000 draws); the tests use tiny runs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc import hmc
from numpyro.infer.util import init_to_uniform, initialize_model

from palette_core.analysis.models import CellData, ModelSpec, joint_model
from palette_core.errors import ConvergenceError, ModelDataError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # ArviZ announces its refactor on import
    import arviz as az

GATES = {"max_rhat": 1.01, "min_ess_bulk": 400.0, "min_ess_tail": 400.0, "max_divergences": 0}
_VARIABLES = (
    "log_or",
    "log_or_child",
    "trait_shift",
    "era_effect",
    "era_step_sd",
    "child_deviation_sd",
    "between_trait_sd",
    "group_mean",
    "cutpoints",
    "log_or_nex",
    "log_or_child_nex",
    "exnex_pr_ex",
)
#: recorded but not gated: a conditional probability may sit at 0 or 1 in every draw
_NOT_GATED = ("exnex_pr_ex",)


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


class Fitter:
    """NUTS for one :class:`ModelSpec` and run size, compiled once, called many times.

    >>> fitter = Fitter(spec, num_warmup=500, num_samples=1000, num_chains=4)  # doctest: +SKIP
    >>> result = fitter.fit(data, seed=1)                                      # doctest: +SKIP
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        num_warmup: int = 1000,
        num_samples: int = 1000,
        num_chains: int = 4,
        target_accept_prob: float = 0.9,
        max_tree_depth: int = 10,
    ):
        for name, value, minimum in (
            ("num_warmup", num_warmup, 1),
            ("num_samples", num_samples, 1),
            ("num_chains", num_chains, 1),
            ("max_tree_depth", max_tree_depth, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ModelDataError(f"must be an integer >= {minimum}, not {value!r}", name)
        if not 0 < target_accept_prob < 1:
            raise ModelDataError("must lie in (0, 1)", "target_accept_prob")
        self.spec = spec
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.target_accept_prob = target_accept_prob
        self.max_tree_depth = max_tree_depth
        self.n_traces = 0  # incremented each time the sampler is traced (compiled)
        self._model = partial(joint_model, spec)
        self._gens: tuple[Any, Any] | None = None
        self._run = jax.jit(self._sample)

    # -- building blocks (traced inside jit) --------------------------------------------
    def _generators(self, data: CellData) -> tuple[Any, Any]:
        if self._gens is None:
            info = initialize_model(
                jax.random.PRNGKey(0), self._model, model_args=(data,), dynamic_args=True
            )
            self._gens = (info.potential_fn, info.postprocess_fn)
        return self._gens

    def _sample(self, keys: jnp.ndarray, data: CellData) -> tuple[dict, jnp.ndarray]:
        self.n_traces += 1  # a Python side effect: runs only when jit traces
        potential_gen, postprocess_gen = self._generators(data)
        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
        postprocess = postprocess_gen(data)

        def one_chain(key):
            k_init, k_run = jax.random.split(key)
            info = initialize_model(
                k_init,
                self._model,
                model_args=(data,),
                init_strategy=init_to_uniform,
                dynamic_args=True,
            )
            state = init_kernel(
                info.param_info,
                self.num_warmup,
                target_accept_prob=self.target_accept_prob,
                max_tree_depth=self.max_tree_depth,
                model_args=(data,),
                rng_key=k_run,
            )

            def step(s, _):
                s = sample_kernel(s, model_args=(data,))
                return s, (s.z, s.diverging)

            state, _ = jax.lax.scan(step, state, None, length=self.num_warmup)
            _, (z, diverging) = jax.lax.scan(step, state, None, length=self.num_samples)
            return jax.vmap(postprocess)(z), diverging

        return jax.vmap(one_chain)(keys)

    # -- public -----------------------------------------------------------------------
    def fit(self, data: CellData, seed: int = 0) -> FitResult:
        """Run NUTS on ``data`` (same shapes as the spec's grid); return a gated result."""
        arrays = CellData(*(jnp.asarray(x) for x in data))
        keys = jax.random.split(jax.random.PRNGKey(seed), self.num_chains)
        draws, diverging = self._run(keys, arrays)
        return self._result(jax.device_get(draws), np.asarray(diverging))

    def _result(self, draws: dict, diverging: np.ndarray) -> FitResult:
        spec = self.spec
        posterior = {k: np.asarray(v) for k, v in draws.items() if k in _VARIABLES}
        coords = {
            "arm": list(spec.arms),
            "trait": list(spec.traits),
            "group": list(spec.groups),
            "era": list(range(spec.n_eras)),
            "age_group": list(spec.age_groups),
            "cut": list(spec.categories[:-1]),
            "exnex_arm": [spec.arms[i] for i in range(len(spec.arms)) if spec.arm_group[i] >= 0],
        }
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
        }
        idata = az.from_dict(
            posterior=posterior,
            sample_stats={"diverging": diverging},
            coords=coords,
            dims={k: v for k, v in dims.items() if k in posterior},
        )
        arm_trait = np.array([spec.traits[i] for i in spec.arm_trait])
        idata.posterior = idata.posterior.assign_coords(arm_trait=("arm", arm_trait))
        return gate(idata)


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
    post = post.drop_vars([v for v in _NOT_GATED if v in post.data_vars])
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
                failures.append(f"{label} of {var} = {v:.3g} (gate {g[name]})")
        if worst_val is not None:
            diagnostics[name] = worst_val
            diagnostics[f"{name}_variable"] = worst_name  # type: ignore[assignment]
    return FitResult(idata, not failures, tuple(failures), diagnostics)
