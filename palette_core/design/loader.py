"""Load ``data/design`` into one frozen, validated :class:`Design`.

This is the boundary: every design file is read and checked here, once, and every later step
(classification, allocation, models, the book) trusts the ``Design`` it is given. A bad file
raises a typed :class:`~palette_core.errors.DesignError` naming the file, the entry and the
field.

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

import hashlib
import re
import shutil
import string
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from palette_core.design import schema as s
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignError,
    DesignSchemaError,
    DuplicateIdError,
    MissingControlError,
    OutOfRangeError,
    UnknownReferenceError,
    UnknownUnitError,
)
from palette_core.yamlio import read_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DESIGN_DIR = REPO_ROOT / "data" / "design"

#: file name -> schema, in loading order. ``proposed/`` holds every choice the registry
#: does not make.
DESIGN_FILES: dict[str, type[BaseModel]] = {
    "trial.yaml": s.TrialFile,
    "units.yaml": s.UnitsFile,
    "traits.yaml": s.TraitsFile,
    "substances.yaml": s.SubstancesFile,
    "arms.yaml": s.ArmsFile,
    "shared_effect_groups.yaml": s.SharedEffectGroupsFile,
    "eligibility.yaml": s.EligibilityFile,
    "registry_findings.yaml": s.FindingsFile,
    "patient_record.yaml": s.PatientRecordFile,
    "export_contract.yaml": s.ExportContractFile,
    "proposed/strata.yaml": s.StrataFile,
    "proposed/outcomes.yaml": s.OutcomesFile,
    "proposed/priors.yaml": s.PriorsFile,
    "proposed/decisions.yaml": s.DecisionsFile,
    "proposed/interims.yaml": s.InterimsFile,
    "proposed/allocation.yaml": s.AllocationFile,
    "proposed/multi_trait_policy.yaml": s.MultiTraitFile,
    "proposed/lifecycle.yaml": s.LifecycleFile,
    "proposed/estimands.yaml": s.EstimandsFile,
    "proposed/interim_analysis.yaml": s.InterimAnalysisFile,
}

#: The export columns that palette_core.exports.contract and palette_core.exports.derive read by name:
#: name -> (kind, categories_from, must be required). The contract may declare more columns.
EXPORT_CORE_FIELDS: dict[str, tuple[str, str | None, bool]] = {
    "patient_id": ("str", None, True),
    "site_id": ("str", None, True),
    "country": ("str", None, True),
    "randomisation_date": ("date", None, True),
    "age_group": ("category", "age_groups", True),
    "positive_traits": ("trait_list", None, True),
    "assigned_trait": ("category", "traits", True),
    "arm": ("category", "arms", True),
    "death_date": ("date", None, False),
    "icu_discharge_date": ("date", None, False),
    "hospital_discharge_date": ("date", None, False),
    "last_known_alive_date": ("date", None, False),
    "withdrawal_date": ("date", None, False),
    "withdrawal_scope": ("category", None, False),
    "open_label_substances": ("substance_list", None, False),
}
#: The metadata of an export (export.yaml) that palette_core.exports.contract reads: name -> kind.
EXPORT_META_FIELDS: dict[str, str] = {
    "trial_id": "str",
    "export_id": "str",
    "data_cut": "date",
    "created_by": "str",
}

DOSE_DIMENSIONS = frozenset({"mass", "activity", "volume"})
M = TypeVar("M", bound=BaseModel)


# ----------------------------------------------------------------------------- the Design
@dataclass(frozen=True)
class Design:
    """The whole trial design, validated. Build it with :func:`load_design`, never directly."""

    root: Path
    design_hash: str
    trial: s.TrialFile
    units: Mapping[str, s.Unit]
    biomarkers: Mapping[str, s.Biomarker]
    hooks: Mapping[str, s.Hook]
    traits: tuple[s.Trait, ...]
    substances: Mapping[str, s.Substance]
    arms: tuple[s.Arm, ...]
    shared_effect_groups: tuple[s.SharedEffectGroup, ...]
    eligibility: s.EligibilityFile
    findings: tuple[s.Finding, ...]
    patient_fields: Mapping[str, s.PatientField]
    strata: s.StrataFile
    outcomes: s.OutcomesFile
    priors: s.PriorsFile
    decisions: s.DecisionsFile
    interims: s.InterimsFile
    allocation: s.AllocationFile
    multi_trait_policy: s.MultiTraitFile
    lifecycle: s.LifecycleFile
    estimands: s.EstimandsFile
    export_contract: s.ExportContractFile
    interim_analysis: s.InterimAnalysisFile
    _unit_lookup: Mapping[str, str] = field(repr=False, compare=False, default_factory=dict)

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

    def trait(self, trait_id: str) -> s.Trait:
        for t in self.traits:
            if t.id == trait_id:
                return t
        raise KeyError(f"unknown trait {trait_id!r}; known: {', '.join(self.trait_ids)}")

    def arm(self, arm_id: str) -> s.Arm:
        for a in self.arms:
            if a.id == arm_id:
                return a
        raise KeyError(f"unknown arm {arm_id!r}")

    def finding(self, finding_id: str) -> s.Finding:
        for f in self.findings:
            if f.id == finding_id:
                return f
        raise KeyError(f"unknown finding {finding_id!r}")

    def arms_of(self, trait_id: str) -> tuple[s.Arm, ...]:
        """The arms of a trait, control first, in the order of ``arms.yaml``."""
        self.trait(trait_id)
        arms = [a for a in self.arms if a.trait == trait_id]
        return tuple(sorted(arms, key=lambda a: a.role != "control"))

    def control_of(self, trait_id: str) -> s.Arm:
        return next(a for a in self.arms_of(trait_id) if a.role == "control")

    def experimental_arms(self, trait_id: str | None = None) -> tuple[s.Arm, ...]:
        arms = self.arms if trait_id is None else self.arms_of(trait_id)
        return tuple(a for a in arms if a.role == "experimental")

    def arm_age_groups(self, arm: s.Arm) -> tuple[str, ...]:
        """Age groups an arm is open to: its own list, or else its trait's."""
        return arm.age_groups if arm.age_groups is not None else self.trait(arm.trait).age_groups

    def shared_group_of(self, arm_id: str) -> s.SharedEffectGroup | None:
        return next((g for g in self.shared_effect_groups if arm_id in g.arms), None)

    def dose_blocks(self, arm_id: str, age_group: str) -> tuple[s.Finding, ...]:
        """Findings that make this arm's dose unsafe to compute for this age group."""
        return tuple(
            f
            for f in self.findings
            for b in f.blocks_dose
            if b.arm == arm_id and age_group in b.age_groups
        )

    def outcome(self, outcome_id: str) -> s.Outcome:
        for o in self.outcomes.outcomes:
            if o.id == outcome_id:
                return o
        raise KeyError(f"unknown outcome {outcome_id!r}")

    # -- units
    def unit_id(self, unit: str) -> str:
        """Canonical id of a unit or alias; ``KeyError`` if not declared."""
        return self._unit_lookup[unit]

    def to_unit(self, value: float, unit: str, target: str) -> float:
        """Convert ``value`` from ``unit`` to ``target`` (same dimension)."""
        u, t = self.units[self.unit_id(unit)], self.units[self.unit_id(target)]
        if u.dimension != t.dimension:
            raise ValueError(f"cannot convert {unit} ({u.dimension}) to {target} ({t.dimension})")
        return value * u.factor / t.factor

    def summary(self) -> dict[str, int]:
        return {
            "traits": len(self.traits),
            "arms": len(self.arms),
            "control_arms": sum(a.role == "control" for a in self.arms),
            "experimental_arms": sum(a.role == "experimental" for a in self.arms),
            "shared_effect_groups": len(self.shared_effect_groups),
            "registry_findings": len(self.findings),
        }


