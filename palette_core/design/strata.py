"""Age strata (``proposed/strata.yaml``): adults and children, their bounds and sepsis definition.

Each bound says whether it is the registry's or *proposed*, and may cite the registry finding
behind it (the registry's "minimum age 37 weeks" reads as chronological age and conflicts with
the inclusion text's corrected gestational age).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from palette_core.design.common import Frozen, Proposed, References
from palette_core.errors import OutOfRangeError

FILE = "proposed/strata.yaml"


class Bound(Frozen):
    """A bound on a value, inclusive or not, from the registry or proposed."""

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


def check_strata(strata: StrataFile, refs: References) -> None:
    """proposed/strata.yaml: every bound is >= 0 and cites a known finding, if any."""
    for g in strata.age_groups:
        for name in ("min_corrected_gestational_age_weeks", "min_age_years", "max_age_years"):
            bound = getattr(g, name)
            if bound is not None:
                refs.check_finding(bound.finding, FILE, g.id, f"{name}.finding")
                if bound.value < 0:
                    raise OutOfRangeError(FILE, g.id, f"{name}.value", "must be >= 0")


__all__ = ["AgeGroup", "Bound", "StrataFile", "check_strata"]
