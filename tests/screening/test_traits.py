"""Trait classification (three-valued logic, boundaries, hooks) and the multi-trait policy."""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import DATA, TEST_DATA

from palette_core.design.loader import load_design, modified_design
from palette_core.design.traits import AllOf, AnyOf, Comparison, HookRule
from palette_core.errors import MissingHookError, UnknownReferenceError
from palette_core.screening.seymour import load_seymour_reference
from palette_core.screening.traits import (
    HOOKS,
    INDETERMINATE,
    NEGATIVE,
    NOT_APPLICABLE,
    POSITIVE,
    TRAIT_VALUES,
    assign_trait,
    check_hooks,
    classify_traits,
    comparisons,
    patient_uniform,
    rule_text,
    threshold_in_biomarker_unit,
    trait_columns,
)

DESIGN = load_design()
CONTRACT = yaml.safe_load((DATA / "design" / "patient_record.yaml").read_text(encoding="utf-8"))[
    "fields"
]
SENECA = TEST_DATA / "seneca"
_DTYPES = {
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
    "category": "string",
    "str": "string",
}


def frame(index: Any = None, **columns: Any) -> pd.DataFrame:
    """Patients with the contract's dtypes (float64, Int64, boolean, string)."""
    n = max((len(v) for v in columns.values() if isinstance(v, list | np.ndarray)), default=1)
    data = {}
    for name, values in columns.items():
        values = values if isinstance(values, list | np.ndarray) else [values] * n
        kind = CONTRACT[name]["kind"]
        if kind == "float":
            data[name] = pd.Series([np.nan if v is None else v for v in values], dtype="float64")
        else:
            data[name] = pd.Series(values, dtype=_DTYPES[kind])
    out = pd.DataFrame(data)
    if index is not None:
        out.index = index
    return out


def status(out: pd.DataFrame, trait: str) -> list[str]:
    return out[f"trait_{trait}"].tolist()


# ----------------------------------------------------------------------------- boundaries
def _value(leaf: Comparison, want: bool) -> float:
    """A value of the leaf's biomarker that makes the comparison ``want``, well off the boundary."""
    thr = threshold_in_biomarker_unit(DESIGN, leaf)
    step = max(abs(thr) * 0.2, 0.05)
    below = leaf.op in ("<", "<=")
    return thr - step if below == want else thr + step


def _force(cond: Any, want: bool) -> dict[str, float]:
    """Biomarker values that make ``cond`` evaluate to ``want``."""
    if isinstance(cond, Comparison):
        return {cond.biomarker: _value(cond, want)}
    if isinstance(cond, HookRule):
        raise TypeError("hook rules have no numeric boundary; they are tested separately")
    kids = cond.all_of if isinstance(cond, AllOf) else cond.any_of
    every = isinstance(cond, AllOf) == want  # AND true / OR false: every kid must be want
    out: dict[str, float] = {}
    for i, kid in enumerate(kids):
        out |= _force(kid, want if (every or i == 0) else not want)
    return out


def _context(cond: Any, target: Comparison) -> dict[str, float] | None:
    """Values for every other leaf such that ``target`` alone decides ``cond``."""
    if cond is target:
        return {}
    if isinstance(cond, AllOf | AnyOf):
        kids = cond.all_of if isinstance(cond, AllOf) else cond.any_of
        for i, kid in enumerate(kids):
            inner = _context(kid, target)
            if inner is not None:
                others = [k for j, k in enumerate(kids) if j != i]
                sibling_value = isinstance(cond, AllOf)  # AND: siblings true; OR: false
                for other in others:
                    inner |= _force(other, sibling_value)
                return inner
    return None


def _boundary_cases() -> list[Any]:
    cases = []
    for trait in DESIGN.traits:
        readings = [("adopted", trait.rules)] + [
            (a.id, a.rules) for a in trait.alternative_readings
        ]
        for reading, rules in readings:
            for ag, rule in rules.items():
                for leaf in comparisons(rule):
                    cases.append(
                        pytest.param(
                            trait.id,
                            None if reading == "adopted" else reading,
                            ag,
                            rule,
                            leaf,
                            id=f"{trait.id}-{reading}-{ag}-{leaf.biomarker}{leaf.op}{leaf.threshold:g}",
                        )
                    )
    return cases


BOUNDARY_CASES = _boundary_cases()


