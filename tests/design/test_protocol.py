"""The protocol's own files (data/protocol, the checklists of data/reference): validated once,
typed errors naming file, entry and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import support
import yaml

from palette_core.design.loader import Design, load_design
from palette_core.design.protocol import load_protocol
from palette_core.errors import DesignSchemaError, DuplicateIdError, UnknownReferenceError


def _copy(tmp_path: Path) -> Path:
    """A data root holding copies of data/protocol and data/reference."""
    for sub in ("protocol", "reference"):
        shutil.copytree(support.DATA / sub, tmp_path / sub)
    return tmp_path


def _edit(root: Path, name: str, edit) -> None:
    path = root / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _load(design: Design, root: Path):
    return load_protocol(load_design(design.root, data_root=root))


def test_the_protocol_files_load_and_every_checklist_item_has_an_entry(design: Design):
    p = load_protocol(design)
    for g, gf in p.guidelines.items():
        entries = {e.item for e in p.checklist.entries if e.guideline == g}
        assert entries == {x.id for x in gf.items}
    assert p.objectives.status == "proposed"


def test_an_unknown_safety_outcome_is_named_with_its_file_and_entry(design: Design, tmp_path):
    root = _copy(tmp_path)
    _edit(root, "protocol/safety_monitoring.yaml",
          lambda d: d["assumed_control_risk"][0].update(outcome="mortality28"))  # fmt: skip
    with pytest.raises(UnknownReferenceError, match=r"safety_monitoring.yaml.*\[0\].*outcome"):
        _load(design, root)


def test_a_checklist_item_without_entry_is_an_error(design: Design, tmp_path):
    root = _copy(tmp_path)
    _edit(root, "protocol/checklist.yaml", lambda d: d["entries"].pop(0))
    with pytest.raises(DesignSchemaError, match="without an entry"):
        _load(design, root)


def test_an_answered_item_needs_a_label(design: Design, tmp_path):
    root = _copy(tmp_path)
    _edit(root, "protocol/checklist.yaml", lambda d: d["entries"][0].pop("label"))
    with pytest.raises(DesignSchemaError, match=r"\[0\].*label"):
        _load(design, root)


def test_an_open_item_without_a_note_is_an_error(design: Design, tmp_path):
    root = _copy(tmp_path)
    data = yaml.safe_load((root / "protocol/checklist.yaml").read_text(encoding="utf-8"))
    i = next(i for i, e in enumerate(data["entries"]) if e["status"] == "open")
    _edit(root, "protocol/checklist.yaml", lambda d: d["entries"][i].pop("note"))
    with pytest.raises(DesignSchemaError, match=rf"checklist.yaml.*\[{i}\].*note"):
        _load(design, root)


def test_a_guideline_item_listed_twice_is_named(design: Design, tmp_path):
    root = _copy(tmp_path)
    _edit(root, "reference/gamble2017.yaml", lambda d: d["items"].insert(3, dict(d["items"][2])))
    with pytest.raises(DuplicateIdError, match=r"gamble2017.yaml.*items\[3\].*id.*'2'"):
        _load(design, root)


def test_a_guideline_item_id_that_is_not_a_published_number_is_refused(design: Design, tmp_path):
    root = _copy(tmp_path)
    _edit(root, "reference/gamble2017.yaml", lambda d: d["items"][0].update(id="1.a"))
    with pytest.raises(DesignSchemaError, match=r"gamble2017.yaml.*id"):
        _load(design, root)


def test_a_misspelt_field_is_refused(design: Design, tmp_path):
    root = _copy(tmp_path)
    _edit(root, "protocol/dmc.yaml", lambda d: d.update(firewal="x"))
    with pytest.raises(DesignSchemaError, match="dmc.yaml.*firewal"):
        _load(design, root)


def test_a_missing_protocol_file_is_named(design: Design, tmp_path):
    root = _copy(tmp_path)
    (root / "protocol" / "sap.yaml").unlink()
    with pytest.raises(DesignSchemaError, match="protocol/sap.yaml"):
        _load(design, root)
