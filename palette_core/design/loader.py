"""Load a design folder into one frozen, validated :class:`Design`.

This is the boundary: every design file is read and checked here, once, and every later step
(classification, allocation, models, the book) trusts the ``Design`` it is given. Each file's
schema and cross-file checks live with its domain (:mod:`~palette_core.design.traits`,
:mod:`~palette_core.design.arms`, ...); :func:`load_design` parses every file, then runs the
checks in a fixed order, so a bad file raises the same typed
:class:`~palette_core.errors.DesignError` (naming the file, the entry and the field) every time.

The design folder is passed in (``load_design(PATH)``), else found by
:func:`~palette_core.design.locate.default_design_dir`. Everything else the code reads from
``data/`` (reference constants, cohort parameters, scenarios, stored results) is found from the
loaded design: :attr:`Design.data_root`, by default the design folder's parent.

Examples
--------
>>> from palette_core.design.loader import load_design
>>> design = load_design()
>>> [t.id for t in design.traits][:2]
['hyperinflammation', 'hypoinflammation']
>>> design.control_of("mals").id
'mals_usual_care'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel

from palette_core.design.allocation import (
    AllocationFile,
    MultiTraitFile,
    check_allocation,
    check_multi_trait_policy,
)
from palette_core.design.analysis import (
    DecisionsFile,
    InterimAnalysisFile,
    InterimsFile,
    PriorsFile,
    check_decisions,
    check_interim_analysis,
    check_interims,
    check_priors,
)
from palette_core.design.arms import (
    Arm,
    ArmsFile,
    SharedEffectGroup,
    SharedEffectGroupsFile,
    Substance,
    SubstancesFile,
    check_arms,
    check_shared_effect_groups,
)
from palette_core.design.common import References, Unit, UnitsFile, parse_model, unique_ids
from palette_core.design.dosing_weight import (
    DOSING_WEIGHT_FILE,
    DosingWeightFile,
    check_dosing_weight,
)
from palette_core.design.eligibility import EligibilityFile, check_eligibility
from palette_core.design.lifecycle import (
    LifecycleFile,
    SuspensionLift,
    check_lifecycle,
    check_suspension,
)
from palette_core.design.locate import default_design_dir
from palette_core.design.outcomes import (
    EstimandsFile,
    Outcome,
    OutcomesFile,
    check_estimands,
    check_outcomes,
)
from palette_core.design.patient_record import (
    PatientField,
    PatientRecordFile,
    check_patient_record,
    check_record_rules,
)
from palette_core.design.records import ExportContractFile, check_export_contract
from palette_core.design.strata import StrataFile, check_strata
from palette_core.design.traits import Biomarker, Hook, Trait, TraitsFile, check_traits
from palette_core.design.trial import Finding, FindingsFile, TrialFile, check_findings
from palette_core.errors import DesignSchemaError
from palette_core.yamlio import read_yaml

#: file name -> schema, in loading order. ``proposed/`` holds every choice the registry
#: does not make.
DESIGN_FILES: dict[str, type[BaseModel]] = {
    "trial.yaml": TrialFile,
    "units.yaml": UnitsFile,
    "traits.yaml": TraitsFile,
    "substances.yaml": SubstancesFile,
    "arms.yaml": ArmsFile,
    "shared_effect_groups.yaml": SharedEffectGroupsFile,
    "eligibility.yaml": EligibilityFile,
    "registry_findings.yaml": FindingsFile,
    "patient_record.yaml": PatientRecordFile,
    "export_contract.yaml": ExportContractFile,
    "proposed/strata.yaml": StrataFile,
    "proposed/outcomes.yaml": OutcomesFile,
    "proposed/priors.yaml": PriorsFile,
    "proposed/decisions.yaml": DecisionsFile,
    "proposed/interims.yaml": InterimsFile,
    "proposed/allocation.yaml": AllocationFile,
    "proposed/multi_trait_policy.yaml": MultiTraitFile,
    "proposed/lifecycle.yaml": LifecycleFile,
    "proposed/estimands.yaml": EstimandsFile,
    "proposed/interim_analysis.yaml": InterimAnalysisFile,
    DOSING_WEIGHT_FILE: DosingWeightFile,
}


# ----------------------------------------------------------------------------- the Design
@dataclass(frozen=True)
class Design:
    """The whole trial design, validated. Build it with :func:`load_design`, never directly.

    ``root`` is the design folder; ``data_root`` the folder that holds the other data the code
    reads (``reference/``, ``cohort/``, ``scenarios/``, ``examples/``, ``exports/``,
    ``derived/``): by default the design folder's parent. ``references`` resolves what any file
    may cite (units, age groups, registry findings).
    """

    root: Path
    data_root: Path
    design_hash: str
    trial: TrialFile
    units: Mapping[str, Unit]
    biomarkers: Mapping[str, Biomarker]
    hooks: Mapping[str, Hook]
    traits: tuple[Trait, ...]
    substances: Mapping[str, Substance]
    arms: tuple[Arm, ...]
    shared_effect_groups: tuple[SharedEffectGroup, ...]
    eligibility: EligibilityFile
    findings: tuple[Finding, ...]
    patient_fields: Mapping[str, PatientField]
    patient_record: PatientRecordFile
    strata: StrataFile
    outcomes: OutcomesFile
    priors: PriorsFile
    decisions: DecisionsFile
    interims: InterimsFile
    allocation: AllocationFile
    multi_trait_policy: MultiTraitFile
    lifecycle: LifecycleFile
    estimands: EstimandsFile
    export_contract: ExportContractFile
    interim_analysis: InterimAnalysisFile
    dosing_weight: DosingWeightFile
    references: References

    # -- paths
    @property
    def registry_path(self) -> Path:
        return (self.root / self.trial.registry_file).resolve()

    # -- lookups
    @cached_property
    def trait_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.traits)

    @cached_property
    def age_group_ids(self) -> tuple[str, ...]:
        return tuple(g.id for g in self.strata.age_groups)

    def trait(self, trait_id: str) -> Trait:
        for t in self.traits:
            if t.id == trait_id:
                return t
        raise KeyError(f"unknown trait {trait_id!r}; known: {', '.join(self.trait_ids)}")

    def arm(self, arm_id: str) -> Arm:
        for a in self.arms:
            if a.id == arm_id:
                return a
        raise KeyError(f"unknown arm {arm_id!r}")

    def finding(self, finding_id: str) -> Finding:
        for f in self.findings:
            if f.id == finding_id:
                return f
        raise KeyError(f"unknown finding {finding_id!r}")

    def arms_of(self, trait_id: str) -> tuple[Arm, ...]:
        """The arms of a trait, control first, in the order of ``arms.yaml``."""
        self.trait(trait_id)
        arms = [a for a in self.arms if a.trait == trait_id]
        return tuple(sorted(arms, key=lambda a: a.role != "control"))

    def control_of(self, trait_id: str) -> Arm:
        return next(a for a in self.arms_of(trait_id) if a.role == "control")

    def experimental_arms(self, trait_id: str | None = None) -> tuple[Arm, ...]:
        arms = self.arms if trait_id is None else self.arms_of(trait_id)
        return tuple(a for a in arms if a.role == "experimental")

    def arm_age_groups(self, arm: Arm) -> tuple[str, ...]:
        """Age groups an arm is open to: its own list, or else its trait's."""
        return arm.age_groups if arm.age_groups is not None else self.trait(arm.trait).age_groups

    def shared_group_of(self, arm_id: str) -> SharedEffectGroup | None:
        return next((g for g in self.shared_effect_groups if arm_id in g.arms), None)

    def dose_blocks(self, arm_id: str, age_group: str) -> tuple[Finding, ...]:
        """Findings that make this arm's dose unsafe to compute for this age group.

        A block whose suspension the sponsor's decision lifted (``proposed/lifecycle.yaml``
        ``suspension.lifted``, whatever its date) no longer counts: the decided dose is in
        ``arms.yaml``. Equal to :meth:`suspended_by` with no date.
        """
        return self.suspended_by(arm_id, age_group)

    def lift_of(self, arm_id: str, age_group: str) -> SuspensionLift | None:
        """The sponsor's decision that lifted the suspension of this arm for this age group."""
        return next(
            (
                x
                for x in self.lifecycle.suspension.lifted
                if x.arm == arm_id and age_group in x.age_groups
            ),
            None,
        )

    def suspended_by(
        self, arm_id: str, age_group: str, on: dt.date | None = None
    ) -> tuple[Finding, ...]:
        """The findings that suspend this arm for this age group on the date ``on``.

        Every finding whose ``blocks_dose`` names the arm and the age group, unless the
        suspension was lifted (``suspension.lifted``) on or before ``on``; with ``on=None``,
        unless it was lifted at all (the design as it stands). Empty: not suspended.
        """
        lift = self.lift_of(arm_id, age_group)
        if lift is not None and (on is None or lift.on <= on):
            return ()
        found = (
            f
            for f in self.findings
            for b in f.blocks_dose
            if b.arm == arm_id and age_group in b.age_groups
        )
        return tuple(dict.fromkeys(found))

    def suspended_age_groups(self, arm_id: str, on: dt.date | None = None) -> tuple[str, ...]:
        """The age groups the arm admits for which it is suspended on ``on`` (see
        :meth:`suspended_by`)."""
        arm = self.arm(arm_id)
        return tuple(g for g in self.arm_age_groups(arm) if self.suspended_by(arm_id, g, on))

    def is_suspended(self, arm_id: str, on: dt.date | None = None) -> bool:
        """Is the arm suspended as a whole: for every age group it admits, on ``on``?"""
        arm = self.arm(arm_id)
        groups = self.arm_age_groups(arm)
        return (
            arm.role == "experimental"
            and bool(groups)
            and all(self.suspended_by(arm_id, g, on) for g in groups)
        )

    def allocatable_age_groups(self, arm_id: str, on: dt.date | None = None) -> tuple[str, ...]:
        """The age groups a patient may be randomised to this arm in, on ``on``: those the arm
        admits, less those it is suspended for."""
        arm = self.arm(arm_id)
        return tuple(g for g in self.arm_age_groups(arm) if not self.suspended_by(arm_id, g, on))

    def outcome(self, outcome_id: str) -> Outcome:
        for o in self.outcomes.outcomes:
            if o.id == outcome_id:
                return o
        raise KeyError(f"unknown outcome {outcome_id!r}")

    # -- units
    def unit_id(self, unit: str) -> str:
        """Canonical id of a unit or alias; ``KeyError`` if not declared."""
        return self.references.unit_id(unit)

    def to_unit(self, value: float, unit: str, target: str) -> float:
        """Convert ``value`` from ``unit`` to ``target`` (same dimension)."""
        return self.references.to_unit(value, unit, target)

    def summary(self) -> dict[str, int]:
        return {
            "traits": len(self.traits),
            "arms": len(self.arms),
            "control_arms": sum(a.role == "control" for a in self.arms),
            "experimental_arms": sum(a.role == "experimental" for a in self.arms),
            "shared_effect_groups": len(self.shared_effect_groups),
            "registry_findings": len(self.findings),
        }


