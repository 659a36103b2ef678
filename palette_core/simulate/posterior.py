"""A fast approximate posterior of the joint model: Laplace, integrated over the variance parameters.

The trial simulator analyses about 100,000 looks of the *same* joint model that the interim
analysis fits by NUTS (:func:`palette_core.analysis.models.joint_model`, primary analysis:
``borrowing="hierarchical"``, ``eras="shared"``). NUTS is far too slow for that; this module
approximates the posterior in the INLA manner (Rue, Martino and Chopin 2009):

1. The variance parameters ``h = (sigma_era, tau, sigma_ped)`` (``era_step_sd``,
   ``between_trait_sd``, ``child_deviation_sd``; half-normal priors) are integrated by a
   product quadrature rule for their half-normal priors (:func:`hyper_rule`).
2. At each node ``h_k`` the conditional posterior of everything else, ``x``, is approximated
   by a Gaussian at its mode (Laplace), found by Newton's method with the gradient and the
   Hessian in closed form (:func:`derivatives`).
3. Node ``k`` gets the weight ``w_k`` proportional to the rule's prior weight times the
   Laplace marginal likelihood ``p(y | h_k) ~ p(y, x*_k | h_k) (2 pi)^(n/2) |Q_k|^(-1/2)``.
4. The posterior of every arm effect is the mixture ``sum_k w_k N(m_k, S_k)``: probabilities
   ``Pr(log OR > c)``, means, SDs and quantiles are those of the mixture, and joint draws
   (:func:`joint_draws`) come from it, so that
   :func:`palette_core.randomisation.allocation.pr_best` can be called on them.

The latent vector ``x``
-----------------------
The coordinates are NumPyro's own unconstrained ones, so that :func:`log_joint` equals minus
the model's potential energy (checked by the tests): with ``S`` age strata, ``K`` outcome
categories, ``T`` traits, ``E`` eras, ``A`` experimental arms and ``G`` shared-effect groups,

* ``S x (K - 1)`` cut-point coordinates, per stratum ``(c_0, log(c_1 - c_0), ...)``
  (NumPyro's ``OrderedTransform``);
* then the standard-normal non-centred variables ``trait_z`` (T), ``era_z`` (E - 1), ``arm_z``
  (A), ``group_mean_z`` (G), ``child_z`` (A).

Given ``h``, the *design coordinates* ``u = (trait_shift, era_effect, log_or, log_or_child)``
are an affine function ``u = u0 + M(h) z`` of the normal block (:func:`design_map`), and each
cell's linear predictor is ``eta_i = u[trait_i] + u[T + era_i] + sign * u[arm slot_i]``, with no
arm term for usual care. The log likelihood depends on ``x`` only through ``eta_i`` and the
cut-points of the cell's stratum, and the Hessian of a cell's log likelihood in
``a = cut - eta`` is tridiagonal; the gradient and Hessian are assembled from it with segment
sums over cells (no dense cells x parameters matrix), then mapped by ``M(h)`` and by the
Jacobian of the ordered transform.

Change of variables. :func:`log_joint` is ``log p(y, x | h)`` in these coordinates: it
includes the log-Jacobian of the ordered transform of the cut-points but not the half-normal
priors of ``h``; NumPyro's potential at the same point, with ``h`` on its log scale, is
``-(log_joint + sum_j log HalfNormal(h_j) + sum_j log h_j)`` (:func:`hyper_log_prior`).

Precision
---------
Everything runs in JAX's default float32. Measured against float64 on the accuracy panel's
looks (see :mod:`palette_core.simulate.accuracy` and the tests), float32 changes the decision
probabilities by far less than the approximation's own error: the log likelihood enters only
through per-cell terms computed stably in log space, and the Newton solve is a Cholesky
factorisation of a well-conditioned matrix (the standard-normal prior adds the identity).

Two layers
----------
* Pure functions of arrays (:func:`log_joint`, :func:`derivatives`, :func:`laplace_arrays`,
  :func:`pr_greater`, :func:`mixture_summary`, :func:`joint_draws`): JAX only, no validation,
  fixed shapes, ``jax.jit``- and ``jax.vmap``-able over datasets.
* The boundary (:func:`layout`, :class:`LaplacePosterior`): checks once
  that the spec is the primary analysis and compiles once per design.

Unused eras (all-zero counts) and arms without patients are harmless: their cells add nothing
to the likelihood, so their variables keep their prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.nn import log_sigmoid
from jax.scipy.linalg import cho_solve, solve_triangular
from jax.scipy.special import gammaln, ndtr

from palette_core.analysis.models import CellData, InducedDirichlet, ModelSpec, Priors
from palette_core.analysis.models import category_log_probs as _category_log_probs
from palette_core.errors import ModelDataError

#: Names of the variance parameters integrated by quadrature, in the order of ``h``.
HYPER_NAMES = ("era_step_sd", "between_trait_sd", "child_deviation_sd")
_LOG_2PI = float(np.log(2.0 * np.pi))


# ----------------------------------------------------------------------------- static layout
@dataclass(frozen=True)
class Layout:
    """The static shapes and index structure of the latent vector (hashable).

    Attributes
    ----------
    n_strata, n_cut, n_traits, n_eras, n_arms, n_groups
        ``S``, ``K - 1``, ``T``, ``E``, ``A``, ``G``.
    arm_group
        Per experimental arm, its shared-effect group (-1: none).
    sign, reference_stratum
        As in :class:`~palette_core.analysis.models.ModelSpec`.
    """

    n_strata: int
    n_cut: int
    n_traits: int
    n_eras: int
    n_arms: int
    n_groups: int
    arm_group: tuple[int, ...]
    sign: int
    reference_stratum: int

    @property
    def n_u(self) -> int:
        """Design coordinates: trait shifts, era effects, adult and children's log ORs."""
        return self.n_traits + self.n_eras + 2 * self.n_arms

    @property
    def n_z(self) -> int:
        """Standard-normal variables: trait_z, era_z, arm_z, group_mean_z, child_z."""
        return self.n_traits + self.n_eras - 1 + 2 * self.n_arms + self.n_groups

    @property
    def n_cut_total(self) -> int:
        return self.n_strata * self.n_cut

    @property
    def n_x(self) -> int:
        return self.n_cut_total + self.n_z

    # offsets of the blocks of z
    @property
    def z_era(self) -> int:
        return self.n_traits

    @property
    def z_arm(self) -> int:
        return self.n_traits + self.n_eras - 1

    @property
    def z_group(self) -> int:
        return self.z_arm + self.n_arms

    @property
    def z_child(self) -> int:
        return self.z_group + self.n_groups

    @property
    def u_arm(self) -> int:
        return self.n_traits + self.n_eras


def layout(spec: ModelSpec) -> Layout:
    """The :class:`Layout` of ``spec``; only the primary analysis is approximated.

    Raises :class:`~palette_core.errors.ModelDataError` for another borrowing or era model.
    """
    if spec.borrowing != "hierarchical":
        raise ModelDataError(
            f"the Laplace approximation covers borrowing='hierarchical' only, not "
            f"{spec.borrowing!r}",
            "borrowing",
        )
    if spec.eras != "shared":
        raise ModelDataError(
            f"the Laplace approximation covers eras='shared' only, not {spec.eras!r}", "eras"
        )
    return Layout(
        n_strata=len(spec.age_groups),
        n_cut=spec.n_categories - 1,
        n_traits=len(spec.traits),
        n_eras=spec.n_eras,
        n_arms=len(spec.arms),
        n_groups=len(spec.groups),
        arm_group=tuple(int(g) for g in spec.arm_group),
        sign=int(spec.sign),
        reference_stratum=int(spec.reference_stratum),
    )


@lru_cache(maxsize=32)
def _map_masks(lay: Layout) -> dict[str, np.ndarray]:
    """0/1 matrices ``[n_u, n_z]`` whose scaled sum is ``M(h)``, and 0/1 offset vectors."""
    t, e, a, g = lay.n_traits, lay.n_eras, lay.n_arms, lay.n_groups
    shape = (lay.n_u, lay.n_z)
    m = {k: np.zeros(shape) for k in ("shift", "era", "free", "tau", "gmean", "child")}
    v = {k: np.zeros(lay.n_u) for k in ("shift_loc", "arm_loc", "gmean_loc")}
    m["shift"][np.arange(t), np.arange(t)] = 1.0
    v["shift_loc"][:t] = 1.0
    for k in range(1, e):  # era k = sigma * (z_0 + ... + z_{k-1})
        m["era"][t + k, lay.z_era : lay.z_era + k] = 1.0
    for arm, grp in enumerate(lay.arm_group):
        for row in (lay.u_arm + arm, lay.u_arm + a + arm):  # adult, then children
            if grp < 0:
                m["free"][row, lay.z_arm + arm] = 1.0
                v["arm_loc"][row] = 1.0
            else:
                m["tau"][row, lay.z_arm + arm] = 1.0
                m["gmean"][row, lay.z_group + grp] = 1.0
                v["gmean_loc"][row] = 1.0
        m["child"][lay.u_arm + a + arm, lay.z_child + arm] = 1.0
    assert g == 0 or m["gmean"].any()
    return {**m, **v}


