"""The joint NumPyro model over all traits, on sufficient statistics (counts per cell).

Two layers, as elsewhere in palette_core:

* **Boundary functions** (:func:`model_spec`, :func:`model_priors`, :func:`cell_grid`,
  :func:`model_data`). They read the :class:`~palette_core.design.Design` (traits, arms, age
  groups, shared-effect groups, outcomes, priors), validate once and raise
  :class:`~palette_core.errors.ModelDataError` naming the column and row at fault.
* **The model** (:func:`joint_model`, and :func:`per_patient_model`, its per-patient twin used
  to test the likelihood). Plain functions of three arguments: a static, hashable
  :class:`ModelSpec` (shapes, index maps, structural switches), a :class:`CellData` pytree of
  arrays and a :class:`Priors` pytree of prior parameters. Shapes depend on the design and on
  the spec's era capacity only, so one compiled sampler (:mod:`palette_core.analysis.sampler`)
  serves every look of a trial, every prior-sensitivity analysis and every simulated trial of
  the design.

Cells
-----
A cell is (trait, age stratum, arm, calendar era). :func:`cell_grid` lists *every* cell the
design admits (each trait, each of its age groups, usual care and each experimental arm open
to that age group, each era ``0 .. n_eras - 1`` of the spec's capacity); cells absent from the
data get zero counts. ``CellData.n_eras`` is the number of eras *in use* (traced): the
random-walk steps of the eras beyond it are masked, so the era effect stays flat there and
those cells, which hold no data, are inert. Within a trait the arm index is 0 for usual care
and ``1 ..`` for the experimental arms in design order; in :class:`CellData` the arm code is
global: 0 = usual care of any trait, ``1 + e`` = experimental arm ``e`` of ``spec.arms``.

The binary outcome is the ordinal model with two categories (0 = no event, 1 = event), so one
code path serves both: counts are ``[n_cells, n_categories]``.

Model
-----
For cell ``i`` in trait ``t``, age stratum ``s``, arm ``a``, era ``k``::

    eta_i = trait_shift[t] + era[k] (or era[t, k] with eras="per_trait")
            + sign * beta[s, a]
    Pr(Y_i <= c) = logistic(cut[s, c] - eta_i)          (proportional odds)

* ``cut[s]``: cut-points per age stratum, induced-Dirichlet prior (Betancourt 2019) with the
  concentration of ``priors.cutpoints``, anchored at 0: the category probabilities of a cell
  with ``eta = 0`` are Dirichlet. For the binary outcome this is ``logit Pr(event) = -cut[s]``
  with ``Pr(event) ~ Beta(c, c)``.
* ``trait_shift[t] ~ N(loc, trait_shift.scale)``.
* Era effects: a random walk with ``era[0] = 0`` and steps ``~ N(0, sigma_era)``,
  ``sigma_era ~ HalfNormal(era_step_sd.scale)``, shared across traits and strata
  (``eras="shared"``) or one walk per trait with the same step SD (``eras="per_trait"``).
* ``beta[s, 0] = 0`` (usual care). For experimental arm ``e``, the reference-stratum (adult)
  log odds ratio ``theta[e]`` is ``N(arm_log_or.loc, arm_log_or.scale)``, or, in a
  shared-effect group ``d`` with ``borrowing="hierarchical"``, ``N(mu_d, tau^2)`` with
  ``mu_d ~ N(shared_effect_mean)`` and one ``tau ~ HalfNormal(between_trait_sd.scale)``. In
  every other age stratum (children) ``beta = theta + delta[e]``, ``delta[e] ~ N(0,
  sigma_ped)``, ``sigma_ped ~ HalfNormal(child_deviation_sd.scale)``. Every scale parameter is
  non-centred.
* The likelihood is an observed distribution, :class:`CellCounts` (a multinomial per cell
  without its coefficient, so the log density equals the sum of the per-patient log
  likelihoods exactly). Prior and posterior predictive data come from the model itself:
  :func:`joint_model` with ``totals`` given samples the counts (``numpyro.infer.Predictive``).
* Sensitivity switches: ``borrowing="none"`` gives every arm its own ``N(arm_log_or)`` prior in
  every age stratum: no borrowing across traits *and* none from adults to children (the
  children-only effect). ``borrowing="exnex"`` (Neuenschwander et al. 2016) gives each arm of
  a shared-effect group the mixture prior ``w N(mu_d, tau^2) + (1 - w) N(arm_log_or)`` with
  ``w = priors.exnex.exchangeability``. Both components are sampled non-centred (``log_or``
  and ``log_or_nex``) and the binary choice between them is summed out of each arm's
  likelihood, ``log(w L_ex + (1 - w) L_nex)``; :func:`exnex_draws` draws the component back
  from its conditional posterior (``exnex_pr_ex``) to give the arm's posterior draws. (A
  centred mixture prior on the effect sampled badly: R-hat 1.06 on the worked interim.)

Orientation
-----------
``theta`` (reported as ``log_or``) is on the *benefit* scale: ``exp(theta) > 1`` means benefit.
``sign`` is +1 for an outcome whose ``benefit_direction`` is ``higher`` (OSFD: a positive theta
shifts patients to higher categories) and -1 for ``lower`` (mortality: a positive theta lowers
the odds of death; the odds ratio of death is ``exp(-theta)``). Nothing downstream flips signs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from jax.nn import log_sigmoid
from jax.scipy.special import gammaln
from numpyro.distributions import constraints

from palette_core.design import Design
from palette_core.errors import ModelDataError

Borrowing = Literal["hierarchical", "none", "exnex"]
Eras = Literal["shared", "per_trait"]
PRIOR_NAMES = (
    "arm_log_or",
    "shared_effect_mean",
    "between_trait_sd",
    "child_deviation_sd",
    "era_step_sd",
    "trait_shift",
    "cutpoints",
    "exnex",
)
REFERENCE_AGE_GROUP = "adult"


@dataclass(frozen=True)
class ModelSpec:
    """Everything static about one model: shapes, index maps and structural switches.

    Hashable and compared by value, so one compiled sampler serves every dataset and every
    set of :class:`Priors` with the same spec. ``n_eras`` is the era *capacity* of the cell
    grid; the eras in use are ``CellData.n_eras``.
    """

    outcome: str
    outcome_type: Literal["binary", "ordinal"]
    categories: tuple[int, ...]  # the outcome values, lowest first
    sign: int  # +1: benefit = higher category; -1: benefit = lower (events are bad)
    traits: tuple[str, ...]
    age_groups: tuple[str, ...]
    reference_stratum: int
    arms: tuple[str, ...]  # experimental arms, design order
    arm_trait: tuple[int, ...]  # index into traits
    arm_group: tuple[int, ...]  # index into groups, -1 = not in a shared-effect group
    groups: tuple[str, ...]
    n_eras: int
    borrowing: Borrowing
    eras: Eras

    @property
    def n_categories(self) -> int:
        return len(self.categories)


class Priors(NamedTuple):
    """The prior parameters (a pytree of scalar arrays, traced, so changing one never
    recompiles): locations and scales of ``proposed/priors.yaml``, the induced-Dirichlet
    concentration of the cut-points and the EXNEX exchangeability weight."""

    arm_loc: Any
    arm_scale: Any
    group_mean_loc: Any
    group_mean_scale: Any
    between_trait_scale: Any
    child_scale: Any
    era_step_scale: Any
    trait_shift_loc: Any
    trait_shift_scale: Any
    cut_concentration: Any
    exnex_weight: Any


class CellData(NamedTuple):
    """Arrays describing the cells (a JAX pytree). ``counts`` is ``[n_cells, n_categories]``;
    ``n_eras`` (a scalar) is the number of eras in use, at most the spec's capacity."""

    trait: np.ndarray
    stratum: np.ndarray
    arm: np.ndarray  # 0 = usual care, 1 + e = experimental arm e of spec.arms
    era: np.ndarray
    counts: np.ndarray
    n_eras: np.ndarray


