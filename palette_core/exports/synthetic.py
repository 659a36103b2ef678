"""A synthetic data export with known true effects, for the worked interim analysis.

:func:`make_synthetic_export` builds, from a scenario (``data/scenarios/interim_example.yaml``),
an export that follows ``data/design/export_contract.yaml`` to the letter (column names and
order, ISO dates, ``;``-separated lists, ``start/end`` intervals, the metadata of
``export.yaml``) and a ``truth`` table that says what an analysis of it must find.
:func:`write_synthetic_export` writes both, with a manifest, to
``data/exports/synthetic_interim/``.

How the export is made
----------------------
1. **Screening.** ``n_screened`` patients are drawn from the cohort generator
   (:func:`palette_core.screening.cohort.generate_cohort`). Each gets a screening date and a site from
   the accrual model: every site recruits as a Poisson process from its opening date, its rate
   rising linearly over ``ramp_up_days``; given the number screened, the dates are independent
   draws from the summed intensity (sorted, so patient ids follow time), and the site of a
   patient is drawn in proportion to the sites' intensities on that day.
2. **Randomisation.** The real randomiser (:func:`palette_core.randomisation.randomise.randomise_patients`)
   classifies every screened patient, assigns the trait by the multi-trait policy and draws the
   arm with HMAC from the scenario's public demonstration secret and the default (equal)
   allocation state, logging to a temporary log that is deleted afterwards. The log is
   appended under full verification, which costs time quadratic in its length, so the patients
   are randomised trait by trait in separate logs: the draws are those of a single log,
   because every log gets the scenario's instance value (``randomisation.instance``, public and
   fixed so that the export is reproducible), the stratum is the trait (each trait has its own
   sequence) and the multi-trait draw depends only on (seed, patient id); every allocation's
   trait is checked against the
   classification. Patients who are not eligible, have no trait or are refused are not
   randomised and not exported (an export has one row per randomised patient). The log's time
   stamp is the study start for every patient; the export's randomisation date is the
   screening date of step 1. The baseline severity fields (``severity_of`` in the contract:
   ``sofa_score`` for adults, ``phoenix_score`` for children) are the screening scores of the
   classification (:func:`severity_scores`): no random draw, so every other column is what it
   was before they were added; a score that the record leaves undetermined is empty. Severity
   does not enter the outcome model of step 3: the covariate-adjusted analysis of this export
   should find no severity (and no country) effect.
3. **Outcome.** Each randomised patient's organ-support-free days to day 28 (OSFD, -1 = death)
   is drawn from ONE proportional-odds model: the usual-care distribution of the patient's age
   group (28-day mortality, share of survivors never supported, support days of the others),
   shifted on the cumulative-logit scale by the trait's prognosis and by the log of the arm's
   benefit-oriented odds ratio, ``P(OSFD >= k) = expit(logit P0(OSFD >= k) + delta + log OR)``
   for every k. Death is the lowest category, so the same odds ratio holds for 28-day survival
   (the benefit-oriented OR of ``mortality28``). The OR is the same in both age groups; there is
   no time trend.
4. **Timeline.** The OSFD becomes dates that imply it: a death date on day
   ``d <= 28`` (day 1 = randomisation date) for OSFD = -1, with support up to death; otherwise
   organ-support intervals of random types (sometimes overlapping, sometimes in two separate
   episodes) whose union covers exactly ``28 - OSFD`` of days 1..28, intensive-care and hospital
   discharge after the end of support, and a last-known-alive date on or after day 28 for most
   survivors. A few patients still on support on day 28 die later; a few survivors discharged
   before day 28 are lost to follow-up (outcome missing). Safety events and open-label use are
   drawn at the scenario's rates (bleeding and infection more frequent on the arms with a
   substance named by the outcome).
5. **Data cut.** Nothing after the data cut is exported: a death, discharge, event or interval
   start after it is removed, a support interval running at the cut is open (``start/``), and
   the last-known-alive date of a patient alive at the cut is at most the cut. Patients whose
   day 28 is after the cut have truncated follow-up (pending).
6. **Withdrawals** of each scope are applied to a few patients (for ``follow_up``, nothing after
   the withdrawal date is exported; for ``all_data``, only the identity and randomisation
   fields and the withdrawal remain).
7. **Bad rows.** A few rows are deliberately broken (an unknown arm, a hospital discharge dated
   before randomisation, a malformed interval, a repeated patient id), each listed in the truth
   table with the field that a reader of the export must report.

The truth table has one row per export row (same order): the true OSFD, 28-day death, safety
events and the true OR of the arm, the status (complete, pending, missing,
withdrawn_all_data, invalid) and OSFD that the derivation must give, and the injected problem.
Patients whose day 28 is after the cut are ``pending`` even if they died before it (the
completeness rule of ``proposed/interim_analysis.yaml``: only patients who have reached day 28
by the cut count, so that early deaths are not over-represented).

Every random step draws from its own stream of one ``numpy`` seed sequence, so the same seed
gives byte-identical ``patients.csv`` and ``truth.csv`` (the manifest, which records the git
revision and the platform, is not byte-identical by design).

Examples
--------
>>> from palette_core.design.loader import load_design
>>> design = load_design()
>>> scenario = load_scenario(design)
>>> scenario["n_screened"] = 150
>>> synth = make_synthetic_export(design, scenario)  # doctest: +SKIP
>>> list(synth.patients.columns[:3])  # doctest: +SKIP
['patient_id', 'site_id', 'country']
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from palette_core.design.common import parse_model
from palette_core.design.loader import Design, data_file, load_design
from palette_core.errors import DesignSchemaError, OutOfRangeError, UnknownReferenceError
from palette_core.exports.derive import STATUS
from palette_core.provenance import build_manifest, file_sha256
from palette_core.randomisation.randomise import (
    default_allocation_state,
    open_traits_now,
    parse_secret,
    randomise_patients,
    trait_draw_seed,
)
from palette_core.screening.classify import classify_patients
from palette_core.screening.cohort import generate_cohort
from palette_core.screening.patients import validate_patients
from palette_core.yamlio import read_yaml

#: The shipped scenario and the export written from it, relative to the data root
#: (:attr:`Design.data_root`).
SCENARIO_FILE = "scenarios/interim_example.yaml"
EXPORT_FOLDER = "exports/synthetic_interim"
#: How errors and the export's header name the shipped scenario.
LABEL = f"data/{SCENARIO_FILE}"
WINDOW = 28
#: The organ-support types of the contract, in the order of the export's columns.
SUPPORT_TYPES = (
    "invasive_ventilation",
    "non_invasive_ventilation",
    "high_flow_oxygen",
    "vasopressors",
    "renal_replacement",
    "ecmo",
)
STATUSES = STATUS  # the statuses of palette_core.exports.derive
BAD_ROW_FIELDS = {
    "unknown_arm": "arm",
    "discharge_before_randomisation": "hospital_discharge_date",
    "malformed_interval": None,  # the support column of the interval broken
    "duplicate_patient_id": "patient_id",
}
#: What an unknown arm looks like: a typo of a real id.
UNKNOWN_ARM = "hinf_usualcare"


# ----------------------------------------------------------------------------- scenario schema
class _M(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Probability = Field(ge=0.0, le=1.0)


class RandomisationSpec(_M):
    secret: str = Field(min_length=32)
    instance: str = Field(pattern=r"^[0-9a-f]{32}$")
    policy: Literal["default", "sensitivity"] = "default"
    stratify: tuple[Literal["age_group", "site"], ...] = ()
    allocation: Literal["default"] = "default"
    rationale: str


class ExportSpec(_M):
    export_id: str = Field(min_length=1)
    data_cut: dt.date
    created_by: str = Field(min_length=1)


class Site(_M):
    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    country: str = Field(pattern=r"^[A-Z]{2}$")
    opens: dt.date
    relative_rate: float = Field(gt=0)


class AccrualSpec(_M):
    ramp_up_days: int = Field(ge=1)
    sites: tuple[Site, ...] = Field(min_length=1)
    rationale: str


class UsualCare(_M):
    mortality28: float = Field(gt=0.0, lt=1.0)
    no_support: float = Field(ge=0.0, lt=1.0)
    support_days_mean: float = Field(ge=1.0, le=28.0)
    support_days_dispersion: float = Field(gt=0.0)


class UsualCareSpec(_M):
    by_age_group: dict[str, UsualCare]
    trait_log_odds: dict[str, float] = {}
    rationale: str


class TrueEffects(_M):
    odds_ratios: dict[str, float]
    rationale: str


class PrimarySupport(_M):
    invasive_ventilation: float = Probability
    non_invasive_ventilation: float = Probability
    high_flow_oxygen: float = Probability
    vasopressors: float = Probability


class TimelineSpec(_M):
    death_day_scale_days: float = Field(gt=0)
    support_before_death_stops: float = Probability
    late_start: float = Probability
    two_episodes: float = Probability
    primary_support: PrimarySupport
    step_down: float = Probability
    vasopressors: float = Probability
    renal_replacement: float = Probability
    ecmo: float = Probability
    support_after_day28_days_mean: float = Field(ge=1.0)
    late_death_on_support: float = Probability
    icu_days_after_support_mean: float = Field(ge=1.0)
    hospital_days_after_icu_mean: float = Field(ge=1.0)
    rationale: str


class FollowUpSpec(_M):
    day28_contact_lag_days: tuple[int, int]
    lost_after_discharge: float = Probability
    rationale: str


class WithdrawalSpec(_M):
    treatment: int = Field(ge=0)
    follow_up_before_day28: int = Field(ge=0)
    follow_up_after_day28: int = Field(ge=0)
    all_data: int = Field(ge=0)
    rationale: str


class EventRate(_M):
    usual: float = Probability
    on_substances: float = Probability


class SafetySpec(_M):
    isth_major_bleeding: EventRate
    secondary_infection: EventRate
    rationale: str


class OpenLabelSpec(_M):
    rate: float = Probability
    rationale: str


BadRowKind = Literal[
    "unknown_arm", "discharge_before_randomisation", "malformed_interval", "duplicate_patient_id"
]


class BadRowsSpec(_M):
    kinds: tuple[BadRowKind, ...] = ()
    rationale: str


class Scenario(_M):
    """The scenario file (``data/scenarios/interim_example.yaml``), parsed."""

    status: Literal["illustrative"]
    description: str
    seed: int = Field(ge=0)
    n_screened: int = Field(ge=1)
    randomisation: RandomisationSpec
    export: ExportSpec
    accrual: AccrualSpec
    usual_care: UsualCareSpec
    true_effects: TrueEffects
    timeline: TimelineSpec
    follow_up: FollowUpSpec
    withdrawals: WithdrawalSpec
    safety: SafetySpec
    open_label: OpenLabelSpec
    bad_rows: BadRowsSpec


def load_scenario(source: Design | str | Path) -> dict[str, Any]:
    """Read a scenario file as a plain mapping (checked by :func:`parse_scenario` when used).

    ``source``: the design (the file is :data:`SCENARIO_FILE` under its data root) or the
    file's path.

    Raises
    ------
    DesignSchemaError
        The file is missing or is not YAML.
    """
    path = data_file(source, SCENARIO_FILE)
    if not path.is_file():
        raise DesignSchemaError(str(path), None, None, "scenario file not found")
    raw = read_yaml(path, str(path))
    if not isinstance(raw, dict):
        raise DesignSchemaError(str(path), None, None, "expected a mapping at top level")
    return raw


def parse_scenario(raw: Mapping[str, Any], design: Design, label: str = LABEL) -> Scenario:
    """Validate a scenario mapping against its schema and the design.

    Raises
    ------
    DesignSchemaError
        A field is missing, unknown or of the wrong type; an arm without an odds ratio; no
        usual-care distribution for an age group.
    UnknownReferenceError
        An arm, trait or age group that the design does not know.
    OutOfRangeError
        A date outside the study (a site opening before the study start or after the data cut),
        a probability table that does not sum to 1, an odds ratio that is not positive.
    """
    sc = parse_model(Scenario, dict(raw), label)
    start = design.trial.study_start
    cut = sc.export.data_cut
    if cut < start:
        raise OutOfRangeError(label, "export", "data_cut", f"before the study start {start}")
    ids = [s.id for s in sc.accrual.sites]
    if len(set(ids)) != len(ids):
        raise DesignSchemaError(label, "accrual", "sites", "site ids repeated")
    for s in sc.accrual.sites:
        if not start <= s.opens <= cut:
            raise OutOfRangeError(
                label, s.id, "opens", f"must lie between the study start {start} and the cut {cut}"
            )
    groups = set(design.age_group_ids)
    for g in sc.usual_care.by_age_group:
        if g not in groups:
            raise UnknownReferenceError(label, g, "usual_care.by_age_group", "unknown age group")
    for g in design.age_group_ids:
        if g not in sc.usual_care.by_age_group:
            raise DesignSchemaError(label, g, "usual_care.by_age_group", "no usual-care outcome")
    for t in sc.usual_care.trait_log_odds:
        if t not in design.trait_ids:
            raise UnknownReferenceError(label, t, "usual_care.trait_log_odds", "unknown trait")
    experimental = {a.id for a in design.experimental_arms()}
    for a, v in sc.true_effects.odds_ratios.items():
        if a not in experimental:
            raise UnknownReferenceError(
                label, a, "true_effects.odds_ratios", "not an experimental arm of the design"
            )
        if not (math.isfinite(v) and v > 0):
            raise OutOfRangeError(label, a, "true_effects.odds_ratios", "must be > 0")
    for a in sorted(experimental - set(sc.true_effects.odds_ratios)):
        raise DesignSchemaError(label, a, "true_effects.odds_ratios", "no true odds ratio")
    total = sum(sc.timeline.primary_support.model_dump().values())
    if abs(total - 1.0) > 1e-9:
        raise OutOfRangeError(label, "timeline", "primary_support", f"sums to {total}, not 1")
    lo, hi = sc.follow_up.day28_contact_lag_days
    if not 0 <= lo <= hi:
        raise OutOfRangeError(label, "follow_up", "day28_contact_lag_days", "need 0 <= lo <= hi")
    return sc


# ----------------------------------------------------------------------------- outcome model
def usual_care_pmf(spec: UsualCare) -> np.ndarray:
    """Usual-care probabilities of OSFD = -1, 0, ..., 28 (30 values, summing to 1)."""
    mean_extra = spec.support_days_mean - 1.0
    days = np.zeros(WINDOW)  # support days 1..28 of a supported survivor
    if mean_extra <= 0:
        days[0] = 1.0
    else:  # 1 + negative binomial (size k, mean mean_extra); 28 or more lumped into 28
        k = spec.support_days_dispersion
        p = k / (k + mean_extra)
        x = np.arange(WINDOW - 1)
        log_pmf = (
            np.array([math.lgamma(v + k) - math.lgamma(k) - math.lgamma(v + 1) for v in x])
            + k * math.log(p)
            + x * math.log1p(-p)
        )
        days[:-1] = np.exp(log_pmf)
        days[-1] = max(0.0, 1.0 - days[:-1].sum())
    survivors = np.zeros(WINDOW + 1)  # index = support days 0..28
    survivors[0] = spec.no_support
    survivors[1:] = (1.0 - spec.no_support) * days
    pmf = np.empty(WINDOW + 2)
    pmf[0] = spec.mortality28
    pmf[1:] = (1.0 - spec.mortality28) * survivors[::-1]  # OSFD = 28 - support days
    return pmf / pmf.sum()


def shifted_pmf(pmf: np.ndarray, log_odds: float) -> np.ndarray:
    """Shift a distribution of OSFD (-1..28) by ``log_odds`` on every cumulative logit.

    ``P(OSFD >= k)`` becomes ``expit(logit P(OSFD >= k) + log_odds)`` for k = 0..28: the
    proportional-odds model, benefit-oriented (a positive shift moves patients to more
    support-free days and to survival).
    """
    upper = np.clip(1.0 - np.cumsum(pmf)[:-1], 0.0, 1.0)  # P(OSFD >= k), k = 0..28
    with np.errstate(divide="ignore"):
        logit = np.log(upper) - np.log1p(-upper)
    shifted = 1.0 / (1.0 + np.exp(-(logit + log_odds)))
    cum = np.concatenate([[1.0], shifted, [0.0]])
    return -np.diff(cum)


def draw_osfd(pmf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """OSFD (-1..28) by inversion of ``pmf`` at the uniforms ``u``."""
    cdf = np.cumsum(pmf)
    cdf[-1] = 1.0
    return np.searchsorted(cdf, u, side="right").astype(int) - 1


# ----------------------------------------------------------------------------- accrual
def _accrual(sc: Scenario, design: Design, n: int, rng: np.random.Generator):
    start, cut = design.trial.study_start, sc.export.data_cut
    n_days = (cut - start).days + 1
    day = np.arange(n_days)[:, None]
    opens = np.array([(s.opens - start).days for s in sc.accrual.sites])[None, :]
    rate = np.array([s.relative_rate for s in sc.accrual.sites])[None, :]
    ramp = np.clip((day - opens + 1) / sc.accrual.ramp_up_days, 0.0, 1.0)
    intensity = rate * ramp  # [day, site]
    total = intensity.sum(axis=1)
    days = np.sort(rng.choice(n_days, size=n, p=total / total.sum()))
    share = np.cumsum(intensity[days], axis=1) / total[days][:, None]
    site = (share > rng.random(n)[:, None]).argmax(axis=1)
    dates = [start + dt.timedelta(days=int(d)) for d in days]
    return dates, site


# ----------------------------------------------------------------------------- randomisation
def _randomise(sc: Scenario, design: Design, cohort: pd.DataFrame) -> pd.DataFrame:
    """Randomise every screened patient; one row per randomised patient, in cohort order."""
    secret = parse_secret(sc.randomisation.secret, "scenario randomisation.secret")
    trial = design.trial.registry_id
    state = default_allocation_state(design)
    validation = validate_patients(cohort, design, source="synthetic cohort")
    instance = sc.randomisation.instance
    seed = trait_draw_seed(secret, trial, instance)
    now = dt.datetime.combine(design.trial.study_start, dt.time(0), tzinfo=dt.UTC)
    classes = classify_patients(
        validation,
        design,
        seed=seed,
        policy=sc.randomisation.policy,
        open_traits=open_traits_now(design, state, now.date()),
    )
    arm_of: dict[str, tuple[str, str]] = {}
    shm = Path("/dev/shm")  # a RAM disk where there is one: the log is fsync'ed at each entry
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="palette-synthetic-", dir=where) as tmp:
        for trait in design.trait_ids:
            rows = np.flatnonzero(
                classes["assigned_trait"].eq(trait).to_numpy(bool, na_value=False)
            )
            if rows.size == 0:
                continue
            result = randomise_patients(
                cohort.iloc[rows].reset_index(drop=True),
                design,
                state,
                secret,
                Path(tmp) / f"{trait}.jsonl",
                stratify=sc.randomisation.stratify,
                policy=sc.randomisation.policy,
                now=now,
                instance=instance,
            )
            if result.error is not None:
                raise result.error
            for a in result.allocations:
                if a.trait != trait:  # the split by trait must reproduce one log's draws
                    raise RuntimeError(
                        f"{a.patient_id}: randomised in {a.trait}, classified in {trait}"
                    )
                arm_of[a.patient_id] = (a.trait, a.arm)
    keep = classes["patient_id"].isin(list(arm_of)).to_numpy()
    out = pd.DataFrame(
        {
            "cohort_row": np.flatnonzero(keep),
            "patient_id": classes.loc[keep, "patient_id"].astype(str).to_numpy(),
            "age_group": classes.loc[keep, "age_group"].astype(str).to_numpy(),
            "positive_traits": classes.loc[keep, "positive_traits"].astype(str).to_numpy(),
        }
    )
    for name, score in severity_scores(design, classes.loc[keep]).items():
        out[name] = score
    out["assigned_trait"] = [arm_of[p][0] for p in out["patient_id"]]
    out["arm"] = [arm_of[p][1] for p in out["patient_id"]]
    return out


#: The column of :func:`palette_core.screening.classify.classify_patients` that holds the
#: score of each sepsis definition of ``proposed/strata.yaml``, and its upper bound when inputs
#: are missing.
SEVERITY_SCORES = {
    "sepsis3": ("sofa_total", "sofa_total_max"),
    "phoenix": ("phoenix_score", "phoenix_score_max"),
}


def severity_scores(design: Design, classes: pd.DataFrame) -> dict[str, list[str]]:
    """The export's severity fields (``severity_of`` in the contract) as text, per field.

    A patient's score is the screening score of the sepsis definition of the field's age
    group (SOFA for adults, Phoenix for children): empty for a patient of another age group,
    and empty when the record leaves the score undetermined (its lowest and highest values
    consistent with the missing inputs differ: not assessable, the export's missing value).
    """
    groups = classes["age_group"].astype("object").to_numpy()
    out: dict[str, list[str]] = {}
    for name, fld in design.export_contract.fields.items():
        if fld.severity_of is None:
            continue
        definition = next(
            g.sepsis_definition for g in design.strata.age_groups if g.id == fld.severity_of
        )
        lo_col, hi_col = SEVERITY_SCORES[definition]
        lo = classes[lo_col].to_numpy(dtype=object)
        hi = classes[hi_col].to_numpy(dtype=object)
        out[name] = [
            f"{int(a)}" if g == fld.severity_of and not pd.isna(a) and a == b else ""
            for g, a, b in zip(groups, lo, hi, strict=True)
        ]
    return out


# ----------------------------------------------------------------------------- timelines
@dataclass
class _Timeline:
    """One patient's follow-up in day numbers (day 1 = randomisation date)."""

    death: int | None = None
    icu_discharge: int | None = None
    hospital_discharge: int | None = None
    last_known_alive: int | None = None
    support: dict[str, list[list[int | None]]] = field(
        default_factory=lambda: {t: [] for t in SUPPORT_TYPES}
    )
    bleeding: int | None = None
    infection: int | None = None
    withdrawal: int | None = None
    withdrawal_scope: str | None = None
    lost: bool = False

    def add(self, kind: str, a: int, b: int) -> None:
        self.support[kind].append([a, b])

    def last_support_end(self) -> int:
        ends = [iv[1] for ivs in self.support.values() for iv in ivs]
        return max((e for e in ends if e is not None), default=0)

    def truncate(self, limit: int) -> None:
        """Remove everything after day ``limit``; support running then becomes open."""
        for name in ("death", "icu_discharge", "hospital_discharge", "bleeding", "infection"):
            v = getattr(self, name)
            if v is not None and v > limit:
                setattr(self, name, None)
        for kind, ivs in self.support.items():
            kept = []
            for a, b in ivs:
                if a is None or a > limit:
                    continue
                kept.append([a, None if b is None or b > limit else b])
            self.support[kind] = kept
        if self.death is None and (self.last_known_alive is None or self.last_known_alive > limit):
            self.last_known_alive = limit


def _geometric(rng: np.random.Generator, mean: float) -> int:
    """An integer >= 1 with the given mean (geometric)."""
    return int(rng.geometric(1.0 / mean))


def _episode(t: _Timeline, a: int, b: int, spec: TimelineSpec, rng: np.random.Generator) -> None:
    """Support intervals whose union is exactly days a..b."""
    p = spec.primary_support
    kinds = ("invasive_ventilation", "non_invasive_ventilation", "high_flow_oxygen", "vasopressors")
    probs = np.array([getattr(p, k) for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=probs / probs.sum()))]
    if kind == "invasive_ventilation" and b - a >= 2 and rng.random() < spec.step_down:
        c = int(rng.integers(a + 1, b))  # a+1 .. b-1
        t.add("invasive_ventilation", a, c)
        t.add("high_flow_oxygen", c + int(rng.integers(0, 2)), b)  # overlapping or adjacent
        iv_end = c
    else:
        t.add(kind, a, b)
        iv_end = b
    if kind != "vasopressors" and rng.random() < spec.vasopressors:
        t.add("vasopressors", a, a + int(rng.integers(0, b - a + 1)))
    if rng.random() < spec.renal_replacement:
        x = int(rng.integers(a, b + 1))
        t.add("renal_replacement", x, int(rng.integers(x, b + 1)))
    if kind == "invasive_ventilation" and rng.random() < spec.ecmo:
        t.add("ecmo", a, a + int(rng.integers(0, iv_end - a + 1)))


