"""What every design file shares: the frozen schema base, units, and the references checks use.

The schemas of the design files (one module per domain: :mod:`~palette_core.design.traits`,
:mod:`~palette_core.design.arms`, ...) check form only: types, required fields and unknown fields
(``extra="forbid"``, so a misspelt field is an error, not an ignored key). :func:`parse_model`
turns pydantic's complaint into a typed :class:`~palette_core.errors.DesignSchemaError` naming
the file, the entry and the field. Relations between files (does this arm's trait exist? is
this unit declared?) are checked afterwards, next to each schema, with the :class:`References`
that every file may cite: units, age groups and registry findings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeVar, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from palette_core.errors import (
    DesignSchemaError,
    DuplicateIdError,
    OutOfRangeError,
    UnknownReferenceError,
    UnknownUnitError,
)


class Frozen(BaseModel):
    """Base of every design schema: immutable, an unknown field is an error, and a number must
    be finite (``.nan`` and ``.inf`` are refused: a NaN dose would compare as neither too small
    nor too large and pass every range check)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )


Route = Literal["intravenous", "subcutaneous", "intramuscular", "enteral", "extracorporeal"]
Op = Literal["<", "<=", ">", ">="]
AgeGroupId = str
#: The ``status`` of every file in ``proposed/``: a choice the registry does not make.
Proposed = Literal["proposed"]

M = TypeVar("M", bound=BaseModel)


# ----------------------------------------------------------------------------- units
class Unit(Frozen):
    dimension: str
    factor: float
    aliases: tuple[str, ...] = ()


class UnitsFile(Frozen):
    units: dict[str, Unit]


def unit_lookup(units: Mapping[str, Unit]) -> dict[str, str]:
    """Every unit id and alias -> its unit id, checking that names are unique and factors > 0.

    Raises
    ------
    DuplicateIdError
        An alias names two units.
    OutOfRangeError
        A conversion factor is not positive.
    """
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


# ----------------------------------------------------------------------------- parsing
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


def parse_model(model: type[M], raw: Any, label: str) -> M:
    """Validate parsed YAML (or any mapping) against a schema, with a typed error on failure.

    Parameters
    ----------
    model
        The pydantic schema (a design file's, or any other file's that follows the same rules,
        such as the SOFA reference or a scenario).
    raw
        The parsed content; it must be a mapping.
    label
        The name the error gives the file (e.g. ``"arms.yaml"``).

    Returns
    -------
    The validated model.

    Raises
    ------
    DesignSchemaError
        Naming ``label``, the entry (an id where the entry has one) and the field of the most
        specific problem pydantic found.
    """
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


# ----------------------------------------------------------------------------- cross-file checks
def unique_ids(items: Collection[Any], file: str, what: str) -> None:
    """Raise :class:`DuplicateIdError` for the first ``id`` that repeats among ``items``."""
    counts = Counter(i.id for i in items)
    for ident, n in counts.items():
        if n > 1:
            raise DuplicateIdError(file, ident, "id", f"{what} id {ident!r} appears {n} times")


@dataclass(frozen=True)
class References:
    """What any design file may cite: units (with their aliases), age groups, registry findings.

    Built once by the loader from ``units.yaml``, ``proposed/strata.yaml`` and
    ``registry_findings.yaml``; the checks of every other file use it to resolve and check a
    citation, raising the typed error that names the citing file, entry and field.
    """

    units: Mapping[str, Unit]
    aliases: Mapping[str, str]
    age_groups: tuple[str, ...]
    findings: frozenset[str]

    @classmethod
    def build(
        cls, units: Mapping[str, Unit], age_groups: Collection[str], findings: Collection[str]
    ) -> References:
        """The references of a design (checks the units' aliases and factors: :func:`unit_lookup`)."""
        return cls(
            MappingProxyType(dict(units)),
            MappingProxyType(unit_lookup(units)),
            tuple(age_groups),
            frozenset(findings),
        )

    def unit_id(self, unit: str) -> str:
        """Canonical id of a unit or alias; ``KeyError`` if not declared."""
        return self.aliases[unit]

    def dimension(self, unit: str) -> str:
        """The dimension of a declared unit or alias."""
        return self.units[self.unit_id(unit)].dimension

    def to_unit(self, value: float, unit: str, target: str) -> float:
        """Convert ``value`` from ``unit`` to ``target`` (same dimension)."""
        u, t = self.units[self.unit_id(unit)], self.units[self.unit_id(target)]
        if u.dimension != t.dimension:
            raise ValueError(f"cannot convert {unit} ({u.dimension}) to {target} ({t.dimension})")
        return value * u.factor / t.factor

    def check_unit(
        self,
        unit: str,
        file: str,
        entry: str | None,
        fld: str,
        dimensions: Collection[str] | None = None,
    ) -> str:
        """The unit id of ``unit``, which must be declared (and of one of ``dimensions``)."""
        try:
            uid = self.unit_id(unit)
        except KeyError:
            raise UnknownUnitError(
                file, entry, fld, f"{unit!r} is not declared in units.yaml"
            ) from None
        dim = self.units[uid].dimension
        if dimensions is not None and dim not in dimensions:
            raise UnknownUnitError(
                file,
                entry,
                fld,
                f"{unit!r} is a {dim} unit; expected {' or '.join(sorted(dimensions))}",
            )
        return uid

    def check_age_group(self, ag: str, file: str, entry: str | None, fld: str) -> None:
        """``ag`` must be an age group of ``proposed/strata.yaml``."""
        if ag not in self.age_groups:
            raise UnknownReferenceError(
                file,
                entry,
                fld,
                f"age group {ag!r} not in proposed/strata.yaml ({', '.join(self.age_groups)})",
            )

    def check_finding(self, ref: str | None, file: str, entry: str | None, fld: str) -> None:
        """``ref``, when given, must be a finding of ``registry_findings.yaml``."""
        if ref is not None and ref not in self.findings:
            raise UnknownReferenceError(
                file, entry, fld, f"finding {ref!r} is not in registry_findings.yaml"
            )


__all__ = [
    "AgeGroupId",
    "Frozen",
    "Op",
    "Proposed",
    "References",
    "Route",
    "Unit",
    "UnitsFile",
    "parse_model",
    "unique_ids",
    "unit_lookup",
]