def test_boundary_cases_cover_every_threshold_of_every_trait_and_age_group():
    covered = {(c.values[0], c.values[2]) for c in BOUNDARY_CASES}
    expected = {
        (t.id, ag)
        for t in DESIGN.traits
        for ag in t.age_groups
        if comparisons(t.rules[ag])  # hook-only rules are tested below
    }
    assert covered == expected
    assert len(BOUNDARY_CASES) == 1 + 1 + 1 + 1 + 3 + 3 + 1  # hypo x2, MALS x2, coag x3 x2, fibrino


@pytest.mark.parametrize(("trait", "reading", "ag", "rule", "leaf"), BOUNDARY_CASES)
def test_every_threshold_is_exact_at_its_boundary(trait, reading, ag, rule, leaf):
    thr = threshold_in_biomarker_unit(DESIGN, leaf)
    context = _context(rule, leaf)
    values = [thr, np.nextafter(thr, -np.inf), np.nextafter(thr, np.inf), _value(leaf, True)]
    values.append(_value(leaf, False))
    cols = {k: [v] * len(values) for k, v in context.items()}
    cols[leaf.biomarker] = values
    out = classify_traits(frame(**cols), DESIGN, ag, reading=reading)
    op = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[leaf.op]
    expected = [POSITIVE if op(v, thr) else NEGATIVE for v in values]
    assert status(out, trait) == expected
    assert expected[0] == (POSITIVE if leaf.op in ("<=", ">=") else NEGATIVE)
    assert expected[1] != expected[2]  # one ulp either side of the boundary differs


@pytest.mark.parametrize(
    ("trait", "ag", "columns", "expected"),
    [
        ("hypercoagulation", "adult", {"inr": [1.40], "platelets": [120.0]}, POSITIVE),
        ("hypercoagulation", "adult", {"inr": [1.39], "platelets": [120.0]}, NEGATIVE),
        (
            "hypercoagulation",
            "adult",
            {"inr": [1.5], "platelets": [150.0], "platelet_fall_24h": [10.0]},
            NEGATIVE,
        ),
        (
            "hypercoagulation",
            "adult",
            {"inr": [1.5], "platelets": [149.999], "platelet_fall_24h": [10.0]},
            POSITIVE,
        ),
        (
            "hypercoagulation",
            "adult",
            {"inr": [1.5], "platelets": [200.0], "platelet_fall_24h": [30.0]},
            NEGATIVE,
        ),
        (
            "hypercoagulation",
            "adult",
            {"inr": [1.5], "platelets": [200.0], "platelet_fall_24h": [30.01]},
            POSITIVE,
        ),
        ("mals", "adult", {"ferritin": [4420.0]}, NEGATIVE),
        ("mals", "adult", {"ferritin": [4420.01]}, POSITIVE),
        ("mals", "child", {"ferritin": [500.0]}, NEGATIVE),
        ("mals", "child", {"ferritin": [4420.0]}, POSITIVE),
        ("hypoinflammation", "adult", {"lymphocytes": [1.0]}, NEGATIVE),
        ("hypoinflammation", "child", {"lymphocytes": [0.99]}, POSITIVE),
        ("hypofibrinolysis", "adult", {"plasminogen": [0.5]}, NEGATIVE),
        ("hypofibrinolysis", "adult", {"plasminogen": [0.49]}, POSITIVE),
    ],
)
def test_registry_boundaries_named_in_the_issue(trait, ag, columns, expected):
    out = classify_traits(frame(**columns), DESIGN, ag)
    assert status(out, trait) == [expected]


def test_platelet_threshold_in_per_mm3_converts_to_exactly_150():
    leaf = DESIGN.trait("hypercoagulation").rules["adult"].all_of[1].any_of[0]
    assert (leaf.threshold, leaf.unit) == (150000.0, "/mm3")
    assert threshold_in_biomarker_unit(DESIGN, leaf) == 150.0
    for t in DESIGN.traits:
        for rule in list(t.rules.values()) + [
            r for a in t.alternative_readings for r in a.rules.values()
        ]:
            for c in comparisons(rule):
                thr = threshold_in_biomarker_unit(DESIGN, c)
                assert thr == float(f"{thr:.12g}")


def test_conversion_noise_does_not_move_the_boundary():
    """A threshold whose conversion carries float noise is rounded back to the value meant."""
    noisy = 0.1 * 3 * 1000  # 300.00000000000006 /mm3
    assert noisy != 300.0
    leaf = Comparison(biomarker="platelets", op="<", threshold=noisy, unit="/mm3")
    assert DESIGN.to_unit(noisy, "/mm3", "10^9/L") != 0.3
    assert threshold_in_biomarker_unit(DESIGN, leaf) == 0.3