def _timeline(osfd: int, sc: Scenario, rng: np.random.Generator) -> _Timeline:
    """A follow-up consistent with ``osfd`` (see the module docstring)."""
    spec = sc.timeline
    t = _Timeline()
    if osfd == -1:
        days = np.arange(1, WINDOW + 1)
        w = np.exp(-(days - 1) / spec.death_day_scale_days)
        t.death = int(rng.choice(days, p=w / w.sum()))
        start = 1
        if t.death >= 2 and rng.random() < spec.late_start:
            start = int(rng.integers(2, min(3, t.death) + 1))
        end = t.death
        if end > start and rng.random() < spec.support_before_death_stops:
            end -= 1
        _episode(t, start, end, spec, rng)
        return t
    support_days = WINDOW - osfd
    free = osfd
    if support_days > 0:
        s1 = 1
        if free >= 1 and rng.random() < spec.late_start:
            s1 = 1 + int(rng.integers(1, min(2, free) + 1))
        room = free - (s1 - 1)
        if support_days >= 2 and room >= 1 and rng.random() < spec.two_episodes:
            first = int(rng.integers(1, support_days))
            gap = int(rng.integers(1, min(5, room) + 1))
            second = s1 + first + gap
            episodes = [[s1, s1 + first - 1], [second, second + support_days - first - 1]]
        else:
            episodes = [[s1, s1 + support_days - 1]]
        if episodes[-1][1] == WINDOW:  # still supported on day 28: goes on a while
            episodes[-1][1] += int(rng.geometric(1.0 / spec.support_after_day28_days_mean)) - 1
        for a, b in episodes:
            _episode(t, a, b, spec, rng)
        last = episodes[-1][1]
        if last > WINDOW and rng.random() < spec.late_death_on_support:
            t.death = last  # dies on support after day 28
            t.last_known_alive = last - 1
            return t
    else:
        last = 0
    t.icu_discharge = last + _geometric(rng, spec.icu_days_after_support_mean)
    t.hospital_discharge = t.icu_discharge + _geometric(rng, spec.hospital_days_after_icu_mean)
    lo, hi = sc.follow_up.day28_contact_lag_days
    t.last_known_alive = max(WINDOW, t.hospital_discharge) + int(rng.integers(lo, hi + 1))
    return t


