"""Parsing the registry record (data/registry) into groups and interventions, with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from palette_core.errors import PaletteError, RegistryFormatError
from palette_core.registry.record import normalise, parse_registry


def test_finds_every_study_group_and_intervention(record):
    assert len(record.groups) == 24
    assert len(record.interventions) == 17
    types = [g.group_type for g in record.groups]
    assert types.count("ACTIVE_COMPARATOR") == 6
    assert types.count("EXPERIMENTAL") == 18
    assert {i.type for i in record.interventions} == {"DRUG", "OTHER"}


def test_group_labels_are_unique(record):
    labels = [normalise(g.label) for g in record.groups]
    assert len(set(labels)) == len(labels)


def test_gcsf_group_lists_heparin_and_filgrastim(record):
    group = record.group("Hypoinflammation : G CSF filgrastim")
    assert group is not None
    assert [i.name for i in group.interventions] == ["Heparin", "G-CSF filgrastim"]
    assert [i.name_line for i in group.interventions] == [286, 292]
    assert group.interventions[0].text.startswith("Therapeutic unfractionated heparin (UFH)")


def test_every_other_group_lists_one_intervention(record):
    multi = [g.label for g in record.groups if len(g.interventions) != 1]
    assert multi == ["Hypoinflammation : G CSF filgrastim"]


def test_line_numbers_point_at_the_text(record):
    group = record.group("Corticoids response : Hydrocortisone + Fludrocortisone")
    assert group is not None
    assert group.label_line == 122
    (item,) = group.interventions
    assert (item.name, item.name_line, item.text_line) == (
        "Hydrocortisone and fludrocortisone",
        126,
        130,
    )
    assert record.line(130) == item.text
    assert record.line(122) == group.label
    # first and last group, first and last listed intervention
    assert (record.groups[0].label_line, record.groups[-1].label_line) == (82, 318)
    first, last = record.interventions[0], record.interventions[-1]
    assert (first.name, first.name_line, first.text_line) == ("Tocilizumab", 332, 334)
    assert (last.name, last.name_line, last.text_line) == ("Plasminogen", 428, 430)


def test_trait_label_is_the_text_before_the_colon(record):
    assert record.group("Hypofrinolysis : Sivelestat").trait_label == "Hypofrinolysis"
    assert record.group("Hyperinflammation: Baricitinib").trait_label == "Hyperinflammation"


def test_group_lookup_normalises_whitespace_but_not_spelling(record):
    assert record.group("Hypofrinolysis  :\n Sivelestat") is not None
    assert record.group("Hypofibrinolysis : Sivelestat") is None


def test_find_returns_one_based_line_numbers(record):
    assert record.find("Hypofrinolysis : Sivelestat") == [192]
    assert record.find("2,2 mg/kg/day") == [220, 430]
    assert record.find("no such text anywhere") == []


def test_line_outside_the_record_raises(record):
    with pytest.raises(IndexError):
        record.line(0)
    with pytest.raises(IndexError):
        record.line(len(record.lines) + 1)


def test_contains_tolerates_rewrapped_whitespace(record):
    assert record.contains("Hydrocortisone 50mg IV\n    Q6 for 7 days  +   Fludrocortisone")
    # across the record's own line breaks (lines 96-98)
    assert record.contains("Usual care\nIntervention Type OTHER")
    assert not record.contains("Hydrocortisone 50mg IV Q8 for 7 days")


def _malformed(tmp_path: Path, record, edit) -> Path:
    lines = list(record.lines)
    edit(lines)
    path = tmp_path / "record.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_group_label_without_group_type_raises_naming_the_line(tmp_path, record):
    def drop_group_type(lines: list[str]) -> None:
        assert lines[123] == "Group Type EXPERIMENTAL"  # line 124, after the label on 122
        lines[123] = ""

    path = _malformed(tmp_path, record, drop_group_type)
    with pytest.raises(RegistryFormatError) as info:
        parse_registry(path)
    assert info.value.line == 122
    assert info.value.file == str(path)
    assert "line 122" in str(info.value) and "Group Type" in str(info.value)
    assert isinstance(info.value, PaletteError)


def test_group_without_intervention_raises_naming_the_line(tmp_path, record):
    def drop_intervention(lines: list[str]) -> None:
        for n in (126, 128, 130):  # name, type and text of the group on line 122
            lines[n - 1] = ""

    path = _malformed(tmp_path, record, drop_intervention)
    with pytest.raises(RegistryFormatError, match="lists no intervention") as info:
        parse_registry(path)
    assert info.value.line == 122


def test_truncated_interventions_section_raises_naming_the_line(tmp_path, record):
    def truncate(lines: list[str]) -> None:
        assert lines[431] == "Intervention Type DRUG"  # line 432, the last triple's type
        lines[431] = ""

    path = _malformed(tmp_path, record, truncate)
    with pytest.raises(RegistryFormatError, match="triples") as info:
        parse_registry(path)
    assert info.value.line == 430


def test_intervention_triple_out_of_order_raises_naming_the_line(tmp_path, record):
    def swap(lines: list[str]) -> None:  # text and type of Tocilizumab (lines 334, 336)
        lines[333], lines[335] = lines[335], lines[333]

    path = _malformed(tmp_path, record, swap)
    with pytest.raises(RegistryFormatError, match="Intervention Type") as info:
        parse_registry(path)
    assert info.value.line == 336


def test_missing_section_raises(tmp_path, record):
    path = _malformed(tmp_path, record, lambda lines: lines.remove("Interventions"))
    with pytest.raises(RegistryFormatError, match="not found") as info:
        parse_registry(path)
    assert info.value.line == 1