def test_reasons_show_the_values_and_thresholds():
    out = classify_traits(
        frame(inr=[1.40, 1.2], platelets=[120.0, 120.0], ferritin=[4420.0, 5000.0]), DESIGN, "adult"
    )
    assert out["trait_hypercoagulation_reason"].tolist() == [
        "inr 1.4 ≥ 1.4 and platelets 120 < 150 ×10^9/L",
        "inr 1.2 not ≥ 1.4",
    ]
    assert out["trait_mals_reason"].tolist() == [
        "ferritin 4420 not > 4420 ng/mL",
        "ferritin 5000 > 4420 ng/mL",
    ]


def test_rule_text_renders_the_design_rules():
    assert rule_text(DESIGN.trait("mals").rules["child"], DESIGN) == "ferritin > 500 ng/mL"
    alt = DESIGN.trait("hypercoagulation").alternative_readings[0].rules["adult"]
    assert (
        rule_text(alt, DESIGN)
        == "(inr ≥ 1.4 and platelets < 150 ×10^9/L) or platelet_fall_24h > 30 %"
    )
    assert (
        rule_text(DESIGN.trait("hyperinflammation").rules["child"], DESIGN)
        == "pedsep_class ∈ {B, C, D}"
    )


# ----------------------------------------------------------------------------- three-valued logic
def kleene_and(*xs: bool | None) -> bool | None:
    if any(x is False for x in xs):
        return False
    return None if any(x is None for x in xs) else True


def kleene_or(*xs: bool | None) -> bool | None:
    if any(x is True for x in xs):
        return True
    return None if any(x is None for x in xs) else False


LEVELS = {  # biomarker -> value making its comparison True, False, unknown
    "inr": {True: 1.5, False: 1.2, None: None},
    "platelets": {True: 100.0, False: 200.0, None: None},
    "platelet_fall_24h": {True: 40.0, False: 10.0, None: None},
}
TRUTH = {True: POSITIVE, False: NEGATIVE, None: INDETERMINATE}


def test_three_valued_logic_table_for_both_hypercoagulation_readings():
    combos = list(itertools.product([True, False, None], repeat=3))
    cols = {
        b: [LEVELS[b][c[i]] for c in combos]
        for i, b in enumerate(["inr", "platelets", "platelet_fall_24h"])
    }
    patients = frame(**cols)
    adopted = classify_traits(patients, DESIGN, "adult")
    alternative = classify_traits(patients, DESIGN, "adult", reading="inr_and_platelets_or_fall")
    for row, (i, p, f) in enumerate(combos):
        # adopted: INR AND (platelets OR fall); alternative: (INR AND platelets) OR fall
        assert adopted["trait_hypercoagulation"].iloc[row] == TRUTH[kleene_and(i, kleene_or(p, f))]
        assert (
            alternative["trait_hypercoagulation"].iloc[row] == TRUTH[kleene_or(kleene_and(i, p), f)]
        )
    # the table has all three outcomes, and missing values are never read as negative
    assert set(adopted["trait_hypercoagulation"]) == {POSITIVE, NEGATIVE, INDETERMINATE}


def test_decided_rules_ignore_missing_parts_and_undecided_ones_name_them():
    out = classify_traits(
        frame(
            inr=[1.2, None, 1.5, 1.5],
            platelets=[None, 100.0, None, 200.0],
            platelet_fall_24h=[None, None, None, None],
        ),
        DESIGN,
        "adult",
    )
    assert status(out, "hypercoagulation") == [
        NEGATIVE,
        INDETERMINATE,
        INDETERMINATE,
        INDETERMINATE,
    ]
    reasons = out["trait_hypercoagulation_reason"].tolist()
    assert reasons[0] == "inr 1.2 not ≥ 1.4"  # decided by INR alone
    assert reasons[1] == "inr missing"
    assert reasons[2] == "platelets missing and platelet_fall_24h missing"
    assert reasons[3] == "platelet_fall_24h missing"


