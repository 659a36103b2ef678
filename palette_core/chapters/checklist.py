"""Chapter "Checklist": each item of SPIRIT 2013 and of the SAP guideline (Gamble 2017) with the
book section that answers it, generated from ``data/protocol/checklist.yaml``; the labels it
points to are checked to exist in the book's sources."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd

from palette_core.design.protocol import Protocol

#: what a checklist status is called in the book
STATUS_LABELS = {
    "answered": "answered",
    "proposed": "proposed",
    "open": "open question for the sponsor",
}
_TARGET = re.compile(r"^\(([A-Za-z0-9_-]+)\)=\s*$", re.M)
_NAME = re.compile(r"^:name:\s*([A-Za-z0-9_-]+)\s*$", re.M)


def book_labels(book_dir: Path) -> dict[str, str]:
    """Every MyST label of the book's notebooks and Markdown pages: label -> page (file stem).

    Labels are the targets ``(label)=`` on a line of their own and the ``:name:`` of figures,
    read from the markdown cells of ``*.ipynb`` and from ``*.md``.
    """
    labels: dict[str, str] = {}
    for path in sorted(book_dir.glob("*.ipynb")) + sorted(book_dir.glob("*.md")):
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        else:
            text = path.read_text(encoding="utf-8")
        for m in [*_TARGET.finditer(text), *_NAME.finditer(text)]:
            labels.setdefault(m.group(1), path.stem)
    return labels


def missing_labels(protocol: Protocol, labels: dict[str, str]) -> list[str]:
    """The checklist's labels that no book page defines (should be empty)."""
    return sorted({e.label for e in protocol.checklist.entries if e.label} - set(labels))


def checklist_table(protocol: Protocol, guideline: str, labels: dict[str, str]) -> pd.DataFrame:
    """The checklist of one guideline, each item linked to the section that answers it.

    Parameters
    ----------
    protocol
        The protocol files (the guideline's items and the checklist entries).
    guideline
        ``"spirit2013"`` or ``"gamble2017"``.
    labels
        :func:`book_labels` of the book (label -> page), for the links.

    Returns
    -------
    pandas.DataFrame
        Item, Section, Topic, Status and Where (an HTML link ``page.html#label``, escaped text
        otherwise); render it with ``escape=False``.
    """
    entries = {e.item: e for e in protocol.checklist.entries if e.guideline == guideline}
    rows = []
    for item in protocol.guidelines[guideline].items:
        e = entries[item.id]
        where = ""
        if e.label:
            where = f'<a href="{labels[e.label]}.html#{e.label}">{html.escape(e.label)}</a>'
        if e.note:
            where += (" – " if where else "") + html.escape(e.note)
        rows.append(
            {
                "Item": item.id,
                "Section": item.section,
                "Topic": item.topic,
                "Status": STATUS_LABELS[e.status],
                "Where": where,
            }
        )
    return pd.DataFrame(rows)


def checklist_counts(protocol: Protocol) -> pd.DataFrame:
    """Items answered, proposed and open, per guideline and in total."""
    df = pd.DataFrame(
        [{"guideline": e.guideline, "status": e.status} for e in protocol.checklist.entries]
    )
    wide = (
        df.pivot_table(index="guideline", columns="status", aggfunc="size", fill_value=0)
        .reindex(columns=list(STATUS_LABELS), fill_value=0)
        .reindex(list(protocol.guidelines))
    )
    wide.index = [protocol.guidelines[g].guideline for g in wide.index]
    wide.loc["Total"] = wide.sum()
    wide["items"] = wide.sum(axis=1)
    return (
        wide.rename(columns=STATUS_LABELS)
        .rename_axis(index="Guideline", columns=None)
        .reset_index()
    )


__all__ = ["STATUS_LABELS", "book_labels", "checklist_counts", "checklist_table", "missing_labels"]
