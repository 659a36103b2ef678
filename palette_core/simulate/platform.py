"""Whole virtual PALETTE trials: the trial's own rules, run by the simulation engine.

A virtual trial (program ``palette_platform``) runs, look after look, what the real trial
does, calling the trial's own pure functions wherever the trial has one:

Accrual
    Patients eligible with at least one positive trait arrive as a Poisson process whose rate
    rises linearly to ``accrual.per_week`` over ``accrual.ramp_up_weeks`` (site start-up).
    Each is a draw (with replacement) from a pool of screened patients made once per design by
    the synthetic cohort generator and the trial's own screening
    (:func:`~palette_core.screening.cohort.generate_cohort`,
    :func:`~palette_core.screening.classify.classify_patients`): trait prevalence, the overlap
    of traits and the age mix are the cohort's.
Multi-trait policy
    The trait a patient is randomised in is chosen by the policy's pure core,
    :func:`~palette_core.screening.traits.choose_trait` (random among positive traits with the
    policy's weights, or the priority order), with the patient's own uniform, at
    randomisation and among the positive traits that can randomise the patient then (the
    trait randomises and has an experimental arm open to the patient's age group), as
    :mod:`palette_core.randomisation.randomise` does. A patient with no such trait is not
    randomised.
Allocation
    By the probabilities in force for the trait
    (:func:`~palette_core.randomisation.allocation.allocation_probabilities`: burn-in,
    response-adaptive Pr(best) with damping and floors, usual care matched to the leading arm,
    fixed equal allocation with fewer arms), restricted to the arms open to the patient's age
    group and renormalised, as the randomiser does. They change only at looks.
Outcomes
    Drawn per patient from the joint model's generative form
    (:func:`~palette_core.analysis.models.linear_predictor` and
    :func:`~palette_core.analysis.models.category_log_probs`): the organ-support-free days
    (OSFD, -1 = death, ..., 28) by proportional odds, with the scenario's usual-care
    distribution per age group, prognosis per trait, calendar drift per era and true odds
    ratios per arm and age group. Death at day 28 is OSFD = -1, so the two outcomes are
    jointly consistent and an arm's odds ratio of survival equals its OSFD odds ratio.
Follow-up and looks
    An outcome is known 28 days after randomisation. Look ``k`` happens when ``k x
    look_every_complete`` (``proposed/interims.yaml``) patients have a complete outcome; the
    last look is the final analysis, when every one of the trial's patients has one.
Analysis
    At each look the *same* joint model (primary analysis) is fitted to both outcomes by the
    integrated Laplace approximation of :mod:`palette_core.simulate.posterior`, warm-started
    from the previous look.
Decisions and the arm lifecycle
    :func:`~palette_core.analysis.decisions.decide_arrays` (harm, graduation, futility, cap,
    minimum information) on the adults' effect, then
    :func:`~palette_core.randomisation.lifecycle.next_arm_states` (an open arm closes into the
    state of its decision; a planned arm opens on its week; a trait with no open or planned
    experimental arm closes). Arms whose dose a registry finding blocks are suspended from the
    start for the age groups it blocks (``blocked_doses: suspended``, the default).

Everything a scenario changes is an array (:func:`scenario_parameters`), so every scenario of
a design, thresholds included, runs on one compiled program; the settings (sizes) are static.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from palette_core.analysis import decisions as dec
from palette_core.analysis.checking import empty_data
from palette_core.analysis.models import (
    CellData,
    ModelSpec,
    category_log_probs,
    linear_predictor,
    model_priors,
    model_spec,
)
from palette_core.design import Design, load_design
from palette_core.design.locate import default_data_root
from palette_core.errors import ModelDataError, ScenarioError
from palette_core.exports.synthetic import UsualCare, usual_care_pmf
from palette_core.randomisation import allocation as alloc
from palette_core.randomisation import lifecycle as lc
from palette_core.screening.classify import classify_patients
from palette_core.screening.cohort import generate_cohort
from palette_core.screening.patients import validate_patients
from palette_core.screening.traits import POSITIVE, choose_trait, policy_arrays, trait_columns
from palette_core.simulate import engine
from palette_core.simulate import posterior as lp

PROGRAM = "palette_platform"
#: days from randomisation to a complete outcome (day 28)
FOLLOW_UP_DAYS = 28.0
DAYS_PER_WEEK = 7.0
PRIMARY_OUTCOME = "osfd28"
MORTALITY_OUTCOME = "mortality28"


#: The shipped scenario file of the PALETTE design, relative to the data root.
SCENARIO_FILE = "scenarios/platform.yaml"


def platform_scenarios() -> Path:
    """The shipped scenario file of the PALETTE design, under the default data root."""
    return default_data_root() / SCENARIO_FILE


# ----------------------------------------------------------------------------- settings
#: Quadrature nodes per variance parameter: 1 (the mode) to 6.
Nodes = Annotated[int, Field(ge=1, le=6)]


class PlatformSettings(BaseModel):
    """Static settings of the program: sizes that fix the shapes of the compiled code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    design: str | None = Field(
        None, description="design folder (default: the one load_design finds)"
    )
    n_patients: int | None = Field(
        None, gt=0, description="patients randomised at most (default: trial.yaml enrollment)"
    )
    candidates_per_patient: float = Field(
        3.0,
        ge=1.0,
        description="arrivals simulated per patient (arrivals refused by a closed trait use some)",
    )
    horizon_days: int | None = Field(
        None,
        gt=0,
        description="days from the study start to the last possible final analysis (default: "
        "trial.yaml's study start to study completion, the registered phase)",
    )
    pool_size: int = Field(20000, gt=0, description="screened patients in the pool")
    pool_seed: int = Field(20261203, ge=0, description="seed of the pool of screened patients")
    n_draws: int = Field(1000, gt=0, description="posterior draws for Pr(best)")
    laplace_rule: tuple[Nodes, Nodes, Nodes] = Field(
        (3, 3, 3),
        description="quadrature nodes per variance parameter (era step, between-trait, "
        "children's deviation) of the Laplace approximation; its accuracy per rule is the "
        "stored result laplace_accuracy",
    )
    near_threshold_band: float = Field(
        0.02,
        ge=0,
        lt=0.5,
        description="a decision probability of an open, evaluable arm within this distance of "
        "its threshold is counted as near the threshold (proposed: the accuracy target of the "
        "Laplace approximation of the OSFD model; such looks are the ones a NUTS re-analysis "
        "could change)",
    )