def test_alternative_reading_differs_on_normal_inr_with_a_platelet_fall():
    p = frame(inr=[1.0], platelets=[200.0], platelet_fall_24h=[35.0])
    assert status(classify_traits(p, DESIGN, "adult"), "hypercoagulation") == [NEGATIVE]
    alt = classify_traits(p, DESIGN, "adult", reading="inr_and_platelets_or_fall")
    assert status(alt, "hypercoagulation") == [POSITIVE]
    assert (
        alt["trait_hypercoagulation_reason"]
        .item()
        .startswith("reading inr_and_platelets_or_fall: ")
    )
    by_map = classify_traits(
        p, DESIGN, "adult", reading={"hypercoagulation": "inr_and_platelets_or_fall"}
    )
    pd.testing.assert_frame_equal(by_map, alt)


@pytest.mark.parametrize(
    "reading", ["no_such_reading", {"no_such_trait": "x"}, {"hypercoagulation": "no_such_reading"}]
)
def test_unknown_reading_is_a_typed_error(reading):
    with pytest.raises(UnknownReferenceError):
        classify_traits(frame(inr=[1.5]), DESIGN, "adult", reading=reading)


# ----------------------------------------------------------------------------- age groups
def test_adult_only_traits_are_not_applicable_in_children():
    p = frame(
        inr=[2.0], platelets=[50.0], platelet_fall_24h=[50.0], plasminogen=[0.1], lymphocytes=[0.5]
    )
    out = classify_traits(p, DESIGN, "child")
    assert status(out, "hypercoagulation") == [NOT_APPLICABLE]
    assert status(out, "hypofibrinolysis") == [NOT_APPLICABLE]
    assert status(out, "hypoinflammation") == [POSITIVE]
    assert (
        out["trait_hypercoagulation_reason"].item()
        == "trait defined for adult only; patient: child"
    )


def test_unknown_age_group_makes_every_trait_indeterminate_and_no_group_not_applicable():
    p = frame(lymphocytes=[0.5, 0.5, 0.5, 0.5])
    groups = pd.Series(["indeterminate", pd.NA, "too_young", "adult"], dtype="string")
    out = classify_traits(p, DESIGN, groups)
    for t in DESIGN.trait_ids:
        assert status(out, t)[:3] == [INDETERMINATE, INDETERMINATE, NOT_APPLICABLE]
    assert status(out, "hypoinflammation")[3] == POSITIVE
    assert out["trait_mals_reason"].iloc[0] == "age group not known"


def test_output_keeps_index_row_count_and_column_order():
    p = frame(index=[30, 10, 20], lymphocytes=[0.5, 2.0, None])
    out = classify_traits(p, DESIGN, pd.Series(["adult", "child", "adult"], index=p.index))
    assert out.index.tolist() == [30, 10, 20]
    expected = [c for t in DESIGN.trait_ids for c in (f"trait_{t}", f"trait_{t}_reason")]
    assert out.columns.tolist() == expected
    assert trait_columns(DESIGN) == expected[::2]
    assert all(str(out[c].dtype) == "string" for c in out.columns)
    with pytest.raises(ValueError, match="same index"):
        classify_traits(p, DESIGN, pd.Series(["adult"] * 3))


def test_absent_columns_give_indeterminate_never_negative():
    out = classify_traits(pd.DataFrame(index=range(2)), DESIGN, "adult")
    for t in DESIGN.trait_ids:
        assert status(out, t) == [INDETERMINATE, INDETERMINATE]


# ----------------------------------------------------------------------------- hooks
def completed_mock_row(row: int) -> pd.DataFrame:
    """One SENECA mock patient with the script's imputed values filled in, as a record."""
    ref = load_seymour_reference(DESIGN)
    mock = pd.read_csv(SENECA / "SENECA - Mock Dataset.csv").set_index("id")
    for r in pd.read_csv(SENECA / "recovered_imputations.csv").itertuples(index=False):
        mock.loc[r.id, r.variable] = r.value
    one = mock.iloc[[row]].reset_index(drop=True)
    cols: dict[str, Any] = {}
    for v in ref.variables:
        value = one[v.seneca].item()
        if v.codes is not None:
            value = {code: name for name, code in v.codes.items()}[value]
        elif CONTRACT[v.field]["kind"] == "int":
            value = int(value)
        cols[v.field] = [value]
    return frame(**cols)


def test_every_declared_hook_has_an_implementation():
    check_hooks(DESIGN)
    coded = {n for n, h in DESIGN.hooks.items() if not (h.kind == "input" and h.input_field)}
    assert coded <= set(HOOKS)


def test_missing_hook_implementation_is_a_typed_error():
    partial = {k: v for k, v in HOOKS.items() if k != "seymour_subphenotype"}
    with pytest.raises(MissingHookError, match="seymour_subphenotype"):
        check_hooks(DESIGN, partial)
    with pytest.raises(MissingHookError):
        classify_traits(frame(lymphocytes=[0.5]), DESIGN, "adult", hooks=partial)


