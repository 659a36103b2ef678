"""Eligibility: age stratum, sepsis (Sepsis-3 for adults, Phoenix for children), exclusions.

Every step answers per patient with one of three values and a reason, vectorised over a
DataFrame of patient records (columns as in ``data/design/patient_record.yaml``):

* **age** (:func:`classify_age`): the age group of ``proposed/strata.yaml`` the patient falls in
  (``"adult"``, ``"child"``), ``"too_young"`` (corrected gestational age not above the
  registry's 37 weeks, RF-07), or ``"indeterminate"`` (a missing value leaves it open);
* **sepsis** (:func:`sepsis3`, :func:`phoenix_sepsis`): ``"yes"`` / ``"no"`` /
  ``"indeterminate"``. Scores are computed twice: from the recorded values (a missing input
  scores nothing, as in the Phoenix derivation) and with every missing input at its worst
  in-range value. A patient is septic when the first reaches the threshold, not septic when
  even the second does not, and indeterminate in between;
* **exclusions** (:func:`exclusions`): any exclusion fact true excludes, as does an inclusion
  fact (health insurance) that is not met; the criterion -> field mapping is data
  (``eligibility.yaml``); a missing one leaves
  the answer open.

:func:`assess_eligibility` combines them: a failed criterion makes the patient
``"ineligible"``, all criteria met ``"eligible"``, anything else ``"indeterminate"``; missing
data never silently becomes a negative answer. :func:`eligibility_flow` counts patients through
the steps for the book's flow figure.

The SOFA cut-offs (Vincent 1996) and the published sepsis thresholds live in
``data/reference/sofa.yaml``; the Phoenix score is computed by its authors' package
(``phoenix-sepsis``). The registry's "health insurance" inclusion criterion is the record field
``health_insurance`` (an inclusion fact in ``eligibility.yaml``), assessed with the exclusions.

Examples
--------
>>> import pandas as pd
>>> from palette_core import load_design
>>> design = load_design()
>>> p = pd.DataFrame({"age_years": [52.0], "suspected_infection": pd.array([True]),
...                   "pao2_fio2": [250.0], "platelets": [90.0]})
>>> sofa_scores(p, design)[["sofa_respiratory", "sofa_coagulation", "sofa_total"]].iloc[0].tolist()
[2, 2, 4]
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import phoenix
from pydantic import Field, model_validator

from palette_core.design.common import Frozen, parse_model
from palette_core.design.loader import Design, data_file
from palette_core.design.strata import Bound
from palette_core.errors import DesignSchemaError, UnknownReferenceError, UnknownUnitError
from palette_core.yamlio import read_yaml

# ----------------------------------------------------------------------------- vocabulary
ELIGIBLE, INELIGIBLE, INDETERMINATE = "eligible", "ineligible", "indeterminate"
YES, NO = "yes", "no"
TOO_YOUNG, OUT_OF_RANGE = "too_young", "out_of_range"
#: exclusions column: no exclusion applies / at least one applies / open
NO_EXCLUSION, EXCLUDED = "none", "excluded"

#: The SOFA reference, relative to the data root (:attr:`Design.data_root`).
SOFA_REFERENCE = "reference/sofa.yaml"
_SOFA_LABEL = SOFA_REFERENCE

#: Calendar definition (not a threshold): the Phoenix package takes age in months.
MONTHS_PER_YEAR = 12.0

#: Arguments of ``phoenix.phoenix``: (patient record field, worst value of the field's range).
#: ``age`` (months) is derived from ``age_years``.
PHOENIX_ARGUMENTS: Mapping[str, tuple[str, Literal["low", "high", "true"]]] = {
    "pf_ratio": ("pf_ratio", "low"),
    "sf_ratio": ("sf_ratio", "low"),
    "imv": ("imv", "true"),
    "other_respiratory_support": ("other_respiratory_support", "true"),
    "vasoactives": ("vasoactives", "high"),
    "lactate": ("lactate_mmol_l", "high"),
    "map": ("map_mmhg", "low"),
    "platelets": ("platelets", "low"),
    "inr": ("inr", "high"),
    "d_dimer": ("d_dimer_mg_l", "high"),
    "fibrinogen": ("fibrinogen_mg_dl", "low"),
    "gcs": ("gcs", "low"),
    "fixed_pupils": ("fixed_pupils", "true"),
}
#: Phoenix organ scores (package column suffix) and the package arguments that feed them.
PHOENIX_ORGANS: Mapping[str, tuple[str, ...]] = {
    "respiratory": ("pf_ratio", "sf_ratio", "imv", "other_respiratory_support"),
    "cardiovascular": ("vasoactives", "lactate", "map"),
    "coagulation": ("platelets", "inr", "d_dimer", "fibrinogen"),
    "neurologic": ("gcs", "fixed_pupils"),
}

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# ----------------------------------------------------------------------------- reference file
class SofaRule(Frozen):
    """``points`` when ``field op value`` holds (and ``and_true`` is true, where given)."""

    points: int = Field(ge=1, le=4)
    field: str
    unit: str | None = None
    op: Literal["<", "<=", ">", ">=", "true"]
    value: float | None = None
    and_true: str | None = None

    @model_validator(mode="after")
    def _value_matches_op(self) -> SofaRule:
        if (self.op == "true") != (self.value is None):
            raise ValueError("a comparison needs a value; op 'true' takes none")
        return self


class SofaComponent(Frozen):
    id: str
    label: str
    published: dict[int, str]
    rules: tuple[SofaRule, ...] = Field(min_length=1)

    @property
    def fields(self) -> tuple[str, ...]:
        """Record fields this component reads, in rule order, without repeats."""
        seen = [r.field for r in self.rules] + [r.and_true for r in self.rules if r.and_true]
        return tuple(dict.fromkeys(seen))


class SofaSource(Frozen):
    citation: str
    doi: str
    pmid: int | None = None
    table: str


class Reading(Frozen):
    id: str
    text: str


class Sepsis3Definition(Frozen):
    citation: str
    doi: str
    min_sofa_increase: int
    baseline_sofa_when_missing: int = Field(ge=0)
    baseline_note: str
    finding: str | None = None


class PhoenixDefinition(Frozen):
    citation: str
    doi: str
    min_score: int


class SepsisDefinitions(Frozen):
    sepsis3: Sepsis3Definition
    phoenix: PhoenixDefinition


class SofaReference(Frozen):
    """``data/reference/sofa.yaml``: SOFA rules (Vincent 1996) and the sepsis thresholds."""

    source: SofaSource
    readings: tuple[Reading, ...] = ()
    components: tuple[SofaComponent, ...] = Field(min_length=1)
    sepsis_definitions: SepsisDefinitions

    def component(self, component_id: str) -> SofaComponent:
        for c in self.components:
            if c.id == component_id:
                return c
        raise KeyError(f"unknown SOFA component {component_id!r}")


def load_sofa_reference(source: Design | str | Path) -> SofaReference:
    """Read and validate the SOFA reference file (cached per path).

    Parameters
    ----------
    source
        The design (the file is :data:`SOFA_REFERENCE` under its data root) or the file's path.

    Raises
    ------
    DesignSchemaError
        The file is missing or malformed (names the entry and field at fault).
    """
    return _load_sofa_reference(data_file(source, SOFA_REFERENCE))


@lru_cache(maxsize=8)
def _load_sofa_reference(path: Path) -> SofaReference:
    if not path.is_file():
        raise DesignSchemaError(str(path), None, None, "SOFA reference file not found")
    ref = parse_model(SofaReference, read_yaml(path, _SOFA_LABEL), _SOFA_LABEL)
    ids = [c.id for c in ref.components]
    if len(set(ids)) != len(ids):
        raise DesignSchemaError(_SOFA_LABEL, None, "components", "component ids repeat")
    return ref


def check_sofa_reference(reference: SofaReference, design: Design) -> None:
    """Check that every field the SOFA rules read is in the patient record, in the same unit.

    Raises
    ------
    UnknownReferenceError
        A rule names a field that ``patient_record.yaml`` does not declare.
    UnknownUnitError
        A rule's unit differs from the field's unit, or a yes/no field is used as a number.
    """
    for c in reference.components:
        for r in c.rules:
            for name in (r.field, r.and_true):
                if name is not None and name not in design.patient_fields:
                    raise UnknownReferenceError(
                        _SOFA_LABEL, c.id, "rules.field", f"{name!r} is not in patient_record.yaml"
                    )
            fld = design.patient_fields[r.field]
            if r.op == "true":
                if fld.kind != "bool":
                    raise UnknownUnitError(
                        _SOFA_LABEL,
                        c.id,
                        "rules.op",
                        f"op 'true' needs a yes/no field, {r.field!r} is {fld.kind}",
                    )
                continue
            if (
                fld.unit is None
                or r.unit is None
                or design.unit_id(fld.unit) != design.unit_id(r.unit)
            ):
                raise UnknownUnitError(
                    _SOFA_LABEL,
                    c.id,
                    "rules.unit",
                    f"{r.field!r}: rule unit {r.unit!r} differs from the record's {fld.unit!r}",
                )
            if r.and_true is not None and design.patient_fields[r.and_true].kind != "bool":
                raise UnknownUnitError(
                    _SOFA_LABEL, c.id, "rules.and_true", f"{r.and_true!r} is not a yes/no field"
                )


# ----------------------------------------------------------------------------- helpers
def _values(patients: pd.DataFrame, name: str) -> np.ndarray:
    """A column as float64 with NaN for missing (booleans as 1.0/0.0); absent column = missing."""
    if name not in patients.columns:
        return np.full(len(patients), np.nan)
    col = patients[name]
    try:
        return col.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        return pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _field_range(design: Design, name: str) -> tuple[float, float]:
    fld = design.patient_fields.get(name)
    if fld is None or fld.range is None:
        return (-np.inf, np.inf)
    return (float(fld.range[0]), float(fld.range[1]))


def _fmt(x: float) -> str:
    """A number with the fewest decimals (1 to 4) that show it exactly (17.99 stays 17.99)."""
    for digits in (1, 2, 3, 4):
        text = f"{x:.{digits}f}"
        if abs(float(text) - x) < 1e-9:
            return text
    return f"{x:.4f}"


def _span(lo: np.ndarray, hi: np.ndarray, i: int) -> str:
    if lo[i] == hi[i]:
        return _fmt(lo[i])
    return f"{_fmt(lo[i])}-{_fmt(hi[i])}"


def _missing_lists(missing: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[int, str]:
    """``{row: "a, b"}`` naming the fields flagged in ``missing`` for each row of ``rows``."""
    names = list(missing)
    if not names:
        return {}
    mat = np.column_stack([missing[n] for n in names])
    return {int(i): ", ".join(n for n, m in zip(names, mat[i], strict=True) if m) for i in rows}


def _join_flags(flags: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Per row, the names whose flag is set, comma-separated ("" when none); vectorised."""
    out = np.full(n, "", dtype=object)
    for name, flag in flags.items():
        out = np.where(flag, out + np.where(out == "", "", ","), out)
        out = np.where(flag, out + name, out)
    return out