def design_map(lay: Layout, prior: Priors, h: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``(u0, M)`` with ``u = u0 + M z``: trait shifts, era effects, adult and children's log ORs.

    ``h = (sigma_era, tau, sigma_ped)``. ``M`` is ``[n_u, n_z]``.
    """
    h = jnp.asarray(h)
    mk = {k: jnp.asarray(v, dtype=h.dtype) for k, v in _map_masks(lay).items()}
    sigma_era, tau, sigma_ped = h[0], h[1], h[2]
    mat = (
        prior.trait_shift_scale * mk["shift"]
        + sigma_era * mk["era"]
        + prior.arm_scale * mk["free"]
        + tau * mk["tau"]
        + prior.group_mean_scale * mk["gmean"]
        + sigma_ped * mk["child"]
    )
    u0 = (
        prior.trait_shift_loc * mk["shift_loc"]
        + prior.arm_loc * mk["arm_loc"]
        + prior.group_mean_loc * mk["gmean_loc"]
    )
    return jnp.asarray(u0, dtype=mat.dtype), mat


class CellIndex(NamedTuple):
    """Where each cell's linear predictor reads ``u`` (used by :func:`log_joint` only):
    positions ``[n_cells, 3]`` (trait, era, arm slot), coefficients ``[n_cells, 3]`` (1, 1,
    sign or 0 for usual care) and the stratum ``[n_cells]``."""

    pos: jnp.ndarray
    coef: jnp.ndarray
    stratum: jnp.ndarray


def cell_index(lay: Layout, data: CellData) -> CellIndex:
    """The :class:`CellIndex` of ``data`` (JAX; traceable)."""
    trait = jnp.asarray(data.trait, dtype=jnp.int32)
    era = jnp.asarray(data.era, dtype=jnp.int32)
    arm = jnp.asarray(data.arm, dtype=jnp.int32)
    stratum = jnp.asarray(data.stratum, dtype=jnp.int32)
    child = jnp.where(stratum == lay.reference_stratum, 0, lay.n_arms)
    slot = lay.u_arm + child + jnp.maximum(arm - 1, 0)
    pos = jnp.stack([trait, lay.n_traits + era, slot], axis=-1)
    counts = jnp.asarray(data.counts)
    coef_arm = jnp.where(arm > 0, float(lay.sign), 0.0).astype(counts.dtype)
    coef = jnp.stack([jnp.ones_like(coef_arm), jnp.ones_like(coef_arm), coef_arm], axis=-1)
    return CellIndex(pos, coef, stratum)


class Structure(NamedTuple):
    """The cell grid as ``n_groups`` blocks of ``E`` consecutive cells (one per era) that share
    trait, stratum and arm: the order of :func:`~palette_core.analysis.models.cell_grid`.

    ``design`` ``[n_groups, n_u]``: each block's coefficients on the design coordinates other
    than the eras (1 on its trait shift, ``sign`` on its arm slot, nothing for usual care);
    ``stratum`` ``[n_groups, S]``: one-hot age stratum. Every sum over cells is then a sum over
    the era axis and a product with one of these two small matrices, which ``jax.vmap`` batches
    as matrix products (scatter-adds over cells batch badly on CPU).
    """

    design: Any
    stratum: Any


def structure(lay: Layout, data: CellData) -> Structure:
    """The :class:`Structure` of ``data``'s cell grid (NumPy; the boundary).

    Raises :class:`~palette_core.errors.ModelDataError` naming the column and row when the cells
    are not blocks of consecutive eras ``0 .. E - 1`` of one trait, stratum and arm (the order
    of :func:`~palette_core.analysis.models.model_data`), or an index is out of range.
    """
    e = lay.n_eras
    cols = {c: np.asarray(getattr(data, c)) for c in ("trait", "stratum", "arm", "era")}
    n_cells = cols["era"].shape[0]
    if np.shape(data.counts) != (n_cells, lay.n_cut + 1):
        raise ModelDataError(
            f"counts have shape {np.shape(data.counts)}, expected ({n_cells}, {lay.n_cut + 1})",
            "counts",
        )
    if n_cells % e:
        raise ModelDataError(f"{n_cells} cells are not blocks of {e} eras", "era")
    bounds = {"trait": lay.n_traits, "stratum": lay.n_strata, "arm": lay.n_arms + 1, "era": e}
    for col, hi in bounds.items():
        bad = np.flatnonzero((cols[col] < 0) | (cols[col] >= hi))
        if bad.size:
            raise ModelDataError(f"{cols[col][bad[0]]} is outside 0..{hi - 1}", col, int(bad[0]))
    blocks = {c: v.reshape(-1, e) for c, v in cols.items()}
    bad = np.flatnonzero((blocks["era"] != np.arange(e)).any(axis=1))
    if bad.size:
        raise ModelDataError(
            "cells are not in era order 0..E-1 within a block", "era", int(bad[0]) * e
        )
    for col in ("trait", "stratum", "arm"):
        bad = np.flatnonzero((blocks[col] != blocks[col][:, :1]).any(axis=1))
        if bad.size:
            raise ModelDataError(f"{col} changes within a block of eras", col, int(bad[0]) * e)
    trait, stratum, arm = (blocks[c][:, 0] for c in ("trait", "stratum", "arm"))
    n_groups = trait.shape[0]
    design = np.zeros((n_groups, lay.n_u), dtype=np.float32)
    design[np.arange(n_groups), trait] = 1.0
    exp = np.flatnonzero(arm > 0)
    child = np.where(stratum[exp] == lay.reference_stratum, 0, lay.n_arms)
    design[exp, lay.u_arm + child + arm[exp] - 1] = float(lay.sign)
    onehot = np.zeros((n_groups, lay.n_strata), dtype=np.float32)
    onehot[np.arange(n_groups), stratum] = 1.0
    return Structure(design, onehot)


# ----------------------------------------------------------------------------- per-cell terms
#: Bound on ``|cut - eta|`` inside the closed-form per-cell terms: beyond it a category's
#: probability is below ``exp(-50)`` and the ratios below would underflow in float32.
A_MAX = 50.0


class CellTerms(NamedTuple):
    """Per-cell log likelihood ``[...]``, gradient ``[..., J]``, Hessian diagonal ``[..., J]`` and
    off-diagonal ``[..., J-1]`` in ``a = cut - eta`` (``J = K - 1``), and (on request) the third
    derivative in ``eta`` ``[...]``."""

    ll: jnp.ndarray
    grad: jnp.ndarray
    diag: jnp.ndarray
    off: jnp.ndarray
    third: jnp.ndarray | None


def gap_terms(cut: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``G_j = 1 - exp(-(cut_j - cut_{j-1}))`` and ``log G_j`` ``[..., J-1]``: the factor that
    the width of a middle category contributes to its probability. It does not depend on
    ``eta``, so it is computed once per stratum, not per cell."""
    g = -jnp.expm1(cut[..., :-1] - cut[..., 1:])
    return g, jnp.log(g)


def cell_terms(
    a: jnp.ndarray,
    n: jnp.ndarray,
    gaps: tuple[jnp.ndarray, jnp.ndarray] | None = None,
    *,
    third: bool = False,
) -> CellTerms:
    """Log likelihood of counts ``n`` ``[..., K]`` at ``a = cut - eta`` ``[..., K-1]`` and its
    derivatives in ``a`` (the Hessian is tridiagonal). Zero counts contribute exactly nothing.

    With ``sigma_j = sigma(a_j)``, ``f_j = sigma_j (1 - sigma_j)`` and the stable factorisation
    ``p_c = sigma(a_c) sigma(-a_{c-1}) G_c`` of a middle category (:func:`gap_terms`), the
    ratios ``r_j = f_j / p_j`` and ``s_j = f_j / p_{j+1}`` need no further exponentials:
    ``g_j = n_j r_j - n_{j+1} s_j``, ``H_jj = (1 - 2 sigma_j) g_j - n_j r_j^2 - n_{j+1} s_j^2``
    and ``H_j,j+1 = n_{j+1} s_j r_{j+1}``. The third derivative in ``eta`` (cut-points fixed) is
    ``sum_c n_c (q3 - 3 q1 q2 + 2 q1^3)`` with ``q_m = (d^m p_c / d eta^m) / p_c``, formed from
    the same ratios (``f' = f (1 - 2 sigma)``, ``f'' = f (1 - 6 f)``). One exponential and one
    logarithm per cut-point and cell; ``gaps`` (per cell, or broadcastable) saves the others.
    """
    a = jnp.clip(a, -A_MAX, A_MAX)
    e = jnp.exp(-jnp.abs(a))
    inv = 1.0 / (1.0 + e)
    pos = a >= 0
    sp = jnp.where(pos, inv, e * inv)  # sigma(a)
    sn = jnp.where(pos, e * inv, inv)  # sigma(-a)
    l1 = jnp.log1p(e)
    lsp = -l1 - jnp.maximum(-a, 0.0)
    lsn = -l1 - jnp.maximum(a, 0.0)
    g_gap, log_gap = gap_terms(a) if gaps is None else gaps
    log_p = jnp.concatenate(
        [lsp[..., :1], lsp[..., 1:] + lsn[..., :-1] + log_gap, lsn[..., -1:]], -1
    )
    r = jnp.concatenate([sn[..., :1], sn[..., 1:] / (sn[..., :-1] * g_gap)], -1)
    s = jnp.concatenate([sp[..., :-1] / (sp[..., 1:] * g_gap), sp[..., -1:]], -1)
    nz = n != 0
    ll = jnp.sum(jnp.where(nz, n * log_p, 0.0), axis=-1)
    tu = jnp.where(nz[..., :-1], n[..., :-1] * r, 0.0)
    td = jnp.where(nz[..., 1:], n[..., 1:] * s, 0.0)
    grad = tu - td
    slope = sn - sp
    diag = slope * grad - (tu * r + td * s)
    off = td[..., :-1] * r[..., 1:]
    t3 = None
    if third:
        zero = jnp.zeros_like(a[..., :1])

        def diff(poly):  # (f_c poly_c - f_{c-1} poly_{c-1}) / p_c for every category c
            return jnp.concatenate([r * poly, zero], -1) - jnp.concatenate([zero, s * poly], -1)

        q1 = -diff(jnp.ones_like(a))
        q2 = diff(slope)
        q3 = -diff(1.0 - 6.0 * sp * sn)
        t3 = jnp.sum(jnp.where(nz, n * (q3 - 3.0 * q1 * q2 + 2.0 * q1**3), 0.0), axis=-1)
    return CellTerms(ll, grad, diag, off, t3)


# ----------------------------------------------------------------------------- log density
def _split(lay: Layout, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    return x[: lay.n_cut_total].reshape(lay.n_strata, lay.n_cut), x[lay.n_cut_total :]


def _cutpoints(xc: jnp.ndarray) -> jnp.ndarray:
    return jnp.cumsum(jnp.concatenate([xc[:, :1], jnp.exp(xc[:, 1:])], axis=-1), axis=-1)


def _cut_prior(lay: Layout, prior: Priors, cut: jnp.ndarray, gaps: tuple[jnp.ndarray, jnp.ndarray]):
    """Induced-Dirichlet log density of the cut-points (natural scale) and its derivatives."""
    k = lay.n_cut + 1
    conc = prior.cut_concentration
    pseudo = jnp.broadcast_to(jnp.asarray(conc - 1.0, dtype=cut.dtype), (lay.n_strata, k))
    t = cell_terms(cut, pseudo, gaps)
    lp = log_sigmoid(cut)
    norm = gammaln(k * conc) - k * gammaln(conc)
    value = jnp.sum(t.ll) + lay.n_strata * norm + jnp.sum(2.0 * lp - cut)
    sig = jnp.exp(lp)
    return value, t.grad + (1.0 - 2.0 * sig), t.diag - 2.0 * sig * (1.0 - sig), t.off


def log_joint(
    lay: Layout, prior: Priors, h: jnp.ndarray, x: jnp.ndarray, data: CellData
) -> jnp.ndarray:
    """``log p(y, x | h)`` in the unconstrained coordinates of the module docstring.

    Written with the model's own pieces (:func:`~palette_core.analysis.models.category_log_probs`
    and :class:`~palette_core.analysis.models.InducedDirichlet`), independently of the closed
    forms of :func:`derivatives`, which the tests check against its automatic derivatives.
    """
    idx = cell_index(lay, data)
    xc, z = _split(lay, x)
    cut = _cutpoints(xc)
    u0, mat = design_map(lay, prior, h)
    u = u0 + mat @ z
    eta = jnp.sum(u[idx.pos] * idx.coef, axis=-1)
    counts = jnp.asarray(data.counts)
    log_p = _category_log_probs(eta, cut[idx.stratum])
    ll = jnp.sum(jnp.where(counts > 0, counts * log_p, 0.0))
    conc = jnp.full((lay.n_strata,), prior.cut_concentration, dtype=cut.dtype)
    cp = jnp.sum(InducedDirichlet(conc, lay.n_cut + 1).log_prob(cut))
    normal = -0.5 * jnp.sum(z**2) - 0.5 * lay.n_z * _LOG_2PI
    return ll + cp + jnp.sum(xc[:, 1:]) + normal


def hyper_log_prior(prior: Priors, h: jnp.ndarray) -> jnp.ndarray:
    """``sum_j log HalfNormal(h_j) + log h_j``: the variance parameters' prior on NumPyro's log
    scale (the term that turns :func:`log_joint` into minus NumPyro's potential)."""
    scales = jnp.stack([prior.era_step_scale, prior.between_trait_scale, prior.child_scale])
    log_hn = 0.5 * jnp.log(2.0 / jnp.pi) - jnp.log(scales) - 0.5 * (h / scales) ** 2
    return jnp.sum(log_hn + jnp.log(h))


class Derivatives(NamedTuple):
    """:func:`log_joint` at ``x``, its gradient ``[n_x]`` and Hessian ``[n_x, n_x]``; ``fix``
    ``[n_x]`` is the diagonal that :func:`newton` subtracts from the Hessian (zero at the mode)
    to keep it negative definite away from the mode. With ``third=True``: each cell's third
    derivative in ``eta`` ``[n_cells]`` and the information of each cut-point ``[S, J]``
    (minus the row sums of the Hessian in the natural cut-points), for :func:`_effects`."""

    value: jnp.ndarray
    grad: jnp.ndarray
    hess: jnp.ndarray
    fix: jnp.ndarray
    third: jnp.ndarray | None = None
    info: jnp.ndarray | None = None


def _row_sums(diag: jnp.ndarray, off: jnp.ndarray) -> jnp.ndarray:
    zero = jnp.zeros_like(diag[..., :1])
    return diag + jnp.concatenate([zero, off], -1) + jnp.concatenate([off, zero], -1)


class Pieces(NamedTuple):
    """The terms of :func:`log_joint` that do not depend on ``h``, at ``(xc, u)``.

    ``value``: the log likelihood plus the cut-points' prior and the log-Jacobian of their
    ordered transform (everything but the standard-normal prior of ``z``); its gradient and
    Hessian in the cut-point coordinates ``xc`` (``[S J]``, ``[S J, S J]``) and in the design
    coordinates ``u`` (``[n_u]``, ``[n_u, n_u]``), the cross block ``[S J, n_u]``, the
    diagonal ``fix`` of :class:`Derivatives` ``[S J]``, and (``third=True``) the cells' third
    derivatives in ``eta`` ``[n_groups, E]`` and the cut-points' information ``[S, J]``."""

    value: jnp.ndarray
    g_xc: jnp.ndarray
    h_xc: jnp.ndarray
    cross: jnp.ndarray
    g_u: jnp.ndarray
    h_u: jnp.ndarray
    fix: jnp.ndarray
    third: jnp.ndarray | None
    info: jnp.ndarray | None


def pieces(
    lay: Layout,
    st: Structure,
    prior: Priors,
    xc: jnp.ndarray,
    u: jnp.ndarray,
    counts: jnp.ndarray,
    *,
    third: bool = False,
) -> Pieces:
    """The :class:`Pieces` at cut-point coordinates ``xc`` ``[S, J]`` and design coordinates
    ``u`` ``[n_u]``, in closed form.

    Cells enter through ``eta`` (a trait shift, an era effect and an arm effect each) and their
    stratum's cut-points; the derivatives in ``(cut, u)`` are sums of the per-cell terms of
    :func:`cell_terms` over eras and over the blocks of :class:`Structure`, then mapped to
    ``xc`` by the Jacobian of the ordered transform.
    """
    s_, j_, t_, e_ = lay.n_strata, lay.n_cut, lay.n_traits, lay.n_eras
    dtype = u.dtype
    design, onehot = jnp.asarray(st.design, dtype), jnp.asarray(st.stratum, dtype)
    n_groups = design.shape[0]
    n = jnp.asarray(counts, dtype).reshape(n_groups, e_, j_ + 1)
    cut = _cutpoints(xc)
    gaps = gap_terms(cut)
    eras = slice(t_, t_ + e_)
    eta = (design @ u)[:, None] + u[eras][None, :]  # [G, E]
    cut_g = onehot @ cut  # [G, J]
    gaps_g = ((onehot @ gaps[0])[:, None, :], (onehot @ gaps[1])[:, None, :])
    cells = cell_terms(cut_g[:, None, :] - eta[..., None], n, gaps_g, third=third)
    cp, gp, dp, op = _cut_prior(lay, prior, cut, gaps)
    value = jnp.sum(cells.ll) + cp + jnp.sum(xc[:, 1:])

    # ---- gradient in (cut, u)
    g_eta = -jnp.sum(cells.grad, axis=-1)  # [G, E]
    g_u = (design.T @ jnp.sum(g_eta, axis=1)).at[eras].add(jnp.sum(g_eta, axis=0))
    g_cut = onehot.T @ jnp.sum(cells.grad, axis=1) + gp  # [S, J]
    # ---- Hessian in (cut, u)
    row = _row_sums(cells.diag, cells.off)  # [G, E, J]: row sums of the tridiagonal Hessian
    w = jnp.sum(row, axis=-1)  # [G, E]: d2 ll / d eta2
    h_u = (design.T * jnp.sum(w, axis=1)) @ design
    cross_ue = design.T @ w  # [n_u, E]
    diag_e = jnp.arange(t_, t_ + e_)
    h_u = h_u.at[:, eras].add(cross_ue).at[eras, :].add(cross_ue.T)
    h_u = h_u.at[diag_e, diag_e].add(jnp.sum(w, axis=0))
    cross = jnp.einsum("gs,gp,gj->spj", onehot, design, -jnp.sum(row, axis=1))  # [S, n_u, J]
    cross = cross.at[:, eras, :].add(jnp.einsum("gs,gkj->skj", onehot, -row))
    d_cut = onehot.T @ jnp.sum(cells.diag, axis=1) + dp
    o_cut = onehot.T @ jnp.sum(cells.off, axis=1) + op
    eye = jnp.eye(j_, dtype=dtype)
    h_cut = d_cut[:, :, None] * eye
    if j_ > 1:
        sup = jnp.eye(j_, k=1, dtype=dtype)
        o_pad = jnp.concatenate([o_cut, jnp.zeros_like(o_cut[:, :1])], axis=-1)
        h_cut = h_cut + o_pad[:, :, None] * sup + o_pad[:, None, :] * sup.T
    # ---- cut-points to xc: the ordered transform
    ex = jnp.exp(xc)
    jac_diag = jnp.concatenate([jnp.ones_like(ex[:, :1]), ex[:, 1:]], axis=-1)  # [S, J]
    lower = jnp.tril(jnp.ones((j_, j_), dtype=dtype))
    jac = lower[None] * jac_diag[:, None, :]  # [S, J, J]: d cut_c / d xc_j
    rev = jnp.flip(jnp.cumsum(jnp.flip(g_cut, -1), axis=-1), -1)  # sum_{c >= j} g_cut_c
    first = jnp.zeros_like(ex[:, :1])
    g_xc = jac_diag * rev + jnp.concatenate([first, jnp.ones_like(ex[:, 1:])], -1)
    second = jnp.concatenate([first, ex[:, 1:] * rev[:, 1:]], axis=-1)
    h_xcs = jnp.einsum("sci,scd,sdj->sij", jac, h_cut, jac) + second[:, :, None] * eye
    h_xc = jnp.zeros((lay.n_cut_total, lay.n_cut_total), dtype=dtype)
    for s in range(s_):
        sl = slice(s * j_, (s + 1) * j_)
        h_xc = h_xc.at[sl, sl].set(h_xcs[s])
    cross_x = jnp.einsum("sci,suc->siu", jac, cross).reshape(lay.n_cut_total, lay.n_u)
    info = None
    if third:
        info = -(onehot.T @ jnp.sum(row, axis=1) + _row_sums(dp, op))
    fix = 2.0 * jnp.maximum(second, 0.0).reshape(-1)
    return Pieces(value, g_xc.reshape(-1), h_xc, cross_x, g_u, h_u, fix, cells.third, info)


def assemble(lay: Layout, pc: Pieces, mat: jnp.ndarray, z: jnp.ndarray) -> Derivatives:
    """:class:`Derivatives` in ``x = (xc, z)`` from :class:`Pieces` and ``M(h)`` (``u = u0 + M
    z``), adding the standard-normal prior of ``z``."""
    n_ct = lay.n_cut_total
    value = pc.value - 0.5 * jnp.sum(z**2) - 0.5 * lay.n_z * _LOG_2PI
    grad = jnp.concatenate([pc.g_xc, mat.T @ pc.g_u - z])
    hx = pc.cross @ mat
    h_z = mat.T @ pc.h_u @ mat - jnp.eye(lay.n_z, dtype=mat.dtype)
    hess = jnp.zeros((lay.n_x, lay.n_x), dtype=mat.dtype)
    hess = hess.at[:n_ct, :n_ct].set(pc.h_xc).at[:n_ct, n_ct:].set(hx)
    hess = hess.at[n_ct:, :n_ct].set(hx.T).at[n_ct:, n_ct:].set(h_z)
    fix = jnp.concatenate([pc.fix, jnp.zeros(lay.n_z, mat.dtype)])
    return Derivatives(value, grad, hess, fix, pc.third, pc.info)


def derivatives(
    lay: Layout,
    st: Structure,
    prior: Priors,
    h: jnp.ndarray,
    x: jnp.ndarray,
    counts: jnp.ndarray,
    *,
    third: bool = False,
) -> Derivatives:
    """:func:`log_joint`, its gradient and its Hessian in ``x``, in closed form
    (:func:`pieces` at ``u = u0 + M(h) z``, then :func:`assemble`)."""
    xc, z = _split(lay, x)
    u0, mat = design_map(lay, prior, h)
    return assemble(lay, pieces(lay, st, prior, xc, u0 + mat @ z, counts, third=third), mat, z)


# ----------------------------------------------------------------------------- quadrature
@dataclass(frozen=True)
class Rule:
    """A product rule over ``h`` with ``n_nodes`` per variance parameter (:data:`HYPER_NAMES`).

    ``kind="gauss"``: Gauss nodes of a :class:`Proposal` (:func:`chi_rule`), weighted by the
    importance ratio prior / proposal. ``kind="trapezoid"``: equally spaced nodes from 0 to
    ``span`` prior scales, weighted by the prior (half weight at both ends); the integrand
    (prior times marginal likelihood) is an even, smooth function of ``h``, so its odd
    derivatives vanish at 0 and the trapezoid rule converges fast: a reference rule.
    """

    n_nodes: tuple[int, int, int] = (3, 3, 3)
    kind: str = "gauss"
    span: float = 4.0

    @property
    def size(self) -> int:
        return int(np.prod(self.n_nodes))


#: Below this chi ``k``, :func:`posterior_proposal` proposes a half-normal (see there).
K_MIN = 2.5


class Proposal(NamedTuple):
    """Per variance parameter, a scaled chi distribution ``h = sigma * chi_k`` (``[3]`` each,
    traced): ``k = 1`` is a half-normal (the prior's shape), larger ``k`` a distribution
    concentrated away from 0 (coefficient of variation about ``1 / sqrt(2 k)``)."""

    k: jnp.ndarray
    sigma: jnp.ndarray


def prior_proposal(prior: Priors) -> Proposal:
    """The priors themselves: half-normal, ``k = 1`` and ``sigma`` the prior scale."""
    scales = jnp.stack([prior.era_step_scale, prior.between_trait_scale, prior.child_scale])
    return Proposal(jnp.ones_like(scales), scales)


def chi_rule(n: int, k: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Gauss rule of ``n`` nodes for the chi distribution with ``k`` degrees of freedom: nodes
    ``y_i > 0`` and probability weights ``w_i``, exact for ``E p(Y^2)`` with ``p`` a polynomial
    of degree ``<= 2n - 1`` (generalised Gauss-Laguerre in ``x = Y^2 / 2``, ``alpha = k/2 - 1``,
    by Golub-Welsch: JAX, traceable in ``k``)."""
    alpha = 0.5 * k - 1.0
    i = jnp.arange(n, dtype=jnp.result_type(k, jnp.float32))
    diag = 2.0 * i + alpha + 1.0
    off = jnp.sqrt(i[1:] * (i[1:] + alpha))
    jacobi = jnp.diag(diag) + jnp.diag(off, 1) + jnp.diag(off, -1)
    x, vecs = jnp.linalg.eigh(jacobi)
    w = vecs[0] ** 2
    return jnp.sqrt(2.0 * x), w / jnp.sum(w)


def _log_chi_pdf(y: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
    return (k - 1.0) * jnp.log(y) - 0.5 * y**2 - (0.5 * k - 1.0) * jnp.log(2.0) - gammaln(0.5 * k)


def hyper_nodes(rule: Rule, proposal: Proposal, prior: Priors):
    """Nodes ``h_k`` ``[size, 3]`` and the log of their importance weights ``[size]``:
    ``log w_k + log p(h_k) - log q(h_k)`` (prior ``p``: half-normal; ``q``: the proposal)."""
    scales = jnp.stack([prior.era_step_scale, prior.between_trait_scale, prior.child_scale])
    axes, logw = [], []
    for j, n in enumerate(rule.n_nodes):
        if rule.kind == "trapezoid":
            t = np.linspace(0.0, rule.span, n) if n > 1 else np.ones(1)
            ends = np.ones(n)
            if n > 1:
                ends[[0, -1]] = 0.5
            h = scales[j] * jnp.asarray(t, dtype=scales.dtype)
            log_w = jnp.log(jnp.asarray(ends * (t[1] - t[0] if n > 1 else 1.0), scales.dtype))
            log_q = -jnp.log(scales[j])  # the rule integrates over t = h / scale
        else:
            y, w = chi_rule(n, proposal.k[j])
            h = proposal.sigma[j] * y
            log_w = jnp.log(w)
            log_q = _log_chi_pdf(y, proposal.k[j]) - jnp.log(proposal.sigma[j])
        log_p = 0.5 * jnp.log(2.0 / jnp.pi) - jnp.log(scales[j]) - 0.5 * (h / scales[j]) ** 2
        axes.append(h)
        logw.append(log_w + log_p - log_q)
    grids = jnp.meshgrid(*axes, indexing="ij")
    wgrids = jnp.meshgrid(*logw, indexing="ij")
    nodes = jnp.stack([g.reshape(-1) for g in grids], axis=-1)
    return nodes, sum(w.reshape(-1) for w in wgrids)


def posterior_proposal(
    nodes: jnp.ndarray, weights: jnp.ndarray, k_min: float = K_MIN, k_max: float = 50.0
) -> Proposal:
    """The chi proposal with the posterior's first two moments of ``h^2`` (``k = 2 m^2 / v``,
    ``sigma^2 = m / k``): where the next rule goes.

    ``k`` below ``k_min`` becomes 1 (a half-normal with the posterior's ``E h^2``): with the
    half-normal prior, the importance ratio prior / proposal is then smooth in ``h^2``, while a
    chi proposal with small ``k > 1`` makes it singular (``h^(1-k)``) where the posterior still
    has mass near 0; ``k`` above ``k_max`` is capped. A coordinate integrated by one node
    carries no information on its spread: its proposal keeps ``E h^2`` of its node.
    """
    h2 = nodes**2
    m = jnp.sum(weights[:, None] * h2, axis=0)
    v = jnp.sum(weights[:, None] * (h2 - m) ** 2, axis=0)
    k = 2.0 * m**2 / jnp.maximum(v, 1e-30)
    k = jnp.where(k < k_min, 1.0, jnp.minimum(k, k_max))
    return Proposal(k, jnp.sqrt(m / k))


# ----------------------------------------------------------------------------- Newton
def initial_point(lay: Layout, st: Structure, prior: Priors, counts: jnp.ndarray) -> jnp.ndarray:
    """A cold start: every normal variable at 0, cut-points at the pooled cumulative logits of
    each stratum (smoothed by the Dirichlet concentration), less the prior trait-shift mean."""
    onehot = jnp.asarray(st.stratum)
    n = jnp.asarray(counts).reshape(onehot.shape[0], lay.n_eras, lay.n_cut + 1)
    p = onehot.T @ jnp.sum(n, axis=1) + prior.cut_concentration  # [S, K]
    cdf = jnp.cumsum(p / jnp.sum(p, axis=-1, keepdims=True), axis=-1)[:, :-1]
    cdf = jnp.clip(cdf, 1e-4, 1.0 - 1e-4)
    cut = jnp.log(cdf) - jnp.log1p(-cdf) - prior.trait_shift_loc
    cut = jax.lax.cummax(cut, axis=1) + 1e-2 * jnp.arange(lay.n_cut)
    xc = jnp.concatenate([cut[:, :1], jnp.log(jnp.diff(cut, axis=-1))], axis=-1)
    return jnp.concatenate([xc.reshape(-1), jnp.zeros(lay.n_z, dtype=xc.dtype)])


class NodeFit(NamedTuple):
    """The Laplace approximation at one node ``h``: mode ``[n_x]``, the Cholesky factor of the
    precision ``[n_x, n_x]``, the log marginal likelihood, the final Newton decrement
    ``g' Q^-1 g``, whether the precision was positive definite, and the cells' third
    derivatives ``[n_groups, E]`` and the cut-points' information ``[S, J]`` at the last
    evaluation (for the simplified Laplace correction of :func:`node_effects`)."""

    mode: jnp.ndarray
    chol: jnp.ndarray
    log_ml: jnp.ndarray
    decrement: jnp.ndarray
    positive_definite: jnp.ndarray
    third: jnp.ndarray
    info: jnp.ndarray


def _newton_step(der: Derivatives, max_step: float):
    q = -(der.hess - jnp.diag(der.fix))
    chol = jnp.linalg.cholesky(q)
    delta = cho_solve((chol, True), der.grad)
    big = jnp.max(jnp.abs(delta))
    scale = jnp.where(big > max_step, max_step / big, 1.0)
    return chol, delta, scale


def newton(
    lay: Layout,
    st: Structure,
    prior: Priors,
    h: jnp.ndarray,
    x0: jnp.ndarray,
    counts: jnp.ndarray,
    n_steps: int,
    max_step: float = 2.0,
) -> NodeFit:
    """``n_steps`` damped Newton steps from ``x0`` (each at most ``max_step`` in any
    coordinate), then one more evaluation: its full Newton step gives the mode, and its
    Hessian the Laplace precision and marginal likelihood
    ``log p(y | h) = log p(y, x* | h) + n/2 log(2 pi) - 1/2 log |Q|``, with
    ``log p(y, x* | h) = L(x) + g' delta / 2`` (exact to second order)."""

    def step(x, _):
        der = derivatives(lay, st, prior, h, x, counts)
        _, delta, scale = _newton_step(der, max_step)
        x_new = x + jnp.where(jnp.all(jnp.isfinite(delta)), scale * delta, 0.0)
        return x_new, None

    x, _ = jax.lax.scan(step, x0, None, length=n_steps)
    der = derivatives(lay, st, prior, h, x, counts, third=True)
    chol, delta, _ = _newton_step(der, max_step)
    decrement = jnp.dot(der.grad, delta)
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    log_ml = der.value + 0.5 * decrement + 0.5 * lay.n_x * _LOG_2PI - 0.5 * log_det
    pd = jnp.all(jnp.isfinite(chol)) & jnp.all(jnp.diagonal(chol) > 0)
    return NodeFit(x + delta, chol, log_ml, decrement, pd, der.third, der.info)


def quadratic_node(
    lay: Layout, prior: Priors, h: jnp.ndarray, pc: Pieces, xc: jnp.ndarray, u: jnp.ndarray
) -> NodeFit:
    """The Laplace approximation at node ``h`` with the log likelihood replaced by its
    second-order expansion :class:`Pieces` ``pc`` at ``(xc, u)`` (a pilot mode): the node's
    objective is then quadratic, so one Newton step from ``(xc, z = 0)`` is its exact mode,
    and no per-cell terms are evaluated at the node. The third derivatives of the expansion
    point serve the simplified Laplace correction."""
    u0, mat = design_map(lay, prior, h)
    du = u0 - u
    hu_du = pc.h_u @ du
    moved = pc._replace(
        value=pc.value + pc.g_u @ du + 0.5 * du @ hu_du,
        g_xc=pc.g_xc + pc.cross @ du,
        g_u=pc.g_u + hu_du,
    )
    der = assemble(lay, moved, mat, jnp.zeros(lay.n_z, dtype=mat.dtype))
    chol, delta, _ = _newton_step(der, jnp.inf)
    gain = jnp.dot(der.grad, delta)
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    log_ml = der.value + 0.5 * gain + 0.5 * lay.n_x * _LOG_2PI - 0.5 * log_det
    pd = jnp.all(jnp.isfinite(chol)) & jnp.all(jnp.diagonal(chol) > 0)
    x = jnp.concatenate([xc.reshape(-1), jnp.zeros(lay.n_z, dtype=mat.dtype)]) + delta
    return NodeFit(x, chol, log_ml, jnp.zeros_like(gain), pd, pc.third, pc.info)


class QuadraticSystem(NamedTuple):
    """What every :func:`quadratic_node` of a stage shares: the expansion :class:`Pieces` moved
    to ``u0`` (every node's Newton start, ``z = 0``; ``u0`` does not depend on ``h``) and the
    cut-point block eliminated (Schur complement).

    With ``A = -H_xc + diag(fix)`` (the cut-point block of the precision, the same at every
    node), the precision of a node is ``[[A, -C M], [-(C M)', I - M' H_u M]]`` (``C`` the
    cross block, ``M = M(h)``), so its Schur complement is ``S(h) = I + M' P M`` with
    ``P = -H_u - C' A^-1 C``; the Newton gain is ``c0 + v' S^-1 v`` with ``v = M' r``,
    ``r = g_u + C' A^-1 g_xc``, ``c0 = g_xc' A^-1 g_xc``, and ``log |Q| = log |A| + log |S|``.
    ``P`` enters only through the products ``M_a' P M_b`` of the parts of ``M(h)``
    (:func:`design_parts`), formed once per stage.
    """

    value: jnp.ndarray
    xc: jnp.ndarray  # [S J] the expansion point's cut-point coordinates
    a_inv_g: jnp.ndarray  # [S J] A^-1 g_xc
    a_inv_cross: jnp.ndarray  # [S J, n_u] A^-1 C
    log_det_a: jnp.ndarray
    r: jnp.ndarray  # [n_u]
    c0: jnp.ndarray
    pmm: jnp.ndarray  # [4, 4, n_z, n_z] M_a' P M_b
    pd_a: jnp.ndarray


def design_parts(lay: Layout, prior: Priors, dtype: Any) -> jnp.ndarray:
    """``[4, n_u, n_z]``: ``M(h) = sum_a c_a(h) M_a`` with ``c = (1, sigma_era, tau,
    sigma_ped)``: the part of :func:`design_map` that does not scale with ``h``, then the
    era, between-trait and children's parts."""
    mk = {k: jnp.asarray(v, dtype=dtype) for k, v in _map_masks(lay).items()}
    fixed = (
        prior.trait_shift_scale * mk["shift"]
        + prior.arm_scale * mk["free"]
        + prior.group_mean_scale * mk["gmean"]
    )
    return jnp.stack([fixed, mk["era"], mk["tau"], mk["child"]])


def _part_coefficients(h: jnp.ndarray) -> jnp.ndarray:
    return jnp.concatenate([jnp.ones_like(h[:1]), h])


def quadratic_system(
    lay: Layout, prior: Priors, pc: Pieces, xc: jnp.ndarray, u: jnp.ndarray
) -> QuadraticSystem:
    """The :class:`QuadraticSystem` of the expansion ``pc`` at ``(xc, u)`` (once per stage)."""
    u0, _ = design_map(lay, prior, jnp.ones(3, dtype=u.dtype))  # u0 does not depend on h
    du = u0 - u
    hu_du = pc.h_u @ du
    # the expansion moved to u0, plus the standard-normal prior of z at z = 0
    value = pc.value + pc.g_u @ du + 0.5 * du @ hu_du - 0.5 * lay.n_z * _LOG_2PI
    g_xc = pc.g_xc + pc.cross @ du
    g_u = pc.g_u + hu_du
    a = -pc.h_xc + jnp.diag(pc.fix)
    chol_a = jnp.linalg.cholesky(a)
    rhs = jnp.concatenate([g_xc[:, None], pc.cross], axis=1)
    sol = cho_solve((chol_a, True), rhs)
    a_inv_g, a_inv_cross = sol[:, 0], sol[:, 1:]
    p = -pc.h_u - pc.cross.T @ a_inv_cross
    p = 0.5 * (p + p.T)
    parts = design_parts(lay, prior, u.dtype)
    pm = jnp.einsum("uv,bvz->buz", p, parts)
    pmm = jnp.einsum("auy,buz->abyz", parts, pm)
    return QuadraticSystem(
        value=value,
        xc=xc.reshape(-1),
        a_inv_g=a_inv_g,
        a_inv_cross=a_inv_cross,
        log_det_a=2.0 * jnp.sum(jnp.log(jnp.diagonal(chol_a))),
        r=g_u + pc.cross.T @ a_inv_g,
        c0=g_xc @ a_inv_g,
        pmm=pmm,
        pd_a=jnp.all(jnp.isfinite(chol_a)) & jnp.all(jnp.diagonal(chol_a) > 0),
    )


class QuadraticFit(NamedTuple):
    """:func:`quadratic_node_fast` at one node: the mode ``[n_x]``, the log marginal
    likelihood, whether the precision was positive definite, and the Gaussian of the log ORs
    (mode ``[2A]``, covariance ``[2A, 2A]``; as :func:`node_gaussian`)."""

    mode: jnp.ndarray
    log_ml: jnp.ndarray
    positive_definite: jnp.ndarray
    arm_mode: jnp.ndarray
    arm_cov: jnp.ndarray


def quadratic_node_fast(
    lay: Layout, prior: Priors, h: jnp.ndarray, qs: QuadraticSystem
) -> QuadraticFit:
    """:func:`quadratic_node` followed by :func:`node_gaussian`, by the Schur complement of
    :class:`QuadraticSystem`: one Cholesky factorisation of order ``n_z`` per node instead of
    ``n_x``, and no product with ``P`` (equal to the dense form up to rounding; a test checks)."""
    u0, mat = design_map(lay, prior, h)
    c = _part_coefficients(h).astype(mat.dtype)
    s = jnp.einsum("a,b,abyz->yz", c, c, qs.pmm) + jnp.eye(lay.n_z, dtype=mat.dtype)
    chol = jnp.linalg.cholesky(s)
    v = mat.T @ qs.r
    dz = cho_solve((chol, True), v)
    gain = qs.c0 + v @ dz
    log_det = qs.log_det_a + 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    log_ml = qs.value + 0.5 * gain + 0.5 * lay.n_x * _LOG_2PI - 0.5 * log_det
    pd = qs.pd_a & jnp.all(jnp.isfinite(chol)) & jnp.all(jnp.diagonal(chol) > 0)
    dx = qs.a_inv_g + qs.a_inv_cross @ (mat @ dz)
    arms = slice(lay.u_arm, lay.u_arm + 2 * lay.n_arms)
    mat_a = mat[arms]
    w = solve_triangular(chol, mat_a.T, lower=True)
    mode = jnp.concatenate([qs.xc + dx, dz])
    return QuadraticFit(mode, log_ml, pd, u0[arms] + mat_a @ dz, w.T @ w)


# ----------------------------------------------------------------------------- the mixture
#: Largest Cornish-Fisher coefficient kept (the transform ``z + k (z^2 - 1)`` is monotone for
#: ``z > -1 / (2 |k|)``, beyond 5 standard deviations at this bound).
MAX_SKEW = 0.1


def node_effects(
    lay: Layout, st: Structure, prior: Priors, h: jnp.ndarray, fit: NodeFit
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Location ``[2A]``, covariance ``[2A, 2A]`` and Cornish-Fisher coefficient ``[2A]`` of
    the log ORs at one node (simplified Laplace).

    Each cell enters through its effective linear predictor ``eta_i - loc_s``, where ``loc_s``
    is the information-weighted mean of its stratum's cut-points (the part of the cut-points
    that moves with ``eta``). For the standardised effect ``s`` of an arm, with
    ``d_i = Cov(eta_i, s)``, ``V_i = Var(eta_i)`` under the Gaussian and ``t_i`` the cell's
    third derivative (:func:`cell_terms`), the log density is ``-s^2/2 + g1 s + g3 s^3/6`` with
    ``g3 = sum_i t_i d_i^3`` and ``g1 = 1/2 sum_i t_i d_i (V_i - d_i^2)`` (the second term:
    the change of the conditional precision's determinant; Rue, Martino and Chopin 2009,
    section 3.2.3): mean shift ``g1 + g3/2`` and third cumulant ``g3``, so the Cornish-Fisher
    coefficient is ``g3/6``. The third derivatives are those of the last Newton evaluation,
    one step from the mode.
    """
    s_, j_, nu, nct, t_, e_ = (
        lay.n_strata,
        lay.n_cut,
        lay.n_u,
        lay.n_cut_total,
        lay.n_traits,
        lay.n_eras,
    )
    xc, z = _split(lay, fit.mode)
    u0, mat = design_map(lay, prior, h)
    u = u0 + mat @ z
    omega = fit.info / jnp.sum(fit.info, axis=-1, keepdims=True)  # [S, J]
    ex = jnp.exp(xc)
    jac_diag = jnp.concatenate([jnp.ones_like(ex[:, :1]), ex[:, 1:]], axis=-1)
    lower = jnp.tril(jnp.ones((j_, j_), dtype=ex.dtype))
    loc_grad = jnp.einsum("sc,cj,sj->sj", omega, lower, jac_diag)  # d loc_s / d xc_s
    b = jnp.zeros((nu + s_, lay.n_x), dtype=mat.dtype).at[:nu, nct:].set(mat)
    for s in range(s_):
        b = b.at[nu + s, s * j_ : (s + 1) * j_].set(loc_grad[s])
    v = solve_triangular(fit.chol, b.T, lower=True)
    c = v.T @ v  # covariance of (u, loc)
    arms = slice(lay.u_arm, lay.u_arm + 2 * lay.n_arms)
    eras = slice(t_, t_ + e_)
    coef = jnp.concatenate([jnp.asarray(st.design, c.dtype), -jnp.asarray(st.stratum, c.dtype)], 1)
    ac = coef @ c  # [G, n_u + S]
    var_eta = (
        jnp.sum(ac * coef, axis=1)[:, None] + 2.0 * ac[:, eras] + jnp.diagonal(c)[eras][None, :]
    )  # [G, E]
    cov_eta = ac[:, None, arms] + c[eras, arms][None, :, :]  # [G, E, 2A]
    cov = c[arms, arms]
    sd = jnp.sqrt(jnp.diagonal(cov))
    d = cov_eta / sd
    t3 = fit.third[..., None]
    g3 = jnp.sum(t3 * d**3, axis=(0, 1))
    g1 = 0.5 * jnp.sum(t3 * d * (var_eta[..., None] - d**2), axis=(0, 1))
    return u[arms] + sd * (g1 + 0.5 * g3), cov, g3 / 6.0


def node_gaussian(
    lay: Layout, prior: Priors, h: jnp.ndarray, fit: NodeFit
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Mode ``[2A]`` and covariance ``[2A, 2A]`` of the log ORs under the node's Gaussian."""
    u0, mat = design_map(lay, prior, h)
    arms = slice(lay.u_arm, lay.u_arm + 2 * lay.n_arms)
    b = jnp.concatenate(
        [jnp.zeros((2 * lay.n_arms, lay.n_cut_total), mat.dtype), mat[arms]], axis=1
    )
    v = solve_triangular(fit.chol, b.T, lower=True)
    return u0[arms] + mat[arms] @ fit.mode[lay.n_cut_total :], v.T @ v


class LaplaceState(NamedTuple):
    """What a look hands to the next one: where the rule goes (:class:`Proposal` of the
    posterior of ``h``), the posterior mean of ``h`` ``[3]`` (the next centre) and the
    centre's mode ``[n_x]`` (where the next centre's Newton steps start)."""

    proposal: Proposal
    pilot_h: jnp.ndarray
    pilot_mode: jnp.ndarray


class LaplaceResult(NamedTuple):
    """The approximate posterior of one analysis (every field an array; leading batch axes
    under ``jax.vmap``).

    At node ``k`` the benefit-oriented log ORs (adult arms first, then children's, ``2A``) are
    ``mean[k] + sd[k] * (Z + skew[k] * (Z^2 - 1))`` with ``Z`` jointly normal with the
    correlation of ``cov[k]`` and ``sd[k]`` its marginal SDs: the Gaussian of the Laplace
    approximation, corrected for location and skewness by the simplified Laplace expansion
    in Cornish-Fisher form (:func:`node_effects`).

    Fields: ``mean``, ``skew`` ``[n_nodes, 2A]``; ``cov`` ``[n_nodes, 2A, 2A]``; ``weights``
    ``[n_nodes]``; ``nodes`` ``[n_nodes, 3]`` (``h``); ``state`` (:class:`LaplaceState`, the
    warm start of the next look); ``log_ml`` and ``decrement`` ``[n_nodes]`` (the nodes'
    final Newton decrements; 0 without refinement); ``converged`` (the centre's, and the
    refined nodes', final Newton decrement below the tolerance), ``positive_definite`` (every
    precision), ``edge_weight`` (the weight of the nodes at the largest value of a
    coordinate with several nodes: a large value says that the posterior of ``h`` reaches
    beyond the rule) and ``max_skew`` (the largest ``|skew|`` before clipping to :data:`MAX_SKEW`).
    """

    mean: jnp.ndarray
    cov: jnp.ndarray
    skew: jnp.ndarray
    weights: jnp.ndarray
    nodes: jnp.ndarray
    state: LaplaceState
    log_ml: jnp.ndarray
    decrement: jnp.ndarray
    converged: jnp.ndarray
    positive_definite: jnp.ndarray
    edge_weight: jnp.ndarray
    max_skew: jnp.ndarray


def _stage(lay, st, prior, counts, rule, proposal, centre, refine, schur=True):
    """Fit every node of ``rule`` placed by ``proposal``: quadratic expansion at the ``centre``
    fit, then ``refine`` exact Newton evaluations (0: none). ``schur`` (and ``refine == 0``):
    the nodes by :func:`quadratic_node_fast` (:class:`QuadraticFit`); otherwise by
    :func:`quadratic_node` (:class:`NodeFit`, with the dense precision's Cholesky factor)."""
    h_c, x_c = centre
    xc, z = _split(lay, x_c)
    u0, mat = design_map(lay, prior, h_c)
    u = u0 + mat @ z
    fast = schur and not refine
    pc = pieces(lay, st, prior, xc, u, counts, third=not fast and refine == 0)
    h_nodes, log_w = hyper_nodes(rule, proposal, prior)
    if fast:
        qs = quadratic_system(lay, prior, pc, xc, u)
        fits = jax.vmap(lambda h: quadratic_node_fast(lay, prior, h, qs))(h_nodes)
    else:
        fits = jax.vmap(lambda h: quadratic_node(lay, prior, h, pc, xc, u))(h_nodes)
    if refine:
        fits = jax.vmap(lambda h, x: newton(lay, st, prior, h, x, counts, refine - 1))(
            h_nodes, fits.mode
        )
    logit = log_w + fits.log_ml
    logit = jnp.where(jnp.isfinite(logit), logit, -jnp.inf)
    return h_nodes, fits, jax.nn.softmax(logit)


def _posterior_mean(h_nodes: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
    return jnp.sum(weights[:, None] * h_nodes, axis=0)


def laplace_arrays(
    lay: Layout,
    st: Structure,
    prior: Priors,
    counts: jnp.ndarray,
    state: LaplaceState | None = None,
    *,
    rule: Rule = Rule(),
    pilot_rule: Rule = Rule((2, 2, 2)),
    n_pilot: int = 6,
    n_centre: int = 2,
    n_adapt: int = 2,
    refine: int = 0,
    centre_sla: bool = True,
    schur: bool = True,
    tol: float = 1e-2,
) -> LaplaceResult:
    """The integrated Laplace approximation of one dataset (pure JAX; jit/vmap-able).

    The nodes are fitted around a *centre*: an exact Newton fit (closed-form derivatives) at
    ``h`` near the posterior mean of ``h``; at each node the log likelihood is replaced by
    its second-order expansion at the centre's mode, which makes the node's mode and Laplace
    marginal likelihood one linear solve (:func:`quadratic_node`); ``refine > 0`` adds that
    many exact Newton evaluations per node.

    Parameters
    ----------
    lay, st, prior
        :func:`layout` and :func:`structure` of the spec, and the model's
        :class:`~palette_core.analysis.models.Priors` (:func:`~palette_core.analysis.models.model_priors`).
    counts
        ``[n_cells, K]`` counts of :class:`~palette_core.analysis.models.CellData`.
    state
        The previous look's :attr:`LaplaceResult.state` (a warm start): the centre is refitted
        at the previous posterior mean of ``h`` from the previous centre's mode with
        ``n_centre`` Newton steps, and ``rule`` is placed by the previous posterior's
        proposal. ``None`` (a cold start): Newton (``n_pilot`` steps from
        :func:`initial_point`) at the prior medians of ``h``; ``pilot_rule`` placed by the
        priors (:func:`prior_proposal`) locates the posterior of ``h``
        (:func:`posterior_proposal`); the centre moves to its mean (``n_centre`` steps), and
        ``rule`` is placed there; ``n_adapt - 1`` more rounds of ``rule`` refine the placement
        (a warm start inherits the previous look's placement instead).
    rule, pilot_rule, n_pilot, n_centre, n_adapt, refine, tol
        The quadrature rules; Newton steps (see above); the largest final Newton decrement of
        the centre (nats) that counts as converged.
    centre_sla
        ``True``: the simplified Laplace correction (location shift and skewness, in standard
        deviations; :func:`node_effects`) is computed at the centre and applied to every node;
        ``False``: at every node (slower; the two differ by far less than the quadrature).
    schur
        ``True`` (with ``centre_sla`` and ``refine == 0``): the nodes by the Schur complement
        of the cut-points (:func:`quadratic_node_fast`); ``False``: by the dense precision
        (:func:`quadratic_node`, :func:`node_gaussian`). The two are equal up to rounding.
    """
    if state is None:
        prop0 = prior_proposal(prior)
        h_p = prop0.sigma * 0.6745  # the prior medians
        pilot = newton(lay, st, prior, h_p, initial_point(lay, st, prior, counts), counts, n_pilot)
        h1, _, w1 = _stage(lay, st, prior, counts, pilot_rule, prop0, (h_p, pilot.mode), 0, schur)
        proposal = posterior_proposal(h1, w1)
        h_c, x_start = _posterior_mean(h1, w1), pilot.mode
        for _ in range(n_adapt - 1):
            centre = newton(lay, st, prior, h_c, x_start, counts, n_centre)
            h1, _, w1 = _stage(lay, st, prior, counts, rule, proposal, (h_c, centre.mode), 0, schur)
            proposal = posterior_proposal(h1, w1)
            h_c, x_start = _posterior_mean(h1, w1), centre.mode
    else:
        proposal, h_c, x_start = state.proposal, state.pilot_h, state.pilot_mode
    centre = newton(lay, st, prior, h_c, x_start, counts, n_centre)
    fast = schur and centre_sla and not refine
    h_nodes, fits, weights = _stage(
        lay, st, prior, counts, rule, proposal, (h_c, centre.mode), refine, fast
    )
    if centre_sla:
        # the simplified Laplace correction, in standard deviations, of the centre fit
        m_c, cov_c, skew = node_effects(lay, st, prior, h_c, centre)
        mode_c, _ = node_gaussian(lay, prior, h_c, centre)
        shift = (m_c - mode_c) / jnp.sqrt(jnp.diagonal(cov_c))
        if fast:
            mode, cov = fits.arm_mode, fits.arm_cov
        else:
            mode, cov = jax.vmap(lambda h, f: node_gaussian(lay, prior, h, f))(h_nodes, fits)
        mean = mode + shift * jnp.sqrt(jnp.diagonal(cov, axis1=-2, axis2=-1))
        skew = jnp.broadcast_to(skew, mean.shape)
    else:
        mean, cov, skew = jax.vmap(lambda h, f: node_effects(lay, st, prior, h, f))(h_nodes, fits)
    multi = jnp.asarray(np.asarray(rule.n_nodes) > 1)
    top = jnp.any((h_nodes >= jnp.max(h_nodes, axis=0) * (1.0 - 1e-6)) & multi, axis=1)
    converged = jnp.abs(centre.decrement) < tol
    decrement = jnp.zeros_like(fits.log_ml) if fast else fits.decrement
    if refine:
        converged = converged & jnp.all(jnp.abs(decrement) < tol)
    return LaplaceResult(
        mean=mean,
        cov=cov,
        skew=jnp.clip(skew, -MAX_SKEW, MAX_SKEW),
        weights=weights,
        nodes=h_nodes,
        state=LaplaceState(
            posterior_proposal(h_nodes, weights),
            _posterior_mean(h_nodes, weights),
            centre.mode,
        ),
        log_ml=fits.log_ml,
        decrement=decrement,
        converged=converged,
        positive_definite=jnp.all(fits.positive_definite) & centre.positive_definite,
        edge_weight=jnp.sum(jnp.where(top, weights, 0.0)),
        max_skew=jnp.max(jnp.abs(skew)),
    )


# ----------------------------------------------------------------------------- summaries
def _component_cdf(result: LaplaceResult, y: Any) -> jnp.ndarray:
    """``Pr(log OR <= y)`` under each node's marginal ``[..., n_nodes, 2A]``.

    Inverts ``t = z + k (z^2 - 1)`` by the stable root ``z = 2 (t + k) / (1 + sqrt(1 + 4 k (t + k)))``.
    """
    sd = jnp.sqrt(jnp.diagonal(result.cov, axis1=-2, axis2=-1))
    t = (y - result.mean) / sd
    k = result.skew
    root = jnp.sqrt(jnp.maximum(1.0 + 4.0 * k * (t + k), 0.0))
    return ndtr(2.0 * (t + k) / (1.0 + root))


def pr_greater(result: LaplaceResult, c: Any) -> jnp.ndarray:
    """``Pr(log OR > c)`` per arm ``[..., 2A]`` (adult arms, then children's) under the mixture."""
    cdf = _component_cdf(result, c)
    return jnp.sum(result.weights[..., :, None] * (1.0 - cdf), axis=-2)


def pr_less(result: LaplaceResult, c: Any) -> jnp.ndarray:
    """``Pr(log OR < c)`` per arm ``[..., 2A]`` under the mixture."""
    return jnp.sum(result.weights[..., :, None] * _component_cdf(result, c), axis=-2)


class MixtureSummary(NamedTuple):
    """Posterior mean, SD and equal-tailed quantiles of each log OR, each ``[..., 2A]``."""

    mean: jnp.ndarray
    sd: jnp.ndarray
    q_low: jnp.ndarray
    q_high: jnp.ndarray


def mixture_quantile(result: LaplaceResult, q: float, n_iter: int = 40) -> jnp.ndarray:
    """The ``q`` quantile of each log OR's mixture ``[2A]`` (bisection, ``n_iter`` halvings)."""
    sd = jnp.sqrt(jnp.diagonal(result.cov, axis1=-2, axis2=-1))
    lo = jnp.min(result.mean - 10.0 * sd, axis=-2)
    hi = jnp.max(result.mean + 10.0 * sd, axis=-2)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        cdf = jnp.sum(result.weights[..., :, None] * _component_cdf(result, mid[..., None, :]), -2)
        below = cdf < q
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, n_iter, body, (lo, hi))
    return 0.5 * (lo + hi)


def leading(result: LaplaceResult, n: int) -> LaplaceResult:
    """``result`` restricted to its first ``n`` log ORs (``A``: the adults' effects): the
    mixture's marginal, so every summary of those coordinates is unchanged, at less cost."""
    return result._replace(
        mean=result.mean[..., :n],
        cov=result.cov[..., :n, :n],
        skew=result.skew[..., :n],
    )


def mixture_summary(result: LaplaceResult, level: float = 0.95) -> MixtureSummary:
    """Mean, SD and the equal-tailed ``level`` interval of each log OR under the mixture
    (of the adults' effects only: ``mixture_summary(leading(result, A))``)."""
    w = result.weights[..., :, None]
    var_k = jnp.diagonal(result.cov, axis1=-2, axis2=-1) * (1.0 + 2.0 * result.skew**2)
    mean = jnp.sum(w * result.mean, axis=-2)
    second = jnp.sum(w * (var_k + result.mean**2), axis=-2)
    sd = jnp.sqrt(jnp.maximum(second - mean**2, 0.0))
    tail = (1.0 - level) / 2.0
    return MixtureSummary(
        mean, sd, mixture_quantile(result, tail), mixture_quantile(result, 1.0 - tail)
    )


def joint_draws(
    result: LaplaceResult, key: jax.Array, n_draws: int, n_leading: int | None = None
) -> jnp.ndarray:
    """``[n_draws, 2A]`` joint draws from the mixture (adult arms, then children's).

    Nodes are chosen by systematic sampling (node ``k`` gets ``n_draws * w_k`` draws, rounded
    up or down); a draw is ``mean + sd * (Z + skew * (Z^2 - 1))`` with ``Z`` normal with the
    node's correlation across arms. ``n_leading``: only the first ``n_leading`` coordinates
    (``A``: the adults' effects), ``[n_draws, n_leading]``, equal to the same columns of the
    full draws (the Cholesky factor of a leading block of the correlation is the leading
    block of its factor, and the same normal deviates are drawn), at a fraction of the cost.
    """
    k_u, k_z = jax.random.split(key)
    u = (jax.random.uniform(k_u) + jnp.arange(n_draws)) / n_draws
    comp = jnp.searchsorted(jnp.cumsum(result.weights), u)
    comp = jnp.minimum(comp, result.weights.shape[-1] - 1)
    dim = result.mean.shape[-1]
    lead = dim if n_leading is None else n_leading
    eps = jax.random.normal(k_z, (n_draws, dim), dtype=result.mean.dtype)[:, :lead]
    mean, skew = result.mean[:, :lead], result.skew[:, :lead]
    cov = result.cov[:, :lead, :lead]
    sd = jnp.sqrt(jnp.diagonal(cov, axis1=-2, axis2=-1))
    corr = cov / (sd[:, :, None] * sd[:, None, :])
    chol = jnp.linalg.cholesky(corr + 1e-6 * jnp.eye(lead, dtype=corr.dtype))
    zz = jnp.einsum("nij,nj->ni", chol[comp], eps)
    return mean[comp] + sd[comp] * (zz + skew[comp] * (zz**2 - 1.0))


# ----------------------------------------------------------------------------- boundary
class LaplacePosterior:
    """The approximation for one :class:`~palette_core.analysis.models.ModelSpec`, compiled once.

    Validates the spec (primary analysis only) and the cell grid of ``template`` once; then
    :meth:`analyse` (one dataset) and :meth:`analyse_batch` (``jax.vmap`` over datasets) take
    counts of the same shape and reuse the compiled code (``n_traces`` counts compilations).
    The other arguments are those of :func:`laplace_arrays`; a ``state`` from a previous look
    (:attr:`LaplaceResult.state`) warm-starts the next.

    >>> post = LaplacePosterior(spec, data)                   # doctest: +SKIP
    >>> res = post.analyse(data.counts)                       # doctest: +SKIP
    >>> pr_greater(res, 0.0)                                  # doctest: +SKIP
    """

    def __init__(
        self,
        spec: ModelSpec,
        template: CellData,
        priors: Priors,
        *,
        rule: Rule = Rule(),
        pilot_rule: Rule = Rule((2, 2, 2)),
        n_pilot: int = 6,
        n_centre: int = 2,
        n_adapt: int = 2,
        refine: int = 0,
        centre_sla: bool = True,
    ):
        self.spec = spec
        self.layout = layout(spec)
        self.structure = structure(self.layout, template)
        self.prior = priors
        self.rule = rule
        self.n_traces = 0
        shape = (np.shape(template.counts)[0], self.layout.n_cut + 1)
        self.shape = shape

        def run(counts, state):
            self.n_traces += 1  # a Python side effect: runs only when jit traces
            return laplace_arrays(
                self.layout,
                self.structure,
                self.prior,
                counts,
                state,
                rule=rule,
                pilot_rule=pilot_rule,
                n_pilot=n_pilot,
                n_centre=n_centre,
                n_adapt=n_adapt,
                refine=refine,
                centre_sla=centre_sla,
            )

        self._cold = jax.jit(lambda c: run(c, None))
        self._warm = jax.jit(run)
        self._cold_batch = jax.jit(jax.vmap(lambda c: run(c, None)))
        self._warm_batch = jax.jit(jax.vmap(run))

    def _counts(self, counts: Any, batch: bool) -> jnp.ndarray:
        arr = np.asarray(counts, dtype=np.float32)
        want = ((arr.shape[0],) if batch and arr.ndim == 3 else ()) + self.shape
        if arr.shape != want:
            raise ModelDataError(f"counts have shape {arr.shape}, expected {want}", "counts")
        bad = np.argwhere(~np.isfinite(arr) | (arr < 0))
        if bad.size:
            raise ModelDataError("counts must be finite and >= 0", "counts", int(bad[0][-2]))
        return jnp.asarray(arr)

    def analyse(self, counts: Any, state: LaplaceState | None = None) -> LaplaceResult:
        """The approximate posterior of one dataset ``[n_cells, K]`` (validated here)."""
        c = self._counts(counts, batch=False)
        return self._cold(c) if state is None else self._warm(c, state)

    def analyse_batch(self, counts: Any, state: LaplaceState | None = None) -> LaplaceResult:
        """``jax.vmap`` of :meth:`analyse` over datasets ``[n_datasets, n_cells, K]`` (and
        over the leading axis of ``state``)."""
        c = self._counts(counts, batch=True)
        return self._cold_batch(c) if state is None else self._warm_batch(c, state)