# ----------------------------------------------------------------------------- formatting
def _date(r: dt.date, day: int | None) -> str:
    return "" if day is None else (r + dt.timedelta(days=day - 1)).isoformat()


def _intervals(r: dt.date, ivs: list[list[int | None]]) -> str:
    parts = [f"{_date(r, a)}/{_date(r, b)}" for a, b in sorted(ivs, key=lambda x: (x[0], x[1]))]
    return ";".join(parts)


def _support_column(design: Design, kind: str) -> str:
    for name, f in design.export_contract.fields.items():
        if getattr(f, "organ_support", None) == kind:
            return name
    return f"support_{kind}"


def _status(t: _Timeline, day28_after_cut: bool) -> str:
    """The status the derivation must give (interim_analysis.yaml completeness)."""
    if t.withdrawal_scope == "all_data":
        return "withdrawn_all_data"
    died = t.death is not None and t.death <= WINDOW
    withdrawn = (
        t.withdrawal_scope == "follow_up" and t.withdrawal is not None and t.withdrawal < WINDOW
    )
    if day28_after_cut:  # pending even if dead: early deaths must not weigh more
        return "missing" if withdrawn and not died else "pending"
    if died:
        return "complete"
    if withdrawn:
        return "missing"
    alive28 = (
        (t.last_known_alive is not None and t.last_known_alive >= WINDOW)
        or (t.death is not None and t.death > WINDOW)
        or (t.hospital_discharge is not None and t.hospital_discharge >= WINDOW)
    )
    return "complete" if alive28 else "missing"


