"""``proposed/tipping_point.yaml``: the tipping-point analysis of missing outcomes at the
final analysis (which outcomes are imputed and how, the departures from missing at random
explored, the refit), read and checked once by :func:`load_tipping_spec`.

The file is *proposed*: the registry says nothing about missing data. It is read apart from
:func:`~palette_core.design.loader.load_design` (the interim analysis does not need it) but
lives in the design folder, so its content enters the design hash.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from palette_core.design.common import Frozen, Proposed, parse_model
from palette_core.design.loader import Design
from palette_core.errors import (
    DesignSchemaError,
    DuplicateIdError,
    OutOfRangeError,
    UnknownReferenceError,
)
from palette_core.yamlio import read_yaml

#: The file, relative to the design folder.
TIPPING_FILE = "proposed/tipping_point.yaml"
#: Completeness statuses of the export's derivation that may be imputed.
IMPUTABLE_STATUSES = ("missing", "pending")


class Imputation(Frozen):
    method: Literal["posterior_predictive"]
    within: tuple[Literal["trait", "arm", "age_group", "era"], ...]
    n_imputations: int = Field(ge=2)
    rationale: str


class DeltaGrid(Frozen):
    scale: Literal["log_odds"]
    orientation: Literal["benefit"]
    from_: float = Field(alias="from")
    to: float
    step: float = Field(gt=0)
    rationale: str


class Scenario(Frozen):
    id: str
    shifted: Literal["experimental", "control"]
    rationale: str


class Report(Frozen):
    rationale: str


class Refit(Frozen):
    method: Literal["laplace"]
    nuts_check: bool
    rationale: str


class TippingPointFile(Frozen):
    status: Proposed
    analysis: Literal["final"]
    rationale: str
    outcomes: tuple[str, ...] = Field(min_length=1)
    imputed_statuses: tuple[str, ...] = Field(min_length=1)
    imputed_rationale: str
    imputation: Imputation
    delta: DeltaGrid
    scenarios: tuple[Scenario, ...] = Field(min_length=1)
    report: Report
    refit: Refit

    @property
    def deltas(self) -> tuple[float, ...]:
        """The grid of delta, from ``from`` to ``to`` by ``step`` (0 is on it: checked)."""
        n = int(round((self.delta.to - self.delta.from_) / self.delta.step))
        return tuple(round(self.delta.from_ + i * self.delta.step, 10) for i in range(n + 1))


def check_tipping(spec: TippingPointFile, design: Design) -> None:
    """Cross-checks: known outcomes, imputable statuses, a grid through 0, distinct scenarios.

    Raises
    ------
    UnknownReferenceError, OutOfRangeError, DuplicateIdError
        Naming the file, entry and field.
    """
    known = {o.id for o in design.outcomes.outcomes}
    for o in spec.outcomes:
        if o not in known:
            raise UnknownReferenceError(
                TIPPING_FILE, o, "outcomes", f"outcome {o!r} is not in proposed/outcomes.yaml"
            )
    for s in spec.imputed_statuses:
        if s not in IMPUTABLE_STATUSES:
            raise UnknownReferenceError(
                TIPPING_FILE,
                s,
                "imputed_statuses",
                f"status {s!r} cannot be imputed (one of {', '.join(IMPUTABLE_STATUSES)})",
            )
    d = spec.delta
    if not d.from_ < 0 < d.to:
        raise OutOfRangeError(TIPPING_FILE, "delta", "from", "the range must contain 0 inside it")
    steps = (d.to - d.from_) / d.step
    if abs(steps - round(steps)) > 1e-9 or abs(d.from_ / d.step - round(d.from_ / d.step)) > 1e-9:
        raise OutOfRangeError(
            TIPPING_FILE, "delta", "step", "from, 0 and to must lie on the grid of step"
        )
    seen: set[str] = set()
    for sc in spec.scenarios:
        if sc.id in seen:
            raise DuplicateIdError(TIPPING_FILE, sc.id, "id", "scenario id repeated")
        seen.add(sc.id)


def load_tipping_spec(design: Design) -> TippingPointFile:
    """Read and check :data:`TIPPING_FILE` of the design.

    Raises
    ------
    palette_core.errors.DesignError
        A subclass naming file, entry and field (the file missing: a schema error).
    """
    path = design.root / TIPPING_FILE
    if not path.is_file():
        raise DesignSchemaError(TIPPING_FILE, None, None, f"file missing in {design.root}")
    spec = parse_model(TippingPointFile, read_yaml(path, TIPPING_FILE), TIPPING_FILE)
    check_tipping(spec, design)
    return spec


__all__ = ["TIPPING_FILE", "TippingPointFile", "check_tipping", "load_tipping_spec"]
