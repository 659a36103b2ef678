"""The joint NumPyro model over all traits, on sufficient statistics (counts per cell).

Two layers, as elsewhere in palette_core:

* **Boundary functions** (:func:`model_spec`, :func:`cell_grid`, :func:`model_data`). They
  read the :class:`~palette_core.design.loader.Design` (traits, arms, age groups, shared-effect
  groups, outcomes, priors), validate the tidy cell table once and raise
  :class:`~palette_core.errors.ModelDataError` naming the column and row at fault.
* **The model** (:func:`joint_model`, and :func:`per_patient_model`, its per-patient twin used
  to test the likelihood). Plain functions of a static :class:`ModelSpec` (shapes, priors,
  switches) and a :class:`CellData` pytree of arrays, so a fit compiled for one spec can be
  called again with new counts of the same shapes (see :mod:`palette_core.analysis.fit`).

Cells
-----
A cell is (trait, age stratum, arm, calendar era). :func:`cell_grid` lists *every* cell the
design admits (each trait, each of its age groups, usual care and each experimental arm open
to that age group, each era ``0 .. n_eras - 1``); cells absent from the data get zero counts.
The shapes therefore depend on the design and ``n_eras`` only, not on which cells have
patients yet. Within a trait the arm index is 0 for usual care and ``1 ..`` for the
experimental arms in design order; in :class:`CellData` the arm code is global: 0 = usual
care of any trait, ``1 + e`` = experimental arm ``e`` of ``spec.arms``.

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

from dataclasses import dataclass
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from jax.nn import log_sigmoid
from jax.scipy.special import gammaln
from numpyro.distributions import constraints

from palette_core.design.loader import Design
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
    """Everything static about one model: shapes, index maps, priors and switches.

    Hashable and compared by value, so a :class:`~palette_core.analysis.fit.Fitter` built for one spec
    serves every dataset with the same spec.
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
    # priors (loc, scale) / concentration
    arm_loc: float
    arm_scale: float
    group_mean_loc: float
    group_mean_scale: float
    between_trait_scale: float
    child_scale: float
    era_step_scale: float
    trait_shift_loc: float
    trait_shift_scale: float
    cut_concentration: float
    exnex_weight: float = 0.5  # prior probability that a group arm is exchangeable (EXNEX)

    @property
    def n_categories(self) -> int:
        return len(self.categories)


class CellData(NamedTuple):
    """Arrays describing the cells (a JAX pytree). ``counts`` is ``[n_cells, n_categories]``."""

    trait: np.ndarray
    stratum: np.ndarray
    arm: np.ndarray  # 0 = usual care, 1 + e = experimental arm e of spec.arms
    era: np.ndarray
    counts: np.ndarray


# ----------------------------------------------------------------------------- boundary
def model_spec(
    design: Design,
    outcome: str,
    n_eras: int,
    *,
    borrowing: Borrowing = "hierarchical",
    eras: Eras = "shared",
    prior_scales: dict[str, float] | None = None,
) -> ModelSpec:
    """The static description of the joint model for ``outcome``, priors from ``design``.

    ``prior_scales`` overrides prior scales for sensitivity analyses, by the names of
    ``proposed/priors.yaml`` (``{"between_trait_sd": 0.5}``; ``cutpoints`` sets the
    concentration).
    """
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
    scales = dict(prior_scales or {})
    for name, value in scales.items():
        if name not in PRIOR_NAMES:
            raise ModelDataError(
                f"unknown prior {name!r} (proposed/priors.yaml has {', '.join(PRIOR_NAMES)})",
                column="prior_scales",
            )
        if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
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


