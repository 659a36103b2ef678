"""Chapter "Randomisation and allocation": the allocation rule's parameters, the example trial,
the arm lifecycle, and the concealment demonstration.

Two functions here touch files, and say so: :func:`load_examples` reads the chapter's
illustrative inputs (``data/scenarios/randomisation_examples.yaml`` and the patients it names),
and :func:`randomisation_demo` writes an allocation log into a temporary directory, which it
removes before returning.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

from palette_core.design.loader import Design
from palette_core.errors import DesignSchemaError
from palette_core.randomisation.allocation_log import VerificationReport, load_entries, verify_log
from palette_core.randomisation.lifecycle import PlatformState, initial_state, transition
from palette_core.randomisation.randomise import (
    default_allocation_state,
    parse_secret,
    randomise_patients,
    replay_log,
)
from palette_core.screening.patients import PatientValidation, read_patients
from palette_core.viz.labels import LABELS
from palette_core.yamlio import read_yaml

#: The chapter's illustrative inputs, relative to the data folder.
EXAMPLES_FILE = ("scenarios", "randomisation_examples.yaml")
EXAMPLES_LABEL = "scenarios/randomisation_examples.yaml"
#: The fields every block of the examples file must have.
REQUIRED = {
    "allocation_example": ("trait", "seed", "n_patients", "look_every", "true_rates"),
    "lifecycle_example": ("events",),
    "concealment_example": ("demo_secret", "time", "patients", "tamper"),
}
EVENT_FIELDS = ("arm", "to", "date", "reason")
#: A secret that is not the demonstration secret, to show that a replay with it fails.
WRONG_SECRET = "a different secret of sixteen+ bytes"


@dataclass(frozen=True)
class LifecycleEvent:
    """One requested transition of the lifecycle example."""

    arm: str
    to: str
    date: dt.date
    reason: str


@dataclass(frozen=True)
class RandomisationExamples:
    """The illustrative inputs of the chapter, read and checked once by :func:`load_examples`.

    Attributes
    ----------
    allocation
        The example trial: ``trait``, ``seed``, ``n_patients``, ``look_every``, ``true_rates``.
    events
        The lifecycle example's transitions, in order.
    concealment
        The concealment demonstration: ``demo_secret``, ``time``, ``tamper`` (``line``, ``field``).
    patients
        The validated patients the demonstration randomises.
    """

    allocation: Mapping[str, Any]
    events: tuple[LifecycleEvent, ...]
    concealment: Mapping[str, Any]
    patients: PatientValidation


def _block(raw: dict[str, Any], name: str) -> Mapping[str, Any]:
    block = raw.get(name)
    if not isinstance(block, dict):
        raise DesignSchemaError(EXAMPLES_LABEL, name, None, "missing, or not a mapping")
    for field in REQUIRED[name]:
        if field not in block:
            raise DesignSchemaError(EXAMPLES_LABEL, name, field, "missing")
    return block


def _event(raw: Any, i: int) -> LifecycleEvent:
    entry = f"lifecycle_example.events[{i}]"
    if not isinstance(raw, dict):
        raise DesignSchemaError(EXAMPLES_LABEL, entry, None, "expected a mapping")
    for field in EVENT_FIELDS:
        if field not in raw:
            raise DesignSchemaError(EXAMPLES_LABEL, entry, field, "missing")
    on = raw["date"]
    if not isinstance(on, dt.date):
        try:
            on = dt.date.fromisoformat(str(on))
        except ValueError as exc:
            raise DesignSchemaError(
                EXAMPLES_LABEL, entry, "date", f"not an ISO date: {on!r}"
            ) from exc
    return LifecycleEvent(str(raw["arm"]), str(raw["to"]), on, str(raw["reason"]))


def load_examples(design: Design) -> RandomisationExamples:
    """Read ``data/scenarios/randomisation_examples.yaml`` and the patients it names.

    Parameters
    ----------
    design
        The loaded design; its folder's parent is the data folder.

    Returns
    -------
    RandomisationExamples
        The three examples, checked, with the demonstration's patients validated.

    Raises
    ------
    DesignSchemaError
        The file is not YAML, or a block, an event or one of their fields is missing or invalid
        (naming the block and field).
    PatientFileError
        The patients file is missing.
    """
    path = design.data_root.joinpath(*EXAMPLES_FILE)
    if not path.is_file():
        raise DesignSchemaError(EXAMPLES_LABEL, None, None, "file not found")
    raw = read_yaml(path, EXAMPLES_LABEL)
    if not isinstance(raw, dict):
        raise DesignSchemaError(EXAMPLES_LABEL, None, None, "expected a mapping at top level")
    allocation = _block(raw, "allocation_example")
    lifecycle = _block(raw, "lifecycle_example")
    concealment = _block(raw, "concealment_example")
    if not isinstance(lifecycle["events"], list):
        raise DesignSchemaError(EXAMPLES_LABEL, "lifecycle_example", "events", "expected a list")
    events = tuple(_event(e, i) for i, e in enumerate(lifecycle["events"]))
    patients = read_patients((path.parent / concealment["patients"]).resolve(), design)
    return RandomisationExamples(allocation, events, concealment, patients)


def allocation_parameters_table(design: Design) -> pd.DataFrame:
    """The proposed allocation rule's parameters, from ``data/design/proposed/allocation.yaml``.

    Parameters
    ----------
    design
        The loaded design.

    Returns
    -------
    pandas.DataFrame
        Columns Parameter and Value.
    """
    al = design.allocation
    rows = [
        (
            "Burn-in: equal allocation until every arm has",
            f"{al.burn_in_min_complete_per_arm} complete outcomes",
        ),
        (
            "Response-adaptive allocation needs at least",
            f"{al.rar_min_open_experimental} open experimental arms",
        ),
        ("Adaptive weight of an arm", f"Pr(best)^{al.damping_power:g}"),
        ("Floor for every open arm", f"{al.floor_per_open_arm:g}"),
        ("Usual-care share", "max(1/(K+1), largest experimental share)"),
    ]
    return pd.DataFrame(rows, columns=[LABELS["parameter"], LABELS["value"]])


def allocation_chart(evolution: pd.DataFrame) -> alt.Chart:
    """Allocation probabilities by arm at each look of an example trial.

    Parameters
    ----------
    evolution
        The table of :func:`palette_core.randomisation.allocation.example_trial`.

    Returns
    -------
    altair.Chart
        One line per arm against the number of patients randomised.
    """
    return (
        alt.Chart(evolution)
        .mark_line(point=True)
        .encode(
            x=alt.X("n_patients:Q", title="Patients randomised in the trait"),
            y=alt.Y(
                "probability:Q", title="Allocation probability", scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("arm:N", title="Arm"),
            tooltip=list(evolution.columns),
        )
        .properties(width=520, height=260, title="Allocation probabilities in an example trial")
    )


def lifecycle_chart(transitions: pd.DataFrame) -> alt.LayerChart:
    """State diagram of an arm's lifecycle from a table with columns ``from`` and ``to``.

    States without an incoming transition are drawn on the left, terminal states on the
    right, the others in between; an arrow (a line ending in a triangle) marks each transition.

    Parameters
    ----------
    transitions
        One row per transition (e.g. the requested ones of
        :func:`palette_core.randomisation.lifecycle.transition_table`).

    Returns
    -------
    altair.LayerChart
        Boxes, labels and arrows.
    """
    states = list(dict.fromkeys(list(transitions["from"]) + list(transitions["to"])))
    incoming = set(transitions["to"])
    outgoing = set(transitions["from"])
    stage = {st_: 0 if st_ not in incoming else (2 if st_ not in outgoing else 1) for st_ in states}
    nodes = []
    for level in (0, 1, 2):
        members = [st_ for st_ in states if stage[st_] == level]
        for i, st_ in enumerate(members):
            nodes.append(
                {
                    "state": st_.replace("_", " "),
                    "key": st_,
                    "x": level,
                    "y": (len(members) - 1) / 2 - i,
                }
            )
    pos = {n["key"]: (n["x"], n["y"]) for n in nodes}
    edges = pd.DataFrame(
        [
            {
                "x": pos[a][0] + 0.18,
                "y": pos[a][1],
                "x2": pos[b][0] - 0.18,
                "y2": pos[b][1],
                "transition": f"{a} → {b}",
            }
            for a, b in zip(transitions["from"], transitions["to"], strict=True)
        ]
    )
    scale_x = alt.Scale(domain=[-0.4, 2.4])
    scale_y = alt.Scale(domain=[-3, 3])
    lines = (
        alt.Chart(edges)
        .mark_rule(color="#888888", strokeWidth=1.5)
        .encode(
            x=alt.X("x:Q", scale=scale_x, axis=None),
            y=alt.Y("y:Q", scale=scale_y, axis=None),
            x2="x2:Q",
            y2="y2:Q",
            tooltip=["transition"],
        )
    )
    heads = (
        alt.Chart(edges)
        .mark_point(shape="triangle-right", filled=True, size=60, color="#888888", opacity=1)
        .encode(x=alt.X("x2:Q", scale=scale_x), y=alt.Y("y2:Q", scale=scale_y))
    )
    node_df = pd.DataFrame(nodes)
    boxes = (
        alt.Chart(node_df)
        .mark_point(shape="square", size=4400, filled=True, color="#d1e5f0", opacity=1)
        .encode(x=alt.X("x:Q", scale=scale_x), y=alt.Y("y:Q", scale=scale_y))
    )
    labels = (
        alt.Chart(node_df)
        .mark_text(fontSize=12)
        .encode(x=alt.X("x:Q", scale=scale_x), y=alt.Y("y:Q", scale=scale_y), text="state:N")
    )
    return (lines + heads + boxes + labels).properties(
        width=520, height=300, title="Arm lifecycle: states and transitions"
    )


def lifecycle_example(design: Design, examples: RandomisationExamples) -> PlatformState:
    """Apply the example lifecycle events, in order, to the initial state.

    Parameters
    ----------
    design
        The loaded design.
    examples
        The chapter's inputs (:func:`load_examples`).

    Returns
    -------
    PlatformState
        The state after the last event.

    Raises
    ------
    IllegalTransitionError
        An event is not a legal transition.
    """
    state = initial_state(design)
    for event in examples.events:
        state = transition(state, event.arm, event.to, event.date, event.reason, design)
    return state


def _problems(report: VerificationReport) -> pd.DataFrame:
    return pd.DataFrame(
        [{"kind": p.kind, "line": p.line, "problem": p.message} for p in report.problems],
        columns=["kind", "line", "problem"],
    )


def _tamper(log: Path, copy: Path, line: int, field: str, design: Design) -> None:
    """Copy ``log`` (and its anchor) to ``copy`` and set ``field`` of entry ``line`` (1-based)
    to another arm of the entry's trait."""
    shutil.copy(log, copy)
    anchor = Path(f"{log}.head")
    if anchor.exists():
        shutil.copy(anchor, Path(f"{copy}.head"))
    lines = copy.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[line - 1])
    others = [a.id for a in design.arms_of(entry["trait"]) if a.id != entry["arm"]]
    entry[field] = others[0]
    lines[line - 1] = json.dumps(entry, ensure_ascii=False)
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")