def data_file(source: Design | str | Path, relative: str | Path) -> Path:
    """``source`` itself when it is a path; else the file ``relative`` under its data root.

    The one way a module finds a data file outside the design folder: a function that reads
    ``reference/sofa.yaml`` takes the design (or an explicit path) and calls
    ``data_file(source, "reference/sofa.yaml")``.
    """
    if isinstance(source, Design):
        return source.data_root / relative
    return Path(source)


# ----------------------------------------------------------------------------- loading
def design_hash(root: Path, registry: Path | None = None, exclude: Collection[str] = ()) -> str:
    """SHA-256 over every file of the design directory and the registry file it cites.

    ``exclude`` names files (relative to ``root``, POSIX form) left out: the hash of the
    inputs of a result that does not depend on them (the threshold calibration does not
    depend on the threshold it calibrates).
    """
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in files:
        if p.relative_to(root).as_posix() in exclude:
            continue
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    if registry is not None:  # named by trial.yaml (hashed above), so its path need not enter
        h.update(b"registry\0" + registry.read_bytes() + b"\0")
    return h.hexdigest()


def _check(d: Design) -> None:
    """The cross-file checks, in order; each raises the typed error for the first problem."""
    refs = d.references
    unique_ids(d.strata.age_groups, "proposed/strata.yaml", "age group")
    unique_ids(d.traits, "traits.yaml", "trait")
    unique_ids(d.arms, "arms.yaml", "arm")
    unique_ids(d.findings, "registry_findings.yaml", "finding")
    unique_ids(d.shared_effect_groups, "shared_effect_groups.yaml", "shared-effect group")
    unique_ids(d.eligibility.inclusion + d.eligibility.exclusion, "eligibility.yaml", "criterion")
    unique_ids(d.outcomes.outcomes, "proposed/outcomes.yaml", "outcome")
    check_traits(d.biomarkers, d.hooks, d.traits, refs)
    check_arms(d.arms, d.traits, d.substances, d.trial.arms_per_trait, refs)
    check_shared_effect_groups(d.shared_effect_groups, d.arms)
    check_dosing_weight(d.dosing_weight, d.arms, d.substances, refs)
    check_findings(d.findings, {a.id for a in d.arms}, refs)
    check_eligibility(d.eligibility, d.patient_fields, refs)
    check_patient_record(d.patient_fields, d.biomarkers, d.hooks, refs)
    check_record_rules(d.patient_record)
    check_strata(d.strata, refs)
    check_outcomes(d.outcomes, d.substances)
    check_priors(d.priors)
    check_decisions(d.decisions, d.outcomes)
    check_interims(d.interims)
    check_allocation(d.allocation, d.trial.arms_per_trait)
    check_multi_trait_policy(d.multi_trait_policy, d.trait_ids)
    check_lifecycle(d.lifecycle, d.arms)
    check_suspension(
        d.lifecycle, d.arms, d.findings, refs, {a.id: d.arm_age_groups(a) for a in d.arms}
    )
    check_estimands(d.estimands, d.outcomes)
    check_export_contract(d.export_contract, d.outcomes, refs, d.age_group_ids)
    check_interim_analysis(d.interim_analysis, d.outcomes, d.export_contract)


