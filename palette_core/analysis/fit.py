"""Fitting the joint model by NUTS at the boundary: one compiled sampler, many fits.

A :class:`Fitter` holds, for one :class:`~palette_core.analysis.models.ModelSpec` and one run
size, the pure sampler of :mod:`palette_core.analysis.sampler` compiled once with
``jax.jit`` (and, for batches, ``jax.jit(jax.vmap(...))``). It validates its settings once,
and its methods take arrays:

* :meth:`Fitter.sample` - one dataset, raw :class:`~palette_core.analysis.sampler.Samples`;
* :meth:`Fitter.sample_many` - a stack of datasets (:func:`~palette_core.analysis.sampler.
  stack_data`) in one vmapped call;
* :meth:`Fitter.fit` - one dataset, a gated :class:`~palette_core.analysis.diagnostics.
  FitResult` with ArviZ ``InferenceData`` (the only place ArviZ appears);
* :meth:`Fitter.result` and :func:`combine_samples` - the gated result of several runs pooled
  (more chains for the same data: how a decision probability too close to its threshold gets
  more draws).

Every call with new counts, a new number of eras in use (up to the spec's capacity) or new
prior values (:func:`~palette_core.analysis.models.model_priors`) reuses the compiled code:
``Fitter.n_traces`` counts compilations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from palette_core.analysis.diagnostics import FitResult, gate, to_inference_data
from palette_core.analysis.models import CellData, ModelSpec, Priors
from palette_core.analysis.sampler import NutsSettings, Samples, chain_keys, nuts_sampler
from palette_core.errors import ModelDataError


class Fitter:
    """NUTS for one :class:`ModelSpec` and run size, compiled once, called many times.

    >>> fitter = Fitter(spec, num_warmup=500, num_samples=1000, num_chains=4)  # doctest: +SKIP
    >>> result = fitter.fit(data, priors, seed=1)                              # doctest: +SKIP
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
        if not (
            isinstance(target_accept_prob, int | float)
            and not isinstance(target_accept_prob, bool)
            and 0 < target_accept_prob < 1
        ):
            raise ModelDataError("must lie in (0, 1)", "target_accept_prob")
        self.spec = spec
        self.settings = NutsSettings(
            num_warmup, num_samples, num_chains, float(target_accept_prob), max_tree_depth
        )
        self.n_traces = 0  # incremented each time a sampler is traced (compiled)
        pure = nuts_sampler(spec, self.settings)

        def counted(keys, data, priors):
            self.n_traces += 1  # a Python side effect: runs only when jit traces
            return pure(keys, data, priors)

        self._one = jax.jit(counted)
        self._many = jax.jit(jax.vmap(counted, in_axes=(0, 0, None)))

    @property
    def num_chains(self) -> int:
        return self.settings.num_chains

    @property
    def num_samples(self) -> int:
        return self.settings.num_samples

    def _check(self, data: CellData, batched: bool) -> CellData:
        grid = (len(self.spec.categories),)
        counts = np.shape(data.counts)
        if counts[-1:] != grid or len(counts) != 2 + batched:
            raise ModelDataError(
                f"counts of shape {counts} do not fit the spec ({self.spec.n_categories} "
                "categories" + (", one leading dataset axis)" if batched else ")"),
                "counts",
            )
        return CellData(*(jnp.asarray(x) for x in data))

    def sample(self, data: CellData, priors: Priors, key: Any) -> Samples:
        """Draws and per-draw diagnostics of one dataset (``key``: a JAX key or a seed)."""
        keys = chain_keys(key, self.num_chains)
        return jax.device_get(self._one(keys, self._check(data, False), priors))

    def sample_many(self, data: CellData, priors: Priors, keys: Any) -> Samples:
        """:meth:`sample` for a stack of datasets (leading axis) in one vmapped call; ``keys``
        holds one JAX key per dataset. Equal to separate calls with the same keys."""
        keys = jnp.stack([chain_keys(k, self.num_chains) for k in keys])
        return jax.device_get(self._many(keys, self._check(data, True), priors))

    def result(self, samples: Samples, data: CellData) -> FitResult:
        """The gated result of draws of this spec (e.g. several runs pooled by
        :func:`combine_samples`) for ``data``."""
        idata = to_inference_data(self.spec, samples, int(np.asarray(data.n_eras)))
        return gate(idata)

    def fit(self, data: CellData, priors: Priors, seed: Any = 0) -> FitResult:
        """Run NUTS on ``data`` (same shapes as the spec's grid); return a gated result."""
        return self.result(self.sample(data, priors, seed), data)


def combine_samples(parts: Sequence[Samples]) -> Samples:
    """Pool runs of one spec and size: their chains side by side (the chain axis is first).

    The gates of the pooled draws (:meth:`Fitter.result`) compare every chain with every other,
    so a run that explored another region than the others fails R-hat.
    """
    if not parts:
        raise ModelDataError("no runs to combine", "samples")
    return Samples(
        draws={k: np.concatenate([np.asarray(p.draws[k]) for p in parts]) for k in parts[0].draws},
        diverging=np.concatenate([np.asarray(p.diverging) for p in parts]),
        accept_prob=np.concatenate([np.asarray(p.accept_prob) for p in parts]),
        num_steps=np.concatenate([np.asarray(p.num_steps) for p in parts]),
    )


__all__ = ["Fitter", "combine_samples"]