def test_algorithm_hook_declared_in_the_design_without_implementation_is_refused():
    def add_hook(data: dict) -> None:
        data["hooks"]["new_signature"] = {
            "label": "A new omics signature",
            "classes": ["positive", "negative"],
            "kind": "algorithm",
            "note": "declared in data, not yet implemented",
        }

    with modified_design(None, "traits.yaml", add_hook) as changed:  # the design is data
        with pytest.raises(MissingHookError, match="new_signature"):
            check_hooks(changed)
        with pytest.raises(MissingHookError, match="new_signature"):
            classify_traits(frame(lymphocytes=[0.5]), changed, "adult")


def test_input_hook_without_its_input_field_is_refused():
    def add_hook(data: dict) -> None:
        data["hooks"]["new_signature"] = {
            "label": "A new site-recorded signature",
            "classes": ["positive", "negative"],
            "kind": "input",
            "note": "no input_field",
        }

    with modified_design(None, "traits.yaml", add_hook) as changed:
        with pytest.raises(MissingHookError, match="input_field"):
            check_hooks(changed)


def test_site_recorded_input_hook_needs_no_code():
    """A new trait defined by a site-recorded class is a change to data only."""

    def reuse_irecords_field(data: dict) -> None:
        data["hooks"]["new_signature"] = {
            "label": "A new site-recorded signature",
            "classes": ["positive", "negative"],
            "kind": "input",
            "input_field": "irecords_signature",
            "note": "recorded by the site",
        }
        trait = next(t for t in data["traits"] if t["id"] == "corticosteroid_response")
        trait["rules"] = {
            ag: {"hook": "new_signature", "positive": ["positive"]} for ag in trait["rules"]
        }

    with modified_design(None, "traits.yaml", reuse_irecords_field) as changed:
        out = classify_traits(frame(irecords_signature=["positive", "negative"]), changed, "adult")
    assert status(out, "corticosteroid_response") == [POSITIVE, NEGATIVE]


def test_site_recorded_seymour_class_is_used_when_variables_are_missing():
    p = frame(seymour_class=["beta", "alpha", None], age_years=[60.0, 60.0, 60.0])
    out = classify_traits(p, DESIGN, "adult")
    assert status(out, "hyperinflammation") == [POSITIVE, NEGATIVE, INDETERMINATE]
    reasons = out["trait_hyperinflammation_reason"].tolist()
    assert reasons[0].startswith(
        "seymour_subphenotype beta ∈ {beta, gamma, delta}, recorded by the site"
    )
    assert "28 of 29 variables missing" in reasons[0]
    assert reasons[2].startswith(
        "seymour_subphenotype unknown: no site-recorded class; not computable"
    )
    assert "albumin_g_dl" in reasons[2] and "troponin_ng_ml" in reasons[2]


def test_computed_seymour_class_wins_over_a_disagreeing_site_class():
    p = completed_mock_row(0)  # patient 10001: delta by the script's distances and by ours
    computed = classify_traits(p, DESIGN, "adult")
    assert status(computed, "hyperinflammation") == [POSITIVE]
    assert "computed, nearest centroid delta" in computed["trait_hyperinflammation_reason"].item()
    p["seymour_class"] = pd.array(["alpha"], dtype="string")
    out = classify_traits(p, DESIGN, "adult")
    assert status(out, "hyperinflammation") == [POSITIVE]
    reason = out["trait_hyperinflammation_reason"].item()
    assert "differs from the site-recorded class alpha, the computed class is used" in reason
    p["seymour_class"] = pd.array(["delta"], dtype="string")
    same = classify_traits(p, DESIGN, "adult")["trait_hyperinflammation_reason"].item()
    assert same.endswith("the site-recorded class agrees")


def test_pedsep_and_irecords_are_site_recorded_inputs():
    p = frame(pedsep_class=["B", "A", None], irecords_signature=["positive", "negative", None])
    out = classify_traits(p, DESIGN, "child")
    assert status(out, "hyperinflammation") == [POSITIVE, NEGATIVE, INDETERMINATE]
    assert status(out, "corticosteroid_response") == [POSITIVE, NEGATIVE, INDETERMINATE]
    assert out["trait_hyperinflammation_reason"].iloc[2] == (
        "pedsep_class unknown: not recorded (pedsep_class missing)"
    )