def load_design(root: str | Path | None = None, *, data_root: str | Path | None = None) -> Design:
    """Read and validate a design folder.

    Parameters
    ----------
    root
        The design folder. Default: :func:`~palette_core.design.locate.default_design_dir`
        (``$PALETTE_DESIGN``, else ``data/design`` of the source checkout this package runs
        from).
    data_root
        The folder of the other data (:attr:`Design.data_root`); default the design folder's
        parent.

    Raises
    ------
    DesignError
        A subclass naming file, entry and field for the first problem found.
    DesignNotFoundError
        No ``root`` given and no default design folder.
    """
    root = Path(root) if root is not None else default_design_dir()
    if not root.is_dir():
        raise DesignSchemaError(str(root), None, None, "design directory not found")
    parsed: dict[str, Any] = {}
    for name, model in DESIGN_FILES.items():
        path = root / name
        if not path.is_file():
            raise DesignSchemaError(name, None, None, f"required design file missing in {root}")
        parsed[name] = parse_model(model, read_yaml(path, name), name)
    trial: TrialFile = parsed["trial.yaml"]
    registry = (root / trial.registry_file).resolve()
    if not registry.is_file():
        raise DesignSchemaError("trial.yaml", None, "registry_file", f"{registry} not found")
    units: dict[str, Unit] = parsed["units.yaml"].units
    traits_file: TraitsFile = parsed["traits.yaml"]
    strata: StrataFile = parsed["proposed/strata.yaml"]
    findings: FindingsFile = parsed["registry_findings.yaml"]
    design = Design(
        root=root,
        data_root=Path(data_root) if data_root is not None else root.resolve().parent,
        design_hash=design_hash(root, registry),
        trial=trial,
        units=MappingProxyType(units),
        biomarkers=MappingProxyType(traits_file.biomarkers),
        hooks=MappingProxyType(traits_file.hooks),
        traits=traits_file.traits,
        substances=MappingProxyType(parsed["substances.yaml"].substances),
        arms=parsed["arms.yaml"].arms,
        shared_effect_groups=parsed["shared_effect_groups.yaml"].shared_effect_groups,
        eligibility=parsed["eligibility.yaml"],
        findings=findings.findings,
        patient_fields=MappingProxyType(parsed["patient_record.yaml"].fields),
        patient_record=parsed["patient_record.yaml"],
        strata=strata,
        outcomes=parsed["proposed/outcomes.yaml"],
        priors=parsed["proposed/priors.yaml"],
        decisions=parsed["proposed/decisions.yaml"],
        interims=parsed["proposed/interims.yaml"],
        allocation=parsed["proposed/allocation.yaml"],
        multi_trait_policy=parsed["proposed/multi_trait_policy.yaml"],
        lifecycle=parsed["proposed/lifecycle.yaml"],
        estimands=parsed["proposed/estimands.yaml"],
        export_contract=parsed["export_contract.yaml"],
        interim_analysis=parsed["proposed/interim_analysis.yaml"],
        dosing_weight=parsed[DOSING_WEIGHT_FILE],
        references=References.build(
            units, [g.id for g in strata.age_groups], [f.id for f in findings.findings]
        ),
    )
    _check(design)
    return design