# ----------------------------------------------------------------------------- boundary
def model_spec(
    design: Design,
    outcome: str,
    n_eras: int,
    *,
    borrowing: Borrowing = "hierarchical",
    eras: Eras = "shared",
) -> ModelSpec:
    """The static description of the joint model for ``outcome`` with an era capacity of
    ``n_eras`` (the priors are apart: :func:`model_priors`)."""
    try:
        o = design.outcome(outcome)
    except KeyError:
        raise ModelDataError(
            f"unknown outcome {outcome!r} (proposed/outcomes.yaml has "
            f"{', '.join(x.id for x in design.outcomes.outcomes)})",
            column="outcome",
        ) from None
    if borrowing not in ("hierarchical", "none", "exnex"):
        raise ModelDataError(
            f"borrowing must be 'hierarchical', 'none' or 'exnex', not {borrowing!r}", "borrowing"
        )
    if eras not in ("shared", "per_trait"):
        raise ModelDataError(f"eras must be 'shared' or 'per_trait', not {eras!r}", "eras")
    if not isinstance(n_eras, int) or isinstance(n_eras, bool) or n_eras < 1:
        raise ModelDataError(f"n_eras must be an integer >= 1, not {n_eras!r}", "n_eras")
    if o.type == "binary":
        categories: tuple[int, ...] = (0, 1)
    else:
        assert o.support_range is not None  # the design validator requires it
        categories = tuple(range(o.support_range[0], o.support_range[1] + 1))
    arms = design.experimental_arms()
    traits = design.trait_ids
    groups = tuple(g.id for g in design.shared_effect_groups)
    group_of = {a: i for i, g in enumerate(design.shared_effect_groups) for a in g.arms}
    if REFERENCE_AGE_GROUP not in design.age_group_ids:
        raise ModelDataError(
            f"the reference age group {REFERENCE_AGE_GROUP!r} is not in proposed/strata.yaml"
        )
    return ModelSpec(
        outcome=o.id,
        outcome_type=o.type,
        categories=categories,
        sign=1 if o.benefit_direction == "higher" else -1,
        traits=traits,
        age_groups=design.age_group_ids,
        reference_stratum=design.age_group_ids.index(REFERENCE_AGE_GROUP),
        arms=tuple(a.id for a in arms),
        arm_trait=tuple(traits.index(a.trait) for a in arms),
        arm_group=tuple(group_of.get(a.id, -1) for a in arms),
        groups=groups,
        n_eras=n_eras,
        borrowing=borrowing,
        eras=eras,
    )


