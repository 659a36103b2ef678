"""Suspended arms: a dose that cannot be computed cannot be given (proposed/lifecycle.yaml).

An arm or age stratum whose dose a registry finding blocks is suspended from the start: the
design says who is suspended on a date, the lifecycle starts such an arm suspended, the
allocation state may not give it a probability, the randomiser never draws it, and only a
recorded, dated sponsor's decision lifts it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest
import support

from palette_core.design.loader import load_design, modified_design
from palette_core.errors import (
    AllocationStateError,
    ConflictingArgumentsError,
    DesignSchemaError,
    DuplicateIdError,
    IllegalTransitionError,
    RandomisationRefusedError,
    UnknownReferenceError,
)
from palette_core.randomisation import allocation_log as alloclog
from palette_core.randomisation import lifecycle as lc
from palette_core.randomisation.allocation import initial_states
from palette_core.randomisation.randomise import (
    allocation_state_from_dict,
    default_allocation_state,
    parse_secret,
    randomise,
    randomise_patients,
)

EXAMPLES = support.DATA / "examples" / "worked_examples.csv"
LIFECYCLE = "proposed/lifecycle.yaml"
START = dt.date(2026, 5, 1)
NOW = dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC)
#: every (arm, age group) that registry_findings.yaml blocks, with the findings
BLOCKED = {
    ("hinf_tocilizumab", "adult"): {"RF-02"},
    ("hinf_tocilizumab", "child"): {"RF-02"},
    ("cort_hc_fc", "adult"): {"RF-01"},
    ("cort_hc_fc", "child"): {"RF-01", "RF-15"},
    ("hinf_baricitinib", "child"): {"RF-14"},
    ("hinf_anakinra", "child"): {"RF-14"},
    ("mals_anakinra", "child"): {"RF-14"},
    ("hinf_mtx100", "child"): {"RF-18"},
    ("mals_mtx100", "child"): {"RF-18"},
}


@pytest.fixture(scope="module")
def secret():
    return parse_secret("b88d16f5d2cb9909c58a2a53ee3265905d53bdcd61363f97cc1a5856d3320a24")


@pytest.fixture(scope="module")
def raw():
    return pd.read_csv(EXAMPLES, dtype=str, keep_default_na=False).set_index("patient_id")


def _adult_hinf(raw: pd.DataFrame, pid: str) -> dict[str, Any]:
    """An adult positive for hyperinflammation only (EX-02 without its other traits)."""
    record = raw.loc["EX-02"].to_dict() | {"irecords_signature": "negative", "plasminogen": "1.9"}
    return record | {"patient_id": pid}


def _child_mals(raw: pd.DataFrame, pid: str) -> dict[str, Any]:
    """A child positive for MALS only (EX-05 without hyperinflammation and hypoinflammation)."""
    record = raw.loc["EX-05"].to_dict() | {"pedsep_class": "A", "lymphocytes": "1.5"}
    return record | {"patient_id": pid}


def _lift(arm: str, groups: list[str], on: str, **extra: Any):
    def edit(data: dict[str, Any]) -> None:
        data["suspension"]["lifted"].append(
            {
                "arm": arm,
                "age_groups": groups,
                "on": on,
                "decision": "Sponsor letter SP-2027-001",
                "summary": "the dose is now computable",
            }
            | extra
        )

    return edit


# ----------------------------------------------------------------------------- the design
def test_the_design_suspends_every_blocked_arm_and_age_stratum(design):
    found = {
        (a.id, g): {f.id for f in design.suspended_by(a.id, g)}
        for a in design.arms
        for g in design.arm_age_groups(a)
        if design.suspended_by(a.id, g)
    }
    assert found == BLOCKED
    for (arm, group), ids in BLOCKED.items():
        assert {f.id for f in design.dose_blocks(arm, group)} == ids
    assert {a.id for a in design.arms if design.is_suspended(a.id)} == {
        "hinf_tocilizumab",
        "cort_hc_fc",
    }
    assert design.allocatable_age_groups("hinf_baricitinib") == ("adult",)
    assert design.allocatable_age_groups("hinf_tocilizumab") == ()
    assert design.allocatable_age_groups("cort_hydrocortisone") == ("adult", "child")
    assert design.lifecycle.suspension.lifted == ()


def test_a_lift_applies_from_its_date_and_unblocks_the_dose():
    with modified_design(None, LIFECYCLE, _lift("hinf_tocilizumab", ["adult"], "2027-01-15")) as d:
        assert d.suspended_by("hinf_tocilizumab", "adult", dt.date(2027, 1, 14))
        assert d.suspended_by("hinf_tocilizumab", "adult", dt.date(2027, 1, 15)) == ()
        assert d.dose_blocks("hinf_tocilizumab", "adult") == ()  # the design as it stands
        assert d.suspended_by("hinf_tocilizumab", "child")  # not lifted for children
        assert d.is_suspended("hinf_tocilizumab", dt.date(2027, 1, 14))
        assert not d.is_suspended("hinf_tocilizumab", dt.date(2027, 1, 15))
        assert d.lift_of("hinf_tocilizumab", "adult").decision == "Sponsor letter SP-2027-001"


def _bad_lift(field: str, value: Any):
    def edit(data: dict[str, Any]) -> None:
        _lift("hinf_tocilizumab", ["adult"], "2027-01-15")(data)
        data["suspension"]["lifted"][-1][field] = value

    return edit


def _twice(data: dict[str, Any]) -> None:
    _lift("hinf_baricitinib", ["child"], "2027-01-15")(data)
    _lift("hinf_baricitinib", ["child"], "2027-02-15")(data)


def _no_way_back(data: dict[str, Any]) -> None:
    data["transitions"] = [
        t for t in data["transitions"] if (t["from"], t["to"]) != ("suspended", "open")
    ]


BAD_DESIGNS = [
    ("unknown arm", _bad_lift("arm", "hinf_nothing"), UnknownReferenceError,
     "suspension.lifted[0]", "arm", "not in arms.yaml"),
    ("not blocked", _bad_lift("arm", "hinf_anakinra"), ConflictingArgumentsError,
     "suspension.lifted[0]", "age_groups", "nothing to lift"),
    ("not admitted", _lift("hcoag_lmwh", ["child"], "2027-01-15"), ConflictingArgumentsError,
     "suspension.lifted[0]", "age_groups", "does not admit"),
    ("unknown age group", _bad_lift("age_groups", ["elderly"]), UnknownReferenceError,
     "suspension.lifted[0]", "age_groups", "elderly"),
    ("lifted twice", _twice, DuplicateIdError, "suspension.lifted[1]", "age_groups", "twice"),
    ("blank decision", _bad_lift("decision", "  "), DesignSchemaError,
     "suspension.lifted[0]", "decision", "must be recorded"),
    ("impossible date", _bad_lift("on", "2027-02-30"), DesignSchemaError,
     "suspension", "lifted[0].on", "date"),
    ("undeclared state", lambda d: d["suspension"].update(state="paused"), UnknownReferenceError,
     "suspension", "state", "not declared"),
    ("terminal state", lambda d: d["suspension"].update(state="withdrawn"),
     ConflictingArgumentsError, "suspension", "state", "non-terminal"),
    ("no way back", _no_way_back, ConflictingArgumentsError, "suspension", "state",
     "never be lifted"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit_fn", "error", "entry", "field", "message"),
    [c[1:] for c in BAD_DESIGNS],
    ids=[c[0] for c in BAD_DESIGNS],
)
def test_the_loader_refuses_a_bad_suspension(
    design_copy, edit, edit_fn, error, entry, field, message
):
    edit(design_copy, LIFECYCLE, edit_fn)
    with pytest.raises(error, match=message) as info:
        load_design(design_copy)
    assert (info.value.file, info.value.entry, info.value.field) == (LIFECYCLE, entry, field)


# ----------------------------------------------------------------------------- the lifecycle
def test_arms_blocked_for_every_age_group_start_suspended_with_the_findings(design):
    state = lc.initial_state(design)
    toci, hcfc = state.arm("hinf_tocilizumab"), state.arm("cort_hc_fc")
    assert (toci.state, toci.since, hcfc.state) == ("suspended", START, "suspended")
    assert "dose not computable" in toci.reason and "RF-02" in toci.reason
    assert "RF-01" in hcfc.reason and "RF-15" in hcfc.reason
    assert state.arm("hinf_baricitinib").state == "open"  # children only
    assert lc.suspended_age_groups(state, "hinf_baricitinib") == ("child",)
    assert "hinf_tocilizumab" not in lc.open_arms(state, "hyperinflammation")
    status = lc.trait_status(state, "hyperinflammation")
    assert status.recruiting and "suspended: hinf_tocilizumab" in status.reason
    assert lc.from_json(lc.to_json(state), design) == state


def test_only_a_recorded_sponsor_decision_lifts_a_suspension():
    lift = _lift("hinf_tocilizumab", ["adult", "child"], "2027-01-15")
    with modified_design(None, LIFECYCLE, lift) as d:
        state = lc.initial_state(d)  # the lift is after the study start: suspended at first
        assert state.arm("hinf_tocilizumab").state == "suspended"
        with pytest.raises(IllegalTransitionError, match="not lifted on 2027-01-14"):
            lc.open_arm(state, "hinf_tocilizumab", dt.date(2027, 1, 14), "too early")
        with pytest.raises(IllegalTransitionError, match="starting state 'open'"):
            lc.transition(state, "hinf_tocilizumab", "planned", dt.date(2027, 1, 15), "x")
        opened = lc.open_arm(state, "hinf_tocilizumab", dt.date(2027, 1, 15), "SP-2027-001")
        assert opened.arm("hinf_tocilizumab").state == "open"
        assert lc.from_json(lc.to_json(opened), d) == opened
    with modified_design(None, LIFECYCLE, _lift("cort_hc_fc", ["adult"], "2026-04-01")) as d:
        # lifted before the study start for adults: open from the start, children suspended
        assert lc.initial_state(d).arm("cort_hc_fc").state == "open"
        assert d.suspended_age_groups("cort_hc_fc") == ("child",)


def test_a_suspended_arm_may_be_withdrawn_and_keeps_its_trait_open(design):
    state = lc.initial_state(design)
    state = lc.close_arm(state, "cort_hc_fc", "withdrawn", START, "amendment: dropped")
    for arm in ("cort_hydrocortisone", "cort_fludrocortisone"):
        state = lc.close_arm(state, arm, "futility", START, "DMC")
    assert lc.trait_status(state, "corticosteroid_response").status == "closed"
    kept = lc.close_arm(lc.initial_state(design), "hinf_baricitinib", "futility", START, "x")
    for arm in ("hinf_anakinra", "hinf_mtx100"):
        kept = lc.close_arm(kept, arm, "futility", START, "DMC")
    # only the suspended tocilizumab is left: the trait stays open, recruiting nobody
    status = lc.trait_status(kept, "hyperinflammation")
    assert (status.status, status.recruiting) == ("open", False)


# ----------------------------------------------------------------------------- allocation
def test_an_allocation_state_cannot_give_a_suspended_arm_a_probability(design):
    traits = {
        "hyperinflammation": {
            "hinf_usual_care": 0.2,
            "hinf_tocilizumab": 0.2,
            "hinf_baricitinib": 0.2,
            "hinf_anakinra": 0.2,
            "hinf_mtx100": 0.2,
        }
    }
    data = {"version": 1, "effective_from": "2027-02-01", "source": "t", "traits": traits}
    with pytest.raises(AllocationStateError, match="RF-02") as info:
        allocation_state_from_dict(data, design, "state.json")
    assert info.value.entry == "traits.hyperinflammation.hinf_tocilizumab"
    lift = _lift("hinf_tocilizumab", ["adult", "child"], "2027-01-15")
    with modified_design(None, LIFECYCLE, lift) as d:
        assert allocation_state_from_dict(data, d).traits["hyperinflammation"]
        early = data | {"effective_from": "2027-01-01"}
        with pytest.raises(AllocationStateError, match="suspended on 2027-01-01"):
            allocation_state_from_dict(early, d)


def test_the_randomiser_never_draws_a_suspended_arm(design, raw, secret, tmp_path):
    state = default_allocation_state(design)
    adults = pd.DataFrame([_adult_hinf(raw, f"A{i}") for i in range(60)])
    result = randomise_patients(adults, design, state, secret, tmp_path / "a.jsonl", now=NOW)
    arms = {a.arm for a in result.allocations}
    assert len(result.allocations) == 60 and {a.trait for a in result.allocations} == {
        "hyperinflammation"
    }
    assert "hinf_tocilizumab" not in arms
    assert arms == {"hinf_usual_care", "hinf_baricitinib", "hinf_anakinra", "hinf_mtx100"}


def test_a_child_is_never_drawn_to_an_arm_suspended_for_children(design, raw, secret, tmp_path):
    with pytest.raises(RandomisationRefusedError, match="no open experimental arm") as info:
        randomise(_child_mals(raw, "C0"), design, default_allocation_state(design), secret,
                  tmp_path / "c.jsonl", now=NOW)  # fmt: skip
    assert "mals_mtx100 (RF-18)" in info.value.reason
    assert "mals_anakinra (RF-14)" in info.value.reason
    assert not (tmp_path / "c.jsonl").exists() or not alloclog.load_entries(tmp_path / "c.jsonl")
    # MTx.100 lifted for children: they are drawn to it or usual care, never to anakinra
    with modified_design(None, LIFECYCLE, _lift("mals_mtx100", ["child"], "2026-05-15")) as d:
        log = tmp_path / "lifted.jsonl"
        children = pd.DataFrame([_child_mals(raw, f"C{i}") for i in range(40)])
        result = randomise_patients(children, d, default_allocation_state(d), secret, log, now=NOW)
        assert {a.arm for a in result.allocations} == {"mals_usual_care", "mals_mtx100"}
        restricted = alloclog.load_entries(alloclog.restricted_path_for(log))
        assert restricted[0]["excluded_for_age_group"] == ["mals_anakinra"]
        assert restricted[0]["probabilities"]["mals_anakinra"] == 0.0
        # before the date of the sponsor's decision the stratum is still suspended
        early = dt.datetime(2026, 5, 10, tzinfo=dt.UTC)
        late = randomise_patients(
            children.assign(patient_id=[f"E{i}" for i in range(40)]).head(3),
            d,
            default_allocation_state(d),
            secret,
            tmp_path / "early.jsonl",
            now=early,
        )
        assert not late.allocations and {r.code for r in late.refused} == {"no_open_arm"}


def test_initial_states_and_the_default_state_agree_on_the_suspended_arms(design):
    states = initial_states(design)
    default = default_allocation_state(design)
    for t in design.trait_ids:
        for arm, p in default.probabilities(t, design):
            assert (p > 0) == (states[arm] == "open"), arm
