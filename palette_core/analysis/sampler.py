"""A pure NUTS sampler of the joint model: ``f(keys, data, priors) -> Samples``.

:func:`nuts_sampler` builds, for one static :class:`~palette_core.analysis.models.ModelSpec`
and one :class:`NutsSettings`, a pure function of arrays only: the chain keys, the
:class:`~palette_core.analysis.models.CellData` and the
:class:`~palette_core.analysis.models.Priors`. It returns the draws of every parameter and the
sampler's per-draw diagnostics as arrays (:class:`Samples`). Being pure, it can be
``jax.jit``-ed once and called for every look of a trial (eras are padded to the spec's
capacity), every prior-sensitivity analysis (priors are traced) and every simulated trial of a
design, and ``jax.vmap``-ed over datasets.

NUTS is NumPyro's own kernel (:func:`numpyro.infer.hmc.hmc`, with step-size and diagonal
mass-matrix adaptation during warm-up) driven by ``jax.lax.scan`` over iterations and
``jax.vmap`` over chains. ``numpyro.infer.MCMC.run`` is not used: it re-traces its sampling
loop on every call unless its progress bar is on, which a compiled sampler must not depend on.
Validation, ArviZ and the convergence gates stay outside, at the boundary
(:mod:`palette_core.analysis.fit`, :mod:`palette_core.analysis.diagnostics`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from numpyro.infer.hmc import hmc
from numpyro.infer.util import init_to_uniform, initialize_model

from palette_core.analysis.models import CellData, ModelSpec, Priors, joint_model

#: the deterministic and sample sites kept in the draws (the others are the non-centred
#: standard normals behind them)
KEPT_SITES = (
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
    "severity_effect",
    "country_sd",
    "country_effect",
)


class NutsSettings(NamedTuple):
    """The size and tuning of a NUTS run (static: part of the compiled sampler)."""

    num_warmup: int = 1000
    num_samples: int = 1000
    num_chains: int = 4
    target_accept_prob: float = 0.9
    max_tree_depth: int = 10


class Samples(NamedTuple):
    """The output of the pure sampler: every array has leading axes ``[chain, draw]``."""

    draws: dict[str, jax.Array]
    diverging: jax.Array
    accept_prob: jax.Array
    num_steps: jax.Array


def nuts_sampler(
    spec: ModelSpec, settings: NutsSettings, model_fn: Callable[..., None] = joint_model
) -> Callable[[jax.Array, Any, Any], Samples]:
    """The pure sampler ``f(keys, data, priors)`` for ``spec`` and ``settings``.

    ``keys`` is ``[num_chains]`` JAX keys (one per chain). Nothing is validated here: the
    boundary (:class:`~palette_core.analysis.fit.Fitter`) checks settings and data once.
    ``model_fn(spec, data, priors)`` is the model: the joint model, or the covariate-adjusted
    model of :mod:`palette_core.analysis.covariates` with its own data and priors pytrees.
    """
    model = partial(model_fn, spec)

    def sample(keys: jax.Array, data: CellData, priors: Priors) -> Samples:
        args = (data, priors)
        info = initialize_model(jax.random.key(0), model, model_args=args, dynamic_args=True)
        potential_gen, postprocess_gen = info.potential_fn, info.postprocess_fn
        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
        postprocess = postprocess_gen(*args)

        def one_chain(key: jax.Array):
            k_init, k_run = jax.random.split(key)
            start = initialize_model(
                k_init, model, model_args=args, init_strategy=init_to_uniform, dynamic_args=True
            )
            state = init_kernel(
                start.param_info,
                settings.num_warmup,
                target_accept_prob=settings.target_accept_prob,
                max_tree_depth=settings.max_tree_depth,
                model_args=args,
                rng_key=k_run,
            )

            def step(s, _):
                s = sample_kernel(s, model_args=args)
                return s, (s.z, s.diverging, s.accept_prob, s.num_steps)

            state, _ = jax.lax.scan(step, state, None, length=settings.num_warmup)
            _, (z, diverging, accept, steps) = jax.lax.scan(
                step, state, None, length=settings.num_samples
            )
            values = jax.vmap(postprocess)(z)
            kept = {k: v for k, v in values.items() if k in KEPT_SITES}
            return kept, diverging, accept, steps

        draws, diverging, accept, steps = jax.vmap(one_chain)(keys)
        return Samples(draws, diverging, accept, steps)

    return sample


def chain_keys(key: Any, num_chains: int) -> jax.Array:
    """``num_chains`` chain keys from one JAX key (or an integer seed)."""
    if not isinstance(key, jax.Array):
        key = jax.random.key(int(key))
    return jax.random.split(key, num_chains)


def stack_data(datasets: list[CellData]) -> CellData:
    """Stack datasets of one spec along a new leading axis, for a ``jax.vmap``-ed sampler."""
    return CellData(
        *(jnp.stack([jnp.asarray(x) for x in field]) for field in zip(*datasets, strict=True))
    )


__all__ = ["KEPT_SITES", "NutsSettings", "Samples", "chain_keys", "nuts_sampler", "stack_data"]
