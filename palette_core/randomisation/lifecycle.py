"""The arm lifecycle: which arms of each trait are planned, open or closed, since when and why.

The rules live in ``data/design/proposed/lifecycle.yaml`` (states, allowed transitions, the
trait rule, how arms are added); this module applies them. A :class:`PlatformState` is
immutable: every function returns a new state, and every move is kept, dated and reasoned, in
the arm's history and in the platform's log, so the state can be stored (:func:`to_json`),
audited and rebuilt (:func:`from_json` replays the log and refuses a state that legal moves
cannot reach).

* :func:`initial_state` - every arm of ``arms.yaml`` in its ``availability.initial_state`` on
  the study start date of ``trial.yaml``, except an arm whose dose a registry finding blocks
  for every age group it admits: that arm starts *suspended* (``suspension`` of
  ``proposed/lifecycle.yaml``; a dose that cannot be computed cannot be given), and leaves
  the state only by a dated request once the sponsor's decision is recorded
  (``suspension.lifted``). An arm suspended for some age groups only stays in its state;
  :func:`suspended_age_groups` names them (the randomiser never draws it for them).
* :func:`transition` (and :func:`open_arm`, :func:`close_arm`) - one requested move of an
  experimental arm; usual care never moves by itself.
* The trait rule - when a trait's last open or planned experimental arm closes, its usual care
  closes with it on the same date ("no open or planned experimental arm"); the trait is closed.
* :func:`add_arm` - a new experimental arm joins a trait by amendment, ``planned``, with an
  opening date or condition. Added to a closed trait it reopens the trait (proposed, see
  ``adding_arms.closed_trait``).
* :func:`trait_status`, :func:`open_arms`, :func:`states_mapping` - what the allocation code
  reads; :func:`lifecycle_table` and :func:`transition_table` - what the book shows.

Errors: a refused move raises :class:`~palette_core.errors.IllegalTransitionError` (arm, from,
to, date); a new arm that does not fit the design raises a
:class:`~palette_core.errors.DesignError` subclass; a bad stored state raises
:class:`~palette_core.errors.LifecycleStateError`.

Examples
--------
>>> import datetime as dt
>>> from palette_core.design.loader import load_design
>>> design = load_design()
>>> state = initial_state(design)
>>> state.arm("hfib_octaplas").state
'planned'
>>> state = open_arm(state, "hfib_octaplas", dt.date(2026, 9, 1), "supply circuit in place")
>>> open_arms(state, "hypofibrinolysis")
('hfib_usual_care', 'hfib_sivelestat', 'hfib_octaplas', 'hfib_plasminogen')
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd

from palette_core.design.arms import Arm, ArmsFile
from palette_core.design.common import parse_model
from palette_core.design.lifecycle import ADD_ARM, LifecycleTransition, check_added_arm
from palette_core.design.loader import Design
from palette_core.errors import (
    DesignError,
    IllegalTransitionError,
    LifecycleStateError,
    RecordError,
)
from palette_core.randomisation import records
from palette_core.randomisation.records import LIFECYCLE_FORMAT, Origin, PlatformStateRecord

#: version tag of the JSON written by :func:`to_json`
FORMAT = LIFECYCLE_FORMAT
#: the two states every lifecycle has (``arms.yaml`` starts arms in them); all others are closed
OPEN, PLANNED = "open", "planned"
#: how a move came about: the design's initial state, a request, the trait rule, an amendment
By = Origin
REQUIREMENT_LABELS = {
    "dmc_decision": "DMC decision",
    "amendment": "amendment",
    "date": "date",
    "sponsor_decision": "sponsor's decision",
}


# ----------------------------------------------------------------------------- the state
@dataclass(frozen=True)
class Transition:
    """One dated move of one arm. ``from_state`` is ``None`` for the arm's first entry."""

    arm: str
    from_state: str | None
    to_state: str
    on: dt.date
    reason: str
    by: By


