"""The protocol's own data: objectives, decision estimands, safety monitoring, DMC charter, trial
conduct, the plan's version and the reporting checklists.

These files live in ``data/protocol/`` and ``data/reference/``, beside the design folder, and are
found through the loaded design (:func:`~palette_core.design.loader.data_file`). They hold what
the registry and the design leave to the protocol (every choice labelled *proposed*, or an open
question for the sponsor); none of them is read by a fit, a decision of the interim analysis or
the simulator, so they are outside ``data/design`` and its hash (changing them does not make the
stored results stale). The one fit that reads a protocol file, the covariate-adjusted
sensitivity analysis of the final analysis (:mod:`palette_core.analysis.covariates`, priors in
``analysis_populations.yaml``), is not part of any stored result. Each file is validated once here, with
:class:`~palette_core.errors.DesignSchemaError` naming file, entry and field, and the few
cross-checks (outcomes and roles that must exist in the design) raise
:class:`~palette_core.errors.UnknownReferenceError`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, cast

from pydantic import Field

from palette_core.design.analysis import HalfNormalPrior, NormalPrior
from palette_core.design.common import Frozen, Proposed, parse_model
from palette_core.design.loader import Design, data_file
from palette_core.errors import DesignSchemaError, DuplicateIdError, UnknownReferenceError
from palette_core.yamlio import read_yaml

#: the folder of the protocol's files, relative to the data root
PROTOCOL_DIR = "protocol"
#: the reporting guidelines of the checklist appendix, relative to the data root
CHECKLIST_FILES = {
    "spirit2013": "reference/spirit2013.yaml",
    "gamble2017": "reference/gamble2017.yaml",
}


# ----------------------------------------------------------------------------- objectives
class Consequence(Frozen):
    decision: Literal["graduation", "futility", "harm", "cap_reached"]
    consequence: str


class FinalAnalysis(Frozen):
    timing: str
    model: str
    perpetual_platform: str


class ObjectivesFile(Frozen):
    status: Proposed
    registry_purpose: str
    primary_objective: str
    secondary_objectives: tuple[str, ...]
    hypothesis_template: str
    consequences: tuple[Consequence, ...]
    final_analysis: FinalAnalysis


# ----------------------------------------------------------------------------- estimands
class ArmDecisions(Frozen):
    effect: Literal["adult", "child", "age_mix_average"]
    rationale: str


class Alternative(Frozen):
    effect: Literal["adult", "child", "age_mix_average"]
    why_not: str


class ChildrenRule(Frozen):
    effect: Literal["child_no_borrowing"]
    rule: Literal["harm"]
    binding: bool
    consequence: str
    rationale: str


class DecisionEstimandsFile(Frozen):
    status: Proposed
    arm_decisions: ArmDecisions
    alternatives: tuple[Alternative, ...]
    children_rule: ChildrenRule


# ----------------------------------------------------------------------------- safety
class SafetyRule(Frozen):
    comparison: str
    prior_events: int = Field(ge=1)
    prior_non_events: int = Field(ge=1)
    threshold: float
    min_patients_arm: int
    rationale: str
    consequence: str


class ControlRisk(Frozen):
    outcome: str
    value: float
    range: tuple[float, float]


class SafetySimulation(Frozen):
    patients_per_arm: int
    look_every_patients: int
    relative_risk_alternative: float
    n_trials: int
    seed: int
    description: str


class Definition(Frozen):
    term: str
    definition: str


class ReportingStep(Frozen):
    step: str
    action: str


class AdverseEvents(Frozen):
    definitions: tuple[Definition, ...]
    sepsis_exemption: str
    reporting_path: tuple[ReportingStep, ...]
    status_note: str


class SafetyMonitoringFile(Frozen):
    status: Proposed
    rule: SafetyRule
    assumed_control_risk: tuple[ControlRisk, ...]
    assumed_control_risk_status: str
    simulation: SafetySimulation
    adverse_events: AdverseEvents


# ----------------------------------------------------------------------------- DMC
class Member(Frozen):
    role: str
    voting: bool
    note: str


class Session(Frozen):
    id: str
    label: str
    attendees: str
    sees: str


class Access(Frozen):
    who: str
    comparative_results: bool
    allocation_probabilities: bool
    randomisation_secret: bool


class Leakage(Frozen):
    question: str
    mitigations: tuple[str, ...]


class DmcFile(Frozen):
    status: Proposed
    members: tuple[Member, ...]
    sessions: tuple[Session, ...]
    access: tuple[Access, ...]
    firewall: str
    recommendations: tuple[str, ...]
    leakage: Leakage


# ----------------------------------------------------------------------------- conduct
class ScheduleRow(Frozen):
    assessment: str
    days: tuple[int, ...]


class Topic(Frozen):
    id: str
    title: str
    spirit: tuple[str, ...]
    registry_quotes: tuple[str, ...]
    proposed: str | None
    open_question: str | None
    schedule: tuple[ScheduleRow, ...] = ()


class ConductFile(Frozen):
    topics: tuple[Topic, ...]


# ----------------------------------------------------------------------------- analysis sets
class AnalysisSet(Frozen):
    id: str
    label: str
    definition: str
    used_for: str


class Adherence(Frozen):
    definition: str
    presentation: str


class Deviation(Frozen):
    deviation: str
    # "class" is a Python keyword: the field is read as ``kind``
    kind: Literal["major", "minor", "missing data"] = Field(alias="class")
    handling: str


class MissingData(Frozen):
    interims: str
    final: str
    tipping_point: str


class AdjustedModel(Frozen):
    """The covariate-adjusted sensitivity model (:mod:`palette_core.analysis.covariates`)."""

    status: Proposed
    severity_effect: NormalPrior
    country_sd: HalfNormalPrior
    missing_severity: Literal["stratum_mean"]
    missing_severity_rationale: str
    min_scored_per_stratum: int = Field(ge=2)
    run: dict[str, float | int]
    run_rationale: str


class Covariates(Frozen):
    primary: str
    rationale: str
    sensitivity: str
    adjusted_model: AdjustedModel


class AnalysisPopulationsFile(Frozen):
    status: Proposed
    analysis_sets: tuple[AnalysisSet, ...]
    adherence: Adherence
    deviations: tuple[Deviation, ...]
    missing_data: MissingData
    covariates: Covariates


# ----------------------------------------------------------------------------- version
class SignOff(Frozen):
    role: str
    responsibility: str


class SapFile(Frozen):
    version: str
    date: dt.date
    status: str
    registry_version_date: dt.date
    sign_off: tuple[SignOff, ...]


# ----------------------------------------------------------------------------- checklists
class GuidelineItem(Frozen):
    #: the published number, with its sub-item letter (``"13b"``)
    id: str = Field(pattern=r"^[1-9][0-9]*[a-z]?$")
    section: str
    topic: str


class GuidelineFile(Frozen):
    guideline: str
    citation: str
    note: str
    #: where the item numbers were checked
    source: str
    items: tuple[GuidelineItem, ...]


ChecklistStatus = Literal["answered", "proposed", "open"]


class ChecklistEntry(Frozen):
    guideline: Literal["spirit2013", "gamble2017"]
    item: str
    status: ChecklistStatus
    label: str | None = None
    note: str | None = None


class ChecklistFile(Frozen):
    entries: tuple[ChecklistEntry, ...]


# ----------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class Protocol:
    """Every protocol file, validated (build it with :func:`load_protocol`)."""

    objectives: ObjectivesFile
    decision_estimands: DecisionEstimandsFile
    safety: SafetyMonitoringFile
    dmc: DmcFile
    populations: AnalysisPopulationsFile
    conduct: ConductFile
    sap: SapFile
    guidelines: dict[str, GuidelineFile]
    checklist: ChecklistFile


_FILES = {
    "objectives": ("objectives.yaml", ObjectivesFile),
    "decision_estimands": ("decision_estimands.yaml", DecisionEstimandsFile),
    "safety": ("safety_monitoring.yaml", SafetyMonitoringFile),
    "dmc": ("dmc.yaml", DmcFile),
    "populations": ("analysis_populations.yaml", AnalysisPopulationsFile),
    "conduct": ("conduct.yaml", ConductFile),
    "sap": ("sap.yaml", SapFile),
    "checklist": ("checklist.yaml", ChecklistFile),
}


def _read(design: Design, relative: str, model: type[Frozen]) -> Frozen:
    path = data_file(design, relative)
    if not path.is_file():
        raise DesignSchemaError(relative, None, None, f"required protocol file missing: {path}")
    return parse_model(model, read_yaml(path, relative), relative)


def _check_safety(design: Design, safety: SafetyMonitoringFile) -> None:
    """Cross-checks of the safety monitoring file: monitored outcomes are the design's safety
    outcomes, each with an assumed risk, and the threshold is a probability."""
    f = f"{PROTOCOL_DIR}/safety_monitoring.yaml"
    safety_ids = {o.id for o in design.outcomes.outcomes if o.role == "safety"}
    for i, risk in enumerate(safety.assumed_control_risk):
        if risk.outcome not in safety_ids:
            raise UnknownReferenceError(
                f, f"[{i}]", "outcome", f"{risk.outcome!r} is not a safety outcome of outcomes.yaml"
            )
        lo, hi = risk.range
        if not 0 < lo <= risk.value <= hi < 1:
            raise DesignSchemaError(f, f"[{i}]", "range", "expected 0 < low <= value <= high < 1")
    if not 0 < safety.rule.threshold < 1:
        raise DesignSchemaError(f, "rule", "threshold", "expected a probability in (0, 1)")
    missing = safety_ids - {r.outcome for r in safety.assumed_control_risk}
    if missing:
        raise DesignSchemaError(
            f, None, "assumed_control_risk", f"no assumed risk for {sorted(missing)}"
        )


def _check(design: Design, p: Protocol) -> None:
    """Cross-checks: the safety monitoring file (:func:`_check_safety`), a guideline lists
    each item once, checklist entries name a known item once, an open item says what is open,
    and every item has an entry."""
    _check_safety(design, p.safety)
    for g, gf in p.guidelines.items():
        ids: set[str] = set()
        for i, item in enumerate(gf.items):
            if item.id in ids:
                raise DuplicateIdError(
                    CHECKLIST_FILES[g], f"items[{i}]", "id", f"item {item.id!r} listed twice"
                )
            ids.add(item.id)
    f = f"{PROTOCOL_DIR}/checklist.yaml"
    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(p.checklist.entries):
        items = {x.id for x in p.guidelines[e.guideline].items}
        if e.item not in items:
            raise UnknownReferenceError(
                f, f"[{i}]", "item", f"{e.item!r} is not an item of {e.guideline}"
            )
        if (e.guideline, e.item) in seen:
            raise DesignSchemaError(f, f"[{i}]", "item", f"{e.guideline} {e.item} listed twice")
        seen.add((e.guideline, e.item))
        if e.status != "open" and not e.label:
            raise DesignSchemaError(f, f"[{i}]", "label", f"a {e.status} item needs a label")
        if e.status == "open" and not (e.note and e.note.strip()):
            raise DesignSchemaError(
                f, f"[{i}]", "note", "an open item needs a note saying what is open"
            )
    for g, gf in p.guidelines.items():
        absent = [x.id for x in gf.items if (g, x.id) not in seen]
        if absent:
            raise DesignSchemaError(f, None, "entries", f"{g} item(s) without an entry: {absent}")


def load_protocol(design: Design) -> Protocol:
    """Read and validate the protocol files found beside ``design``.

    Parameters
    ----------
    design
        The loaded design; the files are read under its data root.

    Returns
    -------
    Protocol
        Every file, validated and cross-checked against the design.

    Raises
    ------
    DesignSchemaError, UnknownReferenceError
        Naming the file, entry and field of the first problem.
    """
    parsed = {k: _read(design, f"{PROTOCOL_DIR}/{name}", m) for k, (name, m) in _FILES.items()}
    guidelines = {k: _read(design, rel, GuidelineFile) for k, rel in CHECKLIST_FILES.items()}
    protocol = Protocol(guidelines=guidelines, **parsed)  # type: ignore[arg-type]
    _check(design, protocol)
    return protocol


def load_safety_monitoring(design: Design) -> SafetyMonitoringFile:
    """The safety monitoring file beside ``design`` (``safety_monitoring.yaml``), validated
    and cross-checked as :func:`load_protocol` does, without the other protocol files: what
    an interim analysis needs to apply the safety rule.

    Raises
    ------
    DesignSchemaError, UnknownReferenceError
        The file is missing (an interim analysis never runs without its safety rule), or
        invalid: naming the file, entry and field.
    """
    name, model = _FILES["safety"]
    safety = cast(SafetyMonitoringFile, _read(design, f"{PROTOCOL_DIR}/{name}", model))
    _check_safety(design, safety)
    return safety


def load_children_rule(design: Design) -> ChildrenRule | None:
    """The children's decision rule of ``decision_estimands.yaml`` beside ``design``, or
    ``None`` when that file does not exist (a design without its protocol files); a file that
    exists and is invalid is a typed error naming file, entry and field."""
    relative = f"{PROTOCOL_DIR}/{_FILES['decision_estimands'][0]}"
    if not data_file(design, relative).is_file():
        return None
    parsed = _read(design, relative, DecisionEstimandsFile)
    return parsed.children_rule  # type: ignore[attr-defined]


__all__ = [
    "CHECKLIST_FILES",
    "PROTOCOL_DIR",
    "ChildrenRule",
    "Protocol",
    "load_children_rule",
    "load_protocol",
    "load_safety_monitoring",
]