def model_data(
    design: Design, cells: pd.DataFrame, spec: ModelSpec | str, *, n_eras: int | None = None
) -> CellData:
    """Validate a tidy table of cell counts and lay it on the full grid of the design.

    Binary outcome: columns ``trait, age_group, arm, era, events, patients``. Ordinal outcome:
    ``trait, age_group, arm, era, category, count`` (``category`` is the outcome value, e.g.
    -1 = death .. 28 for OSFD). ``arm`` is the arm id. A cell (or cell and category) may
    appear at most once; missing cells have zero counts.

    ``spec`` is a :class:`ModelSpec` or an outcome id (then ``n_eras`` is required, or taken
    as ``max(era) + 1``).
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
    era = _int_column(cells, "era", 0)
    for row, k in enumerate(era):
        if k >= spec.n_eras:
            raise ModelDataError(f"era {k} >= n_eras = {spec.n_eras}", "era", row)
    traits, arm_ids = set(design.trait_ids), {a.id for a in design.arms}
    cell_of = np.empty(len(cells), dtype=np.int64)
    for row, (t, ag, a, k) in enumerate(
        zip(cells["trait"], cells["age_group"], cells["arm"], era, strict=True)
    ):
        if t not in traits:
            raise ModelDataError(f"unknown trait {t!r}", "trait", row)
        if ag not in design.age_group_ids:
            raise ModelDataError(f"unknown age group {ag!r}", "age_group", row)
        if a not in arm_ids:
            raise ModelDataError(f"unknown arm {a!r}", "arm", row)
        if design.arm(a).trait != t:
            raise ModelDataError(
                f"arm {a!r} belongs to trait {design.arm(a).trait!r}, not {t!r}", "arm", row
            )
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


def _exnex_members(spec: ModelSpec) -> np.ndarray:
    """Indices (into ``spec.arms``) of the arms that get the EXNEX mixture: group members."""
    return np.flatnonzero(np.asarray(spec.arm_group, dtype=np.int32) >= 0)


def _beta(spec: ModelSpec, theta: jnp.ndarray, theta_child: jnp.ndarray) -> jnp.ndarray:
    """``[n_strata, 1 + n_arms]`` effects on the linear predictor (column 0: usual care)."""
    is_ref = (np.arange(len(spec.age_groups)) == spec.reference_stratum)[:, None]
    beta = jnp.where(is_ref, theta[None, :], theta_child[None, :])
    return jnp.concatenate([jnp.zeros((len(spec.age_groups), 1)), beta], axis=1)


def _arm_effects(spec: ModelSpec) -> tuple[jnp.ndarray, jnp.ndarray | None]:
    """Sample the arm effects; return ``beta`` ``[n_strata, 1 + n_arms]`` (col 0 = 0) and, for
    EXNEX, the effects with every group arm non-exchangeable (else ``None``)."""
    n_arms = len(spec.arms)
    group = np.asarray(spec.arm_group, dtype=np.int32)
    in_group = group >= 0
    z = numpyro.sample("arm_z", dist.Normal(0.0, 1.0).expand([n_arms]).to_event(1))
    theta = spec.arm_loc + spec.arm_scale * z
    if spec.borrowing in ("hierarchical", "exnex") and spec.groups:
        mu_z = numpyro.sample(
            "group_mean_z", dist.Normal(0.0, 1.0).expand([len(spec.groups)]).to_event(1)
        )
        mu = numpyro.deterministic("group_mean", spec.group_mean_loc + spec.group_mean_scale * mu_z)
        tau = numpyro.sample("between_trait_sd", dist.HalfNormal(spec.between_trait_scale))
        theta = jnp.where(in_group, mu[np.maximum(group, 0)] + tau * z, theta)
    theta = numpyro.deterministic("log_or", theta)
    dz = numpyro.sample("child_z", dist.Normal(0.0, 1.0).expand([n_arms]).to_event(1))
    if spec.borrowing == "none":  # children's effect on its own, with the arms' prior
        theta_child = spec.arm_loc + spec.arm_scale * dz
    else:
        sigma_ped = numpyro.sample("child_deviation_sd", dist.HalfNormal(spec.child_scale))
        theta_child = theta + sigma_ped * dz
    theta_child = numpyro.deterministic("log_or_child", theta_child)
    beta = _beta(spec, theta, theta_child)
    if spec.borrowing != "exnex" or not spec.groups:
        return beta, None
    # EXNEX: each group arm also gets a non-exchangeable effect with the arm prior; the choice
    # between the two is marginalised in the likelihood (:func:`_exnex_loglik`).
    members = _exnex_members(spec)
    nz = numpyro.sample("exnex_z", dist.Normal(0.0, 1.0).expand([len(members)]).to_event(1))
    theta_nex = theta.at[members].set(spec.arm_loc + spec.arm_scale * nz)
    theta_nex = numpyro.deterministic("log_or_nex", theta_nex)
    child_nex = numpyro.deterministic("log_or_child_nex", theta_child - theta + theta_nex)
    return beta, _beta(spec, theta_nex, child_nex)


def _exnex_loglik(
    spec: ModelSpec, ll_ex: jnp.ndarray, ll_nex: jnp.ndarray, arm: jnp.ndarray
) -> jnp.ndarray:
    """The EXNEX log likelihood from per-unit log likelihoods (cells or patients).

    Units of a group arm ``j`` (arm code ``1 + j``) contribute
    ``log(w exp(L_ex_j) + (1 - w) exp(L_nex_j))``, their summed likelihood under the
    exchangeable and the non-exchangeable effect; every other unit contributes ``ll_ex``
    (the same under both). Records ``exnex_pr_ex``, the posterior probability that each group
    arm is exchangeable given the other parameters.
    """
    members = _exnex_members(spec)
    code = jnp.asarray(arm)
    onehot = code[:, None] == jnp.asarray(1 + members)[None, :]  # [units, members]
    l_ex = jnp.sum(jnp.where(onehot, ll_ex[:, None], 0.0), axis=0)
    l_nex = jnp.sum(jnp.where(onehot, ll_nex[:, None], 0.0), axis=0)
    a = jnp.log(spec.exnex_weight) + l_ex
    b = jnp.log1p(-spec.exnex_weight) + l_nex
    numpyro.deterministic("exnex_pr_ex", jax.nn.sigmoid(a - b))
    rest = jnp.sum(jnp.where(onehot.any(axis=1), 0.0, ll_ex))
    return rest + jnp.sum(jnp.logaddexp(a, b))


def exnex_draws(
    posterior: dict[str, np.ndarray], spec: ModelSpec, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior draws of ``(log_or, log_or_child)`` of an EXNEX fit, ``[..., n_arms]`` each.

    For each draw and group arm the component is drawn with the recorded probability
    ``exnex_pr_ex`` (exact: the indicator's conditional posterior given the other parameters),
    with a NumPy generator seeded by ``seed``; other arms are unchanged.
    """
    log_or = np.asarray(posterior["log_or"])
    child = np.asarray(posterior["log_or_child"])
    members = _exnex_members(spec)
    if spec.borrowing != "exnex" or not len(members):
        return log_or, child
    pr = np.asarray(posterior["exnex_pr_ex"])
    u = np.random.default_rng(seed).random(pr.shape)
    ex = u < pr
    out, out_child = log_or.copy(), child.copy()
    nex = np.asarray(posterior["log_or_nex"])[..., members]
    nex_child = np.asarray(posterior["log_or_child_nex"])[..., members]
    out[..., members] = np.where(ex, log_or[..., members], nex)
    out_child[..., members] = np.where(ex, child[..., members], nex_child)
    return out, out_child