# ----------------------------------------------------------------------------- loading
def design_hash(root: Path, registry: Path | None = None) -> str:
    """SHA-256 over every file of the design directory and the registry file it cites."""
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in files:
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    if registry is not None:  # named by trial.yaml (hashed above), so its path need not enter
        h.update(b"registry\0" + registry.read_bytes() + b"\0")
    return h.hexdigest()


def _keyed_by_id(model: type[BaseModel], name: Any) -> bool:
    """Is top-level field ``name`` a mapping of ids to entries (units, biomarkers, substances)?"""
    info = model.model_fields.get(name) if isinstance(name, str) else None
    return info is not None and get_origin(info.annotation) is dict


def _entry_and_field(
    raw: Any, loc: tuple[Any, ...], keyed: bool = True
) -> tuple[str | None, str | None]:
    """Turn a pydantic error location into (entry, field), naming list entries by their id.

    ``keyed``: the first location is a mapping of ids (its key names the entry) rather than a
    nested section such as ``graduation`` in decisions.yaml (the section is the entry).
    """
    if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(raw, dict):
        items = raw.get(loc[0])
        entry = f"[{loc[1]}]"
        if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
            entry = str(items[loc[1]].get("id", entry))
        rest = loc[2:]
    elif len(loc) >= 2 and isinstance(raw, dict) and isinstance(raw.get(loc[0]), dict):
        entry, rest = (str(loc[1]), loc[2:]) if keyed else (str(loc[0]), loc[1:])
    else:
        entry, rest = None, loc
    parts: list[str] = []
    for i, p in enumerate(rest):
        nxt = rest[i + 1] if i + 1 < len(rest) else None
        if p in {"comparison", "hook"} or (p in {"all", "any"} and nxt == p):
            continue  # discriminator tags add nothing for the reader
        if any(ch in str(p) for ch in "[(' ") or str(p).startswith("function-"):
            continue  # pydantic's names for union branches and validators
        parts.append(f"[{p}]" if isinstance(p, int) else ("." if parts else "") + str(p))
    return entry, ("".join(parts) or None)


