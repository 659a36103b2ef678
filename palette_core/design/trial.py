"""The registry's facts (``trial.yaml``) and its findings (``registry_findings.yaml``).

``trial.yaml`` transcribes the registry record's fields (identifiers, phase, enrolment, dates,
the number of experimental arms a trait may have); ``registry_findings.yaml`` lists the
record's inconsistencies and ambiguities, each with the reading adopted, the registry lines
that show it and, where a finding makes a dose unsafe to compute, the arms and age groups it
blocks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Literal

from pydantic import Field

from palette_core.design.common import AgeGroupId, Frozen, References
from palette_core.errors import OutOfRangeError, UnknownReferenceError


# ----------------------------------------------------------------------------- trial.yaml
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


# ----------------------------------------------------------------------------- registry_findings.yaml
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


def check_findings(
    findings: tuple[Finding, ...], arm_ids: Collection[str], refs: References
) -> None:
    """registry_findings.yaml: a blocked dose names a known arm and age group; lines start at 1."""
    for f in findings:
        for i, b in enumerate(f.blocks_dose):
            if b.arm not in arm_ids:
                raise UnknownReferenceError(
                    "registry_findings.yaml",
                    f.id,
                    f"blocks_dose[{i}].arm",
                    f"arm {b.arm!r} is not in arms.yaml",
                )
            for ag in b.age_groups:
                refs.check_age_group(
                    ag, "registry_findings.yaml", f.id, f"blocks_dose[{i}].age_groups"
                )
        for i, e in enumerate(f.evidence):
            if e.line < 1:
                raise OutOfRangeError(
                    "registry_findings.yaml",
                    f.id,
                    f"evidence[{i}].line",
                    "line numbers start at 1",
                )


__all__ = [
    "ArmsPerTrait",
    "DoseBlock",
    "Evidence",
    "Finding",
    "FindingsFile",
    "TrialFile",
    "check_findings",
]