def _cutpoints(spec: ModelSpec) -> jnp.ndarray:
    n_strata = len(spec.age_groups)
    return numpyro.sample(
        "cutpoints",
        InducedDirichlet(jnp.full((n_strata,), spec.cut_concentration), spec.n_categories).to_event(
            1
        ),
    )


def _era_effects(spec: ModelSpec) -> jnp.ndarray:
    """``[n_eras]`` (shared) or ``[n_traits, n_eras]`` (per trait), first era 0."""
    sd = numpyro.sample("era_step_sd", dist.HalfNormal(spec.era_step_scale))
    lead = () if spec.eras == "shared" else (len(spec.traits),)
    n_steps = spec.n_eras - 1
    z = numpyro.sample(
        "era_z", dist.Normal(0.0, 1.0).expand([*lead, n_steps]).to_event(len(lead) + 1)
    )
    walk = jnp.cumsum(sd * z, axis=-1)
    return numpyro.deterministic(
        "era_effect", jnp.concatenate([jnp.zeros((*lead, 1)), walk], axis=-1)
    )


def _linear_predictor(
    spec: ModelSpec, trait: jnp.ndarray, stratum: jnp.ndarray, arm: jnp.ndarray, era: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray | None]:
    """Sample every parameter; return ``eta`` per row, the cut-points ``[n_strata, K-1]`` and,
    for EXNEX, ``eta`` with the group arms non-exchangeable (else ``None``)."""
    cut = _cutpoints(spec)
    tz = numpyro.sample("trait_z", dist.Normal(0.0, 1.0).expand([len(spec.traits)]).to_event(1))
    shift = numpyro.deterministic("trait_shift", spec.trait_shift_loc + spec.trait_shift_scale * tz)
    era_eff = _era_effects(spec)
    era_term = era_eff[era] if spec.eras == "shared" else era_eff[trait, era]
    beta, beta_nex = _arm_effects(spec)
    base = shift[trait] + era_term
    eta = base + spec.sign * beta[stratum, arm]
    eta_nex = None if beta_nex is None else base + spec.sign * beta_nex[stratum, arm]
    return eta, cut, eta_nex