# ----------------------------------------------------------------------------- age
_BOUND_TEXT = {
    "min_age_years": ("age", "y", True),
    "max_age_years": ("age", "y", False),
    "min_corrected_gestational_age_weeks": ("corrected GA", "wk", True),
}


def _bound_state(
    lo: np.ndarray, hi: np.ndarray, bound: Bound, lower: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(surely, possibly) satisfied for a quantity known to lie in [lo, hi]."""
    v = bound.value
    if lower:
        op = operator.ge if bound.inclusive else operator.gt
        return op(lo, v), op(hi, v)
    op = operator.le if bound.inclusive else operator.lt
    return op(hi, v), op(lo, v)


def _op_text(bound: Bound, lower: bool) -> str:
    return (">=" if bound.inclusive else ">") if lower else ("<=" if bound.inclusive else "<")


def classify_age(patients: pd.DataFrame, design: Design, with_reasons: bool = True) -> pd.DataFrame:
    """Age group of each patient, with the reason.

    The groups and their bounds come from ``design.strata.age_groups`` (adults ``age >= 18 y``;
    children ``age < 18 y`` and corrected gestational age ``> 37 weeks``, RF-07). Corrected
    gestational age is gestational age at birth (completed weeks ``gestational_age_at_birth_weeks``
    plus ``gestational_age_at_birth_days``) plus chronological age. Where the record gives the
    age in days (``age_days``, derived from the date of birth and the screening date by
    :func:`palette_core.screening.patients.validate_patients`, required below one year) it is
    counted exactly in days: 36+0 weeks at birth and 7 days old is 259 days, 37+0 weeks, not
    above 37. Otherwise the age in years is converted (``design.to_unit(age, "years",
    "weeks")``) and rounded to 1e-6 week. A missing number of days at birth is anywhere in
    0-6; a missing gestational age at birth anywhere in its contract range (22-44 weeks): the
    child bound is met when even the lowest gives more than 37, otherwise the group is open. A
    missing age is likewise anywhere in its range.

    Returns
    -------
    pandas.DataFrame
        Same index as ``patients``; ``age_group`` (a group id, ``"too_young"``,
        ``"out_of_range"`` or ``"indeterminate"``), ``age_reason`` (text) and
        ``age_candidates`` (the group ids still possible, comma-separated; used to pick the
        sepsis definition when the group is open).
    """
    n = len(patients)
    index = patients.index
    weeks_per_year = design.to_unit(1.0, "years", "weeks")
    age = _values(patients, "age_years")
    days = _values(patients, "age_days")
    ga = _values(patients, "gestational_age_at_birth_weeks")
    ga_days = _values(patients, "gestational_age_at_birth_days")
    age_rng, ga_rng = (
        _field_range(design, "age_years"),
        _field_range(design, "gestational_age_at_birth_weeks"),
    )
    age_lo = np.where(np.isnan(age), age_rng[0], age)
    age_hi = np.where(np.isnan(age), age_rng[1], age)
    # completed weeks at birth plus the days beyond them (0-6 when not given)
    ga_lo = np.where(np.isnan(ga), ga_rng[0], ga + np.where(np.isnan(ga_days), 0, ga_days) / 7)
    ga_hi = np.where(np.isnan(ga), ga_rng[1], ga + np.where(np.isnan(ga_days), 6, ga_days) / 7)
    cga_lo = np.round(ga_lo + age_lo * weeks_per_year, 6)
    cga_hi = np.round(ga_hi + age_hi * weeks_per_year, 6)
    exact = ~np.isnan(days)  # whole days: the comparison with a number of weeks is exact
    if exact.any():
        lo_d = np.round(ga_lo * 7) + np.where(exact, days, 0)
        hi_d = np.round(ga_hi * 7) + np.where(exact, days, 0)
        cga_lo = np.where(exact, lo_d / 7, cga_lo)
        cga_hi = np.where(exact, hi_d / 7, cga_hi)
    quantity = {"age": (age_lo, age_hi), "corrected GA": (cga_lo, cga_hi)}

    groups = design.strata.age_groups
    sure: dict[str, np.ndarray] = {}
    possible: dict[str, np.ndarray] = {}
    possible_by_age: dict[str, np.ndarray] = {}
    upper_ok: dict[str, np.ndarray] = {}
    bounds: dict[str, list[tuple[str, Bound, bool]]] = {}
    bound_states: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for g in groups:
        s_all, p_all = np.ones(n, bool), np.ones(n, bool)
        p_age, up = np.ones(n, bool), np.ones(n, bool)
        bounds[g.id] = []
        for attr, (qname, _unit, lower) in _BOUND_TEXT.items():
            bound = getattr(g, attr)
            if bound is None:
                continue
            lo, hi = quantity[qname]
            s, p = _bound_state(lo, hi, bound, lower)
            bound_states[(g.id, attr)] = (s, p)
            s_all &= s
            p_all &= p
            if qname == "age":
                p_age &= p
            if not lower:
                up &= p
            bounds[g.id].append((attr, bound, lower))
        sure[g.id], possible[g.id] = s_all, p_all
        possible_by_age[g.id], upper_ok[g.id] = p_age, up

    p_mat = np.column_stack([possible[g.id] for g in groups])
    s_mat = np.column_stack([sure[g.id] for g in groups])
    n_possible = p_mat.sum(axis=1)
    decided = (n_possible == 1) & (s_mat & p_mat).any(axis=1)
    ids = np.array([g.id for g in groups], dtype=object)
    label = np.full(n, INDETERMINATE, dtype=object)
    label[decided] = ids[np.argmax(s_mat, axis=1)][decided]
    none_possible = n_possible == 0
    young = np.zeros(n, bool)
    for g in groups:  # below a group's lower bound while within its upper bounds
        young |= upper_ok[g.id] & ~possible[g.id]
    label[none_possible & young] = TOO_YOUNG
    label[none_possible & ~young] = OUT_OF_RANGE

    # candidates: groups possible by chronological age alone (picks the sepsis definition)
    cand_mat = np.column_stack([possible_by_age[g.id] for g in groups])
    cand_mat = np.where(decided[:, None], s_mat, cand_mat)
    candidates = _join_flags({str(g): cand_mat[:, k] for k, g in enumerate(ids)}, n)

    # reasons
    reason = np.empty(n, dtype=object)
    missing_age, missing_ga = np.isnan(age), np.isnan(ga)
    for i in range(n if with_reasons else 0):
        lab = label[i]
        age_txt = _age_text(age[i], weeks_per_year, days[i])
        if lab in ids:
            g = next(x for x in groups if x.id == lab)
            extra = ""
            cga_b = g.min_corrected_gestational_age_weeks
            if cga_b is not None and age[i] < 1.0:
                op = _op_text(cga_b, True)
                tag = f", {cga_b.finding}" if cga_b.finding else ""
                if missing_ga[i]:
                    extra = (
                        f"; corrected GA {op} {cga_b.value:g} wk for any gestational age at "
                        f"birth >= {ga_rng[0]:g} wk{tag}"
                    )
                else:
                    cga = _ga_text(cga_lo[i], cga_hi[i], bool(exact[i]))
                    extra = f"; corrected GA {cga} {op} {cga_b.value:g} wk{tag}"
            reason[i] = f"age: {lab} ({age_txt}{extra})"
            continue
        if missing_age[i]:
            reason[i] = f"age: {INDETERMINATE}: age_years missing"
            continue
        parts = []
        for g in groups:
            if lab == TOO_YOUNG and not possible_by_age[g.id][i] and cand_mat[i].any():
                continue  # say why the group of the patient's age is closed, not the others
            if lab == INDETERMINATE and not possible[g.id][i]:
                continue
            for attr, bound, lower in bounds[g.id]:
                s, p = bound_states[(g.id, attr)]
                # too young / out of range: the bounds surely failed; open: the undecided ones
                show = (p[i] and not s[i]) if lab == INDETERMINATE else not p[i]
                if not show:
                    continue
                qname, unit, _ = _BOUND_TEXT[attr]
                lo, hi = quantity[qname]
                tag = f", {bound.finding}" if bound.finding else ""
                value = f"{_span(lo, hi, i)} {unit}"
                if qname == "corrected GA" and exact[i]:
                    value = _ga_text(lo[i], hi[i], True)
                parts.append(
                    f"{g.id}: {qname} {value}, needs "
                    f"{_op_text(bound, lower)} {bound.value:g} {unit}{tag}"
                )
        detail = "; ".join(dict.fromkeys(parts))
        if lab == INDETERMINATE:
            why = "gestational_age_at_birth_weeks missing" if missing_ga[i] else "bounds undecided"
            reason[i] = f"age: {INDETERMINATE}: {why} ({age_txt}; {detail})"
        else:
            reason[i] = f"age: {lab.replace('_', ' ')} ({detail})"
    return pd.DataFrame(
        {
            "age_group": pd.Series(label, index=index, dtype="string"),
            "age_reason": pd.Series(reason, index=index, dtype="string"),
            "age_candidates": pd.Series(candidates, index=index, dtype="string"),
        },
        index=index,
    )


def _ga_text(lo: float, hi: float, exact: bool) -> str:
    """A corrected gestational age: ``"36+6 wk"`` (weeks+days) when counted in days."""
    if not exact:
        return f"{_fmt(lo) if lo == hi else f'{_fmt(lo)}-{_fmt(hi)}'} wk"

    def wd(weeks: float) -> str:
        d = int(round(weeks * 7))
        return f"{d // 7}+{d % 7}"

    return f"{wd(lo)} wk" if lo == hi else f"{wd(lo)} to {wd(hi)} wk"


def _age_text(age_years: float, weeks_per_year: float, days: float = np.nan) -> str:
    if not np.isnan(days) and days < 7 * 8:
        return f"{int(days)} days"
    if not np.isnan(days) and age_years < 1.0:
        return f"{int(days) // 7} wk {int(days) % 7} d"
    if np.isnan(age_years):
        return "age missing"
    if age_years < 1.0:
        return f"{_fmt(age_years * weeks_per_year)} wk"
    return f"{_fmt(age_years)} y"


def age_group(patients: pd.DataFrame, design: Design) -> pd.Series:
    """``"adult"`` / ``"child"`` / ``"too_young"`` / ``"indeterminate"`` per patient.

    See :func:`classify_age` (which also gives the reasons).
    """
    return classify_age(patients, design)["age_group"].rename("age_group")


# ----------------------------------------------------------------------------- SOFA
def _rule_state(
    rule: SofaRule, cols: Mapping[str, np.ndarray], design: Design
) -> tuple[np.ndarray, np.ndarray]:
    """(surely, possibly) satisfied; a missing input is possible if its range allows it."""
    x = cols[rule.field]
    miss = np.isnan(x)
    if rule.op == "true":
        hit, reachable = x == 1.0, True
    else:
        hit = _OPS[rule.op](x, rule.value)
        lo, hi = _field_range(design, rule.field)
        reachable = bool(_OPS[rule.op](lo if rule.op in ("<", "<=") else hi, rule.value))
    sure, possible = hit & ~miss, hit | (miss & reachable)
    if rule.and_true is not None:
        y = cols[rule.and_true]
        sure = sure & (y == 1.0)
        possible = possible & ((y == 1.0) | np.isnan(y))
    return sure, possible


def sofa_scores(
    patients: pd.DataFrame, design: Design, reference: SofaReference | None = None
) -> pd.DataFrame:
    """SOFA component scores and total, from recorded values and at worst for missing ones.

    Each component is the highest points of its satisfied rules (``data/reference/sofa.yaml``,
    Vincent 1996). ``sofa_<component>`` and ``sofa_total`` count only recorded values (a rule
    with a missing input is not satisfied): the lowest score consistent with the record.
    ``sofa_<component>_max`` and ``sofa_total_max`` take every rule that a missing input could
    satisfy (within its contract range) as satisfied: the highest consistent score. They are
    equal when nothing that matters is missing; a component with all inputs missing spans 0-4.

    Returns
    -------
    pandas.DataFrame
        Same index as ``patients``; Int64 columns ``sofa_<id>``, ``sofa_<id>_max`` for each
        component, ``sofa_total``, ``sofa_total_max``.
    """
    ref = reference if reference is not None else load_sofa_reference(design)
    check_sofa_reference(ref, design)
    n = len(patients)
    fields = dict.fromkeys(f for c in ref.components for f in c.fields)
    cols = {f: _values(patients, f) for f in fields}
    out: dict[str, np.ndarray] = {}
    total_lo, total_hi = np.zeros(n, "int64"), np.zeros(n, "int64")
    for c in ref.components:
        lo, hi = np.zeros(n, "int64"), np.zeros(n, "int64")
        for r in c.rules:
            s, p = _rule_state(r, cols, design)
            lo = np.where(s, np.maximum(lo, r.points), lo)
            hi = np.where(p, np.maximum(hi, r.points), hi)
        out[f"sofa_{c.id}"], out[f"sofa_{c.id}_max"] = lo, hi
        total_lo += lo
        total_hi += hi
    out["sofa_total"], out["sofa_total_max"] = total_lo, total_hi
    return pd.DataFrame(
        {k: pd.Series(v, index=patients.index, dtype="Int64") for k, v in out.items()},
        index=patients.index,
    )


def _sofa_missing(
    patients: pd.DataFrame, scores: pd.DataFrame, ref: SofaReference
) -> dict[str, np.ndarray]:
    """Per field: missing in a component whose score is not determined."""
    missing: dict[str, np.ndarray] = {}
    for c in ref.components:
        open_ = (scores[f"sofa_{c.id}"] != scores[f"sofa_{c.id}_max"]).to_numpy(dtype=bool)
        for f in c.fields:
            m = open_ & np.isnan(_values(patients, f))
            missing[f] = missing.get(f, np.zeros(len(patients), bool)) | m
    return missing


def _infection(patients: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    x = _values(patients, "suspected_infection")
    return x == 1.0, x == 0.0


def sepsis3(
    patients: pd.DataFrame,
    design: Design,
    reference: SofaReference | None = None,
    with_reasons: bool = True,
) -> pd.DataFrame:
    """Sepsis-3 (adults): suspected infection and SOFA - baseline >= 2 (RF-08 reading).

    ``baseline_sofa`` missing counts as 0 (Singer 2016; the reason says so and cites RF-08).
    The answer is ``"yes"`` when infection is suspected and the SOFA increase from recorded
    values reaches the threshold; ``"no"`` when infection is not suspected or the highest
    SOFA consistent with the missing components does not reach it; otherwise
    ``"indeterminate"``, naming the missing fields.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`sofa_scores` plus ``baseline_sofa_used``, ``sofa_increase``,
        ``sofa_increase_max`` (Int64), ``sepsis3`` and ``sepsis3_reason`` (string).
    """
    ref = reference if reference is not None else load_sofa_reference(design)
    d = ref.sepsis_definitions.sepsis3
    scores = sofa_scores(patients, design, ref)
    n = len(patients)
    base = _values(patients, "baseline_sofa")
    assumed = np.isnan(base)
    base_used = np.where(assumed, d.baseline_sofa_when_missing, base).astype("int64")
    lo = scores["sofa_total"].to_numpy(dtype="int64")
    hi = scores["sofa_total_max"].to_numpy(dtype="int64")
    inc_lo, inc_hi = lo - base_used, hi - base_used
    inf_yes, inf_no = _infection(patients)
    thr = d.min_sofa_increase
    answer = np.full(n, INDETERMINATE, dtype=object)
    answer[inf_yes & (inc_lo >= thr)] = YES
    answer[inf_no | (inc_hi < thr)] = NO

    missing = _sofa_missing(patients, scores, ref)
    missing_txt = _missing_lists(missing, np.flatnonzero(lo != hi) if with_reasons else [])
    tag = f", {d.finding}" if d.finding else ""
    reason = np.empty(n, dtype=object)
    for i in range(n if with_reasons else 0):
        sofa = (
            f"SOFA {lo[i]}"
            if lo[i] == hi[i]
            else f"SOFA {lo[i]}-{hi[i]} (missing: {missing_txt[i]})"
        )
        if assumed[i]:
            baseline = f"baseline {base_used[i]} (not recorded, assumed{tag})"
        else:
            baseline = f"baseline {base_used[i]}"
        inc = f"{inc_lo[i]}" if inc_lo[i] == inc_hi[i] else f"{inc_lo[i]} to {inc_hi[i]}"
        calc = f"{sofa} - {baseline} = {inc}"
        reason[i] = _sepsis_reason(
            "sepsis-3", answer[i], inf_yes[i], inf_no[i], calc, inc_lo[i], inc_hi[i], thr
        )
    out = scores.copy()
    out["baseline_sofa_used"] = pd.Series(base_used, index=patients.index, dtype="Int64")
    out["sofa_increase"] = pd.Series(inc_lo, index=patients.index, dtype="Int64")
    out["sofa_increase_max"] = pd.Series(inc_hi, index=patients.index, dtype="Int64")
    out["sepsis3"] = pd.Series(answer, index=patients.index, dtype="string")
    out["sepsis3_reason"] = pd.Series(reason, index=patients.index, dtype="string")
    return out


def _sepsis_reason(
    label: str, answer: str, inf_yes: bool, inf_no: bool, calc: str, lo: int, hi: int, thr: int
) -> str:
    """The reason text of a sepsis decision (Sepsis-3 or Phoenix) for one patient."""
    if answer == YES:
        return f"{label}: suspected infection; {calc} >= {thr}"
    if inf_no:
        return f"{label}: no suspected infection"
    if answer == NO:
        return f"{label}: {calc} < {thr}"
    open_ = [] if inf_yes else ["suspected_infection missing"]
    open_.append(f"{calc}, threshold >= {thr} undecided" if lo < thr <= hi else f"{calc} >= {thr}")
    return f"{label}: {INDETERMINATE}: " + "; ".join(open_)


# ----------------------------------------------------------------------------- Phoenix
def phoenix_arguments(
    patients: pd.DataFrame, design: Design, worst_case: bool = False
) -> dict[str, np.ndarray]:
    """Map patient record fields onto the arguments of ``phoenix.phoenix``.

    Booleans become 1.0/0.0, missing values NaN (the package scores NaN as normal), age in
    months is ``age_years * 12`` (rounded to 1e-9 month so that exact band edges survive the
    round trip from months). Platelets in 10^9/L equal the package's 1,000/uL.

    With ``worst_case=True`` every missing input takes the worst value of its contract range
    (``PHOENIX_ARGUMENTS``): the package then returns the highest score consistent with the
    record. The oxygenation ratio is missing only when both PaO2/FiO2 and SpO2/FiO2 are (either
    one assesses oxygenation; SpO2/FiO2 is absent by design when SpO2 > 97 %), and a missing age
    is taken as the top of the child range, where the MAP cut-offs are highest.
    """
    args: dict[str, np.ndarray] = {}
    no_oxygenation = np.isnan(_values(patients, "pf_ratio")) & np.isnan(
        _values(patients, "sf_ratio")
    )
    for arg, (name, worst) in PHOENIX_ARGUMENTS.items():
        x = _values(patients, name)
        if worst_case:
            lo, hi = _field_range(design, name)
            fill = {"low": lo, "high": hi, "true": 1.0}[worst]
            open_ = no_oxygenation if arg in ("pf_ratio", "sf_ratio") else np.isnan(x)
            x = np.where(open_, fill, x)
        args[arg] = x
    age = np.round(_values(patients, "age_years") * MONTHS_PER_YEAR, 9)
    if worst_case:
        child = next(
            (g for g in design.strata.age_groups if g.sepsis_definition == "phoenix"), None
        )
        top = (
            child.max_age_years.value
            if child is not None and child.max_age_years is not None
            else _field_range(design, "age_years")[1]
        )
        age = np.where(np.isnan(age), top * MONTHS_PER_YEAR, age)
    args["age"] = age
    return args


def _phoenix_call(args: Mapping[str, np.ndarray], n: int) -> pd.DataFrame:
    if n == 0:
        cols = [f"phoenix_{o}_score" for o in PHOENIX_ORGANS] + ["phoenix_sepsis_score"]
        return pd.DataFrame({c: np.zeros(0, "int64") for c in cols})
    return phoenix.phoenix(**args)


def phoenix_scores(patients: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Phoenix organ scores and total from the Phoenix authors' package, low and high.

    ``phoenix_<organ>`` and ``phoenix_score`` are the package's scores of the recorded values
    (missing inputs score 0, as in the derivation); ``phoenix_<organ>_max`` and
    ``phoenix_score_max`` are its scores with missing inputs at their worst
    (:func:`phoenix_arguments` with ``worst_case=True``).

    Returns
    -------
    pandas.DataFrame
        Same index as ``patients``; Int64 columns ``phoenix_respiratory``,
        ``phoenix_cardiovascular``, ``phoenix_coagulation``, ``phoenix_neurologic``,
        ``phoenix_score`` and each with ``_max``.
    """
    n = len(patients)
    low = _phoenix_call(phoenix_arguments(patients, design), n)
    high = _phoenix_call(phoenix_arguments(patients, design, worst_case=True), n)
    out: dict[str, pd.Series] = {}
    for suffix, res in (("", low), ("_max", high)):
        for organ in PHOENIX_ORGANS:
            out[f"phoenix_{organ}{suffix}"] = pd.Series(
                res[f"phoenix_{organ}_score"].to_numpy(dtype="int64"),
                index=patients.index,
                dtype="Int64",
            )
        out[f"phoenix_score{suffix}"] = pd.Series(
            res["phoenix_sepsis_score"].to_numpy(dtype="int64"), index=patients.index, dtype="Int64"
        )
    order = [f"phoenix_{o}" for o in PHOENIX_ORGANS] + ["phoenix_score"]
    return pd.DataFrame(
        {c: out[c] for c in order + [f"{c}_max" for c in order]}, index=patients.index
    )


def phoenix_sepsis(
    patients: pd.DataFrame,
    design: Design,
    reference: SofaReference | None = None,
    with_reasons: bool = True,
) -> pd.DataFrame:
    """Phoenix sepsis (children): suspected infection and Phoenix Sepsis Score >= 2.

    ``"yes"`` when infection is suspected and the score from recorded values reaches the
    threshold (whatever else is missing); ``"no"`` when infection is not suspected or even the
    highest score consistent with the missing inputs stays below it; else ``"indeterminate"``.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`phoenix_scores` plus ``phoenix_sepsis`` and ``phoenix_reason``.
    """
    ref = reference if reference is not None else load_sofa_reference(design)
    thr = ref.sepsis_definitions.phoenix.min_score
    scores = phoenix_scores(patients, design)
    n = len(patients)
    lo = scores["phoenix_score"].to_numpy(dtype="int64")
    hi = scores["phoenix_score_max"].to_numpy(dtype="int64")
    inf_yes, inf_no = _infection(patients)
    answer = np.full(n, INDETERMINATE, dtype=object)
    answer[inf_yes & (lo >= thr)] = YES
    answer[inf_no | (hi < thr)] = NO

    missing: dict[str, np.ndarray] = {}
    oxy_missing = np.isnan(_values(patients, "pf_ratio")) & np.isnan(_values(patients, "sf_ratio"))
    for organ, arguments in PHOENIX_ORGANS.items():
        open_ = (scores[f"phoenix_{organ}"] != scores[f"phoenix_{organ}_max"]).to_numpy(dtype=bool)
        for arg in arguments:
            name = PHOENIX_ARGUMENTS[arg][0]
            if arg == "pf_ratio":
                missing["pf_ratio/sf_ratio"] = open_ & oxy_missing
            elif arg != "sf_ratio":
                missing[name] = open_ & np.isnan(_values(patients, name))
        if organ == "cardiovascular":  # the MAP cut-offs depend on age
            missing["age_years"] = open_ & np.isnan(_values(patients, "age_years"))
    missing_txt = _missing_lists(missing, np.flatnonzero(lo != hi) if with_reasons else [])
    organs = {o: scores[f"phoenix_{o}"].to_numpy(dtype="int64") for o in PHOENIX_ORGANS}
    reason = np.empty(n, dtype=object)
    for i in range(n if with_reasons else 0):
        parts = ", ".join(f"{o} {organs[o][i]}" for o in PHOENIX_ORGANS)
        score = (
            f"Phoenix {lo[i]} ({parts})"
            if lo[i] == hi[i]
            else f"Phoenix {lo[i]}-{hi[i]} ({parts}; missing: {missing_txt[i]})"
        )
        reason[i] = _sepsis_reason(
            "phoenix", answer[i], inf_yes[i], inf_no[i], score, lo[i], hi[i], thr
        )
    out = scores.copy()
    out["phoenix_sepsis"] = pd.Series(answer, index=patients.index, dtype="string")
    out["phoenix_reason"] = pd.Series(reason, index=patients.index, dtype="string")
    return out


# ----------------------------------------------------------------------------- exclusions
def exclusion_fields(design: Design) -> dict[str, str]:
    """Criterion id -> patient record field, for every exclusion of ``eligibility.yaml``.

    The mapping is data (each criterion's ``field``), checked when the design is loaded.
    """
    return {c.id: c.field for c in design.eligibility.exclusion if c.field is not None}


def record_facts(design: Design) -> dict[str, tuple[str, bool]]:
    """Criterion id -> (record field, value that makes the patient ineligible).

    Exclusions are ineligible when their fact is true; an inclusion fact (e.g. health
    insurance) when it differs from its ``field_value_required``.
    """
    facts = {c.id: (c.field, True) for c in design.eligibility.exclusion if c.field is not None}
    for c in design.eligibility.inclusion:
        if c.field is not None and c.field_value_required is not None:
            facts[c.id] = (c.field, not c.field_value_required)
    return facts


def exclusions(patients: pd.DataFrame, design: Design, with_reasons: bool = True) -> pd.DataFrame:
    """Exclusion criteria: any fact true excludes; a missing fact leaves the answer open.

    Every exclusion applies to every patient (pregnancy included: the registry does not
    restrict by sex and nothing is inferred from it).

    Returns
    -------
    pandas.DataFrame
        Same index; ``exclusions`` (``"none"`` / ``"excluded"`` / ``"indeterminate"``),
        ``excluded_by`` (criterion ids met, comma-separated), ``exclusion_reason``.
    """
    n = len(patients)
    facts = record_facts(design)
    mapping = {c: f for c, (f, _) in facts.items()}
    true = {c: _values(patients, f) == (1.0 if bad else 0.0) for c, (f, bad) in facts.items()}
    miss = {c: np.isnan(_values(patients, f)) for c, f in mapping.items()}
    any_true = np.zeros(n, bool)
    any_miss = np.zeros(n, bool)
    for c in mapping:
        any_true |= true[c]
        any_miss |= miss[c]
    status = np.full(n, INDETERMINATE, dtype=object)
    status[any_true] = EXCLUDED
    status[~any_true & ~any_miss] = NO_EXCLUSION
    by = _join_flags(true, n)
    reason = np.empty(n, dtype=object)
    for i in range(n if with_reasons else 0):
        met = [c for c in mapping if true[c][i]]
        open_ = [mapping[c] for c in mapping if miss[c][i]]
        parts = [f"{c} ({mapping[c]} = {str(facts[c][1]).lower()})" for c in met]
        if open_:
            parts.append(f"undetermined ({', '.join(open_)} missing)")
        reason[i] = "exclusions: " + ("; ".join(parts) if parts else NO_EXCLUSION)
    return pd.DataFrame(
        {
            "exclusions": pd.Series(status, index=patients.index, dtype="string"),
            "excluded_by": pd.Series(by, index=patients.index, dtype="string"),
            "exclusion_reason": pd.Series(reason, index=patients.index, dtype="string"),
        },
        index=patients.index,
    )


# ----------------------------------------------------------------------------- combined
def assess_eligibility(
    patients: pd.DataFrame,
    design: Design,
    reference: SofaReference | None = None,
    with_reasons: bool = True,
) -> pd.DataFrame:
    """Eligibility of each patient: age, sepsis by the age group's definition, exclusions.

    Total: every row gets exactly one of ``"eligible"``, ``"ineligible"``,
    ``"indeterminate"``. Ineligible when a criterion surely fails (too young; not septic; an
    exclusion met); eligible when all surely pass; indeterminate otherwise. When the age
    group is open, sepsis is judged by every definition still possible and is indeterminate
    unless they agree.

    Parameters
    ----------
    patients
        One row per patient, columns of ``patient_record.yaml`` (typed as after
        validation); an absent column counts as missing for every patient.
    design
        The loaded design (age groups, exclusion criteria, record contract).
    reference
        The SOFA reference (default: ``reference/sofa.yaml`` under the design's data root).
    with_reasons
        Build the ``eligibility_reasons`` text (set False in bulk simulation; the column is
        then <NA>).

    Returns
    -------
    pandas.DataFrame
        Same index and row count as ``patients``: ``age_group``, ``sofa_total``,
        ``sofa_total_max``, ``sofa_increase`` (adults), ``phoenix_score``,
        ``phoenix_score_max`` (children) (Int64, <NA> where the definition does not apply),
        ``sepsis`` (yes/no/indeterminate), ``exclusions`` (none/excluded/indeterminate),
        ``eligible`` and ``eligibility_reasons``.

    Examples
    --------
    >>> import pandas as pd
    >>> from palette_core import load_design
    >>> design = load_design()
    >>> p = pd.DataFrame({"age_years": [52.0], "suspected_infection": pd.array([True]),
    ...     "pao2_fio2": [250.0], "respiratory_support": pd.array([False]),
    ...     "platelets": [90.0], "bilirubin_mg_dl": [0.5], "map_mmhg": [80.0],
    ...     "dopamine_ug_kg_min": [0.0], "dobutamine": pd.array([False]),
    ...     "epinephrine_ug_kg_min": [0.0], "norepinephrine_ug_kg_min": [0.0],
    ...     "gcs": pd.array([15], dtype="Int64"), "creatinine_mg_dl": [0.8],
    ...     "urine_output_ml_24h": [1500.0], "consent_refused": pd.array([False]),
    ...     "pregnant": pd.array([False]), "breastfeeding": pd.array([False]),
    ...     "acute_coronary_3m": pd.array([False]), "stroke_3m": pd.array([False]),
    ...     "physician_veto": pd.array([False])})
    >>> r = assess_eligibility(p, design).iloc[0]
    >>> r["eligible"]
    'eligible'
    >>> print(r["eligibility_reasons"])
    age: adult (52.0 y); sepsis-3: suspected infection; SOFA 4 - baseline 0 (not recorded, assumed, RF-08) = 4 >= 2; exclusions: none
    """
    ref = reference if reference is not None else load_sofa_reference(design)
    n = len(patients)
    index = patients.index
    age = classify_age(patients, design, with_reasons)
    s3 = sepsis3(patients, design, ref, with_reasons)
    ph = phoenix_sepsis(patients, design, ref, with_reasons)
    exc = exclusions(patients, design, with_reasons)

    groups = {g.id: g for g in design.strata.age_groups}
    cands = "," + age["age_candidates"].fillna("") + ","
    uses = {d: np.zeros(n, bool) for d in ("sepsis3", "phoenix")}
    for g in groups.values():
        has = cands.str.contains(f",{g.id},", regex=False).to_numpy(dtype=bool, na_value=False)
        uses[g.sepsis_definition] |= has
    ans = {
        "sepsis3": s3["sepsis3"].to_numpy(dtype=object),
        "phoenix": ph["phoenix_sepsis"].to_numpy(dtype=object),
    }
    why = {
        "sepsis3": s3["sepsis3_reason"].to_numpy(dtype=object),
        "phoenix": ph["phoenix_reason"].to_numpy(dtype=object),
    }
    both = uses["sepsis3"] & uses["phoenix"]
    sepsis = np.where(uses["sepsis3"], ans["sepsis3"], ans["phoenix"]).astype(object)
    sepsis[both & (ans["sepsis3"] != ans["phoenix"])] = INDETERMINATE
    sepsis[~uses["sepsis3"] & ~uses["phoenix"]] = INDETERMINATE

    group = age["age_group"].to_numpy(dtype=object)
    exc_status = exc["exclusions"].to_numpy(dtype=object)
    age_ok = np.isin(group, list(groups))
    fail = np.isin(group, [TOO_YOUNG, OUT_OF_RANGE]) | (sepsis == NO) | (exc_status == EXCLUDED)
    ok = age_ok & (sepsis == YES) & (exc_status == NO_EXCLUSION)
    eligible = np.full(n, INDETERMINATE, dtype=object)
    eligible[ok] = ELIGIBLE
    eligible[fail] = INELIGIBLE

    if with_reasons:
        age_r = age["age_reason"].to_numpy(dtype=object)
        exc_r = exc["exclusion_reason"].to_numpy(dtype=object)
        reasons = np.empty(n, dtype=object)
        for i in range(n):
            sep = [why[d][i] for d in ("sepsis3", "phoenix") if uses[d][i]]
            if not sep:
                sep = ["sepsis: indeterminate (no sepsis definition applies)"]
            reasons[i] = "; ".join([age_r[i], *sep, exc_r[i]])
        reason_col = pd.Series(reasons, index=index, dtype="string")
    else:
        reason_col = pd.Series(pd.NA, index=index, dtype="string")

    def only(col: pd.Series, mask: np.ndarray) -> pd.Series:
        out = col.copy()
        out[~mask] = pd.NA
        return out

    return pd.DataFrame(
        {
            "age_group": age["age_group"],
            "sofa_total": only(s3["sofa_total"], uses["sepsis3"]),
            "sofa_total_max": only(s3["sofa_total_max"], uses["sepsis3"]),
            "sofa_increase": only(s3["sofa_increase"], uses["sepsis3"]),
            "phoenix_score": only(ph["phoenix_score"], uses["phoenix"]),
            "phoenix_score_max": only(ph["phoenix_score_max"], uses["phoenix"]),
            "sepsis": pd.Series(sepsis, index=index, dtype="string"),
            "exclusions": exc["exclusions"],
            "eligible": pd.Series(eligible, index=index, dtype="string"),
            "eligibility_reasons": reason_col,
        },
        index=index,
    )


#: Steps of the eligibility flow, in order: (step id, label).
FLOW_STEPS: tuple[tuple[str, str], ...] = (
    ("screened", "Screened"),
    ("age", "Within an age group (strata.yaml)"),
    ("sepsis", "Sepsis by the age group's definition"),
    ("exclusions", "No exclusion criterion"),
    ("eligible", "Eligible"),
)


def eligibility_flow(result: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Patients through the eligibility steps, for the book's flow figure.

    A patient reaches a step when every earlier step passed. At each step, of those reaching
    it: ``n`` pass, ``n_failed`` surely fail, ``n_indeterminate`` cannot be decided (and leave
    the flow there, even if a later criterion would fail). The ``eligible`` row's ``n`` equals
    the number of ``eligible == "eligible"`` rows of ``result``.

    Parameters
    ----------
    result
        The output of :func:`assess_eligibility`.
    by
        Optional column of ``result`` (e.g. ``"age_group"``) to count within each of its values.

    Returns
    -------
    pandas.DataFrame
        Long table: ``step``, ``label``, ``order``, ``n_reached``, ``n``, ``n_failed``,
        ``n_indeterminate`` (and the ``by`` column first, when given).
    """
    if by is not None:
        parts = [
            eligibility_flow(sub).assign(**{by: key})
            for key, sub in result.groupby(result[by].astype("object").fillna("<NA>"), sort=True)
        ]
        if not parts:
            return eligibility_flow(result).iloc[0:0].assign(**{by: pd.Series(dtype="object")})
        out = pd.concat(parts, ignore_index=True)
        return out[[by, *[c for c in out.columns if c != by]]]
    group = result["age_group"].astype("object").to_numpy()
    n = len(result)
    passed = {
        "screened": np.ones(n, bool),
        "age": ~np.isin(group, [TOO_YOUNG, OUT_OF_RANGE, INDETERMINATE]) & pd.notna(group),
        "sepsis": (result["sepsis"] == YES).to_numpy(dtype=bool, na_value=False),
        "exclusions": (result["exclusions"] == NO_EXCLUSION).to_numpy(dtype=bool, na_value=False),
        "eligible": np.ones(n, bool),
    }
    failed = {
        "screened": np.zeros(n, bool),
        "age": np.isin(group, [TOO_YOUNG, OUT_OF_RANGE]),
        "sepsis": (result["sepsis"] == NO).to_numpy(dtype=bool, na_value=False),
        "exclusions": (result["exclusions"] == EXCLUDED).to_numpy(dtype=bool, na_value=False),
        "eligible": np.zeros(n, bool),
    }
    rows = []
    reached = np.ones(n, bool)
    for order, (step, label) in enumerate(FLOW_STEPS):
        p, f = reached & passed[step], reached & failed[step]
        rows.append(
            {
                "step": step,
                "label": label,
                "order": order,
                "n_reached": int(reached.sum()),
                "n": int(p.sum()),
                "n_failed": int(f.sum()),
                "n_indeterminate": int((reached & ~passed[step] & ~failed[step]).sum()),
            }
        )
        reached = p
    return pd.DataFrame(rows)