def model_priors(design: Design, prior_scales: Mapping[str, float] | None = None) -> Priors:
    """The prior parameters of ``proposed/priors.yaml`` as a :class:`Priors` pytree.

    ``prior_scales`` overrides prior scales for sensitivity analyses, by the names of
    ``proposed/priors.yaml`` (``{"between_trait_sd": 0.5}``; ``cutpoints`` sets the
    concentration, ``exnex`` the exchangeability weight). The result has the same shapes
    whatever the values, so a prior-sensitivity analysis reuses the compiled sampler.
    """
    scales = dict(prior_scales or {})
    for name, value in scales.items():
        if name not in PRIOR_NAMES:
            raise ModelDataError(
                f"unknown prior {name!r} (proposed/priors.yaml has {', '.join(PRIOR_NAMES)})",
                column="prior_scales",
            )
        if not (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and np.isfinite(value)
            and value > 0
        ):
            raise ModelDataError(
                f"prior scale for {name!r} must be a positive number, not {value!r}",
                column="prior_scales",
            )
        if name == "exnex" and not value < 1:
            raise ModelDataError(
                f"the EXNEX exchangeability weight must lie in (0, 1), not {value!r}",
                column="prior_scales",
            )
    p = design.priors

    def scale(name: str) -> float:
        prior = getattr(p, name)
        if name == "exnex":
            return float(scales.get(name, prior.exchangeability))
        default = prior.concentration if name == "cutpoints" else prior.scale
        return float(scales.get(name, default))

    values = Priors(
        arm_loc=float(p.arm_log_or.loc),
        arm_scale=scale("arm_log_or"),
        group_mean_loc=float(p.shared_effect_mean.loc),
        group_mean_scale=scale("shared_effect_mean"),
        between_trait_scale=scale("between_trait_sd"),
        child_scale=scale("child_deviation_sd"),
        era_step_scale=scale("era_step_sd"),
        trait_shift_loc=float(p.trait_shift.loc),
        trait_shift_scale=scale("trait_shift"),
        cut_concentration=scale("cutpoints"),
        exnex_weight=scale("exnex"),
    )
    return Priors(*(jnp.asarray(v, dtype=jnp.float32) for v in values))


def cell_grid(design: Design, n_eras: int) -> pd.DataFrame:
    """Every cell the design admits: columns trait, age_group, arm, arm_index, era.

    ``arm_index`` is the index within the trait (0 = usual care); rows are in a fixed order
    (trait, age group, arm, era), the order of :class:`CellData`.
    """
    rows = []
    for t in design.trait_ids:
        for ag in design.trait(t).age_groups:
            for i, arm in enumerate(design.arms_of(t)):
                if ag not in design.arm_age_groups(arm):
                    continue
                for k in range(n_eras):
                    rows.append((t, ag, arm.id, i, k))
    return pd.DataFrame(rows, columns=["trait", "age_group", "arm", "arm_index", "era"])


BINARY_COLUMNS = ("trait", "age_group", "arm", "era", "events", "patients")
ORDINAL_COLUMNS = ("trait", "age_group", "arm", "era", "category", "count")


def _int_column(df: pd.DataFrame, col: str, minimum: int) -> np.ndarray:
    values = df[col].to_numpy()
    for row, v in zip(df.index, values, strict=True):
        ok = isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)
        if not ok and isinstance(v, float | np.floating) and np.isfinite(v) and v == int(v):
            ok = True
        if not ok:
            raise ModelDataError(f"{v!r} is not an integer", col, int(row))
        if int(v) < minimum:
            raise ModelDataError(f"{int(v)} is below the minimum {minimum}", col, int(row))
    return values.astype(np.int64)


def check_cell_labels(
    design: Design,
    traits: set[str],
    arm_ids: set[str],
    trait: Any,
    age_group: Any,
    arm: Any,
    row: int,
) -> None:
    """Refuse a row whose trait, age group or arm is not the design's, or whose arm belongs to
    another trait (:class:`~palette_core.errors.ModelDataError` naming the column and row)."""
    if trait not in traits:
        raise ModelDataError(f"unknown trait {trait!r}", "trait", row)
    if age_group not in design.age_group_ids:
        raise ModelDataError(f"unknown age group {age_group!r}", "age_group", row)
    if arm not in arm_ids:
        raise ModelDataError(f"unknown arm {arm!r}", "arm", row)
    if design.arm(arm).trait != trait:
        raise ModelDataError(
            f"arm {arm!r} belongs to trait {design.arm(arm).trait!r}, not {trait!r}", "arm", row
        )