# ----------------------------------------------------------------------------- steps 3 to 8
def _true_odds_ratios(sc: Scenario, design: Design, pts: pd.DataFrame) -> np.ndarray:
    """The benefit-oriented OR of each patient's arm (1 for usual care)."""
    ors = sc.true_effects.odds_ratios
    controls = {design.control_of(t).id for t in design.trait_ids}
    return np.array([1.0 if a in controls else ors[a] for a in pts["arm"]])


def _draw_outcomes(
    sc: Scenario, pts: pd.DataFrame, true_or: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Each patient's OSFD from one proportional-odds model (age group, trait, arm)."""
    shift = np.array([sc.usual_care.trait_log_odds.get(t, 0.0) for t in pts["assigned_trait"]])
    u = rng.random(len(pts))
    osfd = np.empty(len(pts), dtype=int)
    base = {g: usual_care_pmf(s) for g, s in sc.usual_care.by_age_group.items()}
    cells: dict[tuple[str, float], list[int]] = {}
    for i, (g, d, lor) in enumerate(zip(pts["age_group"], shift, np.log(true_or), strict=True)):
        cells.setdefault((g, float(d + lor)), []).append(i)
    for (g, log_odds), idx in cells.items():
        osfd[idx] = draw_osfd(shifted_pmf(base[g], log_odds), u[idx])
    return osfd


def _events(
    sc: Scenario,
    design: Design,
    pts: pd.DataFrame,
    timelines: list[_Timeline],
    rng: np.random.Generator,
) -> list[str]:
    """Safety events (set on the timelines) and open-label substances (returned, as text)."""
    substances = {
        o.id: set(o.applies_to_substances)
        for o in design.outcomes.outcomes
        if o.id in ("isth_major_bleeding", "secondary_infection")
    }
    arm_subst = {a.id: {c.substance for c in a.components} for a in design.arms}
    open_label: list[str] = []
    for t, arm, trait in zip(timelines, pts["arm"], pts["assigned_trait"], strict=True):
        horizon = min(WINDOW, t.death) if t.death is not None else WINDOW
        for name, attr in (
            ("isth_major_bleeding", "bleeding"),
            ("secondary_infection", "infection"),
        ):
            rate = getattr(sc.safety, name)
            p = rate.on_substances if arm_subst[arm] & substances[name] else rate.usual
            if rng.random() < p:
                setattr(t, attr, int(rng.integers(1, horizon + 1)))
        others = sorted(
            set().union(*(arm_subst[a.id] for a in design.arms_of(trait))) - arm_subst[arm]
        )
        used = ""
        if others and rng.random() < sc.open_label.rate:
            k = 2 if len(others) > 1 and rng.random() < 0.2 else 1
            used = ";".join(sorted(str(x) for x in rng.choice(others, k, replace=False)))
        open_label.append(used)
    return open_label


def _withdraw(
    sc: Scenario,
    timelines: list[_Timeline],
    limit: np.ndarray,
    open_label: list[str],
    rng: np.random.Generator,
) -> None:
    """Apply the scenario's withdrawals (in place) to patients who qualify for each scope."""
    n = len(timelines)
    after_cut = limit < WINDOW
    taken: set[int] = set()

    def pick(candidates: list[int], k: int, what: str) -> list[int]:
        pool = [i for i in candidates if i not in taken]
        if len(pool) < k:
            raise OutOfRangeError(
                LABEL, "withdrawals", what, f"only {len(pool)} patients qualify for {k}"
            )
        chosen = sorted(int(x) for x in rng.choice(pool, size=k, replace=False))
        taken.update(chosen)
        return chosen

    complete_alive = [
        i
        for i, t in enumerate(timelines)
        if not after_cut[i] and t.death is None and not t.lost and t.hospital_discharge is not None
    ]
    for i in pick([i for i in range(n) if not after_cut[i]], sc.withdrawals.treatment, "treatment"):
        t = timelines[i]
        last = min(10, t.death if t.death is not None else WINDOW)
        t.withdrawal, t.withdrawal_scope = int(rng.integers(1, last + 1)), "treatment"
    # follow-up withdrawn after discharge, before day 28: nothing later is known
    early = [i for i in complete_alive if timelines[i].hospital_discharge < WINDOW - 1]
    for i in pick(early, sc.withdrawals.follow_up_before_day28, "follow_up_before_day28"):
        t = timelines[i]
        w = int(rng.integers(t.hospital_discharge + 1, WINDOW))
        t.withdrawal, t.withdrawal_scope = w, "follow_up"
        t.last_known_alive = None
        t.truncate(w)
    # follow-up withdrawn after day 28: the day-28 outcome is complete
    late = [
        i
        for i in complete_alive
        if timelines[i].hospital_discharge <= WINDOW and limit[i] > WINDOW + 1
    ]
    for i in pick(late, sc.withdrawals.follow_up_after_day28, "follow_up_after_day28"):
        t = timelines[i]
        w = int(rng.integers(WINDOW + 1, min(WINDOW + 10, int(limit[i])) + 1))
        t.withdrawal, t.withdrawal_scope = w, "follow_up"
        t.last_known_alive = None
        t.truncate(w)
    # consent to any use of the data withdrawn: only identity and randomisation remain
    for i in pick(list(range(n)), sc.withdrawals.all_data, "all_data"):
        w = int(rng.integers(1, int(limit[i]) + 1))
        timelines[i] = _Timeline(withdrawal=w, withdrawal_scope="all_data")
        open_label[i] = ""


def _rows(
    design: Design, pts: pd.DataFrame, timelines: list[_Timeline], open_label: list[str]
) -> pd.DataFrame:
    """The export's rows as text, in the contract's column order."""
    out: dict[str, list[str]] = {name: [] for name in design.export_contract.fields}
    support_cols = {k: _support_column(design, k) for k in SUPPORT_TYPES}
    for i, t in enumerate(timelines):
        r: dt.date = pts.at[i, "randomisation_date"]
        w = pts.at[i, "weight_kg"]
        values = {
            "patient_id": pts.at[i, "patient_id"],
            "site_id": pts.at[i, "site_id"],
            "country": pts.at[i, "country"],
            "randomisation_date": r.isoformat(),
            "age_group": pts.at[i, "age_group"],
            "weight_kg": "" if pd.isna(w) else f"{float(w):.1f}",
            "positive_traits": pts.at[i, "positive_traits"],
            "assigned_trait": pts.at[i, "assigned_trait"],
            "arm": pts.at[i, "arm"],
            "death_date": _date(r, t.death),
            "icu_discharge_date": _date(r, t.icu_discharge),
            "hospital_discharge_date": _date(r, t.hospital_discharge),
            "last_known_alive_date": _date(r, t.last_known_alive),
            "withdrawal_date": _date(r, t.withdrawal),
            "withdrawal_scope": t.withdrawal_scope or "",
            "isth_major_bleeding_date": _date(r, t.bleeding),
            "secondary_infection_date": _date(r, t.infection),
            "open_label_substances": open_label[i],
        }
        for name, fld in design.export_contract.fields.items():
            if fld.severity_of is not None:  # baseline: kept whatever the withdrawal
                values[name] = pts.at[i, name]
        for kind, col in support_cols.items():
            values[col] = _intervals(r, t.support[kind])
        for name in out:
            out[name].append(values.get(name, ""))
    return pd.DataFrame(out, dtype=object)


def _inject(
    sc: Scenario,
    design: Design,
    pts: pd.DataFrame,
    timelines: list[_Timeline],
    patients: pd.DataFrame,
    truth: pd.DataFrame,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Break one complete, not withdrawn row per kind of ``bad_rows``; list it in the truth."""
    clean = [
        i
        for i in range(len(pts))
        if truth.at[i, "expected_status"] == "complete" and not truth.at[i, "withdrawal_scope"]
    ]
    for kind in sc.bad_rows.kinds:
        if kind == "discharge_before_randomisation":
            pool = [i for i in clean if timelines[i].hospital_discharge is not None]
        elif kind == "malformed_interval":
            pool = [i for i in clean if any(timelines[i].support.values())]
        else:
            pool = list(clean)
        if not pool:
            raise OutOfRangeError(LABEL, "bad_rows", kind, "no patient qualifies")
        i = int(rng.choice(pool))
        clean.remove(i)
        fld = BAD_ROW_FIELDS[kind]
        if kind == "unknown_arm":
            patients.at[i, "arm"] = UNKNOWN_ARM
        elif kind == "discharge_before_randomisation":
            r = pts.at[i, "randomisation_date"]
            patients.at[i, fld] = (r - dt.timedelta(days=2)).isoformat()
        elif kind == "malformed_interval":
            support = next(k for k in SUPPORT_TYPES if timelines[i].support[k])
            fld = _support_column(design, support)
            first, *rest = patients.at[i, fld].split(";")
            a, b = first.split("/")
            patients.at[i, fld] = ";".join([f"{a} to {b}", *rest])
        if kind == "duplicate_patient_id":  # a second copy of the row, at the end
            patients = pd.concat([patients, patients.iloc[[i]]], ignore_index=True)
            dup = truth.iloc[[i]].copy()
            dup["expected_status"] = "invalid"
            dup["injected_problem"] = kind
            dup["expected_field"] = fld
            truth = pd.concat([truth, dup], ignore_index=True)
        else:
            truth.at[i, "expected_status"] = "invalid"
            truth.at[i, "injected_problem"] = kind
            truth.at[i, "expected_field"] = fld
    return patients, truth


# ----------------------------------------------------------------------------- the export
@dataclass(frozen=True)
class SyntheticExport:
    """A synthetic export: its metadata, its rows as text and the truth behind them.

    Attributes
    ----------
    meta
        The metadata of ``export.yaml`` (``trial_id``, ``export_id``, ``data_cut``,
        ``created_by``), as text.
    patients
        The rows of ``patients.csv``: the contract's columns in its order, every value a string
        (``""`` where empty).
    truth
        One row per export row, in the same order: ``line`` (1-based CSV line, header = 1),
        ``row`` (0-based data row), ``patient_id``, ``assigned_trait``, ``arm``, ``age_group``,
        ``randomisation_date``, ``era``, ``true_or`` (benefit-oriented, 1 for usual care),
        ``true_log_or``, ``osfd_true`` (-1..28, the full follow-up), ``mortality28_true``,
        ``isth_major_bleeding_true``, ``secondary_infection_true``, ``expected_status``,
        ``expected_osfd`` (the OSFD the derivation must give; empty unless complete),
        ``withdrawal_scope``, ``lost_to_follow_up``, ``injected_problem``, ``expected_field``.
    n_screened
        Patients screened (drawn from the cohort generator).
    seed
        The seed used.
    """

    meta: dict[str, str]
    patients: pd.DataFrame
    truth: pd.DataFrame
    n_screened: int = 0
    seed: int = 0

    def counts(self) -> dict[str, Any]:
        """Rows, randomised patients, and rows by expected status."""
        status = self.truth["expected_status"].value_counts()
        return {
            "rows": len(self.patients),
            "screened": self.n_screened,
            "randomised": int(self.truth["patient_id"].nunique()),
            "by_status": {s: int(status.get(s, 0)) for s in STATUSES},
            "bad_rows": int((self.truth["injected_problem"] != "").sum()),
        }


def make_synthetic_export(
    design: Design,
    scenario: Mapping[str, Any] | None = None,
    seed: int | None = None,
    *,
    n_screened: int | None = None,
) -> SyntheticExport:
    """Build the synthetic export of a scenario (see the module docstring).

    Parameters
    ----------
    design
        The trial design.
    scenario
        A scenario mapping (:func:`load_scenario`); default the design's :data:`SCENARIO_FILE`.
    seed
        Overrides the scenario's seed.
    n_screened
        Overrides the scenario's number of screened patients (small values for tests).

    Returns
    -------
    SyntheticExport

    Raises
    ------
    DesignSchemaError, UnknownReferenceError, OutOfRangeError
        The scenario is invalid (:func:`parse_scenario`), or too few patients qualify for the
        requested withdrawals or bad rows.
    """
    raw = dict(load_scenario(design) if scenario is None else scenario)
    if seed is not None:
        raw["seed"] = seed
    if n_screened is not None:
        raw["n_screened"] = n_screened
    sc = parse_scenario(raw, design)
    streams = np.random.SeedSequence(sc.seed).spawn(8)
    rng_cohort, rng_accrual, rng_outcome, rng_timeline, rng_events, rng_withdraw, rng_bad = (
        np.random.default_rng(s) for s in streams[:7]
    )
    cut = sc.export.data_cut
    start = design.trial.study_start

    # 1. screening: cohort, dates and sites
    cohort = generate_cohort(design, sc.n_screened, rng_cohort)
    dates, site_idx = _accrual(sc, design, sc.n_screened, rng_accrual)
    sites = sc.accrual.sites
    cohort["site_id"] = pd.array([sites[i].id for i in site_idx], dtype="string")

    # 2. randomisation
    pts = _randomise(sc, design, cohort)
    n = len(pts)
    if n == 0:
        raise OutOfRangeError(LABEL, None, "n_screened", "no patient was randomised")
    rows = pts["cohort_row"].to_numpy()
    pts["site_id"] = [sites[i].id for i in site_idx[rows]]
    pts["country"] = [sites[i].country for i in site_idx[rows]]
    pts["randomisation_date"] = [dates[i] for i in rows]
    pts["weight_kg"] = cohort["weight_kg"].to_numpy()[rows]

    # 3.-4. outcome, timelines, safety events and open-label use
    true_or = _true_odds_ratios(sc, design, pts)
    osfd = _draw_outcomes(sc, pts, true_or, rng_outcome)
    timelines = [_timeline(int(y), sc, rng_timeline) for y in osfd]
    open_label = _events(sc, design, pts, timelines, rng_events)
    truth_bleed = np.array([t.bleeding is not None for t in timelines], dtype=int)
    truth_infect = np.array([t.infection is not None for t in timelines], dtype=int)

    # 5.-6. the data cut, losses to follow-up and withdrawals
    limit = np.array([(cut - r).days + 1 for r in pts["randomisation_date"]])
    after_cut = limit < WINDOW  # day 28 after the data cut: pending
    for i, t in enumerate(timelines):
        if (
            not after_cut[i]
            and t.death is None
            and t.hospital_discharge is not None
            and t.hospital_discharge < WINDOW
            and rng_withdraw.random() < sc.follow_up.lost_after_discharge
        ):
            t.lost = True
            t.last_known_alive = t.hospital_discharge
        t.truncate(int(limit[i]))
    _withdraw(sc, timelines, limit, open_label, rng_withdraw)

    # 7. the rows as text, and the truth
    patients = _rows(design, pts, timelines, open_label)
    status = [_status(t, bool(a)) for t, a in zip(timelines, after_cut, strict=True)]
    era_days = design.interim_analysis.eras.length_days
    truth = pd.DataFrame(
        {
            "patient_id": pts["patient_id"],
            "assigned_trait": pts["assigned_trait"],
            "arm": pts["arm"],
            "age_group": pts["age_group"],
            "randomisation_date": [r.isoformat() for r in pts["randomisation_date"]],
            "era": [(r - start).days // era_days for r in pts["randomisation_date"]],
            "true_or": true_or,
            "true_log_or": np.log(true_or),
            "osfd_true": osfd,
            "mortality28_true": (osfd == -1).astype(int),
            "isth_major_bleeding_true": truth_bleed,
            "secondary_infection_true": truth_infect,
            "expected_status": status,
            "withdrawal_scope": [t.withdrawal_scope or "" for t in timelines],
            "lost_to_follow_up": [t.lost for t in timelines],
            "injected_problem": "",
            "expected_field": "",
        }
    )

    # 8. deliberately bad rows
    patients, truth = _inject(sc, design, pts, timelines, patients, truth, rng_bad)
    complete = truth["expected_status"] == "complete"
    truth["expected_osfd"] = pd.array(
        [int(y) if c else pd.NA for y, c in zip(truth["osfd_true"], complete, strict=True)],
        dtype="Int64",
    )
    truth.insert(0, "row", np.arange(len(truth)))
    truth.insert(0, "line", np.arange(len(truth)) + 2)
    meta = {
        "trial_id": design.trial.registry_id,
        "export_id": sc.export.export_id,
        "data_cut": cut.isoformat(),
        "created_by": sc.export.created_by,
    }
    return SyntheticExport(meta, patients, truth, n_screened=sc.n_screened, seed=sc.seed)


# ----------------------------------------------------------------------------- writing
def true_odds_ratios(design: Design, scenario: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The scenario's true odds ratio per experimental arm: columns ``arm, trait, true_or``.

    Benefit-oriented (OR > 1 = benefit) and the same for OSFD and 28-day mortality (one
    proportional-odds model); for the forest plot of the worked interim analysis.
    """
    sc = parse_scenario(load_scenario(design) if scenario is None else scenario, design)
    arms = design.experimental_arms()
    return pd.DataFrame(
        {
            "arm": [a.id for a in arms],
            "trait": [a.trait for a in arms],
            "true_or": [float(sc.true_effects.odds_ratios[a.id]) for a in arms],
        }
    )


def patients_csv(export: SyntheticExport) -> str:
    """``patients.csv`` as text (LF line ends; the bytes depend only on the rows)."""
    return export.patients.to_csv(index=False, lineterminator="\n")


def truth_csv(export: SyntheticExport) -> str:
    """``truth.csv`` as text."""
    return export.truth.to_csv(index=False, lineterminator="\n", float_format="%.6g")


def export_yaml(export: SyntheticExport, scenario_label: str = LABEL) -> str:
    """``export.yaml`` as text: a comment saying it is synthetic, then the metadata."""
    head = (
        f"# SYNTHETIC data export made by palette_core.exports.synthetic from {scenario_label}\n"
        f"# (seed {export.seed}). Not trial data: every patient is invented, the true effects\n"
        "# are in truth.csv, and some rows are broken on purpose (truth.csv, injected_problem).\n"
    )
    return head + yaml.safe_dump(dict(export.meta), sort_keys=False, allow_unicode=True)


def write_synthetic_export(
    out_dir: str | Path | None = None,
    design: Design | None = None,
    scenario: Mapping[str, Any] | str | Path | None = None,
    seed: int | None = None,
    *,
    n_screened: int | None = None,
) -> Path:
    """Build the synthetic export and write it to ``out_dir``.

    Writes ``export.yaml``, ``patients.csv`` (the export of the contract), ``truth.csv`` (what
    an analysis must find) and ``manifest.json`` (:func:`palette_core.provenance.build_manifest`
    with the scenario's SHA-256, the files' SHA-256 and the counts).

    Parameters
    ----------
    out_dir
        Where to write; default the design's :data:`EXPORT_FOLDER`.
    design
        The trial design; default :func:`~palette_core.design.loader.load_design`.
    scenario
        A scenario mapping, or the path of a scenario file; default the design's
        :data:`SCENARIO_FILE`.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    design = load_design() if design is None else design
    label = LABEL
    scenario_sha = None
    if scenario is None or isinstance(scenario, str | Path):
        path = data_file(design if scenario is None else scenario, SCENARIO_FILE)
        raw = load_scenario(path)
        scenario_sha = file_sha256(path)
        data = design.data_root.resolve()
        try:  # named as the data folder names it, e.g. data/scenarios/interim_example.yaml
            label = f"{data.name}/{path.resolve().relative_to(data).as_posix()}"
        except ValueError:
            label = str(path)
    else:
        raw = dict(scenario)
        canonical = json.dumps(raw, sort_keys=True, default=str).encode("utf-8")
        scenario_sha = hashlib.sha256(canonical).hexdigest()
    export = make_synthetic_export(design, raw, seed, n_screened=n_screened)
    out = data_file(design if out_dir is None else out_dir, EXPORT_FOLDER)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "export.yaml": export_yaml(export, label),
        "patients.csv": patients_csv(export),
        "truth.csv": truth_csv(export),
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8", newline="")
    manifest = build_manifest(
        design,
        seed=export.seed,
        what="synthetic data export (not trial data)",
        scenario=label,
        scenario_sha256=scenario_sha,
        counts=export.counts(),
        files={name: file_sha256(out / name) for name in files},
    )
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return out


def rebuild_synthetic_export(design: Design | None = None) -> Path:
    """Regenerate the design's :data:`EXPORT_FOLDER` from its :data:`SCENARIO_FILE`."""
    return write_synthetic_export(design=design)


__all__ = [
    "EXPORT_FOLDER",
    "LABEL",
    "SCENARIO_FILE",
    "STATUSES",
    "true_odds_ratios",
    "Scenario",
    "SyntheticExport",
    "draw_osfd",
    "export_yaml",
    "load_scenario",
    "make_synthetic_export",
    "parse_scenario",
    "patients_csv",
    "rebuild_synthetic_export",
    "shifted_pmf",
    "truth_csv",
    "usual_care_pmf",
    "write_synthetic_export",
]
