"""The arm lifecycle: the transition table, dates, adding arms, the trait rule, JSON, the design."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import itertools
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palette_core.analysis.decisions import DECISION_NAMES
from palette_core.design.loader import load_design, modified_design
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignError,
    DesignSchemaError,
    DuplicateIdError,
    IllegalTransitionError,
    LifecycleStateError,
    OutOfRangeError,
    PaletteError,
    UnknownReferenceError,
    UnknownUnitError,
)
from palette_core.randomisation import lifecycle as lc

DESIGN = load_design()  # for parametrisation only; tests use the `design` fixture
START = DESIGN.trial.study_start
D1, D2, D3, D4 = (START + dt.timedelta(days=n) for n in (30, 60, 90, 120))

#: the requested moves, written out by hand: the YAML must say exactly this
EXPECTED_REQUESTS = {
    ("planned", "open"),
    ("planned", "withdrawn"),
    ("open", "graduated"),
    ("open", "futility"),
    ("open", "harm"),
    ("open", "cap_reached"),
    ("open", "withdrawn"),
    ("suspended", "open"),
    ("suspended", "planned"),
    ("suspended", "withdrawn"),
}
#: moves out of a suspension: declared, but refused until the sponsor's decision is recorded
LIFTS = {("suspended", "open"), ("suspended", "planned")}
#: the trait rule's moves of usual care
EXPECTED_TRAIT_RULE = {("open", "trait_closed"), ("trait_closed", "open")}
EXPECTED_STATES = [
    "planned",
    "open",
    "suspended",
    "graduated",
    "futility",
    "harm",
    "cap_reached",
    "withdrawn",
    "trait_closed",
]
CLOSED = ["graduated", "futility", "harm", "cap_reached", "withdrawn"]

STATES = [s.id for s in DESIGN.lifecycle.states]
EXPERIMENTAL_STATES = [s.id for s in DESIGN.lifecycle.states if "experimental" in s.roles]
CONTROL_STATES = [s.id for s in DESIGN.lifecycle.states if "control" in s.roles]


def _new_arm(**changes: Any) -> dict[str, Any]:
    """A new hypofibrinolysis arm, described as in arms.yaml (a copy of plasminogen)."""
    arm = DESIGN.arm("hfib_plasminogen").model_dump(mode="json")
    arm.update(
        id="hfib_pandemic",
        name="Pandemic treatment",
        availability={"initial_state": "planned", "opens_when": "Supply in place"},
    )
    arm.update(changes)
    return arm


def _close_trait(state: lc.PlatformState, trait: str, on: dt.date) -> lc.PlatformState:
    for a in state.arms_of(trait):
        if a.role == "experimental" and a.state in ("open", "planned"):
            to = "futility" if a.state == "open" else "withdrawn"
            state = lc.transition(state, a.id, to, on, "test")
    return state


def _arm_in(design, state_id: str) -> tuple[lc.PlatformState, str]:
    """A platform state with a hypofibrinolysis experimental arm in ``state_id`` (trait open)."""
    state = lc.initial_state(design)
    if state_id == "planned":
        return state, "hfib_octaplas"
    if state_id == "open":
        return state, "hfib_sivelestat"
    if state_id == "suspended":  # RF-02 blocks tocilizumab for adults and children
        return state, "hinf_tocilizumab"
    return lc.transition(state, "hfib_sivelestat", state_id, D1, "test"), "hfib_sivelestat"


# ----------------------------------------------------------------------------- the table
def test_the_lifecycle_file_declares_exactly_the_expected_states_and_transitions(design):
    assert [s.id for s in design.lifecycle.states] == EXPECTED_STATES
    moves = {(t.from_, t.to): t.by for t in design.lifecycle.transitions}
    assert {p for p, by in moves.items() if by == "request"} == EXPECTED_REQUESTS
    assert {p for p, by in moves.items() if by == "trait_rule"} == EXPECTED_TRAIT_RULE
    terminal = {s.id for s in design.lifecycle.states if s.terminal}
    assert terminal == set(CLOSED)
    assert not any(f in terminal for f, _ in moves)


def test_transitions_say_what_authorises_them(design):
    req = {(t.from_, t.to): set(t.requires) for t in design.lifecycle.transitions}
    for closed in ("graduated", "futility", "harm", "cap_reached"):
        assert "dmc_decision" in req[("open", closed)]
    assert "amendment" in req[("open", "withdrawn")]
    assert "amendment" in req[("planned", "withdrawn")]
    assert req[("planned", "open")] == {"date"}
    assert req[("suspended", "open")] == {"sponsor_decision", "date"}
    assert "amendment" in req[("suspended", "withdrawn")]
    assert all("date" in r for r in req.values())
    assert "amendment" in design.lifecycle.adding_arms.requires


@pytest.mark.parametrize(
    ("frm", "to"), list(itertools.product(EXPERIMENTAL_STATES, STATES)), ids="->".join
)
def test_every_pair_of_states_for_an_experimental_arm(design, frm, to):
    state, arm = _arm_in(design, frm)
    assert state.arm(arm).state == frm
    if (frm, to) in LIFTS:
        with pytest.raises(IllegalTransitionError, match="suspension is not lifted"):
            lc.transition(state, arm, to, D2, "no sponsor decision yet")
    elif (frm, to) in EXPECTED_REQUESTS:
        after = lc.transition(state, arm, to, D2, "allowed move")
        assert after.arm(arm).state == to
        assert after.arm(arm).since == D2
        assert after.arm(arm).history[-1] == lc.Transition(
            arm, frm, to, D2, "allowed move", "request"
        )
        assert state.arm(arm).state == frm  # the old state is untouched
    else:
        with pytest.raises(IllegalTransitionError) as info:
            lc.transition(state, arm, to, D2, "illegal move")
        err = info.value
        assert (err.arm, err.from_state, err.to_state, err.on) == (arm, frm, to, D2)
        assert arm in str(err) and f"{frm} -> {to}" in str(err) and str(D2) in str(err)


@pytest.mark.parametrize(
    ("frm", "to"), list(itertools.product(CONTROL_STATES, STATES)), ids="->".join
)
def test_usual_care_never_moves_by_itself(design, frm, to):
    state = lc.initial_state(design)
    if frm == "trait_closed":
        state = _close_trait(state, "hypofibrinolysis", D1)
    assert state.arm("hfib_usual_care").state == frm
    with pytest.raises(IllegalTransitionError, match="usual care does not move by itself"):
        lc.transition(state, "hfib_usual_care", to, D2, "by hand")


def test_close_arm_accepts_only_closed_states(design):
    state = lc.initial_state(design)
    for closed in CLOSED:
        assert lc.close_arm(state, "hinf_anakinra", closed, D1, "x").arm("hinf_anakinra").state == (
            closed
        )
    for not_closed in ("open", "planned"):
        with pytest.raises(IllegalTransitionError, match="not a closed state"):
            lc.close_arm(state, "hinf_anakinra", not_closed, D1, "x")


def test_a_closed_arm_cannot_reopen_and_a_planned_arm_cannot_graduate(design):
    state = lc.close_arm(lc.initial_state(design), "hinf_anakinra", "futility", D1, "DMC")
    with pytest.raises(IllegalTransitionError, match="'futility' is terminal"):
        lc.open_arm(state, "hinf_anakinra", D2, "second thoughts")
    with pytest.raises(IllegalTransitionError, match="may move only to"):
        lc.transition(state, "hfib_octaplas", "graduated", D2, "never opened")


def test_unknown_arms_states_empty_reasons_and_datetimes_are_refused(design):
    state = lc.initial_state(design)
    with pytest.raises(IllegalTransitionError, match="unknown arm") as info:
        lc.open_arm(state, "hinf_nothing", D1, "x")
    assert info.value.from_state is None
    with pytest.raises(IllegalTransitionError, match="unknown state"):
        lc.transition(state, "hinf_anakinra", "paused", D1, "x")
    with pytest.raises(IllegalTransitionError, match="needs a reason"):
        lc.close_arm(state, "hinf_anakinra", "harm", D1, "  ")
    with pytest.raises(TypeError, match="datetime.date"):
        lc.close_arm(state, "hinf_anakinra", "harm", dt.datetime(2027, 1, 1), "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="datetime.date"):
        lc.close_arm(state, "hinf_anakinra", "harm", "2027-01-01", "x")  # type: ignore[arg-type]


def test_illegal_transition_error_is_a_palette_value_error():
    assert issubclass(IllegalTransitionError, PaletteError)
    assert issubclass(IllegalTransitionError, ValueError)
    assert issubclass(LifecycleStateError, PaletteError)


# ----------------------------------------------------------------------------- dates
def test_dates_must_not_go_backwards_for_the_arm(design):
    state = lc.open_arm(lc.initial_state(design), "hfib_octaplas", D2, "supply")
    with pytest.raises(IllegalTransitionError, match="before the arm's last transition"):
        lc.close_arm(state, "hfib_octaplas", "withdrawn", D1, "x")
    with pytest.raises(IllegalTransitionError, match="before the arm's last transition"):
        lc.open_arm(lc.initial_state(design), "hfib_octaplas", START - dt.timedelta(days=1), "x")


def test_dates_must_not_go_backwards_within_the_trait(design):
    state = lc.close_arm(lc.initial_state(design), "hfib_sivelestat", "harm", D2, "DMC")
    with pytest.raises(IllegalTransitionError, match="hfib_sivelestat") as info:
        lc.open_arm(state, "hfib_octaplas", D1, "supply")
    assert info.value.arm == "hfib_octaplas" and info.value.on == D1
    # the same day is not backwards, and other traits keep their own clock
    assert lc.open_arm(state, "hfib_octaplas", D2, "supply").arm("hfib_octaplas").state == "open"
    assert (
        lc.close_arm(state, "hinf_anakinra", "futility", D1, "x").arm("hinf_anakinra").since == D1
    )


# ----------------------------------------------------------------------------- initial state
def test_initial_state_is_arms_yaml_on_the_study_start(design):
    state = lc.initial_state(design)
    assert state.study_start == START == dt.date(2026, 5, 1)
    assert state.arm_ids == tuple(a.id for a in design.arms)
    suspended = {"hinf_tocilizumab", "cort_hc_fc"}  # RF-02; RF-01 and RF-15
    assert lc.states_mapping(state) == {
        a.id: "suspended" if a.id in suspended else a.availability.initial_state
        for a in design.arms
    }
    assert [a.id for a in state.arms if a.state == "planned"] == ["hfib_octaplas"]
    octaplas = state.arm("hfib_octaplas")
    assert octaplas.since == START
    assert "supply circuit" in octaplas.reason
    assert octaplas.history == (
        lc.Transition("hfib_octaplas", None, "planned", START, octaplas.reason, "design"),
    )
    for trait in design.trait_ids:
        assert lc.trait_status(state, trait).status == "open"


def test_the_state_is_immutable(design):
    state = lc.initial_state(design)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.arms = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.arms[0].state = "open"  # type: ignore[misc]
    before = lc.to_json(state)
    lc.close_arm(state, "hinf_anakinra", "harm", D1, "x")
    assert lc.to_json(state) == before


# ----------------------------------------------------------------------------- Octaplas LG
def test_octaplas_lg_opens_on_a_date(design):
    state = lc.initial_state(design)
    assert lc.open_arms(state, "hypofibrinolysis") == (
        "hfib_usual_care",
        "hfib_sivelestat",
        "hfib_plasminogen",
    )
    on = dt.date(2026, 9, 1)
    opened = lc.open_arm(state, "hfib_octaplas", on, "supply circuit in place")
    arm = opened.arm("hfib_octaplas")
    assert (arm.state, arm.since, arm.reason) == ("open", on, "supply circuit in place")
    assert [(t.from_state, t.to_state, t.on) for t in arm.history] == [
        (None, "planned", START),
        ("planned", "open", on),
    ]
    # design order, usual care first
    assert lc.open_arms(opened, "hypofibrinolysis") == (
        "hfib_usual_care",
        "hfib_sivelestat",
        "hfib_octaplas",
        "hfib_plasminogen",
    )
    assert lc.states_mapping(opened)["hfib_octaplas"] == "open"
    assert opened.log[-1] == arm.history[-1]


# ----------------------------------------------------------------------------- the trait rule
@pytest.mark.parametrize("trait", DESIGN.trait_ids)
def test_closing_every_experimental_arm_closes_the_trait(design, trait):
    state = lc.initial_state(design)
    experimental = [a.id for a in state.arms_of(trait) if a.role == "experimental"]
    control = design.control_of(trait).id
    for i, arm in enumerate(experimental):
        assert lc.trait_status(state, trait).status == "open"
        to = "futility" if state.arm(arm).state == "open" else "withdrawn"
        state = lc.transition(state, arm, to, D1 + dt.timedelta(days=i), "DMC")
    last_day = D1 + dt.timedelta(days=len(experimental) - 1)
    status = lc.trait_status(state, trait)
    assert status == lc.TraitStatus(
        trait, "closed", last_day, "no open or planned experimental arm", False
    )
    uc = state.arm(control)
    assert (uc.state, uc.since) == ("trait_closed", last_day)
    assert uc.history[-1] == lc.Transition(
        control,
        "open",
        "trait_closed",
        last_day,
        "no open or planned experimental arm",
        "trait_rule",
    )
    assert state.log[-1] == uc.history[-1]  # recorded right after the closure that caused it
    assert state.log[-2].arm == experimental[-1]
    assert lc.open_arms(state, trait) == ()
    for other in design.trait_ids:
        if other != trait:
            assert lc.trait_status(state, other).status == "open"


def test_a_trait_with_only_planned_arms_stays_open_but_recruits_nobody(design):
    state = lc.initial_state(design)
    for arm in ("hfib_sivelestat", "hfib_plasminogen"):
        state = lc.close_arm(state, arm, "futility", D1, "DMC")
    status = lc.trait_status(state, "hypofibrinolysis")
    assert (status.status, status.recruiting) == ("open", False)
    assert "planned: hfib_octaplas" in status.reason
    assert lc.open_arms(state, "hypofibrinolysis") == ()
    assert state.arm("hfib_usual_care").state == "open"
    state = lc.open_arm(state, "hfib_octaplas", D2, "supply")
    assert lc.open_arms(state, "hypofibrinolysis") == ("hfib_usual_care", "hfib_octaplas")
    assert lc.trait_status(state, "hypofibrinolysis").recruiting


def test_withdrawing_the_last_planned_arm_closes_the_trait(design):
    state = lc.initial_state(design)
    for arm in ("hfib_sivelestat", "hfib_plasminogen"):
        state = lc.close_arm(state, arm, "cap_reached", D1, "cap")
    state = lc.close_arm(state, "hfib_octaplas", "withdrawn", D2, "no supply circuit")
    assert lc.trait_status(state, "hypofibrinolysis").status == "closed"
    assert lc.trait_status(state, "hypofibrinolysis").since == D2


def test_unknown_trait_is_a_key_error(design):
    with pytest.raises(KeyError):
        lc.trait_status(lc.initial_state(design), "no_such_trait")


# ----------------------------------------------------------------------------- adding arms
def test_adding_an_arm_then_opening_it(design):
    state = lc.add_arm(lc.initial_state(design), _new_arm(), D1, "amendment 2: pandemic")
    arm = state.arm("hfib_pandemic")
    assert (arm.state, arm.since, arm.added, arm.trait) == ("planned", D1, True, "hypofibrinolysis")
    assert arm.history == (
        lc.Transition("hfib_pandemic", None, "planned", D1, "amendment 2: pandemic", "amendment"),
    )
    assert state.arm_ids[-1] == "hfib_pandemic"
    assert "hfib_pandemic" not in lc.open_arms(state, "hypofibrinolysis")
    state = lc.open_arm(state, "hfib_pandemic", D2, "supply in place")
    assert lc.open_arms(state, "hypofibrinolysis") == (
        "hfib_usual_care",
        "hfib_sivelestat",
        "hfib_plasminogen",
        "hfib_pandemic",
    )
    assert lc.states_mapping(state)["hfib_pandemic"] == "open"
    # it closes like any other arm
    state = lc.close_arm(state, "hfib_pandemic", "graduated", D3, "DMC")
    assert state.arm("hfib_pandemic").state == "graduated"


def test_an_added_arm_with_an_opening_date_opens_no_earlier(design):
    state = lc.add_arm(
        lc.initial_state(design),
        _new_arm(availability={"initial_state": "planned"}),
        D1,
        "amendment 2",
        opens_on=D3,
    )
    assert state.arm("hfib_pandemic").opens_on == D3
    assert lc.due_to_open(state, D2) == ()
    assert lc.due_to_open(state, D3) == ("hfib_pandemic",)
    with pytest.raises(IllegalTransitionError, match=f"opens it on {D3}"):
        lc.open_arm(state, "hfib_pandemic", D2, "early")
    assert lc.open_arm(state, "hfib_pandemic", D3, "on time").arm("hfib_pandemic").state == "open"
    # withdrawing before the date is allowed
    assert lc.close_arm(state, "hfib_pandemic", "withdrawn", D2, "x").arm("hfib_pandemic").state


def test_an_arm_given_as_a_schema_object_is_accepted(design):
    from palette_core.design.arms import Arm

    spec = Arm.model_validate(_new_arm())
    state = lc.add_arm(lc.initial_state(design), spec, D1, "amendment")
    assert state.arm("hfib_pandemic").arm == spec


@pytest.mark.parametrize(
    ("changes", "opens_on", "error", "field", "message"),
    [
        ({"trait": "pandemic"}, None, UnknownReferenceError, "trait", "not in traits.yaml"),
        ({"id": "hfib_octaplas"}, None, DuplicateIdError, "id", "already in the platform"),
        (
            {"role": "control", "components": []},
            None,
            ConflictingArgumentsError,
            "role",
            "usual care",
        ),
        (
            {"availability": {"initial_state": "open"}},
            None,
            ConflictingArgumentsError,
            "availability.initial_state",
            "starts 'planned'",
        ),
        (
            {"availability": {"initial_state": "planned"}},
            None,
            DesignSchemaError,
            "availability.opens_when",
            "must say when it opens",
        ),
        ({}, D1 - dt.timedelta(days=1), OutOfRangeError, "opens_on", "before the amendment"),
        ({"components": []}, None, DesignSchemaError, "components", "at least one component"),
        ({"age_groups": ["child"]}, None, ConflictingArgumentsError, "age_groups", "admits only"),
        ({"age_groups": ["infant"]}, None, UnknownReferenceError, "age_groups", "strata.yaml"),
        (
            {"components": [{"substance": "remdesivir", "route": "intravenous"}]},
            None,
            UnknownReferenceError,
            "components[0].substance",
            "not in substances.yaml",
        ),
        (
            {
                "components": [
                    {
                        "substance": "mtx100",
                        "route": "extracorporeal",
                        "procedure": {"max_hours_per_day": 30, "max_consecutive_days": 4},
                    }
                ]
            },
            None,
            OutOfRangeError,
            "components[0].procedure",
            "hours per day",
        ),
        ({"colour": "red"}, None, DesignSchemaError, "colour", "Extra inputs"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_a_new_arm_that_does_not_fit_the_design_is_refused(
    design, changes, opens_on, error, field, message
):
    with pytest.raises(error, match=message) as info:
        lc.add_arm(
            lc.initial_state(design), _new_arm(**changes), D1, "amendment", opens_on=opens_on
        )
    assert info.value.file == "add_arm (amendment)"
    assert info.value.entry == "hfib_pandemic" or changes.get("id") == info.value.entry
    assert field in (info.value.field or "")


def test_a_new_arm_dose_is_checked_like_arms_yaml(design):
    arm = _new_arm()
    arm["components"][0]["adult"][0]["unit"] = "furlong"
    with pytest.raises(UnknownUnitError, match="furlong") as info:
        lc.add_arm(lc.initial_state(design), arm, D1, "amendment")
    assert info.value.file == "add_arm (amendment)"
    assert info.value.field == "components[0].adult[0].unit"


def test_a_trait_cannot_have_more_open_or_planned_arms_than_the_registry_allows(design):
    state = lc.initial_state(design)
    with pytest.raises(IllegalTransitionError, match="at most 4"):
        lc.add_arm(state, _new_arm(id="hinf_pandemic", trait="hyperinflammation"), D1, "x")
    # a closed arm frees its place
    state = lc.close_arm(state, "hinf_mtx100", "futility", D1, "DMC")
    state = lc.add_arm(state, _new_arm(id="hinf_pandemic", trait="hyperinflammation"), D1, "x")
    assert state.arm("hinf_pandemic").state == "planned"


def test_adding_an_arm_cannot_be_dated_before_the_traits_last_move(design):
    state = lc.close_arm(lc.initial_state(design), "hfib_sivelestat", "harm", D2, "DMC")
    with pytest.raises(IllegalTransitionError, match="last transition") as info:
        lc.add_arm(state, _new_arm(), D1, "amendment")
    assert (info.value.arm, info.value.from_state, info.value.to_state) == (
        "hfib_pandemic",
        None,
        "planned",
    )


def test_adding_an_arm_to_a_closed_trait_reopens_it(design):
    """Proposed (lifecycle.yaml adding_arms.closed_trait: reopen): a perpetual platform lets a
    pandemic treatment join a trait whose arms have all closed; its usual care reopens."""
    state = _close_trait(lc.initial_state(design), "hypofibrinolysis", D1)
    assert lc.trait_status(state, "hypofibrinolysis").status == "closed"
    # the closed arms themselves stay closed
    with pytest.raises(IllegalTransitionError, match="terminal"):
        lc.open_arm(state, "hfib_sivelestat", D2, "reopen")
    state = lc.add_arm(state, _new_arm(), D2, "amendment 5: pandemic treatment")
    status = lc.trait_status(state, "hypofibrinolysis")
    assert (status.status, status.since, status.recruiting) == ("open", D2, False)
    uc = state.arm("hfib_usual_care")
    assert uc.state == "open"
    assert [t.to_state for t in uc.history] == ["open", "trait_closed", "open"]
    assert uc.history[-1].by == "trait_rule" and "hfib_pandemic" in uc.history[-1].reason
    assert lc.open_arms(state, "hypofibrinolysis") == ()
    state = lc.open_arm(state, "hfib_pandemic", D3, "supply")
    assert lc.open_arms(state, "hypofibrinolysis") == ("hfib_usual_care", "hfib_pandemic")
    # and it closes again when the new arm closes
    state = lc.close_arm(state, "hfib_pandemic", "futility", D4, "DMC")
    assert lc.trait_status(state, "hypofibrinolysis").status == "closed"


# ----------------------------------------------------------------------------- the design decides
def test_a_closed_trait_refuses_new_arms_when_the_lifecycle_says_so():
    def refuse(data: dict[str, Any]) -> None:
        data["adding_arms"]["closed_trait"] = "refuse"

    with modified_design(None, "proposed/lifecycle.yaml", refuse) as d:
        state = _close_trait(lc.initial_state(d), "hypofibrinolysis", D1)
        with pytest.raises(IllegalTransitionError, match="'refuse'"):
            lc.add_arm(state, _new_arm(), D2, "amendment")
        # an open trait still takes a new arm
        state = lc.add_arm(lc.initial_state(d), _new_arm(), D2, "amendment")
        assert state.arm("hfib_pandemic").state == "planned"


def test_removing_a_transition_from_the_design_forbids_it(design):
    assert lc.close_arm(lc.initial_state(design), "hinf_anakinra", "cap_reached", D1, "cap")

    def drop(data: dict[str, Any]) -> None:
        data["transitions"] = [
            t for t in data["transitions"] if (t["from"], t["to"]) != ("open", "cap_reached")
        ]

    with modified_design(None, "proposed/lifecycle.yaml", drop) as d:
        assert ("open", "cap_reached") not in set(
            lc.transition_table(d)[["from", "to"]].itertuples(index=False, name=None)
        )
        with pytest.raises(IllegalTransitionError, match="not an allowed transition"):
            lc.close_arm(lc.initial_state(d), "hinf_anakinra", "cap_reached", D1, "cap")


def test_the_trait_rule_reason_comes_from_the_design():
    def reword(data: dict[str, Any]) -> None:
        data["trait_rule"]["reason"] = "nothing left to compare"

    with modified_design(None, "proposed/lifecycle.yaml", reword) as d:
        state = _close_trait(lc.initial_state(d), "mals", D1)
        assert lc.trait_status(state, "mals").reason == "nothing left to compare"


def test_a_state_refuses_a_different_design(design):
    state = lc.initial_state(design)

    def reword(data: dict[str, Any]) -> None:
        data["trait_rule"]["reason"] = "reworded"

    with modified_design(None, "proposed/lifecycle.yaml", reword) as d:
        with pytest.raises(LifecycleStateError, match="design_hash"):
            lc.open_arm(state, "hfib_octaplas", D1, "x", d)
    assert lc.open_arm(state, "hfib_octaplas", D1, "x", design).arm("hfib_octaplas").state == "open"


# ----------------------------------------------------------------------------- tables
def test_lifecycle_table_has_one_row_per_arm(design):
    state = lc.add_arm(lc.initial_state(design), _new_arm(), D1, "amendment")
    table = lc.lifecycle_table(state)
    assert list(table.columns) == ["arm", "trait", "state", "since", "reason"]
    assert list(table["arm"]) == list(state.arm_ids)
    row = table.set_index("arm").loc["hfib_pandemic"]
    assert (row["trait"], row["state"], row["since"]) == ("hypofibrinolysis", "planned", D1)


def test_transition_table_is_built_from_the_design(design):
    table = lc.transition_table(design)
    assert list(table.columns[:3]) == ["from", "to", "by"]
    assert "requires" in table.columns
    pairs = set(table[table["by"] == "request"][["from", "to"]].itertuples(index=False, name=None))
    assert pairs == EXPECTED_REQUESTS
    graduated = table[(table["from"] == "open") & (table["to"] == "graduated")].iloc[0]
    assert graduated["requires"] == "DMC decision + date"
    assert table["rationale"].str.len().min() > 20


# ----------------------------------------------------------------------------- JSON
def _busy_state(design) -> lc.PlatformState:
    state = lc.initial_state(design)
    state = lc.open_arm(state, "hfib_octaplas", D1, "supply circuit in place")
    state = lc.close_arm(state, "hinf_anakinra", "graduated", D1, "DMC look 3")
    state = _close_trait(state, "hypofibrinolysis", D2)
    state = lc.add_arm(state, _new_arm(), D3, "amendment 4 « pandémie »", opens_on=D4)
    return state


def test_json_round_trip(design):
    state = _busy_state(design)
    text = lc.to_json(state)
    back = lc.from_json(text, design)
    assert back == state
    assert lc.to_json(back) == text
    assert back.arm("hfib_pandemic").opens_on == D4
    assert json.loads(text)["format"] == lc.FORMAT


def _tamper(text: str, edit) -> str:
    doc = json.loads(text)
    edit(doc)
    return json.dumps(doc)


def _drop_trait_rule_entry(doc: dict[str, Any]) -> None:
    i = next(i for i, t in enumerate(doc["log"]) if t["by"] == "trait_rule")
    del doc["log"][i]


def _reopen_closed_arm(doc: dict[str, Any]) -> None:
    doc["log"].append(
        {
            "arm": "hinf_anakinra",
            "from": "graduated",
            "to": "open",
            "on": "2027-01-01",
            "reason": "x",
            "by": "request",
        }  # fmt: skip
    )


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda d: d.update(format="palette-lifecycle/0"), "format"),
        (lambda d: d.update(design_hash="0" * 64), "design_hash"),
        (lambda d: d.update(study_start="2025-01-01"), "study_start"),
        (lambda d: d.pop("arms"), "top level"),
        (lambda d: d.update(extra=1), "top level"),
        (lambda d: d["log"][-1].update(on="1st May"), ".on"),
        (lambda d: d["log"][-1].update(by="magic"), ".by"),
        (lambda d: d["log"][0].update(to="planned"), "log[0]"),
        (lambda d: d["arms"][0].update(state="harm"), "arms[0]"),
        (lambda d: d["arms"][-1].update(reason="edited"), "arms["),
        (_drop_trait_rule_entry, "log["),
        (_reopen_closed_arm, "log["),
        (lambda d: d["log"].reverse(), "log[0]"),
        (lambda d: d["added_arms"].clear(), "log["),
        (lambda d: d["added_arms"][0]["arm"].update(trait="nowhere"), "log["),
        (lambda d: d["added_arms"][0]["arm"].pop("name"), "added_arms[0].arm"),
        (lambda d: d["added_arms"].append(copy.deepcopy(d["added_arms"][0])), "added_arms[1]"),
    ],
)
def test_from_json_refuses_a_malformed_or_unreachable_state(design, edit, where):
    text = _tamper(lc.to_json(_busy_state(design)), edit)
    with pytest.raises(LifecycleStateError) as info:
        lc.from_json(text, design)
    assert where in info.value.where


def test_from_json_refuses_text_that_is_not_json(design):
    with pytest.raises(LifecycleStateError, match="not JSON"):
        lc.from_json("{not json", design)
    with pytest.raises(LifecycleStateError, match="expected an object"):
        lc.from_json("[]", design)


def test_from_json_can_replay_a_state_under_an_amended_design(design):
    text = lc.to_json(_busy_state(design))

    def reword(data: dict[str, Any]) -> None:
        data["trait_rule"]["reason"] = "reworded"

    with modified_design(None, "proposed/lifecycle.yaml", reword) as d:
        with pytest.raises(LifecycleStateError, match="design_hash"):
            lc.from_json(text, d)
        # replayed under the new rules, the trait-rule entries no longer match what was stored
        with pytest.raises(LifecycleStateError, match="log"):
            lc.from_json(text, d, check_hash=False)

    def cosmetic(data: dict[str, Any]) -> None:
        data["adding_arms"]["rationale"] += " (reviewed)"

    with modified_design(None, "proposed/lifecycle.yaml", cosmetic) as d:
        back = lc.from_json(text, d, check_hash=False)
        assert back.design_hash == d.design_hash
        assert lc.states_mapping(back) == lc.states_mapping(_busy_state(design))


# ----------------------------------------------------------------------------- a property
_EXPERIMENTAL = [a.id for a in DESIGN.experimental_arms()] + ["hfib_pandemic"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    moves=st.lists(
        st.tuples(
            st.sampled_from(_EXPERIMENTAL + ["<add>"]),
            st.sampled_from(STATES),
            st.integers(min_value=-5, max_value=20),
        ),
        max_size=25,
    )
)
def test_any_sequence_of_moves_keeps_the_trait_rule_and_survives_json(design, moves):
    """Random requests: each is applied or refused with a typed error; after each, a trait is
    closed exactly when it has no open or planned experimental arm, and the state round-trips."""
    state = lc.initial_state(design)
    on = START
    for arm, to, step in moves:
        on = on + dt.timedelta(days=step)
        try:
            if arm == "<add>":
                state = lc.add_arm(state, _new_arm(), on, "amendment")
            else:
                state = lc.transition(state, arm, to, on, "random")
        except (IllegalTransitionError, DesignError):
            pass
        for trait in design.trait_ids:
            live = any(
                a.role == "experimental" and a.state in ("open", "planned", "suspended")
                for a in state.arms_of(trait)
            )
            assert (lc.trait_status(state, trait).status == "open") == live
        dates = {}
        for t in state.log:  # per trait, the log never goes back in time
            trait = state.arm(t.arm).trait
            assert t.on >= dates.get(trait, START)
            dates[trait] = t.on
    assert lc.from_json(lc.to_json(state), design) == state


# ----------------------------------------------------------------------------- the design loader
def _transition(data: dict[str, Any], frm: str, to: str) -> dict[str, Any]:
    return next(t for t in data["transitions"] if (t["from"], t["to"]) == (frm, to))


def _append(frm: str, to: str, by: str = "request", requires=("date",)):
    def edit(data: dict[str, Any]) -> None:
        data["transitions"].append(
            {"from": frm, "to": to, "by": by, "requires": list(requires), "rationale": "test"}
        )

    return edit


def _set_field(frm: str, to: str, key: str, value: Any):
    def edit(data: dict[str, Any]) -> None:
        _transition(data, frm, to)[key] = value

    return edit


def _state(ident: str, key: str, value: Any):
    def edit(data: dict[str, Any]) -> None:
        next(s for s in data["states"] if s["id"] == ident)[key] = value

    return edit


def _section(section: str, key: str, value: Any):
    def edit(data: dict[str, Any]) -> None:
        data[section][key] = value

    return edit


def _duplicate_state(data: dict[str, Any]) -> None:
    data["states"].append(copy.deepcopy(data["states"][-1]))


LOADER_CASES = [
    ("unknown state in a transition", _set_field("open", "harm", "to", "paused"),
     UnknownReferenceError, "open -> paused", "to", "not declared"),
    ("transition out of a terminal state", _append("graduated", "open"),
     ConflictingArgumentsError, "graduated -> open", "from", "terminal"),
    ("duplicate transition", _append("open", "harm", requires=("dmc_decision", "date")),
     DuplicateIdError, "open -> harm", "to", "declared once"),
    ("move to itself", _append("open", "open"),
     ConflictingArgumentsError, "open -> open", "to", "itself"),
    ("undated transition", _set_field("planned", "open", "requires", ["amendment"]),
     ConflictingArgumentsError, "planned -> open", "requires", "dated"),
    ("unknown requirement", _set_field("planned", "open", "requires", ["vote"]),
     DesignSchemaError, "[0]", "requires", "Input should be"),
    ("request moving usual care", _append("trait_closed", "withdrawn"),
     ConflictingArgumentsError, "trait_closed -> withdrawn", "from", "admits only"),
    ("duplicate state", _duplicate_state, DuplicateIdError, "trait_closed", "id", "appears 2 times"),
    ("planned state missing role", _state("planned", "roles", ["control"]),
     ConflictingArgumentsError, "planned", "roles", "must exist"),
    ("non-terminal state with no way out", _state("harm", "terminal", False),
     ConflictingArgumentsError, "harm", "terminal", "no way out"),
    ("unknown control closed state", _section("trait_rule", "control_closed_state", "asleep"),
     UnknownReferenceError, "trait_rule", "control_closed_state", "not declared"),
    ("control closed state of experimental arms", _section("trait_rule", "control_closed_state", "withdrawn"),
     ConflictingArgumentsError, "trait_rule", "control_closed_state", "usual care"),
    ("added arms start open", _section("adding_arms", "initial_state", "open"),
     ConflictingArgumentsError, "adding_arms", "initial_state", "'planned'"),
    ("adding without amendment", _section("adding_arms", "requires", ["date"]),
     ConflictingArgumentsError, "adding_arms", "requires", "amendment"),
    ("unknown closed-trait policy", _section("adding_arms", "closed_trait", "maybe"),
     DesignSchemaError, "adding_arms", "closed_trait", "Input should be"),
    ("not proposed", lambda d: d.update(status="registry"),
     DesignSchemaError, None, "status", "Input should be"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit_fn", "error", "entry", "field", "message"),
    [case[1:] for case in LOADER_CASES],
    ids=[case[0] for case in LOADER_CASES],
)
def test_the_loader_rejects_a_bad_lifecycle_file(
    design_copy, edit, edit_fn, error, entry, field, message
):
    edit(design_copy, "proposed/lifecycle.yaml", edit_fn)
    with pytest.raises(error, match=message) as info:
        load_design(design_copy)
    err = info.value
    assert err.file == "proposed/lifecycle.yaml"
    assert err.entry == entry
    assert field in (err.field or "")


def test_reopening_needs_the_transition_back_to_open(design_copy, edit):
    def drop(data: dict[str, Any]) -> None:
        data["transitions"].remove(_transition(data, "trait_closed", "open"))
        next(s for s in data["states"] if s["id"] == "trait_closed")["terminal"] = True

    edit(design_copy, "proposed/lifecycle.yaml", drop)
    with pytest.raises(ConflictingArgumentsError, match="trait_closed -> open") as info:
        load_design(design_copy)
    assert (info.value.entry, info.value.field) == ("adding_arms", "closed_trait")
    # with closed traits refusing new arms, the same file is valid
    edit(design_copy, "proposed/lifecycle.yaml", _section("adding_arms", "closed_trait", "refuse"))
    assert load_design(design_copy).lifecycle.adding_arms.closed_trait == "refuse"


def test_the_loader_rejects_usual_care_starting_planned(design_copy, edit, find):
    def plan(data: dict[str, Any]) -> None:
        find(data["arms"], "mals_usual_care")["availability"] = {
            "initial_state": "planned",
            "opens_when": "later",
        }

    edit(design_copy, "arms.yaml", plan)
    with pytest.raises(ConflictingArgumentsError, match="cannot start 'planned'") as info:
        load_design(design_copy)
    assert (info.value.file, info.value.entry) == ("arms.yaml", "mals_usual_care")
    assert info.value.field == "availability.initial_state"


# ----------------------------------------------------------------------------- pure core
def _advance(xp, states, made, opens, design):
    codes = lc.state_codes(design)
    targets = lc.decision_targets(codes, DECISION_NAMES)
    return codes, lc.next_arm_states(xp, states, made, opens, targets, codes)


def test_pure_core_closes_open_arms_by_decision_and_opens_due_planned_arms(design):
    codes = lc.state_codes(design)
    d = list(DECISION_NAMES)
    states = np.array([codes.open, codes.open, codes.planned, codes.planned, codes.code("harm")])
    made = np.array([d.index("graduation"), d.index("continue"), 0, 0, d.index("futility")])
    opens = np.array([False, False, True, False, True])
    expected = ["graduated", "open", "open", "planned", "harm"]
    _, numpy_out = _advance(np, states, made, opens, design)
    jax_out = jax.jit(lambda s, m, o: _advance(jnp, s, m, o, design)[1])(states, made, opens)
    for out in (numpy_out, np.asarray(jax_out)):
        assert [codes.names[int(k)] for k in out] == expected


def test_pure_trait_rule_keeps_a_trait_with_an_open_or_planned_arm(design):
    codes = lc.state_codes(design)
    states = np.array([codes.code("futility"), codes.planned, codes.code("harm"), codes.open])
    arm_trait = np.array([0, 0, 1, 2])
    live = lc.live_traits(np, states, arm_trait, 4, codes)
    assert live.tolist() == [True, False, True, False]  # trait 3 has no arm at all
