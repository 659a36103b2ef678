"""Arm lifecycle (``proposed/lifecycle.yaml``): states, allowed moves, the trait rule, amendments.

The states form a closed state machine that ``arms.yaml`` and the code rely on: ``planned``
and ``open`` exist, every move is dated, nothing leaves a terminal state, a trait closes by
moving its usual care to a closed state when no experimental arm is open or planned, and an arm
added by amendment starts ``planned``. :func:`check_added_arm` gives an arm that joins by
amendment the checks an entry of ``arms.yaml`` gets (the state that follows the amendment is
:mod:`palette_core.randomisation.lifecycle`'s).

**Suspension** (``suspension``): an arm or age stratum whose dose a registry finding blocks is
suspended from the start (a dose that cannot be computed cannot be given). The state the
suspended arms take is declared here (it must admit experimental arms, not be terminal, and
have a way back to ``open`` that needs the sponsor's decision); ``suspension.lifted`` records
the sponsor's decisions that lift a suspension, each naming blocked (arm, age group) pairs,
dated and referenced (:func:`check_suspension`). The design answers who is suspended on a date
(:meth:`palette_core.design.loader.Design.suspended_by`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Literal

from pydantic import Field

from palette_core.design.arms import Arm, Substance, check_arm_age_groups, check_components
from palette_core.design.common import AgeGroupId, Frozen, Proposed, References, unique_ids
from palette_core.design.traits import Trait
from palette_core.design.trial import Finding
from palette_core.errors import (
    ConflictingArgumentsError,
    DesignSchemaError,
    DuplicateIdError,
    OutOfRangeError,
    UnknownReferenceError,
)

FILE = "proposed/lifecycle.yaml"
#: What errors about an arm added by amendment name as their "file".
ADD_ARM = "add_arm (amendment)"

ArmRole = Literal["control", "experimental"]
Requirement = Literal["dmc_decision", "amendment", "date", "sponsor_decision"]


class LifecycleState(Frozen):
    id: str
    label: str
    roles: tuple[ArmRole, ...] = Field(min_length=1)
    terminal: bool
    description: str


class LifecycleTransition(Frozen):
    from_: str = Field(alias="from")
    to: str
    by: Literal["request", "trait_rule"]
    requires: tuple[Requirement, ...] = Field(min_length=1)
    rationale: str


class TraitRule(Frozen):
    closes_when: Literal["no_open_or_planned_experimental_arm"]
    reason: str
    control_closed_state: str
    rationale: str


class AddingArms(Frozen):
    requires: tuple[Requirement, ...] = Field(min_length=1)
    initial_state: str
    closed_trait: Literal["reopen", "refuse"]
    rationale: str


class SuspensionLift(Frozen):
    """A sponsor's decision that lifts the suspension of an arm for some age groups."""

    arm: str
    age_groups: tuple[AgeGroupId, ...] = Field(min_length=1)
    on: dt.date
    decision: str
    summary: str


class Suspension(Frozen):
    """How blocked doses suspend arms, and the sponsor's decisions that lifted suspensions."""

    state: str
    reason: str
    rationale: str
    lifted: tuple[SuspensionLift, ...] = ()


class LifecycleFile(Frozen):
    status: Proposed
    states: tuple[LifecycleState, ...] = Field(min_length=1)
    transitions: tuple[LifecycleTransition, ...] = Field(min_length=1)
    trait_rule: TraitRule
    adding_arms: AddingArms
    suspension: Suspension


def _check_transitions(
    lc: LifecycleFile, states: Mapping[str, LifecycleState]
) -> set[tuple[str, str]]:
    """Each move between declared states, once, dated, out of a non-terminal state, between
    states that admit the arms it concerns; returns the (from, to) pairs."""
    f = FILE
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
    return seen


def check_lifecycle(lc: LifecycleFile, arms: tuple[Arm, ...]) -> None:
    """proposed/lifecycle.yaml: a closed state machine that arms.yaml and the code can use."""
    f = FILE
    unique_ids(lc.states, f, "state")
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
    seen = _check_transitions(lc, states)
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
    for a in arms:
        initial = a.availability.initial_state
        if a.role not in states[initial].roles:
            raise ConflictingArgumentsError(
                "arms.yaml",
                a.id,
                "availability.initial_state",
                f"a {a.role} arm cannot start {initial!r} (proposed/lifecycle.yaml)",
            )


