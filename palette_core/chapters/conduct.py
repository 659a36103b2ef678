"""Chapter "Trial conduct (SPIRIT)": for each topic the registry quoted with its line, the
proposal (labelled proposed) and the open question for the sponsor; the schedule of
assessments."""

from __future__ import annotations

import pandas as pd

from palette_core.chapters.objectives import registry_quotes
from palette_core.design.loader import Design
from palette_core.design.protocol import Protocol, Topic


def topic(protocol: Protocol, topic_id: str) -> Topic:
    """The topic of ``conduct.yaml`` with this id."""
    for t in protocol.conduct.topics:
        if t.id == topic_id:
            return t
    raise KeyError(f"unknown topic {topic_id!r}")


def topic_table(design: Design, protocol: Protocol, topic_id: str) -> pd.DataFrame:
    """One topic as rows: each registry quote with its line, then the proposal and the open
    question (each labelled), and the SPIRIT items it answers."""
    t = topic(protocol, topic_id)
    rows = [
        {"Source": f"Registry, line {r.Line}", "Text": f"“{r._1}”"}
        for r in registry_quotes(design, list(t.registry_quotes)).itertuples()
    ]
    if not t.registry_quotes:
        rows.append({"Source": "Registry", "Text": "Silent on this topic."})
    if t.proposed:
        rows.append({"Source": "Proposed", "Text": t.proposed})
    if t.open_question:
        rows.append({"Source": "Open question for the sponsor", "Text": t.open_question})
    rows.append({"Source": "SPIRIT 2013 items", "Text": ", ".join(t.spirit)})
    return pd.DataFrame(rows)


def schedule_table(protocol: Protocol) -> pd.DataFrame:
    """The schedule of assessments: one row per assessment, one column per day (proposed)."""
    t = topic(protocol, "timeline")
    days = sorted({d for r in t.schedule for d in r.days})
    return pd.DataFrame(
        [
            {"Assessment": r.assessment, **{f"Day {d}": "●" if d in r.days else "" for d in days}}
            for r in t.schedule
        ]
    )


def conduct_counts(protocol: Protocol) -> dict[str, int]:
    """How many topics quote the registry, propose an answer, and leave an open question."""
    topics = protocol.conduct.topics
    return {
        "n_topics": len(topics),
        "n_quoting": sum(bool(t.registry_quotes) for t in topics),
        "n_proposed": sum(bool(t.proposed) for t in topics),
        "n_open": sum(bool(t.open_question) for t in topics),
    }


__all__ = ["conduct_counts", "schedule_table", "topic", "topic_table"]
