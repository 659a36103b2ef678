"""The form of every design file, as frozen pydantic models.

These models check types, required fields and unknown fields only (``extra="forbid"``, so a
misspelt field is an error, not an ignored key). Relations between files (does this arm's
trait exist? is this threshold plausible for its biomarker?) are checked afterwards by
:mod:`palette_core.design.loader`, which raises the typed errors of :mod:`palette_core.errors`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


Route = Literal["intravenous", "subcutaneous", "intramuscular", "enteral", "extracorporeal"]
Op = Literal["<", "<=", ">", ">="]
AgeGroupId = str


# ----------------------------------------------------------------------------- units
class Unit(Frozen):
    dimension: str
    factor: float
    aliases: tuple[str, ...] = ()


class UnitsFile(Frozen):
    units: dict[str, Unit]


# ----------------------------------------------------------------------------- traits
class Comparison(Frozen):
    """``biomarker op threshold`` in ``unit``, e.g. INR >= 1.40."""

    biomarker: str
    op: Op
    threshold: float
    unit: str


class HookRule(Frozen):
    """Positive when the named hook (an algorithm or a site-recorded class) gives a listed class."""

    hook: str
    positive: tuple[str, ...] = Field(min_length=1)


class AllOf(Frozen):
    all_of: tuple[Condition, ...] = Field(alias="all", min_length=2)


class AnyOf(Frozen):
    any_of: tuple[Condition, ...] = Field(alias="any", min_length=2)


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, tag in (
            ("biomarker", "comparison"),
            ("hook", "hook"),
            ("all", "all"),
            ("any", "any"),
        ):
            if key in value:
                return tag
        return None
    if isinstance(value, Comparison | HookRule | AllOf | AnyOf):
        return {Comparison: "comparison", HookRule: "hook", AllOf: "all", AnyOf: "any"}[type(value)]
    return None


Condition = Annotated[
    Annotated[Comparison, Tag("comparison")]
    | Annotated[HookRule, Tag("hook")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")],
    Discriminator(
        _condition_tag,
        custom_error_type="condition",
        custom_error_message="a condition needs one of the keys biomarker, hook, all or any",
    ),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()


class Biomarker(Frozen):
    label: str
    unit: str
    plausible: tuple[float, float]


class Hook(Frozen):
    label: str
    classes: tuple[str, ...] = Field(min_length=2)
    kind: Literal["algorithm_or_input", "input", "algorithm"]
    input_field: str | None = None
    note: str


class AlternativeReading(Frozen):
    id: str
    description: str
    rules: dict[AgeGroupId, Condition]


class Trait(Frozen):
    id: str
    name: str
    short_name: str | None = None
    registry_names: tuple[str, ...] = Field(min_length=1)
    age_groups: tuple[AgeGroupId, ...] = Field(min_length=1)
    registry_text: str
    rules: dict[AgeGroupId, Condition]
    alternative_readings: tuple[AlternativeReading, ...] = ()
    finding: str | None = None


class TraitsFile(Frozen):
    biomarkers: dict[str, Biomarker]
    hooks: dict[str, Hook]
    traits: tuple[Trait, ...] = Field(min_length=1)


# ----------------------------------------------------------------------------- doses and arms
class Quantity(Frozen):
    amount: float
    unit: str


class Cap(Quantity):
    finding: str


class BsaRule(Frozen):
    variable: Literal["bsa_m2"]
    op: Op
    threshold: float


Frequency = Literal[
    "every_n_hours", "once_daily", "every_other_day", "continuous_infusion", "daily"
]


class Dose(Frozen):
    """One dose rule, a structured transcription of registry text (not a prescription)."""

    amount: float
    amount_max: float | None = None
    unit: str
    basis: Literal["fixed", "per_kg", "per_m2"]
    per: Literal["administration", "day", "hour"]
    frequency: Frequency
    every_hours: int | None = None
    duration_days: float | None = None
    stop_on: tuple[Literal["icu_discharge", "hospital_discharge"], ...] = ()
    condition: str | None = None
    when: BsaRule | None = None
    max_amount: Cap | None = None
    equivalent: Quantity | None = None


def _dose_list(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


DoseRules = Annotated[tuple[Dose, ...], BeforeValidator(_dose_list)]


class Procedure(Frozen):
    max_hours_per_day: float
    max_consecutive_days: int


class Component(Frozen):
    substance: str
    route: Route | None
    adult: DoseRules | None = None
    child: Literal["same_as_adult"] | DoseRules | None = None
    procedure: Procedure | None = None


class ArmRegistry(Frozen):
    label: str
    intervention: str
    text: str


class Availability(Frozen):
    initial_state: Literal["open", "planned"]
    opens_when: str | None = None


class Arm(Frozen):
    id: str
    trait: str
    role: Literal["control", "experimental"]
    name: str
    short_name: str | None = None
    registry: ArmRegistry
    availability: Availability
    components: tuple[Component, ...] = ()
    age_groups: tuple[AgeGroupId, ...] | None = None


class ArmsFile(Frozen):
    arms: tuple[Arm, ...] = Field(min_length=1)


class Substance(Frozen):
    name: str
    kind: Literal["drug", "device", "blood_product"]
    drug_class: str
    licensed_routes: tuple[Route, ...] = Field(min_length=1)
    paediatric_dosing: Literal["weight_based", "fixed", "not_applicable"]
    typical_daily_dose: dict[str, float | str] | None = None
    reference: str


class SubstancesFile(Frozen):
    substances: dict[str, Substance]


class SharedEffectGroup(Frozen):
    id: str
    name: str
    arms: tuple[str, ...]
    registry_evidence: str


class SharedEffectGroupsFile(Frozen):
    shared_effect_groups: tuple[SharedEffectGroup, ...] = ()


# ----------------------------------------------------------------------------- eligibility
class Criterion(Frozen):
    id: str
    registry_text: str
    reading: str | None = None
    finding: str | None = None
    field: str | None = None
    field_value_required: bool | None = None


class MinimumAgeField(Frozen):
    value: float
    unit: str
    registry_text: str
    finding: str | None = None


class EligibilityFields(Frozen):
    minimum_age: MinimumAgeField
    sex: Literal["ALL", "FEMALE", "MALE"]
    healthy_volunteers: bool


class EligibilityFile(Frozen):
    inclusion: tuple[Criterion, ...] = Field(min_length=1)
    exclusion: tuple[Criterion, ...] = ()
    fields: EligibilityFields


# ----------------------------------------------------------------------------- findings
class Evidence(Frozen):
    line: int
    quote: str


class DoseBlock(Frozen):
    arm: str
    age_groups: tuple[AgeGroupId, ...] = Field(min_length=1)


class Finding(Frozen):
    id: str = Field(pattern=r"^RF-\d{2}$")
    title: str
    category: Literal[
        "inconsistency", "implausibility", "ambiguity", "omission", "spelling", "note"
    ]
    severity: Literal["critical", "major", "minor", "info"]
    evidence: tuple[Evidence, ...] = Field(min_length=1)
    description: str
    adopted_reading: str
    reading_status: Literal["proposed", "transcribed_as_written"]
    blocks_dose: tuple[DoseBlock, ...] = ()
    signals: tuple[str, ...] = ()


class FindingsFile(Frozen):
    findings: tuple[Finding, ...]


# ----------------------------------------------------------------------------- trial
class ArmsPerTrait(Frozen):
    experimental_min: int
    experimental_max: int
    registry_text: str


class TrialFile(Frozen):
    registry_file: str
    registry_id: str
    org_study_id: str
    title: str
    acronym: str
    last_updated: dt.date
    recruitment_status: str
    phase: str
    enrollment: int
    study_start: dt.date
    study_completion: dt.date
    allocation: str
    intervention_model: str
    masking: str
    primary_purpose: str
    condition: str
    sponsor: str
    contacts: tuple[str, ...]
    arms_per_trait: ArmsPerTrait


# ----------------------------------------------------------------------------- patient record
class PatientField(Frozen):
    """One field of the patient record contract (patient_record.yaml)."""

    kind: Literal["float", "int", "bool", "category", "str"]
    unit: str | None = None
    range: tuple[float, float] | None = None
    categories: tuple[str, ...] | None = None
    required: bool = False
    group: Literal[
        "identity",
        "demographics",
        "sepsis",
        "sofa",
        "phoenix",
        "biomarkers",
        "seymour",
        "inclusion",
        "exclusion",
    ]
    description: str


class PatientRecordFile(Frozen):
    fields: dict[str, PatientField]


# ----------------------------------------------------------------------------- proposed
Proposed = Literal["proposed"]


class Bound(Frozen):
    value: float
    inclusive: bool
    status: Literal["registry", "proposed"]
    finding: str | None = None


class AgeGroup(Frozen):
    id: str
    label: str
    min_corrected_gestational_age_weeks: Bound | None = None
    min_age_years: Bound | None = None
    max_age_years: Bound | None = None
    sepsis_definition: Literal["phoenix", "sepsis3"]
    rationale: str


class StrataFile(Frozen):
    status: Proposed
    age_groups: tuple[AgeGroup, ...] = Field(min_length=1)


class Outcome(Frozen):
    id: str
    label: str
    role: Literal["primary", "key_secondary", "safety"]
    type: Literal["ordinal", "binary"]
    support_range: tuple[int, int] | None = None
    death_value: int | None = None
    benefit_direction: Literal["higher", "lower"]
    organ_support: tuple[str, ...] = ()
    applies_to_substances: tuple[str, ...] = ()
    rationale: str


class OrOrientation(Frozen):
    benefit_is: Literal["greater_than_one"]
    rationale: str


class OutcomesFile(Frozen):
    status: Proposed
    outcomes: tuple[Outcome, ...] = Field(min_length=1)
    odds_ratio_orientation: OrOrientation


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
    rationale: str


class DecisionsFile(Frozen):
    status: Proposed
    graduation: BenefitRule
    futility: BenefitRule
    harm: HarmRule
    cap_per_experimental_arm: Cap_
    calibration: Calibration


class InterimsFile(Frozen):
    status: Proposed
    look_every_complete: int
    scope: Literal["platform_wide"]
    interim_population: Literal["complete_day28"]
    final_missing_data: Literal["missing_at_random"]
    final_sensitivity: Literal["tipping_point"]
    rationale: str


class AllocationFile(Frozen):
    status: Proposed
    burn_in_min_complete_per_arm: int
    rar_min_open_experimental: int
    rar_quantity: Literal["pr_best"]
    damping_power: float
    floor_per_open_arm: float
    control_share: Literal["max_equal_or_largest"]
    rationale: str


class RandomPolicy(Frozen):
    kind: Literal["random_weighted"]
    weights: dict[str, float]
    rationale: str


class PriorityPolicy(Frozen):
    kind: Literal["priority"]
    order: tuple[str, ...]
    rationale: str


class IncompatiblePair(Frozen):
    traits: tuple[str, str]
    rationale: str


class MultiTraitFile(Frozen):
    status: Proposed
    default: RandomPolicy
    sensitivity: PriorityPolicy
    incompatible_pairs: tuple[IncompatiblePair, ...] = ()


# ----------------------------------------------------------------------------- arm lifecycle
ArmRole = Literal["control", "experimental"]
Requirement = Literal["dmc_decision", "amendment", "date"]


class LifecycleState(Frozen):
    id: str
    label: str
    roles: tuple[ArmRole, ...] = Field(min_length=1)
    terminal: bool
    description: str


class LifecycleTransition(Frozen):
    from_: str = Field(alias="from")
    to: str
    by: Literal["request", "trait_rule"]
    requires: tuple[Requirement, ...] = Field(min_length=1)
    rationale: str


class TraitRule(Frozen):
    closes_when: Literal["no_open_or_planned_experimental_arm"]
    reason: str
    control_closed_state: str
    rationale: str


class AddingArms(Frozen):
    requires: tuple[Requirement, ...] = Field(min_length=1)
    initial_state: str
    closed_trait: Literal["reopen", "refuse"]
    rationale: str


class LifecycleFile(Frozen):
    status: Proposed
    states: tuple[LifecycleState, ...] = Field(min_length=1)
    transitions: tuple[LifecycleTransition, ...] = Field(min_length=1)
    trait_rule: TraitRule
    adding_arms: AddingArms


# ----------------------------------------------------------------------------- estimands
class EstimandTemplate(Frozen):
    template: str
    rationale: str


class Strategy(Frozen):
    label: str
    description: str


class StrategyChoice(Frozen):
    strategy: str
    handling: str


class IntercurrentEvent(Frozen):
    id: str
    label: str
    strategy: str
    handling: str
    rationale: str


class Estimand(Frozen):
    outcome: str
    summary_measure: Literal["proportional_odds_ratio", "odds_ratio"]
    strategies: dict[str, StrategyChoice] = Field(default_factory=dict)
    rationale: str


class EstimandsFile(Frozen):
    status: Proposed
    population: EstimandTemplate
    treatment: EstimandTemplate
    strategies: dict[str, Strategy] = Field(min_length=1)
    intercurrent_events: tuple[IntercurrentEvent, ...] = Field(min_length=1)
    estimands: tuple[Estimand, ...] = Field(min_length=1)


# ----------------------------------------------------------------------------- data export
ExportKind = Literal[
    "str", "date", "category", "float", "trait_list", "substance_list", "interval_list"
]
ExportGroup = Literal[
    "identity", "randomisation", "follow_up", "organ_support", "safety", "adherence"
]


class ExportMetaField(Frozen):
    """One entry of an export's ``export.yaml`` (export_contract.yaml ``metadata``)."""

    kind: Literal["str", "date"]
    required: bool = False
    description: str


class ExportField(Frozen):
    """One column of an export's ``patients.csv`` (export_contract.yaml ``fields``).

    ``outcome`` (date fields) names the binary outcome of ``proposed/outcomes.yaml`` whose event
    the date records; ``organ_support`` (interval lists) names the organ-support type of the
    ordinal outcome that the intervals record.
    """

    kind: ExportKind
    required: bool = False
    unique: bool = False
    pattern: str | None = None
    unit: str | None = None
    range: tuple[float, float] | None = None
    categories: tuple[str, ...] | None = None
    categories_from: Literal["traits", "arms", "age_groups", "substances"] | None = None
    outcome: str | None = None
    organ_support: str | None = None
    group: ExportGroup
    description: str


class ExportContractFile(Frozen):
    metadata: dict[str, ExportMetaField] = Field(min_length=1)
    fields: dict[str, ExportField] = Field(min_length=1)


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


class InterimAnalysisFile(Frozen):
    status: Proposed
    follow_up: FollowUp
    completeness: Completeness
    withdrawal: WithdrawalHandling
    eras: ErasSpec
    sensitivity: SensitivitySpec