def randomisation_demo(design: Design, examples: RandomisationExamples) -> dict[str, object]:
    """Randomise the example patients with the public demonstration secret, then verify the log,
    tamper with a copy, and replay it with the right and with a wrong secret.

    Everything is written to a temporary directory, removed before the function returns.

    Parameters
    ----------
    design
        The loaded design.
    examples
        The chapter's inputs (:func:`load_examples`).

    Returns
    -------
    dict
        ``site_view``, ``refused``, ``open_log`` and ``tamper_problems`` (tables); ``intact_ok``,
        ``entries``, ``tampered_line``, ``replay_ok``, ``replay_matches``,
        ``wrong_secret_matches`` and ``wrong_secret_ok``.
    """
    spec = examples.concealment
    secret = parse_secret(spec["demo_secret"], "demonstration secret")
    now = dt.datetime.fromisoformat(spec["time"])
    state = default_allocation_state(design)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "allocation.jsonl"
        result = randomise_patients(examples.patients, design, state, secret, log, now=now)
        site_view = pd.DataFrame(
            [
                {"sequence": a.sequence, "patient": a.patient_id, "trait": a.trait, "arm": a.arm}
                for a in result.allocations
            ]
        )
        refused = pd.DataFrame(
            [{"row": r.row, "patient": r.patient_id, "reason": r.reason} for r in result.refused]
        )
        open_log = pd.DataFrame(
            [
                {
                    "line": i + 1,
                    "sequence": e["sequence"],
                    "patient": e["patient_id"],
                    "arm": e["arm"],
                    "commitment": e["commitment"][:16] + "…",
                    "prev_hash": e["prev_hash"][:16] + "…",
                    "hash": e["hash"][:16] + "…",
                }
                for i, e in enumerate(load_entries(log))
            ]
        )
        intact = verify_log(log)
        tampered = Path(tmp) / "tampered.jsonl"
        _tamper(log, tampered, spec["tamper"]["line"], spec["tamper"]["field"], design)
        tamper_report = verify_log(tampered, restricted=False)
        right = replay_log(log, secret, design)
        wrong = replay_log(log, parse_secret(WRONG_SECRET, "wrong secret"), design)
    return {
        "site_view": site_view,
        "refused": refused,
        "open_log": open_log,
        "intact_ok": intact.ok,
        "entries": intact.entries,
        "tampered_line": spec["tamper"]["line"],
        "tamper_problems": _problems(tamper_report),
        "replay_ok": right.ok,
        "replay_matches": sum(e.ok for e in right.entries),
        "wrong_secret_matches": wrong.secret_matches,
        "wrong_secret_ok": wrong.ok,
    }
