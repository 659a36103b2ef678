"""Allocation rules within a trait: burn-in, response-adaptive allocation, fixed equal allocation.

The parameters come from ``data/design/proposed/allocation.yaml`` (all *proposed*: the registry
says only "randomly allocated"). The module has two layers, as numpyro and ArviZ do:

* **Pure array functions** (:func:`pr_best`, :func:`allocation_phase`,
  :func:`allocation_probabilities`, :func:`synthetic_posterior_draws`). JAX only, no Python
  control flow on values, no validation: they can be ``jax.jit``-ed and ``jax.vmap``-ed over
  many simulated trials. Arms of a trait sit on the last axis in design order
  (:meth:`Design.arms_of`): probability vectors are ``[1 + n_arms]`` with index 0 = usual
  care, experimental quantities (draws, Pr(best), the open mask) are ``[n_arms]``. Traits with
  fewer arms can be padded with closed arms to share one shape: a closed arm is inert.
* **Boundary functions** (:func:`allocation_params`, :func:`arm_mask`, :func:`trait_allocation`,
  :func:`probabilities_dict`, :func:`allocation_state`, :func:`validate_allocation_state`,
  :func:`example_trial`). They take the :class:`~palette_core.design.loader.Design`, arm ids and plain
  Python values, validate them once and raise :class:`~palette_core.errors.AllocationError`
  naming the trait, arm or argument at fault.

The rule
--------
Let ``K`` be the number of open experimental arms of the trait.

1. ``K = 0``: the trait is closed to randomisation. The probabilities are all zero and the
   caller must not randomise in it (a trait that is not randomising is simply absent from the
   allocation record of :func:`allocation_state`).
2. **Burn-in**: while usual care or any *open* experimental arm has fewer than
   ``burn_in_min_complete_per_arm`` complete outcomes, equal allocation ``1/(K+1)`` among usual
   care and the open arms. Burn-in is a function of the current counts and open arms, evaluated
   at every look, so an arm that opens late (Octaplas LG, a new pandemic arm) returns its trait
   to equal allocation until it, too, has the minimum (proposed; closed arms never hold a trait
   in burn-in).
3. ``K < rar_min_open_experimental``: fixed equal allocation ``1/(K+1)``.
4. **Response-adaptive** otherwise. With ``p_k`` = Pr(arm k is best among the open experimental
   arms), ``d_k = p_k ** damping_power`` (square root) and floor ``f``:

   * experimental share ``e_k = max(f, t * d_k)``,
   * usual-care share ``c = max(f, t * max_j d_j)``, i.e. usual care is weighted like the
     currently leading arm,
   * with the one scalar ``t >= 0`` for which ``c + sum_k e_k = 1``.

   Arms above the floor are exactly proportional to ``p_k ** damping_power``; arms whose
   proportional share would fall below the floor get exactly ``f``; and ``c = max_k e_k``.

Why this satisfies the rule *after* normalisation. Write ``e`` for the experimental shares and
``c`` for usual care, all summing to 1.

* ``c = max(1/(K+1), max_k e_k)`` holds **if and only if** ``c = max_k e_k``. If ``c = max_k
  e_k`` then ``c`` is the largest of ``K+1`` numbers summing to 1, so ``c >= 1/(K+1)``. If
  instead ``c = 1/(K+1) > max_k e_k``, the ``K`` experimental shares would sum to ``K/(K+1)``
  while each is below ``1/(K+1)``: impossible. So the ``1/(K+1)`` part of the rule never binds
  once probabilities sum to 1; it is implied by "usual care matches the largest arm".
  (Computing ``c`` first and renormalising afterwards, the naive reading, breaks both the floor
  and the control rule; this construction does not need a renormalisation step.)
* ``t`` exists and is unique (up to ties where nothing changes): ``g(t) = sum_i max(f, t u_i)``
  over the ``K+1`` weights ``u = (max_j d_j, d_1, ..., d_K)`` is continuous, non-decreasing,
  ``g(0) = (K+1) f <= 1`` (the design check ``floor x (experimental_max + 1) <= 1``) and
  ``g(t) -> inf``. Closed form: ``g(t) = max over subsets S of [f (K+1-|S|) + t sum_{i in S}
  u_i]`` (pick the larger term of each max independently), a maximum of increasing lines, so
  the smallest root is ``t* = min_S (1 - f (K+1-|S|)) / sum_S u``; for a given size ``m = |S|``
  the minimum is reached by the ``m`` largest weights. Hence ``t* = min_{m=1..K+1} (1 - f
  (K+1-m)) / (sum of the m largest u)``: a sort, a cumulative sum and a minimum, computed in
  one pass without iteration (tests check it against hand-computed vectors).
* Floors: ``e_k >= f`` and ``c >= f`` by construction. Closed arms are masked to exactly 0.

If the floor were infeasible (``(K+1) f > 1``, rejected by the design check and by
:func:`trait_allocation`) every share would sit at the floor and the final division by their sum
returns equal allocation; the pure function never returns NaN for ``K >= 1``.

Examples
--------
>>> import jax.numpy as jnp
>>> from palette_core.randomisation.allocation import AllocationParams, allocation_probabilities
>>> params = AllocationParams(20, 3, 0.5, 0.10)
>>> p = allocation_probabilities(jnp.array([0.97, 0.01, 0.01, 0.01]),
...                              jnp.array([True, True, True, True]), jnp.full(5, 50), params)
>>> [round(float(x), 4) for x in p]
[0.35, 0.35, 0.1, 0.1, 0.1]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from functools import partial
from numbers import Integral, Real
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from palette_core.design.loader import Design
from palette_core.errors import AllocationError, ConflictingArgumentsError, RecordError
from palette_core.randomisation.records import (
    STATE_SUM_TOLERANCE,
    STATE_VERSION,
    AllocationStateRecord,
)

#: The state string that makes an arm open to randomisation; every other state is not open.
OPEN = "open"
#: Codes returned by :func:`allocation_phase`, and their names (``PHASE_NAMES[code]``).
PHASE_CLOSED, PHASE_BURN_IN, PHASE_FIXED, PHASE_RAR = 0, 1, 2, 3
PHASE_NAMES = ("closed", "burn_in", "fixed_equal", "response_adaptive")
#: How far a float32 probability vector may be from summing to 1 before
#: :func:`probabilities_dict` refuses to renormalise it (float32 rounding is ~1e-7).
FLOAT32_SUM_TOLERANCE = 1e-5

_ALLOCATION_FILE = "proposed/allocation.yaml"


# ----------------------------------------------------------------------------- parameters
class AllocationParams(NamedTuple):
    """The numbers of ``proposed/allocation.yaml``, as a pytree the pure functions can trace.

    Being a ``NamedTuple`` it passes through ``jax.jit`` as traced leaves (a new value does not
    recompile) and can be broadcast (``in_axes=None``) or batched under ``jax.vmap``.
    """

    burn_in_min_complete_per_arm: int
    rar_min_open_experimental: int
    damping_power: float
    floor_per_open_arm: float


def allocation_params(design: Design) -> AllocationParams:
    """Read the allocation parameters from ``design.allocation`` (validated by ``load_design``)."""
    al = design.allocation
    # The schema admits only these values today; fail loudly if it ever admits others that this
    # module does not implement.
    if al.rar_quantity != "pr_best":
        raise ConflictingArgumentsError(
            _ALLOCATION_FILE, None, "rar_quantity", f"{al.rar_quantity!r} is not implemented"
        )
    if al.control_share != "max_equal_or_largest":
        raise ConflictingArgumentsError(
            _ALLOCATION_FILE, None, "control_share", f"{al.control_share!r} is not implemented"
        )
    return AllocationParams(
        burn_in_min_complete_per_arm=int(al.burn_in_min_complete_per_arm),
        rar_min_open_experimental=int(al.rar_min_open_experimental),
        damping_power=float(al.damping_power),
        floor_per_open_arm=float(al.floor_per_open_arm),
    )


# ----------------------------------------------------------------------------- pure functions
def _float(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def pr_best(draws: jax.Array, open_mask: jax.Array) -> jax.Array:
    """Pr(arm is best among the open experimental arms), from posterior draws.

    Parameters
    ----------
    draws
        ``[n_draws, n_arms]`` draws of an arm-effect quantity where larger is better (log odds
        ratios vs usual care, > 0 = benefit).
    open_mask
        ``[n_arms]`` bool, the open experimental arms.

    Returns
    -------
    ``[n_arms]``: the share of draws in which each open arm is the largest among the open arms;
    0 for closed arms; all zeros if no arm is open. Equal values are resolved deterministically
    in favour of the arm that comes first in design order (``argmax`` keeps the first).
    """
    draws = _float(draws)
    open_mask = jnp.asarray(open_mask, dtype=bool)
    masked = jnp.where(open_mask, draws, -jnp.inf)
    best = jnp.argmax(masked, axis=-1)
    share = jax.nn.one_hot(best, draws.shape[-1], dtype=draws.dtype).mean(axis=0)
    return jnp.where(open_mask, share, 0.0)


def allocation_phase(open_mask: jax.Array, n_complete: jax.Array, params: AllocationParams):
    """Which rule applies: ``PHASE_CLOSED``, ``PHASE_BURN_IN``, ``PHASE_FIXED`` or ``PHASE_RAR``.

    ``n_complete`` is ``[1 + n_arms]`` (index 0 = usual care): complete primary outcomes per arm.
    Burn-in looks at usual care and the open experimental arms only.
    """
    open_mask = jnp.asarray(open_mask, dtype=bool)
    n_open = jnp.sum(open_mask)
    in_play = jnp.concatenate([jnp.ones((1,), dtype=bool), open_mask])
    short = jnp.any(in_play & (jnp.asarray(n_complete) < params.burn_in_min_complete_per_arm))
    return jnp.where(
        n_open == 0,
        PHASE_CLOSED,
        jnp.where(
            short,
            PHASE_BURN_IN,
            jnp.where(n_open < params.rar_min_open_experimental, PHASE_FIXED, PHASE_RAR),
        ),
    )


def _floored_proportional(weights: jax.Array, mask: jax.Array, floor: Any) -> jax.Array:
    """``max(f, t * w_i)`` over the masked items, with the scalar ``t`` that makes them sum to 1.

    ``t = min_m (1 - f (n - m)) / (sum of the m largest weights)`` (see the module docstring).
    """
    n = jnp.sum(mask)
    w = jnp.where(mask, weights, 0.0)
    order = jnp.argsort(jnp.where(mask, -w, jnp.inf))  # masked items first, largest first
    cum = jnp.cumsum(w[order])
    m = jnp.arange(1, w.shape[-1] + 1)
    ok = (m <= n) & (cum > 0)
    t_m = (1.0 - floor * (n - m)) / jnp.where(ok, cum, 1.0)
    t = jnp.min(jnp.where(ok, t_m, jnp.inf))
    t = jnp.where(jnp.isfinite(t), jnp.maximum(t, 0.0), 0.0)
    shares = jnp.where(mask, jnp.maximum(floor, t * w), 0.0)
    total = jnp.sum(shares)
    return shares / jnp.where(total > 0, total, 1.0)


def _rar_probabilities(pr: jax.Array, open_mask: jax.Array, params: AllocationParams):
    d = jnp.where(open_mask, jnp.clip(pr, 0.0, 1.0) ** params.damping_power, 0.0)
    n_open = jnp.sum(open_mask)
    total = jnp.sum(d)
    # Pr(best) all zero cannot come from pr_best(); treat it as no information (equal weights).
    d = jnp.where(
        total > 0, d / jnp.where(total > 0, total, 1.0), open_mask / jnp.maximum(n_open, 1)
    )
    weights = jnp.concatenate([jnp.max(d, keepdims=True), d])  # usual care weighted as the leader
    mask = jnp.concatenate([jnp.ones((1,), dtype=bool), open_mask])
    return _floored_proportional(weights, mask, params.floor_per_open_arm)


def allocation_probabilities(
    pr_best: jax.Array, open_mask: jax.Array, n_complete: jax.Array, params: AllocationParams
) -> jax.Array:
    """Allocation probabilities of one trait: ``[1 + n_arms]``, index 0 = usual care.

    Parameters
    ----------
    pr_best
        ``[n_arms]`` Pr(best) of each experimental arm among the open ones (:func:`pr_best`);
        values of closed arms are ignored.
    open_mask
        ``[n_arms]`` bool, the open experimental arms.
    n_complete
        ``[1 + n_arms]`` complete outcomes per arm, index 0 = usual care.
    params
        :class:`AllocationParams` (:func:`allocation_params`).

    Returns
    -------
    Probabilities summing to 1 (closed arms exactly 0), or all zeros if no experimental arm is
    open (the trait is closed: do not randomise). See the module docstring for the rule.
    """
    pr = _float(pr_best)
    open_mask = jnp.asarray(open_mask, dtype=bool)
    phase = allocation_phase(open_mask, n_complete, params)
    mask = jnp.concatenate([jnp.ones((1,), dtype=bool), open_mask])
    equal = mask / jnp.sum(mask)
    probs = jnp.where(phase == PHASE_RAR, _rar_probabilities(pr, open_mask, params), equal)
    return jnp.where(phase == PHASE_CLOSED, 0.0, probs).astype(pr.dtype)


def synthetic_posterior_draws(
    key: jax.Array, successes: jax.Array, trials: jax.Array, n_draws: int
) -> jax.Array:
    """Conjugate posterior draws of log odds ratios vs usual care, for :func:`example_trial`.

    A binary outcome observed at once has an exact, fast posterior per arm, which is all the
    example of the allocation rule needs; at an interim look the allocation reads the joint
    model's draws instead (``palette analyse``).

    Each arm's probability of a *good* outcome has an independent Beta(1 + s, 1 + n - s)
    posterior (uniform prior); the log odds of a draw is ``log G_a - log G_b`` with independent
    gamma variables (``jax.random.loggamma``: exact, stable near 0 and 1, and faster under
    ``vmap`` on CPU than ``jax.random.beta``). Larger is better: log OR > 0 = benefit.

    Parameters
    ----------
    key
        A JAX PRNG key.
    successes, trials
        ``[1 + n_arms]`` counts of good outcomes and of complete outcomes, index 0 = usual care
        (the caller guarantees ``0 <= successes <= trials``).
    n_draws
        Number of draws; a shape, so static under ``jax.jit`` (``static_argnames="n_draws"``).

    Returns
    -------
    ``[n_draws, n_arms]`` log odds ratios of the experimental arms vs usual care.
    """
    s = _float(successes)
    n = _float(trials)
    m = s.shape[-1]
    # one loggamma call for both gamma variables: its rejection sampler dominates compile time
    shape_params = jnp.concatenate([1.0 + s, 1.0 + n - s])
    log_g = jax.random.loggamma(key, shape_params, (n_draws, 2 * m), s.dtype)
    log_odds = log_g[:, :m] - log_g[:, m:]
    return log_odds[:, 1:] - log_odds[:, :1]


# jitted once per shape for the boundary functions below
_pr_best_jit = jax.jit(pr_best)
_phase_jit = jax.jit(allocation_phase)
_probabilities_jit = jax.jit(allocation_probabilities)


# ----------------------------------------------------------------------------- boundary
class TraitArms(NamedTuple):
    """The arms of one trait in design order, and which experimental arms are open."""

    trait_id: str
    control: str
    experimental: tuple[str, ...]
    open_mask: np.ndarray  # [n_arms] bool, aligned with ``experimental``

    @property
    def arm_ids(self) -> tuple[str, ...]:
        """Usual care then the experimental arms: the order of probability vectors."""
        return (self.control, *self.experimental)


def initial_states(design: Design) -> dict[str, str]:
    """``arm_id -> availability.initial_state`` of every arm (``"open"`` or ``"planned"``)."""
    return {a.id: a.availability.initial_state for a in design.arms}


def _trait(design: Design, trait_id: Any) -> str:
    if not isinstance(trait_id, str) or trait_id not in design.trait_ids:
        raise AllocationError(
            f"trait {trait_id!r}", f"not in traits.yaml; known: {', '.join(design.trait_ids)}"
        )
    return trait_id


def arm_mask(design: Design, trait_id: str, states: Mapping[str, str]) -> TraitArms:
    """The experimental arms of a trait in design order, and their open mask.

    Parameters
    ----------
    states
        ``arm_id -> state`` (from the arm lifecycle, or :func:`initial_states`). It must give a
        state to every experimental arm of the trait and may name arms of other traits (a whole
        trial's mapping can be passed). Only the state ``"open"`` is open. If usual care is named
        it must be open while any experimental arm is.
    """
    _trait(design, trait_id)
    if not isinstance(states, Mapping):
        raise AllocationError(
            "argument 'states'", f"expected a mapping arm_id -> state, got {type(states).__name__}"
        )
    known = {a.id for a in design.arms}
    for arm_id, state in states.items():
        if arm_id not in known:
            raise AllocationError(f"arm {arm_id!r}", "not in arms.yaml")
        if not isinstance(state, str) or not state:
            raise AllocationError(
                f"arm {arm_id!r}", f"state must be a non-empty string, got {state!r}"
            )
    control = design.control_of(trait_id).id
    experimental = tuple(a.id for a in design.experimental_arms(trait_id))
    missing = [a for a in experimental if a not in states]
    if missing:
        raise AllocationError(
            f"trait {trait_id!r}", f"no state given for arm(s) {', '.join(missing)}"
        )
    mask = np.array([states[a] == OPEN for a in experimental], dtype=bool)
    if control in states and states[control] != OPEN and mask.any():
        raise AllocationError(
            f"trait {trait_id!r}, arm {control!r}",
            f"usual care is {states[control]!r} while experimental arms are open",
        )
    return TraitArms(trait_id, control, experimental, mask)


def arm_mask_from_state(platform_state: Any, trait_id: str) -> TraitArms:
    """Like :func:`arm_mask`, from a :class:`palette_core.randomisation.lifecycle.PlatformState`.

    Uses the state's own arm list, so arms that joined by amendment
    (:func:`palette_core.randomisation.lifecycle.add_arm`) are allocated too, after the arms of
    ``arms.yaml``.
    """
    arms = platform_state.arms_of(trait_id)
    control = next(a.id for a in arms if a.role == "control")
    experimental = tuple(a.id for a in arms if a.role == "experimental")
    mask = np.array([a.state == OPEN for a in arms if a.role == "experimental"], dtype=bool)
    return TraitArms(trait_id, control, experimental, mask)


class TraitAllocation(NamedTuple):
    """Result of :func:`trait_allocation`: what the restricted log records for one trait."""

    trait_id: str
    phase: str  # one of PHASE_NAMES
    probabilities: dict[str, float]  # arm_id -> probability (all zeros if the trait is closed)
    pr_best: dict[str, float]  # experimental arm_id -> Pr(best among open arms)


def _counts(arms: TraitArms, value: Any, name: str) -> np.ndarray:
    ids = arms.arm_ids
    if isinstance(value, Mapping):
        for arm_id in value:
            if arm_id not in ids:
                raise AllocationError(
                    f"argument {name!r}, arm {arm_id!r}", f"not an arm of trait {arms.trait_id!r}"
                )
        needed = [arms.control] + [
            a for a, o in zip(arms.experimental, arms.open_mask, strict=True) if o
        ]
        missing = [a for a in needed if a not in value]
        if missing:
            raise AllocationError(f"argument {name!r}", f"no count for arm(s) {', '.join(missing)}")
        items = [value.get(a, 0) for a in ids]
    else:
        items = list(value)
        if len(items) != len(ids):
            raise AllocationError(
                f"argument {name!r}",
                f"expected {len(ids)} counts (usual care then {', '.join(arms.experimental)}), got {len(items)}",
            )
    for arm_id, x in zip(ids, items, strict=True):
        if isinstance(x, bool) or not isinstance(x, Integral | np.integer) or x < 0:
            raise AllocationError(
                f"argument {name!r}, arm {arm_id!r}", f"must be an integer >= 0, got {x!r}"
            )
    return np.asarray(items, dtype=np.int32)


def trait_allocation(
    design: Design,
    trait_id: str,
    states: Mapping[str, str],
    draws: Any,
    n_complete: Mapping[str, int] | Sequence[int],
    params: AllocationParams | None = None,
) -> TraitAllocation:
    """Validated allocation of one trait at a look, from posterior draws.

    Parameters
    ----------
    draws
        ``[n_draws, n_arms]`` log odds ratios vs usual care of the experimental arms, in design
        order (:attr:`TraitArms.experimental`). Columns of arms that are not open are ignored
        (they may be NaN); open columns must be finite.
    n_complete
        Complete outcomes per arm: a mapping (usual care and every open arm required) or a
        sequence in :attr:`TraitArms.arm_ids` order.
    params
        Defaults to :func:`allocation_params` of ``design``.
    """
    arms = arm_mask(design, trait_id, states)
    params = allocation_params(design) if params is None else params
    x = np.asarray(draws)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise AllocationError("argument 'draws'", f"expected numbers, got dtype {x.dtype}")
    n_arms = len(arms.experimental)
    if x.ndim != 2 or x.shape[1] != n_arms or x.shape[0] < 1:
        raise AllocationError(
            "argument 'draws'",
            f"expected shape [n_draws >= 1, {n_arms}] for trait {trait_id!r}, got {list(x.shape)}",
        )
    if not np.isfinite(x[:, arms.open_mask]).all():
        raise AllocationError("argument 'draws'", "non-finite draws for an open arm")
    counts = _counts(arms, n_complete, "n_complete")
    k = int(arms.open_mask.sum())
    if k and (k + 1) * params.floor_per_open_arm > 1 + 1e-12:
        raise AllocationError(
            f"trait {trait_id!r}",
            f"floor {params.floor_per_open_arm} x {k + 1} arms exceeds 1 ({_ALLOCATION_FILE})",
        )
    mask = jnp.asarray(arms.open_mask)
    pb = _pr_best_jit(jnp.asarray(x), mask)
    probs = _probabilities_jit(pb, mask, jnp.asarray(counts), params)
    phase = PHASE_NAMES[int(_phase_jit(mask, jnp.asarray(counts), params))]
    probabilities = (
        probabilities_dict(design, trait_id, probs) if k else dict.fromkeys(arms.arm_ids, 0.0)
    )
    return TraitAllocation(
        trait_id,
        phase,
        probabilities,
        {a: float(p) for a, p in zip(arms.experimental, pb, strict=True)},
    )


def probabilities_dict(
    design: Design, trait_id: str, probabilities: Any, tolerance: float = FLOAT32_SUM_TOLERANCE
) -> dict[str, float]:
    """A ``[1 + n_arms]`` probability vector as ``{arm_id: float}`` summing to 1 in float64.

    The vector (usual care first, design order) is checked (finite, >= 0, sum within
    ``tolerance`` of 1: float32 rounding, not a different allocation) and divided by its sum in
    float64, so the result meets the 1e-9 check of :func:`allocation_state`.
    """
    _trait(design, trait_id)
    ids = tuple(a.id for a in design.arms_of(trait_id))
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape != (len(ids),):
        raise AllocationError(
            f"trait {trait_id!r}",
            f"expected {len(ids)} probabilities ({', '.join(ids)}), got shape {list(p.shape)}",
        )
    if not np.isfinite(p).all() or (p < 0).any():
        raise AllocationError(
            f"trait {trait_id!r}", f"probabilities must be finite and >= 0: {p.tolist()}"
        )
    total = float(p.sum())
    if abs(total - 1.0) > tolerance:
        raise AllocationError(
            f"trait {trait_id!r}", f"probabilities sum to {total!r}, not 1 (tolerance {tolerance})"
        )
    return {a: float(x) for a, x in zip(ids, p / total, strict=True)}


# ----------------------------------------------------------------------------- the record
def _where(loc: tuple[str | int, ...]) -> str:
    """``("traits", "mals", "mals_anakinra")`` -> ``"allocation state, trait 'mals', arm ..."``."""
    where = "allocation state"
    if loc[:1] == ("traits",) and len(loc) >= 2:
        where += f", trait {loc[1]!r}"
        if len(loc) >= 3:
            where += f", arm {loc[2]!r}"
    elif loc:
        where += f", field {loc[0]!r}"
    return where


def validate_allocation_state(design: Design, state: Any) -> dict[str, Any]:
    """Check an allocation record (e.g. read back from JSON); return it in canonical form.

    The record is :class:`~palette_core.randomisation.records.AllocationStateRecord`:
    ``{"version": 1, "effective_from": "YYYY-MM-DD", "source": str, "traits": {trait_id:
    {arm_id: probability}}}``, with at least one trait. Each listed trait names only arms of
    that trait, with probabilities in [0, 1] summing to 1 within 1e-9, and gives usual care a
    positive probability (it always has one under these rules). A trait that is not randomising
    (closed) is absent; an arm absent from its trait has probability 0. The randomiser reads
    the same record (:func:`palette_core.randomisation.randomise.allocation_state_from_dict`).
    The canonical form lists traits and arms in design order with Python floats.

    Raises
    ------
    AllocationError
        Naming the field, trait or arm at fault (the first problem; the count of the others).
    """
    try:
        record = AllocationStateRecord.parse(state).for_design(design)
    except RecordError as exc:
        first = exc.problems[0]
        more = len(exc.problems) - 1
        raise AllocationError(
            _where(first.loc), first.message + (f" (and {more} more problem(s))" if more else "")
        ) from None
    return record.to_json_dict()


def allocation_state(
    design: Design,
    probabilities_by_trait: Mapping[str, Mapping[str, float]],
    effective_from: str | date,
    source: str,
) -> dict[str, Any]:
    """The restricted "current allocation" record that the randomiser reads.

    Parameters
    ----------
    probabilities_by_trait
        ``trait_id -> {arm_id: probability}`` for every trait that is randomising (use
        :func:`probabilities_dict` or :attr:`TraitAllocation.probabilities` to get exact
        float64 sums from JAX output). Closed traits are left out.
    effective_from
        The date the allocation comes into force (``"YYYY-MM-DD"`` or a ``date``).
    source
        Where it comes from, e.g. ``"interim look 3 (analysis 5f2c...)"``.

    Returns
    -------
    ``{"version": 1, "effective_from": ..., "source": ..., "traits": {...}}``, JSON-serialisable,
    checked by :func:`validate_allocation_state`.
    """
    return validate_allocation_state(
        design,
        {
            "version": STATE_VERSION,
            "effective_from": effective_from,
            "source": source,
            "traits": probabilities_by_trait,
        },
    )


# ----------------------------------------------------------------------------- example trial
@partial(jax.jit, static_argnames=("n_draws",))
def _look(key, successes, trials, open_mask, params, n_draws):
    draws = synthetic_posterior_draws(key, successes, trials, n_draws)
    pb = pr_best(draws, open_mask)
    probs = allocation_probabilities(pb, open_mask, trials, params)
    return pb, probs, allocation_phase(open_mask, trials, params)


@partial(jax.jit, static_argnames=("size",))
def _block(key, probs, rates, successes, trials, n_active, size):
    key_arm, key_outcome = jax.random.split(key)
    arm = jax.random.categorical(key_arm, jnp.log(probs), shape=(size,))
    good = jax.random.bernoulli(key_outcome, rates[arm])
    active = jnp.arange(size) < n_active
    n = probs.shape[0]
    trials = trials + jnp.bincount(arm, weights=active.astype(trials.dtype), length=n)
    successes = successes + jnp.bincount(
        arm, weights=(active & good).astype(successes.dtype), length=n
    )
    return successes, trials


def example_trial(
    design: Design,
    trait_id: str,
    key: int | jax.Array,
    true_rates: Mapping[str, float],
    n_patients: int,
    look_every: int,
    *,
    n_draws: int = 2000,
    states: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """A small seeded trial in one trait, showing how allocation evolves (for the book).

    Simplifications, stated: patients arrive one at a time and each is allocated with the
    probabilities in force; the binary outcome (good = 1) is observed *immediately* (no
    follow-up delay, so every patient has a complete outcome); the posterior is the synthetic
    Beta-binomial one of :func:`synthetic_posterior_draws`; no arm is closed for graduation,
    futility or harm. Probabilities are re-computed every ``look_every`` patients.

    Parameters
    ----------
    key
        An integer seed or a JAX PRNG key. Same key, same table (on the same machine).
    true_rates
        ``arm_id -> probability of a good outcome`` for usual care and every open arm.
    states
        ``arm_id -> state``; defaults to :func:`initial_states` (Octaplas LG planned).

    Returns
    -------
    One row per look and arm of the trait: ``look`` (0 = before the first patient),
    ``n_patients`` (enrolled so far), ``arm``, ``role``, ``probability`` (in force for the
    next patients), ``pr_best`` (NaN for usual care), ``n_allocated`` (so far), ``phase``.
    """
    arms = arm_mask(design, trait_id, initial_states(design) if states is None else states)
    for name, value, low in (
        ("n_patients", n_patients, 1),
        ("look_every", look_every, 1),
        ("n_draws", n_draws, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            raise AllocationError(
                f"argument {name!r}", f"must be an integer >= {low}, got {value!r}"
            )
    if not arms.open_mask.any():
        raise AllocationError(
            f"trait {trait_id!r}", "no open experimental arm: nothing to randomise"
        )
    if not isinstance(true_rates, Mapping):
        raise AllocationError("argument 'true_rates'", "expected a mapping arm_id -> probability")
    needed = [arms.control] + [
        a for a, o in zip(arms.experimental, arms.open_mask, strict=True) if o
    ]
    for arm_id in true_rates:
        if arm_id not in arms.arm_ids:
            raise AllocationError(
                f"argument 'true_rates', arm {arm_id!r}", f"not an arm of trait {trait_id!r}"
            )
    missing = [a for a in needed if a not in true_rates]
    if missing:
        raise AllocationError("argument 'true_rates'", f"no rate for arm(s) {', '.join(missing)}")
    for arm_id, r in true_rates.items():
        if isinstance(r, bool) or not isinstance(r, Real) or not 0 <= r <= 1:
            raise AllocationError(
                f"argument 'true_rates', arm {arm_id!r}", f"must be a probability, got {r!r}"
            )
    params = allocation_params(design)
    key = jax.random.key(int(key)) if isinstance(key, Integral) else key
    rates = jnp.asarray([float(true_rates.get(a, 0.0)) for a in arms.arm_ids])
    mask = jnp.asarray(arms.open_mask)
    n = len(arms.arm_ids)
    successes = jnp.zeros(n, dtype=jnp.int32)
    trials = jnp.zeros(n, dtype=jnp.int32)
    roles = ["control"] + ["experimental"] * (n - 1)
    rows: list[tuple[Any, ...]] = []

    def record(look: int, enrolled: int, pb, probs, phase, trials) -> None:
        pb, probs, trials = np.asarray(pb), np.asarray(probs), np.asarray(trials)
        name = PHASE_NAMES[int(phase)]
        for i, arm_id in enumerate(arms.arm_ids):
            best = math.nan if i == 0 else float(pb[i - 1])
            rows.append(
                (look, enrolled, arm_id, roles[i], float(probs[i]), best, int(trials[i]), name)
            )

    key, sub = jax.random.split(key)
    pb, probs, phase = _look(sub, successes, trials, mask, params, n_draws)
    record(0, 0, pb, probs, phase, trials)
    enrolled, look = 0, 0
    while enrolled < n_patients:
        size = min(look_every, n_patients - enrolled)
        key, key_block, key_look = jax.random.split(key, 3)
        successes, trials = _block(key_block, probs, rates, successes, trials, size, look_every)
        enrolled += size
        look += 1
        pb, probs, phase = _look(key_look, successes, trials, mask, params, n_draws)
        record(look, enrolled, pb, probs, phase, trials)
    columns = [
        "look",
        "n_patients",
        "arm",
        "role",
        "probability",
        "pr_best",
        "n_allocated",
        "phase",
    ]
    return pd.DataFrame(rows, columns=columns)


__all__ = [
    "AllocationParams",
    "FLOAT32_SUM_TOLERANCE",
    "OPEN",
    "PHASE_BURN_IN",
    "PHASE_CLOSED",
    "PHASE_FIXED",
    "PHASE_NAMES",
    "PHASE_RAR",
    "STATE_SUM_TOLERANCE",
    "STATE_VERSION",
    "TraitAllocation",
    "TraitArms",
    "allocation_params",
    "allocation_phase",
    "allocation_probabilities",
    "allocation_state",
    "arm_mask",
    "example_trial",
    "initial_states",
    "pr_best",
    "probabilities_dict",
    "synthetic_posterior_draws",
    "trait_allocation",
    "validate_allocation_state",
]
