"""The analysis plan's choices: priors, decision rules, looks and the interim analysis's data.

``proposed/priors.yaml`` (the joint model's priors and their sensitivity scales),
``proposed/decisions.yaml`` (graduation, futility, harm, the cap per arm, the calibration
target), ``proposed/interims.yaml`` (when the platform looks) and
``proposed/interim_analysis.yaml`` (follow-up window, completeness, withdrawal, calendar eras,
the sensitivity analyses). All *proposed*: the registry makes none of these choices.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, Field

from palette_core.design.common import Frozen, Proposed
from palette_core.design.outcomes import OutcomesFile
from palette_core.design.records import ExportContractFile
from palette_core.errors import (
    ConflictingArgumentsError,
    DuplicateIdError,
    OutOfRangeError,
    UnknownReferenceError,
)


# ----------------------------------------------------------------------------- priors
class NormalPrior(Frozen):
    distribution: Literal["normal"]
    loc: float
    scale: float
    sensitivity_scales: tuple[float, ...] = ()
    rationale: str


class HalfNormalPrior(Frozen):
    distribution: Literal["half_normal"]
    scale: float
    sensitivity_scales: tuple[float, ...] = ()
    sensitivity_no_borrowing: bool = False
    rationale: str


class DirichletPrior(Frozen):
    distribution: Literal["induced_dirichlet"]
    concentration: float
    rationale: str


class ExnexPrior(Frozen):
    distribution: Literal["exnex"]
    exchangeability: float = Field(gt=0, lt=1)
    rationale: str


class PriorsFile(Frozen):
    status: Proposed
    arm_log_or: NormalPrior
    shared_effect_mean: NormalPrior
    between_trait_sd: HalfNormalPrior
    child_deviation_sd: HalfNormalPrior
    era_step_sd: HalfNormalPrior
    trait_shift: NormalPrior
    cutpoints: DirichletPrior
    exnex: ExnexPrior


def check_priors(priors: PriorsFile) -> None:
    """proposed/priors.yaml: every scale (and sensitivity scale) is positive."""
    f = "proposed/priors.yaml"
    for name in type(priors).model_fields:
        prior = getattr(priors, name)
        if not isinstance(prior, BaseModel):
            continue
        scale = getattr(prior, "scale", getattr(prior, "concentration", None))
        if scale is not None and not scale > 0:
            raise OutOfRangeError(f, name, "scale", f"must be > 0, got {scale}")
        for sc in getattr(prior, "sensitivity_scales", ()):
            if not sc > 0:
                raise OutOfRangeError(f, name, "sensitivity_scales", f"must be > 0, got {sc}")


# ----------------------------------------------------------------------------- decisions
class BenefitRule(Frozen):
    outcome: str
    quantity: Literal["pr_or_greater_than"]
    or_reference: float
    threshold: float
    min_complete: int
    rationale: str


class HarmRule(Frozen):
    outcomes: tuple[str, ...] = Field(min_length=1)
    quantity: Literal["pr_or_less_than"]
    or_reference: float
    threshold: float
    min_complete: int
    rationale: str


class Cap_(Frozen):
    value: int
    rationale: str


class Calibration(Frozen):
    max_false_graduation_per_arm: float
    error_control: Literal["none_formal"]
    #: the stored result whose run calibrated the thresholds (a folder under the data root,
    #: holding its manifest.json); absent while the thresholds are not calibrated
    result: str | None = None
    rationale: str


class DecisionsFile(Frozen):
    status: Proposed
    graduation: BenefitRule
    futility: BenefitRule
    harm: HarmRule
    cap_per_experimental_arm: Cap_
    calibration: Calibration


def check_decisions(dec: DecisionsFile, outcomes: OutcomesFile) -> None:
    """proposed/decisions.yaml: known outcomes, probabilities in (0, 1), ordered rules, a cap
    above every minimum-information rule."""
    f = "proposed/decisions.yaml"
    outcome_ids = {o.id for o in outcomes.outcomes}
    for name in ("graduation", "futility", "harm"):
        rule = getattr(dec, name)
        for oid in rule.outcomes if name == "harm" else (rule.outcome,):
            if oid not in outcome_ids:
                raise UnknownReferenceError(
                    f, name, "outcome", f"outcome {oid!r} is not in proposed/outcomes.yaml"
                )
        if not 0 < rule.threshold < 1:
            raise OutOfRangeError(
                f,
                name,
                "threshold",
                f"a posterior probability threshold must be in (0, 1), got {rule.threshold}",
            )
        if not rule.or_reference > 0:
            raise OutOfRangeError(
                f, name, "or_reference", f"an odds ratio must be > 0, got {rule.or_reference}"
            )
        if rule.min_complete < 1:
            raise OutOfRangeError(f, name, "min_complete", f"must be >= 1, got {rule.min_complete}")
    if dec.futility.or_reference < dec.graduation.or_reference:
        raise ConflictingArgumentsError(
            f,
            "futility",
            "or_reference",
            "the futility reference OR must not be below the graduation reference OR",
        )
    if dec.futility.threshold >= dec.graduation.threshold:
        raise ConflictingArgumentsError(
            f,
            "futility",
            "threshold",
            "futility threshold must be below the graduation threshold",
        )
    cap = dec.cap_per_experimental_arm.value
    if cap < max(dec.graduation.min_complete, dec.futility.min_complete, dec.harm.min_complete):
        raise ConflictingArgumentsError(
            f,
            "cap_per_experimental_arm",
            "value",
            f"cap {cap} is below a minimum-information rule",
        )
    if not 0 < dec.calibration.max_false_graduation_per_arm < 1:
        raise OutOfRangeError(f, "calibration", "max_false_graduation_per_arm", "must be in (0, 1)")
    result = dec.calibration.result
    if result is not None and (
        PurePosixPath(result).is_absolute() or ".." in PurePosixPath(result).parts
    ):
        raise OutOfRangeError(
            f, "calibration", "result", f"must be a folder under the data root, not {result!r}"
        )


# ----------------------------------------------------------------------------- looks
class InterimsFile(Frozen):
    status: Proposed
    look_every_complete: int
    scope: Literal["platform_wide"]
    interim_population: Literal["complete_day28"]
    final_missing_data: Literal["missing_at_random"]
    final_sensitivity: Literal["tipping_point"]
    rationale: str


def check_interims(interims: InterimsFile) -> None:
    """proposed/interims.yaml: a look every one or more complete outcomes."""
    if interims.look_every_complete < 1:
        raise OutOfRangeError("proposed/interims.yaml", None, "look_every_complete", "must be >= 1")


# ----------------------------------------------------------------------------- interim analysis
class FollowUp(Frozen):
    window_days: int
    day_one: Literal["randomisation_date"]
    rationale: str


class Completeness(Frozen):
    rule: Literal["vital_status_at_day_28"]
    rationale: str


class WithdrawalHandling(Frozen):
    treatment: Literal["analyse"]
    follow_up: Literal["analyse_if_complete"]
    all_data: Literal["exclude_and_count"]
    rationale: str


class ErasSpec(Frozen):
    length_days: int
    origin: Literal["study_start"]
    rationale: str


class ConcurrentControls(Frozen):
    open_eras: Literal["from_data"]
    rationale: str


SensitivityAnalysis = Literal[
    "no_borrowing", "prior_scale", "per_trait_eras", "concurrent_controls", "exnex"
]


class SensitivitySpec(Frozen):
    concurrent_controls: ConcurrentControls
    analyses: tuple[SensitivityAnalysis, ...] = Field(min_length=1)
    rationale: str


class EscalationStep(Frozen):
    """One step of the convergence escalation, applied on top of the steps before it."""

    num_warmup_factor: int | None = None
    target_accept_prob: float | None = None
    rationale: str


class ConvergenceSpec(Frozen):
    escalation: tuple[EscalationStep, ...]
    rationale: str


class MonteCarloSpec(Frozen):
    mcse_margin: float
    max_extra_runs: int
    rationale: str


class InterimAnalysisFile(Frozen):
    status: Proposed
    follow_up: FollowUp
    completeness: Completeness
    withdrawal: WithdrawalHandling
    eras: ErasSpec
    sensitivity: SensitivitySpec
    convergence: ConvergenceSpec
    monte_carlo: MonteCarloSpec


def check_interim_analysis(
    ia: InterimAnalysisFile, outcomes: OutcomesFile, contract: ExportContractFile
) -> None:
    """proposed/interim_analysis.yaml: follow-up, eras and withdrawal match the other files."""
    f = "proposed/interim_analysis.yaml"
    window = ia.follow_up.window_days
    if window < 1:
        raise OutOfRangeError(f, "follow_up", "window_days", f"must be >= 1, got {window}")
    for o in outcomes.outcomes:
        if o.type == "ordinal" and o.organ_support and o.support_range is not None:
            if o.support_range[1] != window:
                raise ConflictingArgumentsError(
                    f,
                    "follow_up",
                    "window_days",
                    f"{window} days of follow-up, but outcome {o.id!r} of "
                    f"proposed/outcomes.yaml counts up to {o.support_range[1]} free days",
                )
    if ia.eras.length_days < 1:
        raise OutOfRangeError(f, "eras", "length_days", f"must be >= 1, got {ia.eras.length_days}")
    sens = ia.sensitivity
    repeated = sorted(a for a, n in Counter(sens.analyses).items() if n > 1)
    if repeated:
        raise DuplicateIdError(f, "sensitivity", "analyses", f"{repeated} listed twice")
    for i, step in enumerate(ia.convergence.escalation):
        entry = f"convergence.escalation[{i}]"
        if step.num_warmup_factor is None and step.target_accept_prob is None:
            raise ConflictingArgumentsError(
                f, entry, None, "a step must set num_warmup_factor or target_accept_prob"
            )
        if step.num_warmup_factor is not None and step.num_warmup_factor < 2:
            raise OutOfRangeError(
                f, entry, "num_warmup_factor", f"must be >= 2, got {step.num_warmup_factor}"
            )
        if step.target_accept_prob is not None and not 0 < step.target_accept_prob < 1:
            raise OutOfRangeError(
                f, entry, "target_accept_prob", f"must be in (0, 1), got {step.target_accept_prob}"
            )
    mc = ia.monte_carlo
    if not mc.mcse_margin > 0:
        raise OutOfRangeError(f, "monte_carlo", "mcse_margin", f"must be > 0, got {mc.mcse_margin}")
    if mc.max_extra_runs < 0:
        raise OutOfRangeError(
            f, "monte_carlo", "max_extra_runs", f"must be >= 0, got {mc.max_extra_runs}"
        )
    scope = contract.fields["withdrawal_scope"].categories or ()
    handled = [k for k in type(ia.withdrawal).model_fields if k != "rationale"]
    if sorted(scope) != sorted(handled):
        raise ConflictingArgumentsError(
            "export_contract.yaml",
            "withdrawal_scope",
            "categories",
            f"{list(scope)} differ from the withdrawal scopes {handled} handled in {f}",
        )


__all__ = [
    "BenefitRule",
    "Calibration",
    "Cap_",
    "Completeness",
    "ConcurrentControls",
    "ConvergenceSpec",
    "DecisionsFile",
    "DirichletPrior",
    "ErasSpec",
    "EscalationStep",
    "ExnexPrior",
    "FollowUp",
    "HalfNormalPrior",
    "HarmRule",
    "InterimAnalysisFile",
    "InterimsFile",
    "MonteCarloSpec",
    "NormalPrior",
    "PriorsFile",
    "SensitivityAnalysis",
    "SensitivitySpec",
    "WithdrawalHandling",
    "check_decisions",
    "check_interim_analysis",
    "check_interims",
    "check_priors",
]