# ----------------------------------------------------------------------------- scenarios
class Accrual(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_week: float = Field(gt=0, description="eligible patients with a positive trait per week")
    ramp_up_weeks: float = Field(ge=0, description="weeks for the rate to reach its plateau")


class Thresholds(BaseModel):
    """Overrides of ``proposed/decisions.yaml`` (for calibration); absent = the design's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    graduation: float | None = Field(
        None,
        gt=0,
        le=1,
        description="1 disables graduation (Pr(OR > 1) > 1 never holds): the calibration run",
    )
    futility: float | None = Field(None, gt=0, lt=1)
    harm: float | None = Field(None, gt=0, lt=1)
    min_complete: int | None = Field(None, ge=0)
    cap: int | None = Field(None, gt=0)


class PlatformScenario(BaseModel):
    """One scenario: the truth and the choices a virtual trial is run under (all *proposed*)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    rationale: str
    accrual: Accrual
    usual_care: dict[str, UsualCare]
    trait_log_odds: dict[str, float] = {}
    drift_per_era: float = 0.0
    odds_ratios: dict[str, float] = {}
    child_odds_ratios: dict[str, float] = {}
    allocation: Literal["response_adaptive", "fixed"] = "response_adaptive"
    multi_trait_policy: Literal["default", "sensitivity"] = "default"
    blocked_doses: Literal["suspended", "open"] = "suspended"
    opens_at_week: dict[str, float] = {}
    joins_at_week: dict[str, float] = Field(
        {},
        description="open arms of the design that instead join the platform on this week "
        "(as planned arms, by amendment): a new arm joining mid-trial",
    )
    thresholds: Thresholds = Thresholds()


# ----------------------------------------------------------------------------- static context
@dataclass(frozen=True, eq=False)
class Context:
    """Everything static about the program of one design and settings (built once)."""

    design: Design
    settings: PlatformSettings
    spec: ModelSpec  # OSFD
    spec_mortality: ModelSpec
    grid: CellData  # the cell grid (counts zero), shared by both outcomes
    cell_of: np.ndarray  # [T, S, 1 + A, E] -> cell index, -1 if not on the grid
    trait_arms: np.ndarray  # [T, M] global experimental arm index, -1 = none
    arm_slot: np.ndarray  # [A] position of the arm in its trait (1..M; 0 = usual care)
    pool_positive: np.ndarray  # [P, T] bool
    pool_stratum: np.ndarray  # [P] int
    n_patients: int
    n_candidates: int
    n_looks: int
    look_every: int
    era_days: float
    horizon_days: float
    lay_osfd: Any
    lay_mortality: Any

    @property
    def n_traits(self) -> int:
        return len(self.spec.traits)

    @property
    def n_arms(self) -> int:
        return len(self.spec.arms)

    @property
    def n_strata(self) -> int:
        return len(self.spec.age_groups)


def screening_pool(design: Design, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(positive [P, T], stratum [P])`` of the eligible screened patients with a positive
    trait, from the synthetic cohort and the trial's own screening."""
    cohort = generate_cohort(design, n, seed)
    screened = classify_patients(validate_patients(cohort, design), design, seed=seed)
    eligible = (screened["eligible"] == "eligible").to_numpy(dtype=bool)
    status = screened[trait_columns(design)].astype("object").to_numpy()
    positive = status == POSITIVE
    keep = eligible & positive.any(axis=1)
    strata = list(design.age_group_ids)
    stratum = screened["age_group"].astype("object").to_numpy()
    return positive[keep], np.array([strata.index(a) for a in stratum[keep]], dtype=np.int32)


@lru_cache(maxsize=8)
def context(settings_json: str) -> Context:
    """The static context of a settings object (JSON, so that it can key a cache)."""
    settings = PlatformSettings.model_validate_json(settings_json)
    design = load_design(settings.design)
    trial = design.trial
    horizon = settings.horizon_days or (trial.study_completion - trial.study_start).days
    era_days = float(design.interim_analysis.eras.length_days)
    era_capacity = int(math.ceil(horizon / era_days))
    spec = model_spec(design, PRIMARY_OUTCOME, era_capacity)
    spec_m = model_spec(design, MORTALITY_OUTCOME, era_capacity)
    empty = empty_data(design, spec)
    traits, strata = spec.traits, spec.age_groups
    e_cap = spec.n_eras
    cell_of = -np.ones((len(traits), len(strata), 1 + len(spec.arms), e_cap), dtype=np.int32)
    trait_i, stratum_i = np.asarray(empty.trait), np.asarray(empty.stratum)
    arm_i, era_i = np.asarray(empty.arm), np.asarray(empty.era)
    cell_of[trait_i, stratum_i, arm_i, era_i] = np.arange(len(trait_i))
    m = max(len(design.experimental_arms(t)) for t in traits)
    trait_arms = -np.ones((len(traits), m), dtype=np.int32)
    arm_slot = np.zeros(len(spec.arms), dtype=np.int32)
    for t, trait in enumerate(traits):
        for j, arm in enumerate(design.experimental_arms(trait)):
            e = spec.arms.index(arm.id)
            trait_arms[t, j] = e
            arm_slot[e] = 1 + j
    positive, stratum = screening_pool(design, settings.pool_size, settings.pool_seed)
    _check_grid(design, spec, cell_of, trait_arms, positive, stratum)
    n_patients = settings.n_patients or int(design.trial.enrollment)
    look_every = int(design.interims.look_every_complete)
    return Context(
        design=design,
        settings=settings,
        spec=spec,
        spec_mortality=spec_m,
        grid=empty,
        cell_of=cell_of,
        trait_arms=trait_arms,
        arm_slot=arm_slot,
        pool_positive=positive,
        pool_stratum=stratum,
        n_patients=n_patients,
        n_candidates=int(math.ceil(settings.candidates_per_patient * n_patients)),
        n_looks=int(math.ceil(n_patients / look_every)),
        look_every=look_every,
        era_days=era_days,
        horizon_days=float(horizon),
        lay_osfd=lp.layout(spec),
        lay_mortality=lp.layout(spec_m),
    )


def _check_grid(
    design: Design,
    spec: ModelSpec,
    cell_of: np.ndarray,
    trait_arms: np.ndarray,
    positive: np.ndarray,
    stratum: np.ndarray,
) -> None:
    """Every patient the simulator can enrol has a cell of the model's grid in every era.

    The simulator draws a patient's outcome from the distribution of their cell (trait, age
    group, arm, era) and counts it there; a patient without a cell would get another cell's
    outcome. The grid comes from the design (an arm's age groups), as does the screening pool:
    a mismatch is a design error, reported here once, never inside the compiled program.
    """
    for t, trait in enumerate(spec.traits):
        for s, group in enumerate(spec.age_groups):
            if not positive[stratum == s, t].any():
                continue  # nobody of this age group is positive for the trait
            slots = [0] + [1 + e for e in trait_arms[t] if e >= 0]
            for code in slots:
                arm_id = "usual care" if code == 0 else spec.arms[code - 1]
                if code and group not in design.arm_age_groups(design.arm(arm_id)):
                    continue  # the arm never receives this age group
                if (cell_of[t, s, code, :] < 0).any():
                    raise ModelDataError(
                        f"the model's grid has no cell for {group} patients of {trait} in "
                        f"{arm_id}, although the screening pool has such patients: "
                        "check the arm's age groups in arms.yaml and the trait definitions",
                        column="cell_of",
                    )


# ----------------------------------------------------------------------------- parameters
def _fail(where: tuple[str, str], field: str, message: str) -> ScenarioError:
    return ScenarioError(where[0], where[1], field, message)


def _per_arm(ctx: Context, values: dict[str, float], default: np.ndarray, field: str, where):
    out = default.copy()
    for arm, v in values.items():
        if arm not in ctx.spec.arms:
            raise _fail(where, f"{field}.{arm}", "not an experimental arm of the design")
        if not (math.isfinite(v) and v > 0):
            raise _fail(where, f"{field}.{arm}", f"an odds ratio must be positive, not {v!r}")
        out[ctx.spec.arms.index(arm)] = math.log(v)
    return out


def scenario_parameters(
    settings: PlatformSettings, sc: PlatformScenario, where: tuple[str, str]
) -> dict[str, np.ndarray]:
    """The scenario's parameter pytree (NumPy arrays), checked against the design."""
    ctx = context(settings.model_dump_json())
    design, spec = ctx.design, ctx.spec
    strata, traits = spec.age_groups, spec.traits
    missing = [s for s in strata if s not in sc.usual_care]
    extra = [s for s in sc.usual_care if s not in strata]
    if missing or extra:
        raise _fail(
            where,
            "usual_care",
            f"needs exactly the age groups {list(strata)} (missing {missing}, unknown {extra})",
        )
    cut = np.empty((len(strata), spec.n_categories - 1))
    for i, s in enumerate(strata):
        cdf = np.clip(np.cumsum(usual_care_pmf(sc.usual_care[s]))[:-1], 1e-9, 1 - 1e-9)
        cut[i] = np.log(cdf) - np.log1p(-cdf)  # Pr(Y <= c) = logistic(cut_c) at eta = 0
    shift = np.zeros(len(traits))
    for t, v in sc.trait_log_odds.items():
        if t not in traits:
            raise _fail(where, f"trait_log_odds.{t}", "not a trait of the design")
        shift[traits.index(t)] = v
    log_or = _per_arm(ctx, sc.odds_ratios, np.zeros(len(spec.arms)), "odds_ratios", where)
    log_or_child = _per_arm(ctx, sc.child_odds_ratios, log_or, "child_odds_ratios", where)
    avail = np.zeros((len(spec.arms), len(strata)), dtype=bool)
    for e, arm_id in enumerate(spec.arms):
        arm = design.arm(arm_id)
        for s_i, s in enumerate(strata):
            ok = s in design.arm_age_groups(arm)
            if sc.blocked_doses == "suspended":
                ok = ok and not design.dose_blocks(arm_id, s)
            avail[e, s_i] = ok
    codes = lc.state_codes(design)
    state = np.empty(len(spec.arms), dtype=np.int32)
    open_day = np.full(len(spec.arms), np.inf)
    for e, arm_id in enumerate(spec.arms):
        initial = design.arm(arm_id).availability.initial_state
        state[e] = codes.code(initial)
        if initial == lc.OPEN:
            open_day[e] = 0.0
    for arm_id, week in sc.opens_at_week.items():
        if arm_id not in spec.arms:
            raise _fail(where, f"opens_at_week.{arm_id}", "not an experimental arm of the design")
        e = spec.arms.index(arm_id)
        if state[e] != codes.planned:
            raise _fail(where, f"opens_at_week.{arm_id}", "only a planned arm opens on a week")
        if not (math.isfinite(week) and week >= 0):
            raise _fail(where, f"opens_at_week.{arm_id}", f"must be a week >= 0, not {week!r}")
        open_day[e] = week * DAYS_PER_WEEK
    for arm_id, week in sc.joins_at_week.items():
        if arm_id not in spec.arms:
            raise _fail(where, f"joins_at_week.{arm_id}", "not an experimental arm of the design")
        e = spec.arms.index(arm_id)
        if state[e] != codes.open or arm_id in sc.opens_at_week:
            raise _fail(where, f"joins_at_week.{arm_id}", "only an open arm joins on a week")
        if not (math.isfinite(week) and week >= 0):
            raise _fail(where, f"joins_at_week.{arm_id}", f"must be a week >= 0, not {week!r}")
        state[e] = codes.planned
        open_day[e] = week * DAYS_PER_WEEK
    suspended = ~avail.any(axis=1)
    state[suspended] = codes.suspended
    random, weights, rank = policy_arrays(design, sc.multi_trait_policy)
    ap = alloc.allocation_params(design)
    if sc.allocation == "fixed":  # never enough open arms for response-adaptive allocation
        ap = ap._replace(rar_min_open_experimental=len(spec.arms) + 1)
    dp = dec.decision_params(design)
    th = sc.thresholds
    dp = dp._replace(
        graduation_threshold=th.graduation
        if th.graduation is not None
        else dp.graduation_threshold,
        futility_threshold=th.futility if th.futility is not None else dp.futility_threshold,
        harm_threshold=th.harm if th.harm is not None else dp.harm_threshold,
        cap=th.cap if th.cap is not None else dp.cap,
    )
    if th.min_complete is not None:
        dp = dp._replace(
            graduation_min_complete=th.min_complete, futility_min_complete=th.min_complete
        )
    d = design.decisions
    return {
        "accrual_per_day": np.float32(sc.accrual.per_week / DAYS_PER_WEEK),
        "ramp_days": np.float32(sc.accrual.ramp_up_weeks * DAYS_PER_WEEK),
        "cut": cut.astype(np.float32),
        "trait_shift": shift.astype(np.float32),
        "era_effect": (sc.drift_per_era * np.arange(spec.n_eras)).astype(np.float32),
        "log_or": log_or.astype(np.float32),
        "log_or_child": log_or_child.astype(np.float32),
        "available": avail,
        "initial_state": state,
        "open_day": open_day.astype(np.float32),
        "policy_random": np.bool_(random),
        "policy_weights": weights.astype(np.float32),
        "policy_rank": rank.astype(np.int32),
        "allocation": {k: np.asarray(v) for k, v in ap._asdict().items()},
        "decision": {k: np.asarray(v) for k, v in dp._asdict().items()},
        "log_references": np.log(
            [d.graduation.or_reference, d.futility.or_reference, d.harm.or_reference]
        ).astype(np.float32),
    }


# ----------------------------------------------------------------------------- the program
class Carry(NamedTuple):
    """The state of one virtual trial between looks (every field an array)."""

    key: Any
    look_day: Any  # day of the last look (0 before the first)
    next_candidate: Any  # first arrival not yet processed
    n_randomised: Any
    finished: Any  # the final look is done, or no trait randomises, or arrivals ran out
    exhausted: Any  # arrivals ran out before the trial's size was reached
    # arrivals (drawn at the start)
    arrival: Any  # [N] day
    positive: Any  # [N, T] traits the patient is positive for
    u_trait: Any  # [N] uniform of the multi-trait draw
    stratum: Any  # [N]
    u_arm: Any  # [N]
    u_outcome: Any  # [N]
    # what happened to them
    trait: Any  # [N] trait the patient was randomised in (drawn at randomisation), -1 none
    randomised: Any  # [N] bool
    arm: Any  # [N] 0 = usual care, 1 + e = experimental arm e
    category: Any  # [N] OSFD category index (0 = death)
    # arms and allocation
    states: Any  # [A]
    probs: Any  # [T, 1 + M]
    laplace_osfd: Any
    laplace_mortality: Any
    decision: Any  # [A] decision code (continue until one is made)
    decision_look: Any  # [A] look of the decision, -1 none
    decision_day: Any  # [A]
    estimate: Any  # [A, 3] posterior mean, 2.5 % and 97.5 % of the adults' OSFD log OR
    estimate_look: Any  # [A] look of the estimate, -1 none
    n_looks: Any  # looks conducted
    n_near_looks: Any  # looks with a decision probability near its threshold


def _near_threshold(
    pr_benefit: Any,
    pr_futility: Any,
    pr_harm: Any,
    n_complete: Any,
    p: dec.DecisionParams,
    band: float,
) -> Any:
    """``[A]``: an arm with enough complete outcomes for a rule whose probability lies within
    ``band`` of that rule's threshold (graduation, futility, harm on either outcome)."""

    def close(pr, threshold, minimum):
        return (jnp.abs(pr - threshold) < band) & (n_complete >= minimum)

    harm = jnp.any(jnp.abs(pr_harm - p.harm_threshold) < band, axis=1)
    return (
        close(pr_benefit, p.graduation_threshold, p.graduation_min_complete)
        | close(pr_futility, p.futility_threshold, p.futility_min_complete)
        | (harm & (n_complete >= p.harm_min_complete))
    )


def _arrivals(key: Any, n: int, per_day: Any, ramp: Any) -> Any:
    """``n`` arrival days of a Poisson process whose rate rises linearly from 0 to ``per_day``
    over ``ramp`` days, then stays: the inverse of the cumulative intensity at unit-rate
    arrival times."""
    e = jnp.cumsum(jax.random.exponential(key, (n,)))  # unit-rate process
    in_ramp = 2.0 * e * jnp.maximum(ramp, 1e-9) / per_day
    plateau = e / per_day + ramp / 2.0
    days = jnp.where(e < per_day * ramp / 2.0, jnp.sqrt(in_ramp), plateau)
    # XLA's float32 cumulative sum may round neighbours out of order: sort (the later logic
    # relies on arrivals in order)
    return jnp.sort(days)


def open_traits(
    states: Any, available: Any, trait_arms: Any, has_slot: Any, stratum: Any, codes: Any
) -> Any:
    """``[N, T]``: the traits that can randomise each arrival now (pure JAX).

    A trait can randomise a patient when it has an experimental arm open to the patient's age
    group (such a trait is live): the randomiser's rule (the multi-trait draw is among the positive
    traits that can randomise the patient, :func:`palette_core.randomisation.randomise.
    open_traits_now`). ``states`` ``[A]`` arm state codes, ``available`` ``[A, S]`` whether
    each arm may be given to each age stratum (age range and dose suspension), ``trait_arms``
    ``[T, M]`` each trait's experimental arms (-1 pads), ``has_slot`` ``[T, M]`` the real
    slots, ``stratum`` ``[N]`` the arrivals' age strata, ``codes`` the lifecycle's state codes.
    """
    safe = jnp.maximum(trait_arms, 0)  # [T, M]
    open_arm = (states[safe] == codes.open) & has_slot  # [T, M]
    by_stratum = open_arm[None] & jnp.moveaxis(available[safe], -1, 0)  # [S, T, M]
    return jnp.any(by_stratum, axis=-1)[stratum]


def build(settings: PlatformSettings) -> engine.TrialProgram:
    """The PALETTE trial program of ``settings`` (see the module docstring)."""
    ctx = context(settings.model_dump_json())
    spec = ctx.spec
    codes = lc.state_codes(ctx.design)
    targets = jnp.asarray(lc.decision_targets(codes, dec.DECISION_NAMES))
    n, n_arms, n_traits = ctx.n_candidates, ctx.n_arms, ctx.n_traits
    k_cat = spec.n_categories
    n_cells = int(np.asarray(ctx.grid.arm).shape[0])
    cell_of = jnp.asarray(ctx.cell_of)
    trait_arms = jnp.asarray(ctx.trait_arms)
    has_slot = trait_arms >= 0
    arm_trait = jnp.asarray(spec.arm_trait, dtype=jnp.int32)
    pool_positive = jnp.asarray(ctx.pool_positive)
    pool_stratum = jnp.asarray(ctx.pool_stratum)
    grid = CellData(*(jnp.asarray(x) for x in ctx.grid))
    priors = model_priors(ctx.design)
    rule = lp.Rule(tuple(ctx.settings.laplace_rule))
    e_cap = spec.n_eras
    # (layout, cell structure) of each outcome's Laplace approximation, checked once here
    models = {
        name: (lay, lp.structure(lay, ctx.grid._replace(counts=np.zeros((n_cells, k), np.float32))))
        for name, lay, k in (("osfd", ctx.lay_osfd, k_cat), ("mortality", ctx.lay_mortality, 2))
    }

    def truth(params) -> dict[str, Any]:
        return {
            "cutpoints": params["cut"],
            "trait_shift": params["trait_shift"],
            "era_effect": params["era_effect"],
            "log_or": params["log_or"],
            "log_or_child": params["log_or_child"],
        }

    def init(key, params) -> tuple[Carry, Any]:
        k_arr, k_pool, k_trait, k_arm, k_out, k_run = jax.random.split(key, 6)
        arrival = _arrivals(k_arr, n, params["accrual_per_day"], params["ramp_days"])
        who = jax.random.randint(k_pool, (n,), 0, pool_positive.shape[0])
        n_slots = trait_arms.shape[1] + 1
        laplace0 = _cold_states(grid)
        return Carry(
            key=k_run,
            look_day=jnp.float32(0.0),
            next_candidate=jnp.int32(0),
            n_randomised=jnp.int32(0),
            finished=jnp.bool_(False),
            exhausted=jnp.bool_(False),
            arrival=arrival,
            positive=pool_positive[who],
            u_trait=jax.random.uniform(k_trait, (n,)),
            trait=jnp.full(n, -1, jnp.int32),
            stratum=pool_stratum[who],
            u_arm=jax.random.uniform(k_arm, (n,)),
            u_outcome=jax.random.uniform(k_out, (n,)),
            randomised=jnp.zeros(n, bool),
            arm=jnp.zeros(n, jnp.int32),
            category=jnp.zeros(n, jnp.int32),
            states=params["initial_state"],
            probs=_initial_probs(params, n_slots),
            laplace_osfd=laplace0[0],
            laplace_mortality=laplace0[1],
            decision=jnp.full(n_arms, dec.CONTINUE, jnp.int32),
            decision_look=jnp.full(n_arms, -1, jnp.int32),
            decision_day=jnp.full(n_arms, jnp.nan, jnp.float32),
            estimate=jnp.full((n_arms, 3), jnp.nan, jnp.float32),
            estimate_look=jnp.full(n_arms, -1, jnp.int32),
            n_looks=jnp.int32(0),
            n_near_looks=jnp.int32(0),
        ), params

    def outcome_cdf(params) -> Any:
        """``[n_cells, K]``: the cumulative distribution of OSFD in every cell of the grid
        under the scenario's truth (:func:`linear_predictor`, :func:`category_log_probs`)."""
        eta = linear_predictor(spec, truth(params), grid.trait, grid.stratum, grid.arm, grid.era)
        log_p = category_log_probs(eta, params["cut"][grid.stratum])
        return jnp.cumsum(jnp.exp(log_p), axis=1)

    def available_slots(c: Carry, params, trait) -> Any:
        """``[N, 1 + M]``: the arms (usual care first) open to each arrival's age group in
        ``trait`` (``[N]``), under the arm states in force."""
        t = jnp.maximum(trait, 0)
        arms = trait_arms[t]  # [N, M]
        safe = jnp.maximum(arms, 0)
        open_arm = (c.states[safe] == codes.open) & has_slot[t]
        ok = open_arm & params["available"][safe, c.stratum[:, None]]
        return jnp.concatenate([jnp.ones((n, 1), bool), ok], axis=1)

    def enrol(c: Carry, params, look_index) -> tuple[Carry, Any, Any]:
        """Randomise the arrivals until the look that follows; return the look's day."""
        drawn = choose_trait(
            jnp,
            c.positive
            & open_traits(c.states, params["available"], trait_arms, has_slot, c.stratum, codes),
            c.u_trait,
            params["policy_weights"],
            params["policy_rank"],
            params["policy_random"],
        ).astype(jnp.int32)
        slots = available_slots(c, params, drawn)
        t = jnp.maximum(drawn, 0)
        live = lc.live_traits(jnp, c.states, arm_trait, n_traits, codes)
        wants = (jnp.arange(n) >= c.next_candidate) & (drawn >= 0)
        wants = wants & jnp.any(slots[:, 1:], axis=1)  # an experimental arm open to them
        count = c.n_randomised + jnp.cumsum(wants)
        target = jnp.minimum((look_index + 1) * ctx.look_every, ctx.n_patients)
        reach = wants & (count == target)
        found = jnp.any(reach)
        t_star = jnp.where(found, c.arrival[jnp.argmax(reach)], c.arrival[-1])
        # the registered phase ends at the horizon: enrolment closes 28 days before it, so
        # that every patient's outcome is complete at the final analysis
        look_day = jnp.minimum(t_star + FOLLOW_UP_DAYS, ctx.horizon_days)
        last_entry = ctx.horizon_days - FOLLOW_UP_DAYS
        new = wants & (c.arrival <= jnp.minimum(look_day, last_entry)) & (count <= ctx.n_patients)
        # allocation: the trait's probabilities, restricted to the arms open to the patient
        p = jnp.where(slots, c.probs[t], 0.0)
        p = p / jnp.maximum(jnp.sum(p, axis=1, keepdims=True), 1e-30)
        slot = jnp.sum(jnp.cumsum(p, axis=1) <= c.u_arm[:, None], axis=1)
        slot = jnp.minimum(slot, p.shape[1] - 1)
        code = jnp.where(slot == 0, 0, 1 + trait_arms[t, jnp.maximum(slot - 1, 0)])
        # outcome: the model's generative form with the scenario's truth, computed once per
        # cell of the grid (a few hundred) rather than per candidate (thousands); a patient
        # reads the distribution of their cell (a candidate off the grid is never enrolled)
        era = jnp.minimum(jnp.floor(c.arrival / ctx.era_days).astype(jnp.int32), e_cap - 1)
        cdf = outcome_cdf(params)[jnp.maximum(cell_of[t, c.stratum, code, era], 0)]
        cat = jnp.minimum(jnp.sum(cdf <= c.u_outcome[:, None], axis=1), k_cat - 1)
        c = c._replace(
            randomised=c.randomised | new,
            trait=jnp.where(new, drawn, c.trait),
            arm=jnp.where(new, code, c.arm),
            category=jnp.where(new, cat, c.category),
            n_randomised=c.n_randomised + jnp.sum(new),
            next_candidate=jnp.sum(c.arrival <= look_day).astype(jnp.int32),
            look_day=look_day,
            exhausted=c.exhausted | (~found & jnp.any(live) & (look_day < ctx.horizon_days)),
        )
        final = (found & (target >= ctx.n_patients)) | (look_day >= ctx.horizon_days)
        return c, final

    def counts(c: Carry) -> tuple[CellData, CellData, Any, Any]:
        """The look's cell counts (both outcomes) and complete / allocated patients per arm."""
        complete = c.randomised & (c.arrival + FOLLOW_UP_DAYS <= c.look_day + 1e-3)
        t = jnp.maximum(c.trait, 0)
        era = jnp.minimum(jnp.floor(c.arrival / ctx.era_days).astype(jnp.int32), e_cap - 1)
        cell = jnp.where(complete, cell_of[t, c.stratum, c.arm, era], n_cells)
        onehot = jax.nn.one_hot(c.category, k_cat, dtype=jnp.float32)
        osfd = jax.ops.segment_sum(onehot, cell, num_segments=n_cells + 1)[:n_cells]
        mort = jnp.stack([jnp.sum(osfd[:, 1:], axis=1), osfd[:, 0]], axis=1)
        in_use = jnp.minimum(jnp.floor(c.look_day / ctx.era_days).astype(jnp.int32) + 1, e_cap)
        arm_e = c.arm - 1
        n_complete = jax.ops.segment_sum(
            (complete & (c.arm > 0)).astype(jnp.int32), jnp.maximum(arm_e, 0), n_arms
        )
        n_alloc = jax.ops.segment_sum(
            (c.randomised & (c.arm > 0)).astype(jnp.int32), jnp.maximum(arm_e, 0), n_arms
        )
        uc = complete & (c.arm == 0)
        n_complete_uc = jax.ops.segment_sum(uc.astype(jnp.int32), t, n_traits)
        data_o = grid._replace(counts=osfd, n_eras=in_use)
        data_m = grid._replace(counts=mort, n_eras=in_use)
        return data_o, data_m, (n_complete, n_alloc, n_complete_uc), jnp.sum(complete)

    def analyse(model, data, state, look_index):
        lay, st = models[model]

        def cold(_):
            return lp.laplace_arrays(lay, st, priors, data.counts, None, rule=rule)

        def warm(state):
            return lp.laplace_arrays(lay, st, priors, data.counts, state, rule=rule)

        return jax.lax.cond(look_index == 0, cold, warm, state)

    def look(carry, look_index):
        c, params = carry
        c, final = enrol(c, params, look_index)
        data_o, data_m, (n_complete, n_alloc, n_complete_uc), n_done = counts(c)
        res_o = analyse("osfd", data_o, c.laplace_osfd, look_index)
        res_m = analyse("mortality", data_m, c.laplace_mortality, look_index)
        ref = params["log_references"]
        pr_benefit = lp.pr_greater(res_o, ref[0])[:n_arms]
        pr_futility = lp.pr_greater(res_o, ref[1])[:n_arms]
        pr_harm = jnp.stack(
            [lp.pr_less(res_o, ref[2])[:n_arms], lp.pr_less(res_m, ref[2])[:n_arms]], axis=1
        )
        dparams = dec.DecisionParams(**params["decision"])
        made = dec.decide_arrays(pr_benefit, pr_futility, pr_harm, n_complete, n_alloc, dparams)
        was_open = c.states == codes.open
        made = jnp.where(was_open, made, dec.CONTINUE)
        opens_now = params["open_day"] <= c.look_day
        states = lc.next_arm_states(jnp, c.states, made, opens_now, targets, codes)
        newly = was_open & (made != dec.CONTINUE)
        near = was_open & _near_threshold(
            pr_benefit, pr_futility, pr_harm, n_complete, dparams, ctx.settings.near_threshold_band
        )
        # the next period's allocation, from the OSFD posterior of the adults' effects
        k_draw, key = jax.random.split(c.key)
        draws = lp.joint_draws(res_o, k_draw, ctx.settings.n_draws, n_arms)  # adults only
        probs = _allocation(params, states, draws, n_complete, n_complete_uc)
        summ = lp.mixture_summary(lp.leading(res_o, n_arms))  # adults only
        est = jnp.stack([summ.mean, summ.q_low, summ.q_high], axis=1)
        keep = was_open
        live = lc.live_traits(jnp, states, arm_trait, n_traits, codes)
        c = c._replace(
            key=key,
            states=states,
            probs=probs,
            laplace_osfd=res_o.state,
            laplace_mortality=res_m.state,
            decision=jnp.where(newly, made, c.decision),
            decision_look=jnp.where(newly, look_index, c.decision_look),
            decision_day=jnp.where(newly, c.look_day, c.decision_day),
            estimate=jnp.where(keep[:, None], est, c.estimate),
            estimate_look=jnp.where(keep, look_index, c.estimate_look),
            finished=final | ~jnp.any(live) | c.exhausted,
            n_looks=c.n_looks + 1,
            n_near_looks=c.n_near_looks + jnp.any(near).astype(jnp.int32),
        )
        record = {
            "day": c.look_day,
            "n_randomised": c.n_randomised,
            "n_complete": n_done,
            "n_allocated": n_alloc,
            "n_complete_arm": n_complete,
            "pr_benefit": pr_benefit,
            "pr_futility": pr_futility,
            "pr_harm_osfd": pr_harm[:, 0],
            "pr_harm_mortality": pr_harm[:, 1],
            "decision": made,
            "near_threshold": near,
            "state": states,
            "allocation": probs,
            "laplace_ok": res_o.converged
            & res_o.positive_definite
            & res_m.converged
            & res_m.positive_definite,
            "laplace_edge_weight": jnp.maximum(res_o.edge_weight, res_m.edge_weight),
        }
        return (c, params), record

    def _allocation(params, states, draws, n_complete, n_complete_uc):
        aparams = alloc.AllocationParams(**params["allocation"])

        def one(t):
            arms = trait_arms[t]
            safe = jnp.maximum(arms, 0)
            open_mask = (states[safe] == codes.open) & (arms >= 0)
            pr = alloc.pr_best(draws[:, safe], open_mask)
            nc = jnp.concatenate(
                [n_complete_uc[t][None], jnp.where(arms >= 0, n_complete[safe], 0)]
            )
            return alloc.allocation_probabilities(pr, open_mask, nc, aparams)

        return jax.vmap(one)(jnp.arange(n_traits))

    def _initial_probs(params, n_slots):
        zeros = jnp.zeros(n_arms, jnp.int32)
        draws = jnp.zeros((1, n_arms), jnp.float32)
        return _allocation(
            params, params["initial_state"], draws, zeros, jnp.zeros(n_traits, jnp.int32)
        )

    def _cold_states(grid_data):
        """Zero Laplace states of the right shapes (the first look starts cold anyway)."""

        def state_of(model, k):
            lay, st = models[model]
            data = grid_data._replace(counts=jnp.zeros((n_cells, k), jnp.float32))
            return jax.eval_shape(
                lambda d: lp.laplace_arrays(lay, st, priors, d.counts, None, rule=rule).state,
                data,
            )

        shapes = [state_of("osfd", k_cat), state_of("mortality", 2)]
        return [jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), sh) for sh in shapes]

    def stopped(carry):
        return carry[0].finished

    def summary(carry):
        c, _ = carry
        n_strata = ctx.n_strata
        on_arm = (c.randomised & (c.arm > 0)).astype(jnp.int32)
        index = jnp.maximum(c.arm - 1, 0) * n_strata + c.stratum
        by_stratum = jax.ops.segment_sum(on_arm, index, n_arms * n_strata)
        by_stratum = by_stratum.reshape(n_arms, n_strata)
        uc = (c.randomised & (c.arm == 0)).astype(jnp.int32)
        uc_by_stratum = jax.ops.segment_sum(
            uc, jnp.maximum(c.trait, 0) * n_strata + c.stratum, n_traits * n_strata
        ).reshape(n_traits, n_strata)
        return {
            "n_allocated_stratum": by_stratum,
            "n_usual_care_stratum": uc_by_stratum,
            "n_randomised": c.n_randomised,
            "duration_days": c.look_day,
            "exhausted": c.exhausted,
            "final_state": c.states,
            "decision": c.decision,
            "decision_look": c.decision_look,
            "decision_day": c.decision_day,
            "n_allocated": jnp.sum(by_stratum, axis=1),
            "estimate_mean": c.estimate[:, 0],
            "estimate_low": c.estimate[:, 1],
            "estimate_high": c.estimate[:, 2],
            "estimate_look": c.estimate_look,
            "n_looks": c.n_looks,
            "n_near_threshold_looks": c.n_near_looks,
        }

    def start(key, params):
        return init(key, params)

    arms, trait_ids = list(spec.arms), list(spec.traits)
    slots = ["usual_care"] + [f"arm{j + 1}" for j in range(trait_arms.shape[1])]
    labels = {
        k: arms
        for k in (
            "final_state",
            "decision",
            "decision_look",
            "decision_day",
            "n_allocated",
            "estimate_mean",
            "estimate_low",
            "estimate_high",
            "estimate_look",
            "n_complete_arm",
            "pr_benefit",
            "pr_futility",
            "pr_harm_osfd",
            "pr_harm_mortality",
            "near_threshold",
            "state",
        )
    }
    labels["allocation"] = [f"{t}/{s}" for t in trait_ids for s in slots]
    strata = list(spec.age_groups)
    labels["n_allocated_stratum"] = [f"{a}/{g}" for a in arms for g in strata]
    labels["n_usual_care_stratum"] = [f"{t}/{g}" for t in trait_ids for g in strata]
    state_names = list(codes.names)
    return engine.TrialProgram(
        name=PROGRAM,
        n_looks=ctx.n_looks,
        init=start,
        look=look,
        stopped=stopped,
        summary=summary,
        labels=labels,
        categories={
            "final_state": state_names,
            "state": state_names,
            "decision": list(dec.DECISION_NAMES),
        },
    )


engine.register_program(
    engine.ProgramDefinition(
        name=PROGRAM,
        settings_model=PlatformSettings,
        scenario_model=PlatformScenario,
        build=build,
        parameters=scenario_parameters,
    )
)