@dataclass(frozen=True)
class ArmStatus:
    """One arm: its specification, current state, since when, why, and its whole history."""

    arm: Arm
    state: str
    since: dt.date
    reason: str
    history: tuple[Transition, ...]
    added: bool = False  # joined by amendment (not in arms.yaml)
    opens_on: dt.date | None = None  # the opening date an amendment set, if any

    @property
    def id(self) -> str:
        return self.arm.id

    @property
    def trait(self) -> str:
        return self.arm.trait

    @property
    def role(self) -> str:
        return self.arm.role


@dataclass(frozen=True)
class TraitStatus:
    """Whether a trait is open, since when and why; ``recruiting``: an experimental arm is open."""

    trait: str
    status: Literal["open", "closed"]
    since: dt.date
    reason: str
    recruiting: bool


@dataclass(frozen=True)
class PlatformState:
    """Every arm of the platform with its state, in design order (added arms last), and the log.

    Build it with :func:`initial_state` or :func:`from_json`; change it only through the
    functions of this module, which return a new state. ``design`` is the design it was built
    from (not compared: ``design_hash`` is).
    """

    design_hash: str
    study_start: dt.date
    arms: tuple[ArmStatus, ...]
    log: tuple[Transition, ...]
    design: Design = field(repr=False, compare=False)

    @property
    def arm_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.arms)

    def arm(self, arm_id: str) -> ArmStatus:
        for a in self.arms:
            if a.id == arm_id:
                return a
        raise KeyError(f"unknown arm {arm_id!r}")

    def arms_of(self, trait_id: str) -> tuple[ArmStatus, ...]:
        """The arms of a trait, usual care first, then design order, then arms added later."""
        self.design.trait(trait_id)
        arms = [a for a in self.arms if a.trait == trait_id]
        return tuple(sorted(arms, key=lambda a: a.role != "control"))

    def control_of(self, trait_id: str) -> ArmStatus:
        return next(a for a in self.arms_of(trait_id) if a.role == "control")


def _suspension_reason(design: Design, arm_id: str, on: dt.date | None) -> str:
    """``"suspended: dose not computable (RF-01: title; ...)"`` for the arm's blocked groups."""
    found = {
        f.id: f.title for g in design.suspended_age_groups(arm_id, on)
        for f in design.suspended_by(arm_id, g, on)
    }  # fmt: skip
    what = "; ".join(f"{k}: {v}" for k, v in found.items())
    return f"suspended from the start: {design.lifecycle.suspension.reason} ({what})"


def initial_state(design: Design) -> PlatformState:
    """Every arm of ``arms.yaml`` in its ``availability.initial_state`` on ``trial.study_start``;
    an arm suspended for every age group it admits on that date (a blocked dose not lifted by
    then) in the suspension state instead, with the findings as the reason."""
    on = design.trial.study_start
    arms, log = [], []
    for a in design.arms:
        start = a.availability.initial_state
        reason = "initial state (arms.yaml)"
        if a.availability.opens_when:
            reason += f"; opens when: {a.availability.opens_when}"
        if design.is_suspended(a.id, on):
            start = design.lifecycle.suspension.state
            reason = _suspension_reason(design, a.id, on)
        t = Transition(a.id, None, start, on, reason, "design")
        arms.append(ArmStatus(a, t.to_state, on, reason, (t,)))
        log.append(t)
    return PlatformState(design.design_hash, on, tuple(arms), tuple(log), design)


# ----------------------------------------------------------------------------- helpers
def _design(state: PlatformState, design: Design | None) -> Design:
    if design is None:
        return state.design
    if design.design_hash != state.design_hash:
        raise LifecycleStateError(
            "design_hash",
            f"the state was built under design {state.design_hash[:12]}, not the given "
            f"{design.design_hash[:12]}; rebuild it with from_json(to_json(state), design, "
            "check_hash=False)",
        )
    return design


def _check_date(on: object) -> dt.date:
    if isinstance(on, dt.datetime) or not isinstance(on, dt.date):
        raise TypeError(f"a lifecycle date must be a datetime.date, got {type(on).__name__}")
    return on