def test_a_class_the_design_does_not_declare_is_indeterminate():
    p = pd.DataFrame({"pedsep_class": pd.array(["E"], dtype="string")})
    out = classify_traits(p, DESIGN, "child")
    assert status(out, "hyperinflammation") == [INDETERMINATE]
    assert "unrecognised class 'E'" in out["trait_hyperinflammation_reason"].item()


# ----------------------------------------------------------------------------- policy
def traits_frame(rows: list[dict[str, str]], index: Any = None) -> pd.DataFrame:
    """A classify_traits-like frame: every trait negative unless the row says otherwise."""
    data = {f"trait_{t}": [r.get(t, NEGATIVE) for r in rows] for t in DESIGN.trait_ids}
    return pd.DataFrame(data, index=index, dtype="string")


def ids(n: int, prefix: str = "P") -> pd.Series:
    return pd.Series([f"{prefix}{i:05d}" for i in range(n)], dtype="string")


def test_same_seed_and_id_give_the_same_trait_alone_in_a_batch_or_shuffled():
    n = 300
    rows = [{"mals": POSITIVE, "hypercoagulation": POSITIVE, "hypoinflammation": POSITIVE}] * n
    batch = assign_trait(traits_frame(rows), DESIGN, seed=11, patient_ids=ids(n))
    order = np.random.default_rng(0).permutation(n)
    shuffled = assign_trait(
        traits_frame(rows, index=order),
        DESIGN,
        seed=11,
        patient_ids=pd.Series(ids(n).to_numpy()[order], index=order),
    )
    pd.testing.assert_frame_equal(shuffled.sort_index(), batch)
    alone = assign_trait(traits_frame(rows[:1], index=[0]), DESIGN, seed=11, patient_ids=ids(1))
    assert alone["assigned_trait"].item() == batch["assigned_trait"].iloc[0]
    assert (
        alone["assignment_u"].item()
        == batch["assignment_u"].iloc[0]
        == patient_uniform(11, "P00000")
    )


def test_different_seeds_give_different_draws():
    n = 1000
    rows = [{"mals": POSITIVE, "hypercoagulation": POSITIVE}] * n
    a = assign_trait(traits_frame(rows), DESIGN, seed=1, patient_ids=ids(n))
    b = assign_trait(traits_frame(rows), DESIGN, seed=2, patient_ids=ids(n))
    assert (a["assignment_u"] != b["assignment_u"]).all()
    changed = (a["assigned_trait"] != b["assigned_trait"]).mean()
    assert 0.4 < changed < 0.6  # independent fair draws differ half the time


def test_random_choice_among_two_traits_has_the_declared_frequencies():
    n = 4000
    rows = [{"mals": POSITIVE, "hypercoagulation": POSITIVE}] * n
    out = assign_trait(traits_frame(rows), DESIGN, seed=2024, patient_ids=ids(n))
    k = int((out["assigned_trait"] == "mals").sum())
    assert abs(k - n / 2) < 4 * np.sqrt(n * 0.25)  # binomial, 4 SD
    assert set(out["assigned_trait"]) == {"mals", "hypercoagulation"}
    u = out["assignment_u"].to_numpy()
    assert ((u >= 0) & (u < 1)).all()
    # the logged uniform explains the choice: mals comes first in design order
    assert ((u < 0.5) == (out["assigned_trait"] == "mals")).all()
    assert (
        out["assignment_rule"].iloc[0]
        == "random among 2 positive traits (weights mals 1, hypercoagulation 1)"
    )


def test_unequal_weights_from_the_design_are_honoured():
    n = 4000

    def weigh(data: dict) -> None:
        data["default"]["weights"]["mals"] = 3

    with modified_design(None, "proposed/multi_trait_policy.yaml", weigh) as changed:
        rows = [{"mals": POSITIVE, "hypercoagulation": POSITIVE}] * n
        out = assign_trait(traits_frame(rows), changed, seed=5, patient_ids=ids(n))
    k = int((out["assigned_trait"] == "mals").sum())
    assert abs(k - 0.75 * n) < 4 * np.sqrt(n * 0.75 * 0.25)


