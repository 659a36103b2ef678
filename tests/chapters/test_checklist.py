"""The checklist appendix: the items are the published ones, in order, and every label it points
to exists in the book."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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
    assert "adverse-events" in missing


def test_checklist_links_point_to_the_page_holding_the_label(protocol):
    labels = checklist.book_labels(BOOK)
    table = checklist.checklist_table(protocol, "spirit2013", labels)
    row = table[table["Item"] == "21a"].iloc[0]
    assert f'href="{labels["dmc"]}.html#dmc"' in row["Where"]


def test_every_checklist_label_has_a_section_title(protocol):
    titles = checklist.section_titles(BOOK)
    used = {e.label for e in protocol.checklist.entries if e.label}
    assert used - set(titles) == set()
    assert titles["deviations"] == "Protocol deviations and adherence"


def test_links_show_the_section_title_not_the_label(protocol, tmp_path: Path):
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["(dmc)=\n"]},
        {"cell_type": "markdown", "source": ["## The DMC & its charter\n", "(fig)=\n", "Text.\n"]},
    ]}  # fmt: skip
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    titles = checklist.section_titles(tmp_path)
    assert titles == {"dmc": "The DMC & its charter"}
    labels = {**checklist.book_labels(BOOK), **checklist.book_labels(tmp_path)}
    table = checklist.checklist_table(protocol, "spirit2013", labels, titles)
    row = table[table["Item"] == "21a"].iloc[0]
    assert row["Where"].startswith('<a href="x.html#dmc">The DMC &amp; its charter</a>')


def test_checklist_counts_add_up(protocol):
    counts = checklist.checklist_counts(protocol).set_index("Guideline")
    total = counts.loc["Total"]
    n = sum(len(g.items) for g in protocol.guidelines.values())
    assert total["items"] == n
    assert total[list(checklist.STATUS_LABELS.values())].sum() == n


#: The published item ids, in order, with their sub-items. Gamble et al. 2017 (JAMA 318:2337),
#: as reproduced with its index numbers in Table 1 of Hiemstra et al. 2019 (BMC Med Res
#: Methodol, doi:10.1186/s12874-019-0879-5); SPIRIT 2013 (Chan et al., Ann Intern Med
#: 158:200). The test data are typed here on purpose: they are what data/reference must match.
GAMBLE_2017 = (
    "1a 1b 2 3 4a 4b 4c 5 6a 6b 6c 7 8 9 10 11 12 13a 13b 13c 14 15 16 17 18 19a 19b 19c 19d "
    "20 21 22 23 24a 24b 24c 25a 25b 26a 26b 26c 27a 27b 27c 27d 27e 27f 28 29 30 31 "
    "32a 32b 32c"
).split()
SPIRIT_2013 = (
    "1 2a 2b 3 4 5a 5b 5c 5d 6a 6b 7 8 9 10 11a 11b 11c 11d 12 13 14 15 16a 16b 16c 17a 17b "
    "18a 18b 19 20a 20b 20c 21a 21b 22 23 24 25 26a 26b 27 28 29 30 31a 31b 31c 32 33"
).split()
#: the sections of Gamble 2017, with the item numbers each holds
GAMBLE_SECTIONS = {
    "Administrative information": range(1, 7),
    "Introduction": range(7, 9),
    "Study methods": range(9, 16),
    "Statistical principles": range(16, 21),
    "Trial population": range(21, 26),
    "Analysis": range(26, 33),
}


def test_gamble_items_are_the_published_checklist(protocol):
    ids = [x.id for x in protocol.guidelines["gamble2017"].items]
    assert ids == GAMBLE_2017
    assert len(ids) == 54
    assert len({checklist.item_number(i) for i in ids}) == 32
    for x in protocol.guidelines["gamble2017"].items:
        assert checklist.item_number(x.id) in GAMBLE_SECTIONS[x.section], x.id


def test_spirit_items_are_the_33_items_with_their_sub_items(protocol):
    ids = [x.id for x in protocol.guidelines["spirit2013"].items]
    assert ids == SPIRIT_2013
    assert len(ids) == 51
    assert sorted({checklist.item_number(i) for i in ids}) == list(range(1, 34))


def test_checklist_entries_follow_the_published_numbering(protocol):
    for g, expected in (("gamble2017", GAMBLE_2017), ("spirit2013", SPIRIT_2013)):
        entries = [e.item for e in protocol.checklist.entries if e.guideline == g]
        assert entries == expected, g


def test_the_sources_table_counts_items_and_sub_items(protocol):
    sources = checklist.guideline_sources(protocol).set_index("Guideline")
    gamble = sources.loc[protocol.guidelines["gamble2017"].guideline]
    assert (gamble["Items"], gamble["With sub-items"]) == (32, 54)
    assert "10.1186/s12874-019-0879-5" in gamble["Numbering checked against"]
    spirit = sources.loc[protocol.guidelines["spirit2013"].guideline]
    assert (spirit["Items"], spirit["With sub-items"]) == (33, 51)


def test_an_item_id_must_be_a_number_with_an_optional_letter():
    assert checklist.item_number("27f") == 27
    assert checklist.item_number("5") == 5
    with pytest.raises(ValueError, match="13 b"):
        checklist.item_number("13 b")


def test_the_gamble_entries_point_to_the_sections_that_answer_them(protocol):
    where = {e.item: e.label for e in protocol.checklist.entries if e.guideline == "gamble2017"}
    assert where["19a"] == where["19c"] == "deviations"  # adherence and protocol deviations
    assert where["20"] == "analysis-sets"
    assert where["27c"] == "po-check"
    assert where["28"] == "missing-data"
    assert where["13a"] == "decisions"