def _check_reason(arm: str, frm: str | None, to: str, on: dt.date, reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise IllegalTransitionError(arm, frm, to, on, "every move needs a reason (non-empty text)")
    return reason


def _check_order(
    state: PlatformState, trait: str, arm: str, frm: str | None, to: str, on: dt.date
) -> None:
    """Dates never go backwards: not before the arm's last move, nor before any in its trait."""
    arms = state.arms_of(trait)
    own = [a for a in arms if a.id == arm]
    for a, where in [(x, "the arm's last transition") for x in own] + [
        (x, f"the last transition in trait {trait!r}, arm {x.id!r}:") for x in arms
    ]:
        last = a.history[-1]
        if on < last.on:
            move = f"{last.from_state or 'start'} -> {last.to_state} on {last.on}"
            raise IllegalTransitionError(arm, frm, to, on, f"date before {where} {move}")


def _apply(
    state: PlatformState, arm_id: str, to: str, on: dt.date, reason: str, by: By
) -> PlatformState:
    """The move itself, unchecked."""
    arms = list(state.arms)
    i = state.arm_ids.index(arm_id)
    a = arms[i]
    t = Transition(arm_id, a.state, to, on, reason, by)
    arms[i] = replace(a, state=to, since=on, reason=reason, history=a.history + (t,))
    return replace(state, arms=tuple(arms), log=state.log + (t,))


def _live(a: ArmStatus, design: Design) -> bool:
    """Open, planned or suspended: an experimental arm that may still randomise."""
    live = (OPEN, PLANNED, design.lifecycle.suspension.state)
    return a.role == "experimental" and a.state in live


def _trait_rule(state: PlatformState, trait: str, on: dt.date, design: Design) -> PlatformState:
    rule = design.lifecycle.trait_rule
    control = state.control_of(trait)
    if control.state == OPEN and not any(_live(a, design) for a in state.arms_of(trait)):
        return _apply(state, control.id, rule.control_closed_state, on, rule.reason, "trait_rule")
    return state


def _rule(design: Design, frm: str, to: str, by: str) -> LifecycleTransition | None:
    return next(
        (t for t in design.lifecycle.transitions if (t.from_, t.to, t.by) == (frm, to, by)),
        None,
    )


# ----------------------------------------------------------------------------- moves
def transition(
    state: PlatformState,
    arm_id: str,
    to_state: str,
    on: dt.date,
    reason: str,
    design: Design | None = None,
) -> PlatformState:
    """Move one experimental arm to ``to_state`` on ``on``; a new state, the old one unchanged.

    The move must be a ``by: request`` transition of ``proposed/lifecycle.yaml``; ``on`` must
    not precede the arm's last move nor any move in its trait, nor the opening date an
    amendment set. If the arm was its trait's last open or planned experimental arm, usual care
    closes with it on the same date (the trait rule).

    Parameters
    ----------
    state
        The platform state.
    arm_id
        An experimental arm of the platform (of ``arms.yaml`` or added by amendment).
    to_state
        A state of ``proposed/lifecycle.yaml``.
    on
        The date the move takes effect (``datetime.date``).
    reason
        Why, in words (a DMC recommendation, the amendment's reference).
    design
        The design the state was built from (default: the state's own); a different design
        raises :class:`LifecycleStateError`.

    Raises
    ------
    IllegalTransitionError
        Unknown arm or state, a move the lifecycle does not allow, a move of usual care, a
        date that goes backwards, an empty reason.
    """
    d = _design(state, design)
    on = _check_date(on)
    try:
        a = state.arm(arm_id)
    except KeyError:
        raise IllegalTransitionError(
            arm_id, None, to_state, on, f"unknown arm; known: {', '.join(state.arm_ids)}"
        ) from None
    states = [st.id for st in d.lifecycle.states]
    if to_state not in states:
        raise IllegalTransitionError(
            arm_id,
            a.state,
            to_state,
            on,
            f"unknown state; proposed/lifecycle.yaml declares {states}",
        )
    if a.role == "control":
        raise IllegalTransitionError(
            arm_id,
            a.state,
            to_state,
            on,
            "usual care does not move by itself: it closes and reopens with its trait (trait rule)",
        )
    if _rule(d, a.state, to_state, "request") is None:
        allowed = [
            t.to for t in d.lifecycle.transitions if t.from_ == a.state and t.by == "request"
        ]
        why = (
            f"{a.state!r} is terminal"
            if not allowed
            else f"from {a.state!r} an arm may move only to {allowed}"
        )
        raise IllegalTransitionError(
            arm_id,
            a.state,
            to_state,
            on,
            f"not an allowed transition (proposed/lifecycle.yaml): {why}",
        )
    _check_reason(arm_id, a.state, to_state, on, reason)
    _check_order(state, a.trait, arm_id, a.state, to_state, on)
    if a.state == d.lifecycle.suspension.state and to_state in (OPEN, PLANNED):
        _check_lift(d, a, to_state, on)
    if to_state == OPEN and a.opens_on is not None and on < a.opens_on:
        raise IllegalTransitionError(
            arm_id,
            a.state,
            to_state,
            on,
            f"the amendment that added the arm opens it on {a.opens_on}",
        )
    new = _apply(state, arm_id, to_state, on, reason, "request")
    return _trait_rule(new, a.trait, on, d)


def _check_lift(design: Design, a: ArmStatus, to_state: str, on: dt.date) -> None:
    """Leaving the suspension: lifted by the sponsor by ``on``, into the arm's starting state."""
    if design.is_suspended(a.id, on):
        raise IllegalTransitionError(
            a.id,
            a.state,
            to_state,
            on,
            f"the suspension is not lifted on {on}: record the sponsor's decision in "
            "proposed/lifecycle.yaml (suspension.lifted, dated on or before the move) and the "
            "decided dose in arms.yaml",
        )
    start = a.arm.availability.initial_state
    if to_state != start:
        raise IllegalTransitionError(
            a.id, a.state, to_state, on, f"a lifted arm returns to its starting state {start!r}"
        )


def open_arm(
    state: PlatformState, arm_id: str, on: dt.date, reason: str, design: Design | None = None
) -> PlatformState:
    """Open a planned arm on ``on`` (see :func:`transition`)."""
    return transition(state, arm_id, OPEN, on, reason, design)


def close_arm(
    state: PlatformState,
    arm_id: str,
    closed_state: str,
    on: dt.date,
    reason: str,
    design: Design | None = None,
) -> PlatformState:
    """Close an arm into ``closed_state`` (graduated, futility, harm, cap_reached, withdrawn)."""
    if closed_state in (OPEN, PLANNED):
        frm = state.arm(arm_id).state if arm_id in state.arm_ids else None
        raise IllegalTransitionError(arm_id, frm, closed_state, on, "not a closed state")
    return transition(state, arm_id, closed_state, on, reason, design)


def add_arm(
    state: PlatformState,
    arm: Arm | Mapping[str, Any],
    on: dt.date,
    reason: str,
    design: Design | None = None,
    *,
    opens_on: dt.date | None = None,
) -> PlatformState:
    """A new experimental arm joins an existing trait by amendment, on ``on``.

    Parameters
    ----------
    arm
        The arm, described exactly as an entry of ``arms.yaml`` (a mapping, or a
        :class:`palette_core.design.arms.Arm`): ``id``, ``trait``, ``role: experimental``,
        ``name``, ``registry`` (label, intervention, text of the amendment),
        ``availability: {initial_state: planned, opens_when: ...}``, ``components`` (substances
        of ``substances.yaml``, doses in units of ``units.yaml``), optional ``age_groups``.
    on
        The date the amendment takes effect.
    reason
        The amendment's reference and purpose.
    opens_on
        The opening date the amendment sets (on or after ``on``); then
        ``availability.opens_when`` may be left out. The arm still opens by :func:`open_arm`,
        which refuses an earlier date; :func:`due_to_open` lists arms whose date has come.

    Returns
    -------
    PlatformState
        With the arm ``planned`` (``adding_arms.initial_state``). Added to a closed trait, the
        trait reopens: usual care moves back to ``open`` on the same date (``adding_arms.
        closed_trait: reopen``; with ``refuse`` the amendment is refused).

    Raises
    ------
    DesignError
        The arm does not fit the design (unknown trait, substance, unit or age group; an id
        already used; not experimental; not planned; no opening date or condition); the
        error's file is ``"add_arm (amendment)"``.
    IllegalTransitionError
        A date that goes backwards, a closed trait that may not reopen, or a trait that would
        have more open or planned experimental arms than the registry allows.
    """
    d = _design(state, design)
    on = _check_date(on)
    spec = _arm_spec(arm)
    to = d.lifecycle.adding_arms.initial_state
    check_added_arm(
        spec,
        traits=d.traits,
        substances=d.substances,
        lifecycle=d.lifecycle,
        refs=d.references,
        in_platform=state.arm_ids,
        opens_on=opens_on,
        on=on,
    )
    _check_reason(spec.id, None, to, on, reason)
    _check_order(state, spec.trait, spec.id, None, to, on)
    control = state.control_of(spec.trait)
    closed = control.state == d.lifecycle.trait_rule.control_closed_state
    if closed and d.lifecycle.adding_arms.closed_trait == "refuse":
        raise IllegalTransitionError(
            spec.id,
            None,
            to,
            on,
            f"trait {spec.trait!r} is closed and proposed/lifecycle.yaml adding_arms.closed_trait "
            "is 'refuse'",
        )
    live = sum(_live(a, d) for a in state.arms_of(spec.trait))
    most = d.trial.arms_per_trait.experimental_max
    if live + 1 > most:
        raise IllegalTransitionError(
            spec.id,
            None,
            to,
            on,
            f"trait {spec.trait!r} already has {live} open or planned experimental arms; the "
            f"registry allows at most {most} at once (trial.yaml arms_per_trait)",
        )
    t = Transition(spec.id, None, to, on, reason, "amendment")
    status = ArmStatus(spec, to, on, reason, (t,), added=True, opens_on=opens_on)
    new = replace(state, arms=state.arms + (status,), log=state.log + (t,))
    if closed:
        new = _apply(
            new,
            control.id,
            OPEN,
            on,
            f"trait reopened: arm {spec.id!r} added by amendment",
            "trait_rule",
        )
    return new


def _arm_spec(arm: Arm | Mapping[str, Any]) -> Arm:
    if isinstance(arm, Arm):
        return arm
    if isinstance(arm, Mapping):
        return parse_model(ArmsFile, {"arms": [dict(arm)]}, ADD_ARM).arms[0]
    raise TypeError(
        f"an arm is a palette_core.design.arms.Arm or a mapping, got {type(arm).__name__}"
    )


# ----------------------------------------------------------------------------- queries
def trait_status(state: PlatformState, trait_id: str) -> TraitStatus:
    """Open or closed, since when, with the reason (``KeyError`` for an unknown trait)."""
    d = state.design
    control = state.control_of(trait_id)
    if control.state == d.lifecycle.trait_rule.control_closed_state:
        return TraitStatus(trait_id, "closed", control.since, control.reason, False)
    exp = [a for a in state.arms_of(trait_id) if a.role == "experimental"]
    opened = [a.id for a in exp if a.state == OPEN]
    planned = [a.id for a in exp if a.state == PLANNED]
    suspended = [a.id for a in exp if a.state == d.lifecycle.suspension.state]
    parts = [
        f"{label}: {', '.join(ids)}"
        for label, ids in (("open", opened), ("planned", planned), ("suspended", suspended))
        if ids
    ]
    reason = "; ".join(parts) + ("" if opened else " (recruits nobody until an arm opens)")
    return TraitStatus(trait_id, "open", control.since, reason, bool(opened))


def open_arms(state: PlatformState, trait_id: str) -> tuple[str, ...]:
    """The arms a patient of this trait may be randomised to: usual care first, design order.

    Empty when no experimental arm is open (a closed trait, or one whose arms are all
    planned): usual care alone is no comparison, so nobody is randomised in that trait.
    """
    arms = state.arms_of(trait_id)
    if not any(a.role == "experimental" and a.state == OPEN for a in arms):
        return ()
    return tuple(a.id for a in arms if a.state == OPEN)


def suspended_age_groups(
    state: PlatformState, arm_id: str, on: dt.date | None = None
) -> tuple[str, ...]:
    """The age groups the arm is suspended for on ``on`` (all of them for an arm in the
    suspension state; some of them for an open arm never drawn for those groups)."""
    state.arm(arm_id)
    return state.design.suspended_age_groups(arm_id, on)


def states_mapping(state: PlatformState) -> dict[str, str]:
    """``{arm_id: state}`` for every arm of the platform, added arms included."""
    return {a.id: a.state for a in state.arms}


def due_to_open(state: PlatformState, on: dt.date) -> tuple[str, ...]:
    """Planned arms whose amendment set an opening date on or before ``on``."""
    on = _check_date(on)
    return tuple(
        a.id
        for a in state.arms
        if a.state == PLANNED and a.opens_on is not None and a.opens_on <= on
    )


# ----------------------------------------------------------------------------- tables
def lifecycle_table(state: PlatformState) -> pd.DataFrame:
    """One row per arm: arm, trait, state, since, reason (design order, added arms last)."""
    rows = [(a.id, a.trait, a.state, a.since, a.reason) for a in state.arms]
    return pd.DataFrame(rows, columns=["arm", "trait", "state", "since", "reason"])


def transition_table(design: Design) -> pd.DataFrame:
    """The allowed transitions of ``proposed/lifecycle.yaml``: from, to, by, requires, rationale."""
    rows = [
        (
            t.from_,
            t.to,
            "trait rule" if t.by == "trait_rule" else "request",
            " + ".join(REQUIREMENT_LABELS[r] for r in t.requires),
            " ".join(t.rationale.split()),
        )
        for t in design.lifecycle.transitions
    ]
    return pd.DataFrame(rows, columns=["from", "to", "by", "requires", "rationale"])


# ----------------------------------------------------------------------------- JSON
def _record(state: PlatformState) -> PlatformStateRecord:
    """The state as its stored record (:class:`~palette_core.randomisation.records.PlatformStateRecord`)."""
    return PlatformStateRecord.parse(
        {
            "format": FORMAT,
            "design_hash": state.design_hash,
            "study_start": state.study_start,
            "added_arms": [
                {"arm": a.arm.model_dump(mode="json", by_alias=True), "opens_on": a.opens_on}
                for a in state.arms
                if a.added
            ],
            "log": [
                {
                    "arm": t.arm,
                    "from": t.from_state,
                    "to": t.to_state,
                    "on": t.on,
                    "reason": t.reason,
                    "by": t.by,
                }
                for t in state.log
            ],
            "arms": [
                {
                    "arm": a.id,
                    "trait": a.trait,
                    "state": a.state,
                    "since": a.since,
                    "reason": a.reason,
                }
                for a in state.arms
            ],
        }
    )


def to_json(state: PlatformState) -> str:
    """The state as JSON text: design hash, arms added by amendment, the log, and a summary.

    Deterministic (sorted keys), so two equal states give the same text and a stored state
    can be hashed or diffed. :func:`from_json` reads it back.
    """
    doc = _record(state).to_json_dict()
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _first_difference(got: Sequence[Any], want: Sequence[Any]) -> int:
    """The first index where two sequences differ (the shorter length if one extends the other)."""
    n = min(len(got), len(want))
    return next((k for k in range(n) if got[k] != want[k]), n)


def from_json(text: str, design: Design, *, check_hash: bool = True) -> PlatformState:
    """Read a state written by :func:`to_json`, and check it by replaying its log.

    The text must be a :class:`~palette_core.randomisation.records.PlatformStateRecord`. The
    log is replayed from :func:`initial_state` of ``design`` through :func:`transition` and
    :func:`add_arm`; the state returned is the replayed one, and it must equal what the text
    records (the log entry by entry, including the trait rule's moves, and the summary).

    Parameters
    ----------
    check_hash
        Refuse a state written under another design (default). ``False`` replays it under
        ``design``: the way to carry a state across an amendment of the design files.

    Raises
    ------
    LifecycleStateError
        Not JSON, wrong format, a missing or unknown key, a bad date, another design, an added
        arm that does not validate, or a log that legal moves cannot produce; it names the part
        at fault (``"log[12]"``, ``"log[3].on"``; a missing or unknown key is named at the
        object that should or should not hold it, ``"top level"`` for the outermost).
    """
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise LifecycleStateError("text", f"not JSON: {exc}") from None
    try:
        record = PlatformStateRecord.parse(doc)
    except RecordError as exc:
        first = exc.problems[0]
        more = len(exc.problems) - 1
        raise LifecycleStateError(
            records.indexed(first.loc),
            first.message + (f" (and {more} more problem(s))" if more else ""),
        ) from None
    if check_hash and record.design_hash != design.design_hash:
        raise LifecycleStateError(
            "design_hash",
            f"written under design {record.design_hash[:12]}, not the given "
            f"{design.design_hash[:12]} (from_json(..., check_hash=False) replays it under the "
            "given design)",
        )
    if record.study_start != design.trial.study_start:
        raise LifecycleStateError(
            "study_start",
            f"{record.study_start} is not trial.yaml's {design.trial.study_start}",
        )
    added: dict[str, tuple[Arm, dt.date | None]] = {}
    for i, raw in enumerate(record.added_arms):
        where = f"added_arms[{i}]"
        try:
            spec = parse_model(ArmsFile, {"arms": [raw.arm]}, where).arms[0]
        except DesignError as exc:
            raise LifecycleStateError(f"{where}.arm", str(exc)) from None
        if spec.id in added:
            raise LifecycleStateError(f"{where}.arm", f"arm {spec.id!r} is added twice")
        added[spec.id] = (spec, raw.opens_on)
    log = [Transition(t.arm, t.from_, t.to, t.on, t.reason, t.by) for t in record.log]
    state = initial_state(design)
    n0 = len(state.log)
    if tuple(log[:n0]) != state.log:
        i = next((k for k in range(n0) if k >= len(log) or log[k] != state.log[k]), n0)
        raise LifecycleStateError(f"log[{i}]", "does not match the initial state of arms.yaml")
    used: list[str] = []
    for i, t in enumerate(log[n0:], start=n0):
        try:
            if t.by == "request":
                state = transition(state, t.arm, t.to_state, t.on, t.reason, design)
            elif t.by == "amendment":
                if t.arm not in added:
                    raise LifecycleStateError(f"log[{i}]", f"arm {t.arm!r} is not in added_arms")
                spec, opens_on = added[t.arm]
                state = add_arm(state, spec, t.on, t.reason, design, opens_on=opens_on)
                used.append(t.arm)
            elif t.by == "design":
                raise LifecycleStateError(f"log[{i}]", "an initial entry after the initial state")
        except (IllegalTransitionError, DesignError) as exc:
            raise LifecycleStateError(f"log[{i}]", f"not a legal move: {exc}") from None
        # trait-rule entries are not replayed: the replay makes them, and they are compared below
    if used != list(added):
        raise LifecycleStateError(
            "added_arms", f"lists {list(added)} but the log adds {used} (in this order)"
        )
    if state.log != tuple(log):
        i = _first_difference(log, state.log)
        want = state.log[i] if i < len(state.log) else "nothing"
        raise LifecycleStateError(f"log[{i}]", f"the replay gives {want}")
    summary = _record(state).arms
    if list(record.arms) != list(summary):
        i = _first_difference(record.arms, summary)
        want = summary[i].model_dump(mode="json") if i < len(summary) else "nothing"
        raise LifecycleStateError(f"arms[{i}]", f"does not match the replayed log: {want}")
    return state


# ----------------------------------------------------------------------------- pure core
#: decision (``palette_core.analysis.decisions.DECISION_NAMES``) -> the lifecycle state an
#: open arm closes into; "continue" is absent (the arm stays as it is)
DECISION_STATE = {
    "graduation": "graduated",
    "futility": "futility",
    "harm": "harm",
    "cap_reached": "cap_reached",
}


@dataclass(frozen=True)
class StateCodes:
    """Integer codes of the lifecycle states of ``proposed/lifecycle.yaml``, in file order,
    for the pure functions below (the trial simulator's arm states)."""

    names: tuple[str, ...]
    suspension: str  # the state of an arm whose dose a registry finding blocks

    def code(self, name: str) -> int:
        return self.names.index(name)

    @property
    def suspended(self) -> int:
        return self.code(self.suspension)

    @property
    def open(self) -> int:
        return self.code(OPEN)

    @property
    def planned(self) -> int:
        return self.code(PLANNED)


def state_codes(design: Design) -> StateCodes:
    """The :class:`StateCodes` of the design's lifecycle."""
    lifecycle = design.lifecycle
    return StateCodes(tuple(s.id for s in lifecycle.states), lifecycle.suspension.state)


def decision_targets(codes: StateCodes, decision_names: Sequence[str]) -> Any:
    """``[n_decisions]`` int array: the state code each decision closes an open arm into, -1
    for a decision that closes nothing ("continue"), from :data:`DECISION_STATE`."""
    import numpy as np

    return np.array(
        [codes.code(DECISION_STATE[d]) if d in DECISION_STATE else -1 for d in decision_names],
        dtype=np.int32,
    )


def next_arm_states(
    xp: Any, states: Any, decisions: Any, opens_now: Any, targets: Any, codes: StateCodes
) -> Any:
    """Arm states after a look (pure, NumPy or JAX ``xp``; vectorised over arms).

    An open arm whose decision has a target state closes into it; then a planned arm whose
    opening is due (``opens_now``) opens. Other states never change here (a closed arm stays
    closed; requests and amendments go through :func:`transition` and :func:`add_arm`).
    """
    target = xp.asarray(targets)[decisions]
    closing = (states == codes.open) & (target >= 0)
    out = xp.where(closing, target, states)
    return xp.where((out == codes.planned) & opens_now, codes.open, out)


def live_traits(xp: Any, states: Any, arm_trait: Any, n_traits: int, codes: StateCodes) -> Any:
    """``[n_traits]`` bool: the trait has an open, planned or suspended experimental arm, one
    that may still randomise (the trait rule: otherwise its usual care closes with it).
    ``states`` and ``arm_trait`` are per experimental arm."""
    live = (states == codes.open) | (states == codes.planned) | (states == codes.suspended)
    onehot = xp.asarray(arm_trait)[:, None] == xp.arange(n_traits)[None, :]
    return xp.any(onehot & live[:, None], axis=0)


__all__ = [
    "DECISION_STATE",
    "FORMAT",
    "StateCodes",
    "decision_targets",
    "live_traits",
    "next_arm_states",
    "state_codes",
    "ArmStatus",
    "PlatformState",
    "TraitStatus",
    "Transition",
    "add_arm",
    "close_arm",
    "due_to_open",
    "from_json",
    "initial_state",
    "lifecycle_table",
    "open_arm",
    "open_arms",
    "states_mapping",
    "suspended_age_groups",
    "to_json",
    "trait_status",
    "transition",
    "transition_table",
]