def model_data(
    design: Design,
    cells: pd.DataFrame,
    spec: ModelSpec | str,
    *,
    n_eras: int | None = None,
    eras_in_use: int | None = None,
) -> CellData:
    """Validate a tidy table of cell counts and lay it on the full grid of the design.

    Binary outcome: columns ``trait, age_group, arm, era, events, patients``. Ordinal outcome:
    ``trait, age_group, arm, era, category, count`` (``category`` is the outcome value, e.g.
    -1 = death .. 28 for OSFD). ``arm`` is the arm id. A cell (or cell and category) may
    appear at most once; missing cells have zero counts.

    ``spec`` is a :class:`ModelSpec` or an outcome id (then ``n_eras``, the era capacity, is
    taken as given or as ``max(era) + 1``). ``eras_in_use`` (default: the capacity) is the
    number of eras of the look; every era of ``cells`` must be below it.
    """
    if isinstance(spec, str):
        if n_eras is None:
            if "era" not in cells.columns:
                raise ModelDataError("missing column", "era")
            n_eras = int(_int_column(cells, "era", 0).max(initial=-1)) + 1 or 1
        spec = model_spec(design, spec, n_eras)
    elif n_eras is not None and n_eras != spec.n_eras:
        raise ModelDataError(f"n_eras={n_eras} contradicts the spec's {spec.n_eras}", "n_eras")
    binary = spec.outcome_type == "binary"
    required = BINARY_COLUMNS if binary else ORDINAL_COLUMNS
    for col in required:
        if col not in cells.columns:
            raise ModelDataError(
                f"missing column (the {spec.outcome_type} outcome {spec.outcome!r} needs "
                f"{', '.join(required)})",
                col,
            )
    extra = [c for c in cells.columns if c not in required]
    if extra:
        raise ModelDataError(f"unexpected column for outcome {spec.outcome!r}", extra[0])
    cells = cells.reset_index(drop=True)
    grid = cell_grid(design, spec.n_eras)
    index = {
        (r.trait, r.age_group, r.arm, r.era): i for i, r in enumerate(grid.itertuples(index=False))
    }
    in_use = spec.n_eras if eras_in_use is None else eras_in_use
    if (
        not isinstance(in_use, int | np.integer)
        or isinstance(in_use, bool)
        or not 1 <= in_use <= spec.n_eras
    ):
        raise ModelDataError(
            f"eras_in_use must be an integer in 1..{spec.n_eras}, not {in_use!r}", "eras_in_use"
        )
    era = _int_column(cells, "era", 0)
    for row, k in enumerate(era):
        if k >= in_use:
            raise ModelDataError(f"era {k} >= n_eras = {in_use}", "era", row)
    traits, arm_ids = set(design.trait_ids), {a.id for a in design.arms}
    cell_of = np.empty(len(cells), dtype=np.int64)
    for row, (t, ag, a, k) in enumerate(
        zip(cells["trait"], cells["age_group"], cells["arm"], era, strict=True)
    ):
        check_cell_labels(design, traits, arm_ids, t, ag, a, row)
        key = (t, ag, a, int(k))
        if key not in index:
            raise ModelDataError(
                f"arm {a!r} of trait {t!r} does not admit age group {ag!r}", "age_group", row
            )
        cell_of[row] = index[key]
    counts = np.zeros((len(grid), spec.n_categories), dtype=np.int64)
    if binary:
        events = _int_column(cells, "events", 0)
        patients = _int_column(cells, "patients", 0)
        for row in np.flatnonzero(events > patients):
            raise ModelDataError(
                f"events ({events[row]}) exceed patients ({patients[row]})", "events", int(row)
            )
        keys = cell_of
        counts[cell_of, 1] = events
        counts[cell_of, 0] = patients - events
    else:
        cat = _int_column(cells, "category", spec.categories[0])
        for row in np.flatnonzero(cat > spec.categories[-1]):
            raise ModelDataError(
                f"category {cat[row]} outside {spec.categories[0]}..{spec.categories[-1]}",
                "category",
                int(row),
            )
        n = _int_column(cells, "count", 0)
        cat_index = cat - spec.categories[0]
        keys = cell_of * spec.n_categories + cat_index
        counts[cell_of, cat_index] = n
    seen: dict[int, int] = {}
    for row, key in enumerate(keys):
        if int(key) in seen:
            raise ModelDataError(f"duplicate cell (first at row {seen[int(key)]})", "trait", row)
        seen[int(key)] = row
    arm_code = {a: 1 + i for i, a in enumerate(spec.arms)}
    return CellData(
        trait=grid["trait"].map(spec.traits.index).to_numpy(np.int32),
        stratum=grid["age_group"].map(spec.age_groups.index).to_numpy(np.int32),
        arm=np.array([arm_code.get(a, 0) for a in grid["arm"]], dtype=np.int32),
        era=grid["era"].to_numpy(np.int32),
        counts=counts.astype(np.float32),
        n_eras=np.asarray(in_use, dtype=np.int32),
    )


