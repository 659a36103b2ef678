"""Treatable traits: classify every patient, then assign one trait under the multi-trait policy.

Trait rules are data (``data/design/traits.yaml``): comparisons of a biomarker with a threshold
in a declared unit, combined with ``all`` / ``any``, and named hooks for classes that come from an
algorithm or from the site. :func:`classify_traits` evaluates them with three-valued (Kleene)
logic, so that a missing biomarker makes a trait **indeterminate**, never negative, unless the
fields present already decide it:

=======  =======  =======  =======     =======  =======  =======  =======
AND      true     unknown  false       OR       true     unknown  false
=======  =======  =======  =======     =======  =======  =======  =======
true     true     unknown  false       true     true     true     true
unknown  unknown  unknown  false       unknown  true     unknown  unknown
false    false    false    false       false    true     unknown  false
=======  =======  =======  =======     =======  =======  =======  =======

Coding false, unknown, true as 0, 1, 2 makes AND the minimum and OR the maximum, which is how
the rules are evaluated: column by column over the whole table, never row by row.

:func:`assign_trait` applies ``design.multi_trait_policy``: by default a weighted random choice
among the positive traits, drawn from a generator seeded by (seed, patient id) only, so that a
patient gets the same trait alone or in any batch, and the draw is logged; as a sensitivity
analysis, a priority order. All positive traits stay on the record.

Examples
--------
>>> import pandas as pd
>>> from palette_core.design.loader import load_design
>>> design = load_design()
>>> p = pd.DataFrame({"inr": [1.40], "platelets": [120.0], "platelet_fall_24h": [float("nan")]})
>>> out = classify_traits(p, design, "adult")
>>> out.loc[0, "trait_hypercoagulation"]
'positive'
>>> out.loc[0, "trait_hypercoagulation_reason"]
'inr 1.4 ≥ 1.4 and platelets 120 < 150 ×10^9/L'
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

from palette_core.design.allocation import PriorityPolicy, RandomPolicy
from palette_core.design.loader import Design
from palette_core.design.traits import AllOf, AnyOf, Comparison, HookRule, Trait
from palette_core.errors import MissingHookError, UnknownReferenceError
from palette_core.screening.seymour import (
    CLASS_COLUMN,
    REASON_COLUMN,
    UNUSABLE_COLUMN,
    assign_seymour,
    load_seymour_reference,
)

POSITIVE, NEGATIVE, INDETERMINATE, NOT_APPLICABLE = (
    "positive",
    "negative",
    "indeterminate",
    "not applicable",
)
TRAIT_VALUES = (POSITIVE, NEGATIVE, INDETERMINATE, NOT_APPLICABLE)

#: Kleene truth values, ordered so that AND is the minimum and OR the maximum.
FALSE, UNKNOWN, TRUE = np.int8(0), np.int8(1), np.int8(2)
_LABEL = np.array([NEGATIVE, INDETERMINATE, POSITIVE], dtype=object)

#: Age-group labels that mean "not known yet" (anything else that is not a group id means the
#: patient is in no age group, e.g. ``too_young``: every trait is then not applicable).
UNKNOWN_AGE_GROUPS = frozenset({"indeterminate"})

_SYMBOL = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
_COMPARE: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
_UNIT_TEXT = {"ratio": "", "10^9/L": " ×10^9/L", "%": " %", "umol/L": " µmol/L"}
#: Significant digits kept when a threshold is converted to its biomarker's unit, so that
#: 150000 /mm3 is exactly 150 ×10^9/L and a boundary value compares as written.
THRESHOLD_DIGITS = 12


# ----------------------------------------------------------------------------- hooks
@dataclass(frozen=True)
class HookResult:
    """What a hook says for each patient: a class of the hook (``<NA>`` when unknown) and why."""

    value: pd.Series  # pandas "string", <NA> = unknown
    reason: pd.Series  # pandas "string"


HookFunction = Callable[[pd.DataFrame, Design], HookResult]


def _strings(patients: pd.DataFrame, column: str) -> pd.Series:
    """A column as pandas "string" (all ``<NA>`` when the column is absent)."""
    if column not in patients.columns:
        return pd.Series(pd.NA, index=patients.index, dtype="string")
    return patients[column].astype("string")


def _site_class_hook(column: str) -> HookFunction:
    """A hook whose class is recorded by the site in ``column`` (no public algorithm)."""

    def hook(patients: pd.DataFrame, design: Design) -> HookResult:
        value = _strings(patients, column)
        reason = pd.Series("recorded by the site", index=patients.index, dtype="string")
        reason[value.isna()] = f"not recorded ({column} missing)"
        return HookResult(value, reason)

    hook.__name__ = f"{column}_hook"
    hook.__doc__ = f"The class recorded by the site in ``{column}``."
    return hook


def seymour_hook(patients: pd.DataFrame, design: Design) -> HookResult:
    """Adult subphenotype: computed from the 29 variables, else the site-recorded class.

    When both exist and disagree, the computed class is used and the reason says so. When
    neither exists the class is unknown and the reason names the missing variables.
    """
    ref = load_seymour_reference(design)
    computed = assign_seymour(patients, ref)
    calc, why = computed[CLASS_COLUMN], computed[REASON_COLUMN]
    site = _strings(patients, "seymour_class")
    have_calc, have_site = calc.notna().to_numpy(), site.notna().to_numpy()
    value = calc.where(have_calc, site)
    site_txt = site.fillna("").to_numpy(dtype=object)
    why_txt = why.fillna("").to_numpy(dtype=object)
    unusable = computed[UNUSABLE_COLUMN].fillna("")
    n_bad = np.where(unusable == "", 0, unusable.str.count(",").to_numpy() + 1)
    not_computed = np.where(
        n_bad > 0,
        "not computable ("
        + n_bad.astype(str).astype(object)
        + f" of {len(ref.variables)} variables missing or unusable)",
        why_txt,
    )
    reason = np.where(
        have_calc,
        "computed, " + why_txt,
        np.where(
            have_site,
            "recorded by the site; " + not_computed,
            "no site-recorded class; " + why_txt,
        ),
    ).astype(object)
    agree = have_calc & have_site & (calc.fillna("") == site.fillna("")).to_numpy()
    differ = have_calc & have_site & ~agree
    reason[agree] = reason[agree] + "; the site-recorded class agrees"
    reason[differ] = (
        reason[differ]
        + "; differs from the site-recorded class "
        + site_txt[differ]
        + ", the computed class is used"
    )
    return HookResult(
        value.astype("string"), pd.Series(reason, index=patients.index, dtype="string")
    )


#: Hook name (``traits.yaml`` ``hooks``) -> implementation.
HOOKS: Mapping[str, HookFunction] = MappingProxyType(
    {
        # pedsep_class and irecords_signature are site-recorded inputs: no code, see resolve_hooks
        "seymour_subphenotype": seymour_hook,
    }
)


def resolve_hooks(
    design: Design, hooks: Mapping[str, HookFunction] = HOOKS
) -> dict[str, HookFunction]:
    """The implementation of every hook the design declares.

    A hook with an implementation in ``hooks`` uses it. A hook of kind ``input`` that names its
    ``input_field`` needs no code: the class recorded by the site in that field is used (so a
    new site-recorded signature is a change to ``data/`` only). Any other hook needs code.

    Raises
    ------
    MissingHookError
        Naming the first declared hook that has no implementation.
    """
    out: dict[str, HookFunction] = {}
    for name, hook in design.hooks.items():
        if name in hooks:
            out[name] = hooks[name]
        elif hook.kind == "input" and hook.input_field is not None:
            out[name] = _site_class_hook(hook.input_field)
        else:
            raise MissingHookError(
                "traits.yaml",
                name,
                "hooks",
                f"hook {name!r} ({hook.kind}) is declared but has no implementation "
                f"(implemented: {', '.join(sorted(hooks))}; an input hook needs its input_field)",
            )
    return out


def check_hooks(design: Design, hooks: Mapping[str, HookFunction] = HOOKS) -> None:
    """Raise :class:`MissingHookError` if a declared hook has no implementation.

    The design declares hooks as data (``traits.yaml``); whether each has code is screening's
    business, so the loader does not ask. :func:`classify_traits` checks it before it
    classifies, and ``palette design check`` (and every command that screens) calls this.
    """
    resolve_hooks(design, hooks)


# ----------------------------------------------------------------------------- rules
def threshold_in_biomarker_unit(design: Design, comparison: Comparison) -> float:
    """The comparison's threshold converted to its biomarker's declared unit.

    Rounded to ``THRESHOLD_DIGITS`` significant digits to remove conversion noise.

    >>> from palette_core.design.loader import load_design
    >>> rule = load_design().trait("hypercoagulation").rules["adult"].all_of[1].any_of[0]
    >>> rule.threshold, rule.unit, threshold_in_biomarker_unit(load_design(), rule)
    (150000.0, '/mm3', 150.0)
    """
    unit = design.biomarkers[comparison.biomarker].unit
    value = design.to_unit(comparison.threshold, comparison.unit, unit)
    return float(f"{value:.{THRESHOLD_DIGITS}g}")


def comparisons(condition: Any) -> list[Comparison]:
    """The comparison leaves of a rule, left to right."""
    if isinstance(condition, AllOf | AnyOf):
        kids = condition.all_of if isinstance(condition, AllOf) else condition.any_of
        return [leaf for kid in kids for leaf in comparisons(kid)]
    return [condition] if isinstance(condition, Comparison) else []


def _number_text(x: float) -> str:
    return repr(float(x)).removesuffix(".0")


def _numbers_text(x: np.ndarray) -> np.ndarray:
    text = pd.Series(np.asarray(x, dtype=float).astype(str), dtype=object)  # shortest repr
    return text.str.removesuffix(".0").to_numpy(dtype=object)


def _unit_text(unit: str) -> str:
    return _UNIT_TEXT.get(unit, f" {unit}")


def rule_text(condition: Any, design: Design) -> str:
    """A rule in words, thresholds in the biomarker's unit (for tables and the book).

    >>> from palette_core.design.loader import load_design
    >>> d = load_design()
    >>> rule_text(d.trait("hypercoagulation").rules["adult"], d)
    'inr ≥ 1.4 and (platelets < 150 ×10^9/L or platelet_fall_24h > 30 %)'
    """
    if isinstance(condition, Comparison):
        unit = design.biomarkers[condition.biomarker].unit
        thr = threshold_in_biomarker_unit(design, condition)
        return (
            f"{condition.biomarker} {_SYMBOL[condition.op]} {_number_text(thr)}{_unit_text(unit)}"
        )
    if isinstance(condition, HookRule):
        return f"{condition.hook} ∈ {{{', '.join(condition.positive)}}}"
    word, kids = (
        (" and ", condition.all_of) if isinstance(condition, AllOf) else (" or ", condition.any_of)
    )
    parts = [
        f"({rule_text(k, design)})" if isinstance(k, AllOf | AnyOf) else rule_text(k, design)
        for k in kids
    ]
    return word.join(parts)


@dataclass(frozen=True)
class _Result:
    truth: np.ndarray  # int8: FALSE / UNKNOWN / TRUE
    reason: np.ndarray  # object array of str


class _Evaluator:
    """Evaluates rule trees over the whole table; hook results are computed once and cached."""

    def __init__(self, patients: pd.DataFrame, design: Design, hooks: Mapping[str, HookFunction]):
        self.patients = patients
        self.design = design
        self.hooks = hooks
        self.n = len(patients)
        self._hooks: dict[str, HookResult] = {}

    def __call__(self, cond: Any) -> _Result:
        if isinstance(cond, Comparison):
            return self.comparison(cond)
        if isinstance(cond, HookRule):
            return self.hook(cond)
        if isinstance(cond, AllOf):
            return self.combine([self(k) for k in cond.all_of], np.minimum)
        if isinstance(cond, AnyOf):
            return self.combine([self(k) for k in cond.any_of], np.maximum)
        raise TypeError(f"not a rule condition: {cond!r}")

    def values(self, column: str) -> np.ndarray:
        if column not in self.patients.columns:
            return np.full(self.n, np.nan)
        col = pd.to_numeric(self.patients[column], errors="coerce")
        return col.astype("Float64").to_numpy(dtype=float, na_value=np.nan)

    def comparison(self, c: Comparison) -> _Result:
        unit = _unit_text(self.design.biomarkers[c.biomarker].unit)
        thr = threshold_in_biomarker_unit(self.design, c)
        x = self.values(c.biomarker)
        known = ~np.isnan(x)
        holds = _COMPARE[c.op](np.where(known, x, 0.0), thr)
        truth = np.where(known, np.where(holds, TRUE, FALSE), UNKNOWN).astype(np.int8)
        head = c.biomarker + " " + _numbers_text(x)
        tail = f"{_SYMBOL[c.op]} {_number_text(thr)}{unit}"
        reason = np.where(
            known,
            np.where(holds, head + " " + tail, head + " not " + tail),
            f"{c.biomarker} missing",
        ).astype(object)
        return _Result(truth, reason)

    def hook_result(self, name: str) -> HookResult:
        if name not in self._hooks:
            if name not in self.hooks:
                raise MissingHookError(
                    "traits.yaml", name, "hooks", f"no implementation for hook {name!r}"
                )
            res = self.hooks[name](self.patients, self.design)
            classes = self.design.hooks[name].classes
            value, reason = res.value.astype("string"), res.reason.astype("string")
            bad = value.notna() & ~value.isin(classes)
            if bad.any():  # a class the design does not declare is not evidence either way
                reason = reason.where(~bad, "unrecognised class '" + value.fillna("") + "'")
                value = value.where(~bad, pd.NA)
            self._hooks[name] = HookResult(value, reason)
        return self._hooks[name]

    def hook(self, h: HookRule) -> _Result:
        res = self.hook_result(h.hook)
        value = res.value.to_numpy(dtype=object, na_value=None)
        known = res.value.notna().to_numpy()
        holds = res.value.isin(h.positive).to_numpy() & known
        truth = np.where(known, np.where(holds, TRUE, FALSE), UNKNOWN).astype(np.int8)
        value_txt = np.where(known, value, "").astype(object)
        why = res.reason.fillna("").to_numpy(dtype=object)
        listed = "{" + ", ".join(h.positive) + "}"
        reason = np.where(
            known,
            h.hook + " " + value_txt + np.where(holds, f" ∈ {listed}", f" ∉ {listed}") + ", " + why,
            h.hook + " unknown: " + why,
        ).astype(object)
        return _Result(truth, reason)

    @staticmethod
    def combine(kids: list[_Result], op: Callable[..., np.ndarray]) -> _Result:
        """AND (``np.minimum``) or OR (``np.maximum``); the reason cites the deciding parts.

        The parts cited are those whose truth equals the result's: every part when an AND holds,
        the failing parts when it fails, the unknown parts when it is unknown (and the same for
        OR), joined with "and".
        """
        truth = op.reduce([k.truth for k in kids])
        reason = np.full(truth.shape, "", dtype=object)
        for k in kids:
            cite = k.truth == truth
            joined = cite & (reason != "")
            reason[joined] = reason[joined] + " and "
            reason[cite] = reason[cite] + k.reason[cite]
        return _Result(truth.astype(np.int8), reason)


def _age_groups(age_group: Any, patients: pd.DataFrame) -> np.ndarray:
    """Age groups as an object array aligned with ``patients`` (``None`` = not known)."""
    n = len(patients)
    if age_group is None or isinstance(age_group, str):
        raw = np.full(n, age_group, dtype=object)
    else:
        if isinstance(age_group, pd.Series) and not age_group.index.equals(patients.index):
            raise ValueError("age_group must have the same index as patients")
        raw = pd.Series(age_group).astype("object").to_numpy()
        if len(raw) != n:
            raise ValueError(f"age_group has {len(raw)} values for {n} patients")
    out = np.empty(n, dtype=object)
    missing = pd.isna(raw)
    labels = np.where(missing, "", raw).astype(str)
    out[missing] = None
    for g in np.unique(labels[~missing]):  # a loop over distinct labels, not over patients
        out[~missing & (labels == g)] = None if g in UNKNOWN_AGE_GROUPS else str(g)
    return out


Reading = str | Mapping[str, str] | None


def _readings(design: Design, reading: Reading) -> dict[str, str | None]:
    """Trait id -> alternative reading id to use (``None``: the adopted rules)."""
    chosen: dict[str, str | None] = {t.id: None for t in design.traits}
    if reading is None:
        return chosen
    if isinstance(reading, str):
        users = [t.id for t in design.traits if reading in {a.id for a in t.alternative_readings}]
        if not users:
            known = sorted({a.id for t in design.traits for a in t.alternative_readings})
            raise UnknownReferenceError(
                "traits.yaml",
                None,
                "alternative_readings",
                f"no trait has a reading {reading!r} (readings: {', '.join(known) or 'none'})",
            )
        return chosen | dict.fromkeys(users, reading)
    for tid, rid in reading.items():
        trait = design.trait(tid) if tid in design.trait_ids else None
        if trait is None:
            raise UnknownReferenceError(
                "traits.yaml", tid, "id", f"trait {tid!r} is not in traits.yaml"
            )
        if rid is not None and rid not in {a.id for a in trait.alternative_readings}:
            raise UnknownReferenceError(
                "traits.yaml",
                tid,
                "alternative_readings",
                f"trait {tid!r} has no reading {rid!r}",
            )
        chosen[tid] = rid
    return chosen


def _rules(trait: Trait, reading: str | None) -> Mapping[str, Any]:
    if reading is None:
        return trait.rules
    return next(a for a in trait.alternative_readings if a.id == reading).rules


def trait_columns(design: Design) -> list[str]:
    """The status columns written by :func:`classify_traits`, in design order."""
    return [f"trait_{t.id}" for t in design.traits]


def classify_traits(
    patients: pd.DataFrame,
    design: Design,
    age_group: Any,
    *,
    reading: Reading = None,
    hooks: Mapping[str, HookFunction] = HOOKS,
) -> pd.DataFrame:
    """Classify every patient for every trait of the design.

    Parameters
    ----------
    patients
        One row per patient, columns named as in ``data/design/patient_record.yaml``. A column
        that is absent counts as missing for every patient.
    design
        The trial design; rules, thresholds, units and hooks come from it.
    age_group
        Per patient (a Series with the index of ``patients``, or an array) or one label for
        all: an age-group id of the design (``"adult"``, ``"child"``); ``<NA>`` or
        ``"indeterminate"`` when not known (every trait indeterminate); any other label (e.g.
        ``"too_young"``) places the patient in no age group (every trait not applicable).
    reading
        Alternative readings for sensitivity analyses: the id of an alternative reading (used
        for every trait that has it, e.g. ``"inr_and_platelets_or_fall"``) or a mapping
        ``{trait_id: reading_id}``. ``None``: the adopted rules.
    hooks
        Hook implementations (default :data:`HOOKS`); every hook of the design must have one.

    Returns
    -------
    DataFrame
        Same index and row count as ``patients``; for each trait ``trait_<id>`` (one of
        :data:`TRAIT_VALUES`) and ``trait_<id>_reason`` (text).

    Raises
    ------
    MissingHookError
        A hook of the design has no implementation.
    UnknownReferenceError
        ``reading`` names a trait or reading the design does not have.
    """
    hooks = resolve_hooks(design, hooks)
    readings = _readings(design, reading)
    groups = _age_groups(age_group, patients)
    unknown_age = np.array([g is None for g in groups], dtype=bool)
    evaluate = _Evaluator(patients, design, hooks)
    n = len(patients)
    columns: dict[str, pd.Series] = {}
    for trait in design.traits:
        rid = readings[trait.id]
        rules = _rules(trait, rid)
        status = np.full(n, NOT_APPLICABLE, dtype=object)
        reason = np.full(n, "", dtype=object)
        outside = ~unknown_age
        for ag in trait.age_groups:
            rows = groups == ag
            outside &= ~rows
            if not rows.any():
                continue
            res = evaluate(rules[ag])
            status[rows] = _LABEL[res.truth[rows]]
            reason[rows] = res.reason[rows]
        if rid is not None:
            inside = ~outside & ~unknown_age
            reason[inside] = f"reading {rid}: " + reason[inside]
        status[unknown_age] = INDETERMINATE
        reason[unknown_age] = "age group not known"
        scope = ", ".join(trait.age_groups)
        if outside.any():
            labels = pd.Series(groups[outside], dtype="object").astype(str).to_numpy(dtype=object)
            reason[outside] = f"trait defined for {scope} only; patient: " + labels
        columns[f"trait_{trait.id}"] = pd.Series(status, index=patients.index, dtype="string")
        columns[f"trait_{trait.id}_reason"] = pd.Series(
            reason, index=patients.index, dtype="string"
        )
    return pd.DataFrame(columns, index=patients.index)


# ----------------------------------------------------------------------------- multi-trait policy
Policy = Literal["default", "sensitivity"]


def patient_uniform(seed: int, patient_id: Any) -> float:
    """The uniform draw of one patient: a function of (seed, patient id) only.

    ``SeedSequence([seed, first 8 bytes of sha256(patient id)])`` seeds a fresh generator, so a
    patient's draw does not depend on the batch, the order of rows or the other patients.

    >>> patient_uniform(2024, "P-001") == patient_uniform(2024, "P-001")
    True
    """
    key = int.from_bytes(hashlib.sha256(str(patient_id).encode("utf-8")).digest()[:8], "big")
    return float(np.random.default_rng(np.random.SeedSequence([seed, key])).random())


def _join(mask: np.ndarray, names: list[str], sep: str) -> np.ndarray:
    """Per row, the names whose column is True, joined in column order (a loop over columns)."""
    out = np.full(mask.shape[0], "", dtype=object)
    for k, name in enumerate(names):
        col = mask[:, k]
        joined = col & (out != "")
        out[joined] = out[joined] + sep
        out[col] = out[col] + name
    return out


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def choose_trait(xp: Any, positive: Any, u: Any, weights: Any, rank: Any, random: bool) -> Any:
    """The multi-trait policy's choice: index of the trait each patient is randomised in.

    The pure core of :func:`assign_trait`, shared with the trial simulator: NumPy or JAX
    (``xp``), no validation, vectorised over patients (leading axes). ``positive`` is
    ``[..., n_traits]`` bool, ``u`` ``[...]`` the patients' uniforms, ``weights`` and ``rank``
    ``[n_traits]`` the random policy's weights and the priority policy's ranks (0 = first),
    ``random`` which of the two applies (a bool, or a traced bool array).
    Returns ``[...]`` ints: the only positive trait; with several, under ``random`` the first
    trait whose cumulative weight among the positive ones exceeds ``u`` times their total
    (the last positive one if rounding leaves none), else the positive trait of lowest rank;
    -1 with none positive.
    """
    positive = xp.asarray(positive, dtype=bool)
    n_traits = positive.shape[-1]
    k = positive.sum(axis=-1)
    cum = xp.cumsum(positive * xp.asarray(weights, dtype=float), axis=-1)
    hit = (xp.asarray(u, dtype=float) * cum[..., -1])[..., None] < cum
    last = n_traits - 1 - xp.argmax(positive[..., ::-1], axis=-1)
    by_weight = xp.where(hit.any(axis=-1), xp.argmax(hit, axis=-1), last)
    by_rank = xp.argmin(xp.where(positive, xp.asarray(rank), n_traits), axis=-1)
    several = xp.where(random, by_weight, by_rank)
    return xp.where(k == 0, -1, xp.where(k == 1, xp.argmax(positive, axis=-1), several))


def policy_arrays(design: Design, policy: Policy = "default") -> tuple[bool, Any, Any]:
    """``(random, weights, rank)`` of a policy of ``multi_trait_policy.yaml``, in design order,
    the arguments :func:`choose_trait` takes."""
    if policy == "default":
        pol: RandomPolicy | PriorityPolicy = design.multi_trait_policy.default
    elif policy == "sensitivity":
        pol = design.multi_trait_policy.sensitivity
    else:
        raise ValueError(f"policy must be 'default' or 'sensitivity', got {policy!r}")
    ids = list(design.trait_ids)
    if isinstance(pol, RandomPolicy):
        return True, np.array([pol.weights[t] for t in ids], dtype=float), np.arange(len(ids))
    rank = np.array([pol.order.index(t) for t in ids])
    return False, np.ones(len(ids)), rank


def assign_trait(
    traits: pd.DataFrame,
    design: Design,
    seed: int,
    policy: Policy = "default",
    patient_ids: Any = None,
    open_traits: Any = None,
) -> pd.DataFrame:
    """The trait each patient is randomised in, under ``design.multi_trait_policy``.

    Parameters
    ----------
    traits
        The output of :func:`classify_traits` (the ``trait_<id>`` columns are used).
    design
        The trial design; weights, priority order and incompatible pairs come from it.
    seed
        Non-negative integer seed of the random policy.
    policy
        ``"default"`` or ``"sensitivity"``: which policy of ``multi_trait_policy.yaml``; its
        ``kind`` (``random_weighted`` or ``priority``) decides how the trait is chosen.
    patient_ids
        Patient identifiers (a Series with the index of ``traits``, or an array); required by
        the random policy, whose draw for a patient depends only on (seed, patient id).
    open_traits
        ``None`` (every trait can randomise every patient) or a bool array ``[n, n_traits]``
        (design order): the traits that can randomise each patient now (the trait randomises
        and has an experimental arm open to the patient's age group). The policy chooses among
        the positive traits that are open, so that a patient positive for a trait closed to
        them is randomised in another positive trait rather than turned away.

    Returns
    -------
    DataFrame
        Same index: ``positive_traits`` and ``indeterminate_traits`` (ids in design order,
        joined with ";", "" when none), ``assigned_trait`` (``<NA>`` when no trait is positive),
        ``assignment_rule`` (text), ``assignment_u`` (the uniform drawn, NaN when no draw was
        needed), ``assignment_policy`` and ``incompatible_pairs_positive`` (pairs declared
        incompatible that the patient is positive for, "a+b" joined with ";"; they do not change
        the assignment: the policy randomises each patient in one trait only), and
        ``traits_drawn_among``: the positive traits the policy chose among (the open ones).
    """
    if policy == "default":
        pol: RandomPolicy | PriorityPolicy = design.multi_trait_policy.default
    elif policy == "sensitivity":
        pol = design.multi_trait_policy.sensitivity
    else:
        raise ValueError(f"policy must be 'default' or 'sensitivity', got {policy!r}")
    random, weights, rank = policy_arrays(design, policy)
    ids = list(design.trait_ids)
    cols = trait_columns(design)
    absent = [c for c in cols if c not in traits.columns]
    if absent:
        raise ValueError(f"traits lacks the column(s) {absent}; pass classify_traits' output")
    status = traits[cols].astype("object").to_numpy()
    positive = status == POSITIVE
    n = len(traits)
    if open_traits is None:
        pos = positive
    else:
        shut = np.asarray(open_traits, dtype=bool)
        if shut.shape != positive.shape:
            raise ValueError(f"open_traits has shape {shut.shape}, not {positive.shape}")
        pos = positive & shut
    k = pos.sum(axis=1)
    u = np.full(n, np.nan)
    rule = np.where(k == 0, "no positive trait", "only positive trait").astype(object)
    closed = positive & ~pos
    if closed.any():
        rule = np.where(
            (k == 0) & closed.any(axis=1), "no positive trait open to the patient", rule
        ).astype(object)
        rule = np.where(
            (k == 1) & closed.any(axis=1), "only positive trait open to the patient", rule
        ).astype(object)
    several = k >= 2
    if isinstance(pol, RandomPolicy):
        seed = _check_seed(seed)
        if patient_ids is None:
            raise ValueError("patient_ids is required: the draw depends on (seed, patient id)")
        if isinstance(patient_ids, pd.Series) and not patient_ids.index.equals(traits.index):
            raise ValueError("patient_ids must have the same index as traits")
        pid = pd.Series(patient_ids).astype("object").to_numpy()
        if len(pid) != n:
            raise ValueError(f"patient_ids has {len(pid)} values for {n} patients")
        need = np.nonzero(several)[0]
        blank = [int(i) for i in need if pd.isna(pid[i]) or str(pid[i]) == ""]
        if blank:
            raise ValueError(f"patient id missing for row(s) {blank[:10]} that need a draw")
        u[need] = [patient_uniform(seed, pid[i]) for i in need]
        weights_txt = _join(
            pos, [f"{t} {_number_text(weights[j])}" for j, t in enumerate(ids)], ", "
        )
        rule[several] = (
            "random among "
            + k[several].astype(str).astype(object)
            + " positive traits (weights "
            + weights_txt[several]
            + ")"
        )
    else:
        order = [ids.index(t) for t in pol.order]
        chain = _join(pos[:, order], [ids[j] for j in order], " > ")
        rule[several] = "priority order (" + chain[several] + ")"
    choice = choose_trait(np, pos, np.where(np.isnan(u), 0.0, u), weights, rank, random)
    assigned = pd.Series(pd.NA, index=traits.index, dtype="string")
    has = choice >= 0
    assigned[has] = np.asarray(ids, dtype=object)[choice[has]]
    pairs = design.multi_trait_policy.incompatible_pairs
    both = (
        np.column_stack(
            [pos[:, ids.index(p.traits[0])] & pos[:, ids.index(p.traits[1])] for p in pairs]
        )
        if pairs
        else np.zeros((n, 0), dtype=bool)
    )
    if closed.any():
        note = _join(closed, ids, ", ")
        rule = np.where(closed.any(axis=1), rule + "; closed to the patient: " + note, rule)
    out = pd.DataFrame(
        {
            "positive_traits": pd.Series(
                _join(positive, ids, ";"), index=traits.index, dtype="string"
            ),
            "indeterminate_traits": pd.Series(
                _join(status == INDETERMINATE, ids, ";"), index=traits.index, dtype="string"
            ),
            "assigned_trait": assigned,
            "assignment_rule": pd.Series(rule, index=traits.index, dtype="string"),
            "assignment_u": pd.Series(u, index=traits.index, dtype="float64"),
            "assignment_policy": pd.Series(policy, index=traits.index, dtype="string"),
            "incompatible_pairs_positive": pd.Series(
                _join(both, ["+".join(p.traits) for p in pairs], ";"),
                index=traits.index,
                dtype="string",
            ),
            "traits_drawn_among": pd.Series(
                _join(pos, ids, ";"), index=traits.index, dtype="string"
            ),
        },
        index=traits.index,
    )
    return out


__all__ = [
    "HOOKS",
    "INDETERMINATE",
    "NEGATIVE",
    "NOT_APPLICABLE",
    "POSITIVE",
    "TRAIT_VALUES",
    "HookFunction",
    "HookResult",
    "assign_trait",
    "check_hooks",
    "choose_trait",
    "classify_traits",
    "comparisons",
    "patient_uniform",
    "policy_arrays",
    "rule_text",
    "seymour_hook",
    "threshold_in_biomarker_unit",
    "trait_columns",
]