def test_priority_order_picks_the_first_positive_trait_in_the_declared_order():
    rows = [
        {"hyperinflammation": POSITIVE, "mals": POSITIVE, "hypercoagulation": POSITIVE},
        {"hyperinflammation": POSITIVE, "hypoinflammation": POSITIVE},
        {"mals": POSITIVE},
    ]
    out = assign_trait(traits_frame(rows), DESIGN, seed=0, policy="sensitivity")
    assert out["assigned_trait"].tolist() == ["hypercoagulation", "hypoinflammation", "mals"]
    assert out["assignment_rule"].tolist() == [
        "priority order (hypercoagulation > mals > hyperinflammation)",
        "priority order (hypoinflammation > hyperinflammation)",
        "only positive trait",
    ]
    assert out["assignment_u"].isna().all()
    assert (out["assignment_policy"] == "sensitivity").all()


def test_all_positive_traits_are_kept_and_indeterminate_ones_listed_apart():
    rows = [
        {"mals": POSITIVE, "hypofibrinolysis": INDETERMINATE},
        {"mals": INDETERMINATE},
        {},
        {"hyperinflammation": POSITIVE, "hypoinflammation": POSITIVE, "mals": POSITIVE},
    ]
    out = assign_trait(traits_frame(rows), DESIGN, seed=3, patient_ids=ids(4))
    assert out["positive_traits"].tolist() == [
        "mals",
        "",
        "",
        "hyperinflammation;hypoinflammation;mals",
    ]
    assert out["indeterminate_traits"].tolist() == ["hypofibrinolysis", "mals", "", ""]
    assert (
        out["assigned_trait"].iloc[0] == "mals"
        and out["assignment_rule"].iloc[0] == "only positive trait"
    )
    assert out["assigned_trait"].iloc[1:3].isna().all()
    assert out["assignment_rule"].iloc[1] == "no positive trait"
    assert np.isnan(out["assignment_u"].iloc[0]) and not np.isnan(out["assignment_u"].iloc[3])
    assert out["assigned_trait"].iloc[3] in {"hyperinflammation", "hypoinflammation", "mals"}


def test_incompatible_pairs_are_reported_without_changing_the_assignment():
    rows = [
        {"hyperinflammation": POSITIVE, "hypoinflammation": POSITIVE},
        {"hyperinflammation": POSITIVE},
    ]
    out = assign_trait(traits_frame(rows), DESIGN, seed=9, patient_ids=ids(2))
    assert out["incompatible_pairs_positive"].tolist() == ["hyperinflammation+hypoinflammation", ""]
    assert out["assigned_trait"].iloc[0] in {"hyperinflammation", "hypoinflammation"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": 1}, "patient_ids is required"),
        ({"seed": -1, "patient_ids": ["a"]}, "non-negative integer"),
        ({"seed": 1.5, "patient_ids": ["a"]}, "non-negative integer"),
        ({"seed": 1, "policy": "lottery", "patient_ids": ["a"]}, "policy must be"),
        ({"seed": 1, "patient_ids": [None]}, "patient id missing"),
    ],
)
def test_policy_arguments_are_checked(kwargs, message):
    rows = [{"mals": POSITIVE, "hypercoagulation": POSITIVE}]
    with pytest.raises(ValueError, match=message):
        assign_trait(traits_frame(rows), DESIGN, **kwargs)


# ----------------------------------------------------------------------------- properties
SEYMOUR_FIELDS = load_seymour_reference(DESIGN).fields
NUMERIC = sorted(
    {b for b in DESIGN.biomarkers}
    | {f for f in SEYMOUR_FIELDS if CONTRACT[f]["kind"] in ("float", "int")}
)
CATEGORIES = {
    f: CONTRACT[f]["categories"]
    for f in ("sex", "seymour_class", "pedsep_class", "irecords_signature")
}
AGE_LABELS = ["adult", "child", "indeterminate", "too_young", None]