# ----------------------------------------------------------------------------- model
class InducedDirichlet(dist.Distribution):
    """Ordered cut-points whose category probabilities at ``eta = 0`` are Dirichlet.

    With ``F_c = logistic(cut_c)`` the probabilities ``p = diff([0, F, 1])`` are
    ``Dirichlet(concentration)`` (Betancourt 2019, anchor 0). The Jacobian of
    ``cut -> p[:-1]`` is lower bidiagonal with diagonal ``F_c (1 - F_c)``. A proper
    distribution, so prior-predictive draws work.
    """

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.ordered_vector
    reparametrized_params = []

    def __init__(self, concentration, n_categories: int, *, validate_args=None):
        self.concentration = jnp.asarray(concentration)
        self.n_categories = int(n_categories)
        super().__init__(
            batch_shape=jnp.shape(self.concentration),
            event_shape=(self.n_categories - 1,),
            validate_args=validate_args,
        )

    def sample(self, key, sample_shape=()):
        a = jnp.broadcast_to(self.concentration[..., None], self.batch_shape + (self.n_categories,))
        p = dist.Dirichlet(a).sample(key, sample_shape)
        f = jnp.clip(jnp.cumsum(p, axis=-1)[..., :-1], 1e-6, 1 - 1e-6)
        return jnp.sort(jnp.log(f) - jnp.log1p(-f), axis=-1)

    def log_prob(self, value):
        a = self.concentration[..., None]
        k = self.n_categories
        log_p = category_log_probs(jnp.zeros(value.shape[:-1]), value)
        log_dirichlet = (
            gammaln(k * self.concentration)
            - k * gammaln(self.concentration)
            + jnp.sum((a - 1.0) * log_p, axis=-1)
        )
        log_jac = jnp.sum(log_sigmoid(value) + log_sigmoid(-value), axis=-1)
        return log_dirichlet + log_jac


def category_log_probs(eta: jnp.ndarray, cut: jnp.ndarray) -> jnp.ndarray:
    """``log Pr(Y = c)`` for every category c (last axis), proportional odds.

    ``eta`` is the linear predictor (any shape), ``cut`` the ordered cut-points (last axis, one
    fewer than the categories). Shared by the model and the simulation of outcomes
    (:mod:`palette_core.analysis.checking`).

    Stable in float32 even for far-apart cut-points: with ``a = cut[c] - eta`` and
    ``b = cut[c-1] - eta``, ``logistic(a) - logistic(b) = logistic(a) logistic(-b) (1 - e^(b-a))``.
    """
    a = cut - eta[..., None]
    first = log_sigmoid(a[..., :1])
    last = log_sigmoid(-a[..., -1:])
    hi, lo = a[..., 1:], a[..., :-1]
    middle = log_sigmoid(hi) + log_sigmoid(-lo) + jnp.log(-jnp.expm1(lo - hi))
    return jnp.concatenate([first, middle, last], axis=-1)


def exnex_members(spec: ModelSpec) -> np.ndarray:
    """Indices (into ``spec.arms``) of the arms that get the EXNEX mixture: group members."""
    return np.flatnonzero(np.asarray(spec.arm_group, dtype=np.int32) >= 0)


def _beta(spec: ModelSpec, theta: jnp.ndarray, theta_child: jnp.ndarray) -> jnp.ndarray:
    """``[n_strata, 1 + n_arms]`` effects on the linear predictor (column 0: usual care)."""
    is_ref = (np.arange(len(spec.age_groups)) == spec.reference_stratum)[:, None]
    beta = jnp.where(is_ref, theta[None, :], theta_child[None, :])
    return jnp.concatenate([jnp.zeros((len(spec.age_groups), 1)), beta], axis=1)


