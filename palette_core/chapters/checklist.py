"""Chapter "Checklist": each item of SPIRIT 2013 and of the SAP guideline (Gamble 2017) with the
book section that answers it, generated from ``data/protocol/checklist.yaml`` and the item lists
of ``data/reference/`` (each with its reference and where its numbering was checked); the labels
it points to are checked to exist in the book's sources."""

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
_ITEM = re.compile(r"^(\d+)([a-z]?)$")
_NAME = re.compile(r"^:name:\s*([A-Za-z0-9_-]+)\s*$", re.M)
_HEADING = re.compile(r"^\(([A-Za-z0-9_-]+)\)=\s*\n+#+\s+(.+?)\s*$", re.M)


def _markdown_texts(book_dir: Path) -> list[tuple[str, str]]:
    """(page, markdown) of every notebook (its markdown cells) and Markdown page of the book."""
    pages = []
    for path in sorted(book_dir.glob("*.ipynb")) + sorted(book_dir.glob("*.md")):
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        else:
            text = path.read_text(encoding="utf-8")
        pages.append((path.stem, text))
    return pages


def book_labels(book_dir: Path) -> dict[str, str]:
    """Every MyST label of the book's notebooks and Markdown pages: label -> page (file stem).

    Labels are the targets ``(label)=`` on a line of their own and the ``:name:`` of figures,
    read from the markdown cells of ``*.ipynb`` and from ``*.md``.
    """
    labels: dict[str, str] = {}
    for page, text in _markdown_texts(book_dir):
        for m in [*_TARGET.finditer(text), *_NAME.finditer(text)]:
            labels.setdefault(m.group(1), page)
    return labels


def section_titles(book_dir: Path) -> dict[str, str]:
    """The heading each section label of the book stands before: label -> title.

    A label ``(label)=`` followed by a heading (``# Title``, ``## Title`` ...) gets that heading's
    text; labels not followed by a heading (figure names, a target before a paragraph) have no
    title. Read like :func:`book_labels`.
    """
    titles: dict[str, str] = {}
    for _page, text in _markdown_texts(book_dir):
        for m in _HEADING.finditer(text):
            titles.setdefault(m.group(1), m.group(2))
    return titles


def missing_labels(protocol: Protocol, labels: dict[str, str]) -> list[str]:
    """The checklist's labels that no book page defines (should be empty)."""
    return sorted({e.label for e in protocol.checklist.entries if e.label} - set(labels))


def checklist_table(
    protocol: Protocol,
    guideline: str,
    labels: dict[str, str],
    titles: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The checklist of one guideline, each item linked to the section that answers it.

    Parameters
    ----------
    protocol
        The protocol files (the guideline's items and the checklist entries).
    guideline
        ``"spirit2013"`` or ``"gamble2017"``.
    labels
        :func:`book_labels` of the book (label -> page), for the links.
    titles
        :func:`section_titles` of the book (label -> heading), the text of the links; a label
        without a title is shown as itself.

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
            text = (titles or {}).get(e.label, e.label)
            where = f'<a href="{labels[e.label]}.html#{e.label}">{html.escape(text)}</a>'
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


def item_number(item_id: str) -> int:
    """The number of an item id: ``"13"`` for ``"13b"``.

    Raises
    ------
    ValueError
        When the id is not a number optionally followed by one lower-case letter.
    """
    m = _ITEM.match(item_id)
    if not m:
        raise ValueError(f"checklist item id {item_id!r} is not a number with an optional letter")
    return int(m.group(1))


def guideline_sources(protocol: Protocol) -> pd.DataFrame:
    """Each guideline with its number of items, of items and sub-items, its reference and where
    its numbering was checked (the ``citation`` and ``source`` of ``data/reference/``)."""
    rows = []
    for g in protocol.guidelines.values():
        rows.append(
            {
                "Guideline": g.guideline,
                "Items": len({item_number(x.id) for x in g.items}),
                "With sub-items": len(g.items),
                "Reference": g.citation,
                "Numbering checked against": g.source,
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


__all__ = [
    "STATUS_LABELS",
    "book_labels",
    "checklist_counts",
    "checklist_table",
    "guideline_sources",
    "item_number",
    "missing_labels",
    "section_titles",
]
