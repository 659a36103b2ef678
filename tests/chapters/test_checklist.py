"""The checklist appendix: every label it points to exists in the book."""

from __future__ import annotations

import json
from pathlib import Path

import support

from palette_core.chapters import checklist

BOOK = support.ROOT / "book"


def test_every_checklist_label_exists_in_the_book(protocol):
    labels = checklist.book_labels(BOOK)
    assert checklist.missing_labels(protocol, labels) == []


def test_a_label_missing_from_the_book_is_reported(protocol, tmp_path: Path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["(dmc)=\n", "# DMC\n"]}]}
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    missing = checklist.missing_labels(protocol, checklist.book_labels(tmp_path))
    assert "dmc" not in missing
    assert "safety-monitoring" in missing


def test_checklist_links_point_to_the_page_holding_the_label(protocol):
    labels = checklist.book_labels(BOOK)
    table = checklist.checklist_table(protocol, "spirit2013", labels)
    row = table[table["Item"] == "21a"].iloc[0]
    assert f'href="{labels["dmc"]}.html#dmc"' in row["Where"]


def test_checklist_counts_add_up(protocol):
    counts = checklist.checklist_counts(protocol).set_index("Guideline")
    total = counts.loc["Total"]
    n = sum(len(g.items) for g in protocol.guidelines.values())
    assert total["items"] == n
    assert total[list(checklist.STATUS_LABELS.values())].sum() == n