def _arm_effects(spec: ModelSpec, priors: Priors) -> dict[str, jnp.ndarray]:
    """Sample the arm effects: ``log_or`` and ``log_or_child`` ``[n_arms]`` and, for EXNEX,
    the effects with every group arm non-exchangeable (``log_or_nex``, ``log_or_child_nex``)."""
    n_arms = len(spec.arms)
    group = np.asarray(spec.arm_group, dtype=np.int32)
    in_group = group >= 0
    z = numpyro.sample("arm_z", dist.Normal(0.0, 1.0).expand([n_arms]).to_event(1))
    theta = priors.arm_loc + priors.arm_scale * z
    if spec.borrowing in ("hierarchical", "exnex") and spec.groups:
        mu_z = numpyro.sample(
            "group_mean_z", dist.Normal(0.0, 1.0).expand([len(spec.groups)]).to_event(1)
        )
        mu = numpyro.deterministic(
            "group_mean", priors.group_mean_loc + priors.group_mean_scale * mu_z
        )
        tau = numpyro.sample("between_trait_sd", dist.HalfNormal(priors.between_trait_scale))
        theta = jnp.where(in_group, mu[np.maximum(group, 0)] + tau * z, theta)
    theta = numpyro.deterministic("log_or", theta)
    dz = numpyro.sample("child_z", dist.Normal(0.0, 1.0).expand([n_arms]).to_event(1))
    if spec.borrowing == "none":  # children's effect on its own, with the arms' prior
        theta_child = priors.arm_loc + priors.arm_scale * dz
    else:
        sigma_ped = numpyro.sample("child_deviation_sd", dist.HalfNormal(priors.child_scale))
        theta_child = theta + sigma_ped * dz
    effects = {"log_or": theta, "log_or_child": numpyro.deterministic("log_or_child", theta_child)}
    if spec.borrowing != "exnex" or not spec.groups:
        return effects
    # EXNEX: each group arm also gets a non-exchangeable effect with the arm prior; the choice
    # between the two is marginalised in the likelihood (:class:`CellCounts`).
    members = exnex_members(spec)
    nz = numpyro.sample("exnex_z", dist.Normal(0.0, 1.0).expand([len(members)]).to_event(1))
    theta_nex = theta.at[members].set(priors.arm_loc + priors.arm_scale * nz)
    effects["log_or_nex"] = numpyro.deterministic("log_or_nex", theta_nex)
    effects["log_or_child_nex"] = numpyro.deterministic(
        "log_or_child_nex", effects["log_or_child"] - theta + theta_nex
    )
    return effects


def _era_effects(spec: ModelSpec, priors: Priors, n_eras: Any) -> jnp.ndarray:
    """``[n_eras]`` (shared) or ``[n_traits, n_eras]`` (per trait), first era 0, flat from
    the last era in use on (the steps of padded eras are masked)."""
    sd = numpyro.sample("era_step_sd", dist.HalfNormal(priors.era_step_scale))
    lead = () if spec.eras == "shared" else (len(spec.traits),)
    n_steps = spec.n_eras - 1
    z = numpyro.sample(
        "era_z", dist.Normal(0.0, 1.0).expand([*lead, n_steps]).to_event(len(lead) + 1)
    )
    in_use = jnp.arange(1, spec.n_eras) < n_eras
    walk = jnp.cumsum(jnp.where(in_use, sd * z, 0.0), axis=-1)
    return numpyro.deterministic(
        "era_effect", jnp.concatenate([jnp.zeros((*lead, 1)), walk], axis=-1)
    )


def sample_parameters(spec: ModelSpec, priors: Priors, n_eras: Any) -> dict[str, jnp.ndarray]:
    """Sample every parameter of the model (NumPyro sites); return the values the likelihood
    reads: ``cutpoints`` ``[n_strata, K-1]``, ``trait_shift``, ``era_effect``, ``log_or``,
    ``log_or_child`` (and the EXNEX components)."""
    n_strata = len(spec.age_groups)
    cut = numpyro.sample(
        "cutpoints",
        InducedDirichlet(
            jnp.broadcast_to(priors.cut_concentration, (n_strata,)), spec.n_categories
        ).to_event(1),
    )
    tz = numpyro.sample("trait_z", dist.Normal(0.0, 1.0).expand([len(spec.traits)]).to_event(1))
    shift = numpyro.deterministic(
        "trait_shift", priors.trait_shift_loc + priors.trait_shift_scale * tz
    )
    era_eff = _era_effects(spec, priors, n_eras)
    return {
        "cutpoints": cut,
        "trait_shift": shift,
        "era_effect": era_eff,
        **_arm_effects(spec, priors),
    }


def linear_predictor(
    spec: ModelSpec,
    params: Mapping[str, jnp.ndarray],
    trait: Any,
    stratum: Any,
    arm: Any,
    era: Any,
    *,
    exchangeable: bool = True,
) -> jnp.ndarray:
    """``eta`` for each unit (cell or patient) from parameter values (one draw).

    The single definition of the linear predictor: the model, the per-patient twin, model
    checking and the simulator all call it. ``exchangeable=False`` uses the EXNEX
    non-exchangeable effects of the group arms.
    """
    theta = params["log_or" if exchangeable else "log_or_nex"]
    child = params["log_or_child" if exchangeable else "log_or_child_nex"]
    era_eff = params["era_effect"]
    era_term = era_eff[era] if spec.eras == "shared" else era_eff[trait, era]
    beta = _beta(spec, theta, child)
    return params["trait_shift"][trait] + era_term + spec.sign * beta[stratum, arm]