def _parse(model: type[M], raw: Any, label: str) -> M:
    if not isinstance(raw, dict):
        raise DesignSchemaError(
            label, None, None, f"expected a mapping at top level, got {type(raw).__name__}"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        err = max(errors, key=lambda e: len(e["loc"]))  # the most specific location
        loc = tuple(err["loc"])
        entry, fld = _entry_and_field(raw, loc, keyed=bool(loc) and _keyed_by_id(model, loc[0]))
        raise DesignSchemaError(label, entry, fld, err["msg"]) from None


def load_design(root: str | Path | None = None) -> Design:
    """Read and validate a design directory (default: ``data/design`` of this repository).

    Raises
    ------
    DesignError
        A subclass naming file, entry and field for the first problem found.
    """
    root = Path(root) if root is not None else DEFAULT_DESIGN_DIR
    if not root.is_dir():
        raise DesignSchemaError(str(root), None, None, "design directory not found")
    parsed: dict[str, Any] = {}
    for name, model in DESIGN_FILES.items():
        path = root / name
        if not path.is_file():
            raise DesignSchemaError(name, None, None, f"required design file missing in {root}")
        parsed[name] = _parse(model, read_yaml(path, name), name)
    trial: s.TrialFile = parsed["trial.yaml"]
    registry = (root / trial.registry_file).resolve()
    if not registry.is_file():
        raise DesignSchemaError("trial.yaml", None, "registry_file", f"{registry} not found")
    units: dict[str, s.Unit] = parsed["units.yaml"].units
    traits_file: s.TraitsFile = parsed["traits.yaml"]
    design = Design(
        root=root,
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
        findings=parsed["registry_findings.yaml"].findings,
        patient_fields=MappingProxyType(parsed["patient_record.yaml"].fields),
        strata=parsed["proposed/strata.yaml"],
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
        _unit_lookup=MappingProxyType(_unit_lookup(units)),
    )
    _Validator(design).run()
    from palette_core.screening.traits import (
        check_hooks,  # here, not at the top: traits imports this module
    )

    check_hooks(design)  # every hook named in traits.yaml has an implementation
    return design


@contextmanager
def modified_design(
    root: str | Path | None, file: str, edit: Callable[[Any], None]
) -> Iterator[Design]:
    """Load a temporary copy of a design directory in which ``file`` was changed by ``edit``.

    ``edit`` receives the parsed YAML of ``file`` and changes it in place. The copy (with the
    registry record it cites) exists while the ``with`` block runs, so the ``Design`` it yields
    can be cross-checked too. Used for what-if checks and to show the typed errors in the
    book; the design directory itself is never touched.

    >>> with modified_design(None, "proposed/decisions.yaml",
    ...                      lambda d: d["graduation"].update(threshold=0.9)) as d:
    ...     d.decisions.graduation.threshold
    0.9
    """
    root = Path(root) if root is not None else DEFAULT_DESIGN_DIR
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
        yield load_design(copy)


def _unit_lookup(units: dict[str, s.Unit]) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for uid, unit in units.items():
        for name in (uid, *unit.aliases):
            if name in lookup:
                raise DuplicateIdError(
                    "units.yaml", uid, "aliases", f"{name!r} also names unit {lookup[name]!r}"
                )
            lookup[name] = uid
        if unit.factor <= 0:
            raise OutOfRangeError("units.yaml", uid, "factor", f"must be > 0, got {unit.factor}")
    return lookup


# ----------------------------------------------------------------------------- validation
def _unique(items: tuple[Any, ...], file: str, what: str) -> None:
    counts = Counter(i.id for i in items)
    for ident, n in counts.items():
        if n > 1:
            raise DuplicateIdError(file, ident, "id", f"{what} id {ident!r} appears {n} times")


def _walk(cond: Any, path: str = "") -> Iterator[tuple[Any, str]]:
    if isinstance(cond, s.AllOf | s.AnyOf):
        key, children = ("all", cond.all_of) if isinstance(cond, s.AllOf) else ("any", cond.any_of)
        for i, child in enumerate(children):
            yield from _walk(child, f"{path}.{key}[{i}]")
    else:
        yield cond, path


class _Validator:
    """Cross-file checks; each raises the typed error for the first problem it finds."""

    def __init__(self, d: Design):
        self.d = d
        self.finding_ids = {f.id for f in d.findings}

    def run(self) -> None:
        d = self.d
        _unique(d.strata.age_groups, "proposed/strata.yaml", "age group")
        _unique(d.traits, "traits.yaml", "trait")
        _unique(d.arms, "arms.yaml", "arm")
        _unique(d.findings, "registry_findings.yaml", "finding")
        _unique(d.shared_effect_groups, "shared_effect_groups.yaml", "shared-effect group")
        _unique(d.eligibility.inclusion + d.eligibility.exclusion, "eligibility.yaml", "criterion")
        _unique(d.outcomes.outcomes, "proposed/outcomes.yaml", "outcome")
        self.biomarkers_and_hooks()
        self.traits()
        self.arms()
        self.shared_groups()
        self.findings()
        self.eligibility()
        self.patient_record()
        self.proposed()
        self.lifecycle()
        self.estimands()
        self.export_contract()
        self.interim_analysis()

    # -- helpers
    def finding_ref(self, ref: str | None, file: str, entry: str | None, fld: str) -> None:
        if ref is not None and ref not in self.finding_ids:
            raise UnknownReferenceError(
                file, entry, fld, f"finding {ref!r} is not in registry_findings.yaml"
            )

    def unit(
        self, unit: str, file: str, entry: str | None, fld: str, dimensions: set[str] | None = None
    ) -> str:
        try:
            uid = self.d.unit_id(unit)
        except KeyError:
            raise UnknownUnitError(
                file, entry, fld, f"{unit!r} is not declared in units.yaml"
            ) from None
        dim = self.d.units[uid].dimension
        if dimensions is not None and dim not in dimensions:
            raise UnknownUnitError(
                file,
                entry,
                fld,
                f"{unit!r} is a {dim} unit; expected {' or '.join(sorted(dimensions))}",
            )
        return uid

    def age_group(self, ag: str, file: str, entry: str | None, fld: str) -> None:
        if ag not in self.d.age_group_ids:
            raise UnknownReferenceError(
                file,
                entry,
                fld,
                f"age group {ag!r} not in proposed/strata.yaml ({', '.join(self.d.age_group_ids)})",
            )

    # -- files
    def biomarkers_and_hooks(self) -> None:
        for bid, b in self.d.biomarkers.items():
            self.unit(b.unit, "traits.yaml", bid, "unit")
            lo, hi = b.plausible
            if not lo < hi:
                raise OutOfRangeError(
                    "traits.yaml",
                    bid,
                    "plausible",
                    f"lower bound {lo} must be below upper bound {hi}",
                )

    def condition(self, cond: Any, trait: str, fld: str) -> None:
        for leaf, path in _walk(cond):
            where = f"{fld}{path}"
            if isinstance(leaf, s.Comparison):
                b = self.d.biomarkers.get(leaf.biomarker)
                if b is None:
                    raise UnknownReferenceError(
                        "traits.yaml",
                        trait,
                        f"{where}.biomarker",
                        f"biomarker {leaf.biomarker!r} is not declared under biomarkers",
                    )
                uid = self.unit(leaf.unit, "traits.yaml", trait, f"{where}.unit")
                if self.d.units[uid].dimension != self.d.units[self.d.unit_id(b.unit)].dimension:
                    raise UnknownUnitError(
                        "traits.yaml",
                        trait,
                        f"{where}.unit",
                        f"{leaf.unit!r} cannot express {leaf.biomarker} (declared in {b.unit})",
                    )
                value = self.d.to_unit(leaf.threshold, leaf.unit, b.unit)
                lo, hi = b.plausible
                if not lo <= value <= hi:
                    raise OutOfRangeError(
                        "traits.yaml",
                        trait,
                        f"{where}.threshold",
                        f"{leaf.threshold} {leaf.unit} is outside the plausible range of {leaf.biomarker} [{lo}, {hi}] {b.unit}",
                    )
            else:
                hook = self.d.hooks.get(leaf.hook)
                if hook is None:
                    raise UnknownReferenceError(
                        "traits.yaml",
                        trait,
                        f"{where}.hook",
                        f"hook {leaf.hook!r} is not declared under hooks",
                    )
                bad = [c for c in leaf.positive if c not in hook.classes]
                if bad:
                    raise UnknownReferenceError(
                        "traits.yaml",
                        trait,
                        f"{where}.positive",
                        f"{bad} are not classes of hook {leaf.hook!r} ({', '.join(hook.classes)})",
                    )

    def traits(self) -> None:
        for t in self.d.traits:
            for ag in t.age_groups:
                self.age_group(ag, "traits.yaml", t.id, "age_groups")
            for readings, prefix in [(t.rules, "rules")] + [
                (a.rules, f"alternative_readings.{a.id}.rules") for a in t.alternative_readings
            ]:
                for ag, cond in readings.items():
                    self.age_group(ag, "traits.yaml", t.id, f"{prefix}.{ag}")
                    if ag not in t.age_groups:
                        raise ConflictingArgumentsError(
                            "traits.yaml",
                            t.id,
                            f"{prefix}.{ag}",
                            f"rule given for age group {ag!r} but the trait's age_groups are {list(t.age_groups)}",
                        )
                    self.condition(cond, t.id, f"{prefix}.{ag}")
                missing = [ag for ag in t.age_groups if ag not in readings]
                if missing:
                    raise ConflictingArgumentsError(
                        "traits.yaml",
                        t.id,
                        prefix,
                        f"no rule for age group(s) {missing} although the trait admits them",
                    )
            self.finding_ref(t.finding, "traits.yaml", t.id, "finding")

    def dose(self, dose: s.Dose, arm: str, fld: str) -> None:
        self.unit(dose.unit, "arms.yaml", arm, f"{fld}.unit", DOSE_DIMENSIONS)
        if dose.amount <= 0:
            raise OutOfRangeError(
                "arms.yaml", arm, f"{fld}.amount", f"must be > 0, got {dose.amount}"
            )
        if dose.amount_max is not None and dose.amount_max < dose.amount:
            raise OutOfRangeError(
                "arms.yaml",
                arm,
                f"{fld}.amount_max",
                f"{dose.amount_max} is below amount {dose.amount}",
            )
        if (dose.frequency == "every_n_hours") != (dose.every_hours is not None):
            raise ConflictingArgumentsError(
                "arms.yaml",
                arm,
                f"{fld}.every_hours",
                "every_hours is required with frequency every_n_hours and only then",
            )
        if dose.every_hours is not None and not 1 <= dose.every_hours <= 24:
            raise OutOfRangeError(
                "arms.yaml", arm, f"{fld}.every_hours", f"must be in 1..24, got {dose.every_hours}"
            )
        if dose.duration_days is not None and dose.duration_days <= 0:
            raise OutOfRangeError(
                "arms.yaml", arm, f"{fld}.duration_days", f"must be > 0, got {dose.duration_days}"
            )
        if dose.when is not None and dose.when.threshold <= 0:
            raise OutOfRangeError("arms.yaml", arm, f"{fld}.when.threshold", "must be > 0")
        for extra, name in ((dose.max_amount, "max_amount"), (dose.equivalent, "equivalent")):
            if extra is None:
                continue
            uid = self.unit(extra.unit, "arms.yaml", arm, f"{fld}.{name}.unit", DOSE_DIMENSIONS)
            if (
                name == "max_amount"
                and self.d.units[uid].dimension != self.d.units[self.d.unit_id(dose.unit)].dimension
            ):
                raise UnknownUnitError(
                    "arms.yaml",
                    arm,
                    f"{fld}.{name}.unit",
                    f"cap in {extra.unit} cannot limit a dose in {dose.unit}",
                )
            if extra.amount <= 0:
                raise OutOfRangeError("arms.yaml", arm, f"{fld}.{name}.amount", "must be > 0")
        if dose.max_amount is not None:
            self.finding_ref(dose.max_amount.finding, "arms.yaml", arm, f"{fld}.max_amount.finding")

    def arms(self) -> None:
        d = self.d
        trait_ids = set(d.trait_ids)
        for a in d.arms:
            if a.trait not in trait_ids:
                raise UnknownReferenceError(
                    "arms.yaml",
                    a.id,
                    "trait",
                    f"trait {a.trait!r} is not in traits.yaml ({', '.join(d.trait_ids)})",
                )
            trait = d.trait(a.trait)
            for ag in a.age_groups or ():
                self.age_group(ag, "arms.yaml", a.id, "age_groups")
                if ag not in trait.age_groups:
                    raise ConflictingArgumentsError(
                        "arms.yaml",
                        a.id,
                        "age_groups",
                        f"arm open to {ag!r} but trait {trait.id!r} admits only {list(trait.age_groups)}",
                    )
            if a.role == "control" and a.components:
                raise ConflictingArgumentsError(
                    "arms.yaml", a.id, "components", "a usual-care control has no components"
                )
            if a.role == "experimental" and not a.components:
                raise DesignSchemaError(
                    "arms.yaml",
                    a.id,
                    "components",
                    "an experimental arm needs at least one component",
                )
            if a.availability.initial_state == "planned" and not a.availability.opens_when:
                raise DesignSchemaError(
                    "arms.yaml",
                    a.id,
                    "availability.opens_when",
                    "a planned arm must say when it opens",
                )
            for i, c in enumerate(a.components):
                fld = f"components[{i}]"
                if c.substance not in d.substances:
                    raise UnknownReferenceError(
                        "arms.yaml",
                        a.id,
                        f"{fld}.substance",
                        f"substance {c.substance!r} is not in substances.yaml",
                    )
                if (c.procedure is None) == (c.adult is None):
                    raise ConflictingArgumentsError(
                        "arms.yaml",
                        a.id,
                        fld,
                        "give either a procedure or an adult dose, not both or neither",
                    )
                for j, dose in enumerate(c.adult or ()):
                    self.dose(dose, a.id, f"{fld}.adult[{j}]")
                if isinstance(c.child, tuple):
                    for j, dose in enumerate(c.child):
                        self.dose(dose, a.id, f"{fld}.child[{j}]")
                if c.procedure is not None and (
                    c.procedure.max_hours_per_day <= 0
                    or c.procedure.max_hours_per_day > 24
                    or c.procedure.max_consecutive_days <= 0
                ):
                    raise OutOfRangeError(
                        "arms.yaml",
                        a.id,
                        f"{fld}.procedure",
                        "hours per day must be in (0, 24] and days > 0",
                    )
        bounds = d.trial.arms_per_trait
        for t in d.traits:
            controls = [a for a in d.arms if a.trait == t.id and a.role == "control"]
            if not controls:
                raise MissingControlError(
                    "arms.yaml", t.id, "role", f"trait {t.id!r} has no usual-care control arm"
                )
            if len(controls) > 1:
                raise ConflictingArgumentsError(
                    "arms.yaml",
                    t.id,
                    "role",
                    f"trait {t.id!r} has {len(controls)} control arms: {[a.id for a in controls]}",
                )
            n_exp = len(d.experimental_arms(t.id))
            if not bounds.experimental_min <= n_exp <= bounds.experimental_max:
                raise OutOfRangeError(
                    "arms.yaml",
                    t.id,
                    "role",
                    f"trait {t.id!r} has {n_exp} experimental arms; the registry allows {bounds.experimental_min} to {bounds.experimental_max}",
                )

    def shared_groups(self) -> None:
        d = self.d
        arm_ids = {a.id for a in d.arms}
        for g in d.shared_effect_groups:
            if len(g.arms) < 2:
                raise DesignSchemaError(
                    "shared_effect_groups.yaml",
                    g.id,
                    "arms",
                    "a shared-effect group needs at least two arms",
                )
            for aid in g.arms:
                if aid not in arm_ids:
                    raise UnknownReferenceError(
                        "shared_effect_groups.yaml",
                        g.id,
                        "arms",
                        f"arm {aid!r} is not in arms.yaml",
                    )
                if d.arm(aid).role != "experimental":
                    raise ConflictingArgumentsError(
                        "shared_effect_groups.yaml",
                        g.id,
                        "arms",
                        f"arm {aid!r} is a control; only experimental effects are shared",
                    )
            traits = [d.arm(aid).trait for aid in g.arms]
            if len(set(traits)) != len(traits):
                raise ConflictingArgumentsError(
                    "shared_effect_groups.yaml",
                    g.id,
                    "arms",
                    f"arms must be in different traits, got {traits}",
                )
            substance_sets = {
                tuple(sorted(c.substance for c in d.arm(aid).components)) for aid in g.arms
            }
            if len(substance_sets) != 1:
                raise ConflictingArgumentsError(
                    "shared_effect_groups.yaml",
                    g.id,
                    "arms",
                    f"arms must give the same substances, got {sorted(substance_sets)}",
                )
        seen: dict[str, str] = {}
        for g in d.shared_effect_groups:
            for aid in g.arms:
                if aid in seen:
                    raise ConflictingArgumentsError(
                        "shared_effect_groups.yaml",
                        g.id,
                        "arms",
                        f"arm {aid!r} is already in group {seen[aid]!r}",
                    )
                seen[aid] = g.id

    def findings(self) -> None:
        d = self.d
        arm_ids = {a.id for a in d.arms}
        for f in d.findings:
            for i, b in enumerate(f.blocks_dose):
                if b.arm not in arm_ids:
                    raise UnknownReferenceError(
                        "registry_findings.yaml",
                        f.id,
                        f"blocks_dose[{i}].arm",
                        f"arm {b.arm!r} is not in arms.yaml",
                    )
                for ag in b.age_groups:
                    self.age_group(
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

    def eligibility(self) -> None:
        e = self.d.eligibility
        for c in e.inclusion + e.exclusion:
            self.finding_ref(c.finding, "eligibility.yaml", c.id, "finding")
        for c in e.inclusion + e.exclusion:
            if c.field is None:
                continue
            fld = self.d.patient_fields.get(c.field)
            if fld is None:
                raise UnknownReferenceError(
                    "eligibility.yaml",
                    c.id,
                    "field",
                    f"field {c.field!r} is not in patient_record.yaml",
                )
            if fld.kind != "bool":
                raise ConflictingArgumentsError(
                    "eligibility.yaml",
                    c.id,
                    "field",
                    f"{c.field!r} is a {fld.kind} field; a criterion fact must be yes/no",
                )
            if (c in e.inclusion) != (c.field_value_required is not None):
                raise ConflictingArgumentsError(
                    "eligibility.yaml",
                    c.id,
                    "field_value_required",
                    "required for an inclusion fact, and only there (an exclusion fact excludes when true)",
                )
        for c in e.exclusion:
            if c.field is None:
                raise DesignSchemaError(
                    "eligibility.yaml",
                    c.id,
                    "field",
                    "every exclusion needs the patient record field that records it",
                )
        self.unit(e.fields.minimum_age.unit, "eligibility.yaml", "minimum_age", "unit", {"age"})
        self.finding_ref(e.fields.minimum_age.finding, "eligibility.yaml", "minimum_age", "finding")

    def patient_record(self) -> None:
        d, f = self.d, "patient_record.yaml"
        for name, fld in d.patient_fields.items():
            numeric = fld.kind in ("float", "int")
            if fld.unit is not None:
                self.unit(fld.unit, f, name, "unit")
            if numeric and fld.range is None:
                raise DesignSchemaError(
                    f, name, "range", "a numeric field needs its physiological range"
                )
            if fld.range is not None:
                if not numeric:
                    raise ConflictingArgumentsError(
                        f, name, "range", f"a {fld.kind} field has no range"
                    )
                if not fld.range[0] < fld.range[1]:
                    raise OutOfRangeError(
                        f,
                        name,
                        "range",
                        f"lower bound {fld.range[0]} must be below upper bound {fld.range[1]}",
                    )
            if (fld.kind == "category") != (fld.categories is not None):
                raise ConflictingArgumentsError(
                    f, name, "categories", "categories are given for, and only for, category fields"
                )
        for bid, b in d.biomarkers.items():
            fld = d.patient_fields.get(bid)
            if fld is None:
                raise UnknownReferenceError(
                    f,
                    bid,
                    None,
                    f"biomarker {bid!r} of traits.yaml has no field in the patient record",
                )
            if fld.unit is None or d.unit_id(fld.unit) != d.unit_id(b.unit):
                raise UnknownUnitError(
                    f,
                    bid,
                    "unit",
                    f"field unit {fld.unit!r} differs from the biomarker unit {b.unit!r} in traits.yaml",
                )
        for hid, h in d.hooks.items():
            if h.input_field is None:
                continue
            fld = d.patient_fields.get(h.input_field)
            if fld is None:
                raise UnknownReferenceError(
                    "traits.yaml",
                    hid,
                    "input_field",
                    f"field {h.input_field!r} is not in patient_record.yaml",
                )
            if fld.categories is None or set(fld.categories) != set(h.classes):
                raise ConflictingArgumentsError(
                    f,
                    h.input_field,
                    "categories",
                    f"{fld.categories} differ from the classes {list(h.classes)} of hook {hid!r} in traits.yaml",
                )

    def proposed(self) -> None:
        d = self.d
        for g in d.strata.age_groups:
            for name in ("min_corrected_gestational_age_weeks", "min_age_years", "max_age_years"):
                bound = getattr(g, name)
                if bound is not None:
                    self.finding_ref(bound.finding, "proposed/strata.yaml", g.id, f"{name}.finding")
                    if bound.value < 0:
                        raise OutOfRangeError(
                            "proposed/strata.yaml", g.id, f"{name}.value", "must be >= 0"
                        )
        # outcomes
        f = "proposed/outcomes.yaml"
        roles = Counter(o.role for o in d.outcomes.outcomes)
        if roles["primary"] != 1:
            raise ConflictingArgumentsError(
                f,
                None,
                "outcomes",
                f"exactly one primary outcome is needed, found {roles['primary']}",
            )
        for o in d.outcomes.outcomes:
            if o.type == "ordinal" and o.support_range is None:
                raise DesignSchemaError(
                    f, o.id, "support_range", "an ordinal outcome needs its support range"
                )
            if o.support_range is not None and not o.support_range[0] < o.support_range[1]:
                raise OutOfRangeError(f, o.id, "support_range", "lower end must be below upper end")
            if (
                o.death_value is not None
                and o.support_range is not None
                and not o.support_range[0] <= o.death_value <= o.support_range[1]
            ):
                raise OutOfRangeError(f, o.id, "death_value", "must lie in the support range")
            for sub in o.applies_to_substances:
                if sub not in d.substances:
                    raise UnknownReferenceError(
                        f,
                        o.id,
                        "applies_to_substances",
                        f"substance {sub!r} is not in substances.yaml",
                    )
        # priors
        f = "proposed/priors.yaml"
        for name in type(d.priors).model_fields:
            prior = getattr(d.priors, name)
            if not isinstance(prior, BaseModel):
                continue
            scale = getattr(prior, "scale", getattr(prior, "concentration", None))
            if scale is not None and not scale > 0:
                raise OutOfRangeError(f, name, "scale", f"must be > 0, got {scale}")
            for sc in getattr(prior, "sensitivity_scales", ()):
                if not sc > 0:
                    raise OutOfRangeError(f, name, "sensitivity_scales", f"must be > 0, got {sc}")
        # decisions
        f = "proposed/decisions.yaml"
        outcome_ids = {o.id for o in d.outcomes.outcomes}
        dec = d.decisions
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
                raise OutOfRangeError(
                    f, name, "min_complete", f"must be >= 1, got {rule.min_complete}"
                )
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
            raise OutOfRangeError(
                f, "calibration", "max_false_graduation_per_arm", "must be in (0, 1)"
            )
        # interims
        if d.interims.look_every_complete < 1:
            raise OutOfRangeError(
                "proposed/interims.yaml", None, "look_every_complete", "must be >= 1"
            )
        # allocation
        f, al = "proposed/allocation.yaml", d.allocation
        if al.burn_in_min_complete_per_arm < 0:
            raise OutOfRangeError(f, None, "burn_in_min_complete_per_arm", "must be >= 0")
        if al.rar_min_open_experimental < 2:
            raise OutOfRangeError(
                f, None, "rar_min_open_experimental", "Pr(best) needs at least 2 experimental arms"
            )
        if not 0 < al.damping_power <= 1:
            raise OutOfRangeError(
                f, None, "damping_power", f"must be in (0, 1], got {al.damping_power}"
            )
        max_arms = d.trial.arms_per_trait.experimental_max + 1
        if not 0 <= al.floor_per_open_arm < 1 or al.floor_per_open_arm * max_arms > 1:
            raise OutOfRangeError(
                f,
                None,
                "floor_per_open_arm",
                f"floor {al.floor_per_open_arm} x {max_arms} arms must not exceed 1",
            )
        # multi-trait policy
        f, mt = "proposed/multi_trait_policy.yaml", d.multi_trait_policy
        ids = set(d.trait_ids)
        for tid, w in mt.default.weights.items():
            if tid not in ids:
                raise UnknownReferenceError(
                    f, "default", f"weights.{tid}", f"trait {tid!r} is not in traits.yaml"
                )
            if not w > 0:
                raise OutOfRangeError(
                    f, "default", f"weights.{tid}", f"weights must be > 0, got {w}"
                )
        missing = ids - set(mt.default.weights)
        if missing:
            raise ConflictingArgumentsError(
                f, "default", "weights", f"no weight for trait(s) {sorted(missing)}"
            )
        if sorted(mt.sensitivity.order) != sorted(ids):
            raise ConflictingArgumentsError(
                f, "sensitivity", "order", "the priority order must list every trait exactly once"
            )
        for i, pair in enumerate(mt.incompatible_pairs):
            for tid in pair.traits:
                if tid not in ids:
                    raise UnknownReferenceError(
                        f, f"[{i}]", "traits", f"trait {tid!r} is not in traits.yaml"
                    )
            if pair.traits[0] == pair.traits[1]:
                raise ConflictingArgumentsError(
                    f, f"[{i}]", "traits", "a trait cannot be incompatible with itself"
                )

    def lifecycle(self) -> None:
        """proposed/lifecycle.yaml: a closed state machine that arms.yaml and the code can use."""
        d, f, lc = self.d, "proposed/lifecycle.yaml", self.d.lifecycle
        _unique(lc.states, f, "state")
        states = {st.id: st for st in lc.states}
        for sid, role in (
            ("planned", "experimental"),
            ("open", "control"),
            ("open", "experimental"),
        ):
            if sid not in states or role not in states[sid].roles:
                raise ConflictingArgumentsError(
                    f,
                    sid,
                    "roles",
                    f"state {sid!r} must exist and admit {role} arms (arms.yaml uses it)",
                )
        seen: set[tuple[str, str]] = set()
        for t in lc.transitions:
            entry = f"{t.from_} -> {t.to}"
            for fld, sid in (("from", t.from_), ("to", t.to)):
                if sid not in states:
                    raise UnknownReferenceError(
                        f,
                        entry,
                        fld,
                        f"state {sid!r} is not declared under states ({', '.join(states)})",
                    )
            if t.from_ == t.to:
                raise ConflictingArgumentsError(f, entry, "to", "a state cannot move to itself")
            if (t.from_, t.to) in seen:
                raise DuplicateIdError(f, entry, "to", "each move is declared once")
            seen.add((t.from_, t.to))
            if states[t.from_].terminal:
                raise ConflictingArgumentsError(
                    f, entry, "from", f"state {t.from_!r} is terminal: nothing may leave it"
                )
            role = "experimental" if t.by == "request" else "control"
            for fld, sid in (("from", t.from_), ("to", t.to)):
                if role not in states[sid].roles:
                    raise ConflictingArgumentsError(
                        f,
                        entry,
                        fld,
                        f"a {t.by} move concerns {role} arms but state {sid!r} admits only {list(states[sid].roles)}",
                    )
            if "date" not in t.requires:
                raise ConflictingArgumentsError(
                    f, entry, "requires", "every move is dated: list 'date'"
                )
        for st in lc.states:
            if not st.terminal and not any(t.from_ == st.id for t in lc.transitions):
                raise ConflictingArgumentsError(
                    f, st.id, "terminal", "a state with no way out must be marked terminal"
                )
        closed = lc.trait_rule.control_closed_state
        if closed not in states:
            raise UnknownReferenceError(
                f,
                "trait_rule",
                "control_closed_state",
                f"state {closed!r} is not declared under states",
            )
        if closed in ("open", "planned") or "control" not in states[closed].roles:
            raise ConflictingArgumentsError(
                f,
                "trait_rule",
                "control_closed_state",
                f"{closed!r} must be a closed state of usual care",
            )
        if ("open", closed) not in seen:
            raise ConflictingArgumentsError(
                f,
                "trait_rule",
                "control_closed_state",
                f"no transition open -> {closed} for the trait rule to use",
            )
        add = lc.adding_arms
        if add.initial_state not in states:
            raise UnknownReferenceError(
                f,
                "adding_arms",
                "initial_state",
                f"state {add.initial_state!r} is not declared under states",
            )
        if add.initial_state != "planned":
            raise ConflictingArgumentsError(
                f, "adding_arms", "initial_state", "an arm added by amendment starts 'planned'"
            )
        if "amendment" not in add.requires or "date" not in add.requires:
            raise ConflictingArgumentsError(
                f, "adding_arms", "requires", "adding an arm needs an amendment and a date"
            )
        if add.closed_trait == "reopen" and (closed, "open") not in seen:
            raise ConflictingArgumentsError(
                f,
                "adding_arms",
                "closed_trait",
                f"reopening a trait needs a transition {closed} -> open",
            )
        for a in d.arms:
            initial = a.availability.initial_state
            if a.role not in states[initial].roles:
                raise ConflictingArgumentsError(
                    "arms.yaml",
                    a.id,
                    "availability.initial_state",
                    f"a {a.role} arm cannot start {initial!r} (proposed/lifecycle.yaml)",
                )

    def estimands(self) -> None:
        """proposed/estimands.yaml: every outcome has one estimand; every reference exists."""
        d, f, est = self.d, "proposed/estimands.yaml", self.d.estimands
        fields = {"population": {"trait", "age_groups"}, "treatment": {"arm", "control"}}
        for name, allowed in fields.items():
            try:
                used = {p for _, p, _, _ in string.Formatter().parse(getattr(est, name).template)}
            except ValueError as exc:
                raise DesignSchemaError(f, name, "template", str(exc)) from None
            unknown = sorted(str(p) for p in used - allowed - {None})
            if unknown:
                raise UnknownReferenceError(
                    f, name, "template", f"placeholder(s) {unknown}; allowed: {sorted(allowed)}"
                )
        _unique(est.intercurrent_events, f, "intercurrent event")
        events = {e.id for e in est.intercurrent_events}

        def strategy(sid: str, entry: str, fld: str) -> None:
            if sid not in est.strategies:
                raise UnknownReferenceError(
                    f, entry, fld, f"strategy {sid!r} is not declared under strategies"
                )

        for e in est.intercurrent_events:
            strategy(e.strategy, e.id, "strategy")
        outcome_types = {o.id: o.type for o in d.outcomes.outcomes}
        measure = {"ordinal": "proportional_odds_ratio", "binary": "odds_ratio"}
        seen: set[str] = set()
        for e in est.estimands:
            if e.outcome not in outcome_types:
                raise UnknownReferenceError(
                    f,
                    e.outcome,
                    "outcome",
                    f"outcome {e.outcome!r} is not in proposed/outcomes.yaml",
                )
            if e.outcome in seen:
                raise DuplicateIdError(f, e.outcome, "outcome", "one estimand block per outcome")
            seen.add(e.outcome)
            if e.summary_measure != measure[outcome_types[e.outcome]]:
                raise ConflictingArgumentsError(
                    f,
                    e.outcome,
                    "summary_measure",
                    f"a {outcome_types[e.outcome]} outcome is summarised by "
                    f"{measure[outcome_types[e.outcome]]}, not {e.summary_measure}",
                )
            for ev, choice in e.strategies.items():
                if ev not in events:
                    raise UnknownReferenceError(
                        f,
                        e.outcome,
                        f"strategies.{ev}",
                        f"intercurrent event {ev!r} is not declared under intercurrent_events",
                    )
                strategy(choice.strategy, e.outcome, f"strategies.{ev}.strategy")
        missing = [o for o in outcome_types if o not in seen]
        if missing:
            raise ConflictingArgumentsError(
                f, None, "estimands", f"no estimand for outcome(s) {missing}"
            )

    def export_contract(self) -> None:
        """export_contract.yaml: every column the code reads, every outcome derivable."""
        d, f, c = self.d, "export_contract.yaml", self.d.export_contract
        for name, kind in EXPORT_META_FIELDS.items():
            meta = c.metadata.get(name)
            required = name != "created_by"
            if meta is None:
                if required:
                    raise DesignSchemaError(
                        f,
                        name,
                        None,
                        "metadata entry missing (palette_core.exports.contract reads it)",
                    )
                continue
            if meta.kind != kind:
                raise ConflictingArgumentsError(
                    f, name, "kind", f"must be {kind!r} (palette_core.exports.contract reads it so)"
                )
            if required and not meta.required:
                raise ConflictingArgumentsError(f, name, "required", "must be required")
        for name in c.metadata:
            if name not in EXPORT_META_FIELDS:
                raise UnknownReferenceError(
                    f,
                    name,
                    None,
                    f"no metadata entry {name!r} is known to palette_core.exports.contract "
                    f"({', '.join(EXPORT_META_FIELDS)})",
                )
        for name, fld in c.fields.items():
            if fld.unit is not None:
                self.unit(fld.unit, f, name, "unit")
            if fld.kind == "float" and fld.range is None:
                raise DesignSchemaError(f, name, "range", "a float field needs its plausible range")
            if fld.range is not None:
                if fld.kind != "float":
                    raise ConflictingArgumentsError(f, name, "range", f"a {fld.kind} has no range")
                if not fld.range[0] < fld.range[1]:
                    raise OutOfRangeError(
                        f,
                        name,
                        "range",
                        f"lower bound {fld.range[0]} must be below upper bound {fld.range[1]}",
                    )
            if fld.unit is not None and fld.kind != "float":
                raise ConflictingArgumentsError(f, name, "unit", f"a {fld.kind} has no unit")
            if fld.pattern is not None:
                if fld.kind != "str":
                    raise ConflictingArgumentsError(
                        f, name, "pattern", "only a str field has a pattern"
                    )
                try:
                    re.compile(fld.pattern)
                except re.error as exc:
                    raise DesignSchemaError(
                        f, name, "pattern", f"not a regular expression: {exc}"
                    ) from None
            given = (fld.categories is not None) + (fld.categories_from is not None)
            if fld.kind == "category" and given != 1:
                raise ConflictingArgumentsError(
                    f,
                    name,
                    "categories",
                    "a category field needs exactly one of categories and categories_from",
                )
            if fld.kind != "category" and given:
                raise ConflictingArgumentsError(
                    f, name, "categories", f"a {fld.kind} field has no categories"
                )
            if fld.categories is not None and len(set(fld.categories)) != len(fld.categories):
                raise DuplicateIdError(f, name, "categories", "a category is listed twice")
            if fld.unique and fld.kind != "str":
                raise ConflictingArgumentsError(f, name, "unique", "only a str field is unique")
            if fld.outcome is not None and fld.kind != "date":
                raise ConflictingArgumentsError(
                    f, name, "outcome", "only a date field records an outcome's event"
                )
            if (fld.organ_support is not None) != (fld.kind == "interval_list"):
                raise ConflictingArgumentsError(
                    f,
                    name,
                    "organ_support",
                    "every interval_list field, and only it, names its organ-support type",
                )
        for name, (kind, source, required) in EXPORT_CORE_FIELDS.items():
            fld = c.fields.get(name)
            if fld is None:
                raise DesignSchemaError(
                    f,
                    name,
                    None,
                    "field missing (palette_core.exports.contract and outcomes read it)",
                )
            if fld.kind != kind:
                raise ConflictingArgumentsError(
                    f, name, "kind", f"must be {kind!r} (palette_core reads it so)"
                )
            if source is not None and fld.categories_from != source:
                raise ConflictingArgumentsError(f, name, "categories_from", f"must be {source!r}")
            if required and not fld.required:
                raise ConflictingArgumentsError(f, name, "required", "must be required")
        if not c.fields["patient_id"].unique:
            raise ConflictingArgumentsError(
                f, "patient_id", "unique", "a patient is exported once: must be unique"
            )
        # outcomes: each binary outcome is dated by one field, each organ support recorded once
        binary = {o.id for o in d.outcomes.outcomes if o.type == "binary"}
        supports = {t for o in d.outcomes.outcomes for t in o.organ_support}
        dated: dict[str, str] = {}
        recorded: dict[str, str] = {}
        for name, fld in c.fields.items():
            if fld.outcome is not None:
                if fld.outcome not in binary:
                    raise UnknownReferenceError(
                        f,
                        name,
                        "outcome",
                        f"{fld.outcome!r} is not a binary outcome of proposed/outcomes.yaml",
                    )
                if fld.outcome in dated:
                    raise DuplicateIdError(
                        f, name, "outcome", f"{dated[fld.outcome]!r} already dates {fld.outcome!r}"
                    )
                dated[fld.outcome] = name
            if fld.organ_support is not None:
                if fld.organ_support not in supports:
                    raise UnknownReferenceError(
                        f,
                        name,
                        "organ_support",
                        f"{fld.organ_support!r} is not an organ support of proposed/outcomes.yaml",
                    )
                if fld.organ_support in recorded:
                    raise DuplicateIdError(
                        f,
                        name,
                        "organ_support",
                        f"{recorded[fld.organ_support]!r} already records {fld.organ_support!r}",
                    )
                recorded[fld.organ_support] = name
        undated = sorted(binary - set(dated))
        if undated:
            raise ConflictingArgumentsError(
                f, None, "fields", f"no date field records the binary outcome(s) {undated}"
            )
        unrecorded = sorted(supports - set(recorded))
        if unrecorded:
            raise ConflictingArgumentsError(
                f, None, "fields", f"no interval_list field records organ support(s) {unrecorded}"
            )

    def interim_analysis(self) -> None:
        """proposed/interim_analysis.yaml: follow-up, eras and withdrawal match the other files."""
        d, f, ia = self.d, "proposed/interim_analysis.yaml", self.d.interim_analysis
        window = ia.follow_up.window_days
        if window < 1:
            raise OutOfRangeError(f, "follow_up", "window_days", f"must be >= 1, got {window}")
        for o in d.outcomes.outcomes:
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
            raise OutOfRangeError(
                f, "eras", "length_days", f"must be >= 1, got {ia.eras.length_days}"
            )
        sens = ia.sensitivity
        repeated = sorted(a for a, n in Counter(sens.analyses).items() if n > 1)
        if repeated:
            raise DuplicateIdError(f, "sensitivity", "analyses", f"{repeated} listed twice")
        scope = d.export_contract.fields["withdrawal_scope"].categories or ()
        handled = [k for k in type(ia.withdrawal).model_fields if k != "rationale"]
        if sorted(scope) != sorted(handled):
            raise ConflictingArgumentsError(
                "export_contract.yaml",
                "withdrawal_scope",
                "categories",
                f"{list(scope)} differ from the withdrawal scopes {handled} handled in {f}",
            )


__all__ = [
    "Design",
    "DesignError",
    "load_design",
    "modified_design",
    "design_hash",
    "DEFAULT_DESIGN_DIR",
    "REPO_ROOT",
]