def joint_model(spec: ModelSpec, data: CellData) -> None:
    """The joint model on sufficient statistics: ``sum_c counts[i, c] * log Pr(Y_i = c)``.

    The multinomial coefficient is left out, so the log density equals the sum of the
    per-patient log likelihoods (:func:`per_patient_model`) exactly.
    """
    eta, cut, eta_nex = _linear_predictor(spec, data.trait, data.stratum, data.arm, data.era)
    counts = jnp.asarray(data.counts)

    def cell_loglik(e):
        log_p = category_log_probs(e, cut[data.stratum])
        return jnp.sum(jnp.where(counts > 0, counts * log_p, 0.0), axis=-1)

    if eta_nex is None:
        numpyro.factor("loglik", jnp.sum(cell_loglik(eta)))
    else:
        ll = _exnex_loglik(spec, cell_loglik(eta), cell_loglik(eta_nex), data.arm)
        numpyro.factor("loglik", ll)


def per_patient_model(spec: ModelSpec, data: CellData, cell: np.ndarray, y: np.ndarray) -> None:
    """The same model with one observation per patient (``cell`` index, ``y`` category index).

    Binary outcomes use a Bernoulli likelihood on ``logit Pr(event) = eta - cut``, ordinal ones
    an ordered-logistic one. Slow by design: it exists to test :func:`joint_model`.
    """
    eta, cut, eta_nex = _linear_predictor(spec, data.trait, data.stratum, data.arm, data.era)
    cut_p = cut[data.stratum[cell]]

    def patient_dist(e):
        if spec.outcome_type == "binary":
            return dist.Bernoulli(logits=e[cell] - cut_p[:, 0])
        return dist.OrderedLogistic(e[cell], cut_p)

    if eta_nex is None:
        numpyro.sample("y", patient_dist(eta), obs=y)
    else:

        def patient_loglik(e):
            return patient_dist(e).log_prob(y)

        arm = jnp.asarray(data.arm)[cell]
        numpyro.factor("y", _exnex_loglik(spec, patient_loglik(eta), patient_loglik(eta_nex), arm))


def expand_patients(data: CellData) -> tuple[np.ndarray, np.ndarray]:
    """Per-patient ``(cell, category index)`` arrays equivalent to ``data.counts``."""
    counts = np.asarray(data.counts).astype(np.int64)
    cell, cat = np.nonzero(counts)
    reps = counts[cell, cat]
    return np.repeat(cell, reps), np.repeat(cat, reps)