def cell_log_probs(
    spec: ModelSpec, params: Mapping[str, jnp.ndarray], data: CellData, *, exchangeable=True
) -> jnp.ndarray:
    """``log Pr(Y = c)`` ``[n_cells, n_categories]`` of every cell from parameter values."""
    eta = linear_predictor(
        spec, params, data.trait, data.stratum, data.arm, data.era, exchangeable=exchangeable
    )
    return category_log_probs(eta, params["cutpoints"][data.stratum])


def _sample_counts(key: Any, totals: jnp.ndarray, log_p: jnp.ndarray) -> jnp.ndarray:
    """Multinomial counts per row by conditional binomials (exact, jit-able, any totals)."""
    p = jnp.exp(log_p)
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    tail = jnp.flip(jnp.cumsum(jnp.flip(p, -1), -1), -1)  # Pr(Y >= c)
    cond = jnp.clip(p / jnp.maximum(tail, 1e-30), 0.0, 1.0)
    keys = jax.random.split(key, p.shape[-1] - 1)

    def step(remaining, inputs):
        k, q = inputs
        n_c = jax.random.binomial(k, remaining, q)
        return remaining - n_c, n_c

    remaining, draws = jax.lax.scan(step, totals, (keys, jnp.moveaxis(cond[..., :-1], -1, 0)))
    return jnp.concatenate([jnp.moveaxis(draws, 0, -1), remaining[..., None]], axis=-1)