def check_suspension(
    lc: LifecycleFile,
    arms: tuple[Arm, ...],
    findings: tuple[Finding, ...],
    refs: References,
    arm_age_groups: Mapping[str, tuple[str, ...]],
) -> None:
    """``suspension``: a state for suspended arms with a way back, and well-formed lifts.

    The state must be declared, admit experimental arms, not be terminal, and have a move to
    ``open`` that requires the sponsor's decision. Each lift names an arm and age groups that a
    finding blocks (``blocks_dose``) and that the arm admits, once each, with a decision
    reference and a summary that are not blank.
    """
    f = FILE
    sus = lc.suspension
    states = {st.id: st for st in lc.states}
    if sus.state not in states:
        raise UnknownReferenceError(
            f, "suspension", "state", f"state {sus.state!r} is not declared under states"
        )
    st = states[sus.state]
    if sus.state in ("open", "planned") or "experimental" not in st.roles or st.terminal:
        raise ConflictingArgumentsError(
            f,
            "suspension",
            "state",
            f"{sus.state!r} must be a non-terminal state of experimental arms other than open "
            "and planned (a suspension can be lifted)",
        )
    back = [t for t in lc.transitions if t.from_ == sus.state and t.to == "open"]
    if not back or "sponsor_decision" not in back[0].requires:
        raise ConflictingArgumentsError(
            f,
            "suspension",
            "state",
            f"no transition {sus.state} -> open requiring sponsor_decision: a suspension "
            "could never be lifted",
        )
    if not sus.reason.strip():
        raise DesignSchemaError(f, "suspension", "reason", "must not be blank")
    blocked = {(b.arm, g) for x in findings for b in x.blocks_dose for g in b.age_groups}
    arm_ids = {a.id for a in arms}
    seen: set[tuple[str, str]] = set()
    for i, lift in enumerate(sus.lifted):
        entry = f"suspension.lifted[{i}]"
        if lift.arm not in arm_ids:
            raise UnknownReferenceError(f, entry, "arm", f"arm {lift.arm!r} is not in arms.yaml")
        for g in lift.age_groups:
            refs.check_age_group(g, f, entry, "age_groups")
            if g not in arm_age_groups[lift.arm]:
                raise ConflictingArgumentsError(
                    f, entry, "age_groups", f"arm {lift.arm!r} does not admit age group {g!r}"
                )
            if (lift.arm, g) not in blocked:
                raise ConflictingArgumentsError(
                    f,
                    entry,
                    "age_groups",
                    f"no registry finding blocks the dose of {lift.arm!r} for {g!r}: nothing "
                    "to lift",
                )
            if (lift.arm, g) in seen:
                raise DuplicateIdError(
                    f, entry, "age_groups", f"{lift.arm!r} for {g!r} is lifted twice"
                )
            seen.add((lift.arm, g))
        for fld in ("decision", "summary"):
            if not getattr(lift, fld).strip():
                raise DesignSchemaError(
                    f, entry, fld, "the sponsor's decision must be recorded (not blank)"
                )


def check_added_arm(
    arm: Arm,
    *,
    traits: tuple[Trait, ...],
    substances: Mapping[str, Substance],
    lifecycle: LifecycleFile,
    refs: References,
    in_platform: Collection[str],
    opens_on: object,
    on: dt.date,
) -> None:
    """The checks an entry of ``arms.yaml`` gets, for one arm that joins a trait by amendment.

    Parameters
    ----------
    arm
        The new arm, parsed as an entry of ``arms.yaml``.
    traits, substances, lifecycle, refs
        The design's traits, substances, lifecycle and references
        (:attr:`palette_core.design.Design.references`).
    in_platform
        The ids of every arm already in the platform (the design's and earlier amendments').
    opens_on
        The opening date the amendment sets (a ``datetime.date`` on or after ``on``), or None:
        then the arm must say when it opens (``availability.opens_when``).
    on
        The date the amendment takes effect.

    Raises
    ------
    DesignError
        The subclass naming :data:`ADD_ARM` as the file, the arm and the field: unknown trait,
        substance, unit or age group; an id already used; not experimental; not starting in
        ``adding_arms.initial_state``; no opening date or condition; no component; a dose that
        ``arms.yaml`` would refuse.
    """
    f = ADD_ARM
    by_id = {t.id: t for t in traits}
    if arm.trait not in by_id:
        raise UnknownReferenceError(
            f, arm.id, "trait", f"trait {arm.trait!r} is not in traits.yaml ({', '.join(by_id)})"
        )
    if arm.id in in_platform:
        raise DuplicateIdError(f, arm.id, "id", f"arm id {arm.id!r} is already in the platform")
    if arm.role != "experimental":
        raise ConflictingArgumentsError(
            f,
            arm.id,
            "role",
            "only experimental arms join a trait; its usual care is already there",
        )
    start = lifecycle.adding_arms.initial_state
    if arm.availability.initial_state != start:
        raise ConflictingArgumentsError(
            f,
            arm.id,
            "availability.initial_state",
            f"an arm added by amendment starts {start!r} (proposed/lifecycle.yaml adding_arms)",
        )
    if opens_on is not None:
        if isinstance(opens_on, dt.datetime) or not isinstance(opens_on, dt.date):
            raise DesignSchemaError(f, arm.id, "opens_on", "must be a datetime.date")
        if opens_on < on:
            raise OutOfRangeError(
                f, arm.id, "opens_on", f"{opens_on} is before the amendment's date {on}"
            )
    elif not arm.availability.opens_when:
        raise DesignSchemaError(
            f,
            arm.id,
            "availability.opens_when",
            "a planned arm must say when it opens: opens_when, or an opens_on date",
        )
    if not arm.components:
        raise DesignSchemaError(
            f, arm.id, "components", "an experimental arm needs at least one component"
        )
    check_arm_age_groups(arm, by_id[arm.trait], refs, f)
    check_components(arm, substances, refs, f)


__all__ = [
    "ADD_ARM",
    "AddingArms",
    "ArmRole",
    "LifecycleFile",
    "LifecycleState",
    "LifecycleTransition",
    "Requirement",
    "Suspension",
    "SuspensionLift",
    "TraitRule",
    "check_added_arm",
    "check_lifecycle",
    "check_suspension",
]