@contextmanager
def modified_design(
    root: str | Path | None,
    file: str,
    edit: Callable[[Any], None],
    *,
    data_root: str | Path | None = None,
) -> Iterator[Design]:
    """Load a temporary copy of a design directory in which ``file`` was changed by ``edit``.

    ``edit`` receives the parsed YAML of ``file`` and changes it in place. The copy (with the
    registry record it cites) exists while the ``with`` block runs, so the ``Design`` it yields
    can be cross-checked too; its :attr:`~Design.data_root` stays the original's (default: the
    original design folder's parent), so reference files and cohort parameters are still found.
    Used for what-if checks and to show the typed errors in the book; the design directory
    itself is never touched.

    >>> with modified_design(None, "proposed/decisions.yaml",
    ...                      lambda d: d["graduation"].update(threshold=0.9)) as d:
    ...     d.decisions.graduation.threshold
    0.9
    """
    root = Path(root) if root is not None else default_design_dir()
    data_root = Path(data_root) if data_root is not None else root.resolve().parent
    trial = read_yaml(root / "trial.yaml", "trial.yaml")
    registry_rel = Path(trial["registry_file"])
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "a" / "design"
        shutil.copytree(root, copy)
        target = (copy / registry_rel).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2((root / registry_rel).resolve(), target)
        data = read_yaml(copy / file, file)
        edit(data)
        (copy / file).write_text(
            yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        yield load_design(copy, data_root=data_root)


__all__ = [
    "DESIGN_FILES",
    "Design",
    "data_file",
    "design_hash",
    "load_design",
    "modified_design",
]