def exnex_terms(
    ll_ex: jnp.ndarray, ll_nex: jnp.ndarray, member_of: jnp.ndarray, weight: Any
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """The EXNEX likelihood's parts from per-unit log likelihoods (cells or patients).

    Returns ``a = log w + L_ex_j`` and ``b = log(1 - w) + L_nex_j`` per group arm ``j`` (its
    units' summed log likelihood under the exchangeable and the non-exchangeable effect) and
    ``rest``, the summed log likelihood of every other unit. The likelihood is ``rest +
    sum_j logaddexp(a_j, b_j)`` and ``sigmoid(a - b)`` is each arm's conditional probability of
    being exchangeable.
    """
    a = jnp.log(weight) + jnp.sum(jnp.where(member_of, ll_ex[:, None], 0.0), axis=0)
    b = jnp.log1p(-weight) + jnp.sum(jnp.where(member_of, ll_nex[:, None], 0.0), axis=0)
    rest = jnp.sum(jnp.where(member_of.any(axis=1), 0.0, ll_ex))
    return a, b, rest


class CellCounts(dist.Distribution):
    """Counts per cell and category: a multinomial per cell without its coefficient.

    ``log_prob(counts) = sum_i sum_c counts[i, c] log_p[i, c]``, which equals the sum of the
    per-patient log likelihoods (the coefficient does not depend on the parameters). With
    ``log_p_nex`` (EXNEX), the units of each group arm ``j`` contribute ``log(w L_ex_j + (1 -
    w) L_nex_j)``, their likelihood summed out over the arm's exchangeability indicator.
    ``sample`` draws ``totals[i]`` patients per cell (for EXNEX, each group arm's indicator
    from its prior weight ``w`` first).
    """

    arg_constraints = {}
    support = constraints.independent(constraints.nonnegative_integer, 2)
    pytree_data_fields = ("log_p", "totals", "log_p_nex", "member_of", "weight")

    def __init__(self, log_p, totals, log_p_nex=None, member_of=None, weight=None):
        self.log_p = log_p
        self.totals = totals
        self.log_p_nex = log_p_nex
        self.member_of = member_of  # [n_cells, n_members] one-hot, EXNEX only
        self.weight = weight
        super().__init__(batch_shape=(), event_shape=jnp.shape(log_p))

    def unit_log_likelihoods(self, counts) -> tuple[jnp.ndarray, jnp.ndarray | None]:
        """Per-cell log likelihoods under the exchangeable (and non-exchangeable) effects."""

        def ll(lp):
            return jnp.sum(jnp.where(counts > 0, counts * lp, 0.0), axis=-1)

        return ll(self.log_p), None if self.log_p_nex is None else ll(self.log_p_nex)

    def exnex_terms(self, counts) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
        """:func:`exnex_terms` of the per-cell log likelihoods of ``counts``."""
        ll_ex, ll_nex = self.unit_log_likelihoods(counts)
        return exnex_terms(ll_ex, ll_nex, self.member_of, self.weight)

    def log_prob(self, value):
        if self.log_p_nex is None:
            return jnp.sum(self.unit_log_likelihoods(value)[0])
        a, b, rest = self.exnex_terms(value)
        return rest + jnp.sum(jnp.logaddexp(a, b))

    def sample(self, key, sample_shape=()):
        if sample_shape:
            keys = jax.random.split(key, int(np.prod(sample_shape)))
            out = jax.vmap(lambda k: self.sample(k))(keys)
            return out.reshape(tuple(sample_shape) + self.event_shape)
        totals = jnp.asarray(self.totals, dtype=jnp.float32)
        if self.log_p_nex is None:
            return _sample_counts(key, totals, self.log_p)
        k_ind, k_counts = jax.random.split(key)
        ex = jax.random.bernoulli(k_ind, self.weight, (self.member_of.shape[1],))
        nex_cell = jnp.any(self.member_of & ~ex[None, :], axis=1)
        log_p = jnp.where(nex_cell[:, None], self.log_p_nex, self.log_p)
        return _sample_counts(k_counts, totals, log_p)


def _exnex_onehot(spec: ModelSpec, arm: Any) -> jnp.ndarray:
    """``[n_units, n_members]``: unit belongs to group arm ``j`` (arm code ``1 + member j``)."""
    return jnp.asarray(arm)[:, None] == jnp.asarray(1 + exnex_members(spec))[None, :]


def joint_model(spec: ModelSpec, data: CellData, priors: Priors, totals: Any | None = None) -> None:
    """The joint model on sufficient statistics (see the module docstring).

    Without ``totals`` the counts ``data.counts`` are observed. With ``totals`` (patients per
    cell, ``[n_cells]``) the counts are sampled: prior predictive data under
    ``numpyro.infer.Predictive``, or posterior predictive data given posterior samples.
    """
    params = sample_parameters(spec, priors, data.n_eras)
    log_p = cell_log_probs(spec, params, data)
    counts = jnp.asarray(data.counts)
    if "log_or_nex" in params:
        onehot = _exnex_onehot(spec, data.arm)
        likelihood = CellCounts(
            log_p,
            jnp.sum(counts, axis=-1) if totals is None else totals,
            cell_log_probs(spec, params, data, exchangeable=False),
            onehot,
            priors.exnex_weight,
        )
        if totals is None:
            a, b, _ = likelihood.exnex_terms(counts)
            numpyro.deterministic("exnex_pr_ex", jax.nn.sigmoid(a - b))
    else:
        likelihood = CellCounts(log_p, jnp.sum(counts, axis=-1) if totals is None else totals)
    numpyro.sample("y", likelihood, obs=counts if totals is None else None)


def exnex_draws(
    posterior: Mapping[str, Any], spec: ModelSpec, key: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior draws of ``(log_or, log_or_child)`` of an EXNEX fit, ``[..., n_arms]`` each.

    For each draw and group arm the component is drawn with the recorded probability
    ``exnex_pr_ex`` (exact: the indicator's conditional posterior given the other parameters),
    with the JAX key ``key``; other arms are unchanged.
    """
    log_or = np.asarray(posterior["log_or"])
    child = np.asarray(posterior["log_or_child"])
    members = exnex_members(spec)
    if spec.borrowing != "exnex" or not len(members):
        return log_or, child
    pr = np.asarray(posterior["exnex_pr_ex"])
    ex = np.asarray(jax.random.bernoulli(key, pr))
    out, out_child = log_or.copy(), child.copy()
    nex = np.asarray(posterior["log_or_nex"])[..., members]
    nex_child = np.asarray(posterior["log_or_child_nex"])[..., members]
    out[..., members] = np.where(ex, log_or[..., members], nex)
    out_child[..., members] = np.where(ex, child[..., members], nex_child)
    return out, out_child


def per_patient_model(
    spec: ModelSpec, data: CellData, priors: Priors, cell: np.ndarray, y: np.ndarray
) -> None:
    """The same model with one observation per patient (``cell`` index, ``y`` category index).

    Binary outcomes use a Bernoulli likelihood on ``logit Pr(event) = eta - cut``, ordinal ones
    an ordered-logistic one. Slow by design: it exists to test :func:`joint_model`.
    """
    params = sample_parameters(spec, priors, data.n_eras)
    trait, stratum = jnp.asarray(data.trait)[cell], jnp.asarray(data.stratum)[cell]
    arm, era = jnp.asarray(data.arm)[cell], jnp.asarray(data.era)[cell]
    cut_p = params["cutpoints"][stratum]

    def patient_dist(exchangeable: bool):
        e = linear_predictor(spec, params, trait, stratum, arm, era, exchangeable=exchangeable)
        if spec.outcome_type == "binary":
            return dist.Bernoulli(logits=e - cut_p[:, 0])
        return dist.OrderedLogistic(e, cut_p)

    if "log_or_nex" not in params:
        numpyro.sample("y", patient_dist(True), obs=y)
        return
    a, b, rest = exnex_terms(
        patient_dist(True).log_prob(y),
        patient_dist(False).log_prob(y),
        _exnex_onehot(spec, arm),
        priors.exnex_weight,
    )
    numpyro.factor("y", rest + jnp.sum(jnp.logaddexp(a, b)))


def expand_patients(data: CellData) -> tuple[np.ndarray, np.ndarray]:
    """Per-patient ``(cell, category index)`` arrays equivalent to ``data.counts``."""
    counts = np.asarray(data.counts).astype(np.int64)
    cell, cat = np.nonzero(counts)
    reps = counts[cell, cat]
    return np.repeat(cell, reps), np.repeat(cat, reps)