@st.composite
def patient_tables(draw: Any) -> tuple[pd.DataFrame, list[str | None]]:
    n = draw(st.integers(1, 6))
    complete = draw(st.booleans())  # often all 29 Seymour variables present
    cols: dict[str, list[Any]] = {}
    for f in NUMERIC:
        lo, hi = CONTRACT[f]["range"]
        if CONTRACT[f]["kind"] == "int":
            value = st.integers(int(lo), int(hi))
        else:
            value = st.one_of(st.sampled_from([float(lo), float(hi)]), st.floats(lo, hi))
        if not (complete and f in SEYMOUR_FIELDS):
            value = st.one_of(st.none(), value)
        cols[f] = draw(st.lists(value, min_size=n, max_size=n))
    for f, cats in CATEGORIES.items():
        value = st.sampled_from(cats)
        if not (complete and f in SEYMOUR_FIELDS):
            value = st.one_of(st.none(), value)
        cols[f] = draw(st.lists(value, min_size=n, max_size=n))
    ages = draw(st.lists(st.sampled_from(AGE_LABELS), min_size=n, max_size=n))
    return frame(**cols), ages


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patient_tables())
def test_classification_is_total_and_never_raises_on_in_range_values(table):
    patients, ages = table
    out = classify_traits(patients, DESIGN, pd.Series(ages, index=patients.index, dtype="string"))
    assert len(out) == len(patients) and out.index.equals(patients.index)
    for t in DESIGN.trait_ids:
        assert out[f"trait_{t}"].isin(TRAIT_VALUES).all()
        assert (out[f"trait_{t}_reason"].str.len() > 0).all()
    assigned = assign_trait(out, DESIGN, seed=1, patient_ids=[f"p{i}" for i in range(len(out))])
    positive = out[trait_columns(DESIGN)] == POSITIVE
    has = assigned["assigned_trait"].notna()
    assert (has == positive.any(axis=1)).all()
    for i in np.nonzero(has.to_numpy())[0]:
        assert positive.iloc[i][f"trait_{assigned['assigned_trait'].iloc[i]}"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patient_tables())
def test_a_patient_is_classified_the_same_alone_as_in_a_batch(table):
    patients, ages = table
    groups = pd.Series(ages, index=patients.index, dtype="string")
    batch = classify_traits(patients, DESIGN, groups)
    last = patients.index[-1]
    alone = classify_traits(patients.loc[[last]], DESIGN, groups.loc[[last]])
    pd.testing.assert_frame_equal(alone, batch.loc[[last]])


def test_choose_trait_is_the_same_core_in_numpy_and_under_jax_jit():
    """The simulator calls the policy's pure core in JAX: it must choose as assign_trait does."""
    import jax
    import jax.numpy as jnp

    from palette_core.screening.traits import choose_trait, policy_arrays

    rng = np.random.default_rng(7)
    positive = rng.random((500, len(DESIGN.trait_ids))) < 0.3
    u = rng.random(500)
    for policy in ("default", "sensitivity"):
        random, weights, rank = policy_arrays(DESIGN, policy)
        expected = choose_trait(np, positive, u, weights, rank, random)
        core = partial(choose_trait, jnp, weights=weights, rank=rank, random=random)
        got = jax.jit(core)(positive, u)
        np.testing.assert_array_equal(np.asarray(got), expected)
        k = positive.sum(axis=1)
        assert np.all((expected == -1) == (k == 0))
        chosen = expected[k > 0]
        assert np.all(positive[np.flatnonzero(k > 0), chosen])


def test_the_draw_is_among_the_positive_traits_open_to_the_patient():
    rows = [
        {"hyperinflammation": POSITIVE, "hypoinflammation": POSITIVE, "mals": POSITIVE},
        {"mals": POSITIVE},
        {"hyperinflammation": POSITIVE, "mals": POSITIVE},
    ]
    ids = list(DESIGN.trait_ids)
    shut = np.ones((3, len(ids)), dtype=bool)
    shut[:, ids.index("mals")] = False
    shut[:, ids.index("hyperinflammation")] = False
    frame = traits_frame(rows)
    out = assign_trait(frame, DESIGN, seed=3, patient_ids=["a", "b", "c"], open_traits=shut)
    assert out["assigned_trait"].tolist()[0] == "hypoinflammation"
    assert out["assigned_trait"].isna().tolist() == [False, True, True]
    assert out["traits_drawn_among"].tolist() == ["hypoinflammation", "", ""]
    assert out["positive_traits"].tolist()[0] == "hyperinflammation;hypoinflammation;mals"
    assert out["assignment_rule"].tolist() == [
        "only positive trait open to the patient; closed to the patient: hyperinflammation, mals",
        "no positive trait open to the patient; closed to the patient: mals",
        "no positive trait open to the patient; closed to the patient: hyperinflammation, mals",
    ]
    # every trait open: the same draw as without the mask
    plain = assign_trait(frame, DESIGN, seed=3, patient_ids=["a", "b", "c"])
    everyone = assign_trait(
        frame, DESIGN, seed=3, patient_ids=["a", "b", "c"], open_traits=np.ones_like(shut)
    )
    pd.testing.assert_frame_equal(plain, everyone)
    with pytest.raises(ValueError, match="shape"):
        assign_trait(frame, DESIGN, seed=3, patient_ids=["a", "b", "c"], open_traits=shut[:2])
